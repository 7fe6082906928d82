//! The counting sink (`lab/ebpf/src/sink.rs`): an XDP program that counts and drops every frame,
//! attached to the receiving end of a link. It is what a measurement puts behind a generator
//! or a DUT, and what makes a veth accept the generator's XDP frames at all (a veth takes
//! frames from `ndo_xdp_xmit` only when its peer has an XDP program or GRO on). Dropping the
//! [`Sink`] detaches the program.

use aya::Ebpf;
use xpe_dataplane::xsk::steer::{Attached, Mode, SteerError};
use xpe_lab_ebpf as names;

/// What the sink counted, summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SinkCounters {
    /// Frames dropped.
    pub frames: u64,
    /// Their bytes (whole frames, without the FCS).
    pub bytes: u64,
}

/// The sink attached to one interface; dropping it detaches the program.
#[derive(Debug)]
pub struct Sink(Attached);

impl Sink {
    /// Loads the sink and attaches it to `ifname`; with [`Mode::Auto`], native first, then skb.
    pub fn attach(ifname: &str, mode: Mode) -> Result<Sink, SteerError> {
        let ebpf = Ebpf::load(super::EBPF_OBJECT).map_err(SteerError::Load)?;
        Attached::attach(ebpf, names::SINK_PROGRAM, ifname, mode).map(Sink)
    }

    /// The interface the sink is attached to.
    pub fn ifname(&self) -> &str {
        self.0.ifname()
    }

    /// The mode it is attached in.
    pub fn mode(&self) -> Mode {
        self.0.mode()
    }

    /// Reads the counters, summed over CPUs.
    pub fn counters(&self) -> Result<SinkCounters, SteerError> {
        let [frames, bytes] = self.0.per_cpu_sums(
            names::SINK_STATS_MAP,
            [names::SINK_STAT_FRAMES, names::SINK_STAT_BYTES],
        )?;
        Ok(SinkCounters { frames, bytes })
    }
}

//! The counting sink (`ebpf/src/sink.rs`): an XDP program that counts and drops every frame,
//! attached to the receiving end of a link. It is what a measurement puts behind a generator
//! or a DUT, and what makes a veth accept the generator's XDP frames at all (a veth takes
//! frames from `ndo_xdp_xmit` only when its peer has an XDP program or GRO on). Dropping the
//! [`Sink`] detaches the program.

use std::fmt;

use aya::Ebpf;
use xpe_ebpf as names;

use super::steer::{attach_xdp, per_cpu_sums, Mode, SteerError};

/// What the sink counted, summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SinkCounters {
    /// Frames dropped.
    pub frames: u64,
    /// Their bytes (whole frames, without the FCS).
    pub bytes: u64,
}

/// The sink attached to one interface; dropping it detaches the program.
pub struct Sink {
    ebpf: Ebpf,
    ifname: String,
    mode: Mode,
}

impl fmt::Debug for Sink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sink")
            .field("ifname", &self.ifname)
            .field("mode", &self.mode)
            .finish()
    }
}

impl Sink {
    /// Loads the sink and attaches it to `ifname`; with [`Mode::Auto`], native first, then skb.
    pub fn attach(ifname: &str, mode: Mode) -> Result<Sink, SteerError> {
        let mut ebpf = Ebpf::load(super::EBPF_OBJECT).map_err(SteerError::Load)?;
        let mode = attach_xdp(&mut ebpf, names::SINK_PROGRAM, ifname, mode)?;
        Ok(Sink {
            ebpf,
            ifname: ifname.to_string(),
            mode,
        })
    }

    /// The interface the sink is attached to.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// The mode it is attached in.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Reads the counters, summed over CPUs.
    pub fn counters(&self) -> Result<SinkCounters, SteerError> {
        let [frames, bytes] = per_cpu_sums(
            &self.ebpf,
            names::SINK_STATS_MAP,
            [names::SINK_STAT_FRAMES, names::SINK_STAT_BYTES],
        )?;
        Ok(SinkCounters { frames, bytes })
    }
}

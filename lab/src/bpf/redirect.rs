//! The in-kernel forwarder (`lab/ebpf/src/redirect.rs`): an XDP program on the ingress device
//! that writes fixed Ethernet addresses over every frame and redirects it to the egress device
//! through a one-slot DEVMAP. It is the pps harness's "kernel's own ceiling" DUT: what the
//! same links carry when nothing leaves the kernel. Dropping the [`Redirect`] detaches it.
//!
//! Which device needs what, for a DEVMAP redirect from one veth to another (kernel 6.18,
//! measured here and checked by `control/tests/gen.rs`): the egress veth transmits XDP frames
//! (`ndo_xdp_xmit`) only when *its peer* has an XDP program or GRO on, as for the generator
//! (docs/gen.md); only then does veth advertise NETDEV_XDP_ACT_NDO_XMIT on it. Otherwise every
//! redirect fails and the ingress veth counts the frame in `rx_queue_N_drops`. An XDP program
//! on the egress veth itself is not needed and does not help (measured: with a program there
//! and none on its peer, every frame was still dropped), so none is attached.
//!
//! In skb (generic) mode the redirect transmits an skb through the egress device's queue
//! instead: no `ndo_xdp_xmit`, none of its counters, and no program or GRO needed on the peer
//! (but the ingress veth then needs GRO on to take a generator's XDP frames).

use aya::maps::DevMap;
use aya::{Btf, EbpfLoader};
use xpe_dataplane::wire::ethernet::MacAddr;
use xpe_dataplane::xsk::netdev::Netdev;
use xpe_dataplane::xsk::steer::{Attached, Mode, SteerError};
use xpe_lab_ebpf as names;

/// What the forwarder counted, summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RedirectCounters {
    /// Frames rewritten and handed to `bpf_redirect_map` (what the egress device then took
    /// or refused is in its own counters, [`super::gen::xmit_counters`]).
    pub redirected: u64,
    /// Frames dropped for being shorter than an Ethernet header.
    pub too_short: u64,
    /// Frames dropped because the DEVMAP slot was empty (never expected).
    pub no_target: u64,
    /// Frames dropped because they were not addressed to the ingress device (with the
    /// destination check on).
    pub not_for_in: u64,
}

/// The forwarder attached to its ingress device; dropping it detaches it.
#[derive(Debug)]
pub struct Redirect {
    attached: Attached,
    out: String,
}

impl Redirect {
    /// Loads the forwarder to write `dst` and `src` as the Ethernet addresses of every frame
    /// arriving on `input` and redirect it to `output`, fills the DEVMAP, and attaches it to
    /// `input` in `mode` (with [`Mode::Auto`], native first, then skb). With `check_for`, it
    /// first drops every frame whose Ethernet destination is not that address (`input`'s).
    pub fn attach(
        input: &Netdev,
        output: &Netdev,
        dst: MacAddr,
        src: MacAddr,
        check_for: Option<MacAddr>,
        mode: Mode,
    ) -> Result<Redirect, SteerError> {
        let mut macs = [0u8; 12];
        macs[..6].copy_from_slice(&dst.0);
        macs[6..].copy_from_slice(&src.0);
        let mut check = [0u8; 8];
        if let Some(mac) = check_for {
            check[..6].copy_from_slice(&mac.0);
            check[6] = 1;
        }
        let mut ebpf = EbpfLoader::new()
            .btf(Btf::from_sys_fs().ok().as_ref())
            .override_global(names::REDIRECT_MACS_GLOBAL, &macs, true)
            .override_global(names::REDIRECT_CHECK_GLOBAL, &check, true)
            .load(super::EBPF_OBJECT)
            .map_err(SteerError::Load)?;
        {
            let map_err = |detail: String| SteerError::Map {
                map: names::REDIRECT_TX_MAP,
                detail,
            };
            let map = ebpf
                .map_mut(names::REDIRECT_TX_MAP)
                .ok_or_else(|| map_err("missing from the embedded object".into()))?;
            let mut tx = DevMap::try_from(map).map_err(|e| map_err(e.to_string()))?;
            // Filled before the program is attached, so no frame finds the slot empty.
            tx.set(names::REDIRECT_TX_SLOT, output.ifindex, None, 0)
                .map_err(|e| {
                    map_err(format!("{} (ifindex {}): {e}", output.name, output.ifindex))
                })?;
        }
        let attached = Attached::attach(ebpf, names::REDIRECT_PROGRAM, &input.name, mode)?;
        Ok(Redirect {
            attached,
            out: output.name.clone(),
        })
    }

    /// The ingress device.
    pub fn input(&self) -> &str {
        self.attached.ifname()
    }

    /// The egress device.
    pub fn output(&self) -> &str {
        &self.out
    }

    /// The mode the forwarder is attached in.
    pub fn mode(&self) -> Mode {
        self.attached.mode()
    }

    /// Reads the counters, summed over CPUs.
    pub fn counters(&self) -> Result<RedirectCounters, SteerError> {
        let [redirected, too_short, no_target, not_for_in] = self.attached.per_cpu_sums(
            names::REDIRECT_STATS_MAP,
            [
                names::REDIRECT_STAT_REDIRECTED,
                names::REDIRECT_STAT_TOO_SHORT,
                names::REDIRECT_STAT_NO_TARGET,
                names::REDIRECT_STAT_NOT_FOR_IN,
            ],
        )?;
        Ok(RedirectCounters {
            redirected,
            too_short,
            no_target,
            not_for_in,
        })
    }
}

//! The packet generator's kernel side: loads the generator's XDP program (`lab/ebpf/src/gen.rs`)
//! with a template's per-flow heads, runs it with BPF_PROG_TEST_RUN in live-frames mode
//! (BPF_F_TEST_XDP_LIVE_FRAMES, kernel 5.18 or later), and reads the counters that say what
//! happened to the frames: the program's own (frames it ran on) and the device's XDP transmit
//! counters (`xdp_xmit`, `xdp_xmit_errors` of a veth).
//!
//! One [`Generator::run`] is one `bpf(BPF_PROG_TEST_RUN)` call: the kernel builds a page pool
//! of `batch` pages holding the template, runs the program on up to `batch` frames at a time,
//! flushes the redirects (the veth's `ndo_xdp_xmit`, which on this path also runs the peer's
//! receive work on this CPU) and repeats until `frames` have run. aya 0.14 exposes the call
//! (`TestRun` with `TestRunAttrs::xdp_live_frames`), so no hand-written attr is needed here.
//!
//! Each call also costs whatever it takes to put the program into the kernel's XDP dispatcher
//! and out again (`bpf_prog_change_xdp`, done for every run with a repeat above 1): when the
//! program is attached to no device, both changes rewrite the dispatcher and wait for an RCU
//! grace period, about 23 ms a call measured here, whatever the frame count. A program that is
//! attached somewhere stays in the dispatcher and the change is a reference count: about 10 us
//! a call. So [`Generator::load`] attaches the program to the generator's own device in skb
//! (generic) mode, where it passes every frame the device receives (the test runs are told
//! apart by their ingress device, loopback); if that fails (the device has a native program,
//! say), runs still work but each costs the grace periods, see [`Generator::resident`].
//!
//! Two things the kernel does not report back, which the caller must check with the counters:
//! frames redirected to a veth whose peer has neither an XDP program nor GRO on vanish at the
//! flush (`veth_xdp_xmit` answers ENXIO to the devmap flush, which frees them and counts
//! nothing), and frames the peer's ring refuses are counted only as `xdp_xmit_errors`.

use std::io;
use std::process::Command;

use aya::maps::Array;
use aya::programs::{ProgramError, TestRun, TestRunAttrs, TestRunOptions, Xdp, XdpMode};
use aya::{Btf, Ebpf, EbpfLoader};
use xpe_dataplane::xsk::netdev::Netdev;
use xpe_lab_ebpf as names;

use crate::template::{Template, HEAD_MAX};

/// The largest batch live-frames mode takes (the kernel's TEST_XDP_MAX_BATCH).
pub const MAX_BATCH: u32 = 256;
/// The longest frame live-frames mode takes here: one 4 KiB page less 256 bytes of XDP
/// headroom, the kernel's per-page bookkeeping (two `struct xdp_buff`, 112 bytes on x86-64)
/// and the tailroom for `skb_shared_info` (320 bytes). The kernel refuses longer frames in
/// this mode ("disallow live data mode for jumbo frames", net/bpf/test_run.c) with EINVAL;
/// measured on this kernel (6.18, x86-64): 3408 bytes are taken, 3409 refused.
pub const MAX_LIVE_FRAME: usize = 3408;

/// Why the generator could not be loaded, run or read.
#[derive(Debug, thiserror::Error)]
pub enum GenError {
    /// The object file or its maps were refused by the kernel.
    #[error("cannot load the generator's XDP program into the kernel: {0} (needs root, or CAP_BPF and CAP_NET_ADMIN)")]
    Load(#[source] Box<aya::EbpfError>),
    /// The program is missing from the object or refused by the verifier.
    #[error("the generator's XDP program {}: {source}", names::GEN_PROGRAM)]
    Program {
        /// Why.
        #[source]
        source: ProgramError,
    },
    /// A map or the program's counters could not be written or read.
    #[error("generator map: {0}")]
    Map(String),
    /// BPF_PROG_TEST_RUN failed; [`GenError::errno`] tells why.
    #[error("BPF_PROG_TEST_RUN in live-frames mode failed: {0}")]
    Run(#[source] io::Error),
    /// The device's XDP transmit counters could not be read.
    #[error("cannot read the XDP transmit counters of {ifname}: {detail}")]
    Counters {
        /// Interface.
        ifname: String,
        /// Why.
        detail: String,
    },
}

impl GenError {
    /// The errno of a failed run.
    pub fn errno(&self) -> Option<i32> {
        match self {
            GenError::Run(e) => e.raw_os_error(),
            _ => None,
        }
    }

    /// A signal arrived during the run (the kernel stops a test run with EINTR).
    pub fn interrupted(&self) -> bool {
        self.errno() == Some(libc::EINTR)
    }
}

/// What the generator's program counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GenCounters {
    /// Frames it ran on (and redirected, less `unwritten`).
    pub frames: u64,
    /// Frames it dropped because their head could not be written (never expected).
    pub unwritten: u64,
}

/// A device's XDP transmit counters (`ethtool -S`), summed over its queues.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XmitCounters {
    /// Frames `ndo_xdp_xmit` took (for a veth: put on the peer's receive ring).
    pub xmit: u64,
    /// Frames `ndo_xdp_xmit` refused (for a veth: the peer's ring was full, or the frame was
    /// longer than the peer's MTU allows).
    pub errors: u64,
}

/// The generator's program loaded with one template, ready to run.
pub struct Generator {
    ebpf: Ebpf,
    frame: Vec<u8>,
    resident: Result<(), String>,
}

impl std::fmt::Debug for Generator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generator")
            .field("frame_len", &self.frame.len())
            .finish()
    }
}

impl Generator {
    /// Loads the program to send `template`'s flows out of `dev` (in this network namespace),
    /// with every flow's head in its map, and attaches it to `dev` in skb mode (where it
    /// passes every frame `dev` receives) so that runs stay cheap.
    pub fn load(dev: &Netdev, template: &Template) -> Result<Generator, GenError> {
        let ifindex = dev.ifindex;
        let flows = template.spec().flows;
        // Headers are at most HEAD_MAX (136) bytes: the cast cannot truncate.
        let head_len = template.header_len() as u32;
        let mut ebpf = EbpfLoader::new()
            .btf(Btf::from_sys_fs().ok().as_ref())
            .map_max_entries(names::GEN_HEADS_MAP, flows)
            .override_global(names::GEN_IFINDEX_GLOBAL, &ifindex, true)
            .override_global(names::GEN_FLOWS_GLOBAL, &flows, true)
            .override_global(names::GEN_HEAD_LEN_GLOBAL, &head_len, true)
            .load(super::EBPF_OBJECT)
            .map_err(|e| GenError::Load(Box::new(e)))?;
        {
            let map = ebpf
                .map_mut(names::GEN_HEADS_MAP)
                .ok_or_else(|| GenError::Map(format!("{} is missing", names::GEN_HEADS_MAP)))?;
            let mut heads: Array<_, [u8; HEAD_MAX]> =
                Array::try_from(map).map_err(|e| GenError::Map(e.to_string()))?;
            let mut head = [0u8; HEAD_MAX];
            for flow in 0..flows {
                template.write_head(flow, &mut head);
                heads
                    .set(flow, head, 0)
                    .map_err(|e| GenError::Map(format!("flow {flow}: {e}")))?;
            }
        }
        let program = program_mut(&mut ebpf)?;
        program
            .load()
            .map_err(|source| GenError::Program { source })?;
        // Kept in the kernel's XDP dispatcher for as long as we run (see the module docs);
        // aya detaches it when `ebpf` is dropped, the kernel when the process ends.
        let resident = match program.attach(&dev.name, XdpMode::Skb) {
            Ok(_) => Ok(()),
            Err(e) => Err(e.to_string()),
        };
        Ok(Generator {
            ebpf,
            frame: template.frame().to_vec(),
            resident,
        })
    }

    /// Whether the program could be attached to the device in skb mode, which keeps each run
    /// cheap; else why not (each run then costs an RCU grace period or two, about 20 ms here).
    pub fn resident(&self) -> Result<(), &str> {
        self.resident.as_ref().map(|_| ()).map_err(String::as_str)
    }

    /// Runs the program on `frames` frames (at least 1), `batch` (1..=[`MAX_BATCH`]) at a
    /// time; returns when they have all gone through the redirect, or with EINTR
    /// ([`GenError::interrupted`]) when a signal arrived first.
    pub fn run(&self, frames: u32, batch: u32) -> Result<(), GenError> {
        let program: &Xdp = self
            .ebpf
            .program(names::GEN_PROGRAM)
            .ok_or_else(|| GenError::Map(format!("{} is missing", names::GEN_PROGRAM)))?
            .try_into()
            .map_err(|source| GenError::Program { source })?;
        let opts = TestRunOptions {
            data_in: Some(&self.frame),
            // The kernel reads a repeat of 0 as 1.
            repeat: frames.max(1),
            attrs: TestRunAttrs::new().xdp_live_frames(batch),
            ..TestRunOptions::default()
        };
        match program.test_run(opts) {
            Ok(_) => Ok(()),
            Err(ProgramError::SyscallError(e)) => Err(GenError::Run(e.io_error)),
            Err(source) => Err(GenError::Program { source }),
        }
    }

    /// Reads the program's counters.
    pub fn counters(&self) -> Result<GenCounters, GenError> {
        let map = self
            .ebpf
            .map(names::GEN_STATS_MAP)
            .ok_or_else(|| GenError::Map(format!("{} is missing", names::GEN_STATS_MAP)))?;
        let stats: Array<_, u64> =
            Array::try_from(map).map_err(|e| GenError::Map(e.to_string()))?;
        let read = |i: u32| {
            stats
                .get(&i, 0)
                .map_err(|e| GenError::Map(format!("{}: {e}", names::GEN_STATS_MAP)))
        };
        Ok(GenCounters {
            frames: read(names::GEN_STAT_FRAMES)?,
            unwritten: read(names::GEN_STAT_UNWRITTEN)?,
        })
    }
}

fn program_mut(ebpf: &mut Ebpf) -> Result<&mut Xdp, GenError> {
    ebpf.program_mut(names::GEN_PROGRAM)
        .ok_or_else(|| GenError::Map(format!("{} is missing", names::GEN_PROGRAM)))?
        .try_into()
        .map_err(|source| GenError::Program { source })
}

/// Reads `ifname`'s XDP transmit counters with `ethtool -S`.
///
/// The ethtool binary rather than the ETHTOOL_GSTATS ioctl: the counters are found by name
/// (`tx_queue_N_xdp_xmit`, `tx_queue_N_xdp_xmit_errors`), which the ioctl would need a second
/// call (ETHTOOL_GSTRINGS) and hand-written structs to get; it needs no unsafe; and it is read
/// twice a run and once a second, where a fork costs nothing that shows.
pub fn xmit_counters(ifname: &str) -> Result<XmitCounters, GenError> {
    let fail = |detail: String| GenError::Counters {
        ifname: ifname.to_string(),
        detail,
    };
    let out = Command::new("ethtool")
        .args(["-S", ifname])
        .output()
        .map_err(|e| {
            fail(format!(
                "cannot run ethtool: {e} (scripts/setup.sh installs it)"
            ))
        })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(fail(format!("ethtool -S: {}", stderr.trim())));
    }
    parse_xmit_counters(&String::from_utf8_lossy(&out.stdout)).ok_or_else(|| {
        fail(
            "`ethtool -S` shows no tx_queue_N_xdp_xmit counters (xpe gen sends through a veth)"
                .into(),
        )
    })
}

/// Sums the `tx_queue_N_xdp_xmit` and `tx_queue_N_xdp_xmit_errors` lines of `ethtool -S`
/// output; `None` if there are none.
pub fn parse_xmit_counters(text: &str) -> Option<XmitCounters> {
    let mut found = false;
    let mut c = XmitCounters::default();
    for line in text.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        let Some(rest) = name.strip_prefix("tx_queue_") else {
            continue;
        };
        let Ok(value) = value.trim().parse::<u64>() else {
            continue;
        };
        if rest.ends_with("_xdp_xmit") {
            c.xmit += value;
            found = true;
        } else if rest.ends_with("_xdp_xmit_errors") {
            c.errors += value;
        }
    }
    found.then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xmit_counters_are_summed_over_queues() {
        let text = "NIC statistics:
     peer_ifindex: 45
     rx_queue_0_xdp_packets: 7
     rx_queue_0_xdp_tx_errors: 3
     tx_queue_0_xdp_xmit: 100
     tx_queue_0_xdp_xmit_errors: 2
     tx_queue_1_xdp_xmit: 50
     tx_queue_1_xdp_xmit_errors: 1
";
        assert_eq!(
            parse_xmit_counters(text),
            Some(XmitCounters {
                xmit: 150,
                errors: 3
            })
        );
        assert_eq!(
            parse_xmit_counters("NIC statistics:\n     rx_packets: 3\n"),
            None
        );
    }
}

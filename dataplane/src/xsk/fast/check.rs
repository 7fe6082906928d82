//! The differential check of the fast path against the pipeline, shared by the tests that run
//! frames through both (`dataplane/tests/fast_path.rs`, the tcpdump corpus, every replay case
//! of `tests/`): the program with BPF_PROG_TEST_RUN, the pipeline with `process`.
//!
//! Where the program forwards, its bytes must be the pipeline's and the pipeline must forward;
//! where it does not, it must hand the frame on unchanged; and `xpe trace`'s answer
//! ([`FastTables::path`]) must be the program's.

use super::{Buffers, FastPath, FastTables, FastVerdict};
use crate::pipeline::{process, Counters, Frame, NoTrace, Verdict};
use crate::tables::{PortId, Snapshot};

/// XDP_PASS: what the program returns for a frame it hands on (no socket is bound in a test
/// run, so the steering falls through to the kernel).
const XDP_PASS: u32 = 2;
/// XDP_REDIRECT: what it returns for a frame it forwards.
const XDP_REDIRECT: u32 = 4;
/// Loopback's interface index: the ingress of every test run.
const LO: u32 = 1;
/// Room in front of the pipeline's copy for a tag and the deepest push.
const HEADROOM: usize = 256;

/// What both paths did with a frame, when they agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agreed {
    /// The program forwarded it, with the pipeline's bytes, out of this port (the pipeline's
    /// egress, whose MAC is the frame's source).
    Kernel(PortId),
    /// The program handed it on unchanged.
    Workers,
    /// Not a frame a test run takes (under 14 bytes, or over a page, which the program
    /// leaves to the workers anyway).
    NotRun,
}

/// One fast path per port of a snapshot, each with that port as the ingress of test runs.
pub struct ByIngress {
    tables: FastTables,
    programs: Vec<(PortId, FastPath)>,
}

impl ByIngress {
    /// Loads the program's copy for `buffers` once per port of `snap`: that port on loopback,
    /// every other on a veth. The calling thread moves to a network namespace of its own first
    /// (`unshare`), where the veth is made, so nothing is left behind when the thread ends.
    /// Needs root.
    pub fn load(snap: &Snapshot, buffers: Buffers) -> Result<ByIngress, String> {
        ByIngress::load_tables(snap, FastTables::compile(snap), buffers)
    }

    /// [`ByIngress::load`] with `tables`, compiled from `snap` and changed (tests compare the
    /// shapes a table can take in the maps).
    #[doc(hidden)]
    pub fn load_tables(
        snap: &Snapshot,
        tables: FastTables,
        buffers: Buffers,
    ) -> Result<ByIngress, String> {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| format!("a network namespace of the test's own (needs root): {e}"))?;
        let made = std::process::Command::new("ip")
            .args([
                "link", "add", "xfck0", "type", "veth", "peer", "name", "xfck1",
            ])
            .status()
            .map_err(|e| format!("cannot run ip: {e}"))?;
        if !made.success() {
            return Err("cannot make a veth in the test's namespace".into());
        }
        // By ioctl in this thread's namespace: sysfs still shows the one it was mounted in.
        let veth = nix::net::if_::if_nametoindex("xfck0").map_err(|e| e.to_string())?;
        let ports: Vec<PortId> = (0..snap.ports().len() as u16).map(PortId).collect();
        let mut programs = Vec::new();
        for &ingress in &ports {
            let ifindex = ports
                .iter()
                .map(|p| if *p == ingress { LO } else { veth })
                .collect();
            let program = FastPath::load(ifindex, &tables, buffers)
                .map_err(|e| format!("the fast path (needs root): {e}"))?;
            programs.push((ingress, program));
        }
        Ok(ByIngress { tables, programs })
    }

    /// The program whose test runs come in on `ingress`.
    pub fn program(&self, ingress: PortId) -> Option<&FastPath> {
        self.programs
            .iter()
            .find(|(p, _)| *p == ingress)
            .map(|(_, program)| program)
    }

    /// Runs `bytes`, arriving on `ingress`, through both paths over `snap`: what both did, or
    /// `Err` saying how they disagree.
    pub fn agree(&self, snap: &Snapshot, ingress: PortId, bytes: &[u8]) -> Result<Agreed, String> {
        if bytes.len() < 14 || bytes.len() > 3400 {
            return Ok(Agreed::NotRun);
        }
        let Some(program) = self.program(ingress) else {
            return Err(format!("no port {}", ingress.0));
        };
        let (action, out) = program.test_run(bytes, LO).map_err(|e| e.to_string())?;
        let said = self.tables.path(snap, ingress, bytes);
        if matches!(said, FastVerdict::Kernel(_)) != (action == XDP_REDIRECT) {
            return Err(format!(
                "xpe trace says {said:?}, the program returned {action}"
            ));
        }
        let mut buf = vec![0u8; HEADROOM + bytes.len()];
        buf[HEADROOM..].copy_from_slice(bytes);
        let Some(mut frame) = Frame::new(&mut buf, HEADROOM, bytes.len()) else {
            return Err("the frame does not fit its buffer".into());
        };
        let mut counters = Counters::new(snap.ports().len());
        let verdict = process(snap, ingress, &mut frame, &mut counters, &mut NoTrace);
        match (action, verdict) {
            (XDP_REDIRECT, Verdict::Forward(egress)) => {
                if out != frame.data() {
                    Err(format!(
                        "the bytes differ: kernel {}, pipeline {}",
                        hex(&out),
                        hex(frame.data())
                    ))
                } else if out.get(6..12) != Some(&snap.port(egress).mac.0[..]) {
                    Err(format!(
                        "sent from a MAC that is not {}'s",
                        snap.port(egress).name
                    ))
                } else {
                    Ok(Agreed::Kernel(egress))
                }
            }
            (XDP_REDIRECT, _) => Err(format!(
                "forwarded in the kernel, but the pipeline says {verdict:?}"
            )),
            (XDP_PASS, _) if out != bytes => Err(format!("handed on changed: {}", hex(&out))),
            (XDP_PASS, _) => Ok(Agreed::Workers),
            (other, _) => Err(format!("XDP action {other}")),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

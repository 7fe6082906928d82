//! 802.1Q tagging for Linux lab and test hosts on a kernel without 802.1Q devices
//! (CONFIG_VLAN_8021Q off) or tc's act_vlan: [`attach`] puts the tc classifiers of
//! `lab/ebpf/src/hostvlan.rs` on an interface, so the host sends every untagged frame tagged with
//! one VLAN and receives that VLAN's frames untagged; [`remove`] takes them off again.
//!
//! The classifiers are attached through netlink, as `tc filter add ... bpf da` would, not as
//! TCX links: a netlink filter belongs to the interface's clsact qdisc and stays after this
//! process exits (a TCX link goes with its last file descriptor unless pinned), which is what
//! a one-shot `ip netns exec NS xpe host-vlan veth0 101` needs.

use std::io;
use std::process::Command;

use aya::programs::tc::{self, NlOptions, TcAttachOptions, TcError};
use aya::programs::{SchedClassifier, TcAttachType};
use aya::{Btf, EbpfLoader};
use xpe_dataplane::wire::vlan::{tci, Pcp, VlanId};
use xpe_lab_ebpf as names;

/// Linux's errno for "File exists", what netlink answers when the clsact qdisc is there.
const EEXIST: i32 = 17;

/// Why the tagging programs could not be attached or removed; every message names the
/// interface.
#[derive(Debug, thiserror::Error)]
pub enum HostVlanError {
    /// The VLAN id is 0, 4095 or wider than 12 bits.
    #[error("cannot tag {ifname} with VLAN {vid}: a VLAN id is 1..4094 (0 and 4095 are reserved)")]
    VlanId {
        /// Interface.
        ifname: String,
        /// The id asked for.
        vid: u16,
    },
    /// No interface of that name in this network namespace.
    #[error("no interface named {ifname} in this network namespace")]
    NoInterface {
        /// Interface.
        ifname: String,
    },
    /// A helper command (ethtool, tc) failed or could not be run.
    #[error("{ifname}: `{command}` failed: {detail}")]
    Command {
        /// Interface.
        ifname: String,
        /// The command line.
        command: String,
        /// Its error output, or why it could not be started.
        detail: String,
    },
    /// The clsact qdisc could not be added.
    #[error("cannot add the clsact qdisc to {ifname}: {source}")]
    Clsact {
        /// Interface.
        ifname: String,
        /// Why.
        #[source]
        source: TcError,
    },
    /// The object file or its maps were refused by the kernel.
    #[error("cannot load the tagging programs for {ifname}: {source} (needs root, or CAP_BPF and CAP_NET_ADMIN)")]
    Load {
        /// Interface.
        ifname: String,
        /// Why (boxed: the loader's error is large, and this one is rare).
        #[source]
        source: Box<aya::EbpfError>,
    },
    /// A program is missing, refused by the verifier, or could not be attached.
    #[error("{ifname}: tc program {program}: {detail}")]
    Program {
        /// Interface.
        ifname: String,
        /// Program name.
        program: &'static str,
        /// Why.
        detail: String,
    },
}

/// Tags `ifname`'s egress frames with VLAN `vid` (priority `pcp`) and strips that VLAN's tag
/// from its ingress frames, until [`remove`] or the interface goes away.
///
/// Turns the VLAN offloads off first, so the tag is in the frame's bytes on the wire and in
/// captures; replaces tagging programs an earlier call left on the interface. An invalid
/// `vid` or a missing interface changes nothing.
pub fn attach(ifname: &str, vid: u16, pcp: Pcp) -> Result<(), HostVlanError> {
    let vlan = VlanId::new(vid).ok_or_else(|| HostVlanError::VlanId {
        ifname: ifname.to_string(),
        vid,
    })?;
    require_interface(ifname)?;
    // The ethtool binary (scripts/setup.sh installs it) rather than the SIOCETHTOOL ioctl:
    // it needs no unsafe and reports errors in words.
    run(
        ifname,
        "ethtool",
        &["-K", ifname, "txvlan", "off", "rxvlan", "off"],
    )?;
    match tc::qdisc_add_clsact(ifname) {
        Ok(()) => {}
        // An earlier run's qdisc, or someone else's: ours go next to their filters.
        Err(TcError::NetlinkError(e)) if e.raw_os_error() == Some(EEXIST) => {}
        Err(source) => {
            return Err(HostVlanError::Clsact {
                ifname: ifname.to_string(),
                source,
            })
        }
    }

    let tci = tci(pcp, false, vlan);
    let mut ebpf = EbpfLoader::new()
        .btf(Btf::from_sys_fs().ok().as_ref())
        .override_global(names::HOST_VLAN_TCI_GLOBAL, &tci, true)
        .load(super::EBPF_OBJECT)
        .map_err(|source| HostVlanError::Load {
            ifname: ifname.to_string(),
            source: Box::new(source),
        })?;
    for (program, attach_type) in [
        (names::HOST_VLAN_PUSH_PROGRAM, TcAttachType::Egress),
        (names::HOST_VLAN_POP_PROGRAM, TcAttachType::Ingress),
    ] {
        let fail = |detail: String| HostVlanError::Program {
            ifname: ifname.to_string(),
            program,
            detail,
        };
        detach(ifname, attach_type, program)?;
        let classifier: &mut SchedClassifier = ebpf
            .program_mut(program)
            .ok_or_else(|| fail("missing from the embedded object".into()))?
            .try_into()
            .map_err(|e: aya::programs::ProgramError| fail(e.to_string()))?;
        classifier.load().map_err(|e| fail(e.to_string()))?;
        let link = classifier
            .attach_with_options(
                ifname,
                attach_type,
                TcAttachOptions::Netlink(NlOptions::default()),
            )
            .map_err(|e| fail(format!("cannot attach: {e}")))?;
        let link = classifier
            .take_link(link)
            .map_err(|e| fail(e.to_string()))?;
        // Dropping the link would delete the filter (aya detaches on drop); the filter is
        // meant to outlive this process. A netlink link is plain data (interface index,
        // priority, handle), so forgetting it leaks nothing; the kernel keeps the program
        // loaded for as long as the filter refers to it.
        std::mem::forget(link);
    }
    Ok(())
}

/// Takes the tagging programs off `ifname` by deleting its clsact qdisc, and with it every tc
/// filter on the interface (this is a lab host helper: the qdisc was added for the tagging).
/// Returns whether there was a clsact qdisc to delete.
pub fn remove(ifname: &str) -> Result<bool, HostVlanError> {
    require_interface(ifname)?;
    // The tc binary (iproute2): aya 0.14 can add a clsact qdisc but not delete one.
    let qdiscs = run(ifname, "tc", &["qdisc", "show", "dev", ifname])?;
    if !qdiscs.lines().any(|l| l.starts_with("qdisc clsact ")) {
        return Ok(false);
    }
    run(ifname, "tc", &["qdisc", "del", "dev", ifname, "clsact"])?;
    Ok(true)
}

/// Deletes the filters named `program` that an earlier [`attach`] left on `ifname`.
fn detach(
    ifname: &str,
    attach_type: TcAttachType,
    program: &'static str,
) -> Result<(), HostVlanError> {
    match tc::qdisc_detach_program(ifname, attach_type, program) {
        Ok(()) => Ok(()),
        Err(TcError::IoError(e)) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(HostVlanError::Program {
            ifname: ifname.to_string(),
            program,
            detail: format!("cannot remove the one attached before: {e}"),
        }),
    }
}

/// Fails with [`HostVlanError::NoInterface`] unless `ifname` exists in this thread's network
/// namespace (`/proc/thread-self/net` follows the calling thread's namespace, unlike a
/// `/sys` mounted for another one).
fn require_interface(ifname: &str) -> Result<(), HostVlanError> {
    const TABLE: &str = "/proc/thread-self/net/dev";
    let table = std::fs::read_to_string(TABLE).map_err(|e| HostVlanError::Command {
        ifname: ifname.to_string(),
        command: format!("read {TABLE}"),
        detail: e.to_string(),
    })?;
    // Two header lines, then "  name: counters..." per interface.
    let found = table
        .lines()
        .skip(2)
        .filter_map(|l| l.split_once(':'))
        .any(|(name, _)| name.trim() == ifname);
    if found {
        Ok(())
    } else {
        Err(HostVlanError::NoInterface {
            ifname: ifname.to_string(),
        })
    }
}

/// Runs a helper command about `ifname` and returns its standard output.
fn run(ifname: &str, cmd: &str, args: &[&str]) -> Result<String, HostVlanError> {
    let fail = |detail: String| HostVlanError::Command {
        ifname: ifname.to_string(),
        command: format!("{cmd} {}", args.join(" ")),
        detail,
    };
    let out = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| fail(format!("{e} (scripts/setup.sh installs {cmd})")))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(fail(format!("{} ({})", stderr.trim(), out.status)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

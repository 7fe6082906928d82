//! `xpe host-vlan`: a lab and test helper, not part of the router. It makes a Linux host in a
//! network namespace send and receive 802.1Q-tagged frames on one interface, on kernels
//! without 802.1Q devices (CONFIG_VLAN_8021Q off) or tc's act_vlan, by attaching xpe's tc
//! tagging programs ([`crate::bpf::hostvlan`]). Run it inside the host's namespace:
//!
//! ```sh
//! ip netns exec cust-a xpe host-vlan veth0 101        # tag egress, untag ingress, VLAN 101
//! ip netns exec cust-a xpe host-vlan veth0 --remove   # back to untagged
//! ```
//!
//! The programs stay attached after the command exits, until `--remove` or the interface goes.

use std::io::Write;

use clap::Args;
use xpe_dataplane::wire::vlan::Pcp;

use super::Failure;
use crate::bpf::hostvlan::{self, HostVlanError};

/// Arguments of `xpe host-vlan`.
#[derive(Debug, Args)]
pub struct HostVlanArgs {
    /// The host's interface (in the current network namespace).
    pub dev: String,
    /// The VLAN id to push on egress and pop on ingress (1-4094).
    #[arg(required_unless_present = "remove")]
    pub vid: Option<u16>,
    /// The 802.1p priority of the frames it tags (0-7).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=7), conflicts_with = "remove")]
    pub pcp: u8,
    /// Take the tagging programs off again (deletes the interface's clsact qdisc).
    #[arg(long, conflicts_with = "vid")]
    pub remove: bool,
}

/// Runs `xpe host-vlan` and prints one line saying what it did.
pub fn run(out: &mut dyn Write, args: &HostVlanArgs) -> Result<(), Failure> {
    let dev = &args.dev;
    let line = match args.vid {
        Some(vid) if !args.remove => {
            // The parser bounds --pcp to 0..=7.
            let pcp = Pcp::new(args.pcp).unwrap_or_default();
            hostvlan::attach(dev, vid, pcp).map_err(failure)?;
            format!(
                "{dev}: 802.1Q VLAN {vid} (PCP {pcp}) pushed on egress and popped on ingress; \
                 txvlan and rxvlan offloads off"
            )
        }
        _ => {
            if hostvlan::remove(dev).map_err(failure)? {
                format!("{dev}: clsact qdisc deleted, frames are no longer tagged")
            } else {
                format!("{dev}: no clsact qdisc, nothing to remove")
            }
        }
    };
    writeln!(out, "{line}").map_err(|e| Failure::new(format!("cannot write output: {e}")))
}

fn failure(e: HostVlanError) -> Failure {
    let hint = match e {
        HostVlanError::VlanId { .. } => "give a VLAN id from 1 to 4094",
        HostVlanError::NoInterface { .. } => {
            "run it inside the host's namespace: ip netns exec NS xpe host-vlan DEV VID"
        }
        _ => "run it as root; scripts/setup.sh installs ethtool and tc",
    };
    Failure::new(e.to_string()).hint(hint)
}

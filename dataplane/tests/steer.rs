//! The XDP steering program on a real kernel: attached in native mode to a veth this test
//! creates, it passes every frame to the kernel while no AF_XDP socket is bound (so the kernel
//! still answers pings), counts them, and is gone from the interface once dropped.
//!
//! Needs root (BPF and network namespaces). Without it the test fails and says so: it never
//! passes by skipping. Everything it creates is named `xst<pid>...` and removed on drop, also
//! when an assertion fails. Traffic: a bounded ping inside 198.18.99.0/30 on that veth pair.

use std::process::Command;

use xpe_dataplane::xsk::netdev::Netdev;
use xpe_dataplane::xsk::steer::{Mode, SteerError, Steering};
use xpe_dataplane::xsk::xdp_features::{xdp_features, XDP_ACT_NDO_XMIT};

mod common;
use common::run;

/// A network namespace and a veth pair: `host` in our namespace, `peer` in the namespace.
struct VethLab {
    ns: String,
    host: String,
    peer: String,
}

impl VethLab {
    /// `tag` tells apart the labs of tests running side by side.
    fn new(tag: &str) -> VethLab {
        let id = std::process::id();
        let lab = VethLab {
            ns: format!("xst{id}{tag}"),
            host: format!("xst{id}{tag}a"),
            peer: format!("xst{id}{tag}b"),
        };
        run("ip", &["netns", "add", &lab.ns]);
        run(
            "ip",
            &[
                "link", "add", &lab.host, "type", "veth", "peer", "name", &lab.peer, "netns",
                &lab.ns,
            ],
        );
        run("ip", &["addr", "add", "198.18.99.1/30", "dev", &lab.host]);
        run("ip", &["link", "set", &lab.host, "up"]);
        run(
            "ip",
            &[
                "-n",
                &lab.ns,
                "addr",
                "add",
                "198.18.99.2/30",
                "dev",
                &lab.peer,
            ],
        );
        run("ip", &["-n", &lab.ns, "link", "set", &lab.peer, "up"]);
        run("ip", &["-n", &lab.ns, "link", "set", "lo", "up"]);
        lab
    }

    /// Pings our end from the namespace: 3 echoes, bounded in time.
    fn ping(&self) -> bool {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns,
                "ping",
                "-c",
                "3",
                "-i",
                "0.2",
                "-W",
                "2",
                "198.18.99.1",
            ])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    fn xdp_attached(&self) -> bool {
        run("ip", &["-d", "link", "show", "dev", &self.host]).contains("prog/xdp")
    }
}

impl Drop for VethLab {
    fn drop(&mut self) {
        // Deleting one end of a veth pair deletes both.
        for (what, args) in [
            ("veth", vec!["link", "del", self.host.as_str()]),
            ("namespace", vec!["netns", "del", self.ns.as_str()]),
        ] {
            match Command::new("ip").args(&args).status() {
                Ok(s) if s.success() => {}
                other => {
                    eprintln!("steer test: could not remove {what} ({other:?}); remove it by hand")
                }
            }
        }
    }
}

fn require_root() {
    let uid = run("id", &["-u"]);
    assert_eq!(
        uid.trim(),
        "0",
        "this test loads XDP programs and creates network namespaces: run it as root"
    );
}

#[test]
fn passes_frames_to_the_kernel_until_a_socket_is_bound_and_detaches_on_drop() {
    require_root();
    let lab = VethLab::new("s");
    let steering = Steering::attach(&lab.host, Mode::Auto).expect("attach");
    assert_eq!(steering.mode(), Mode::Native, "veth supports native XDP");
    assert!(lab.xdp_attached());
    let pinged = lab.ping();
    assert!(pinged, "the kernel must still answer through XDP_PASS");
    let c = steering.counters().expect("counters");
    assert!(
        c.passed >= 3,
        "three echo requests (and ARP) passed, got {c:?}"
    );
    assert_eq!(c.redirected, 0, "no socket is bound");
    drop(steering);
    assert!(
        !lab.xdp_attached(),
        "dropping the Steering detaches the program"
    );
    assert!(lab.ping());
}

#[test]
fn a_missing_interface_is_a_clear_error() {
    require_root();
    let err = Steering::attach("xst-no-such", Mode::Auto).expect_err("no such interface");
    assert!(matches!(err, SteerError::Attach { .. }), "{err:?}");
    assert!(err.to_string().contains("xst-no-such"), "{err}");
}

#[test]
fn a_veth_takes_redirected_frames_only_while_its_peer_has_gro_or_xdp() {
    require_root();
    let lab = VethLab::new("f");
    let ifindex = Netdev::read(&lab.host).expect("our end").ifindex;
    let can_xmit = || xdp_features(ifindex).expect("xdp features") & XDP_ACT_NDO_XMIT != 0;
    assert!(!can_xmit(), "a veth whose peer has neither GRO nor XDP");
    run(
        "ip",
        &[
            "netns", "exec", &lab.ns, "ethtool", "-K", &lab.peer, "gro", "on",
        ],
    );
    assert!(can_xmit(), "its peer has GRO on");
    run(
        "ip",
        &[
            "netns", "exec", &lab.ns, "ethtool", "-K", &lab.peer, "gro", "off",
        ],
    );
    assert!(!can_xmit(), "GRO off again");
    let err = xdp_features(u32::MAX).expect_err("no such interface");
    assert!(err.to_string().contains("interface 4294967295"), "{err}");
}

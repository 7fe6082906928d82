//! The host 802.1Q tagging programs on a real kernel: two namespaces joined by a veth pair,
//! both ends tagged with VLAN 101 through `bpf::hostvlan::attach`, ping across; tshark inside
//! one namespace sees every echo request and reply carry an 802.1Q tag with VID 101 (and the
//! PCP each side asked for), and pings fail as soon as the two ends disagree on the tagging.
//!
//! `attach` works on the caller's network namespace, so the test runs it in a child: this
//! test binary itself, started with `ip netns exec NS` on the ignored [`namespace_helper`]
//! entry point. That child exits before any traffic flows, which also proves the programs
//! stay attached after the process that attached them is gone.
//!
//! Needs root (BPF and network namespaces). Without it the test fails and says so: it never
//! passes by skipping. Everything it creates is named `xhv<pid>...` and removed on drop, also
//! when an assertion fails. Traffic: bounded pings inside 198.18.98.0/30 on that veth pair.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use xpe_dataplane::wire::vlan::Pcp;
use xpe_lab::bpf::hostvlan::{self, HostVlanError};

/// Tells [`namespace_helper`] what to do: `attach IF VID PCP` or `remove IF`.
const HELPER_ENV: &str = "XPE_HOSTVLAN_TEST_HELPER";

mod common;
use common::run;

/// Two network namespaces, each a "host" with one end of a veth pair: `a` (198.18.98.1) and
/// `b` (198.18.98.2). Each namespace and its interface share a name.
struct HostPair {
    a: String,
    b: String,
}

impl HostPair {
    fn new() -> HostPair {
        let id = std::process::id();
        let pair = HostPair {
            a: format!("xhv{id}a"),
            b: format!("xhv{id}b"),
        };
        // Created one by one, so that a failure half-way leaves a guard that removes what
        // exists (Drop reports, and goes on past, what is missing).
        run("ip", &["netns", "add", &pair.a]);
        run("ip", &["netns", "add", &pair.b]);
        run(
            "ip",
            &[
                "link", "add", &pair.a, "netns", &pair.a, "type", "veth", "peer", "name", &pair.b,
                "netns", &pair.b,
            ],
        );
        for (ns, addr) in [(&pair.a, "198.18.98.1/30"), (&pair.b, "198.18.98.2/30")] {
            run("ip", &["-n", ns, "addr", "add", addr, "dev", ns]);
            run("ip", &["-n", ns, "link", "set", ns, "up"]);
            run("ip", &["-n", ns, "link", "set", "lo", "up"]);
        }
        pair
    }

    /// Runs `bpf::hostvlan` inside namespace `ns` on its veth end, through the helper.
    fn helper(&self, ns: &str, action: &str) {
        let exe = std::env::current_exe().expect("the test binary's path");
        let exe = exe.to_str().expect("a UTF-8 path");
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                ns,
                exe,
                "namespace_helper",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(HELPER_ENV, action)
            .output()
            .expect("cannot run the test binary in the namespace");
        assert!(
            out.status.success(),
            "helper `{action}` in {ns} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn attach(&self, ns: &str, vid: u16, pcp: u8) {
        self.helper(ns, &format!("attach {ns} {vid} {pcp}"));
    }

    fn remove(&self, ns: &str) {
        self.helper(ns, &format!("remove {ns}"));
    }

    /// Pings b from a: 3 echoes, bounded in time. Neighbour entries are flushed first, so a
    /// FAILED entry left by an earlier, deliberately broken, step cannot hold packets back.
    fn ping(&self) -> bool {
        for ns in [&self.a, &self.b] {
            run("ip", &["-n", ns, "neigh", "flush", "dev", ns]);
        }
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.a,
                "ping",
                "-c",
                "3",
                "-i",
                "0.2",
                "-W",
                "1",
                "198.18.98.2",
            ])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    /// Runs `tc -n NS ... dev NS ...` on namespace `ns`'s veth end.
    fn tc(&self, ns: &str, object: &str, direction: Option<&str>) -> String {
        let mut args = vec!["-n", ns, object, "show", "dev", ns];
        args.extend(direction);
        run("tc", &args)
    }
}

impl Drop for HostPair {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth end in it, and so the pair.
        for ns in [&self.a, &self.b] {
            match Command::new("ip").args(["netns", "del", ns]).status() {
                Ok(s) if s.success() => {}
                other => eprintln!(
                    "hostvlan test: could not remove namespace {ns} ({other:?}); remove it by hand"
                ),
            }
        }
    }
}

/// A tshark this test started; killed (by its own handle) if still running when dropped.
struct Capture {
    child: Child,
    /// Its standard error, read to the end by a thread so that tshark never blocks on it.
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Capture {
    /// Starts tshark on namespace `ns`'s veth for at most `seconds`, and returns once it is
    /// capturing. One line per frame: VLAN id, PCP, inner EtherType, ICMP type, IP source.
    fn start(ns: &str, seconds: u32) -> Capture {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, "tshark", "-n", "-i", ns, "-a"])
            .arg(format!("duration:{seconds}"))
            .args(["-T", "fields", "-E", "separator=,"])
            .args(["-e", "vlan.id", "-e", "vlan.priority", "-e", "vlan.etype"])
            .args(["-e", "icmp.type", "-e", "ip.src"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot run tshark (scripts/setup.sh installs it)");
        let stderr = child.stderr.take().expect("piped stderr");
        let (started, capturing) = mpsc::channel();
        let stderr = std::thread::spawn(move || {
            let mut said = String::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.starts_with("Capturing on") {
                    // The receiver is gone only if the test already failed.
                    started.send(()).ok();
                }
                said.push_str(&line);
                said.push('\n');
            }
            said
        });
        let mut capture = Capture {
            child,
            stderr: Some(stderr),
        };
        if capturing.recv().is_err() {
            let said = capture.stderr.take().map(|t| t.join().unwrap_or_default());
            panic!(
                "tshark did not start capturing:\n{}",
                said.unwrap_or_default()
            );
        }
        // tshark says "Capturing on" as dumpcap opens the interface, a moment before frames
        // reach it: without this pause the first echo was missed now and then.
        std::thread::sleep(std::time::Duration::from_secs(1));
        capture
    }

    /// Waits for the capture to end and returns its lines.
    fn lines(mut self) -> Vec<String> {
        let mut text = String::new();
        let mut stdout = self.child.stdout.take().expect("piped stdout");
        stdout.read_to_string(&mut text).expect("tshark's output");
        let status = self.child.wait().expect("tshark exit status");
        let said = self.stderr.take().map(|t| t.join().unwrap_or_default());
        assert!(
            status.success(),
            "tshark failed ({status}):\n{}",
            said.unwrap_or_default()
        );
        text.lines().map(str::to_string).collect()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            if let Err(e) = self.child.kill() {
                eprintln!("hostvlan test: could not stop tshark: {e}");
            }
            if let Err(e) = self.child.wait() {
                eprintln!("hostvlan test: could not reap tshark: {e}");
            }
        }
    }
}

fn require_root() {
    let uid = run("id", &["-u"]);
    assert_eq!(
        uid.trim(),
        "0",
        "this test loads tc programs and creates network namespaces: run it as root"
    );
}

/// Not a test: the entry point the tests run inside a namespace with `ip netns exec`, told
/// what to do through [`HELPER_ENV`]. Started without it (`cargo test -- --ignored`) it has
/// nothing to do.
#[test]
#[ignore = "helper run by the other tests inside a namespace"]
fn namespace_helper() {
    let Ok(action) = std::env::var(HELPER_ENV) else {
        return;
    };
    let words: Vec<&str> = action.split_whitespace().collect();
    match words[..] {
        ["attach", ifname, vid, pcp] => {
            let vid = vid.parse().expect("a VLAN id");
            let pcp = Pcp::new(pcp.parse().expect("a PCP")).expect("a PCP 0..=7");
            hostvlan::attach(ifname, vid, pcp).expect("attach");
        }
        ["remove", ifname] => {
            assert!(hostvlan::remove(ifname).expect("remove"), "nothing removed");
        }
        _ => panic!("unknown helper action {action:?}"),
    }
}

#[test]
fn tags_are_on_the_wire_and_both_ends_must_agree() {
    require_root();
    let hosts = HostPair::new();
    let (a, b) = (&hosts.a, &hosts.b);
    assert!(
        hosts.ping(),
        "untagged on both ends: the plain veth pair works"
    );

    hosts.attach(a, 101, 5);
    hosts.attach(b, 101, 0);
    // The helpers have exited: the filters are still there, offloads are off.
    for ns in [a, b] {
        let ingress = hosts.tc(ns, "filter", Some("ingress"));
        assert!(ingress.contains("xpe_vlan_pop direct-action"), "{ingress}");
        let egress = hosts.tc(ns, "filter", Some("egress"));
        assert!(egress.contains("xpe_vlan_push direct-action"), "{egress}");
        let features = run("ip", &["netns", "exec", ns, "ethtool", "-k", ns]);
        assert!(features.contains("tx-vlan-offload: off"), "{features}");
        assert!(features.contains("rx-vlan-offload: off"), "{features}");
    }

    let capture = Capture::start(b, 4);
    assert!(hosts.ping(), "both ends tag VLAN 101: ping works");
    let lines = capture.lines();
    // Every ICMP frame on b's wire is tagged: requests from a with a's PCP, replies from b
    // with b's. (ARP and IPv6 router solicitations may be there too, tagged as well.)
    let icmp: Vec<&String> = lines
        .iter()
        .filter(|l| l.ends_with(",198.18.98.1") || l.ends_with(",198.18.98.2"))
        .collect();
    let requests = icmp
        .iter()
        .filter(|l| l.as_str() == "101,5,0x0800,8,198.18.98.1")
        .count();
    let replies = icmp
        .iter()
        .filter(|l| l.as_str() == "101,0,0x0800,0,198.18.98.2")
        .count();
    assert_eq!(
        (requests, replies, icmp.len()),
        (3, 3, 6),
        "three tagged requests and three tagged replies, nothing else:\n{}",
        lines.join("\n")
    );
    for l in &lines {
        assert!(l.starts_with("101,"), "an untagged frame on the wire: {l}");
    }

    hosts.attach(b, 102, 0);
    assert!(
        !hosts.ping(),
        "a tags 101, b expects 102: b ignores a's frames"
    );
    hosts.remove(b);
    let qdiscs = hosts.tc(b, "qdisc", None);
    assert!(!qdiscs.contains("clsact"), "{qdiscs}");
    assert!(
        !hosts.ping(),
        "a tags 101, b does not: b ignores a's frames"
    );
    hosts.remove(a);
    assert!(hosts.ping(), "untagged on both ends again");
}

#[test]
fn vlan_ids_0_and_4095_are_clear_errors() {
    // Checked before anything is touched, so the interface need not exist.
    for vid in [0, 4095, 4096] {
        let err = hostvlan::attach("xhv-no-such", vid, Pcp::default()).expect_err("bad id");
        assert!(
            matches!(err, HostVlanError::VlanId { vid: v, .. } if v == vid),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains("xhv-no-such") && text.contains(&vid.to_string()),
            "{text}"
        );
        assert!(text.contains("1..4094"), "{text}");
    }
}

#[test]
fn a_missing_interface_is_a_clear_error() {
    let err = hostvlan::attach("xhv-no-such", 101, Pcp::default()).expect_err("no interface");
    assert!(matches!(err, HostVlanError::NoInterface { .. }), "{err:?}");
    assert!(err.to_string().contains("xhv-no-such"), "{err}");
    let err = hostvlan::remove("xhv-no-such").expect_err("no interface");
    assert!(matches!(err, HostVlanError::NoInterface { .. }), "{err:?}");
    assert!(err.to_string().contains("xhv-no-such"), "{err}");
}

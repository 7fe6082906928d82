//! IPv6 neighbour discovery on the live data plane (needs root, AF_XDP and BPF; it fails,
//! never skips, without them).
//!
//! Topology, every name prefixed with `xn<pid>` and removed on drop, also on panic:
//!
//! ```text
//!  h1 (VLAN 101, 2001:db8:a::2) ─┐
//!                                ├ sw ─ dx0 [pe]
//!  r1 (VLAN 102, 2001:db8:c::2) ─┘
//!      └ lo 2001:db8:b::1
//! ```
//!
//! One xpe (`pe`) with one VRF attached to dx0 on VLAN 101 (2001:db8:a::1/64) and VLAN 102
//! (2001:db8:c::1/64), and a route 2001:db8:b::/64 via r1's 2001:db8:c::2, which no static
//! neighbour resolves: only neighbour discovery can. The hosts tag with `xpe host-vlan` (tc
//! eBPF; no 802.1Q devices in this kernel); the kernels of pe's and sw's namespaces have IPv6
//! off, so every ND answer the hosts see comes from xpe.
//!
//! Checked, with exact counts: h1 pings the PE's global and link-local addresses on its VIF;
//! h1 pings r1's 2001:db8:b::1 through the PE, by the next hop learned from r1's
//! advertisement, which `show neighbors` then lists as learned, with r1's MAC.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use xpe_control::api::{NeighborState, Neighbors};
use xpe_control::ctl::{call, Request, What};

const XPE: &str = env!("CARGO_BIN_EXE_xpe");

mod common;
use common::{lab_dir, ns_sh, ns_try, ping_replies, remove_namespaces, sh, stop_child};

/// dx0's MAC in pe, and the link-local address it makes (RFC 4291 App. A: U/L bit flipped,
/// ff:fe in the middle), which xpe answers for.
const PE_MAC: &str = "02:00:00:00:01:02";
const PE_LINK_LOCAL: &str = "fe80::ff:fe00:102";
/// r1's MAC, which the PE must learn by neighbour discovery.
const R1_MAC: &str = "02:00:00:00:cc:02";

const CONFIG: &str = r#"
[router]
name = "nd-live"

[[interface]]
name = "dx0"
kind = "edge"

[[vrf]]
name = "vpc"

[[vrf.attachment]]
interface = "dx0"
vlan = 101
address6 = "2001:db8:a::1/64"

[[vrf.attachment]]
interface = "dx0"
vlan = 102
address6 = "2001:db8:c::1/64"

[[vrf.route]]
prefix = "2001:db8:b::/64"
via = "2001:db8:c::2"
"#;

/// The namespaces, links and the xpe process, all removed on drop.
struct Lab {
    prefix: String,
    namespaces: Vec<String>,
    pe: Option<Child>,
    dir: PathBuf,
}

impl Lab {
    fn new() -> Lab {
        let prefix = format!("xn{}", std::process::id());
        let dir = lab_dir(&prefix);
        Lab {
            prefix,
            namespaces: Vec::new(),
            pe: None,
            dir,
        }
    }

    fn ns(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    /// A namespace whose interfaces skip duplicate address detection (their addresses are
    /// usable at once), or, with `ipv6: false`, have no IPv6 at all.
    fn add_ns(&mut self, name: &str, ipv6: bool) {
        let ns = self.ns(name);
        sh(&["ip", "netns", "add", &ns]);
        self.namespaces.push(ns.clone());
        ns_sh(&ns, &["ip", "link", "set", "lo", "up"]);
        let setting = if ipv6 {
            "net.ipv6.conf.default.accept_dad=0"
        } else {
            "net.ipv6.conf.default.disable_ipv6=1"
        };
        ns_sh(&ns, &["sysctl", "-qw", setting]);
    }

    /// A veth pair `a_dev`@`a` (with MAC `a_mac`) <-> `b_dev`@`b`, both up, VLAN offloads off
    /// on both ends (the tags must be in the frame data wherever XDP or a bridge sees them).
    fn link(&self, a: &str, a_dev: &str, a_mac: &str, b: &str, b_dev: &str) {
        let (na, nb) = (self.ns(a), self.ns(b));
        sh(&[
            "ip", "link", "add", a_dev, "address", a_mac, "netns", &na, "type", "veth", "peer",
            "name", b_dev, "netns", &nb,
        ]);
        for (ns, dev) in [(&na, a_dev), (&nb, b_dev)] {
            ns_sh(
                ns,
                &["ethtool", "-K", dev, "rxvlan", "off", "txvlan", "off"],
            );
            ns_sh(ns, &["ip", "link", "set", dev, "up"]);
        }
    }

    /// A Linux host on a VLAN: its IPv6 address, VLAN tagging through `xpe host-vlan`, TX
    /// checksum offload off (docs/runtime.md).
    fn host(&self, name: &str, addr: &str, vid: u16) {
        let ns = self.ns(name);
        ns_sh(
            &ns,
            &["ip", "-6", "addr", "add", addr, "dev", "eth0", "nodad"],
        );
        ns_sh(&ns, &["ethtool", "-K", "eth0", "tx", "off"]);
        ns_sh(&ns, &[XPE, "host-vlan", "eth0", &vid.to_string()]);
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("pe.sock")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("pe.log")).unwrap_or_default()
    }

    /// Starts xpe in pe's namespace and waits until its control socket answers.
    fn start(&mut self) {
        let config = self.dir.join("pe.toml");
        std::fs::write(&config, CONFIG).expect("write the config");
        let log = std::fs::File::create(self.dir.join("pe.log")).expect("log file");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns("pe"), XPE, "run"])
            .arg(&config)
            .arg("--socket")
            .arg(self.socket())
            .args(["--netns-prefix", &format!("{}-", self.prefix)])
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start xpe");
        self.pe = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let show = Request::Show {
                what: What::Runtime,
                name: None,
                json: true,
            };
            if call(&self.socket(), &show).is_ok_and(|r| r.ok) {
                return;
            }
            if let Some(status) = self.pe.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("xpe exited with {status}: {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "xpe did not come up: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops xpe with SIGTERM and waits for it; returns its log.
    fn stop(&mut self) -> String {
        let mut child = self.pe.take().expect("xpe running");
        sh(&["kill", "-TERM", &child.id().to_string()]);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                assert!(status.success(), "xpe exited with {status}: {}", self.log());
                return self.log();
            }
            assert!(Instant::now() < deadline, "xpe did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Asks the running xpe; panics on refusal.
    fn ask(&self, what: What, json: bool) -> String {
        let request = Request::Show {
            what,
            name: None,
            json,
        };
        let r = call(&self.socket(), &request).unwrap_or_else(|f| panic!("{}", f.message));
        assert!(r.ok, "xpe refused {request:?}: {}", r.text);
        r.text
    }

    fn counters(&self) -> serde_json::Value {
        serde_json::from_str(&self.ask(What::Counters, true)).expect("counters JSON")
    }

    /// A bounded `ping -6` from a host namespace (more arguments before the destination);
    /// returns the number of replies.
    fn ping6(&self, host: &str, dst: &str, count: u32, extra: &[&str]) -> u32 {
        let count = count.to_string();
        let mut args = vec!["ping", "-6", "-q", "-c", &count, "-i", "0.05", "-W", "1"];
        args.extend_from_slice(extra);
        args.push(dst);
        let (_, out) = ns_try(&self.ns(host), &args);
        ping_replies(&out)
    }

    /// Pings until the first reply (the PE resolves the host and r1 once a second), bounded.
    fn converge(&self, host: &str, dst: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.ping6(host, dst, 1, &[]) == 0 {
            assert!(
                Instant::now() < deadline,
                "{host} never reached {dst}: {}\n{}",
                self.ask(What::Neighbors, false),
                self.ask(What::Counters, false)
            );
        }
    }

    /// ICMPv6 echo requests a host's kernel has received (`/proc/net/snmp6` of its namespace).
    fn echo6_requests_in(&self, host: &str) -> u64 {
        let snmp = ns_sh(&self.ns(host), &["cat", "/proc/net/snmp6"]);
        snmp.lines()
            .find_map(|l| l.strip_prefix("Icmp6InEchos"))
            .and_then(|v| v.trim().parse().ok())
            .expect("Icmp6InEchos")
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(child) = self.pe.take() {
            stop_child(child);
        }
        remove_namespaces(&mut self.namespaces, &format!("{}-", self.prefix));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The count of one counter of `show counters --json`.
fn count(c: &serde_json::Value, field: &str) -> u64 {
    c[field]
        .as_u64()
        .unwrap_or_else(|| panic!("no {field} in {c}"))
}

#[test]
fn ipv6_neighbour_discovery_between_namespaces() {
    let mut lab = Lab::new();
    // Only the hosts speak IPv6 by themselves: not pe's kernel, not the bridge.
    lab.add_ns("pe", false);
    lab.add_ns("sw", false);
    for ns in ["h1", "r1"] {
        lab.add_ns(ns, true);
    }
    lab.link("pe", "dx0", PE_MAC, "sw", "s0");
    lab.link("h1", "eth0", "02:00:00:00:aa:02", "sw", "s1");
    lab.link("r1", "eth0", R1_MAC, "sw", "s2");
    let sw = lab.ns("sw");
    ns_sh(&sw, &["ip", "link", "add", "br0", "type", "bridge"]);
    for p in ["s0", "s1", "s2"] {
        ns_sh(&sw, &["ip", "link", "set", p, "master", "br0"]);
    }
    ns_sh(&sw, &["ip", "link", "set", "br0", "up"]);
    lab.host("h1", "2001:db8:a::2/64", 101);
    ns_sh(
        &lab.ns("h1"),
        &[
            "ip",
            "-6",
            "route",
            "add",
            "default",
            "via",
            "2001:db8:a::1",
        ],
    );
    lab.host("r1", "2001:db8:c::2/64", 102);
    let r1 = lab.ns("r1");
    ns_sh(
        &r1,
        &["ip", "-6", "addr", "add", "2001:db8:b::1/128", "dev", "lo"],
    );
    ns_sh(
        &r1,
        &[
            "ip",
            "-6",
            "route",
            "add",
            "2001:db8:a::/64",
            "via",
            "2001:db8:c::1",
        ],
    );
    lab.start();

    // The PE's link-local address on the VIF: h1 finds it by a solicitation xpe answers, and
    // every echo request is answered in place, from the first.
    let before = lab.counters();
    let ll = format!("{PE_LINK_LOCAL}%eth0");
    assert_eq!(lab.ping6("h1", &ll, 5, &[]), 5, "{}", lab.log());
    let after = lab.counters();
    assert_eq!(
        count(&after, "echo6_replies") - count(&before, "echo6_replies"),
        5,
        "{after}"
    );
    assert!(count(&after, "nd_replies") >= 1, "{after}");

    // The PE's global address: the reply is routed, so it waits for h1 to be resolved (a
    // glean, then a solicitation from the PE); once it is, every request is answered.
    lab.converge("h1", "2001:db8:a::1");
    let before = lab.counters();
    assert_eq!(lab.ping6("h1", "2001:db8:a::1", 10, &[]), 10);
    let after = lab.counters();
    assert_eq!(
        count(&after, "echo6_replies") - count(&before, "echo6_replies"),
        10,
        "{after}"
    );

    // Through the PE to r1, by the next hop 2001:db8:c::2 that neighbour discovery resolves.
    lab.converge("h1", "2001:db8:b::1");
    let echos = lab.echo6_requests_in("r1");
    assert_eq!(lab.ping6("h1", "2001:db8:b::1", 20, &[]), 20);
    assert_eq!(
        lab.echo6_requests_in("r1") - echos,
        20,
        "r1's echo requests"
    );
    let neighbors: Neighbors =
        serde_json::from_str(&lab.ask(What::Neighbors, true)).expect("neighbors JSON");
    let r1_entry = neighbors
        .neighbors
        .iter()
        .find(|n| n.ip == "2001:db8:c::2")
        .unwrap_or_else(|| panic!("no 2001:db8:c::2 in {neighbors:?}"));
    assert_eq!(
        (
            r1_entry.attachment.as_str(),
            r1_entry.mac.as_deref(),
            r1_entry.state
        ),
        ("dx0.102", Some(R1_MAC), NeighborState::Learned),
        "{neighbors:?}"
    );
    let text = lab.ask(What::Neighbors, false);
    assert!(
        text.lines().any(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w == ["dx0.102", "2001:db8:c::2", R1_MAC, "learned"]
        }),
        "show neighbors:\n{text}"
    );
    let c = lab.counters();
    assert_eq!(c["drops"]["bad-nd"], 0, "{c}");
    assert!(count(&c, "arp_requests_sent") >= 1, "{c}");

    let log = lab.stop();
    assert!(log.contains("stopped"), "{log}");
}

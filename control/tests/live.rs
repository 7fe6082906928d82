//! The live data plane between Linux network namespaces (needs root, AF_XDP and BPF; it fails,
//! never skips, without them).
//!
//! Topology, every name prefixed with `xl<pid>` and removed on drop, also on panic:
//!
//! ```text
//!  h1a (VLAN 101) ─┐                                                    ┌─ h2a (VLAN 101)
//!  h1b (VLAN 102) ─┼ sw1 ─ dx0 [pe1] core0 ─ csw ─ c1 [p] c2 ─ core0 [pe2] dx0 ─ sw2 ┼─ h2b (VLAN 102)
//!  x1 (untagged) ──┘                                                    └─
//! ```
//!
//! Three xpe instances (pe1, p, pe2), two VRFs with the same prefixes (198.18.10.0/24 and
//! 198.18.20.0/24 in both), hosts tagging with `xpe host-vlan` (tc eBPF; no 802.1Q devices
//! in this kernel). `csw` is a plain Linux bridge on the pe1-p link where tshark sees the
//! label stacks (frames an XDP program redirects never reach a capture on that interface).
//! `x1` sends malformed frames onto pe1's customer segment.
//!
//! More tests run one router alone: jumbo frames through two workers, the control socket
//! with idle, malformed and oversized clients on it, route files, and label changes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use xpe_control::ctl::{call, Request, What};

const XPE: &str = env!("CARGO_BIN_EXE_xpe");

mod common;
use common::{lab_dir, ns_sh, ns_try, ping_replies, remove_namespaces, sh, snmp, stop_child};

/// The lab: namespaces, links and xpe processes, all removed on drop.
struct Lab {
    prefix: String,
    namespaces: Vec<String>,
    routers: BTreeMap<&'static str, Child>,
    /// Other daemons the test started (FRR's bgpd), ended before the namespaces go.
    daemons: Vec<Guard>,
    dir: PathBuf,
    /// `xpe run` arguments every router of this lab starts with (restarts too).
    run_args: Vec<&'static str>,
}

impl Lab {
    fn ns(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    fn add_ns(&mut self, name: &str) -> String {
        let ns = self.ns(name);
        sh(&["ip", "netns", "add", &ns]);
        self.namespaces.push(ns.clone());
        ns_sh(&ns, &["ip", "link", "set", "lo", "up"]);
        ns
    }

    /// A veth pair `a_dev`@`a` <-> `b_dev`@`b`, both up, VLAN offloads off on both ends (the
    /// tags must be in the frame data wherever XDP or a bridge sees them).
    fn link(&self, a: &str, a_dev: &str, b: &str, b_dev: &str) {
        self.link_queues(a, a_dev, b, b_dev, 1);
    }

    /// As [`Lab::link`], with `queues` RX and TX queues on both ends.
    fn link_queues(&self, a: &str, a_dev: &str, b: &str, b_dev: &str, queues: u32) {
        let (na, nb) = (self.ns(a), self.ns(b));
        let q = queues.to_string();
        sh(&[
            "ip",
            "link",
            "add",
            a_dev,
            "netns",
            &na,
            "numtxqueues",
            &q,
            "numrxqueues",
            &q,
            "type",
            "veth",
            "peer",
            "name",
            b_dev,
            "netns",
            &nb,
            "numtxqueues",
            &q,
            "numrxqueues",
            &q,
        ]);
        for (ns, dev) in [(&na, a_dev), (&nb, b_dev)] {
            ns_sh(
                ns,
                &["ethtool", "-K", dev, "rxvlan", "off", "txvlan", "off"],
            );
            ns_sh(ns, &["ip", "link", "set", dev, "up"]);
        }
    }

    /// A bridge `br0` in namespace `name` over `ports`.
    fn bridge(&self, name: &str, ports: &[&str]) {
        let ns = self.ns(name);
        ns_sh(&ns, &["ip", "link", "add", "br0", "type", "bridge"]);
        for p in ports {
            ns_sh(&ns, &["ip", "link", "set", p, "master", "br0"]);
        }
        ns_sh(&ns, &["ip", "link", "set", "br0", "up"]);
    }

    /// A Linux host: address, default route, VLAN tagging through `xpe host-vlan`, and TX
    /// checksum offload off, as docs/runtime.md tells users (else its TCP and UDP would
    /// cross xpe with unfinished checksums).
    fn host(&self, name: &str, dev: &str, addr: &str, gw: &str, vid: Option<u16>) {
        let ns = self.ns(name);
        ns_sh(&ns, &["ip", "addr", "add", addr, "dev", dev]);
        ns_sh(&ns, &["ip", "route", "add", "default", "via", gw]);
        ns_sh(&ns, &["ethtool", "-K", dev, "tx", "off"]);
        if let Some(vid) = vid {
            ns_sh(&ns, &[XPE, "host-vlan", dev, &vid.to_string()]);
        }
    }

    fn socket(&self, router: &str) -> PathBuf {
        self.dir.join(format!("{router}.sock"))
    }

    /// Starts xpe for `router` in its namespace and waits until its control socket answers.
    fn start(&mut self, router: &'static str) {
        self.start_with(router, &[]);
    }

    /// As [`Lab::start`], with more `xpe run` arguments.
    fn start_with(&mut self, router: &'static str, args: &[&str]) {
        let config =
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/live/{router}.toml"));
        let log = std::fs::File::create(self.dir.join(format!("{router}.log"))).expect("log file");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(router), XPE, "run"])
            .arg(&config)
            .arg("--socket")
            .arg(self.socket(router))
            // The mirror namespaces carry the lab's prefix, so tests side by side never meet.
            .args(["--netns-prefix", &format!("{}-", self.prefix)])
            .args(&self.run_args)
            .args(args)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start xpe");
        self.routers.insert(router, child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let show = Request::Show {
                what: What::Runtime,
                name: None,
                json: true,
            };
            if call(&self.socket(router), &show).is_ok_and(|r| r.ok) {
                return;
            }
            if let Some(status) = self
                .routers
                .get_mut(router)
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("xpe {router} exited with {status}: {}", self.log(router));
            }
            assert!(
                Instant::now() < deadline,
                "xpe {router} did not come up: {}",
                self.log(router)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log(&self, router: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{router}.log"))).unwrap_or_default()
    }

    /// Stops xpe for `router` with SIGTERM and waits for it; returns its log.
    fn stop(&mut self, router: &str) -> String {
        let mut child = self.routers.remove(router).expect("router running");
        sh(&["kill", "-TERM", &child.id().to_string()]);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                assert!(
                    status.success(),
                    "xpe {router} exited with {status}: {}",
                    self.log(router)
                );
                return self.log(router);
            }
            assert!(
                Instant::now() < deadline,
                "xpe {router} did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills xpe for `router` with SIGKILL, as a crash would, and reaps it.
    fn crash(&mut self, router: &str) {
        let mut child = self.routers.remove(router).expect("router running");
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
    }

    /// Asks a running instance; panics on refusal.
    fn ask(&self, router: &str, request: &Request) -> String {
        let r = call(&self.socket(router), request)
            .unwrap_or_else(|f| panic!("{router}: {}", f.message));
        assert!(r.ok, "{router} refused {request:?}: {}", r.text);
        r.text
    }

    fn counters(&self, router: &str) -> serde_json::Value {
        let text = self.ask(
            router,
            &Request::Show {
                what: What::Counters,
                name: None,
                json: true,
            },
        );
        serde_json::from_str(&text).expect("counters JSON")
    }

    /// A bounded ping from a host namespace; returns the number of replies.
    fn ping(&self, host: &str, dst: &str, count: u32, interval: &str) -> u32 {
        let (_, out) = ns_try(
            &self.ns(host),
            &[
                "ping",
                "-q",
                "-c",
                &count.to_string(),
                "-i",
                interval,
                "-W",
                "1",
                dst,
            ],
        );
        ping_replies(&out)
    }

    /// A bounded ping from a host namespace that runs while the test does something else;
    /// its summary comes back through `wait_with_output` on the guarded child.
    fn ping_in_background(&self, host: &str, dst: &str, count: u32, interval: &str) -> Guard {
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns(host),
                "ping",
                "-q",
                "-c",
                &count.to_string(),
            ])
            .args(["-i", interval, "-W", "1", dst])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("ping");
        scopeguard(child)
    }

    /// Every UMEM chunk of every worker of `router` is accounted for (free, on a fill or TX
    /// ring, or held as a piece of a multi-buffer frame).
    fn assert_ledger(&self, router: &str) {
        let show = Request::Show {
            what: What::Runtime,
            name: None,
            json: true,
        };
        let runtime: serde_json::Value =
            serde_json::from_str(&self.ask(router, &show)).expect("runtime JSON");
        for w in runtime["workers"].as_array().expect("workers") {
            assert_eq!(
                w["frames_accounted"], w["frames"],
                "{router}: UMEM chunks leaked: {runtime}"
            );
        }
    }

    /// ICMP echo requests a host's kernel has received (`/proc/net/snmp` of its namespace).
    fn echo_requests_in(&self, host: &str) -> u64 {
        snmp(&self.ns(host), "Icmp", "InEchos")
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.daemons.clear();
        for (_, child) in std::mem::take(&mut self.routers) {
            stop_child(child);
        }
        remove_namespaces(&mut self.namespaces, &format!("{}-", self.prefix));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Builds the topology and starts the three routers.
impl Lab {
    /// An empty lab named `xl<pid><tag>`; a tag used twice in one run is a bug in the tests
    /// (two labs would share, and remove, each other's namespaces).
    fn new(tag: &str) -> Lab {
        static TAGS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
        {
            let mut tags = TAGS.lock().unwrap_or_else(|p| p.into_inner());
            assert!(
                !tags.iter().any(|t| t == tag),
                "two labs with the tag {tag:?}"
            );
            tags.push(tag.to_string());
        }
        let prefix = format!("xl{}{tag}", std::process::id());
        let dir = lab_dir(&prefix);
        Lab {
            prefix,
            namespaces: Vec::new(),
            routers: BTreeMap::new(),
            daemons: Vec::new(),
            dir,
            run_args: Vec::new(),
        }
    }
}

/// The three routers between their hosts; `tag` tells the lab apart from others running at
/// the same time, and every router starts with `run_args`.
fn lab(tag: &str, run_args: &[&'static str]) -> Lab {
    let mut lab = Lab::new(tag);
    lab.run_args = run_args.to_vec();
    for ns in [
        "h1a", "h1b", "x1", "sw1", "pe1", "csw", "p", "pe2", "sw2", "h2a", "h2b",
    ] {
        lab.add_ns(ns);
    }
    lab.link("h1a", "eth0", "sw1", "s1a");
    lab.link("h1b", "eth0", "sw1", "s1b");
    lab.link("x1", "eth0", "sw1", "s1x");
    lab.link("sw1", "s1pe", "pe1", "dx0");
    lab.link("pe1", "core0", "csw", "cpe");
    lab.link("csw", "cp", "p", "c1");
    lab.link("p", "c2", "pe2", "core0");
    lab.link("pe2", "dx0", "sw2", "s2pe");
    lab.link("sw2", "s2a", "h2a", "eth0");
    lab.link("sw2", "s2b", "h2b", "eth0");
    lab.bridge("sw1", &["s1a", "s1b", "s1x", "s1pe"]);
    lab.bridge("csw", &["cpe", "cp"]);
    lab.bridge("sw2", &["s2a", "s2b", "s2pe"]);
    // The same addresses in both VPCs: only the VLAN (and so the VRF) tells them apart.
    lab.host("h1a", "eth0", "198.18.10.2/24", "198.18.10.1", Some(101));
    lab.host("h1b", "eth0", "198.18.10.2/24", "198.18.10.1", Some(102));
    lab.host("h2a", "eth0", "198.18.20.2/24", "198.18.20.1", Some(101));
    lab.host("h2b", "eth0", "198.18.20.2/24", "198.18.20.1", Some(102));
    // A kernel-only subnet on the pe1-p link: once xpe stops, pe1's kernel answers on it.
    ns_sh(
        &lab.ns("pe1"),
        &["ip", "addr", "add", "198.18.3.1/30", "dev", "core0"],
    );
    ns_sh(
        &lab.ns("csw"),
        &["ip", "addr", "add", "198.18.3.2/30", "dev", "br0"],
    );
    for r in ["p", "pe2", "pe1"] {
        lab.start(r);
    }
    lab
}

/// Pings until the first reply (ARP and glean resolution take a second or two), bounded.
fn converge(lab: &Lab, host: &str, dst: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while lab.ping(host, dst, 1, "0.2") == 0 {
        assert!(Instant::now() < deadline, "{host} never reached {dst}");
    }
}

#[test]
fn three_routers_between_namespaces() {
    three_routers(lab("", &[]));
}

/// The same test with every router on the XDP fast path: P's penultimate-hop pops toward pe2
/// are forwarded in the kernel (pe2's core0 has xpe's XDP program, so it takes redirected
/// frames), those toward pe1 go to P's worker (pe1's link ends at a bridge port without GRO,
/// which takes none), and everything else (the PEs' imposition and disposition, ARP, the
/// pings to xpe itself, the malformed frames) falls back to the workers with today's result.
#[test]
fn three_routers_with_the_xdp_fast_path() {
    let lab = lab("f", &["--fast-path", "xdp"]);
    converge(&lab, "h1a", "198.18.20.2");
    assert_eq!(lab.ping("h1a", "198.18.20.2", 20, "0.02"), 20, "vpc-a ping");
    let ask = |what: What| -> serde_json::Value {
        let text = lab.ask(
            "p",
            &Request::Show {
                what,
                name: None,
                json: true,
            },
        );
        serde_json::from_str(&text).expect("JSON")
    };
    let interfaces = ask(What::Interfaces);
    let egress = |name: &str| {
        interfaces["interfaces"]
            .as_array()
            .and_then(|a| a.iter().find(|i| i["interface"] == name))
            .map(|i| i["xdp_fast_egress"].clone())
    };
    assert_eq!(
        (egress("c1"), egress("c2")),
        (Some(false.into()), Some(true.into())),
        "P sends out of c2 (to pe2's XDP) but not c1 (to a bridge port): {interfaces}"
    );
    let counters = ask(What::Counters);
    let fast = &counters["fast_path"];
    assert_eq!(fast["live"], true, "{counters}");
    assert!(
        fast["forwarded"].as_u64() >= Some(20),
        "P forwarded the 20 echo requests toward pe2 in the kernel: {counters}"
    );
    three_routers(lab);
}

fn three_routers(mut lab: Lab) {
    // Both VPCs reach their own remote site, with the same addresses.
    converge(&lab, "h1a", "198.18.20.2");
    converge(&lab, "h1b", "198.18.20.2");
    // pe2 learned each host after a glean: a neighbour route in each VRF's RIB, a delta
    // through its own adjacency (no recompile).
    for vrf in ["vpc-a", "vpc-b"] {
        let answer = lab.ask(
            "pe2",
            &Request::Show {
                what: What::Vrf,
                name: Some(vrf.into()),
                json: true,
            },
        );
        let v: xpe_control::api::Vrf = serde_json::from_str(&answer).expect("vrf JSON");
        let host = v
            .routes
            .iter()
            .find(|r| r.prefix == "198.18.20.2/32")
            .unwrap_or_else(|| panic!("no learned host route in {vrf}: {answer}"));
        assert_eq!(
            (host.origin, host.action, host.mac.is_some()),
            (
                xpe_control::api::RouteOrigin::Neighbor,
                xpe_control::api::RouteAction::Forward,
                true
            ),
            "{host:?}"
        );
    }
    let (a0, b0) = (lab.echo_requests_in("h2a"), lab.echo_requests_in("h2b"));
    assert_eq!(lab.ping("h1a", "198.18.20.2", 20, "0.02"), 20, "vpc-a ping");
    let (a1, b1) = (lab.echo_requests_in("h2a"), lab.echo_requests_in("h2b"));
    assert_eq!(
        (a1 - a0, b1 - b0),
        (20, 0),
        "vpc-a's pings reached h2a only"
    );
    assert_eq!(lab.ping("h1b", "198.18.20.2", 20, "0.02"), 20, "vpc-b ping");
    let (a2, b2) = (lab.echo_requests_in("h2a"), lab.echo_requests_in("h2b"));
    assert_eq!(
        (a2 - a1, b2 - b1),
        (0, 20),
        "vpc-b's pings reached h2b only"
    );

    // xpe answers pings to its own attachment address (the pipeline's echo reply).
    assert_eq!(
        lab.ping("h1a", "198.18.10.1", 3, "0.05"),
        3,
        "echo reply from pe1"
    );

    // Per-label counters on P and pe2, per-VRF lookups on pe1 (40 pings each way so far,
    // plus the ones that converged).
    // `show counters --json` lists {"label": L, "packets": N} and {"vrf": V, "lookups": N}.
    let count =
        |c: &serde_json::Value, list: &str, key: &str, want: serde_json::Value, field: &str| {
            c[list]
                .as_array()
                .and_then(|a| a.iter().find(|e| e[key] == want))
                .and_then(|e| e[field].as_u64())
                .unwrap_or(0)
        };
    let label = |c: &serde_json::Value, l: u64| count(c, "labels", "label", l.into(), "packets");
    let vrf = |c: &serde_json::Value, v: &str| count(c, "vrfs", "vrf", v.into(), "lookups");
    let (p, pe1, pe2) = (lab.counters("p"), lab.counters("pe1"), lab.counters("pe2"));
    assert!(
        label(&p, 16002) >= 40 && label(&p, 16001) >= 40,
        "P's label counters: {p}"
    );
    assert!(
        label(&pe2, 2001) >= 20 && label(&pe2, 2002) >= 20,
        "pe2's label counters: {pe2}"
    );
    assert!(
        vrf(&pe1, "vpc-a") >= 40 && vrf(&pe1, "vpc-b") >= 40,
        "pe1's VRF counters: {pe1}"
    );

    check_label_stacks(&lab);
    hitless_update(&lab);
    malformed_burst(&lab);
    stop_and_restart(&mut lab);
}

/// tshark on the pe1-p bridge: echo requests carry [16002, VPN label] with S on the VPN
/// label, replies coming back carry only the VPN label of pe1 (P popped 16001: PHP).
fn check_label_stacks(lab: &Lab) {
    let pcap = lab.dir.join("core.pcap");
    let cap = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.ns("csw"),
            "tshark",
            "-i",
            "br0",
            "-a",
            "duration:12",
        ])
        .args(["-c", "20", "-w"])
        .arg(&pcap)
        .args(["-f", "mpls"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tshark");
    let mut cap = scopeguard(cap);
    // Wait until tshark says it captures (it takes seconds to start on a busy machine).
    let stderr = cap
        .0
        .as_mut()
        .and_then(|c| c.stderr.take())
        .expect("tshark stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("Capturing on") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(20))
        .expect("tshark did not start capturing");
    std::thread::sleep(Duration::from_millis(300));
    lab.ping("h1a", "198.18.20.2", 5, "0.05");
    lab.ping("h1b", "198.18.20.2", 5, "0.05");
    let status = cap
        .0
        .as_mut()
        .expect("capture")
        .wait()
        .expect("tshark wait");
    cap.0 = None;
    assert!(status.success(), "tshark capture failed");
    let decoded = sh(&[
        "tshark",
        "-r",
        pcap.to_str().expect("utf-8 path"),
        "-T",
        "fields",
        "-E",
        "separator=;",
        "-e",
        "mpls.label",
        "-e",
        "mpls.bottom",
        "-e",
        "icmp.type",
    ]);
    let rows: Vec<&str> = decoded.lines().collect();
    let count = |want: &str| rows.iter().filter(|r| **r == want).count();
    assert_eq!(
        count("16002,2001;0,1;8"),
        5,
        "vpc-a requests toward pe2:\n{decoded}"
    );
    assert_eq!(
        count("16002,2002;0,1;8"),
        5,
        "vpc-b requests toward pe2:\n{decoded}"
    );
    assert_eq!(count("1001;1;0"), 5, "vpc-a replies after PHP:\n{decoded}");
    assert_eq!(count("1002;1;0"), 5, "vpc-b replies after PHP:\n{decoded}");
}

/// A child process killed on drop (a capture that a failed assertion leaves running).
struct Guard(Option<Child>);
fn scopeguard(c: Child) -> Guard {
    Guard(Some(c))
}
impl Guard {
    /// Waits for the process and returns what it printed.
    fn finish(&mut self) -> String {
        let out = self
            .0
            .take()
            .expect("process")
            .wait_with_output()
            .expect("process output");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// 1000 changes on pe1 while pings flow through it: none lost.
fn hitless_update(lab: &Lab) {
    let mut pinger = lab.ping_in_background("h1a", "198.18.20.2", 400, "0.005");
    let t0 = Instant::now();
    for i in 0..1000u32 {
        let request = match i % 4 {
            // Routes come and go in the other VRF...
            0 => Request::RouteAdd {
                vrf: Some("vpc-b".into()),
                prefix: format!("198.19.{}.0/24", i / 4),
                via: "198.18.0.2".into(),
                labels: vec![16002, 2002],
            },
            1 => Request::RouteDel {
                vrf: Some("vpc-b".into()),
                prefix: format!("198.19.{}.0/24", i / 4),
            },
            // ...and the live route is replaced by an equal one.
            _ => Request::RouteAdd {
                vrf: Some("vpc-a".into()),
                prefix: "198.18.20.0/24".into(),
                via: "198.18.0.2".into(),
                labels: vec![16002, 2001],
            },
        };
        lab.ask("pe1", &request);
    }
    let took = t0.elapsed();
    let summary = pinger.finish();
    assert!(
        summary.contains("400 packets transmitted, 400 received"),
        "lost pings during 1000 updates ({took:?}):\n{summary}"
    );
    // An invalid change is refused and the tables stay.
    let r = call(
        &lab.socket("pe1"),
        &Request::RouteAdd {
            vrf: Some("vpc-a".into()),
            prefix: "198.18.20.0/24".into(),
            via: "203.0.113.9".into(),
            labels: vec![],
        },
    )
    .expect("control socket");
    assert!(!r.ok && r.text.contains("nothing applied"), "{}", r.text);
    assert_eq!(
        lab.ping("h1a", "198.18.20.2", 5, "0.05"),
        5,
        "forwarding after a refused change"
    );
    // A route removed stops the traffic (counted as no-route); put back, it flows again.
    let no_route = |c: &serde_json::Value| c["drops"]["no-route"].as_u64().unwrap_or(0);
    let before = no_route(&lab.counters("pe1"));
    lab.ask(
        "pe1",
        &Request::RouteDel {
            vrf: Some("vpc-a".into()),
            prefix: "198.18.20.0/24".into(),
        },
    );
    assert_eq!(
        lab.ping("h1a", "198.18.20.2", 2, "0.05"),
        0,
        "the route is gone"
    );
    assert!(no_route(&lab.counters("pe1")) >= before + 2);
    lab.ask(
        "pe1",
        &Request::RouteAdd {
            vrf: Some("vpc-a".into()),
            prefix: "198.18.20.0/24".into(),
            via: "198.18.0.2".into(),
            labels: vec![16002, 2001],
        },
    );
    assert_eq!(
        lab.ping("h1a", "198.18.20.2", 3, "0.05"),
        3,
        "the route is back"
    );
}

/// Malformed frames from x1 onto pe1's customer segment and from the core side: each is
/// counted under its reason, and pings keep flowing.
fn malformed_burst(lab: &Lab) {
    let before = lab.counters("pe1");
    let script = r#"
import sys
from scapy.all import Ether, Dot1Q, IP, UDP, Raw, sendp
from scapy.contrib.mpls import MPLS
dev, dst = sys.argv[1], sys.argv[2]
# An explicit source: with no route in this namespace scapy would send from 00:00:00:00:00:00,
# which a bridge drops.
src = open("/sys/class/net/%s/address" % dev).read().strip()
n = 500
good = IP(src="198.18.10.9", dst="198.18.20.2") / UDP(sport=1, dport=9)
frames = []
frames += [Ether(src=src, dst=dst) / Dot1Q(vlan=999) / good] * n                     # unknown VLAN
frames += [bytes(Ether(src=src, dst=dst) / Dot1Q(vlan=101) / good)[:24]] * n          # truncated IPv4
bad = IP(bytes(IP(src="198.18.10.9", dst="198.18.20.2", len=2000) / UDP()))
frames += [Ether(src=src, dst=dst) / Dot1Q(vlan=101, type=0x0800) / Raw(bytes(bad))] * n           # total length past the end
frames += [Ether(src=src, dst=dst) / Dot1Q(vlan=101) / IP(src="198.18.10.9", dst="198.18.20.2", chksum=0x1234) / UDP()] * n  # bad checksum
frames += [Ether(src=src, dst=dst) / Dot1Q(vlan=101, type=0x8847) / MPLS(label=1001, s=0) / Raw(b"x" * 40)] * n  # labels on an edge
sendp(frames, iface=dev, verbose=False)
"#;
    let pe1_mac = ns_sh(&lab.ns("pe1"), &["cat", "/sys/class/net/dx0/address"]);
    let mut pinger = lab.ping_in_background("h1b", "198.18.20.2", 100, "0.01");
    ns_sh(
        &lab.ns("x1"),
        &["/usr/bin/python3", "-c", script, "eth0", pe1_mac.trim()],
    );
    // Core side: a label stack with no bottom-of-stack entry, from P's side of the link.
    let core_script = r#"
import sys
from scapy.all import Ether, Raw, sendp
from scapy.contrib.mpls import MPLS
# 20 entries and none with the bottom-of-stack bit: deeper than the pipeline walks.
src = open("/sys/class/net/%s/address" % sys.argv[1]).read().strip()
sendp([Ether(src=src, dst=sys.argv[2]) / MPLS(label=1001, s=0, ttl=9) / Raw(b"\x00\x01\x40\x09" * 19)] * 500, iface=sys.argv[1], verbose=False)
"#;
    let core_mac = ns_sh(&lab.ns("pe1"), &["cat", "/sys/class/net/core0/address"]);
    ns_sh(
        &lab.ns("csw"),
        &[
            "/usr/bin/python3",
            "-c",
            core_script,
            "br0",
            core_mac.trim(),
        ],
    );
    let summary = pinger.finish();
    assert!(
        summary.contains("100 received"),
        "good traffic lost during the malformed burst:\n{summary}"
    );
    std::thread::sleep(Duration::from_millis(300));
    let after = lab.counters("pe1");
    let delta = |reason: &str| {
        after["drops"][reason].as_u64().unwrap_or(0) - before["drops"][reason].as_u64().unwrap_or(0)
    };
    assert_eq!(delta("unknown-vlan"), 500, "{after}");
    assert_eq!(delta("truncated"), 1000, "{after}");
    assert_eq!(delta("bad-ipv4-header"), 500, "{after}");
    assert_eq!(delta("mpls-on-edge"), 500, "{after}");
    assert_eq!(delta("bad-label-stack"), 500, "{after}");
    // The same drops by interface: dx0 (index 1) took the customer-side burst.
    let drops =
        |c: &serde_json::Value, i: usize| c["interfaces"][i]["rx_drops"].as_u64().unwrap_or(0);
    assert!(drops(&after, 1) - drops(&before, 1) >= 2500, "{after}");
    assert!(drops(&after, 0) - drops(&before, 0) >= 500, "{after}");
}

/// SIGTERM under traffic: exit 0, no XDP program left, the kernel answers on the interface
/// again; a restart forwards again, and the frame ledger of the stopped run added up.
fn stop_and_restart(lab: &mut Lab) {
    let mut pinger = lab.ping_in_background("h1a", "198.18.20.2", 100, "0.01");
    std::thread::sleep(Duration::from_millis(300));
    lab.assert_ledger("pe1");
    let log = lab.stop("pe1");
    assert!(log.contains("XDP detached"), "{log}");
    pinger.finish();
    let links = ns_sh(&lab.ns("pe1"), &["ip", "-d", "link", "show"]);
    assert!(
        !links.contains("prog/xdp"),
        "an XDP program is left attached:\n{links}"
    );
    assert!(
        !lab.socket("pe1").exists(),
        "the control socket is left behind"
    );
    // The kernel owns core0 again: it answers a ping to its own address there.
    let (ok, out) = ns_try(
        &lab.ns("csw"),
        &["ping", "-c", "2", "-W", "1", "198.18.3.1"],
    );
    assert!(ok, "the kernel does not answer after xpe stopped:\n{out}");
    lab.start("pe1");
    converge(lab, "h1a", "198.18.20.2");
    assert_eq!(
        lab.ping("h1a", "198.18.20.2", 10, "0.02"),
        10,
        "forwarding after a restart"
    );
    // A crash (SIGKILL) leaves neither the program (xpe attaches through a BPF link, which
    // the kernel removes with the process) nor anything that stops the next start.
    lab.crash("pe1");
    let links = ns_sh(&lab.ns("pe1"), &["ip", "-d", "link", "show"]);
    assert!(
        !links.contains("prog/xdp"),
        "a killed xpe left an XDP program:\n{links}"
    );
    lab.start("pe1");
    converge(lab, "h1a", "198.18.20.2");
    assert_eq!(
        lab.ping("h1a", "198.18.20.2", 10, "0.02"),
        10,
        "forwarding after a crash and a start"
    );
}

/// Jumbo frames (MTU 9000) through one PE with two workers on two-queue veths: frames
/// arrive in several AF_XDP descriptors (XDP_USE_SG), are forwarded whole, both workers
/// forward, and every UMEM chunk of both comes back.
#[test]
fn jumbo_frames_through_one_pe_with_two_workers() {
    let mut lab = Lab::new("j");
    for ns in ["a", "jumbo", "b"] {
        lab.add_ns(ns);
    }
    lab.link_queues("a", "eth0", "jumbo", "dx0", 2);
    lab.link_queues("jumbo", "dx1", "b", "eth0", 2);
    for (ns, dev) in [
        ("a", "eth0"),
        ("jumbo", "dx0"),
        ("jumbo", "dx1"),
        ("b", "eth0"),
    ] {
        ns_sh(&lab.ns(ns), &["ip", "link", "set", dev, "mtu", "9000"]);
    }
    lab.host("a", "eth0", "198.18.1.2/24", "198.18.1.1", None);
    lab.host("b", "eth0", "198.18.2.2/24", "198.18.2.1", None);
    lab.start_with("jumbo", &["--cores", "0,1"]);
    converge(&lab, "a", "198.18.2.2");
    let before = lab.counters("jumbo");
    // 8972 bytes of ICMP payload fill a 9000-byte IP packet; DF set, so nothing fragments.
    let (ok, out) = ns_try(
        &lab.ns("a"),
        &[
            "ping",
            "-c",
            "5",
            "-i",
            "0.05",
            "-W",
            "1",
            "-M",
            "do",
            "-s",
            "8972",
            "198.18.2.2",
        ],
    );
    assert!(ok && out.contains("5 received"), "jumbo pings:\n{out}");
    let after = lab.counters("jumbo");
    let rx = |c: &serde_json::Value, i: usize| c["interfaces"][i]["rx_bytes"].as_u64().unwrap_or(0);
    assert!(rx(&after, 0) - rx(&before, 0) >= 5 * 9014, "{after}");
    assert!(rx(&after, 1) - rx(&before, 1) >= 5 * 9014, "{after}");
    std::thread::sleep(Duration::from_millis(200));
    // UDP to 64 ports: the flows hash onto both TX queues of a's veth, so both RX queues of
    // dx0, and so both workers, see traffic.
    let flows = r#"
import socket
for port in range(2000, 2064):
    for _ in range(4):
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x" * 64, ("198.18.2.2", port))
"#;
    ns_sh(&lab.ns("a"), &["/usr/bin/python3", "-c", flows]);
    std::thread::sleep(Duration::from_millis(300));
    let runtime: serde_json::Value = serde_json::from_str(&lab.ask(
        "jumbo",
        &Request::Show {
            what: What::Runtime,
            name: None,
            json: true,
        },
    ))
    .expect("runtime JSON");
    let workers = runtime["workers"].as_array().expect("workers");
    assert_eq!(workers.len(), 2, "{runtime}");
    for w in workers {
        assert!(
            w["packets"].as_u64().unwrap_or(0) >= 10,
            "a worker saw no traffic: {runtime}"
        );
    }
    lab.assert_ledger("jumbo");
    let log = lab.stop("jumbo");
    assert!(log.contains("XDP detached"), "{log}");
}

/// Sends raw bytes to a control socket and returns everything it answers; the server may
/// close while the bytes are still going (a request too large), and may reset the
/// connection after its answer.
fn raw_request(socket: &Path, bytes: &[u8]) -> String {
    use std::io::{Read, Write};
    let mut c = std::os::unix::net::UnixStream::connect(socket).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    let _refused_while_writing = c.write_all(bytes);
    let _closed_already = c.shutdown(std::net::Shutdown::Write);
    let mut answer = Vec::new();
    let _reset_after_the_answer = c.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// One line of JSON that refuses; returns its text.
fn refusal(answer: &str) -> String {
    assert!(
        answer.ends_with('\n') && answer.trim_end().lines().count() == 1,
        "not one line: {answer:?}"
    );
    let r: xpe_control::ctl::Response = serde_json::from_str(answer).expect("a response");
    assert!(!r.ok, "{answer}");
    r.text
}

/// `xpe ARGS --socket SOCKET`; panics unless it succeeds; returns how long it took.
fn xpe_cli(socket: &Path, args: &[&str]) -> Duration {
    let t0 = Instant::now();
    let out = Command::new(XPE)
        .args(args)
        .arg("--socket")
        .arg(socket)
        .output()
        .expect("xpe");
    let took = t0.elapsed();
    assert!(
        out.status.success(),
        "xpe {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

/// A client that connects and sends nothing holds up no one: `xpe show counters` and
/// `xpe route add` answer in their normal time while it sits there, and it gets a one-line
/// refusal after 5 s of silence. Garbage and a request over 128 MiB get one line each, and
/// the daemon answers afterwards and stops cleanly.
#[test]
fn control_socket_serves_around_idle_and_bad_clients() {
    let mut lab = Lab::new("c");
    for ns in ["a", "ctl", "b"] {
        lab.add_ns(ns);
    }
    lab.link("a", "eth0", "ctl", "dx0");
    lab.link("ctl", "dx1", "b", "eth0");
    lab.start("ctl");
    let socket = lab.socket("ctl");

    let mut idle = std::os::unix::net::UnixStream::connect(&socket).expect("idle client");
    let connected = Instant::now();
    let show = xpe_cli(&socket, &["show", "counters"]);
    let add = xpe_cli(
        &socket,
        &[
            "route",
            "add",
            "198.19.1.0/24",
            "--via",
            "198.18.2.2",
            "--vrf",
            "v",
        ],
    );
    assert!(
        connected.elapsed() < Duration::from_secs(4),
        "the idle client was not idle long enough to matter"
    );
    assert!(
        show < Duration::from_secs(2) && add < Duration::from_secs(2),
        "with an idle client connected: show took {show:?}, route add {add:?}"
    );
    let routes = lab.ask(
        "ctl",
        &Request::Show {
            what: What::Vrf,
            name: Some("v".into()),
            json: true,
        },
    );
    let routes: xpe_control::api::Vrf = serde_json::from_str(&routes).expect("vrf JSON");
    let added = routes
        .routes
        .iter()
        .find(|r| r.prefix == "198.19.1.0/24")
        .expect("the route was added");
    assert_eq!(added.via.as_deref(), Some("198.18.2.2"), "{added:?}");

    // The idle client gets its refusal once its 5 s of silence are up.
    {
        use std::io::Read;
        idle.set_read_timeout(Some(Duration::from_secs(15)))
            .expect("read timeout");
        let mut answer = String::new();
        idle.read_to_string(&mut answer)
            .expect("the idle client's answer");
        let text = refusal(&answer);
        assert!(text.contains("nothing arrived for 5 s"), "{text}");
        assert!(connected.elapsed() >= Duration::from_millis(4900));
    }

    let garbage = refusal(&raw_request(&socket, b"GET / HTTP/1.0\r\n\r\n"));
    assert!(garbage.starts_with("not a valid request"), "{garbage}");
    let unknown = refusal(&raw_request(&socket, b"{\"op\":\"reboot\"}\n"));
    assert!(unknown.contains("unknown variant `reboot`"), "{unknown}");
    let oversized = vec![b' '; (128 << 20) + (1 << 20)];
    let too_large = refusal(&raw_request(&socket, &oversized));
    assert!(
        too_large.contains("larger than the control socket's limit of 128.0 MiB"),
        "{too_large}"
    );
    drop(oversized);

    // Still answering, and still changing tables.
    assert!(xpe_cli(&socket, &["show", "counters"]) < Duration::from_secs(2));
    xpe_cli(&socket, &["route", "del", "198.19.1.0/24", "--vrf", "v"]);
    let log = lab.stop("ctl");
    assert!(log.contains("XDP detached"), "{log}");
    assert!(!socket.exists(), "the control socket is left behind");
}

/// `xpe route load FILE` against the `ctl` router: (succeeded, stdout, stderr).
fn route_load(lab: &Lab, file: &Path) -> (bool, String, String) {
    let out = Command::new(XPE)
        .args(["route", "load"])
        .arg(file)
        .arg("--socket")
        .arg(lab.socket("ctl"))
        .output()
        .expect("xpe route load");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `xpe route load --stream -` against the `ctl` router with `input` on its standard input:
/// (succeeded, stdout, stderr).
fn route_stream(lab: &Lab, flags: &[&str], input: &str) -> (bool, String, String) {
    let mut child = Command::new(XPE)
        .args(["route", "load", "--stream", "-"])
        .args(flags)
        .arg("--socket")
        .arg(lab.socket("ctl"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("xpe route load --stream");
    let mut stdin = child.stdin.take().expect("stdin");
    std::io::Write::write_all(&mut stdin, input.as_bytes()).expect("write the stream");
    drop(stdin);
    let out = child.wait_with_output().expect("xpe route load --stream");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The prefixes of VRF `v` of the `ctl` router, as `show vrf --json` lists them.
fn ctl_prefixes(lab: &Lab) -> Vec<String> {
    let answer = lab.ask(
        "ctl",
        &Request::Show {
            what: What::Vrf,
            name: Some("v".into()),
            json: true,
        },
    );
    let vrf: xpe_control::api::Vrf = serde_json::from_str(&answer).expect("vrf JSON");
    vrf.routes.into_iter().map(|r| r.prefix).collect()
}

/// Route files: `xpe run --routes` applies one before forwarding, `xpe route load` applies one
/// to a running instance, and a file with a bad line is refused whole, each error naming its
/// line, with the running tables untouched; a bad file at start stops the start.
#[test]
fn route_files_apply_whole_or_not_at_all() {
    let mut lab = Lab::new("r");
    for ns in ["a", "ctl", "b"] {
        lab.add_ns(ns);
    }
    lab.link("a", "eth0", "ctl", "dx0");
    lab.link("ctl", "dx1", "b", "eth0");
    let start = lab.dir.join("start.routes");
    std::fs::write(
        &start,
        "# three routes\nv 198.19.1.0/24 via 198.18.2.2\nv 198.19.2.0/24 via 198.18.2.2\nv 203.0.113.0/25 via 198.18.1.2  # on the other side\n",
    )
    .expect("route file");

    // A start with a bad file fails, naming the line, and leaves nothing behind.
    let bad_start = lab.dir.join("bad-start.routes");
    std::fs::write(
        &bad_start,
        "v 198.19.1.0/24 via 198.18.2.2\nv 198.19.9.0/24 via 192.0.2.1\n",
    )
    .expect("route file");
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/live/ctl.toml");
    let failed = Command::new("ip")
        .args(["netns", "exec", &lab.ns("ctl"), XPE, "run"])
        .arg(&config)
        .arg("--socket")
        .arg(lab.socket("ctl"))
        .arg("--routes")
        .arg(&bad_start)
        .output()
        .expect("xpe run");
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success(), "{stderr}");
    assert!(
        stderr.contains("bad-start.routes:2: vrf \"v\" route 198.19.9.0/24: via 192.0.2.1 is not in any connected subnet of vrf \"v\""),
        "{stderr}"
    );
    assert!(
        !lab.socket("ctl").exists(),
        "a failed start leaves its socket"
    );

    lab.start_with("ctl", &["--routes", start.to_str().expect("path")]);
    assert!(
        lab.log("ctl").contains("3 added, 0 removed, in 1 VRF(s)"),
        "{}",
        lab.log("ctl")
    );
    let prefixes = ctl_prefixes(&lab);
    for p in ["198.19.1.0/24", "198.19.2.0/24", "203.0.113.0/25"] {
        assert!(prefixes.iter().any(|q| q == p), "{p} missing: {prefixes:?}");
    }
    let before = prefixes.len();

    // 1,000 more and one removed, in one load.
    let mut text = String::from("del v 198.19.2.0/24\n");
    for i in 0..1000u32 {
        text.push_str(&format!(
            "v 198.19.{}.{}/32 via 198.18.2.2\n",
            100 + i / 256,
            i % 256
        ));
    }
    let load = lab.dir.join("load.routes");
    std::fs::write(&load, &text).expect("route file");
    let (ok, said, err) = route_load(&lab, &load);
    assert!(ok, "{said}{err}");
    assert!(
        said.contains("1000 routes added or replaced, 1 removed, in 1 VRF(s)"),
        "{said}"
    );
    let after = ctl_prefixes(&lab);
    assert_eq!(after.len(), before + 1000 - 1);
    assert!(!after.iter().any(|p| p == "198.19.2.0/24"));

    // A file with bad lines: every one named, nothing applied.
    let bad = lab.dir.join("bad.routes");
    std::fs::write(
        &bad,
        "v 198.19.50.0/24 via 198.18.2.2\nv 198.19.51.1/24 via 198.18.2.2\nnowhere 198.19.52.0/24 via 198.18.2.2\nv 198.18.1.0/24 via 198.18.2.2\ndel v 198.19.53.0/24\n",
    )
    .expect("route file");
    let (ok, _, err) = route_load(&lab, &bad);
    assert!(!ok, "{err}");
    // The file's own syntax is checked first, with the line number...
    assert!(
        err.contains("bad.routes:2: prefix 198.19.51.1/24 has host bits set"),
        "{err}"
    );
    assert!(err.contains("nothing applied"), "{err}");
    // ...then, once it reads, every line against the running tables.
    let text = std::fs::read_to_string(&bad)
        .expect("read")
        .replace("198.19.51.1/24", "198.19.51.0/24");
    std::fs::write(&bad, text).expect("route file");
    let (ok, _, err) = route_load(&lab, &bad);
    assert!(!ok, "{err}");
    for expected in [
        "the change has 3 error(s)",
        "bad.routes:3: vrf \"nowhere\" route 198.19.52.0/24: no vrf named \"nowhere\"",
        "bad.routes:4: vrf \"v\" route 198.18.1.0/24: prefix 198.18.1.0/24 is already a connected subnet in this table",
        "bad.routes:5: vrf \"v\" route 198.19.53.0/24: there is no such static route",
        "nothing applied: the running tables are unchanged",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
    assert_eq!(
        ctl_prefixes(&lab),
        after,
        "a refused file changed the tables"
    );

    // A stream applies what comes before its first bad line, which it names, and stops there.
    let (ok, said, err) = route_stream(
        &lab,
        &[],
        "v 198.19.60.0/24 via 198.18.2.2\nv 198.19.61.0/24 via 198.18.2.2\n# a comment\nv 198.19.62.0/24 via 192.0.2.1\nv 198.19.63.0/24 via 198.18.2.2\n",
    );
    assert!(!ok, "{said}{err}");
    for expected in [
        "stdin:4: vrf \"v\" route 198.19.62.0/24: via 192.0.2.1 is not in any connected subnet",
        "stream stopped there; before it: 2 routes added or replaced, 0 removed",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
    let streamed = ctl_prefixes(&lab);
    assert!(streamed.iter().any(|p| p == "198.19.61.0/24"));
    assert!(!streamed.iter().any(|p| p == "198.19.63.0/24"));
    // A malformed line stops it the same way; a good stream ends with its totals.
    let (ok, _, err) = route_stream(
        &lab,
        &[],
        "del v 198.19.60.0/24\nv 198.19.64.0/33 via 198.18.2.2\n",
    );
    assert!(!ok && err.contains("stdin:2: "), "{err}");
    assert!(!ctl_prefixes(&lab).iter().any(|p| p == "198.19.60.0/24"));
    let (ok, said, err) = route_stream(
        &lab,
        &["--progress"],
        "del v 198.19.61.0/24\nv 198.19.65.0/24 via 198.18.2.2\n",
    );
    assert!(ok, "{err}");
    assert!(said.contains("through line 2: "), "{said}");
    assert!(
        said.contains("streamed stdin: 2 lines, 1 routes added or replaced, 1 removed"),
        "{said}"
    );
    let log = lab.stop("ctl");
    assert!(log.contains("XDP detached"), "{log}");
}

/// `show labels --json` of a running instance.
fn labels_of(lab: &Lab, router: &str) -> xpe_control::api::Labels {
    let answer = lab.ask(
        router,
        &Request::Show {
            what: What::Labels,
            name: None,
            json: true,
        },
    );
    serde_json::from_str(&answer).expect("labels JSON")
}

/// Every VRF's routes of a running instance, as `show vrf --json` lists them.
fn routes_of(lab: &Lab, router: &str, vrfs: &[&str]) -> Vec<xpe_control::api::Vrf> {
    vrfs.iter()
        .map(|vrf| {
            let answer = lab.ask(
                router,
                &Request::Show {
                    what: What::Vrf,
                    name: Some(vrf.to_string()),
                    json: true,
                },
            );
            serde_json::from_str(&answer).expect("vrf JSON")
        })
        .collect()
}

/// `xpe label add|del` on a running router are deltas: the answer says so, the entry is in
/// the table at once (its next hop resolved, as the neighbour was learned already), a bad
/// entry is refused as the config would refuse it, and the routes (1,000 of them from a
/// route file) are untouched throughout.
#[test]
fn label_changes_are_deltas_that_leave_the_routes_alone() {
    let mut lab = Lab::new("l");
    for ns in ["n", "lsr", "a"] {
        lab.add_ns(ns);
    }
    lab.link("n", "eth0", "lsr", "core0");
    lab.link("lsr", "dx0", "a", "eth0");
    // The core neighbour: a Linux host that answers xpe's ARP requests.
    lab.host("n", "eth0", "198.18.0.2/30", "198.18.0.1", None);
    let mut routes = String::new();
    for i in 0..1000u32 {
        routes.push_str(&format!(
            "v 198.20.{}.{}/32 via 198.18.0.2 labels 16001/2001\n",
            i / 256,
            i % 256
        ));
    }
    let file = lab.dir.join("lsr.routes");
    std::fs::write(&file, routes).expect("route file");
    lab.start_with("lsr", &["--routes", file.to_str().expect("path")]);

    // The transit entry's next hop resolves by ARP within a few seconds (the routes through
    // it show its MAC from then on).
    let deadline = Instant::now() + Duration::from_secs(15);
    let original = loop {
        let labels = labels_of(&lab, "lsr");
        let resolved = labels
            .labels
            .iter()
            .any(|e| e.in_label == 16001 && e.mac.is_some());
        if resolved {
            break labels;
        }
        assert!(
            Instant::now() < deadline,
            "198.18.0.2 never resolved: {labels:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let vrfs = ["global", "v"];
    let before = routes_of(&lab, "lsr", &vrfs);
    assert!(before[1].routes.len() > 1000, "{}", before[1].routes.len());
    let untouched = |what: &str| {
        let now = routes_of(&lab, "lsr", &vrfs);
        for (b, n) in before.iter().zip(&now) {
            let changed = b.routes.iter().zip(&n.routes).find(|(x, y)| x != y);
            assert!(
                b.routes.len() == n.routes.len() && changed.is_none(),
                "{what} changed vrf {}: {} routes, now {}; first change {changed:?}",
                b.vrf,
                b.routes.len(),
                n.routes.len()
            );
        }
        assert_eq!(now.len(), before.len());
    };

    let said = lab.ask(
        "lsr",
        &Request::LabelAdd {
            in_label: 16100,
            action: "swap".into(),
            out: vec![16101, 2001],
            via: "198.18.0.2".into(),
        },
    );
    assert!(
        said.starts_with(
            "applied: label 16100 added as a delta (routes untouched, no recompile); "
        ) && said.contains(" incoming labels; published in "),
        "{said}"
    );
    let added = labels_of(&lab, "lsr");
    let entry = added
        .labels
        .iter()
        .find(|e| e.in_label == 16100)
        .unwrap_or_else(|| panic!("16100 missing: {added:?}"));
    assert_eq!(
        (
            entry.action,
            entry.out.as_slice(),
            entry.via.as_deref(),
            entry.mac.is_some()
        ),
        (
            xpe_control::api::LabelAction::Swap,
            &[16101, 2001][..],
            Some("198.18.0.2"),
            true
        ),
        "{entry:?}"
    );
    assert_eq!(added.labels.len(), original.labels.len() + 1);
    untouched("label add");

    let said = lab.ask(
        "lsr",
        &Request::LabelAdd {
            in_label: 16100,
            action: "pop".into(),
            out: vec![],
            via: "198.18.0.2".into(),
        },
    );
    assert!(
        said.starts_with("applied: label 16100 replaced as a delta"),
        "{said}"
    );

    // Refused as a config's entry would be, and nothing changes.
    for (request, expected) in [
        (
            Request::LabelAdd {
                in_label: 16200,
                action: "pop".into(),
                out: vec![],
                via: "203.0.113.1".into(),
            },
            "label entry 3 (in 16200): via 203.0.113.1 is not in any core interface's subnet",
        ),
        (
            Request::LabelAdd {
                in_label: 1001,
                action: "pop".into(),
                out: vec![],
                via: "198.18.0.2".into(),
            },
            "label 1001: duplicate in-label 1001 used by vrf \"v\" and label entry 3",
        ),
        (
            Request::LabelDel { in_label: 16200 },
            "there is no label entry for in-label 16200",
        ),
    ] {
        let r = call(&lab.socket("lsr"), &request).expect("control socket");
        assert!(!r.ok, "{request:?} was applied: {}", r.text);
        assert!(
            r.text.contains(expected) && r.text.contains("nothing applied"),
            "{request:?}: {}",
            r.text
        );
    }
    let replaced = labels_of(&lab, "lsr");
    assert_eq!(replaced.labels.len(), added.labels.len());

    let said = lab.ask("lsr", &Request::LabelDel { in_label: 16100 });
    assert!(
        said.starts_with("applied: label 16100 removed as a delta"),
        "{said}"
    );
    assert_eq!(labels_of(&lab, "lsr"), original);
    untouched("label add, replace and del");
    let log = lab.stop("lsr");
    assert!(log.contains("XDP detached"), "{log}");
}

/// A TCP server for the mirror test, run in a namespace: listens on ADDR:PORT, prints
/// "ready", then for one connection answers every line with `TAG LINE`, until EOF.
const LINE_SERVER: &str = r#"
import socket, sys
addr, port, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((addr, port)); s.listen(1); s.settimeout(30)
print("ready", flush=True)
c, _ = s.accept(); c.settimeout(30); f = c.makefile("rwb")
for line in f:
    f.write(tag.encode() + b" " + line); f.flush()
"#;

/// The client: connects from source port SPORT, sends a line every INTERVAL seconds for
/// SECONDS, and prints "TAG REPLIES MAXGAP" (the server's tag, replies received, and the
/// longest time between two replies).
const LINE_CLIENT: &str = r#"
import socket, sys, time
addr, port, sport, interval, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
s = socket.create_connection((addr, port), timeout=5, source_address=("", sport))
f = s.makefile("rwb"); tag, n, gap, last, end = "-", 0, 0.0, time.time(), time.time() + seconds
while True:
    f.write(b"hello\n"); f.flush()
    reply = f.readline().split()
    if not reply:
        sys.exit(f"the server closed the session after {n} replies, {time.time() - last:.3f} s after the last")
    tag = reply[0].decode(); n += 1
    now = time.time(); gap = max(gap, now - last); last = now
    if now >= end:
        break
    time.sleep(interval)
print(tag, n, round(gap, 3))
"#;

const PYTHON: &str = "/usr/bin/python3";

impl Lab {
    /// Starts LINE_SERVER in namespace `ns` (a full name) and waits until it listens.
    fn line_server(&self, ns: &str, addr: &str, port: u16, tag: &str) -> Guard {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, PYTHON, "-c", LINE_SERVER, addr])
            .args([&port.to_string(), tag])
            .stdout(Stdio::piped())
            .stderr(
                std::fs::File::create(self.dir.join(format!("server-{tag}-{port}.log")))
                    .expect("log"),
            )
            .spawn()
            .expect("server");
        let mut ready = String::new();
        let stdout = child.stdout.take().expect("stdout");
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut ready)
            .expect("server output");
        assert_eq!(ready.trim(), "ready", "the server in {ns} did not start");
        scopeguard(child)
    }

    /// Runs LINE_CLIENT in host `host`; returns (tag, replies, longest gap in seconds).
    fn line_client(
        &self,
        host: &str,
        addr: &str,
        sport: u16,
        interval: f64,
        seconds: f64,
    ) -> (String, u32, f64) {
        let out = ns_sh(
            &self.ns(host),
            &[
                "timeout",
                "60",
                PYTHON,
                "-c",
                LINE_CLIENT,
                addr,
                "179",
                &sport.to_string(),
                &interval.to_string(),
                &seconds.to_string(),
            ],
        );
        let f: Vec<&str> = out.split_whitespace().collect();
        assert_eq!(f.len(), 3, "client output: {out}");
        (
            f[0].to_string(),
            f[1].parse().expect("replies"),
            f[2].parse().expect("gap"),
        )
    }

    /// `show interfaces --json` of a router.
    fn interfaces(&self, router: &str) -> xpe_control::api::Interfaces {
        let text = self.ask(
            router,
            &Request::Show {
                what: What::Interfaces,
                name: None,
                json: true,
            },
        );
        serde_json::from_str(&text).expect("interfaces JSON")
    }

    /// Whether device `dev` exists in namespace `ns` (a full name).
    fn has_device(&self, ns: &str, dev: &str) -> bool {
        Command::new("ip")
            .args(["-n", ns, "link", "show", "dev", dev])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

/// The PE's kernel through its mirrors:
///
/// ```text
///  h1a (VLAN 101) ─┐
///  h1b (VLAN 102) ─┼ sw ─ dx0 [mpe] core0 ─ c1 [mp] c2 ─ c (198.18.5.2)
///  f1 (flood) ─────┘
/// ```
///
/// Two VRFs with the same VIF address (169.254.10.1/30) get their own namespaces; TCP
/// sessions from h1a and h1b reach each VRF's kernel, and each session is seen on its own
/// mirror only. Host c reaches the router address two hops away through an xpe LSR. A UDP
/// flood at the VIF address is policed under `other` while a session keeps talking. Stop
/// and SIGKILL leave no mirror behind, and a restart makes them again.
#[test]
fn mirrors_carry_the_pe_kernels_sessions() {
    let mut lab = Lab::new("m");
    for ns in ["h1a", "h1b", "f1", "sw", "mpe", "mp", "c"] {
        lab.add_ns(ns);
    }
    lab.link("h1a", "eth0", "sw", "sa");
    lab.link("h1b", "eth0", "sw", "sb");
    lab.link("f1", "eth0", "sw", "sf");
    lab.link("sw", "spe", "mpe", "dx0");
    lab.link("mpe", "core0", "mp", "c1");
    lab.link("mp", "c2", "c", "eth0");
    lab.bridge("sw", &["sa", "sb", "sf", "spe"]);
    // The generator's XDP frames reach the bridge only through GRO on the veth's far end.
    ns_sh(&lab.ns("sw"), &["ethtool", "-K", "sf", "gro", "on"]);
    lab.host("h1a", "eth0", "169.254.10.2/30", "169.254.10.1", Some(101));
    lab.host("h1b", "eth0", "169.254.10.2/30", "169.254.10.1", Some(102));
    lab.host("c", "eth0", "198.18.5.2/24", "198.18.5.1", None);
    lab.start("mp");
    let (vpc_a, vpc_b, router) = (lab.ns("mpe-vpc-a"), lab.ns("mpe-vpc-b"), lab.ns("mpe"));

    // A device already named like a mirror: one sentence naming it, and nothing made.
    sh(&["ip", "netns", "add", &vpc_b]);
    let clash = [
        "ip", "link", "add", "dx0.102", "type", "veth", "peer", "name", "other",
    ];
    ns_sh(&vpc_b, &clash);
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/live/mpe.toml");
    let refused = Command::new("ip")
        .args(["netns", "exec", &router, XPE, "run"])
        .arg(&config)
        .arg("--socket")
        .arg(lab.socket("mpe"))
        .args(["--netns-prefix", &format!("{}-", lab.prefix)])
        .output()
        .expect("xpe run");
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success(),
        "xpe ran over a clashing device: {said}"
    );
    assert!(
        said.contains(&format!(
            "cannot create mirror dx0.102 in namespace {vpc_b}: a device named dx0.102 already exists there"
        )),
        "{said}"
    );
    assert!(
        !lab.has_device(&router, "cp-core0"),
        "a mirror was left behind"
    );
    assert!(
        !Path::new("/run/netns").join(&vpc_a).exists(),
        "a namespace was left behind"
    );
    sh(&["ip", "netns", "del", &vpc_b]);
    lab.start("mpe");

    // The mirrors, where the config says, with the attachments' addresses.
    let mirrors = lab.interfaces("mpe").mirrors;
    let listed: Vec<(String, Option<String>, String, Option<String>)> = mirrors
        .iter()
        .map(|m| {
            (
                m.name.clone(),
                m.namespace.clone(),
                m.mirrors.clone(),
                m.address.clone(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (
                "cp-core0".into(),
                None,
                "core0".into(),
                Some("198.18.0.1/30".into())
            ),
            (
                "dx0.101".into(),
                Some(vpc_a.clone()),
                "dx0.101".into(),
                Some("169.254.10.1/30".into())
            ),
            (
                "dx0.102".into(),
                Some(vpc_b.clone()),
                "dx0.102".into(),
                Some("169.254.10.1/30".into())
            ),
            (
                "xpe-lo".into(),
                None,
                "router-address".into(),
                Some("198.18.255.1/32".into())
            ),
        ]
    );
    assert!(lab.has_device(&vpc_a, "dx0.101") && lab.has_device(&vpc_b, "dx0.102"));
    assert!(lab.has_device(&router, "cp-core0") && lab.has_device(&router, "xpe-lo"));

    // TCP from each VLAN to the PE's VIF address reaches that VRF's kernel, and is seen on
    // that VRF's mirror only (a capture on each mirror, by the clients' source ports).
    let captures: Vec<(PathBuf, Child)> = [(&vpc_a, "dx0.101"), (&vpc_b, "dx0.102")]
        .iter()
        .map(|(ns, dev)| {
            let file = lab.dir.join(format!("{dev}.pcapng"));
            let child = Command::new("ip")
                .args(["netns", "exec", ns, "dumpcap", "-q", "-i", dev])
                .args(["-f", "tcp port 179", "-a", "duration:20", "-w"])
                .arg(&file)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("dumpcap");
            (file, child)
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    converge(&lab, "h1a", "169.254.10.1");
    converge(&lab, "h1b", "169.254.10.1");
    {
        let _a = lab.line_server(&vpc_a, "169.254.10.1", 179, "vpc-a");
        let _b = lab.line_server(&vpc_b, "169.254.10.1", 179, "vpc-b");
        assert_eq!(
            lab.line_client("h1a", "169.254.10.1", 40101, 0.05, 0.5).0,
            "vpc-a"
        );
        assert_eq!(
            lab.line_client("h1b", "169.254.10.1", 40102, 0.05, 0.5).0,
            "vpc-b"
        );
    }
    std::thread::sleep(Duration::from_secs(1));
    for (file, mut child) in captures {
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        child.wait().expect("dumpcap");
        let ports = sh(&[
            "tshark",
            "-r",
            file.to_str().expect("path"),
            "-T",
            "fields",
            "-e",
            "tcp.srcport",
            "-e",
            "tcp.dstport",
        ]);
        let ours = if file.ends_with("dx0.101.pcapng") {
            "40101"
        } else {
            "40102"
        };
        let lines: Vec<&str> = ports.lines().collect();
        assert!(
            lines.len() >= 6,
            "{}: too few segments: {ports}",
            file.display()
        );
        for l in &lines {
            assert!(
                l.split_whitespace().any(|p| p == ours),
                "{}: a segment of another session: {l}",
                file.display()
            );
        }
    }

    // The router address, two hops away through the LSR, from a Linux host.
    converge(&lab, "c", "198.18.255.1");
    {
        let _r = lab.line_server(&router, "198.18.255.1", 179, "router");
        let (tag, n, _) = lab.line_client("c", "198.18.255.1", 40200, 0.05, 0.5);
        assert_eq!((tag.as_str(), n >= 5), ("router", true));
    }

    // A UDP flood at the VIF address of vpc-b while a session in vpc-a keeps talking: the
    // flood's excess is dropped under `other`, what passes reaches vpc-b's kernel, exactly.
    let before = lab.counters("mpe");
    let no_ports_before = snmp(&vpc_b, "Udp", "NoPorts");
    let dx0_mac = ns_sh(&router, &["cat", "/sys/class/net/dx0/address"]);
    let session = {
        let _a = lab.line_server(&vpc_a, "169.254.10.1", 179, "vpc-a");
        let client = {
            let host = lab.ns("h1a");
            std::thread::spawn(move || {
                ns_sh(
                    &host,
                    &[
                        "timeout",
                        "60",
                        PYTHON,
                        "-c",
                        LINE_CLIENT,
                        "169.254.10.1",
                        "179",
                        "40103",
                        "1",
                        "6",
                    ],
                )
            })
        };
        std::thread::sleep(Duration::from_millis(1500));
        let flood = ns_sh(
            &lab.ns("f1"),
            &[
                XPE,
                "gen",
                "--dev",
                "eth0",
                "--src",
                "169.254.10.2",
                "--dst",
                "169.254.10.1",
                "--dst-mac",
                dx0_mac.trim(),
                "--vlan",
                "102",
                "--dport",
                "9",
                "--duration",
                "2",
                "--json",
            ],
        );
        let flood: serde_json::Value = serde_json::from_str(&flood).expect("gen JSON");
        assert!(flood["sent"].as_u64().unwrap_or(0) > 100_000, "{flood}");
        client.join().expect("client")
    };
    std::thread::sleep(Duration::from_millis(500));
    let after = lab.counters("mpe");
    let no_ports = snmp(&vpc_b, "Udp", "NoPorts") - no_ports_before;
    let class = |c: &serde_json::Value, k: &str, f: &str| c["policed"][k][f].as_u64().expect("n");
    let passed = class(&after, "other", "passed") - class(&before, "other", "passed");
    let dropped = class(&after, "other", "dropped") - class(&before, "other", "dropped");
    eprintln!(
        "flood: other passed {passed}, dropped {dropped}; vpc-b's kernel got {no_ports}; session {}",
        session.trim()
    );
    let f: Vec<&str> = session.split_whitespace().collect();
    assert_eq!(f.first(), Some(&"vpc-a"), "session: {session}");
    let gap: f64 = f[2].parse().expect("gap");
    assert!(gap < 3.0, "the session stalled {gap} s under the flood");
    assert!(
        dropped > 10_000,
        "the flood was not policed: {dropped} dropped"
    );
    // 1000/s with a bucket of 100, over the 2 s flood and the settling time.
    assert!((100..=100 + 1000 * 4).contains(&passed), "{passed} passed");
    assert_eq!(
        after["punt_queue_full"], before["punt_queue_full"],
        "the policed rate never fills the queue"
    );
    assert_eq!(
        no_ports, passed,
        "vpc-b's kernel got every datagram policing let pass"
    );

    // Stop: no mirror left, and the namespaces xpe made are gone. A restart makes them again;
    // a SIGKILL leaves no device either (TAP devices die with their descriptor).
    let log = lab.stop("mpe");
    assert!(log.contains("XDP detached"), "{log}");
    assert!(!lab.has_device(&router, "cp-core0") && !lab.has_device(&router, "xpe-lo"));
    assert!(
        !Path::new("/run/netns").join(&vpc_a).exists(),
        "{vpc_a} left behind"
    );
    lab.start("mpe");
    assert!(lab.has_device(&vpc_a, "dx0.101") && lab.has_device(&router, "cp-core0"));
    lab.crash("mpe");
    std::thread::sleep(Duration::from_millis(300));
    assert!(!lab.has_device(&vpc_a, "dx0.101") && !lab.has_device(&vpc_b, "dx0.102"));
    assert!(!lab.has_device(&router, "cp-core0") && !lab.has_device(&router, "xpe-lo"));
    lab.start("mpe");
    assert!(lab.has_device(&vpc_b, "dx0.102"));
    converge(&lab, "h1b", "169.254.10.1");
    let _b = lab.line_server(&vpc_b, "169.254.10.1", 179, "vpc-b");
    assert_eq!(
        lab.line_client("h1b", "169.254.10.1", 40104, 0.05, 0.3).0,
        "vpc-b"
    );
}

// ------------------------------------------------------------------------------------------
// BGP/MPLS IP VPNs through GoBGP (docs/bgp.md)
// ------------------------------------------------------------------------------------------

/// The FRR route reflector of the BGP test: iBGP with both PEs' router addresses, VPNv4 and
/// VPNv6, both PEs its clients.
const RR_CONF: &str = "frr defaults traditional
hostname rr
router bgp 65000
 bgp router-id 198.18.0.3
 no bgp default ipv4-unicast
 neighbor 198.51.100.1 remote-as 65000
 neighbor 198.51.100.2 remote-as 65000
 address-family ipv4 vpn
  neighbor 198.51.100.1 activate
  neighbor 198.51.100.1 route-reflector-client
  neighbor 198.51.100.2 activate
  neighbor 198.51.100.2 route-reflector-client
 exit-address-family
 address-family ipv6 vpn
  neighbor 198.51.100.1 activate
  neighbor 198.51.100.1 route-reflector-client
  neighbor 198.51.100.2 activate
  neighbor 198.51.100.2 route-reflector-client
 exit-address-family
";

/// An FRR CE: eBGP to its PE at `pe`, announcing `network`.
fn ce_conf(
    name: &str,
    asn: u32,
    id: &str,
    pe: &str,
    password: Option<&str>,
    network: &str,
) -> String {
    let password = password
        .map(|p| format!(" neighbor {pe} password {p}\n"))
        .unwrap_or_default();
    format!(
        "frr defaults traditional
hostname {name}
router bgp {asn}
 bgp router-id {id}
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor {pe} remote-as 65000
{password} address-family ipv4 unicast
  network {network}
 exit-address-family
"
    )
}

impl Lab {
    /// The core of the BGP tests: each PE's `core0` and the route reflector on bridge `w`
    /// (198.18.0.0/29: PE n at .n, the reflector at .3, reaching PE n's router address
    /// 198.51.100.n through it), the MACs the PEs' configs name on `core0` and on `edges`
    /// (02:00:00:00:bN:01, then :02 ...), and the reflector's FRR.
    fn bgp_core(&mut self, pes: [&str; 2], edges: &[&str]) {
        self.link(pes[0], "core0", "w", "w1");
        self.link(pes[1], "core0", "w", "w2");
        self.link("rr", "eth0", "w", "w3");
        self.bridge("w", &["w1", "w2", "w3"]);
        for (n, pe) in pes.iter().enumerate() {
            for (i, dev) in std::iter::once(&"core0").chain(edges).enumerate() {
                let mac = format!("02:00:00:00:b{}:{:02}", n + 1, i + 1);
                ns_sh(
                    &self.ns(pe),
                    &["ip", "link", "set", "dev", dev, "address", &mac],
                );
            }
        }
        let rr = self.ns("rr");
        ns_sh(&rr, &["ip", "addr", "add", "198.18.0.3/29", "dev", "eth0"]);
        ns_sh(&rr, &["ethtool", "-K", "eth0", "tx", "off"]);
        for (pe, core) in [
            ("198.51.100.1", "198.18.0.1"),
            ("198.51.100.2", "198.18.0.2"),
        ] {
            ns_sh(&rr, &["ip", "route", "add", pe, "via", core]);
        }
        self.frr("rr", RR_CONF);
    }

    /// Starts both PEs, then waits (90 s at most each) until every session is up and each
    /// VRF has `routes` BGP routes installed.
    fn start_bgp_pes(&mut self, pes: [&'static str; 2], routes: u64) {
        for pe in pes {
            self.start(pe);
        }
        for pe in pes {
            wait_for(90, &format!("{pe}: BGP did not converge"), || {
                bgp_converged(&self.bgp(pe), routes)
            });
        }
    }

    /// dumpcap on the core bridge for at most `secs`, into `name` in the test's directory:
    /// every BGP UPDATE and labelled frame, from before the PEs start.
    fn capture_core(&self, name: &str, secs: u32) -> (PathBuf, Guard) {
        let pcap = self.dir.join(name);
        let capture = Command::new("ip")
            .args(["netns", "exec", &self.ns("w"), "dumpcap", "-q", "-i", "br0"])
            .args([
                "-f",
                "tcp port 179 or mpls",
                "-a",
                &format!("duration:{secs}"),
            ])
            .arg("-w")
            .arg(&pcap)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dumpcap");
        let guard = scopeguard(capture);
        std::thread::sleep(Duration::from_secs(2));
        (pcap, guard)
    }

    /// FRR's bgpd in namespace `name` with `conf`, without zebra (this kernel has no MPLS or
    /// VRFs for it, and the routes it learns stay in BGP); its vty is `vtysh(name, ..)`.
    fn frr(&mut self, name: &str, conf: &str) {
        let dir = self.dir.join(format!("frr-{name}"));
        std::fs::create_dir_all(&dir).expect("frr dir");
        std::fs::write(dir.join("bgpd.conf"), conf).expect("frr conf");
        let log = std::fs::File::create(dir.join("log")).expect("frr log");
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns(name),
                "/usr/lib/frr/bgpd",
                "-Z",
                "-S",
            ])
            .arg("-f")
            .arg(dir.join("bgpd.conf"))
            .arg("-i")
            .arg(dir.join("bgpd.pid"))
            .arg("--vty_socket")
            .arg(&dir)
            .args(["-P", "0"])
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("FRR bgpd (scripts/setup.sh installs frr)");
        self.daemons.push(scopeguard(child));
    }

    /// Runs vtysh commands against the FRR of `name`.
    fn vtysh(&self, name: &str, commands: &[&str]) -> String {
        let mut cmd = Command::new("vtysh");
        cmd.arg("--vty_socket")
            .arg(self.dir.join(format!("frr-{name}")));
        for c in commands {
            cmd.args(["-c", c]);
        }
        let out = cmd.output().expect("vtysh");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `show bgp --json` of a PE.
    fn bgp(&self, router: &str) -> serde_json::Value {
        let show = Request::Show {
            what: What::Bgp,
            name: None,
            json: true,
        };
        serde_json::from_str(&self.ask(router, &show)).expect("bgp JSON")
    }

    /// `show vrf NAME` of a PE, as text.
    fn vrf_text(&self, router: &str, vrf: &str) -> String {
        self.ask(
            router,
            &Request::Show {
                what: What::Vrf,
                name: Some(vrf.into()),
                json: false,
            },
        )
    }

    /// Pings from a CE's customer address with a payload pattern: the replies.
    fn ping_from(&self, host: &str, src: &str, dst: &str, count: u32, pattern: &str) -> u32 {
        let (_, out) = ns_try(
            &self.ns(host),
            &[
                "ping",
                "-q",
                "-c",
                &count.to_string(),
                "-i",
                "0.1",
                "-W",
                "1",
                "-I",
                src,
                "-p",
                pattern,
                dst,
            ],
        );
        ping_replies(&out)
    }
}

/// Waits up to `secs` for `cond`; how long it took, or a panic naming `what`.
fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) -> Duration {
    let t0 = Instant::now();
    while !cond() {
        assert!(
            t0.elapsed() < Duration::from_secs(secs),
            "{what} (waited {secs} s)"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    t0.elapsed()
}

/// Every session of every speaker established, and every VRF with `installed` BGP routes.
fn bgp_converged(status: &serde_json::Value, installed: u64) -> bool {
    let speakers = status["speakers"].as_array().cloned().unwrap_or_default();
    let vrfs = status["vrfs"].as_array().cloned().unwrap_or_default();
    !speakers.is_empty()
        && speakers.iter().all(|s| {
            s["state"] == "running"
                && s["peers"]
                    .as_array()
                    .is_some_and(|p| p.iter().all(|p| p["state"] == "established"))
        })
        && vrfs
            .iter()
            .all(|v| v["installed"] == installed && v["stale"] == 0)
}

/// BGP/MPLS VPNs end to end: two xpe PEs, gobgpd on each (started by xpe), an FRR route
/// reflector on the core link, and FRR CEs: two VRFs with the same CE addresses and the same
/// customer prefixes on both sides.
///
/// ```text
///  ca1 (AS 64512) ─ a0 [bgp-pe1] core0 ─┐       ┌─ core0 [bgp-pe2] a0 ─ ca2 (AS 65001)
///  cb1 (AS 64512) ─ b0                  ├─ w ─ rr                 b0 ─ cb2 (AS 65001)
///                                       └───────┘ (one bridge: pe1 .1, pe2 .2, rr .3)
/// ```
///
/// Checks: sessions (one with TCP MD5 on each side), routes learned and installed with the
/// PEs' own VPN labels (the route reflector's table, and every label of every UPDATE on the
/// core link decoded by tshark: none is 0), overlapping prefixes kept apart (echo requests
/// counted in each CE, payload patterns and VPN labels on the core), a withdrawal and a
/// re-announcement each within 3 s, and a SIGKILLed gobgpd: forwarding goes on, the
/// restarted one resyncs, and the route withdrawn while it was down is purged as stale.
#[test]
fn bgp_vpns_through_gobgp_and_an_frr_route_reflector() {
    let mut lab = Lab::new("b");
    for ns in ["ca1", "cb1", "bgp-pe1", "w", "rr", "bgp-pe2", "ca2", "cb2"] {
        lab.add_ns(ns);
    }
    lab.link("ca1", "eth0", "bgp-pe1", "a0");
    lab.link("cb1", "eth0", "bgp-pe1", "b0");
    lab.link("ca2", "eth0", "bgp-pe2", "a0");
    lab.link("cb2", "eth0", "bgp-pe2", "b0");
    lab.bgp_core(["bgp-pe1", "bgp-pe2"], &["a0", "b0"]);
    for (host, addr, gw, customer) in [
        ("ca1", "169.254.10.2/30", "169.254.10.1", "198.18.10.10/32"),
        ("cb1", "169.254.10.2/30", "169.254.10.1", "198.18.10.10/32"),
        ("ca2", "169.254.20.2/30", "169.254.20.1", "198.19.20.10/32"),
        ("cb2", "169.254.20.2/30", "169.254.20.1", "198.19.20.10/32"),
    ] {
        lab.host(host, "eth0", addr, gw, None);
        ns_sh(&lab.ns(host), &["ip", "addr", "add", customer, "dev", "lo"]);
    }
    let password = "xpe-bgp-test";
    lab.frr(
        "ca1",
        &ce_conf(
            "ca1",
            64512,
            "169.254.10.2",
            "169.254.10.1",
            None,
            "198.18.10.0/24",
        ),
    );
    lab.frr(
        "cb1",
        &ce_conf(
            "cb1",
            64512,
            "169.254.10.2",
            "169.254.10.1",
            Some(password),
            "198.18.10.0/24",
        ),
    );
    lab.frr(
        "ca2",
        &ce_conf(
            "ca2",
            65001,
            "169.254.20.2",
            "169.254.20.1",
            None,
            "198.19.20.0/24",
        ),
    );
    lab.frr(
        "cb2",
        &ce_conf(
            "cb2",
            65001,
            "169.254.20.2",
            "169.254.20.1",
            Some(password),
            "198.19.20.0/24",
        ),
    );
    let (pcap, mut capture) = lab.capture_core("bgp-core.pcapng", 400);
    // Sessions up and routes installed: per VRF, the CE's prefix, and the far PE's two
    // (its CE's prefix and its peering subnet).
    lab.start_bgp_pes(["bgp-pe1", "bgp-pe2"], 3);
    // Per VRF: its CE's prefix; the far PE's two; its CE's prefix and its peering subnet
    // exported; the far side's two announced to its CE (counted once a second).
    wait_for(5, "show bgp's counts", || {
        lab.bgp("bgp-pe2")["vrfs"].as_array().is_some_and(|vrfs| {
            vrfs.iter().all(|v| {
                (
                    v["from_ces"].as_u64(),
                    v["from_vpn"].as_u64(),
                    v["exported"].as_u64(),
                    v["advertised"].as_u64(),
                ) == (Some(1), Some(2), Some(2), Some(2))
            })
        })
    });
    let text = lab.ask(
        "bgp-pe2",
        &Request::Show {
            what: What::Bgp,
            name: None,
            json: false,
        },
    );
    assert!(text.contains("speaker vrf vpc-b in namespace"), "{text}");
    assert_eq!(text.matches("established").count(), 4, "{text}");
    for (vrf, label) in [("vpc-a", 1001), ("vpc-b", 1002)] {
        let routes = lab.vrf_text("bgp-pe2", vrf);
        let want = format!("B    198.18.10.0/24           via 198.18.0.1, core0, labels {label}");
        assert!(routes.contains(&want), "{vrf}:\n{routes}");
        assert!(
            routes.contains("B    198.19.20.0/24           via 169.254.20.2, a0")
                || routes.contains("B    198.19.20.0/24           via 169.254.20.2, b0"),
            "{vrf}: the CE's route:\n{routes}"
        );
    }
    // Where each BGP route came from, in show vrf: RD, route targets, VPN label, AS path.
    let routes = lab.vrf_text("bgp-pe2", "vpc-a");
    assert!(
        routes.contains("B    198.18.10.0/24           vpn 198.51.100.1, rd 65000:1, rt 65000:100, label 1001, as-path 64512"),
        "{routes}"
    );
    assert!(
        routes.contains(
            "B    198.19.20.0/24           ce 169.254.20.2, rd -, rt -, label -, as-path 65001"
        ),
        "{routes}"
    );
    let json: serde_json::Value = serde_json::from_str(&lab.ask(
        "bgp-pe2",
        &Request::Show {
            what: What::Vrf,
            name: Some("vpc-b".into()),
            json: true,
        },
    ))
    .expect("vrf JSON");
    let vpn = json["routes"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["prefix"] == "198.18.10.0/24"))
        .expect("198.18.10.0/24 in vpc-b");
    assert_eq!(vpn["labels"], serde_json::json!([1002]), "{vpn}");
    assert_eq!(vpn["bgp"]["rd"], "65000:2", "{vpn}");
    assert_eq!(
        vpn["bgp"]["route_targets"],
        serde_json::json!(["65000:200"]),
        "{vpn}"
    );
    assert_eq!(vpn["bgp"]["vpn_label"], 1002, "{vpn}");
    assert_eq!(vpn["bgp"]["next_hop"], "198.51.100.1", "{vpn}");

    // The route reflector carries xpe's labels; each CE learned the far VPC with the AS path
    // a PE keeps (65000 64512).
    let reflected = lab.vtysh("rr", &["show bgp ipv4 vpn"]);
    for label in [1001, 1002, 2001, 2002] {
        assert_eq!(
            reflected.matches(&format!("label={label} ")).count(),
            2,
            "label {label}:\n{reflected}"
        );
    }
    assert!(!reflected.contains("label=0 "), "{reflected}");
    let learned = lab.vtysh("ca2", &["show bgp ipv4 unicast"]);
    assert!(
        learned.contains("198.18.10.0/24") && learned.contains("65000 64512"),
        "{learned}"
    );
    // Settled: xpe does not announce again what a speaker reports back (that loop once
    // churned the CEs' tables dozens of times a second).
    let version = |lab: &Lab, ce: &str| {
        lab.vtysh(ce, &["show bgp ipv4 unicast"])
            .lines()
            .next()
            .unwrap_or_default()
            .to_string()
    };
    let before: Vec<String> = ["ca1", "ca2"].iter().map(|ce| version(&lab, ce)).collect();
    std::thread::sleep(Duration::from_secs(2));
    let after: Vec<String> = ["ca1", "ca2"].iter().map(|ce| version(&lab, ce)).collect();
    assert_eq!(before, after, "the CEs' BGP tables keep changing");

    // Overlapping prefixes kept apart: each site reaches its own VPC only (once the PEs
    // have resolved each other's core addresses).
    for (site, pattern) in [("ca2", "a1a1"), ("cb2", "b2b2")] {
        wait_for(15, &format!("{site} never reached its VPC"), || {
            lab.ping_from(site, "198.19.20.10", "198.18.10.10", 1, pattern) == 1
        });
    }
    let echoes = |lab: &Lab| (lab.echo_requests_in("ca1"), lab.echo_requests_in("cb1"));
    let before = echoes(&lab);
    assert_eq!(
        lab.ping_from("ca2", "198.19.20.10", "198.18.10.10", 3, "a1a1"),
        3
    );
    assert_eq!(
        lab.ping_from("cb2", "198.19.20.10", "198.18.10.10", 5, "b2b2"),
        5
    );
    assert_eq!(
        echoes(&lab),
        (before.0 + 3, before.1 + 5),
        "requests in ca1, cb1"
    );

    // A withdrawal: the far site loses the route and its traffic is counted as no-route;
    // the other VRF is untouched. Then the route comes back.
    let no_route = |lab: &Lab| {
        lab.counters("bgp-pe2")["drops"]["no-route"]
            .as_u64()
            .unwrap_or(0)
    };
    let has_route = |lab: &Lab| lab.vrf_text("bgp-pe2", "vpc-a").contains("198.18.10.0/24");
    let bgp_ca1 = |lab: &Lab, cmd: &str| {
        lab.vtysh(
            "ca1",
            &[
                "configure terminal",
                "router bgp 64512",
                "address-family ipv4 unicast",
                cmd,
            ],
        )
    };
    bgp_ca1(&lab, "no network 198.18.10.0/24");
    let took = wait_for(3, "the withdrawal did not reach bgp-pe2's vpc-a", || {
        !has_route(&lab)
    });
    eprintln!("withdrawal in bgp-pe2's FIB after {took:?}");
    let dropped = no_route(&lab);
    assert_eq!(
        lab.ping_from("ca2", "198.19.20.10", "198.18.10.10", 3, "a1a1"),
        0
    );
    assert_eq!(no_route(&lab), dropped + 3, "counted as no-route");
    assert_eq!(
        lab.ping_from("cb2", "198.19.20.10", "198.18.10.10", 3, "b2b2"),
        3
    );
    bgp_ca1(&lab, "network 198.18.10.0/24");
    let took = wait_for(
        3,
        "the re-announcement did not reach bgp-pe2's vpc-a",
        || has_route(&lab),
    );
    eprintln!("re-announcement in bgp-pe2's FIB after {took:?}");
    assert_eq!(
        lab.ping_from("ca2", "198.19.20.10", "198.18.10.10", 3, "a1a1"),
        3
    );

    // The way to the far PE changes (a transport label now): its VPN routes follow in the
    // same publish, and follow it back.
    let transport = |labels: Vec<i64>| Request::RouteAdd {
        vrf: None,
        prefix: "198.51.100.1/32".into(),
        via: "198.18.0.1".into(),
        labels,
    };
    lab.ask("bgp-pe2", &transport(vec![16099]));
    let routes = lab.vrf_text("bgp-pe2", "vpc-a");
    assert!(
        routes.contains("198.18.10.0/24           via 198.18.0.1, core0, labels 16099/1001"),
        "{routes}"
    );
    lab.ask("bgp-pe2", &transport(vec![]));
    let routes = lab.vrf_text("bgp-pe2", "vpc-a");
    assert!(
        routes.contains("198.18.10.0/24           via 198.18.0.1, core0, labels 1001"),
        "{routes}"
    );

    // gobgpd SIGKILLed: forwarding goes on with the routes kept (graceful restart on both
    // sides), xpe restarts it and resyncs; a route withdrawn while it was down is purged
    // once stale_time (6 s) has passed after its session came back.
    let pid = lab.bgp("bgp-pe2")["speakers"][0]["pid"]
        .as_u64()
        .expect("core gobgpd pid");
    let pinger = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.ns("cb2"),
            "ping",
            "-q",
            "-c",
            "150",
            "-i",
            "0.1",
        ])
        .args([
            "-W",
            "1",
            "-I",
            "198.19.20.10",
            "-p",
            "b2b2",
            "198.18.10.10",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("ping");
    let mut pinger = scopeguard(pinger);
    std::thread::sleep(Duration::from_millis(500));
    sh(&["kill", "-KILL", &pid.to_string()]);
    bgp_ca1(&lab, "no network 198.18.10.0/24");
    wait_for(5, "bgp-pe2 did not see its gobgpd die", || {
        lab.bgp("bgp-pe2")["vrfs"][0]["stale"].as_u64() > Some(0)
    });
    assert!(
        has_route(&lab),
        "a stale route stays while its gobgpd is down"
    );
    wait_for(
        90,
        "bgp-pe2 did not resync after its gobgpd restarted",
        || {
            let s = lab.bgp("bgp-pe2");
            s["speakers"][0]["starts"] == 2
                && s["speakers"][0]["peers"][0]["state"] == "established"
        },
    );
    wait_for(30, "the stale route was not purged", || !has_route(&lab));
    wait_for(10, "stale routes left", || {
        lab.bgp("bgp-pe2")["vrfs"]
            .as_array()
            .is_some_and(|v| v.iter().all(|v| v["stale"] == 0))
    });
    let replies = ping_replies(&pinger.finish());
    assert!(
        replies >= 148,
        "vpc-b lost traffic while gobgpd restarted: {replies}/150"
    );
    bgp_ca1(&lab, "network 198.18.10.0/24");
    wait_for(15, "the route did not come back after the restart", || {
        has_route(&lab)
    });

    // A CE that expects another ASN and one with a password pe2 does not have: both sessions
    // stay down, and show bgp says why (OPENs refused with NOTIFICATIONs; TCP that does not
    // get through, as with a TCP MD5 mismatch).
    lab.vtysh(
        "cb2",
        &[
            "configure terminal",
            "router bgp 65001",
            "neighbor 169.254.20.1 remote-as 65099",
        ],
    );
    lab.vtysh(
        "ca2",
        &[
            "configure terminal",
            "router bgp 65001",
            "neighbor 169.254.20.1 password not-pe2s",
        ],
    );
    let peer = |s: &serde_json::Value, vrf: usize| s["speakers"][vrf]["peers"][0].clone();
    let down = |lab: &Lab| {
        let s = lab.bgp("bgp-pe2");
        let (a, b) = (peer(&s, 1), peer(&s, 2));
        a["state"] != "established"
            && a["reason"].as_str().is_some_and(|r| r.contains("TCP MD5"))
            && b["state"] != "established"
            && b["reason"]
                .as_str()
                .is_some_and(|r| r.contains("ASN that does not match"))
    };
    let t0 = Instant::now();
    while !down(&lab) {
        let show = Request::Show {
            what: What::Bgp,
            name: None,
            json: false,
        };
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the misconfigured sessions did not go down with their reasons:\n{}",
            lab.ask("bgp-pe2", &show)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let s = lab.bgp("bgp-pe2");
    let a = peer(&s, 1)["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(a.contains("TCP MD5 password mismatch"), "vpc-a's CE: {a}");
    let text = lab.ask(
        "bgp-pe2",
        &Request::Show {
            what: What::Bgp,
            name: None,
            json: false,
        },
    );
    assert!(
        text.contains("why: the neighbour answers our OPEN with a NOTIFICATION"),
        "{text}"
    );
    eprintln!("{text}");

    // On the core link: every label of every UPDATE is one of the PEs' VPN labels (never 0),
    // and the echo requests carried their VRF's label and pattern.
    sh(&[
        "kill",
        "-INT",
        &capture.0.as_ref().expect("dumpcap").id().to_string(),
    ]);
    capture.finish();
    let path = pcap.to_str().expect("utf-8 path");
    let (updates, labels) = update_labels(path, "bgp.update.path_attribute.mp_reach_nlri");
    let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
    assert!(labels.len() >= 8, "too few labelled NLRIs:\n{updates}");
    for want in ["1001", "1002", "2001", "2002"] {
        assert!(labels.contains(&want), "{want} never announced:\n{updates}");
    }
    assert!(
        labels
            .iter()
            .all(|l| ["1001", "1002", "2001", "2002"].contains(l)),
        "a label xpe did not allocate on the wire:\n{updates}"
    );
    let echoes = sh(&[
        "tshark",
        "-r",
        path,
        "-Y",
        "icmp.type == 8",
        "-T",
        "fields",
        "-E",
        "separator=;",
        "-e",
        "mpls.label",
        "-e",
        "data.data",
    ]);
    for row in echoes.lines() {
        let (label, data) = row.split_once(';').expect("label;data");
        let want = match label {
            "1001" => "a1a1",
            "1002" => "b2b2",
            other => panic!("an echo request with label {other}:\n{echoes}"),
        };
        assert!(
            data.contains(&want.repeat(8)),
            "label {label} carried {data}"
        );
    }
    assert!(echoes.lines().count() >= 11, "{echoes}");
}

/// The labels of every labelled NLRI in the BGP UPDATEs of a capture that `filter` selects
/// (tshark), with tshark's output for messages.
fn update_labels(pcap: &str, filter: &str) -> (String, Vec<String>) {
    let updates = sh(&[
        "tshark",
        "-r",
        pcap,
        "-Y",
        filter,
        "-T",
        "fields",
        "-e",
        "bgp.label_stack",
    ]);
    let labels = updates
        .split([',', '\n'])
        .map(|l| l.trim().trim_end_matches(" (bottom)").to_string())
        .filter(|l| !l.is_empty())
        .collect();
    (updates, labels)
}

/// An FRR CE speaking IPv6 unicast only, over IPv6, to its PE at `pe`, announcing `network`.
fn ce6_conf(name: &str, asn: u32, id: &str, pe: &str, network: &str) -> String {
    format!(
        "frr defaults traditional
hostname {name}
router bgp {asn}
 bgp router-id {id}
 no bgp ebgp-requires-policy
 no bgp network import-check
 no bgp default ipv4-unicast
 neighbor {pe} remote-as 65000
 address-family ipv6 unicast
  neighbor {pe} activate
  network {network}
 exit-address-family
"
    )
}

/// VPNv6 (RFC 4659) between two xpe PEs across an IPv4 core, through the FRR route
/// reflector: each PE's only CE speaks IPv6 unicast over IPv6, the VPN routes carry xpe's
/// labels and the IPv4-mapped router address as next hop, and the CEs' loopbacks reach each
/// other under transport-less VPN labels (checked on the wire by tshark).
#[test]
fn bgp_vpnv6_across_an_ipv4_core() {
    let mut lab = Lab::new("6");
    for ns in ["c1", "bgp6-pe1", "w", "rr", "bgp6-pe2", "c2"] {
        lab.add_ns(ns);
    }
    lab.link("c1", "eth0", "bgp6-pe1", "a0");
    lab.link("c2", "eth0", "bgp6-pe2", "a0");
    lab.bgp_core(["bgp6-pe1", "bgp6-pe2"], &["a0"]);
    for (host, addr, gw, customer) in [
        (
            "c1",
            "2001:db8:a::2/64",
            "2001:db8:a::1",
            "2001:db8:10::10/128",
        ),
        (
            "c2",
            "2001:db8:b::2/64",
            "2001:db8:b::1",
            "2001:db8:20::10/128",
        ),
    ] {
        let ns = lab.ns(host);
        ns_sh(
            &ns,
            &["ip", "-6", "addr", "add", addr, "dev", "eth0", "nodad"],
        );
        ns_sh(&ns, &["ip", "-6", "addr", "add", customer, "dev", "lo"]);
        ns_sh(&ns, &["ip", "-6", "route", "add", "default", "via", gw]);
        ns_sh(&ns, &["ethtool", "-K", "eth0", "tx", "off"]);
    }
    lab.frr(
        "c1",
        &ce6_conf(
            "c1",
            64512,
            "198.18.10.1",
            "2001:db8:a::1",
            "2001:db8:10::/48",
        ),
    );
    lab.frr(
        "c2",
        &ce6_conf(
            "c2",
            65001,
            "198.19.20.1",
            "2001:db8:b::1",
            "2001:db8:20::/48",
        ),
    );
    let (pcap, mut capture) = lab.capture_core("bgp6-core.pcapng", 200);
    // Per PE: its CE's prefix, and the far PE's two (its CE's prefix and its peering subnet).
    lab.start_bgp_pes(["bgp6-pe1", "bgp6-pe2"], 3);
    let text = lab.ask(
        "bgp6-pe2",
        &Request::Show {
            what: What::Bgp,
            name: None,
            json: false,
        },
    );
    assert!(
        text.contains("2001:db8:b::2") && text.contains("ipv6"),
        "the IPv6 CE session:\n{text}"
    );
    let routes = lab.vrf_text("bgp6-pe2", "v6");
    assert!(
        routes.contains("2001:db8:10::/48")
            && routes.contains("via 198.18.0.1, core0, labels 1001"),
        "the far CE's prefix under pe1's VPN label:\n{routes}"
    );
    assert!(
        routes.contains("vpn 198.51.100.1, rd 65000:1, rt 65000:600, label 1001, as-path 64512"),
        "{routes}"
    );
    let reflected = lab.vtysh("rr", &["show bgp ipv6 vpn"]);
    for label in [1001, 2001] {
        assert_eq!(
            reflected.matches(&format!("label={label} ")).count(),
            2,
            "label {label}:\n{reflected}"
        );
    }
    assert!(!reflected.contains("label=0 "), "{reflected}");
    let learned = lab.vtysh("c2", &["show bgp ipv6 unicast"]);
    assert!(
        learned.contains("2001:db8:10::/48") && learned.contains("65000 64512"),
        "{learned}"
    );

    // Loopback to loopback across the core, both ways (once ND has resolved the CEs).
    wait_for(15, "c2 never reached c1's loopback", || {
        lab.ping_from("c2", "2001:db8:20::10", "2001:db8:10::10", 1, "c6c6") == 1
    });
    assert_eq!(
        lab.ping_from("c1", "2001:db8:10::10", "2001:db8:20::10", 5, "c6c6"),
        5
    );

    // On the core link: VPNv6 UPDATEs carry only xpe's labels, and the echo requests the VPN
    // label of the far PE's VRF, with no transport label (the PEs are neighbours). dumpcap
    // gets a moment to write the last frames.
    std::thread::sleep(Duration::from_secs(2));
    sh(&[
        "kill",
        "-INT",
        &capture.0.as_ref().expect("dumpcap").id().to_string(),
    ]);
    capture.finish();
    let path = pcap.to_str().expect("utf-8 path");
    let (updates, labels) = update_labels(path, "bgp.update.path_attribute.mp_reach_nlri.afi == 2");
    let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
    for want in ["1001", "2001"] {
        assert!(labels.contains(&want), "{want} never announced:\n{updates}");
    }
    assert!(
        labels.iter().all(|l| ["1001", "2001"].contains(l)),
        "a label xpe did not allocate on the wire:\n{updates}"
    );
    let echoes = sh(&[
        "tshark",
        "-r",
        path,
        "-Y",
        "icmpv6.type == 128",
        "-T",
        "fields",
        "-e",
        "mpls.label",
    ]);
    assert!(echoes.lines().count() >= 6, "{echoes}");
    for label in echoes.lines() {
        assert!(["1001", "2001"].contains(&label), "{echoes}");
    }
}

/// gobgpd missing: xpe starts anyway, forwards with its static routes (a labelled one here,
/// from the CE's side into the core), keeps retrying, and `show bgp` says why BGP is down.
#[test]
fn bgp_without_gobgpd_forwards_on_static_routes() {
    let mut lab = Lab::new("g");
    for ns in ["bgp-nogobgpd", "core", "ce"] {
        lab.add_ns(ns);
    }
    lab.link("ce", "eth0", "bgp-nogobgpd", "a0");
    lab.link("bgp-nogobgpd", "core0", "core", "eth0");
    lab.host("ce", "eth0", "169.254.9.2/30", "169.254.9.1", None);
    ns_sh(
        &lab.ns("core"),
        &["ip", "addr", "add", "198.18.9.2/30", "dev", "eth0"],
    );
    lab.start("bgp-nogobgpd");
    let starts = |lab: &Lab| {
        let s = lab.bgp("bgp-nogobgpd");
        // Both speakers, the core's and the VRF's (whose would run in its namespace).
        for speaker in [&s["speakers"][0], &s["speakers"][1]] {
            assert!(
                speaker["state"] == "down" || speaker["state"] == "restarting",
                "{s}"
            );
            let detail = speaker["detail"].as_str().unwrap_or_default();
            assert!(
                detail.contains("cannot run /nonexistent/xpe-test/gobgpd: not found"),
                "{detail}"
            );
        }
        s["speakers"][0]["starts"].as_u64().unwrap_or(0)
    };
    wait_for(10, "the first attempts", || {
        let s = lab.bgp("bgp-nogobgpd");
        s["speakers"][0]["detail"] != "" && s["speakers"][1]["detail"] != ""
    });
    let first = starts(&lab);
    wait_for(10, "xpe does not retry", || starts(&lab) > first);
    // The CE's traffic still crosses on the static route: labelled onto the core (once xpe
    // has ARPed for the core's next hop, which the first ping sets off).
    let ping = |lab: &Lab, n: &str| {
        ns_try(
            &lab.ns("ce"),
            &["ping", "-c", n, "-i", "0.2", "-W", "1", "198.19.9.1"],
        );
    };
    ping(&lab, "1");
    std::thread::sleep(Duration::from_millis(1500));
    let before = lab.counters("bgp-nogobgpd")["forwarded"]
        .as_u64()
        .unwrap_or(0);
    ping(&lab, "3");
    let after = lab.counters("bgp-nogobgpd");
    assert!(
        after["forwarded"].as_u64().unwrap_or(0) >= before + 3,
        "the CE's pings were not forwarded: {after}"
    );
    let text = lab.ask(
        "bgp-nogobgpd",
        &Request::Show {
            what: What::Bgp,
            name: None,
            json: false,
        },
    );
    assert!(text.contains("speaker core: down"), "{text}");
    lab.stop("bgp-nogobgpd");
}

/// What `GET url` returns inside namespace `ns` (Python's urllib: no curl on the machine);
/// `None` when the request fails.
fn http_get(ns: &str, url: &str) -> Option<String> {
    let (ok, body) = ns_try(
        ns,
        &[
            "python3",
            "-c",
            "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())",
            url,
        ],
    );
    ok.then_some(body)
}

/// `xpe run --metrics`: the text passes `promtool check metrics`, a real Prometheus server in
/// pe1's namespace scrapes it, and a PromQL query through its HTTP API returns the count of
/// known traffic (five pings to an address no route covers: five `no-route` drops).
#[test]
fn metrics_scraped_by_prometheus() {
    let mut lab = lab("pm", &["--metrics", "127.0.0.1:9464"]);
    converge(&lab, "h1a", "198.18.20.2");
    assert_eq!(
        lab.ping("h1a", "198.18.99.1", 5, "0.05"),
        0,
        "no route, no reply"
    );
    let pe1 = lab.ns("pe1");
    let text = http_get(&pe1, "http://127.0.0.1:9464/metrics").expect("GET /metrics");
    assert!(
        text.lines()
            .any(|l| l == "xpe_drops_total{reason=\"no-route\"} 5"),
        "five no-route drops:\n{text}"
    );
    for start in [
        "xpe_build_info{version=\"",
        "xpe_vrf_routes{vrf=\"vpc-a\",family=\"ipv4\"} ",
        "xpe_labels ",
        "xpe_interface_rx_packets_total{interface=\"dx0\"} ",
        "xpe_worker_packets_total{worker=\"0\"} ",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(start)),
            "no {start}... in:\n{text}"
        );
    }
    let file = lab.dir.join("pe1.metrics");
    std::fs::write(&file, &text).expect("write metrics");
    let (ok, lint) = ns_try(
        &pe1,
        &[
            "sh",
            "-c",
            &format!("promtool check metrics < {} 2>&1", file.display()),
        ],
    );
    assert!(ok, "promtool check metrics refused:\n{lint}\n{text}");

    // A bad address is one sentence at start, before anything is attached.
    let second = Command::new("ip")
        .args(["netns", "exec", &pe1, XPE, "run"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/live/pe1.toml"))
        .args(["--metrics", "127.0.0.1:9464", "--socket"])
        .arg(lab.dir.join("second.sock"))
        .output()
        .expect("xpe run");
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(
        !second.status.success()
            && said.contains("cannot serve metrics on 127.0.0.1:9464: Address already in use"),
        "{said}"
    );

    let config = lab.dir.join("prometheus.yml");
    std::fs::write(
        &config,
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: xpe\n    static_configs:\n      - targets: ['127.0.0.1:9464']\n",
    )
    .expect("prometheus config");
    let log = std::fs::File::create(lab.dir.join("prometheus.log")).expect("log");
    let prometheus = Command::new("ip")
        .args(["netns", "exec", &pe1, "prometheus"])
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            lab.dir.join("tsdb").display()
        ))
        .args(["--web.listen-address=127.0.0.1:9090"])
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("start prometheus");
    lab.daemons.push(scopeguard(prometheus));
    let query = |q: &str| -> serde_json::Value {
        let url = format!(
            "http://127.0.0.1:9090/api/v1/query?query={}",
            q.replace('{', "%7B")
                .replace('}', "%7D")
                .replace('"', "%22")
                .replace('=', "%3D")
        );
        http_get(&pe1, &url)
            .and_then(|body| serde_json::from_str(&body).ok())
            .unwrap_or(serde_json::Value::Null)
    };
    let value = |answer: &serde_json::Value| -> Option<String> {
        answer["data"]["result"][0]["value"][1]
            .as_str()
            .map(str::to_string)
    };
    let mut last = serde_json::Value::Null;
    wait_for(30, "Prometheus to scrape xpe", || {
        last = query("xpe_drops_total{reason=\"no-route\"}");
        value(&last).as_deref() == Some("5")
    });
    let counters = lab.counters("pe1");
    assert_eq!(counters["drops"]["no-route"], 5, "{counters}");
    // The scrape's own view of its target, and a counter that moved with the pings.
    let up = query("up{job=\"xpe\"}");
    assert_eq!(value(&up).as_deref(), Some("1"), "{up}");
    let lookups = query("xpe_vrf_lookups_total{vrf=\"vpc-a\"}");
    assert!(
        value(&lookups)
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|n| n >= 5),
        "{lookups}"
    );
}

/// `xpe capture` on pe1 under known traffic: ten pings through VPC A and five to an address
/// no route covers. The TX frames decode in tshark with the label stack pushed toward the
/// core and the VLAN tag pushed toward the customer, the drops carry their reason, and the
/// counts equal the counters' (misses included). A second capture at once, a filter that
/// matches nothing and an unwritable file each get one sentence.
#[test]
fn capture_writes_what_the_workers_sent_and_dropped() {
    let lab = lab("cap", &[]);
    converge(&lab, "h1a", "198.18.20.2");
    let socket = lab.socket("pe1");
    let file = lab.dir.join("pe1.pcapng");
    let capture = |args: &[&str]| -> std::process::Output {
        Command::new(XPE)
            .arg("capture")
            .arg("--socket")
            .arg(&socket)
            .args(args)
            .output()
            .expect("xpe capture")
    };
    let said = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    let o = capture(
        &["--vlan", "999", "--duration", "0.5", "-w"]
            .iter()
            .copied()
            .chain([file.to_str().expect("path")])
            .collect::<Vec<_>>(),
    );
    assert!(
        !o.status.success() && said(&o).contains("no frame matched the filter"),
        "{}",
        said(&o)
    );
    let o = capture(&["--count", "1", "-w", "/proc/xpe-nowhere/x.pcapng"]);
    assert!(
        !o.status.success() && said(&o).contains("cannot write /proc/xpe-nowhere/x.pcapng"),
        "{}",
        said(&o)
    );

    let tx_of = |c: &serde_json::Value, name: &str| {
        c["interfaces"]
            .as_array()
            .and_then(|a| a.iter().find(|i| i["interface"] == name))
            .and_then(|i| i["tx_packets"].as_u64())
            .expect("tx_packets")
    };
    let before = lab.counters("pe1");
    let running = Command::new(XPE)
        .arg("capture")
        .arg("--socket")
        .arg(&socket)
        .args(["--tx", "--drops", "--duration", "4", "-w"])
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("xpe capture");
    let mut running = scopeguard(running);
    std::thread::sleep(Duration::from_millis(500));
    let second = lab.dir.join("second.pcapng");
    let o = capture(&["--count", "1", "-w", second.to_str().expect("path")]);
    assert!(
        !o.status.success() && said(&o).contains("another capture is running"),
        "{}",
        said(&o)
    );
    assert!(!second.exists(), "a refused capture leaves no file");
    assert_eq!(lab.ping("h1a", "198.18.20.2", 10, "0.05"), 10, "vpc-a");
    assert_eq!(lab.ping("h1a", "198.18.99.1", 5, "0.05"), 0, "no route");
    let summary = running.finish();
    let after = lab.counters("pe1");
    let decoded = sh(&[
        "tshark",
        "-r",
        file.to_str().expect("path"),
        "-T",
        "fields",
        "-E",
        "separator=;",
        "-e",
        "frame.interface_name",
        "-e",
        "vlan.id",
        "-e",
        "mpls.label",
        "-e",
        "frame.comment",
    ]);
    let count = |prefix: &str| decoded.lines().filter(|l| l.starts_with(prefix)).count() as u64;
    // Every frame pe1 sent in the window is in the file, and nothing else was sent.
    let (core_tx, dx_tx) = (count("core0:tx;"), count("dx0:tx;"));
    assert_eq!(
        core_tx,
        tx_of(&after, "core0") - tx_of(&before, "core0"),
        "{summary}\n{decoded}"
    );
    assert_eq!(
        dx_tx,
        tx_of(&after, "dx0") - tx_of(&before, "dx0"),
        "{summary}\n{decoded}"
    );
    assert!(summary.contains("0 matched but missed"), "{summary}");
    // The ten echo requests left with the label stack, the replies with VLAN 101.
    assert!(
        count("core0:tx;;16002,2001;") >= 10,
        "labels pushed toward the core:\n{decoded}"
    );
    assert!(
        count("dx0:tx;101;;") >= 10,
        "VLAN 101 pushed toward h1a:\n{decoded}"
    );
    assert_eq!(count("dx0:drop;101;;no-route"), 5, "{decoded}");
    let no_route = |c: &serde_json::Value| c["drops"]["no-route"].as_u64().expect("no-route");
    assert_eq!(no_route(&after) - no_route(&before), 5, "{after}");

    // `-w -` streams to a pipe, as `tcpdump -w -` does; the closing line goes to stderr.
    let piped = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{XPE} capture --socket {} --tx --duration 2 -w - | tshark -r - -T fields -e frame.interface_name -e mpls.label",
            socket.display()
        ))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("xpe capture | tshark");
    let mut piped = scopeguard(piped);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(lab.ping("h1a", "198.18.20.2", 1, "0.2"), 1);
    let decoded = piped.finish();
    assert!(
        decoded.lines().any(|l| l == "core0:tx\t16002,2001")
            && decoded.lines().any(|l| l == "dx0:tx\t"),
        "the request and the reply through the pipe:\n{decoded}"
    );
}

/// `xpe trace --live` on pe1: a ping's echo request is traced stage by stage by the worker
/// that forwards it, and reads exactly as `xpe trace` on the same bytes with the same
/// tables (the config and the next hop's MAC pe1 learned). With --json each frame is one
/// line of `api::TracedFrame`; a filter that matches nothing says so when it times out.
#[test]
fn live_trace_reads_as_the_offline_trace() {
    let lab = lab("tr", &[]);
    converge(&lab, "h1a", "198.18.20.2");
    let socket = lab.socket("pe1");
    let trace = |args: &[&str]| {
        let child = Command::new(XPE)
            .args(["trace", "--live", "--socket"])
            .arg(&socket)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("xpe trace --live");
        scopeguard(child)
    };
    let filter = [
        "--interface",
        "dx0",
        "--vlan",
        "101",
        "--prefix",
        "198.18.20.0/24",
    ];
    let mut text = trace(&[&filter[..], &["--count", "1"]].concat());
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(lab.ping("h1a", "198.18.20.2", 1, "0.2"), 1);
    let live = text.finish();
    assert!(
        live.starts_with("frame 1 of 1: received on dx0 at "),
        "{live}"
    );
    // The input's hex, then the offline trace of it.
    let mut lines = live.lines().skip(1);
    let mut input = String::new();
    let mut rest = Vec::new();
    for l in lines.by_ref() {
        let l = l.strip_prefix("input:").unwrap_or(l);
        if l.starts_with(" 1 ") {
            rest.push(l.to_string());
            break;
        }
        input.push_str(l);
    }
    rest.extend(lines.map(str::to_string));
    let hex: String = input.split_whitespace().collect();
    let neighbors = lab.ask(
        "pe1",
        &Request::Show {
            what: What::Neighbors,
            name: None,
            json: true,
        },
    );
    let n: xpe_control::api::Neighbors = serde_json::from_str(&neighbors).expect("JSON");
    let p = n
        .neighbors
        .iter()
        .find(|n| n.ip == "198.18.0.2")
        .and_then(|n| n.mac.clone())
        .expect("pe1 resolved P");
    let config = lab.dir.join("pe1-offline.toml");
    let base = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/live/pe1.toml"))
        .expect("pe1.toml");
    std::fs::write(
        &config,
        format!(
            "{base}\n[[neighbor]]\ninterface = \"core0\"\nip = \"198.18.0.2\"\nmac = \"{p}\"\n"
        ),
    )
    .expect("offline config");
    let offline = ns_sh(
        &lab.ns("pe1"),
        &[
            XPE,
            "trace",
            config.to_str().expect("path"),
            "-i",
            "dx0",
            "-f",
            &hex,
        ],
    );
    assert_eq!(
        rest.join("\n"),
        offline.trim_end(),
        "live:\n{live}\noffline:\n{offline}"
    );
    assert!(
        live.contains("verdict: forward on core0"),
        "the echo request goes to the core:\n{live}"
    );

    let mut json = trace(&[&filter[..], &["--count", "2", "--json"]].concat());
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(lab.ping("h1a", "198.18.20.2", 2, "0.2"), 2);
    let out = json.finish();
    let frames: Vec<xpe_control::api::TracedFrame> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("one frame per line"))
        .collect();
    assert_eq!(frames.len(), 2, "{out}");
    for (i, f) in frames.iter().enumerate() {
        assert_eq!((f.frame, f.interface.as_str()), (i as u64 + 1, "dx0"));
        let stages: Vec<&str> = f.steps.iter().map(|s| s.stage.as_str()).collect();
        for stage in ["ingress", "ethernet", "802.1q"] {
            assert!(stages.contains(&stage), "{stage} in {stages:?}");
        }
        assert!(f.verdict.starts_with("forward on core0"), "{f:?}");
        assert_eq!(f.outputs.len(), 1);
    }

    let mut none = trace(&["--label", "999999", "--timeout", "1"]);
    let status = none.0.as_mut().expect("child").wait().expect("wait");
    let mut err = String::new();
    std::io::Read::read_to_string(
        none.0
            .as_mut()
            .expect("child")
            .stderr
            .as_mut()
            .expect("stderr"),
        &mut err,
    )
    .expect("stderr");
    assert!(
        !status.success() && err.contains("no frame matched the filter in 1."),
        "{err}"
    );
}

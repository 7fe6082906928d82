//! `xpe gen`, `xpe sink` and `xpe xdp-fwd` on a real kernel (needs root, BPF and network
//! namespaces; it fails, never skips, without them).
//!
//! Every test builds its own lab: network namespaces named `xg<pid><tag>-...`, a veth pair
//! `gen0` <-> `rcv0` between them (or inside one), or for xdp-fwd three namespaces in a row
//! (`gen0` <-> `in0`, `out0` <-> `rcv0`), IPv6 off so the kernel sends nothing of its own; all
//! of it is removed on drop, also when an assertion fails. Frames are sent only into
//! these namespaces, to 198.18.0.0/15 and 2001:db8::/32 addresses; every run is bounded (a
//! count, or a duration of at most a second or two).
//!
//! What the receiving side sees is decoded by tshark (the receiver has GRO on, which is what
//! lets a veth take XDP frames without an XDP program, so frames reach the capture): VLAN id
//! and PCP, the label stack with its TC and TTLs, addresses, ports, lengths, and the IPv4 and
//! UDP checksums as tshark verifies them. The counts must add up: what gen says it sent, what
//! the capture or the sink received.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

const XPE: &str = env!("CARGO_BIN_EXE_xpe");

mod common;
use common::sh;

/// One lab at a time: a full-rate run in one test would starve another test's capture.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Namespaces and their veth ends, removed on drop.
struct Lab {
    prefix: String,
    namespaces: Vec<String>,
    dir: PathBuf,
    _turn: MutexGuard<'static, ()>,
}

impl Lab {
    /// Namespaces `gen` and `rcv` joined by `gen0` <-> `rcv0`; with `one_namespace`, both ends
    /// in `gen` (so that the generator sees its peer and finds the peer's MAC itself).
    fn new(tag: &str, one_namespace: bool) -> Lab {
        let mut lab = Lab::empty(tag);
        lab.add_ns("gen");
        let rcv = if one_namespace { "gen" } else { "rcv" };
        if !one_namespace {
            lab.add_ns("rcv");
        }
        lab.link("gen", "gen0", rcv, "rcv0");
        lab
    }

    /// Namespaces `gen`, `dut` and `rcv` in a row, as the pps harness has them: `gen0` <->
    /// `in0`, `out0` <-> `rcv0`.
    fn with_dut(tag: &str) -> Lab {
        let mut lab = Lab::empty(tag);
        for ns in ["gen", "dut", "rcv"] {
            lab.add_ns(ns);
        }
        lab.link("gen", "gen0", "dut", "in0");
        lab.link("dut", "out0", "rcv", "rcv0");
        lab
    }

    /// No namespaces yet; this test's turn taken.
    fn empty(tag: &str) -> Lab {
        assert!(
            sh(&["id", "-u"]).trim() == "0",
            "this test needs root (network namespaces, XDP, BPF_PROG_TEST_RUN): run the test suite as root"
        );
        // A test that failed while holding the lock has cleaned up after itself (Drop).
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let prefix = format!("xg{}{tag}", std::process::id());
        let dir = std::env::temp_dir().join(&prefix);
        std::fs::create_dir_all(&dir).expect("temp dir");
        Lab {
            prefix,
            namespaces: Vec::new(),
            dir,
            _turn: turn,
        }
    }

    /// A veth pair `a_dev` (in namespace `a`) <-> `b_dev` (in `b`), VLAN offloads off, up.
    fn link(&self, a: &str, a_dev: &str, b: &str, b_dev: &str) {
        sh(&[
            "ip",
            "link",
            "add",
            a_dev,
            "netns",
            &self.ns(a),
            "type",
            "veth",
            "peer",
            "name",
            b_dev,
            "netns",
            &self.ns(b),
        ]);
        for (ns, dev) in [(a, a_dev), (b, b_dev)] {
            self.exec(
                ns,
                &["ethtool", "-K", dev, "rxvlan", "off", "txvlan", "off"],
            );
            self.exec(ns, &["ip", "link", "set", dev, "up"]);
        }
    }

    fn ns(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    fn add_ns(&mut self, name: &str) {
        let ns = self.ns(name);
        sh(&["ip", "netns", "add", &ns]);
        self.namespaces.push(ns.clone());
        // Nothing of the kernel's own (router solicitations, DAD) on the link.
        for key in [
            "net.ipv6.conf.all.disable_ipv6=1",
            "net.ipv6.conf.default.disable_ipv6=1",
        ] {
            self.exec(name, &["sysctl", "-q", "-w", key]);
        }
        self.exec(name, &["ip", "link", "set", "lo", "up"]);
    }

    /// Runs a command in namespace `name`, panicking if it fails.
    fn exec(&self, name: &str, args: &[&str]) -> String {
        let ns = self.ns(name);
        let mut all = vec!["ip", "netns", "exec", ns.as_str()];
        all.extend_from_slice(args);
        sh(&all)
    }

    /// Runs xpe in namespace `name`; returns its output whatever its exit status.
    fn xpe(&self, name: &str, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.ns(name), XPE])
            .args(args)
            .output()
            .expect("cannot run xpe")
    }

    /// Runs xpe in namespace `name` as user nobody (setpriv drops root before exec).
    fn xpe_as_nobody(&self, name: &str, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.ns(name), "setpriv"])
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", XPE])
            .args(args)
            .output()
            .expect("cannot run setpriv")
    }

    /// Starts xpe in namespace `name` in the background.
    fn spawn_xpe(&self, name: &str, args: &[&str]) -> Guard {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(name), XPE])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start xpe");
        Guard(Some(child))
    }

    /// Waits until `dev` in namespace `name` has an XDP program (one xpe just started is
    /// attaching it).
    fn wait_for_xdp(&self, name: &str, dev: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !self
            .exec(name, &["ip", "link", "show", dev])
            .contains("xdp")
        {
            assert!(
                std::time::Instant::now() < deadline,
                "no XDP program was attached to {dev} in {name}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The MAC of `dev` in namespace `name` (`ip netns exec` mounts that namespace's sysfs).
    fn mac(&self, name: &str, dev: &str) -> String {
        self.exec(name, &["cat", &format!("/sys/class/net/{dev}/address")])
            .trim()
            .to_string()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth ends in it.
        for ns in self.namespaces.drain(..).rev() {
            match Command::new("ip").args(["netns", "del", &ns]).status() {
                Ok(s) if s.success() => {}
                other => eprintln!(
                    "gen test: could not delete namespace {ns} ({other:?}); remove it by hand"
                ),
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A child process we started, killed on drop if it is still running.
struct Guard(Option<Child>);

impl Guard {
    /// Sends the process a signal (`-INT`, `-TERM`).
    fn signal(&self, sig: &str) {
        // `ip netns exec` execs xpe in place: the pid is xpe's.
        let pid = self.0.as_ref().expect("running").id().to_string();
        sh(&["kill", sig, &pid]);
    }

    /// Waits for the process; returns its stdout and stderr.
    fn finish(&mut self) -> (bool, String, String) {
        let out = self
            .0
            .take()
            .expect("process")
            .wait_with_output()
            .expect("process output");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
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

/// Runs `xpe gen ... --json` in namespace `gen`; returns the summary.
fn gen(lab: &Lab, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["gen", "--dev", "gen0", "--json"];
    all.extend_from_slice(args);
    let out = lab.xpe("gen", &all);
    assert!(
        out.status.success(),
        "xpe {all:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not one JSON object ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Waits for a background xpe; returns its JSON summary and its stderr.
fn summary_of(what: &str, mut run: Guard) -> (serde_json::Value, String) {
    let (ok, out, err) = run.finish();
    assert!(ok, "{what} failed: {err}");
    let summary = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("{what}: not one JSON object ({e}): {out}"));
    (summary, err)
}

/// IPv4 flows from 198.18.0.1 to 198.19.0.1 sent to `mac`, then `more` arguments.
fn v4_to<'a>(mac: &'a str, more: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--src",
        "198.18.0.1",
        "--dst",
        "198.19.0.1",
        "--dst-mac",
        mac,
    ];
    args.extend_from_slice(more);
    args
}

/// Asserts a run's counts add up: every frame run was offered and sent, none refused or lost.
fn assert_all_sent(summary: &serde_json::Value, frames: u64) {
    for (field, want) in [
        ("frames_run", frames),
        ("offered", frames),
        ("sent", frames),
        ("refused", 0),
        ("lost", 0),
        ("unwritten", 0),
    ] {
        assert_eq!(summary[field].as_u64(), Some(want), "{field} in {summary}");
    }
}

/// tshark capturing on `rcv0` in namespace `ns` into `file`, started and ready.
struct Capture {
    tshark: Guard,
    /// What tshark wrote on stderr, once it has exited.
    said: std::sync::mpsc::Receiver<String>,
}

/// It stops by itself after `frames` frames (or 20 seconds): interrupting it could lose the
/// frames still in its last ring block.
fn capture(lab: &Lab, ns: &str, file: &std::path::Path, frames: u32) -> Capture {
    let mut child = Command::new("ip")
        .args(["netns", "exec", &lab.ns(ns), "tshark", "-i", "rcv0"])
        // A 64 MB buffer: the paced bursts below must all fit while dumpcap writes them out.
        .args([
            "-B",
            "64",
            "-a",
            "duration:20",
            "-c",
            &frames.to_string(),
            "-w",
        ])
        .arg(file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tshark");
    let stderr = child.stderr.take().expect("tshark stderr");
    let tshark = Guard(Some(child));
    let (started, ready) = std::sync::mpsc::channel();
    let (tell, said) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut all = String::new();
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("Capturing on") {
                let _ = started.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        let _ = tell.send(all);
    });
    ready
        .recv_timeout(Duration::from_secs(20))
        .expect("tshark did not start capturing");
    std::thread::sleep(Duration::from_millis(300));
    Capture { tshark, said }
}

/// Waits for a capture to end; returns what tshark said (its count of captured and dropped
/// frames).
fn end_capture(mut cap: Capture) -> String {
    let (ok, _, _) = cap.tshark.finish();
    let said = cap
        .said
        .recv_timeout(Duration::from_secs(10))
        .unwrap_or_default();
    assert!(ok, "tshark failed: {said}");
    said
}

/// The fields each captured frame is checked on, in this order.
const FIELDS: [&str; 18] = [
    "frame.len",
    "eth.src",
    "eth.dst",
    "vlan.id",
    "vlan.priority",
    "mpls.label",
    "mpls.exp",
    "mpls.ttl",
    "mpls.bottom",
    "ip.src",
    "ip.dst",
    "ip.ttl",
    "ip.checksum.status",
    "ipv6.src",
    "ipv6.dst",
    "ipv6.hlim",
    "udp.srcport",
    "udp.dstport",
];

/// Decodes a capture: one row of [`FIELDS`] plus `udp.checksum.status` per frame.
fn decode(file: &std::path::Path) -> Vec<Vec<String>> {
    let mut args = vec![
        "tshark".to_string(),
        "-r".into(),
        file.to_str().expect("utf-8 path").into(),
        "-o".into(),
        "ip.check_checksum:TRUE".into(),
        "-o".into(),
        "udp.check_checksum:TRUE".into(),
        "-T".into(),
        "fields".into(),
        "-E".into(),
        "separator=;".into(),
    ];
    for f in FIELDS.iter().chain(["udp.checksum.status"].iter()) {
        args.push("-e".into());
        args.push((*f).into());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    sh(&args)
        .lines()
        .map(|l| l.split(';').map(str::to_string).collect())
        .collect()
}

/// Rows grouped by everything but the flow fields, with the flows seen: what a template
/// produced, as (row without addresses and ports) -> {(source, sport, dport): frames}.
type Groups = BTreeMap<String, BTreeMap<(String, String, String), u64>>;

fn group(rows: &[Vec<String>]) -> Groups {
    let col = |name: &str| {
        FIELDS
            .iter()
            .position(|f| *f == name)
            .expect("a known field")
    };
    let (src4, src6, sport, dport) = (
        col("ip.src"),
        col("ipv6.src"),
        col("udp.srcport"),
        col("udp.dstport"),
    );
    let mut groups = Groups::new();
    for r in rows {
        let flow = (
            format!("{}{}", r[src4], r[src6]),
            r[sport].clone(),
            r[dport].clone(),
        );
        let key: Vec<&str> = r
            .iter()
            .enumerate()
            .filter(|(i, _)| ![src4, src6, sport, dport].contains(i))
            .map(|(_, v)| v.as_str())
            .collect();
        *groups
            .entry(key.join(";"))
            .or_default()
            .entry(flow)
            .or_default() += 1;
    }
    groups
}

/// The flows a template of `n` flows from `src` (last octet or group counted up), ports 1024
/// and 9, must show, each with `per_flow` frames.
fn flows(src: &[&str], per_flow: u64) -> BTreeMap<(String, String, String), u64> {
    src.iter()
        .enumerate()
        .map(|(f, s)| {
            (
                (s.to_string(), (1024 + f).to_string(), (9 + f).to_string()),
                per_flow,
            )
        })
        .collect()
}

/// Four templates, 10000 frames each, paced so the capture keeps up: tshark on the receiver
/// sees exactly what was asked for, every checksum good, every flow, and exactly as many
/// frames as the generator's device counters say it sent. Both veth ends are in one namespace,
/// so the generator finds the peer's MAC itself.
#[test]
fn frames_arrive_exactly_as_asked_and_counts_add_up() {
    let lab = Lab::new("f", true);
    lab.exec("gen", &["ethtool", "-K", "rcv0", "gro", "on"]);
    let (gen_mac, rcv_mac) = (lab.mac("gen", "gen0"), lab.mac("gen", "rcv0"));
    let pcap = lab.dir.join("rcv.pcapng");
    let cap = capture(&lab, "gen", &pcap, 40000);
    let common = ["--count", "10000", "--rate", "100000"];
    let v4 = ["--src", "198.18.0.1", "--dst", "198.19.0.1"];
    let runs: [Vec<&str>; 4] = [
        [&v4[..], &["--size", "60", "--flows", "8"]].concat(),
        [
            &v4[..],
            &["--vlan", "101:5", "--size", "100", "--flows", "4"],
        ]
        .concat(),
        [
            &v4[..],
            &[
                "--labels",
                "16001/5/63,2001/0/255",
                "--size",
                "128",
                "--ttl",
                "9",
            ],
        ]
        .concat(),
        vec![
            "--src",
            "2001:db8::1",
            "--dst",
            "2001:db8:1::1",
            "--size",
            "90",
            "--flows",
            "2",
            "--ttl",
            "17",
        ],
    ];
    for run in &runs {
        let summary = gen(&lab, &[&common[..], run].concat());
        assert_all_sent(&summary, 10000);
    }
    let said = end_capture(cap);

    let rows = decode(&pcap);
    let groups = group(&rows);
    let per_group: Vec<(String, u64)> = groups
        .iter()
        .map(|(k, f)| (k.clone(), f.values().sum()))
        .collect();
    assert_eq!(
        rows.len(),
        40000,
        "captured frames; tshark said: {said}; per template: {per_group:#?}"
    );
    let key = |fields: &[&str]| fields.join(";");
    let eth = [gen_mac.as_str(), rcv_mac.as_str()];
    let expected: Groups = [
        (
            // frame.len, eth, no VLAN, no MPLS, ip.dst, TTL, checksums good (1), no IPv6.
            key(&[
                &["60"],
                &eth[..],
                &["", "", "", "", "", "", "198.19.0.1", "64", "1", "", "", "1"],
            ]
            .concat()),
            flows(
                &[
                    "198.18.0.1",
                    "198.18.0.2",
                    "198.18.0.3",
                    "198.18.0.4",
                    "198.18.0.5",
                    "198.18.0.6",
                    "198.18.0.7",
                    "198.18.0.8",
                ],
                1250,
            ),
        ),
        (
            key(&[
                &["100"],
                &eth[..],
                &[
                    "101",
                    "5",
                    "",
                    "",
                    "",
                    "",
                    "198.19.0.1",
                    "64",
                    "1",
                    "",
                    "",
                    "1",
                ],
            ]
            .concat()),
            flows(
                &["198.18.0.1", "198.18.0.2", "198.18.0.3", "198.18.0.4"],
                2500,
            ),
        ),
        (
            key(&[
                &["128"],
                &eth[..],
                &[
                    "",
                    "",
                    "16001,2001",
                    "5,0",
                    "63,255",
                    "0,1",
                    "198.19.0.1",
                    "9",
                    "1",
                    "",
                    "",
                    "1",
                ],
            ]
            .concat()),
            flows(&["198.18.0.1"], 10000),
        ),
        (
            key(&[
                &["90"],
                &eth[..],
                &[
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "2001:db8:1::1",
                    "17",
                    "1",
                ],
            ]
            .concat()),
            flows(&["2001:db8::1", "2001:db8::2"], 5000),
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(groups, expected);
}

/// `--vary dst --flows 65536` spreads the flows over a whole /16, one frame to each address,
/// as tshark reads them: the source and the ports stay, every checksum is good.
#[test]
fn vary_dst_spreads_the_flows_over_a_slash_16() {
    let lab = Lab::new("v", true);
    lab.exec("gen", &["ethtool", "-K", "rcv0", "gro", "on"]);
    let pcap = lab.dir.join("vary.pcapng");
    let cap = capture(&lab, "gen", &pcap, 65536);
    let summary = gen(
        &lab,
        &[
            "--src",
            "198.19.0.1",
            "--dst",
            "198.18.0.0",
            "--vary",
            "dst",
            "--flows",
            "65536",
            "--count",
            "65536",
            "--rate",
            "100000",
        ],
    );
    assert_all_sent(&summary, 65536);
    assert_eq!(summary["vary"], "dst", "{summary}");
    let said = end_capture(cap);
    let rows = decode(&pcap);
    assert_eq!(rows.len(), 65536, "captured frames; tshark said: {said}");
    let col = |name: &str| {
        FIELDS
            .iter()
            .position(|f| *f == name)
            .expect("a known field")
    };
    let (src, dst, sport, dport, ip_ck) = (
        col("ip.src"),
        col("ip.dst"),
        col("udp.srcport"),
        col("udp.dstport"),
        col("ip.checksum.status"),
    );
    // `decode` puts udp.checksum.status after the FIELDS.
    let udp_ck = FIELDS.len();
    let mut seen = std::collections::BTreeSet::new();
    for r in &rows {
        let same = [&r[src], &r[sport], &r[dport], &r[ip_ck], &r[udp_ck]];
        assert_eq!(same, ["198.19.0.1", "1024", "9", "1", "1"], "{r:?}");
        seen.insert(
            r[dst]
                .parse::<std::net::Ipv4Addr>()
                .expect("an IPv4 address"),
        );
    }
    let all: std::collections::BTreeSet<_> = (0..65536u32)
        .map(|f| std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::new(198, 18, 0, 0)) + f))
        .collect();
    assert!(seen == all, "{} distinct destinations", seen.len());
}

/// The sink counts what the generator sent, frames and bytes; a paced run holds its rate.
#[test]
fn the_sink_counts_what_gen_sends_and_pacing_holds_the_rate() {
    let lab = Lab::new("s", false);
    let rcv_mac = lab.mac("rcv", "rcv0");
    let sink = lab.spawn_xpe(
        "rcv",
        &["sink", "--dev", "rcv0", "--duration", "4", "--json"],
    );
    // The sink attaches within a moment; a generator that came first would be told the peer
    // takes no frames, so wait until the program is on the interface.
    lab.wait_for_xdp("rcv", "rcv0");
    let fast = gen(
        &lab,
        &v4_to(
            &rcv_mac,
            &["--count", "200000", "--size", "64", "--flows", "16"],
        ),
    );
    assert_all_sent(&fast, 200_000);
    let paced = gen(
        &lab,
        &v4_to(
            &rcv_mac,
            &["--duration", "1", "--rate", "50000", "--size", "64"],
        ),
    );
    let sent = paced["sent"].as_u64().expect("sent");
    assert!(
        (47_500..=52_500).contains(&sent),
        "50000 frames/s for a second, got {sent}: {paced}"
    );
    assert_eq!(paced["stopped_by"], "duration");
    let (summary, _) = summary_of("xpe sink", sink);
    let total = 200_000 + sent;
    assert_eq!(summary["frames"].as_u64(), Some(total), "{summary}");
    assert_eq!(summary["bytes"].as_u64(), Some(total * 64), "{summary}");
    assert_eq!(summary["mode"], "native");
}

/// A receiver without an XDP program or GRO takes no XDP frames and the kernel says nothing:
/// gen notices from the counters and says what to do. Other setup errors are one sentence too.
#[test]
fn setup_errors_are_explained() {
    let lab = Lab::new("e", false);
    let rcv_mac = lab.mac("rcv", "rcv0");
    let base = [
        "gen",
        "--dev",
        "gen0",
        "--src",
        "198.18.0.1",
        "--dst",
        "198.19.0.1",
        "--count",
        "1000",
    ];
    let fails = |extra: &[&str]| -> String {
        let out = lab.xpe("gen", &[&base[..], extra].concat());
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(out.stdout.is_empty(), "{out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = fails(&["--dst-mac", &rcv_mac]);
    assert!(
        e.contains("takes no XDP frames: it has neither an XDP program nor GRO on")
            && e.contains("attach an XDP program to the peer")
            && e.contains("`ethtool -K PEER gro on`"),
        "{e}"
    );
    let e = fails(&[]);
    assert!(e.contains("--dst-mac is needed"), "{e}");
    let e = fails(&["--dst-mac", &rcv_mac, "--size", "4000"]);
    assert!(
        e.contains("--size 4000 is above 3408, the longest frame BPF_PROG_TEST_RUN's live-frames mode sends"),
        "{e}"
    );
    let e = fails(&["--dst-mac", &rcv_mac, "--size", "1600"]);
    assert!(
        e.contains("--size 1600 does not fit gen0's MTU of 1500"),
        "{e}"
    );
    let e = fails(&["--dst-mac", &rcv_mac, "--flows", "0"]);
    assert_eq!(
        e,
        "xpe: --flows must be a flow count from 1 to 65536, not '0'\n"
    );
    let out = lab.xpe(
        "gen",
        &[
            "gen",
            "--dev",
            "nosuch0",
            "--src",
            "198.18.0.1",
            "--dst",
            "198.19.0.1",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("interface nosuch0 does not exist in this network namespace"),
        "{out:?}"
    );
    let out = lab.xpe_as_nobody("gen", &base);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("xpe: xpe gen needs root"),
        "{out:?}"
    );
    // With GRO on, the same run goes through.
    lab.exec("rcv", &["ethtool", "-K", "rcv0", "gro", "on"]);
    let ok = gen(&lab, &v4_to(&rcv_mac, &["--count", "1000"]));
    assert_all_sent(&ok, 1000);

    // Without --count or --duration it runs until SIGINT, which interrupts the test run in
    // the kernel; the summary still comes out, and a line a second went to stderr meanwhile.
    let mut args = vec!["gen", "--dev", "gen0", "--json", "--rate", "100000"];
    args.extend(v4_to(&rcv_mac, &[]));
    let run = lab.spawn_xpe("gen", &args);
    std::thread::sleep(Duration::from_millis(1500));
    run.signal("-INT");
    let (summary, err) = summary_of("xpe gen after SIGINT", run);
    assert_eq!(summary["stopped_by"], "signal", "{summary}");
    let sent = summary["sent"].as_u64().expect("sent");
    assert!(sent > 100_000, "{summary}");
    assert_all_sent(&summary, sent);
    assert!(
        err.lines()
            .any(|l| l.contains(" s ") && l.ends_with("frames sent")),
        "no per-second line: {err}"
    );
}

/// Starts `xpe xdp-fwd in0 out0 --dst-mac MAC --json`, then `more`, in namespace `dut`, and
/// waits until its program is on `in0`.
fn xdp_fwd(lab: &Lab, dst_mac: &str, more: &[&str]) -> Guard {
    let mut args = vec!["xdp-fwd", "in0", "out0", "--dst-mac", dst_mac, "--json"];
    args.extend_from_slice(more);
    let fwd = lab.spawn_xpe("dut", &args);
    lab.wait_for_xdp("dut", "in0");
    fwd
}

/// The harness's "kernel's own ceiling": gen -> in0, `xpe xdp-fwd in0 out0` in the DUT's
/// namespace, `xpe sink` on the far side. Every frame the generator sent is redirected, taken
/// by out0 and counted by the sink, with nothing on out0 itself; SIGTERM ends the forwarder
/// with its summary, and a line a second went to stderr meanwhile.
/// Stops the forwarder and then the sink once the generator is back, and returns the
/// forwarder's JSON summary, its stderr and the sink's summary. Frames cross all three
/// namespaces inside the generator's flush: once gen is back, the sink has them all. The
/// forwarder runs at least 1.3 s from `started`, so that it prints a per-second line.
fn stop_fwd_and_sink(
    fwd: Guard,
    sink: Guard,
    started: std::time::Instant,
) -> (serde_json::Value, String, serde_json::Value) {
    std::thread::sleep(Duration::from_millis(1300).saturating_sub(started.elapsed()));
    fwd.signal("-TERM");
    let (f, err) = summary_of("xpe xdp-fwd", fwd);
    sink.signal("-INT");
    let (s, _) = summary_of("xpe sink", sink);
    (f, err, s)
}

#[test]
fn xdp_fwd_forwards_every_frame_to_the_sink() {
    let lab = Lab::with_dut("x");
    let (in_mac, out_mac, rcv_mac) = (
        lab.mac("dut", "in0"),
        lab.mac("dut", "out0"),
        lab.mac("rcv", "rcv0"),
    );
    let sink = lab.spawn_xpe("rcv", &["sink", "--dev", "rcv0", "--json"]);
    lab.wait_for_xdp("rcv", "rcv0");
    let fwd = xdp_fwd(&lab, &rcv_mac, &[]);
    let started = std::time::Instant::now();
    let sent = gen(
        &lab,
        &v4_to(
            &in_mac,
            &["--count", "10000", "--size", "64", "--flows", "16"],
        ),
    );
    assert_all_sent(&sent, 10_000);
    let (f, err, s) = stop_fwd_and_sink(fwd, sink, started);

    for (field, want) in [
        ("redirected", 10_000),
        ("sent", 10_000),
        ("refused", 0),
        ("lost", 0),
        ("too_short", 0),
        ("no_target", 0),
        ("not_for_in", 0),
    ] {
        assert_eq!(f[field].as_u64(), Some(want), "{field} in {f}");
    }
    assert_eq!(f["check_dst"], false, "{f}");
    assert_eq!(f["mode"], "native", "{f}");
    assert_eq!(f["stopped_by"], "signal", "{f}");
    assert_eq!((&f["in"], &f["out"]), (&"in0".into(), &"out0".into()));
    assert_eq!(f["dst_mac"].as_str(), Some(rcv_mac.as_str()), "{f}");
    assert_eq!(f["src_mac"].as_str(), Some(out_mac.as_str()), "{f}");
    assert!(
        err.lines()
            .any(|l| l.contains(" s ") && l.ends_with("frames redirected")),
        "no per-second line: {err}"
    );
    assert_eq!(s["frames"].as_u64(), Some(10_000), "{s}");
    assert_eq!(s["bytes"].as_u64(), Some(640_000), "{s}");
}

/// With --check-dst the forwarder reads each frame's Ethernet destination first: frames for
/// in0 go on to the sink, frames for another address are dropped and counted as not for IN.
#[test]
fn xdp_fwd_check_dst_forwards_only_frames_for_in() {
    let lab = Lab::with_dut("k");
    let (in_mac, rcv_mac) = (lab.mac("dut", "in0"), lab.mac("rcv", "rcv0"));
    let sink = lab.spawn_xpe("rcv", &["sink", "--dev", "rcv0", "--json"]);
    lab.wait_for_xdp("rcv", "rcv0");
    let fwd = xdp_fwd(&lab, &rcv_mac, &["--check-dst"]);
    let started = std::time::Instant::now();
    let ours = gen(&lab, &v4_to(&in_mac, &["--count", "3000", "--flows", "4"]));
    assert_all_sent(&ours, 3000);
    let other = gen(
        &lab,
        &v4_to("02:00:00:00:0c:0c", &["--count", "500", "--flows", "4"]),
    );
    assert_all_sent(&other, 500);
    let (f, _, s) = stop_fwd_and_sink(fwd, sink, started);
    assert_eq!(f["check_dst"], true, "{f}");
    for (field, want) in [
        ("redirected", 3000),
        ("not_for_in", 500),
        ("sent", 3000),
        ("too_short", 0),
    ] {
        assert_eq!(f[field].as_u64(), Some(want), "{field} in {f}");
    }
    assert_eq!(s["frames"].as_u64(), Some(3000), "{s}");
}

/// What xdp-fwd puts on the wire, decoded by tshark behind out0 (the receiver with GRO on
/// instead of the sink, so frames reach the capture): the Ethernet addresses it was given,
/// everything above them as the generator sent it, checksums good, every flow, exactly the
/// frames sent.
#[test]
fn xdp_fwd_rewrites_the_macs_as_tshark_sees_them() {
    let lab = Lab::with_dut("m");
    lab.exec("rcv", &["ethtool", "-K", "rcv0", "gro", "on"]);
    let in_mac = lab.mac("dut", "in0");
    let pcap = lab.dir.join("fwd.pcapng");
    let cap = capture(&lab, "rcv", &pcap, 1000);
    let (dst, src) = ("02:00:00:00:0b:0b", "02:00:00:00:0a:0a");
    let fwd = xdp_fwd(&lab, dst, &["--src-mac", src, "--duration", "2"]);
    let sent = gen(
        &lab,
        &v4_to(
            &in_mac,
            &["--count", "1000", "--flows", "4", "--rate", "100000"],
        ),
    );
    assert_all_sent(&sent, 1000);
    let said = end_capture(cap);
    let (f, _) = summary_of("xpe xdp-fwd", fwd);
    assert_eq!(f["stopped_by"], "duration", "{f}");
    assert_eq!(f["redirected"].as_u64(), Some(1000), "{f}");
    assert_eq!(f["sent"].as_u64(), Some(1000), "{f}");

    let rows = decode(&pcap);
    assert_eq!(rows.len(), 1000, "captured frames; tshark said: {said}");
    let key = [
        &["60", src, dst][..],
        &["", "", "", "", "", "", "198.19.0.1", "64", "1", "", "", "1"],
    ]
    .concat()
    .join(";");
    let expected: Groups = [(
        key,
        flows(
            &["198.18.0.1", "198.18.0.2", "198.18.0.3", "198.18.0.4"],
            250,
        ),
    )]
    .into_iter()
    .collect();
    assert_eq!(group(&rows), expected);
}

/// Setup errors are one sentence. And what OUT needs on this kernel: a veth whose peer has
/// neither an XDP program nor GRO on transmits no redirected frame, and an XDP program on
/// OUT itself does not change that; xdp-fwd counts them as lost and says why.
#[test]
fn xdp_fwd_setup_errors_and_an_out_whose_peer_takes_no_xdp_frames() {
    let lab = Lab::with_dut("n");
    let (in_mac, rcv_mac) = (lab.mac("dut", "in0"), lab.mac("rcv", "rcv0"));
    let fails = |args: &[&str]| -> String {
        let out = lab.xpe("dut", args);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(out.stdout.is_empty(), "{out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = fails(&["xdp-fwd", "nosuch0", "out0", "--dst-mac", &rcv_mac]);
    assert!(
        e.starts_with("xpe: interface nosuch0 (IN) does not exist in this network namespace\n"),
        "{e}"
    );
    let e = fails(&["xdp-fwd", "in0", "nosuch1", "--dst-mac", &rcv_mac]);
    assert!(
        e.starts_with("xpe: interface nosuch1 (OUT) does not exist in this network namespace\n"),
        "{e}"
    );
    let e = fails(&["xdp-fwd", "in0", "out0", "--dst-mac", "02:00:00:00:01"]);
    assert_eq!(
        e,
        "xpe: --dst-mac must be a MAC address like 02:00:00:00:01:01, not '02:00:00:00:01'\n"
    );
    let out = lab.xpe_as_nobody("dut", &["xdp-fwd", "in0", "out0", "--dst-mac", &rcv_mac]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("xpe: xpe xdp-fwd needs root"),
        "{out:?}"
    );

    // rcv0 has neither an XDP program nor GRO; the second time out0 has the sink's program.
    for with_program_on_out in [false, true] {
        let on_out = with_program_on_out.then(|| {
            let sink = lab.spawn_xpe("dut", &["sink", "--dev", "out0", "--duration", "3"]);
            lab.wait_for_xdp("dut", "out0");
            sink
        });
        let fwd = xdp_fwd(&lab, &rcv_mac, &["--duration", "2"]);
        let sent = gen(&lab, &v4_to(&in_mac, &["--count", "1000"]));
        assert_all_sent(&sent, 1000);
        let (f, err) = summary_of("xpe xdp-fwd", fwd);
        drop(on_out);
        let case = format!("program on out0: {with_program_on_out}; {f}");
        assert_eq!(f["redirected"].as_u64(), Some(1000), "{case}");
        assert_eq!(f["sent"].as_u64(), Some(0), "{case}");
        assert_eq!(f["lost"].as_u64(), Some(1000), "{case}");
        assert!(
            err.contains("note: out0 took none of the 1000 frames redirected to it: a veth transmits XDP frames only when its peer has an XDP program or GRO on"),
            "{case}: {err}"
        );
    }

    // Attached through a BPF link: a forwarder killed outright leaves nothing on in0.
    let mut fwd = xdp_fwd(&lab, &rcv_mac, &[]);
    fwd.signal("-KILL");
    let _ = fwd.finish();
    let link = lab.exec("dut", &["ip", "link", "show", "in0"]);
    assert!(!link.contains("xdp"), "{link}");
}

//! The tcpdump project's own test captures (830 files in `../shared/corpus/tcpdump-tests`,
//! see its README) against the pipeline and the wire views. Many of them are malformed on
//! purpose: they once crashed or over-read a dissector.
//!
//! Robustness: every frame of every file whose link type is Ethernet goes through `process`
//! on the edge port and on the core port of `examples/dx-pe.toml` (plus default routes), once
//! as captured and once as if sent to us: unicast destination MAC rewritten to the port's and,
//! on the edge port, an attached VLAN tag (captured frames are strangers' and would all stop
//! at the MAC filter or the VLAN lookup). Every frame must end forwarded, dropped or punted,
//! counted once, nothing may panic, and a forwarded IPv4 header must still check out.
//!
//! Agreement with a decoder we did not write: for the MPLS and VLAN captures, tshark's
//! `vlan.*`, `ieee8021ad.*` and `mpls.*` fields must match what `wire::ethernet::Frame`,
//! `wire::vlan::Tag` and `wire::mpls::Entry` read, frame by frame. We only walk what sits
//! directly after the link header (Ethernet and its 802.1Q/802.1ad tags, or PPP), which is
//! all the pipeline ever reads; tshark also decodes tags and labels nested deeper (Ethernet in
//! GRE, ERSPAN or sFlow, MPLS in UDP or in ICMP extensions). Its `frame.protocols` chain says
//! whether a frame has such nested headers; then tshark's field lists are longer than ours and
//! ours must be their prefix, else they must be equal. The frames of all chosen captures go
//! to tshark in one merged pcapng, as it takes longer to start than to decode them.
//!
//! The corpus is read with pcap-file's slice parsers, not `xpe replay`'s reader, record by
//! record as libpcap reads them: a file that cannot be parsed to its end counts as partially
//! read and its frames up to the error are used. A missing corpus or a missing tshark fails
//! the test: it never passes by skipping.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use pcap_file::pcap::PcapParser;
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock;
use pcap_file::pcapng::{Block, PcapNgParser, PcapNgWriter};
use pcap_file::DataLink;
use xpe_control::compile::{compile, Offline};
use xpe_control::config::Config;
use xpe_dataplane::pipeline::{process, Counters, Frame, NoTrace, Verdict};
use xpe_dataplane::tables::{PortId, PortKind, Snapshot};
use xpe_dataplane::wire::ethernet::{self, EtherType};
use xpe_dataplane::wire::{mpls, vlan};

const CONFIG: &str = include_str!("../../examples/dx-pe.toml");

/// Default routes added to the example, in the global table and in its last VRF (vpc-b: a
/// `[[vrf.route]]` at the end of the file belongs to the last `[[vrf]]`), so that captured
/// packets, whatever their addresses, get past the lookup into the TTL, checksum, MTU and
/// push code.
const DEFAULT_ROUTES: &str = r#"
[[vrf.route]]
prefix = "0.0.0.0/0"
via = "198.18.0.2"
labels = [16001, 2002]

[[vrf.route]]
prefix = "::/0"
via = "198.18.0.2"
labels = [16001, 2002]

[[route]]
prefix = "0.0.0.0/0"
via = "198.18.0.2"
"#;

/// Room in front of every frame for a VLAN tag and the deepest push (as `xpe replay` gives).
const HEADROOM: usize = 256;

/// PPP protocol numbers for MPLS unicast and multicast (RFC 3032 §4.3).
const PPP_MPLS: [u16; 2] = [0x0281, 0x0283];

/// The captures the corpus README names as MPLS and VLAN traffic. Most MPLS ones are PPP
/// (link type 9), not Ethernet: the pipeline never sees them, but their label stacks still
/// check our MPLS view against tshark.
const NAMED: &[&str] = &[
    "mpls-ldp-hello.pcap",
    "mpls-traceroute.pcap",
    "mpls-label-heapoverflow.pcap",
    "802.1ad_QinQ.pcap",
    "lspping-fec-ldp.pcap",
    "lspping-fec-rsvp.pcap",
    "icmp-rfc5837.pcap",
];

fn corpus_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/tcpdump-tests");
    assert!(
        dir.is_dir(),
        "the tcpdump capture corpus is missing: expected it at {} (the shared corpus lives \
         beside the repository, in ../shared/corpus; see its README)",
        dir.display()
    );
    dir
}

/// One frame as read from a capture.
struct Captured {
    /// 1-based position among all packet records of the file, as tshark's `frame.number`.
    number: usize,
    linktype: DataLink,
    data: Vec<u8>,
}

/// One capture file, read as far as pcap-file could.
struct Capture {
    name: String,
    frames: Vec<Captured>,
    /// Why the reader stopped before the end, if it did.
    stopped: Option<String>,
}

/// Reads every packet record of a classic pcap or pcapng file, up to the first error.
fn read_capture(path: &Path) -> Capture {
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let mut frames = Vec::new();
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) => {
            return Capture {
                name,
                frames,
                stopped: Some(format!("cannot read: {e}")),
            }
        }
    };
    // pcap-file is a parser of untrusted input like any other: should it panic on one of these
    // files, that file counts as partially read (and is named in the summary), it does not
    // abort the run of the others.
    let stopped = catch_unwind(AssertUnwindSafe(|| {
        if data.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) {
            read_pcapng(&data, &mut frames)
        } else {
            read_pcap(&data, &mut frames)
        }
    }))
    .unwrap_or_else(|_| Some("pcap-file panicked".to_string()));
    Capture {
        name,
        frames,
        stopped,
    }
}

fn read_pcap(data: &[u8], frames: &mut Vec<Captured>) -> Option<String> {
    let (mut rest, parser) = match PcapParser::new(data) {
        Ok(p) => p,
        Err(e) => return Some(e.to_string()),
    };
    // The upper 16 bits of the header's link type field carry FCS information; libpcap (and so
    // tcpdump and tshark) masks them off (LT_LINKTYPE), pcap-file keeps them.
    let linktype = DataLink::from(u32::from(parser.header().datalink) & 0xffff);
    // Raw records: libpcap, hence tcpdump and tshark, reads a record whose original length
    // (or even captured length) exceeds the header's snaplen, and about a fifth of these files
    // were crafted that way; pcap-file's checked packets would refuse them all.
    while !rest.is_empty() {
        match parser.next_raw_packet(rest) {
            Ok((r, p)) => {
                frames.push(Captured {
                    number: frames.len() + 1,
                    linktype,
                    data: p.data.into_owned(),
                });
                rest = r;
            }
            Err(e) => return Some(e.to_string()),
        }
    }
    None
}

fn read_pcapng(data: &[u8], frames: &mut Vec<Captured>) -> Option<String> {
    let (mut rest, mut parser) = match PcapNgParser::new(data) {
        Ok(p) => p,
        Err(e) => return Some(e.to_string()),
    };
    let mut number = 0;
    while !rest.is_empty() {
        let (r, block) = match parser.next_block(rest) {
            Ok(b) => b,
            Err(e) => return Some(e.to_string()),
        };
        // Every block is at least 12 bytes; guard anyway so a parser bug cannot spin forever.
        if r.len() >= rest.len() {
            return Some("the parser made no progress".into());
        }
        rest = r;
        // tshark numbers every packet-carrying block, whatever its interface.
        let (interface, data) = match block {
            Block::EnhancedPacket(p) => (p.interface_id as usize, p.data),
            Block::Packet(p) => (usize::from(p.interface_id), p.data),
            Block::SimplePacket(p) => (0, p.data),
            _ => continue,
        };
        number += 1;
        let Some(idb) = parser.interfaces().get(interface) else {
            return Some(format!(
                "packet {number} names interface {interface}, which has no description"
            ));
        };
        frames.push(Captured {
            number,
            linktype: idb.linktype,
            data: data.into_owned(),
        });
    }
    None
}

/// Every file of the corpus, read once for all the tests here.
fn corpus() -> &'static [Capture] {
    static CORPUS: OnceLock<Vec<Capture>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let dir = corpus_dir();
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
            .map(|e| e.expect("a directory entry").path())
            .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
            .collect();
        paths.sort();
        assert!(
            paths.len() >= 800,
            "{} holds {} captures, expected the 830 of its README",
            dir.display(),
            paths.len()
        );
        paths.iter().map(|p| read_capture(p)).collect()
    })
}

fn snapshot() -> &'static Snapshot {
    static SNAP: OnceLock<Snapshot> = OnceLock::new();
    SNAP.get_or_init(|| {
        let text = format!("{CONFIG}{DEFAULT_ROUTES}");
        let origin = "examples/dx-pe.toml with default routes";
        let config = Config::parse(&text, origin).unwrap_or_else(|e| panic!("{e}"));
        compile(&config, &Offline)
            .unwrap_or_else(|e| panic!("{origin} does not compile: {e}"))
            .snapshot
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ------------------------------------------------------------------ robustness

/// RFC 1071 Internet checksum, written here so it is not the code under test.
fn inet_checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    for pair in data.chunks(2) {
        sum += u32::from(u16::from_be_bytes([
            pair[0],
            pair.get(1).copied().unwrap_or(0),
        ]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Whether an IPv4 header we forward (after the L2 header and any labels we push) still sums
/// to zero: the pipeline checked it on the way in and rewrote the TTL incrementally.
fn forwarded_ipv4_ok(out: &[u8]) -> bool {
    let mut at = 12;
    let mut ethertype = [out[12], out[13]];
    if ethertype == [0x81, 0x00] && out.len() >= 18 {
        ethertype = [out[16], out[17]];
        at = 16;
    }
    at += 2;
    if ethertype == [0x88, 0x47] {
        while let Some(entry) = out.get(at..at + 4) {
            at += 4;
            if entry[2] & 1 == 1 {
                break;
            }
        }
    } else if ethertype != [0x08, 0x00] {
        return true;
    }
    let Some(&vihl) = out.get(at) else {
        return true;
    };
    let ihl = usize::from(vihl & 0x0f) * 4;
    vihl >> 4 != 4
        || out
            .get(at..at + ihl)
            .is_some_and(|h| ihl >= 20 && inet_checksum(h) == 0)
}

/// The VLAN of the edge attachment of VRF vpc-b in examples/dx-pe.toml (with default routes).
const EDGE_VLAN: u16 = 102;

/// The frame as if sent to us: a unicast destination MAC becomes the port's, and on the edge
/// port the frame is tagged with an attached VLAN (retagged if it had an 802.1Q tag). Without
/// this every captured frame would stop at the MAC filter or the VLAN lookup; with it, the
/// corpus's IP, ARP and MPLS packets, malformed ones included, reach the stages behind them.
fn addressed_to(snap: &Snapshot, ingress: PortId, data: &[u8]) -> Vec<u8> {
    let port = snap.port(ingress);
    let mut out = data.to_vec();
    if out.len() >= 6 && out[0] & 1 == 0 {
        out[..6].copy_from_slice(&port.mac.0);
    }
    if port.kind == PortKind::Edge && out.len() >= 14 {
        if out[12..14] == [0x81, 0x00] && out.len() >= 16 {
            let tci = u16::from_be_bytes([out[14], out[15]]) & 0xf000 | EDGE_VLAN;
            out[14..16].copy_from_slice(&tci.to_be_bytes());
        } else {
            let mut tag = vec![0x81, 0x00];
            tag.extend_from_slice(&EDGE_VLAN.to_be_bytes());
            out.splice(12..12, tag);
        }
    }
    out
}

#[test]
fn every_ethernet_frame_is_accounted_for_on_both_ports() {
    let started = Instant::now();
    let snap = snapshot();
    let ports: Vec<(&str, PortId)> = ["dx0", "core0"]
        .iter()
        .map(|n| {
            (
                *n,
                snap.port_by_name(n)
                    .unwrap_or_else(|| panic!("examples/dx-pe.toml has no port {n}")),
            )
        })
        .collect();
    // counters[port][0]: as captured; counters[port][1]: addressed to the port (`addressed_to`).
    let mut counters: Vec<[Counters; 2]> = ports
        .iter()
        .map(|_| {
            [
                Counters::new(snap.ports().len()),
                Counters::new(snap.ports().len()),
            ]
        })
        .collect();
    let (mut frames, mut other_links, mut offered) = (0u64, 0u64, 0u64);
    let mut buf = Vec::new();
    let captures = corpus();
    for capture in captures {
        for f in &capture.frames {
            if f.linktype != DataLink::ETHERNET {
                other_links += 1;
                continue;
            }
            frames += 1;
            for (p, &(name, ingress)) in ports.iter().enumerate() {
                for (addressed, c) in counters[p].iter_mut().enumerate() {
                    let input = if addressed == 1 {
                        addressed_to(snap, ingress, &f.data)
                    } else {
                        f.data.clone()
                    };
                    buf.clear();
                    buf.resize(HEADROOM, 0);
                    buf.extend_from_slice(&input);
                    let before = c.forwarded + c.total_drops() + c.total_punts();
                    let mut frame = Frame::new(&mut buf, HEADROOM, input.len())
                        .expect("the buffer holds the frame");
                    let verdict = catch_unwind(AssertUnwindSafe(|| {
                        process(snap, ingress, &mut frame, c, &mut NoTrace)
                    }))
                    .unwrap_or_else(|_| {
                        panic!(
                            "process panicked on {name} with frame {} of {}: {}",
                            f.number,
                            capture.name,
                            hex(&input)
                        )
                    });
                    offered += 1;
                    assert_eq!(
                        c.forwarded + c.total_drops() + c.total_punts(),
                        before + 1,
                        "{verdict:?} not counted once: frame {} of {} on {name}",
                        f.number,
                        capture.name
                    );
                    if let Verdict::Forward(egress) = verdict {
                        let out = frame.data();
                        assert!(
                            out.len() >= 14,
                            "forwarded a {}-byte frame: frame {} of {}",
                            out.len(),
                            f.number,
                            capture.name
                        );
                        assert_eq!(
                            &out[6..12],
                            &snap.port(egress).mac.0,
                            "wrong source MAC: frame {} of {}",
                            f.number,
                            capture.name
                        );
                        assert!(
                            forwarded_ipv4_ok(out),
                            "forwarded IPv4 with a bad header checksum: frame {} of {} in on {name} as {}, out as {}",
                            f.number,
                            capture.name,
                            hex(&input),
                            hex(out)
                        );
                    }
                }
            }
        }
    }
    let total = counters
        .iter()
        .flatten()
        .map(|c| c.forwarded + c.total_drops() + c.total_punts())
        .sum::<u64>();
    assert_eq!(
        total, offered,
        "forwarded + drops + punts != frames offered"
    );
    assert_eq!(offered, frames * 4);
    assert!(
        frames >= 1000,
        "only {frames} Ethernet frames in the corpus: is it the tcpdump one?"
    );
    let partial: Vec<String> = captures
        .iter()
        .filter_map(|c| {
            c.stopped
                .as_ref()
                .map(|why| format!("{} ({} frames, {why})", c.name, c.frames.len()))
        })
        .collect();
    let line = |c: &Counters| format!("{}/{}/{}", c.forwarded, c.total_drops(), c.total_punts());
    println!(
        "corpus: {} files ({} read partially), {frames} Ethernet frames ({other_links} of other link types skipped) in {:.2?}; \
         forwarded/dropped/punted as captured: dx0 {} core0 {}; addressed to the port: dx0 {} core0 {}",
        captures.len(),
        partial.len(),
        started.elapsed(),
        line(&counters[0][0]),
        line(&counters[1][0]),
        line(&counters[0][1]),
        line(&counters[1][1]),
    );
    if !partial.is_empty() {
        println!("partially read: {}", partial.join("; "));
    }
}

// ------------------------------------------------------------------ the XDP fast path

/// Every Ethernet frame of the corpus, as captured and addressed to the port, in on both ports
/// of the example PE through the XDP fast path (BPF_PROG_TEST_RUN) and the pipeline: where the
/// program forwards, the bytes and the egress port are the pipeline's; elsewhere the frame is
/// handed on unchanged; and `xpe trace`'s answer (`FastTables::path`) is the program's.
///
/// Needs root: the programs run in a network namespace of this test thread's own
/// (`ByIngress::load`). Frames under 14 bytes or over a page are not run (a test run refuses
/// them; the program hands multi-buffer frames to the workers by its first check).
#[test]
fn the_xdp_fast_path_agrees_with_the_pipeline_on_every_frame() {
    let snap = snapshot();
    use xpe_dataplane::xsk::fast::{Agreed, Buffers, ByIngress};
    let programs =
        ByIngress::load(snap, Buffers::One).unwrap_or_else(|e| panic!("this test needs root: {e}"));
    let (mut forwarded, mut passed, mut skipped) = (0u64, 0u64, 0u64);
    let mut forwarded6 = 0u64;
    for ingress in (0..snap.ports().len() as u16).map(PortId) {
        for capture in corpus() {
            for f in capture
                .frames
                .iter()
                .filter(|f| f.linktype == DataLink::ETHERNET)
            {
                for input in [f.data.clone(), addressed_to(snap, ingress, &f.data)] {
                    match programs.agree(snap, ingress, &input) {
                        Ok(Agreed::Kernel(_)) => {
                            forwarded += 1;
                            forwarded6 += u64::from(carries_ipv6(&input));
                        }
                        Ok(Agreed::Workers) => passed += 1,
                        Ok(Agreed::NotRun) => skipped += 1,
                        Err(e) => panic!(
                            "frame {} of {} in on port {}: {e}\n{}",
                            f.number,
                            capture.name,
                            ingress.0,
                            hex(&input)
                        ),
                    }
                }
            }
        }
    }
    println!(
        "corpus through the fast path: {forwarded} forwarded in the kernel ({forwarded6} IPv6), {passed} handed on untouched, {skipped} not run (under 14 or over 3400 bytes)"
    );
    assert!(
        forwarded > 100,
        "only {forwarded} frames forwarded: the test checks little"
    );
}

/// Whether `frame` carries IPv6: as its EtherType, after one 802.1Q tag, or below its labels.
fn carries_ipv6(frame: &[u8]) -> bool {
    let be16 = |at: usize| {
        frame
            .get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    };
    match be16(12) {
        Some(0x86dd) => true,
        Some(0x8100) => be16(16) == Some(0x86dd),
        Some(0x8847) => {
            let bottom = (14..frame.len())
                .step_by(4)
                .find(|&at| frame.get(at + 2).is_some_and(|s| s & 1 != 0));
            bottom
                .and_then(|at| frame.get(at + 4))
                .is_some_and(|b| b >> 4 == 6)
        }
        _ => false,
    }
}

// ------------------------------------------------------------------ agreement with tshark

/// A VLAN tag as our view reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TagFields {
    vid: u16,
    pcp: u8,
    dei: bool,
}

/// What sits directly after the link header, read with our wire views.
#[derive(Debug, Default, PartialEq, Eq)]
struct Outer {
    /// 802.1Q (TPID 0x8100) tags, outermost first.
    ctags: Vec<TagFields>,
    /// 802.1ad (TPID 0x88a8) tags, outermost first.
    stags: Vec<TagFields>,
    labels: Vec<mpls::LabelEntry>,
}

impl Outer {
    fn is_empty(&self) -> bool {
        self.ctags.is_empty() && self.stags.is_empty() && self.labels.is_empty()
    }
}

/// Walks the label stack at the start of `bytes` down to the bottom or the end of the bytes.
fn walk_labels(mut bytes: &[u8], out: &mut Vec<mpls::LabelEntry>) {
    while let Ok(entry) = mpls::Entry::new_checked(bytes) {
        out.push(entry.label_entry());
        if entry.bos() {
            break;
        }
        // `payload()` borrows the view; the entry is known to be whole, so step over it.
        bytes = &bytes[mpls::HEADER_LEN..];
    }
}

/// The tags and labels right after the link header of an Ethernet or PPP frame.
fn outer_headers(linktype: DataLink, data: &[u8]) -> Outer {
    let mut out = Outer::default();
    if linktype == DataLink::PPP {
        // RFC 1662 framing: address 0xff, control 0x03, then the protocol, unless the peers
        // negotiated address/control compression.
        let at = if data.starts_with(&[0xff, 0x03]) {
            2
        } else {
            0
        };
        if let Some(p) = data.get(at..at + 2) {
            if PPP_MPLS.contains(&u16::from_be_bytes([p[0], p[1]])) {
                walk_labels(&data[at + 2..], &mut out.labels);
            }
        }
        return out;
    }
    let Ok(eth) = ethernet::Frame::new_checked(data) else {
        return out;
    };
    let mut ethertype = eth.ethertype();
    let mut rest = eth.payload();
    while ethertype.is_vlan_tpid() {
        let Ok(tag) = vlan::Tag::new_checked(rest) else {
            break;
        };
        let fields = TagFields {
            vid: tag.vlan_id_raw(),
            pcp: tag.pcp().get(),
            dei: tag.dei(),
        };
        if ethertype == EtherType::Vlan {
            out.ctags.push(fields);
        } else {
            out.stags.push(fields);
        }
        ethertype = tag.inner_ethertype();
        rest = &rest[vlan::HEADER_LEN..];
    }
    if matches!(ethertype, EtherType::Mpls | EtherType::MplsMulticast) {
        walk_labels(rest, &mut out.labels);
    }
    out
}

const TSHARK_FIELDS: &[&str] = &[
    "frame.number",
    "frame.protocols",
    "vlan.id",
    "vlan.priority",
    "vlan.dei",
    "ieee8021ad.id",
    "ieee8021ad.priority",
    "ieee8021ad.dei",
    "mpls.label",
    "mpls.exp",
    "mpls.bottom",
    "mpls.ttl",
];

/// One frame as tshark decodes it.
struct Decoded {
    number: usize,
    protocols: Vec<String>,
    outer: Outer,
}

/// Writes `frames` into one pcapng (interface 0 Ethernet, 1 PPP) and decodes it with tshark:
/// one tshark start (~0.3 s) instead of one per capture. Frame `i` of the list is tshark's
/// frame `i + 1`. Failing to start tshark fails the test with the fix.
fn tshark(frames: &[(&Capture, &Captured)]) -> String {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("corpus-vlan-mpls-{}.pcapng", std::process::id()));
    let file = std::fs::File::create(&path)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
    let mut w = PcapNgWriter::new(std::io::BufWriter::new(file)).expect("writes a section header");
    for linktype in [DataLink::ETHERNET, DataLink::PPP] {
        let idb = InterfaceDescriptionBlock {
            linktype,
            snaplen: 0,
            options: vec![],
        };
        w.write_pcapng_block(idb)
            .expect("writes an interface block");
    }
    for (_, f) in frames {
        let epb = EnhancedPacketBlock {
            interface_id: u32::from(f.linktype == DataLink::PPP),
            timestamp: Duration::ZERO,
            original_len: f.data.len() as u32,
            data: Cow::Borrowed(&f.data),
            options: vec![],
        };
        w.write_pcapng_block(epb).expect("writes a packet block");
    }
    w.into_inner().flush().expect("flushes the merged capture");
    let mut cmd = Command::new("tshark");
    cmd.args(["-n", "-r"]).arg(&path).args([
        "-T",
        "fields",
        "-E",
        "separator=/t",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=,",
    ]);
    for f in TSHARK_FIELDS {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run tshark ({e}): it is the reference decoder of this test; install it with scripts/setup.sh (as root)")
    });
    std::fs::remove_file(&path).unwrap_or_else(|e| panic!("cannot remove {}: {e}", path.display()));
    assert!(
        out.status.success(),
        "tshark failed on the merged capture: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("tshark prints UTF-8")
}

fn parse_tshark(line: &str, file: &str) -> Decoded {
    let cols: Vec<&str> = line.split('\t').collect();
    assert_eq!(
        cols.len(),
        TSHARK_FIELDS.len(),
        "{file}: unexpected tshark line {line:?}"
    );
    let list = |i: usize| -> Vec<u32> {
        cols[i]
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse()
                    .unwrap_or_else(|_| panic!("{file}: tshark field {} = {s:?}", TSHARK_FIELDS[i]))
            })
            .collect()
    };
    let tags = |id: usize| -> Vec<TagFields> {
        let (vid, pcp, dei) = (list(id), list(id + 1), list(id + 2));
        assert!(
            vid.len() == pcp.len() && vid.len() == dei.len(),
            "{file}: ragged tshark tag fields in {line:?}"
        );
        (0..vid.len())
            .map(|i| TagFields {
                vid: vid[i] as u16,
                pcp: pcp[i] as u8,
                dei: dei[i] != 0,
            })
            .collect()
    };
    let (label, tc, bos, ttl) = (list(8), list(9), list(10), list(11));
    assert!(
        label.len() == tc.len() && tc.len() == bos.len() && bos.len() == ttl.len(),
        "{file}: ragged tshark MPLS fields in {line:?}"
    );
    let labels = (0..label.len())
        .map(|i| {
            mpls::LabelEntry::from_u32(mpls::encode(
                label[i],
                tc[i] as u8,
                bos[i] != 0,
                ttl[i] as u8,
            ))
        })
        .collect();
    Decoded {
        number: cols[0]
            .parse()
            .unwrap_or_else(|_| panic!("{file}: tshark frame number {:?}", cols[0])),
        protocols: cols[1].split(':').map(str::to_string).collect(),
        outer: Outer {
            ctags: tags(2),
            stags: tags(5),
            labels,
        },
    }
}

/// Whether tshark found tags or labels of each kind (802.1Q, 802.1ad, MPLS) deeper than the
/// headers right after the link layer: then its field lists hold more than ours.
fn nested(protocols: &[String]) -> [bool; 3] {
    let mut i = 1; // protocols[0] is the link layer: eth or ppp.
    while i < protocols.len()
        && matches!(protocols[i].as_str(), "ethertype" | "vlan" | "ieee8021ad")
    {
        i += 1;
    }
    if protocols.get(i).map(String::as_str) == Some("mpls") {
        i += 1;
    }
    let deeper = |name: &str| {
        protocols[i.min(protocols.len())..]
            .iter()
            .any(|p| p == name)
    };
    [deeper("vlan"), deeper("ieee8021ad"), deeper("mpls")]
}

/// Ours equal tshark's, or are their prefix when tshark also decoded nested headers.
fn agrees<T: PartialEq>(ours: &[T], theirs: &[T], nested: bool) -> bool {
    if nested {
        theirs.starts_with(ours)
    } else {
        ours == theirs
    }
}

#[test]
fn tshark_reads_the_same_vlan_tags_and_labels() {
    let started = Instant::now();
    let captures = corpus();
    // The named captures, those whose names say MPLS or VLAN, and every capture in which our
    // walk finds a tag or a label right after the link header.
    let by_name = |n: &str| {
        let lower = n.to_ascii_lowercase();
        NAMED.contains(&n)
            || ["mpls", "vlan", "802.1q", "qinq", "lspping"]
                .iter()
                .any(|k| lower.contains(k))
    };
    let chosen: Vec<&Capture> = captures
        .iter()
        .filter(|c| {
            by_name(&c.name)
                || c.frames
                    .iter()
                    .any(|f| !outer_headers(f.linktype, &f.data).is_empty())
        })
        .collect();
    let names: BTreeSet<&str> = chosen.iter().map(|c| c.name.as_str()).collect();
    for n in NAMED {
        assert!(names.contains(n), "{n} is missing from the corpus");
    }
    let frames: Vec<(&Capture, &Captured)> = chosen
        .iter()
        .flat_map(|c| c.frames.iter().map(move |f| (*c, f)))
        .filter(|(_, f)| f.linktype == DataLink::ETHERNET || f.linktype == DataLink::PPP)
        .collect();
    let text = tshark(&frames);
    let decoded: Vec<Decoded> = text
        .lines()
        .map(|l| parse_tshark(l, "the merged capture"))
        .collect();
    assert_eq!(
        decoded.len(),
        frames.len(),
        "tshark decoded {} of the {} frames",
        decoded.len(),
        frames.len()
    );

    let (mut tagged, mut labelled, mut labelled_on_ethernet) = (0usize, 0usize, 0usize);
    let mut mismatches = Vec::new();
    for (i, ((capture, f), d)) in frames.iter().zip(&decoded).enumerate() {
        assert_eq!(d.number, i + 1, "tshark skipped or reordered frames");
        let ours = outer_headers(f.linktype, &f.data);
        let [nested_c, nested_s, nested_l] = nested(&d.protocols);
        let ok = agrees(&ours.ctags, &d.outer.ctags, nested_c)
            && agrees(&ours.stags, &d.outer.stags, nested_s)
            && agrees(&ours.labels, &d.outer.labels, nested_l);
        if !ok {
            mismatches.push(format!(
                "{} frame {} ({}):\n    ours   {:?}\n    tshark {:?}",
                capture.name,
                f.number,
                d.protocols.join(":"),
                ours,
                d.outer
            ));
        }
        tagged += usize::from(!ours.ctags.is_empty() || !ours.stags.is_empty());
        labelled += usize::from(!ours.labels.is_empty());
        labelled_on_ethernet +=
            usize::from(!ours.labels.is_empty() && f.linktype == DataLink::ETHERNET);
    }
    println!(
        "tshark agreement: {} files, {} frames compared ({tagged} with VLAN tags, {labelled} with labels, {labelled_on_ethernet} of them on Ethernet), \
         in {:.2?}",
        chosen.len(),
        frames.len(),
        started.elapsed()
    );
    assert!(
        mismatches.is_empty(),
        "{} frames read differently:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    // Not vacuous: the corpus holds tens of tagged and labelled frames at the link level.
    assert!(
        tagged >= 20,
        "only {tagged} frames with VLAN tags were compared"
    );
    assert!(
        labelled >= 10,
        "only {labelled} frames with labels were compared"
    );
}

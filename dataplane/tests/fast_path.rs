//! The XDP fast path against the pipeline (issue 17, first part: LSR swap). Each frame runs
//! through `process` and through the `xpe_fast` program with BPF_PROG_TEST_RUN:
//! - where the program forwards (XDP_REDIRECT), the pipeline forwards the same bytes to the
//!   port whose DEVMAP slot the label holds;
//! - where it does not, it passes the frame on unchanged (XDP_PASS here: no AF_XDP socket is
//!   bound in a test run), and the pipeline may do anything.
//!
//! Needs root (BPF); without it the test fails and says so. It creates nothing: the ingress
//! device of every run is loopback (ifindex 1), whose index also fills the DEVMAP.

use core::net::Ipv4Addr;

use xpe_dataplane::pipeline::{process, Counters, Frame, NoTrace, Verdict};
use xpe_dataplane::tables::{
    Adjacency, AdjacencyId, Attachment, AttachmentId, IlmAction, IlmEntry, IlmOrigin, Ipv4Lpm,
    Ipv6Lpm, LabelStack, Port, PortId, PortKind, Snapshot, SnapshotParts, TtlMode, Vrf, VrfId,
};
use xpe_dataplane::wire::ethernet::MacAddr;
use xpe_dataplane::wire::mpls::Label;
use xpe_dataplane::xsk::fast::{FastPath, FastTables};

const XDP_PASS: u32 = 2;
const XDP_REDIRECT: u32 = 4;
/// Both core ports share one MAC: the test's ports all map to loopback, and the program keys
/// its ports by ingress interface.
const OUR_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0x01, 0x01]);
const NEXT_HOP: [u8; 6] = [0x02, 0, 0, 0, 0xbb, 0x02];
const HEADROOM: usize = 64;
const LO: u32 = 1;

fn label(n: u32) -> Label {
    Label::new(n).unwrap()
}

fn swap(n: u32, adj: u32, out: &[u32]) -> IlmEntry {
    let out: Vec<Label> = out.iter().map(|&l| label(l)).collect();
    IlmEntry {
        label: label(n),
        action: IlmAction::Swap {
            adj: AdjacencyId(adj),
            out: LabelStack::new(&out).unwrap(),
        },
        origin: IlmOrigin::LabelEntry(1),
        counter: 0,
    }
}

/// core0 and core1 (core ports, untagged, MTU 1500); a resolved next hop on core1 (adjacency
/// 0) and an unresolved one (1). Labels: 16001 -> 16002 (fast), 16003 -> 16004/16005 (two
/// labels: pipeline), 16006 -> 16007 to the unresolved hop (pipeline), 16008 PHP (pipeline).
fn snapshot() -> Snapshot {
    snapshot_in(TtlMode::Uniform)
}

/// [`snapshot`] in TTL mode `ttl_mode`.
fn snapshot_in(ttl_mode: TtlMode) -> Snapshot {
    let attachment = |port: u16| Attachment {
        port: PortId(port),
        vlan: None,
        vrf: VrfId::GLOBAL,
        address: None,
        address6: None,
    };
    Snapshot::new(SnapshotParts {
        name: "fast".into(),
        ports: vec![
            Port::new("core0".into(), PortKind::Core, OUR_MAC, 1500),
            Port::new("core1".into(), PortKind::Core, OUR_MAC, 1500),
        ],
        attachments: vec![attachment(0), attachment(1)],
        adjacencies: vec![
            Adjacency::new(
                AttachmentId(1),
                Ipv4Addr::new(198, 18, 0, 6),
                Some(MacAddr(NEXT_HOP)),
            ),
            Adjacency::new(AttachmentId(1), Ipv4Addr::new(198, 18, 0, 7), None),
        ],
        vrfs: vec![Vrf {
            name: "global".into(),
            table_label: None,
            v4: Ipv4Lpm::new(),
            v6: Ipv6Lpm::new(),
        }],
        ilm: vec![
            swap(16001, 0, &[16002]),
            swap(16003, 0, &[16004, 16005]),
            swap(16006, 1, &[16007]),
            IlmEntry {
                label: label(16008),
                action: IlmAction::Pop {
                    adj: AdjacencyId(0),
                },
                origin: IlmOrigin::LabelEntry(4),
                counter: 0,
            },
        ],
        ttl_mode,
        ..Default::default()
    })
    .unwrap()
}

/// An Ethernet frame to `dst` with EtherType `ethertype`, then `labels` (label, TC, S, TTL),
/// then `payload`.
fn frame(dst: [u8; 6], ethertype: u16, labels: &[(u32, u8, bool, u8)], payload: &[u8]) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&[0x02, 0, 0, 0, 0xaa, 0x01]);
    f.extend_from_slice(&ethertype.to_be_bytes());
    for &(l, tc, s, ttl) in labels {
        let w = l << 12 | u32::from(tc) << 9 | u32::from(s) << 8 | u32::from(ttl);
        f.extend_from_slice(&w.to_be_bytes());
    }
    f.extend_from_slice(payload);
    f
}

/// An IPv4 header and 26 bytes of payload (the pipeline does not read it on a swap); its
/// header checksum is left zero, so a pipeline that looks at it drops it.
fn ip_payload() -> Vec<u8> {
    let mut p = vec![
        0x45, 0, 0, 46, 0, 0, 0x40, 0, 64, 17, 0, 0, 198, 18, 0, 1, 198, 19, 0, 1,
    ];
    p.extend_from_slice(&[0x5a; 26]);
    p
}

/// A valid IPv4 packet of `total` bytes (header checksum right), TTL `ttl`.
fn ipv4(total: u16, ttl: u8) -> Vec<u8> {
    let [hi, lo] = total.to_be_bytes();
    let mut p = vec![
        0x45, 0, hi, lo, 0x12, 0x34, 0x40, 0, ttl, 17, 0, 0, 198, 18, 0, 1, 198, 19, 0, 1,
    ];
    let sum: u32 = p
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    let sum = (sum & 0xffff) + (sum >> 16);
    let sum = !(((sum & 0xffff) + (sum >> 16)) as u16);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    p.resize(usize::from(total), 0x5a);
    p
}

/// An IPv6 packet with `payload` bytes of UDP payload, hop limit `hl`.
fn ipv6(payload: u16, hl: u8) -> Vec<u8> {
    let [hi, lo] = payload.to_be_bytes();
    let mut p = vec![0x60, 0, 0, 0, hi, lo, 17, hl];
    p.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    p.extend_from_slice(&[0; 11]);
    p.push(1);
    p.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    p.extend_from_slice(&[0; 11]);
    p.push(2);
    p.resize(40 + usize::from(payload), 0x5a);
    p
}

fn cases() -> Vec<(&'static str, Vec<u8>)> {
    let us = OUR_MAC.0;
    let ip = ip_payload();
    let deep: Vec<(u32, u8, bool, u8)> = (0..17).map(|i| (16001 + i, 0, false, 64)).collect();
    vec![
        (
            "swap over IP",
            frame(us, 0x8847, &[(16001, 0, true, 64)], &ip),
        ),
        (
            "swap, TC 5",
            frame(us, 0x8847, &[(16001, 5, true, 64)], &ip),
        ),
        (
            "swap over a label",
            frame(
                us,
                0x8847,
                &[(16001, 3, false, 9), (2001, 3, true, 64)],
                &ip,
            ),
        ),
        (
            "swap, TTL 2",
            frame(us, 0x8847, &[(16001, 0, true, 2)], &ip),
        ),
        (
            "swap, TTL 1",
            frame(us, 0x8847, &[(16001, 0, true, 1)], &ip),
        ),
        (
            "swap, TTL 0",
            frame(us, 0x8847, &[(16001, 0, true, 0)], &ip),
        ),
        (
            "two labels out",
            frame(us, 0x8847, &[(16003, 0, true, 64)], &ip),
        ),
        (
            "unresolved hop",
            frame(us, 0x8847, &[(16006, 0, true, 64)], &ip),
        ),
        (
            "PHP, checksum wrong",
            frame(us, 0x8847, &[(16008, 0, true, 64)], &ip),
        ),
        (
            "PHP to IPv4",
            frame(us, 0x8847, &[(16008, 0, true, 9)], &ipv4(46, 64)),
        ),
        (
            "PHP to IPv4, TTL 2",
            frame(us, 0x8847, &[(16008, 0, true, 2)], &ipv4(46, 64)),
        ),
        (
            "PHP to IPv4 with padding",
            frame(us, 0x8847, &[(16008, 0, true, 64)], &{
                let mut p = ipv4(28, 64);
                p.extend_from_slice(&[0; 18]);
                p
            }),
        ),
        (
            "PHP to IPv4, total too long",
            frame(us, 0x8847, &[(16008, 0, true, 64)], &ipv4(46, 64)[..40]),
        ),
        (
            "PHP to IPv6",
            frame(us, 0x8847, &[(16008, 0, true, 30)], &ipv6(8, 64)),
        ),
        (
            "PHP to a label",
            frame(
                us,
                0x8847,
                &[(16008, 0, false, 30), (2001, 0, true, 64)],
                &ipv4(46, 64),
            ),
        ),
        (
            "PHP, TTL 1",
            frame(us, 0x8847, &[(16008, 0, true, 1)], &ipv4(46, 64)),
        ),
        (
            "PHP to something else",
            frame(us, 0x8847, &[(16008, 0, true, 64)], &[0x00; 40]),
        ),
        (
            "unknown label",
            frame(us, 0x8847, &[(16100, 0, true, 64)], &ip),
        ),
        ("explicit null", frame(us, 0x8847, &[(0, 0, true, 64)], &ip)),
        (
            "other MAC",
            frame(
                [0x02, 0, 0, 0, 0x09, 0x09],
                0x8847,
                &[(16001, 0, true, 64)],
                &ip,
            ),
        ),
        (
            "broadcast",
            frame([0xff; 6], 0x8847, &[(16001, 0, true, 64)], &ip),
        ),
        (
            "multicast MPLS",
            frame(us, 0x8848, &[(16001, 0, true, 64)], &ip),
        ),
        (
            "no bottom of stack",
            frame(us, 0x8847, &[(16001, 0, false, 64)], &[]),
        ),
        ("stack too deep", frame(us, 0x8847, &deep, &ip)),
        ("label cut short", frame(us, 0x8847, &[], &[0x03, 0xe8])),
        ("IPv4", frame(us, 0x0800, &[], &ip)),
        (
            "too big for the MTU",
            frame(us, 0x8847, &[(16001, 0, true, 64)], &vec![0x45; 1500]),
        ),
        (
            "exactly the MTU",
            frame(us, 0x8847, &[(16001, 0, true, 64)], &vec![0x45; 1496]),
        ),
    ]
}

#[test]
fn the_fast_path_forwards_what_the_pipeline_forwards_and_passes_the_rest_untouched() {
    both_paths_agree(snapshot());
}

#[test]
fn in_pipe_mode_too() {
    // PHP leaves the IP TTL alone in pipe mode (RFC 3443): the same cases, the same answers.
    both_paths_agree(snapshot_in(TtlMode::Pipe));
}

/// Every case through both paths over `snap`; checks the fast path's counters too.
fn both_paths_agree(snap: Snapshot) {
    let tables = FastTables::compile(&snap);
    assert_eq!(
        tables.labels.keys().copied().collect::<Vec<_>>(),
        [16001, 16008],
        "the one-label swap and the PHP to a resolved untagged hop are fast"
    );
    let program = match FastPath::load(vec![LO, LO], &tables) {
        Ok(p) => p,
        Err(e) => panic!("this test needs root (BPF): {e}"),
    };
    let mut forwarded = 0;
    for (name, bytes) in cases() {
        let (action, out) = program.test_run(&bytes, LO).unwrap();
        let mut buf = vec![0u8; HEADROOM + bytes.len()];
        buf[HEADROOM..].copy_from_slice(&bytes);
        let mut f = Frame::new(&mut buf, HEADROOM, bytes.len()).unwrap();
        let mut counters = Counters::new(2);
        let verdict = process(&snap, PortId(0), &mut f, &mut counters, &mut NoTrace);
        match action {
            XDP_REDIRECT => {
                forwarded += 1;
                assert_eq!(verdict, Verdict::Forward(PortId(1)), "{name}");
                assert_eq!(out, f.data(), "{name}: the bytes differ");
            }
            XDP_PASS => assert_eq!(out, bytes, "{name}: passed on changed"),
            other => panic!("{name}: XDP action {other}"),
        }
    }
    // The cases the fast path takes: swap over IP, TC 5, over a label, TTL 2, exactly the MTU;
    // PHP to IPv4 (TTL 9, TTL 2, with padding), to IPv6, to a label.
    assert_eq!(forwarded, 10);
    // Its counters say the same. Both ports are loopback here, so the port map holds the
    // later one: every frame came in on port 1, and the swaps went out of port 1.
    let c = program.counters().unwrap();
    assert_eq!(c.forwarded(), 10);
    assert_eq!(c.ports[1].tx_packets, 10);
    assert_eq!(
        c.ports[1].rx_packets + c.ports[1].passed,
        cases().len() as u64
    );
    assert_eq!(
        c.labels,
        [(0, 5), (3, 5)],
        "labels 16001 and 16008 count in their slots"
    );
}

#[test]
fn a_table_update_switches_the_program_to_the_new_table_whole() {
    let snap = snapshot();
    let mut program = match FastPath::load(vec![LO, LO], &FastTables::compile(&snap)) {
        Ok(p) => p,
        Err(e) => panic!("this test needs root (BPF): {e}"),
    };
    let to = |l: u32| frame(OUR_MAC.0, 0x8847, &[(l, 0, true, 64)], &ip_payload());
    assert_eq!(program.test_run(&to(16001), LO).unwrap().0, XDP_REDIRECT);
    // 16001 goes, 16009 -> 16010 comes: one update, published as one switch.
    let mut next = FastTables::compile(&snap);
    let entry = next.labels.remove(&16001).unwrap();
    next.labels.insert(
        16009,
        xpe_ebpf::FastLabel {
            out: 16010 << 12,
            ..entry
        },
    );
    let delta = program.apply(&next).unwrap();
    assert_eq!((delta.written, delta.removed, delta.labels), (1, 1, 2));
    assert_eq!(program.test_run(&to(16001), LO).unwrap().0, XDP_PASS);
    let (action, out) = program.test_run(&to(16009), LO).unwrap();
    assert_eq!(action, XDP_REDIRECT);
    assert_eq!(
        u32::from_be_bytes(out[14..18].try_into().unwrap()) >> 12,
        16010
    );
    // Back again: the spare map still held the first table, and is brought up to date.
    let delta = program.apply(&FastTables::compile(&snap)).unwrap();
    assert_eq!((delta.written, delta.removed, delta.labels), (1, 1, 2));
    assert_eq!(program.test_run(&to(16001), LO).unwrap().0, XDP_REDIRECT);
    assert_eq!(program.test_run(&to(16009), LO).unwrap().0, XDP_PASS);
    // The same tables again change nothing.
    let delta = program.apply(&FastTables::compile(&snap)).unwrap();
    assert_eq!((delta.written, delta.removed, delta.labels), (0, 0, 2));
}

/// xorshift64: a fixed sequence, so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn mutated_frames_get_the_same_answer_from_both_paths() {
    let snap = snapshot();
    let program = match FastPath::load(vec![LO, LO], &FastTables::compile(&snap)) {
        Ok(p) => p,
        Err(e) => panic!("this test needs root (BPF): {e}"),
    };
    let bases: Vec<Vec<u8>> = cases().into_iter().map(|(_, b)| b).collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut forwarded, mut passed) = (0, 0);
    for i in 0..20_000 {
        let mut bytes = bases[rng.below(bases.len())].clone();
        // One to four bytes of the first 40 changed (at random, a bit flipped, decremented, or
        // zeroed: TTLs, S bits, MACs, EtherTypes), and sometimes the frame cut short.
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(bytes.len().min(40));
            bytes[at] = match rng.below(4) {
                0 => rng.next() as u8,
                1 => bytes[at] ^ 1,
                2 => bytes[at].wrapping_sub(1),
                _ => 0,
            };
        }
        // BPF_PROG_TEST_RUN refuses frames shorter than an Ethernet header (as no device
        // hands one to XDP): cut at 14 bytes or more.
        if rng.below(8) == 0 && bytes.len() > 14 {
            bytes.truncate(14 + rng.below(bytes.len() - 13));
        }
        let (action, out) = program.test_run(&bytes, LO).unwrap();
        let mut buf = vec![0u8; HEADROOM + bytes.len()];
        buf[HEADROOM..].copy_from_slice(&bytes);
        let Some(mut f) = Frame::new(&mut buf, HEADROOM, bytes.len()) else {
            assert_eq!(action, XDP_PASS, "frame {i}: {bytes:02x?}");
            continue;
        };
        let mut counters = Counters::new(2);
        let verdict = process(&snap, PortId(0), &mut f, &mut counters, &mut NoTrace);
        match action {
            XDP_REDIRECT => {
                forwarded += 1;
                assert_eq!(
                    verdict,
                    Verdict::Forward(PortId(1)),
                    "frame {i}: {bytes:02x?}"
                );
                assert_eq!(out, f.data(), "frame {i}: {bytes:02x?}");
            }
            XDP_PASS => {
                passed += 1;
                assert_eq!(out, bytes, "frame {i}: passed on changed");
            }
            other => panic!("frame {i}: XDP action {other}"),
        }
    }
    eprintln!("{forwarded} forwarded in the kernel, {passed} passed on untouched");
    // Both answers must have come up often, or the mutations tested nothing.
    assert!(
        forwarded > 1000 && passed > 1000,
        "{forwarded} forwarded, {passed} passed"
    );
}

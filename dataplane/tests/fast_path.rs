//! The XDP fast path against the pipeline (issue 17, first part: LSR swap). Each frame runs
//! through `process` and through the `xpe_fast` program with BPF_PROG_TEST_RUN:
//! - where the program forwards (XDP_REDIRECT), the pipeline forwards the same bytes to the
//!   port whose DEVMAP slot the label holds;
//! - where it does not, it passes the frame on unchanged (XDP_PASS here: no AF_XDP socket is
//!   bound in a test run), and the pipeline may do anything.
//!
//! Both copies of the program run: the one for frames in one buffer (`xpe_fast_linear`, what
//! `xpe run` loads unless an MTU needs multi-buffer frames) and the multi-buffer one.
//!
//! Needs root (BPF); without it the test fails and says so. It creates nothing: the ingress
//! device of every run is loopback (ifindex 1), whose index also fills the DEVMAP.

use core::net::{Ipv4Addr, Ipv6Addr};

use xpe_dataplane::tables::lpm::Ipv6Table;
use xpe_dataplane::tables::{
    Adjacency, AdjacencyId, Attachment, AttachmentId, Fec, IlmAction, IlmEntry, IlmOrigin, Ipv4Lpm,
    Ipv6Lpm, LabelStack, Port, PortId, PortKind, Snapshot, SnapshotParts, TtlMode, Vrf, VrfId,
};
use xpe_dataplane::wire::ethernet::MacAddr;
use xpe_dataplane::wire::mpls::Label;
use xpe_dataplane::xsk::fast::{Agreed, Buffers, ByIngress, FastPath, FastTables, Vrf6Table};
use xpe_dataplane::xsk::steer::Mode;

const XDP_PASS: u32 = 2;
const XDP_REDIRECT: u32 = 4;
/// Both core ports share one MAC: the test's ports all map to loopback, and the program keys
/// its ports by ingress interface.
const OUR_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0x01, 0x01]);
const NEXT_HOP: [u8; 6] = [0x02, 0, 0, 0, 0xbb, 0x02];
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

/// Every case through both paths over `snap` ([`ByIngress::agree`], in on core0); checks the
/// fast path's counters too.
fn both_paths_agree(snap: Snapshot) {
    let tables = FastTables::compile(&snap);
    assert_eq!(
        tables.labels.keys().copied().collect::<Vec<_>>(),
        [16001, 16008],
        "the one-label swap and the PHP to a resolved untagged hop are fast"
    );
    for buffers in [Buffers::One, Buffers::Several] {
        agree_on_the_cases(&snap, &load_by_ingress(&snap, buffers));
    }
}

fn agree_on_the_cases(snap: &Snapshot, programs: &ByIngress) {
    let mut forwarded = 0;
    for (name, bytes) in cases() {
        match programs.agree(snap, PortId(0), &bytes) {
            Ok(Agreed::Kernel(egress)) => {
                forwarded += 1;
                assert_eq!(egress, PortId(1), "{name}");
            }
            Ok(Agreed::Workers) => {}
            Ok(Agreed::NotRun) => panic!("{name}: not run"),
            Err(e) => panic!("{name}: {e}"),
        }
    }
    // The cases the fast path takes: swap over IP, TC 5, over a label, TTL 2, exactly the MTU;
    // PHP to IPv4 (TTL 9, TTL 2, with padding), to IPv6, to a label.
    assert_eq!(forwarded, 10);
    // Its counters say the same: every frame came in on core0, the swaps and pops went out of
    // core1.
    let c = programs.program(PortId(0)).unwrap().counters().unwrap();
    assert_eq!(c.forwarded(), 10);
    assert_eq!(c.ports[1].tx_packets, 10);
    assert_eq!(
        c.ports[0].rx_packets + c.ports[0].passed,
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
    let mut program = match FastPath::load(vec![LO, LO], &FastTables::compile(&snap), Buffers::One)
    {
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

/// A jumbo frame comes in pieces (multi-buffer XDP): the multi-buffer copy of the program
/// leaves it to the workers even where the egress MTU would take it.
#[test]
fn the_multi_buffer_copy_leaves_a_frame_in_pieces_to_the_workers() {
    let mut tables = FastTables::compile(&snapshot());
    tables.labels.get_mut(&16001).unwrap().mtu = 9000;
    let swap = |total: u16| frame(OUR_MAC.0, 0x8847, &[(16001, 0, true, 64)], &ipv4(total, 64));
    let (small, jumbo) = (swap(1400), swap(6000));
    let several = FastPath::load(vec![LO, LO], &tables, Buffers::Several)
        .unwrap_or_else(|e| panic!("this test needs root (BPF): {e}"));
    assert_eq!(several.test_run(&small, LO).unwrap().0, XDP_REDIRECT);
    assert_eq!(
        several.test_run(&jumbo, LO).unwrap(),
        (XDP_PASS, jumbo.clone()),
        "left to the workers whole"
    );
}

/// The copy without multi-buffer support skips that check: it relies on the kernel never
/// handing it a frame in pieces. (A test run does not keep that promise, so it cannot show
/// it.) A veth keeps it by refusing that copy while its peer's MTU would need pieces, and by
/// refusing to raise the MTU once it is attached. In a network namespace of this test
/// thread's own, so nothing is left behind.
#[test]
fn the_kernel_keeps_frames_in_pieces_from_the_copy_without_multi_buffer_support() {
    let sh = |args: &[&str]| {
        std::process::Command::new(args[0])
            .args(&args[1..])
            .status()
            .is_ok_and(|s| s.success())
    };
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
        .unwrap_or_else(|e| panic!("a network namespace of the test's own (needs root): {e}"));
    assert!(sh(&[
        "ip", "link", "add", "xfmb0", "type", "veth", "peer", "name", "xfmb1"
    ]));
    for dev in ["xfmb0", "xfmb1"] {
        assert!(sh(&["ip", "link", "set", dev, "mtu", "9000", "up"]));
    }
    let tables = FastTables::compile(&snapshot());
    let veth = nix::net::if_::if_nametoindex("xfmb0").unwrap();
    let load = |buffers| {
        FastPath::load(vec![veth, veth], &tables, buffers)
            .unwrap_or_else(|e| panic!("this test needs root (BPF): {e}"))
    };
    let mut one = load(Buffers::One);
    assert!(
        one.attach("xfmb0", Mode::Native).is_err(),
        "refused: the peer's MTU needs frames in pieces"
    );
    let mut several = load(Buffers::Several);
    several.attach("xfmb0", Mode::Native).unwrap();
    several.detach();
    assert!(sh(&["ip", "link", "set", "xfmb1", "mtu", "1500"]));
    one.attach("xfmb0", Mode::Native).unwrap();
    assert!(
        !sh(&["ip", "link", "set", "xfmb1", "mtu", "9000"]),
        "the MTU stays where frames fit one buffer"
    );
}

#[test]
fn mutated_frames_get_the_same_answer_from_both_paths() {
    let snap = snapshot();
    let programs = load_by_ingress(&snap, Buffers::One);
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
        match programs.agree(&snap, PortId(0), &bytes) {
            Ok(Agreed::Kernel(egress)) => {
                forwarded += 1;
                assert_eq!(egress, PortId(1), "frame {i}: {bytes:02x?}");
            }
            Ok(Agreed::Workers) => passed += 1,
            Ok(Agreed::NotRun) => panic!("frame {i}: not run"),
            Err(e) => panic!("frame {i}: {e}\n{bytes:02x?}"),
        }
    }
    eprintln!("{forwarded} forwarded in the kernel, {passed} passed on untouched");
    // Both answers must have come up often, or the mutations tested nothing.
    assert!(
        forwarded > 1000 && passed > 1000,
        "{forwarded} forwarded, {passed} passed"
    );
}

// ---------------------------------------------------------------------------------------------
// The PE operations: imposition from an edge port's VLANs, disposition of VPN labels, explicit
// null, and plain IPv4 routing, on a PE's tables.

const EDGE_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0x02, 0x02]);
const P_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xcc, 0x01];
const HOST_101: [u8; 6] = [0x02, 0, 0, 0, 0xdd, 0x01];
const HOST_UNTAGGED: [u8; 6] = [0x02, 0, 0, 0, 0xdd, 0x03];
const CORE: PortId = PortId(0);
const EDGE: PortId = PortId(1);

/// A PE: core0 (global table) and edge0 with VLAN 101 and untagged in VRF a, VLAN 102 in VRF b.
/// FECs: 0 push [16001, 2001] to P; 1 to a host on VLAN 101; 2 ours; 3 glean; 4 five labels;
/// 5 an unresolved host on VLAN 102; 6 a host on the untagged attachment; 7 to P, no labels;
/// 8 push [16001, 2002] to P. The IPv6 routes mirror the IPv4 ones ([`pe_routes6`]).
fn pe_snapshot(ttl_mode: TtlMode) -> Snapshot {
    pe_snapshot_with(ttl_mode, |vrf| {
        Ipv6Table::from_routes(pe_routes6(vrf))
            .unwrap()
            .lpm()
            .clone()
    })
}

/// 2001:db8:`net`::`host`.
fn v6(net: u16, host: u16) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, net, 0, 0, 0, 0, host)
}

/// The IPv6 routes of the PE's VRF `vrf` (0 global, 1 a, 2 b). The same /48 is in every VRF,
/// to another FEC in b; 2001:db8:b0::/48 is in b alone.
fn pe_routes6(vrf: u16) -> Vec<(Ipv6Addr, u8, u32)> {
    match vrf {
        0 => vec![(v6(0x19, 0), 48, 7)],
        1 => vec![
            (v6(0x19, 0), 48, 0),
            (v6(0xa, 0), 64, 1),
            (v6(0xa, 1), 128, 2),
            (v6(0xb, 0), 64, 3),
            (v6(0xc, 0), 64, 6),
            (v6(0x20, 0), 48, 4),
        ],
        _ => vec![
            (v6(0x19, 0), 48, 8),
            (v6(0xb0, 0), 48, 7),
            (v6(0x20, 0), 64, 5),
        ],
    }
}

/// [`pe_snapshot`] with VRF `id`'s IPv6 table `v6(id)`.
fn pe_snapshot_with(ttl_mode: TtlMode, v6: impl Fn(u16) -> Ipv6Lpm) -> Snapshot {
    use xpe_dataplane::wire::vlan::VlanId;
    let attachment = |port: PortId, vlan: Option<u16>, vrf: u16| Attachment {
        port,
        vlan: vlan.and_then(VlanId::new),
        vrf: VrfId(vrf),
        address: None,
        address6: None,
    };
    let push = |labels: &[u32]| {
        let labels: Vec<Label> = labels.iter().map(|&l| label(l)).collect();
        LabelStack::new(&labels).unwrap()
    };
    let forward = |adj: u32, labels: &[u32]| Fec::Forward {
        adj: AdjacencyId(adj),
        push: push(labels),
    };
    let v4 = |routes: &[([u8; 4], u8, u32)]| {
        Ipv4Lpm::from_routes(
            routes
                .iter()
                .map(|&(net, len, fec)| (Ipv4Addr::from(net), len, fec)),
        )
        .unwrap()
    };
    let vrf = |id: u16, name: &str, table_label: Option<u32>, v4: Ipv4Lpm| Vrf {
        name: name.into(),
        table_label: table_label.map(label),
        v4,
        v6: v6(id),
    };
    let pop_lookup = |n: u32, vrf: u16| IlmEntry {
        label: label(n),
        action: IlmAction::PopLookup { vrf: VrfId(vrf) },
        origin: IlmOrigin::TableLabel,
        counter: 0,
    };
    Snapshot::new(SnapshotParts {
        name: "pe".into(),
        ttl_mode,
        ports: vec![
            Port::new("core0".into(), PortKind::Core, OUR_MAC, 1500),
            Port::new("edge0".into(), PortKind::Edge, EDGE_MAC, 1500),
        ],
        attachments: vec![
            attachment(CORE, None, 0),
            attachment(EDGE, Some(101), 1),
            attachment(EDGE, Some(102), 2),
            attachment(EDGE, None, 1),
        ],
        adjacencies: vec![
            Adjacency::new(
                AttachmentId(0),
                Ipv4Addr::new(198, 18, 0, 2),
                Some(MacAddr(P_MAC)),
            ),
            Adjacency::new(
                AttachmentId(1),
                Ipv4Addr::new(198, 18, 10, 2),
                Some(MacAddr(HOST_101)),
            ),
            Adjacency::new(AttachmentId(2), Ipv4Addr::new(198, 18, 20, 2), None),
            Adjacency::new(
                AttachmentId(3),
                Ipv4Addr::new(198, 18, 12, 2),
                Some(MacAddr(HOST_UNTAGGED)),
            ),
        ],
        fecs: vec![
            forward(0, &[16001, 2001]),
            forward(1, &[]),
            Fec::Local,
            Fec::Glean {
                attachment: AttachmentId(1),
            },
            forward(0, &[16001, 1001, 1002, 1003, 1004]),
            forward(2, &[]),
            forward(3, &[]),
            forward(0, &[]),
            forward(0, &[16001, 2002]),
        ],
        vrfs: vec![
            vrf(0, "global", None, v4(&[([198, 19, 0, 0], 16, 7)])),
            vrf(
                1,
                "a",
                Some(1001),
                v4(&[
                    ([198, 19, 0, 0], 16, 0),
                    ([198, 18, 10, 0], 24, 1),
                    ([198, 18, 10, 1], 32, 2),
                    ([198, 18, 11, 0], 24, 3),
                    ([198, 18, 12, 0], 24, 6),
                    ([198, 20, 0, 0], 16, 4),
                ]),
            ),
            vrf(
                2,
                "b",
                Some(1002),
                v4(&[([198, 19, 0, 0], 16, 0), ([198, 18, 20, 0], 24, 5)]),
            ),
        ],
        ilm: vec![
            pop_lookup(1001, 1),
            pop_lookup(1002, 2),
            swap(16001, 0, &[16002]),
        ],
    })
    .unwrap()
}

/// An IPv4 packet of `total` bytes from 198.18.10.2 to `dst`, TTL `ttl`, TOS `tos`, DF set.
fn ipv4_to(dst: [u8; 4], total: u16, ttl: u8, tos: u8) -> Vec<u8> {
    let mut p = ipv4(total, ttl);
    p[1] = tos;
    p[12..16].copy_from_slice(&[198, 18, 10, 2]);
    p[16..20].copy_from_slice(&dst);
    p[10..12].fill(0);
    let sum: u32 = p[..20]
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    let sum = (sum & 0xffff) + (sum >> 16);
    let sum = !(((sum & 0xffff) + (sum >> 16)) as u16);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    p
}

/// An IPv6 UDP packet with `payload` bytes of payload from 2001:db8:a::2 to `dst`, hop limit
/// `hl`, traffic class `class` (and a flow label, which no path touches).
fn ipv6_to(dst: Ipv6Addr, payload: u16, hl: u8, class: u8) -> Vec<u8> {
    let mut p = ipv6(payload, hl);
    p[0] = 0x60 | class >> 4;
    p[1] = class << 4 | 0x0b;
    p[2..4].copy_from_slice(&[0xee, 0xef]);
    p[8..24].copy_from_slice(&v6(0xa, 2).octets());
    p[24..40].copy_from_slice(&dst.octets());
    p
}

/// A frame to `dst` tagged with `tci` (VLAN id and PCP), then EtherType `inner` and `payload`.
fn tagged(dst: [u8; 6], tci: u16, inner: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&[0x02, 0, 0, 0, 0xaa, 0x01, 0x81, 0x00]);
    f.extend_from_slice(&tci.to_be_bytes());
    f.extend_from_slice(&inner.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// (name, ingress port, frame, whether the fast path forwards it).
fn pe_cases() -> Vec<(&'static str, PortId, Vec<u8>, bool)> {
    let (core, edge) = (OUR_MAC.0, EDGE_MAC.0);
    let to = |dst: [u8; 4]| ipv4_to(dst, 46, 64, 0);
    let padded = {
        let mut p = ipv4_to([198, 19, 0, 1], 28, 64, 0);
        p.extend_from_slice(&[0; 18]);
        p
    };
    let with_options = {
        let mut p = to([198, 19, 0, 1]);
        p[0] = 0x46;
        p
    };
    let bad_checksum = {
        let mut p = to([198, 19, 0, 1]);
        p[10] ^= 0xff;
        p
    };
    let mut cases = vec![
        (
            "impose, VLAN 101",
            EDGE,
            tagged(edge, 101, 0x0800, &to([198, 19, 1, 1])),
            true,
        ),
        (
            "impose, PCP 6 and TOS 0xa0",
            EDGE,
            tagged(
                edge,
                6 << 13 | 101,
                0x0800,
                &ipv4_to([198, 19, 1, 1], 46, 64, 0xa0),
            ),
            true,
        ),
        (
            "impose, TTL 2",
            EDGE,
            tagged(edge, 101, 0x0800, &ipv4_to([198, 19, 1, 1], 46, 2, 0)),
            true,
        ),
        (
            "impose, TTL 1",
            EDGE,
            tagged(edge, 101, 0x0800, &ipv4_to([198, 19, 1, 1], 46, 1, 0)),
            false,
        ),
        (
            "VLAN to VLAN",
            EDGE,
            tagged(edge, 101, 0x0800, &to([198, 18, 10, 5])),
            true,
        ),
        (
            "for us",
            EDGE,
            tagged(edge, 101, 0x0800, &to([198, 18, 10, 1])),
            false,
        ),
        (
            "glean",
            EDGE,
            tagged(edge, 101, 0x0800, &to([198, 18, 11, 7])),
            false,
        ),
        (
            "five labels",
            EDGE,
            tagged(edge, 101, 0x0800, &to([198, 20, 0, 1])),
            false,
        ),
        (
            "no route",
            EDGE,
            tagged(edge, 101, 0x0800, &to([198, 21, 0, 1])),
            false,
        ),
        (
            "unresolved",
            EDGE,
            tagged(edge, 102, 0x0800, &to([198, 18, 20, 5])),
            false,
        ),
        (
            "impose, VLAN 102",
            EDGE,
            tagged(edge, 102, 0x0800, &to([198, 19, 0, 9])),
            true,
        ),
        (
            "unknown VLAN",
            EDGE,
            tagged(edge, 103, 0x0800, &to([198, 19, 0, 9])),
            false,
        ),
        (
            "VLAN 4095",
            EDGE,
            tagged(edge, 4095, 0x0800, &to([198, 19, 0, 9])),
            false,
        ),
        (
            "priority tag",
            EDGE,
            tagged(edge, 5 << 13, 0x0800, &to([198, 19, 0, 9])),
            true,
        ),
        (
            "untagged",
            EDGE,
            frame(edge, 0x0800, &[], &to([198, 19, 0, 1])),
            true,
        ),
        (
            "untagged to untagged",
            EDGE,
            frame(edge, 0x0800, &[], &to([198, 18, 12, 9])),
            true,
        ),
        ("padding", EDGE, tagged(edge, 101, 0x0800, &padded), true),
        (
            "IP options",
            EDGE,
            tagged(edge, 101, 0x0800, &with_options),
            false,
        ),
        (
            "bad checksum",
            EDGE,
            tagged(edge, 101, 0x0800, &bad_checksum),
            false,
        ),
        (
            "multicast",
            EDGE,
            tagged(edge, 101, 0x0800, &to([224, 0, 0, 5])),
            false,
        ),
        (
            "broadcast",
            EDGE,
            tagged(edge, 101, 0x0800, &to([255; 4])),
            false,
        ),
        (
            "impose, over the MTU",
            EDGE,
            tagged(edge, 101, 0x0800, &ipv4_to([198, 19, 0, 1], 1496, 64, 0)),
            false,
        ),
        (
            "impose, exactly the MTU",
            EDGE,
            tagged(edge, 101, 0x0800, &ipv4_to([198, 19, 0, 1], 1492, 64, 0)),
            true,
        ),
        (
            "IPv6 without a route",
            EDGE,
            tagged(edge, 101, 0x86dd, &ipv6(8, 64)),
            false,
        ),
        (
            "QinQ",
            EDGE,
            tagged(edge, 101, 0x8100, &to([198, 19, 0, 1])),
            false,
        ),
        (
            "other MAC",
            EDGE,
            tagged(core, 101, 0x0800, &to([198, 19, 0, 1])),
            false,
        ),
        (
            "dispose to VLAN 101",
            CORE,
            frame(core, 0x8847, &[(1001, 0, true, 64)], &to([198, 18, 10, 5])),
            true,
        ),
        (
            "dispose, TC 3",
            CORE,
            frame(core, 0x8847, &[(1001, 3, true, 20)], &to([198, 18, 10, 5])),
            true,
        ),
        (
            "dispose, label TTL 1",
            CORE,
            frame(core, 0x8847, &[(1001, 0, true, 1)], &to([198, 18, 10, 5])),
            false,
        ),
        (
            "dispose to a labelled route",
            CORE,
            frame(core, 0x8847, &[(1001, 0, true, 64)], &to([198, 19, 0, 1])),
            true,
        ),
        (
            "dispose to an unresolved host",
            CORE,
            frame(core, 0x8847, &[(1002, 0, true, 64)], &to([198, 18, 20, 5])),
            false,
        ),
        (
            "VPN label not at the bottom",
            CORE,
            frame(
                core,
                0x8847,
                &[(1001, 0, false, 64), (1002, 0, true, 64)],
                &to([198, 18, 10, 5]),
            ),
            false,
        ),
        (
            "explicit null",
            CORE,
            frame(core, 0x8847, &[(0, 2, true, 30)], &to([198, 19, 0, 5])),
            true,
        ),
        (
            "explicit null above a label",
            CORE,
            frame(
                core,
                0x8847,
                &[(0, 0, false, 30), (1001, 0, true, 64)],
                &to([198, 18, 10, 5]),
            ),
            false,
        ),
        (
            "IPv6 explicit null",
            CORE,
            frame(core, 0x8847, &[(2, 0, true, 30)], &ipv6(8, 64)),
            false,
        ),
        (
            "IPv4 on the core",
            CORE,
            frame(core, 0x0800, &[], &to([198, 19, 0, 5])),
            true,
        ),
        (
            "swap on the PE",
            CORE,
            frame(core, 0x8847, &[(16001, 0, true, 64)], &to([198, 19, 0, 5])),
            true,
        ),
        (
            "MPLS on the edge",
            EDGE,
            frame(edge, 0x8847, &[(1001, 0, true, 64)], &to([198, 18, 10, 5])),
            false,
        ),
    ];
    cases.extend(pe_cases6());
    cases
}

/// The IPv6 cases of [`pe_cases`]: their names start with "v6".
fn pe_cases6() -> Vec<(&'static str, PortId, Vec<u8>, bool)> {
    let (core, edge) = (OUR_MAC.0, EDGE_MAC.0);
    let to = |dst: Ipv6Addr| ipv6_to(dst, 16, 64, 0);
    let padded = {
        let mut p = ipv6_to(v6(0x19, 1), 8, 64, 0);
        p.extend_from_slice(&[0; 12]);
        p
    };
    let hop_by_hop = {
        let mut p = to(v6(0x19, 1));
        p[6] = 0;
        p[40..48].copy_from_slice(&[17, 0, 1, 4, 0, 0, 0, 0]);
        p
    };
    let v6_in_ipv4 = to(v6(0x19, 1));
    let under = |l: u32, tc: u8, ttl: u8, packet: Vec<u8>| {
        frame(core, 0x8847, &[(l, tc, true, ttl)], &packet)
    };
    vec![
        (
            "v6 impose, VLAN 101",
            EDGE,
            tagged(edge, 101, 0x86dd, &to(v6(0x19, 1))),
            true,
        ),
        (
            "v6 impose, PCP 6 and class 0xa0",
            EDGE,
            tagged(
                edge,
                6 << 13 | 101,
                0x86dd,
                &ipv6_to(v6(0x19, 1), 16, 64, 0xa0),
            ),
            true,
        ),
        (
            "v6 impose, class 0xff",
            EDGE,
            tagged(edge, 101, 0x86dd, &ipv6_to(v6(0x19, 1), 16, 64, 0xff)),
            true,
        ),
        (
            "v6 impose, untagged",
            EDGE,
            frame(edge, 0x86dd, &[], &to(v6(0x19, 1))),
            true,
        ),
        (
            "v6 impose, priority tag",
            EDGE,
            tagged(edge, 5 << 13, 0x86dd, &to(v6(0x19, 1))),
            true,
        ),
        (
            "v6 impose, hop limit 2",
            EDGE,
            tagged(edge, 101, 0x86dd, &ipv6_to(v6(0x19, 1), 16, 2, 0)),
            true,
        ),
        (
            "v6 impose, hop limit 1",
            EDGE,
            tagged(edge, 101, 0x86dd, &ipv6_to(v6(0x19, 1), 16, 1, 0)),
            false,
        ),
        (
            "v6 impose, hop limit 0",
            EDGE,
            tagged(edge, 101, 0x86dd, &ipv6_to(v6(0x19, 1), 16, 0, 0)),
            false,
        ),
        (
            "v6 VLAN to VLAN",
            EDGE,
            tagged(edge, 101, 0x86dd, &to(v6(0xa, 5))),
            true,
        ),
        (
            "v6 untagged to untagged",
            EDGE,
            frame(edge, 0x86dd, &[], &to(v6(0xc, 9))),
            true,
        ),
        (
            "v6 impose, VLAN 102: the same prefix, b's FEC",
            EDGE,
            tagged(edge, 102, 0x86dd, &to(v6(0x19, 9))),
            true,
        ),
        (
            "v6 a prefix of b alone, from b",
            EDGE,
            tagged(edge, 102, 0x86dd, &to(v6(0xb0, 1))),
            true,
        ),
        (
            "v6 a prefix of b alone, from a",
            EDGE,
            tagged(edge, 101, 0x86dd, &to(v6(0xb0, 1))),
            false,
        ),
        (
            "v6 for us",
            EDGE,
            tagged(edge, 101, 0x86dd, &to(v6(0xa, 1))),
            false,
        ),
        (
            "v6 glean",
            EDGE,
            tagged(edge, 101, 0x86dd, &to(v6(0xb, 7))),
            false,
        ),
        (
            "v6 five labels",
            EDGE,
            tagged(edge, 101, 0x86dd, &to(v6(0x20, 1))),
            false,
        ),
        (
            "v6 unresolved",
            EDGE,
            tagged(edge, 102, 0x86dd, &to(v6(0x20, 1))),
            false,
        ),
        (
            "v6 no route",
            EDGE,
            tagged(edge, 101, 0x86dd, &to(v6(0x99, 1))),
            false,
        ),
        (
            "v6 multicast",
            EDGE,
            tagged(edge, 101, 0x86dd, &to("ff0e::1".parse().unwrap())),
            false,
        ),
        (
            "v6 link-local",
            EDGE,
            tagged(edge, 101, 0x86dd, &to("fe80::1".parse().unwrap())),
            false,
        ),
        ("v6 padding", EDGE, tagged(edge, 101, 0x86dd, &padded), true),
        (
            "v6 payload length too long",
            EDGE,
            tagged(edge, 101, 0x86dd, &to(v6(0x19, 1))[..50]),
            false,
        ),
        (
            "v6 hop-by-hop options",
            EDGE,
            tagged(edge, 101, 0x86dd, &hop_by_hop),
            true,
        ),
        (
            "v6 under the IPv4 EtherType",
            EDGE,
            tagged(edge, 101, 0x0800, &v6_in_ipv4),
            false,
        ),
        (
            "v6 impose, over the MTU",
            EDGE,
            tagged(edge, 101, 0x86dd, &ipv6_to(v6(0x19, 1), 1456, 64, 0)),
            false,
        ),
        (
            "v6 impose, exactly the MTU",
            EDGE,
            tagged(edge, 101, 0x86dd, &ipv6_to(v6(0x19, 1), 1452, 64, 0)),
            true,
        ),
        (
            "v6 on the core",
            CORE,
            frame(core, 0x86dd, &[], &to(v6(0x19, 5))),
            true,
        ),
        (
            "v6 dispose to VLAN 101",
            CORE,
            under(1001, 0, 64, to(v6(0xa, 5))),
            true,
        ),
        (
            "v6 dispose, TC 3",
            CORE,
            under(1001, 3, 20, to(v6(0xa, 5))),
            true,
        ),
        (
            "v6 dispose, label TTL 1",
            CORE,
            under(1001, 0, 1, to(v6(0xa, 5))),
            false,
        ),
        (
            "v6 dispose, label TTL 2, hop limit 1",
            CORE,
            under(1001, 0, 2, ipv6_to(v6(0xa, 5), 16, 1, 0)),
            true,
        ),
        (
            "v6 dispose to a labelled route",
            CORE,
            under(1001, 0, 64, to(v6(0x19, 1))),
            true,
        ),
        (
            "v6 dispose in b",
            CORE,
            under(1002, 0, 64, to(v6(0x19, 1))),
            true,
        ),
        (
            "v6 dispose in a, a prefix of b alone",
            CORE,
            under(1001, 0, 64, to(v6(0xb0, 1))),
            false,
        ),
        (
            "v6 dispose to an unresolved host",
            CORE,
            under(1002, 0, 64, to(v6(0x20, 5))),
            false,
        ),
        (
            "v6 dispose, over the MTU",
            CORE,
            under(1001, 0, 64, ipv6_to(v6(0x19, 1), 1456, 64, 0)),
            false,
        ),
        (
            "v6 explicit null",
            CORE,
            under(2, 5, 30, to(v6(0x19, 5))),
            true,
        ),
        (
            "v6 explicit null, label TTL 1",
            CORE,
            under(2, 0, 1, to(v6(0x19, 5))),
            false,
        ),
        (
            "v6 explicit null, no route in the global table",
            CORE,
            under(2, 0, 30, to(v6(0xa, 5))),
            false,
        ),
        (
            "v6 under IPv4 explicit null",
            CORE,
            under(0, 0, 30, to(v6(0x19, 5))),
            false,
        ),
        (
            "v6 IPv4 under IPv6 explicit null",
            CORE,
            under(2, 0, 30, ipv4_to([198, 19, 0, 5], 46, 64, 0)),
            false,
        ),
        (
            "v6 explicit null above a label",
            CORE,
            frame(
                core,
                0x8847,
                &[(2, 0, false, 30), (1001, 0, true, 64)],
                &to(v6(0xa, 5)),
            ),
            false,
        ),
    ]
}

/// The cases whose answer is the other one in pipe mode: there the core is one hop, and a
/// VPN label's or explicit null's TTL does not count; the IP TTL or hop limit does.
const PIPE_DIFFERS: [&str; 4] = [
    "dispose, label TTL 1",
    "v6 dispose, label TTL 1",
    "v6 dispose, label TTL 2, hop limit 1",
    "v6 explicit null, label TTL 1",
];

/// Runs `bytes` in from `ingress` through both paths ([`ByIngress::agree`]); returns whether
/// the fast path forwarded it.
fn agree(snap: &Snapshot, programs: &ByIngress, ingress: PortId, bytes: &[u8], what: &str) -> bool {
    match programs.agree(snap, ingress, bytes) {
        Ok(agreed) => matches!(agreed, Agreed::Kernel(_)),
        Err(e) => panic!("{what}: {e}"),
    }
}

fn load_by_ingress(snap: &Snapshot, buffers: Buffers) -> ByIngress {
    ByIngress::load(snap, buffers).unwrap_or_else(|e| panic!("this test needs root: {e}"))
}

#[test]
fn pe_operations_agree_with_the_pipeline() {
    let runs = [TtlMode::Uniform, TtlMode::Pipe]
        .into_iter()
        .flat_map(|mode| [(mode, Buffers::One), (mode, Buffers::Several)]);
    for (mode, buffers) in runs {
        let snap = pe_snapshot(mode);
        let programs = load_by_ingress(&snap, buffers);
        let mut forwarded6 = 0;
        for (name, ingress, bytes, fast) in pe_cases() {
            let fast = fast != (mode == TtlMode::Pipe && PIPE_DIFFERS.contains(&name));
            let what = format!("{name} ({mode})");
            assert_eq!(
                agree(&snap, &programs, ingress, &bytes, &what),
                fast,
                "{what}"
            );
            forwarded6 += usize::from(fast && name.starts_with("v6"));
        }
        eprintln!("{mode}, {buffers:?}: {forwarded6} IPv6 cases forwarded in the kernel");
    }
}

/// The small VRFs' roots reach the program 8 bits wider (one node fewer a lookup) while there
/// is room; a VRF past that room keeps its own root. Both shapes forward as the pipeline does.
#[test]
fn pe_operations_agree_with_the_pipeline_through_roots_of_either_width() {
    let snap = pe_snapshot(TtlMode::Uniform);
    let wide = FastTables::compile(&snap);
    let widened = wide.vrfs.iter().flatten().filter(|t| t.wide).count();
    assert!(widened >= 2, "the PE's small VRFs get wider roots");
    let mut narrow = wide.clone();
    for t in narrow.vrfs.iter_mut().flatten() {
        t.wide = false;
    }
    let programs = ByIngress::load_tables(&snap, narrow, Buffers::One)
        .unwrap_or_else(|e| panic!("this test needs root: {e}"));
    for (name, ingress, bytes, fast) in pe_cases() {
        let what = format!("{name} (own roots)");
        assert_eq!(
            agree(&snap, &programs, ingress, &bytes, &what),
            fast,
            "{what}"
        );
    }
}

#[test]
fn mutated_pe_frames_get_the_same_answer_from_both_paths() {
    let snap = pe_snapshot(TtlMode::Uniform);
    let programs = load_by_ingress(&snap, Buffers::One);
    let bases = pe_cases();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let (mut forwarded, mut passed, mut forwarded6) = (0, 0, 0);
    for i in 0..20_000 {
        let (name, ingress, mut bytes, _) = bases[rng.below(bases.len())].clone();
        // As for the LSR frames: one to four bytes of the first 60 changed, sometimes cut.
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(bytes.len().min(60));
            bytes[at] = match rng.below(4) {
                0 => rng.next() as u8,
                1 => bytes[at] ^ 1,
                2 => bytes[at].wrapping_sub(1),
                _ => 0,
            };
        }
        if rng.below(8) == 0 && bytes.len() > 14 {
            bytes.truncate(14 + rng.below(bytes.len() - 13));
        }
        if agree(
            &snap,
            &programs,
            ingress,
            &bytes,
            &format!("frame {i}: {bytes:02x?}"),
        ) {
            forwarded += 1;
            forwarded6 += usize::from(name.starts_with("v6"));
        } else {
            passed += 1;
        }
    }
    eprintln!(
        "{forwarded} forwarded in the kernel ({forwarded6} from IPv6 cases), {passed} passed on untouched"
    );
    assert!(
        forwarded > 1000 && passed > 1000 && forwarded6 > 1000,
        "{forwarded} forwarded ({forwarded6} IPv6), {passed} passed"
    );
}

/// The fast path over the PE's tables, with its test runs coming in on edge0 (both ports are
/// loopback; the later slot is the one the program finds), and an IPv6 trie of `routes6`
/// entries (`None`: full size).
fn load_pe(tables: &FastTables, routes6: Option<u32>) -> FastPath {
    FastPath::load_sized(vec![LO, LO], tables, Buffers::One, routes6)
        .unwrap_or_else(|e| panic!("this test needs root (BPF): {e}"))
}

/// The labels of a frame the program sent untagged to P, outermost first.
fn labels_of(out: &[u8]) -> Vec<u32> {
    let mut labels = Vec::new();
    for entry in out[14..].chunks(4) {
        let w = u32::from_be_bytes(entry.try_into().unwrap());
        labels.push(w >> 12);
        if w & 0x100 != 0 {
            break;
        }
    }
    labels
}

/// `tables` with VRF `vrf`'s IPv6 routes `lpm`.
fn with_v6(tables: &FastTables, vrf: usize, lpm: Ipv6Lpm) -> FastTables {
    let mut next = tables.clone();
    let counter = next.v6[vrf].as_ref().unwrap().counter;
    next.v6[vrf] = Some(Vrf6Table { lpm, counter });
    next
}

#[test]
fn an_ipv6_route_change_costs_one_trie_update_a_generation_and_switches_whole() {
    let mut a = Ipv6Table::from_routes(pe_routes6(1)).unwrap();
    let snap = pe_snapshot(TtlMode::Uniform);
    let tables = with_v6(&FastTables::compile(&snap), 1, a.lpm().clone());
    let mut program = load_pe(&tables, None);
    let send = |program: &FastPath, dst: Ipv6Addr| {
        let frame = tagged(EDGE_MAC.0, 101, 0x86dd, &ipv6_to(dst, 16, 64, 0));
        let (action, out) = program.test_run(&frame, LO).unwrap();
        if action == XDP_PASS {
            assert_eq!(out, frame, "passed on unchanged");
        }
        (action, out)
    };
    let (action, out) = send(&program, v6(0x19, 1));
    assert_eq!(action, XDP_REDIRECT);
    assert_eq!(labels_of(&out), [16001, 2001]);
    // The /48 moves to FEC 8. The spare generation was never written: all of it now.
    a.apply([(v6(0x19, 0), 48, Some(8))]).unwrap();
    let delta = program
        .apply(&with_v6(&tables, 1, a.lpm().clone()))
        .unwrap();
    assert_eq!(delta.routes6_written, 10, "every route of the three VRFs");
    let (action, out) = send(&program, v6(0x19, 1));
    assert_eq!(action, XDP_REDIRECT);
    assert_eq!(labels_of(&out), [16001, 2002]);
    // A /64 inside it, to the host on VLAN 101: generation 0 catches up with both changes.
    a.apply([(
        v6(0x19, 0) | "0:0:0:1::".parse::<Ipv6Addr>().unwrap(),
        64,
        Some(1),
    )])
    .map(|_| ())
    .unwrap_or_else(|e| panic!("{e:?}"));
    let delta = program
        .apply(&with_v6(&tables, 1, a.lpm().clone()))
        .unwrap();
    assert_eq!(delta.routes6_written, 2);
    assert_eq!(labels_of(&send(&program, v6(0x19, 1)).1), [16001, 2002]);
    let sub = v6(0x19, 0) | "0:0:0:1::5".parse::<Ipv6Addr>().unwrap();
    let (action, out) = send(&program, sub);
    assert_eq!(action, XDP_REDIRECT);
    assert_eq!(out[..6], HOST_101, "to the host, not to P");
    // The /48 goes: its addresses outside the /64 go to the workers.
    a.apply([(v6(0x19, 0), 48, None)]).unwrap();
    let delta = program
        .apply(&with_v6(&tables, 1, a.lpm().clone()))
        .unwrap();
    assert_eq!(delta.routes6_written, 2, "the /64 added, the /48 removed");
    assert_eq!(send(&program, v6(0x19, 1)).0, XDP_PASS);
    assert_eq!(send(&program, sub).0, XDP_REDIRECT);
    // The same tables again change nothing; one route back is one write.
    let delta = program
        .apply(&with_v6(&tables, 1, a.lpm().clone()))
        .unwrap();
    assert_eq!(delta.routes6_written, 0);
    a.apply([(v6(0x19, 0), 48, Some(0))]).unwrap();
    let delta = program
        .apply(&with_v6(&tables, 1, a.lpm().clone()))
        .unwrap();
    assert_eq!(delta.routes6_written, 1);
    assert_eq!(labels_of(&send(&program, v6(0x19, 1)).1), [16001, 2001]);
}

/// Each FEC in the program carries a copy of its adjacency: a neighbour's new MAC, or its loss,
/// must reach every FEC through it, in both generations.
#[test]
fn a_neighbour_change_reaches_the_fecs_through_it_in_both_generations() {
    let snap = pe_snapshot(TtlMode::Uniform);
    let tables = FastTables::compile(&snap);
    let mut program = load_pe(&tables, None);
    let frame = tagged(
        EDGE_MAC.0,
        101,
        0x0800,
        &ipv4_to([198, 19, 1, 1], 46, 64, 0),
    );
    let v6 = tagged(EDGE_MAC.0, 101, 0x86dd, &ipv6_to(v6(0x19, 1), 16, 64, 0));
    let (action, out) = program.test_run(&frame, LO).unwrap();
    assert_eq!(action, XDP_REDIRECT);
    assert_eq!(out[..6], P_MAC);
    // P's adjacency: the one whose header starts with P's MAC (the imposed frames' next hop).
    let to_p: Vec<usize> = (0..tables.adjs.len())
        .filter(|&i| tables.adjs[i].header[..6] == P_MAC)
        .collect();
    assert!(!to_p.is_empty(), "the PE has an adjacency to P");
    // Each update is written into the generation not live, so two MACs in a row write both.
    let mut next = tables.clone();
    for (round, last) in [0x99, 0x98].into_iter().enumerate() {
        let moved = [0x02, 0, 0, 0, 0xcc, last];
        for &i in &to_p {
            next.adjs[i].header[..6].copy_from_slice(&moved);
        }
        let delta = program.apply(&next).unwrap();
        assert_eq!(delta.written, 0, "no label changed");
        for f in [&frame, &v6] {
            let (action, out) = program.test_run(f, LO).unwrap();
            assert_eq!(action, XDP_REDIRECT, "update {round}");
            assert_eq!(out[..6], moved, "update {round}: the new MAC");
        }
    }
    // The neighbour lost: its FECs go to the workers, untouched.
    for &i in &to_p {
        next.adjs[i].ok = 0;
    }
    program.apply(&next).unwrap();
    for f in [&frame, &v6] {
        assert_eq!(program.test_run(f, LO).unwrap(), (XDP_PASS, f.clone()));
    }
    // And back, in the other generation.
    program.apply(&tables).unwrap();
    for f in [&frame, &v6] {
        assert_eq!(program.test_run(f, LO).unwrap().1[..6], P_MAC);
    }
}

#[test]
fn a_vrf_whose_ipv6_routes_do_not_fit_is_left_to_the_workers_whole() {
    let snap = pe_snapshot(TtlMode::Uniform);
    let tables = FastTables::compile(&snap);
    let lpm = |vrf: u16, more: &[(Ipv6Addr, u8, u32)]| {
        let mut routes = pe_routes6(vrf);
        routes.extend_from_slice(more);
        Ipv6Lpm::from_routes(routes).unwrap()
    };
    // Room for 16 routes, one kept free: generation 0 takes the 10 routes.
    let mut program = load_pe(&tables, Some(16));
    let frame = tagged(EDGE_MAC.0, 101, 0x86dd, &ipv6_to(v6(0x19, 1), 16, 64, 0));
    let run = |program: &FastPath| {
        let (action, out) = program.test_run(&frame, LO).unwrap();
        if action == XDP_PASS {
            assert_eq!(out, frame, "passed on unchanged");
        }
        action
    };
    assert_eq!(run(&program), XDP_REDIRECT);
    // Generation 1 from nothing, b with a route more: the global table (1) and b (4) fit
    // beside generation 0's 10, a (6) does not, and is left out whole.
    let grown = with_v6(&tables, 2, lpm(2, &[(v6(0xb1, 0), 48, 7)]));
    let delta = program.apply(&grown).unwrap();
    assert_eq!(delta.vrfs6_left_out, 1);
    assert_eq!(program.status().vrfs6_left_out, 1, "show counters says so");
    assert_eq!(run(&program), XDP_PASS, "a's IPv6 goes to the workers");
    let in_b = tagged(EDGE_MAC.0, 102, 0x86dd, &ipv6_to(v6(0xb1, 1), 16, 64, 0));
    assert_eq!(program.test_run(&in_b, LO).unwrap().0, XDP_REDIRECT);
    // b empties; generation 0 loses its 3 routes of b.
    let shrunk = with_v6(&tables, 2, Ipv6Lpm::new());
    let delta = program.apply(&shrunk).unwrap();
    assert_eq!(delta.vrfs6_left_out, 0);
    assert_eq!(program.status().vrfs6_left_out, 0);
    assert_eq!(run(&program), XDP_REDIRECT);
    // Generation 1 again: b's 4 routes go, and a finds room.
    let next = with_v6(&shrunk, 0, lpm(0, &[(v6(0x99, 0), 48, 7)]));
    let delta = program.apply(&next).unwrap();
    assert_eq!(delta.vrfs6_left_out, 0);
    assert_eq!(run(&program), XDP_REDIRECT);
}

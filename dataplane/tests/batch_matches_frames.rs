//! `process_batch` against `process` called frame by frame: over random batches of mixed
//! frames (labelled, 802.1Q-tagged and untagged IPv4/IPv6, ICMP echo to us, ARP, garbage, cut
//! short and with a flipped byte) on each port, both give the same verdicts, the same bytes
//! for every frame they forward or punt, and the same counters.
//!
//! Half the snapshots carry a VRF of more than [`LARGE_VRF_ROUTES`] IPv4 routes, which turns
//! on `process_batch`'s look-ahead pass (the IPv4 lookups of up to 64 frames done before the
//! per-frame pass); the frames aim at those routes directly and under the VRF's table label,
//! the two shapes the look-ahead recognises, and at everything around them.
//!
//! The control side's compiler is not available from here, so the tables are assembled with
//! [`Snapshot::new`]: a small PE in the image of `examples/dx-pe.toml` (a core port, an edge
//! port with VLANs 101 and 102 in two VRFs, transit and table labels), in uniform and in pipe
//! TTL mode.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

use etherparse::PacketBuilder;
use proptest::collection::vec;
use proptest::prelude::*;
use xpe_dataplane::pipeline::{
    process, process_batch, Counters, DropReason, Frame, NoTrace, Verdict,
};
use xpe_dataplane::tables::{
    Adjacency, AdjacencyId, Attachment, AttachmentId, Fec, IlmAction, IlmEntry, IlmOrigin, Ipv4Lpm,
    Ipv6Lpm, LabelStack, Port, PortId, PortKind, Snapshot, SnapshotParts, TtlMode, Vrf, VrfId,
    LARGE_VRF_ROUTES,
};
use xpe_dataplane::wire::ethernet::MacAddr;
use xpe_dataplane::wire::mpls::{self, Label};
use xpe_dataplane::wire::vlan::VlanId;

/// Room in front of every frame for a VLAN tag and the deepest push, as the run loop leaves.
const HEADROOM: usize = 256;

const CORE_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0x01, 0x01]);
const EDGE_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0x01, 0x02]);
const PEER_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0x02, 0x01]);
const CE_A_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0xaa, 0x01]);
const CE_B_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0xbb, 0x01]);

const CORE: PortId = PortId(0);
const EDGE: PortId = PortId(1);
/// A port the snapshot does not have (every frame is `unknown-port`).
const NO_PORT: PortId = PortId(2);

const VPC_A: VrfId = VrfId(1);
const VPC_B: VrfId = VrfId(2);

/// Routes added to vpc-a in the large snapshots: /24s in 100.64.0.0/10, enough for the
/// look-ahead pass.
const LARGE_ROUTES: u32 = LARGE_VRF_ROUTES as u32 + 1024;

// FEC indices (see `snapshot`).
const FEC_LOCAL: u32 = 0;
const FEC_REMOTE_A: u32 = 1;
const FEC_CE_A: u32 = 2;
const FEC_CORE: u32 = 3;
const FEC_CE_B: u32 = 4;
const FEC_GLEAN_A: u32 = 5;
const FEC_REMOTE_B: u32 = 6;
const FEC_UNRESOLVED: u32 = 7;

fn label(value: u32) -> Label {
    Label::new(value).expect("a 20-bit label")
}

fn stack(labels: &[u32]) -> LabelStack {
    LabelStack::new(&labels.iter().map(|&l| label(l)).collect::<Vec<_>>()).expect("short stack")
}

fn v4(routes: &[(&str, u8, u32)], extra: impl IntoIterator<Item = (Ipv4Addr, u8, u32)>) -> Ipv4Lpm {
    let routes = routes
        .iter()
        .map(|&(a, len, fec)| (a.parse().expect("an IPv4 address"), len, fec))
        .chain(extra);
    Ipv4Lpm::from_routes(routes).expect("valid IPv4 routes")
}

fn v6(routes: &[(&str, u8, u32)]) -> Ipv6Lpm {
    let routes = routes
        .iter()
        .map(|&(a, len, fec)| (a.parse::<Ipv6Addr>().expect("an IPv6 address"), len, fec));
    Ipv6Lpm::from_routes(routes).expect("valid IPv6 routes")
}

/// The large VRF's synthetic routes: 100.64.0.0/24, 100.64.1.0/24, ... over three FECs
/// (impose labels, out to the CE, an adjacency without a MAC).
fn large_routes() -> impl Iterator<Item = (Ipv4Addr, u8, u32)> {
    (0..LARGE_ROUTES).map(|i| {
        let fec = [FEC_REMOTE_A, FEC_CE_A, FEC_UNRESOLVED][i as usize % 3];
        (Ipv4Addr::from(0x6440_0000 + (i << 8)), 24, fec)
    })
}

/// The test PE's tables, with or without the large VRF.
fn snapshot(ttl_mode: TtlMode, large: bool) -> Snapshot {
    let att = |port, vlan: Option<u16>, vrf, address: &str| Attachment {
        port,
        vlan: vlan.map(|v| VlanId::new(v).expect("a usable VLAN")),
        vrf,
        address: Some(address.parse().expect("an address and its subnet")),
        address6: None,
    };
    let ilm = |l, action| IlmEntry {
        label: label(l),
        action,
        origin: IlmOrigin::LabelEntry(1),
        counter: 0,
    };
    let vpc_a_extra: Vec<_> = if large {
        large_routes().collect()
    } else {
        Vec::new()
    };
    let parts = SnapshotParts {
        name: "batch-pe".into(),
        ttl_mode,
        ports: vec![
            Port::new("core0".into(), PortKind::Core, CORE_MAC, 1500),
            Port::new("dx0".into(), PortKind::Edge, EDGE_MAC, 9001),
        ],
        attachments: vec![
            att(CORE, None, VrfId::GLOBAL, "198.18.0.1/30"),
            att(EDGE, Some(101), VPC_A, "169.254.10.1/30"),
            att(EDGE, Some(102), VPC_B, "169.254.10.1/30"),
        ],
        adjacencies: vec![
            Adjacency::new(
                AttachmentId(0),
                Ipv4Addr::new(198, 18, 0, 2),
                Some(PEER_MAC),
            ),
            Adjacency::new(
                AttachmentId(1),
                Ipv4Addr::new(169, 254, 10, 2),
                Some(CE_A_MAC),
            ),
            Adjacency::new(
                AttachmentId(2),
                Ipv4Addr::new(169, 254, 10, 2),
                Some(CE_B_MAC),
            ),
            Adjacency::new(AttachmentId(1), Ipv4Addr::new(169, 254, 10, 3), None),
        ],
        fecs: vec![
            Fec::Local,
            Fec::Forward {
                adj: AdjacencyId(0),
                push: stack(&[16001, 2001]),
            },
            Fec::Forward {
                adj: AdjacencyId(1),
                push: LabelStack::EMPTY,
            },
            Fec::Forward {
                adj: AdjacencyId(0),
                push: LabelStack::EMPTY,
            },
            Fec::Forward {
                adj: AdjacencyId(2),
                push: LabelStack::EMPTY,
            },
            Fec::Glean {
                attachment: AttachmentId(1),
            },
            Fec::Forward {
                adj: AdjacencyId(0),
                push: stack(&[16001, 2002]),
            },
            Fec::Forward {
                adj: AdjacencyId(3),
                push: LabelStack::EMPTY,
            },
        ],
        vrfs: vec![
            Vrf {
                name: "global".into(),
                table_label: None,
                v4: v4(
                    &[
                        ("198.18.0.1", 32, FEC_LOCAL),
                        ("198.18.0.2", 32, FEC_CORE),
                        ("198.19.0.0", 16, FEC_CORE),
                    ],
                    [],
                ),
                v6: v6(&[("2001:db8:ff::", 48, FEC_CORE)]),
            },
            Vrf {
                name: "vpc-a".into(),
                table_label: Some(label(1001)),
                v4: v4(
                    &[
                        ("169.254.10.1", 32, FEC_LOCAL),
                        ("169.254.10.0", 30, FEC_GLEAN_A),
                        ("169.254.10.2", 32, FEC_CE_A),
                        ("198.18.10.0", 24, FEC_CE_A),
                        ("198.19.20.0", 24, FEC_REMOTE_A),
                        ("10.99.0.0", 16, FEC_UNRESOLVED),
                    ],
                    vpc_a_extra,
                ),
                v6: v6(&[("2001:db8:20::", 48, FEC_REMOTE_A)]),
            },
            Vrf {
                name: "vpc-b".into(),
                table_label: Some(label(1002)),
                v4: v4(
                    &[
                        ("169.254.10.1", 32, FEC_LOCAL),
                        ("198.18.10.0", 24, FEC_CE_B),
                        ("198.19.20.0", 24, FEC_REMOTE_B),
                    ],
                    [],
                ),
                v6: v6(&[]),
            },
        ],
        ilm: vec![
            ilm(
                16002,
                IlmAction::Swap {
                    adj: AdjacencyId(0),
                    out: stack(&[16003]),
                },
            ),
            ilm(
                16004,
                IlmAction::Pop {
                    adj: AdjacencyId(0),
                },
            ),
            ilm(
                16005,
                IlmAction::Swap {
                    adj: AdjacencyId(1),
                    out: stack(&[16006, 16007]),
                },
            ),
            ilm(
                16008,
                IlmAction::Swap {
                    adj: AdjacencyId(3),
                    out: stack(&[16009]),
                },
            ),
            ilm(1001, IlmAction::PopLookup { vrf: VPC_A }),
            ilm(1002, IlmAction::PopLookup { vrf: VPC_B }),
        ],
    };
    let snap = Snapshot::new(parts).expect("the test PE's tables are consistent");
    assert_eq!(snap.has_large_vrf(), large);
    snap
}

/// Small and large, each in uniform and pipe mode; built once (the large LPM takes a moment
/// in a debug build).
fn snapshots() -> &'static [Snapshot; 4] {
    static SNAPS: OnceLock<[Snapshot; 4]> = OnceLock::new();
    SNAPS.get_or_init(|| {
        [
            snapshot(TtlMode::Uniform, false),
            snapshot(TtlMode::Pipe, false),
            snapshot(TtlMode::Uniform, true),
            snapshot(TtlMode::Pipe, true),
        ]
    })
}

// ------------------------------------------------------------------ frames

/// What sits above the label stack (or the Ethernet header).
#[derive(Debug, Clone)]
enum Payload {
    Ipv4 {
        src: Ipv4Addr,
        dst: Ipv4Addr,
        ttl: u8,
        tos: u8,
        /// An ICMP echo request rather than UDP.
        echo: bool,
    },
    Ipv6 {
        dst: Ipv6Addr,
        hop_limit: u8,
        traffic_class: u8,
    },
    Arp {
        op: u16,
        sender: Ipv4Addr,
        target: Ipv4Addr,
    },
    Garbage(Vec<u8>),
}

/// One frame, described so that a failing case prints what it was.
#[derive(Debug, Clone)]
struct Shape {
    dst_mac: MacAddr,
    src_mac: MacAddr,
    /// 802.1Q tag: (PCP, VID); VID 0 is a priority tag, 4095 reserved.
    tag: Option<(u8, u16)>,
    /// 802.1ad outer tag (a stacked-VLAN drop).
    qinq: bool,
    /// Label stack entries (label, TC, TTL), outermost first.
    labels: Vec<(u32, u8, u8)>,
    /// Leave S clear on the last entry.
    no_bottom: bool,
    payload: Payload,
    /// Ethernet padding after the packet.
    padding: usize,
    /// Keep only this many bytes.
    cut: Option<usize>,
    /// XOR a byte (index modulo the length) with a mask.
    flip: Option<(usize, u8)>,
}

impl Shape {
    fn bytes(&self) -> Vec<u8> {
        let mut f = Vec::with_capacity(128);
        f.extend_from_slice(&self.dst_mac.0);
        f.extend_from_slice(&self.src_mac.0);
        if self.qinq {
            f.extend_from_slice(&[0x88, 0xa8, 0x00, 0x64]);
        }
        if let Some((pcp, vid)) = self.tag {
            f.extend_from_slice(&[0x81, 0x00]);
            f.extend_from_slice(&(u16::from(pcp & 7) << 13 | (vid & 0x0fff)).to_be_bytes());
        }
        let (ethertype, l3) = self.l3();
        if self.labels.is_empty() {
            f.extend_from_slice(&ethertype.to_be_bytes());
        } else {
            f.extend_from_slice(&0x8847u16.to_be_bytes());
            for (i, &(l, tc, ttl)) in self.labels.iter().enumerate() {
                let bos = i + 1 == self.labels.len() && !self.no_bottom;
                f.extend_from_slice(&mpls::encode(l, tc, bos, ttl).to_be_bytes());
            }
        }
        f.extend_from_slice(&l3);
        f.resize(f.len() + self.padding, 0);
        if let Some(cut) = self.cut {
            f.truncate(cut);
        }
        if let Some((at, mask)) = self.flip {
            if !f.is_empty() {
                let at = at % f.len();
                f[at] ^= mask;
            }
        }
        f
    }

    fn l3(&self) -> (u16, Vec<u8>) {
        let mut out = Vec::new();
        match &self.payload {
            Payload::Ipv4 {
                src,
                dst,
                ttl,
                tos,
                echo,
            } => {
                let mut ip = etherparse::Ipv4Header::new(
                    0,
                    *ttl,
                    etherparse::IpNumber::UDP,
                    src.octets(),
                    dst.octets(),
                )
                .expect("a valid IPv4 header");
                ip.dscp = etherparse::Ipv4Dscp::try_new(tos >> 2).expect("6 bits");
                ip.ecn = etherparse::Ipv4Ecn::try_new(tos & 3).expect("2 bits");
                let builder =
                    PacketBuilder::ip(etherparse::IpHeaders::Ipv4(ip, Default::default()));
                if *echo {
                    builder
                        .icmpv4_echo_request(0x1234, 7)
                        .write(&mut out, b"batch echo")
                        .expect("write to a Vec");
                } else {
                    builder
                        .udp(40000, 5001)
                        .write(&mut out, &[0x5a; 18])
                        .expect("write to a Vec");
                }
                (0x0800, out)
            }
            Payload::Ipv6 {
                dst,
                hop_limit,
                traffic_class,
            } => {
                let src: Ipv6Addr = "2001:db8:1::5".parse().expect("an IPv6 address");
                let mut ip = etherparse::Ipv6Header {
                    traffic_class: *traffic_class,
                    hop_limit: *hop_limit,
                    source: src.octets(),
                    destination: dst.octets(),
                    ..Default::default()
                };
                ip.next_header = etherparse::IpNumber::UDP;
                PacketBuilder::ip(etherparse::IpHeaders::Ipv6(ip, Default::default()))
                    .udp(40000, 5001)
                    .write(&mut out, &[0xa5; 14])
                    .expect("write to a Vec");
                (0x86dd, out)
            }
            Payload::Arp { op, sender, target } => {
                out.extend_from_slice(&[0, 1, 0x08, 0x00, 6, 4]);
                out.extend_from_slice(&op.to_be_bytes());
                out.extend_from_slice(&self.src_mac.0);
                out.extend_from_slice(&sender.octets());
                out.extend_from_slice(&[0; 6]);
                out.extend_from_slice(&target.octets());
                (0x0806, out)
            }
            Payload::Garbage(bytes) => (u16::from_be_bytes([0x88, 0xcc]), bytes.clone()),
        }
    }
}

fn ipv4_dst() -> impl Strategy<Value = Ipv4Addr> {
    prop_oneof![
        // The large VRF's routes (no route in the small snapshots).
        4 => (0..LARGE_ROUTES, any::<u8>())
            .prop_map(|(i, host)| Ipv4Addr::from(0x6440_0000 + (i << 8) + u32::from(host))),
        2 => any::<u8>().prop_map(|h| Ipv4Addr::new(198, 19, 20, h)),
        2 => any::<u8>().prop_map(|h| Ipv4Addr::new(198, 18, 10, h)),
        1 => (0..4u8).prop_map(|h| Ipv4Addr::new(169, 254, 10, h)),
        1 => (0..4u8).prop_map(|h| Ipv4Addr::new(198, 18, 0, h)),
        1 => any::<u16>().prop_map(|h| Ipv4Addr::from(0x0a63_0000 | u32::from(h))),
        1 => prop::sample::select(vec![
            Ipv4Addr::new(8, 8, 8, 8),
            Ipv4Addr::new(224, 0, 0, 5),
            Ipv4Addr::BROADCAST,
            Ipv4Addr::new(198, 19, 1, 1),
        ]),
    ]
}

fn ipv4_src() -> impl Strategy<Value = Ipv4Addr> {
    prop::sample::select(vec![
        Ipv4Addr::new(198, 18, 10, 5),
        Ipv4Addr::new(169, 254, 10, 2),
        Ipv4Addr::new(198, 19, 1, 1),
        Ipv4Addr::new(169, 254, 10, 1),
        Ipv4Addr::new(224, 0, 0, 1),
        Ipv4Addr::new(100, 64, 3, 9),
    ])
}

fn ttl() -> impl Strategy<Value = u8> {
    prop_oneof![3 => Just(64u8), 1 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8), 1 => any::<u8>()]
}

fn payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        8 => (ipv4_src(), ipv4_dst(), ttl(), any::<u8>(), prop::bool::weighted(0.2)).prop_map(
            |(src, dst, ttl, tos, echo)| Payload::Ipv4 { src, dst, ttl, tos, echo }
        ),
        2 => (
            prop::sample::select(vec![
                "2001:db8:20::7", "2001:db8:ff::1", "2001:db8:99::1", "ff02::1", "fe80::1",
            ]),
            ttl(),
            any::<u8>(),
        )
            .prop_map(|(dst, hop_limit, traffic_class)| Payload::Ipv6 {
                dst: dst.parse().expect("an IPv6 address"),
                hop_limit,
                traffic_class,
            }),
        1 => (
            prop::sample::select(vec![1u16, 2, 3]),
            (0..4u8).prop_map(|h| Ipv4Addr::new(169, 254, 10, h)),
            (0..4u8).prop_map(|h| Ipv4Addr::new(169, 254, 10, h)),
        )
            .prop_map(|(op, sender, target)| Payload::Arp { op, sender, target }),
        1 => vec(any::<u8>(), 0..40).prop_map(Payload::Garbage),
    ]
}

fn label_entry() -> impl Strategy<Value = (u32, u8, u8)> {
    (
        prop_oneof![
            6 => prop::sample::select(vec![1001u32, 1002, 16002, 16004, 16005, 16008]),
            2 => prop::sample::select(vec![0u32, 2]),
            1 => prop::sample::select(vec![1u32, 3, 7, 15, 99_999]),
        ],
        0..8u8,
        ttl(),
    )
}

/// Frames for one ingress port: mostly addressed to it, with the tags (edge) or labels
/// (core) it takes, and some of everything else.
fn shape(ingress: PortId) -> impl Strategy<Value = Shape> {
    let (ours, usual_tags, usual_labels) = if ingress == EDGE {
        (EDGE_MAC, 6, 1)
    } else {
        (CORE_MAC, 1, 6)
    };
    (
        prop_oneof![
            8 => Just(ours),
            1 => Just(MacAddr::BROADCAST),
            1 => prop::sample::select(vec![
                MacAddr([0x01, 0x00, 0x5e, 0, 0, 5]),
                MacAddr([0x02, 0, 0, 0, 0x09, 0x09]),
                if ingress == EDGE { CORE_MAC } else { EDGE_MAC },
            ]),
        ],
        prop::sample::select(vec![CE_A_MAC, CE_B_MAC, PEER_MAC]),
        prop_oneof![
            usual_tags => (0..8u8, prop::sample::select(vec![101u16, 102])).prop_map(Some),
            7 - usual_tags => Just(None),
            1 => (0..8u8, prop::sample::select(vec![0u16, 103, 4095])).prop_map(Some),
        ],
        prop::bool::weighted(0.02),
        prop_oneof![
            7 - usual_labels => Just(vec![]),
            usual_labels => vec(label_entry(), 1..4),
        ],
        prop::bool::weighted(0.03),
        payload(),
        prop_oneof![3 => Just(0usize), 1 => 0..24usize],
        prop_oneof![12 => Just(None), 1 => (0..90usize).prop_map(Some)],
        prop_oneof![12 => Just(None), 1 => (any::<usize>(), 1..=255u8).prop_map(Some)],
    )
        .prop_map(
            |(dst_mac, src_mac, tag, qinq, labels, no_bottom, payload, padding, cut, flip)| Shape {
                dst_mac,
                src_mac,
                tag,
                qinq,
                labels,
                no_bottom,
                payload,
                padding,
                cut,
                flip,
            },
        )
}

/// A port and a batch of 1 to 149 frames for it: batches cross the look-ahead's 64-frame
/// chunks.
fn batch() -> impl Strategy<Value = (PortId, Vec<Shape>)> {
    prop_oneof![4 => Just(CORE), 4 => Just(EDGE), 1 => Just(NO_PORT)]
        .prop_flat_map(|ingress| (Just(ingress), vec(shape(ingress), 1..150)))
}

// ------------------------------------------------------------------ the property

/// Each frame in its own buffer, `HEADROOM` bytes in, as the run loop hands them over.
fn buffers(frames: &[Vec<u8>]) -> Vec<Vec<u8>> {
    frames
        .iter()
        .map(|f| {
            let mut b = vec![0xa5; HEADROOM + f.len()];
            b[HEADROOM..].copy_from_slice(f);
            b
        })
        .collect()
}

/// What a pipeline run leaves: each verdict, and the bytes of what it forwards or punts (a
/// dropped frame's content is unspecified).
fn outcome(frames: &[Frame<'_>], verdicts: &[Verdict]) -> Vec<(Verdict, Option<Vec<u8>>)> {
    frames
        .iter()
        .zip(verdicts)
        .map(|(f, &v)| match v {
            Verdict::Drop(_) => (v, None),
            Verdict::Forward(_) | Verdict::Punt(_) | Verdict::Fragment(_) => {
                (v, Some(f.data().to_vec()))
            }
        })
        .collect()
}

fn check_batch(snap: &Snapshot, ingress: PortId, frames: &[Vec<u8>]) -> Result<(), TestCaseError> {
    let mut one_by_one = buffers(frames);
    let mut single = Counters::new(snap.ports().len());
    let mut singles: Vec<Frame<'_>> = one_by_one
        .iter_mut()
        .zip(frames)
        .map(|(b, f)| Frame::new(b, HEADROOM, f.len()).expect("the frame fits its buffer"))
        .collect();
    let single_verdicts: Vec<Verdict> = singles
        .iter_mut()
        .map(|f| process(snap, ingress, f, &mut single, &mut NoTrace))
        .collect();

    let mut batched = buffers(frames);
    let mut batch = Counters::new(snap.ports().len());
    let mut in_batch: Vec<Frame<'_>> = batched
        .iter_mut()
        .zip(frames)
        .map(|(b, f)| Frame::new(b, HEADROOM, f.len()).expect("the frame fits its buffer"))
        .collect();
    let mut batch_verdicts = vec![Verdict::Drop(DropReason::Truncated); frames.len()];
    process_batch(
        snap,
        ingress,
        &mut in_batch,
        &mut batch_verdicts,
        &mut batch,
    );

    let (want, got) = (
        outcome(&singles, &single_verdicts),
        outcome(&in_batch, &batch_verdicts),
    );
    for (i, (w, g)) in want.iter().zip(&got).enumerate() {
        prop_assert_eq!(
            w,
            g,
            "frame {} of {} on port {:?}",
            i,
            frames.len(),
            ingress
        );
    }
    prop_assert_eq!(single, batch, "counters after {} frames", frames.len());
    Ok(())
}

proptest! {
    // About 3 s in a debug build (`cargo test`) on the 2-core build machine, the large
    // VRF's table included.
    #![proptest_config(ProptestConfig {
        cases: 200,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn a_batch_decides_as_its_frames_one_by_one(snap in 0..4usize, (ingress, shapes) in batch()) {
        let frames: Vec<Vec<u8>> = shapes.iter().map(Shape::bytes).collect();
        check_batch(&snapshots()[snap], ingress, &frames)?;
    }
}

/// The property only means something if the generated traffic reaches the deep stages and
/// the look-ahead: a fixed batch of the shapes it aims at is forwarded, on both ports, with
/// the large VRF, and agrees frame by frame.
#[test]
fn the_look_ahead_shapes_are_forwarded() {
    let snap = &snapshots()[2];
    assert!(snap.has_large_vrf());
    let udp = |dst: Ipv4Addr| Payload::Ipv4 {
        src: Ipv4Addr::new(198, 18, 10, 5),
        dst,
        ttl: 64,
        tos: 0xb8,
        echo: false,
    };
    let shape = |dst_mac, tag, labels: Vec<(u32, u8, u8)>, payload| Shape {
        dst_mac,
        src_mac: PEER_MAC,
        tag,
        qinq: false,
        labels,
        no_bottom: false,
        payload,
        padding: 0,
        cut: None,
        flip: None,
    };
    let edge: Vec<Vec<u8>> = (0..100u32)
        .map(|i| {
            let dst = Ipv4Addr::from(0x6440_0000 + ((i * 37 % LARGE_ROUTES) << 8) + 9);
            shape(EDGE_MAC, Some((5, 101)), vec![], udp(dst)).bytes()
        })
        .collect();
    let core: Vec<Vec<u8>> = (0..100u32)
        .map(|i| {
            let dst = Ipv4Addr::from(0x6440_0000 + ((i * 53 % LARGE_ROUTES) << 8) + 9);
            shape(CORE_MAC, None, vec![(1001, 3, 64)], udp(dst)).bytes()
        })
        .collect();
    for (ingress, frames) in [(EDGE, &edge), (CORE, &core)] {
        let mut bufs = buffers(frames);
        let mut batch: Vec<Frame<'_>> = bufs
            .iter_mut()
            .zip(frames.iter())
            .map(|(b, f)| Frame::new(b, HEADROOM, f.len()).expect("fits"))
            .collect();
        let mut verdicts = vec![Verdict::Drop(DropReason::Truncated); frames.len()];
        let mut counters = Counters::new(snap.ports().len());
        process_batch(snap, ingress, &mut batch, &mut verdicts, &mut counters);
        // A third of the routes point at an adjacency with no MAC yet.
        let forwarded = verdicts
            .iter()
            .filter(|v| matches!(v, Verdict::Forward(_)))
            .count();
        let unresolved = counters.drop_count(DropReason::NoNeighbor) as usize;
        assert_eq!(forwarded + unresolved, frames.len(), "{verdicts:?}");
        assert!(forwarded >= frames.len() / 2, "{verdicts:?}");
        check_batch(snap, ingress, frames).expect("batch and frames agree");
    }
}

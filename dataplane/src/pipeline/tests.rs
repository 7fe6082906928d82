//! Neighbour discovery and ICMPv6 echo for our addresses, frame in, exact bytes out.
//!
//! The tables are a small PE built with [`Snapshot::new`]: core0 (global table, 198.18.0.1/30
//! and 2001:db8::1/64) and dx0 VLAN 101 in vrf vpc-a (169.254.10.1/30 and 2001:db8:a::1/64),
//! with the customer 2001:db8:a::2 reachable through a host route. Input frames are built
//! here from bytes with a checksum written here, so neither is the code under test; expected
//! output is spelt out in hex, its checksums computed apart (and checked again with etherparse,
//! a decoder we did not write).

use core::net::{Ipv4Addr, Ipv6Addr};

use super::*;
use crate::tables::{
    Adjacency, Attachment, Ipv4Lpm, Ipv6Lpm, LabelStack, Port, SnapshotParts, Vrf,
};
use crate::wire::vlan::VlanId;

const CORE_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0x01, 0x01]);
const EDGE_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0x01, 0x02]);
const HOST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xaa, 0x01];
const CORE: PortId = PortId(0);
const EDGE: PortId = PortId(1);
const HEADROOM: usize = 64;

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// Bytes from hex with spaces for readability.
fn h(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(core::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

/// The ICMPv6 checksum of `msg` (checksum field zero) from `src` to `dst`, written here so it
/// is not the code under test.
fn icmp6_checksum(src: Ipv6Addr, dst: Ipv6Addr, msg: &[u8]) -> u16 {
    let mut data = Vec::new();
    data.extend_from_slice(&src.octets());
    data.extend_from_slice(&dst.octets());
    data.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    data.extend_from_slice(&[0, 0, 0, 58]);
    data.extend_from_slice(msg);
    let mut sum: u32 = data
        .chunks(2)
        .map(|p| u32::from(u16::from_be_bytes([p[0], p.get(1).copied().unwrap_or(0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An Ethernet frame (VLAN 101 when `tagged`) carrying IPv6 with ICMPv6 `msg`, whose checksum
/// is filled in.
fn icmp6_frame(
    dst_mac: [u8; 6],
    tagged: bool,
    hop_limit: u8,
    src: &str,
    dst: &str,
    mut msg: Vec<u8>,
) -> Vec<u8> {
    let (src, dst) = (v6(src), v6(dst));
    let ck = icmp6_checksum(src, dst, &msg);
    msg[2..4].copy_from_slice(&ck.to_be_bytes());
    let mut f = dst_mac.to_vec();
    f.extend_from_slice(&HOST_MAC);
    if tagged {
        f.extend_from_slice(&[0x81, 0x00, 0x00, 101]);
    }
    f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
    f.extend_from_slice(&(msg.len() as u16).to_be_bytes());
    f.extend_from_slice(&[58, hop_limit]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(&msg);
    f
}

/// A neighbour solicitation for `target`, with a source link-layer option when `option`.
fn ns(target: &str, option: Option<[u8; 6]>) -> Vec<u8> {
    let mut m = vec![135, 0, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&v6(target).octets());
    if let Some(mac) = option {
        m.extend_from_slice(&[1, 1]);
        m.extend_from_slice(&mac);
    }
    m
}

/// A neighbour advertisement for `target` with `flags`, with a target link-layer option when
/// `option`.
fn na(target: &str, flags: u8, option: Option<[u8; 6]>) -> Vec<u8> {
    let mut m = vec![136, 0, 0, 0, flags, 0, 0, 0];
    m.extend_from_slice(&v6(target).octets());
    if let Some(mac) = option {
        m.extend_from_slice(&[2, 1]);
        m.extend_from_slice(&mac);
    }
    m
}

/// An echo request, identifier 0x1234, sequence 1, data "xpe6".
fn echo_request() -> Vec<u8> {
    let mut m = vec![128, 0, 0, 0, 0x12, 0x34, 0, 1];
    m.extend_from_slice(b"xpe6");
    m
}

fn snapshot() -> Snapshot {
    let v4 = |routes: &[(&str, u8, u32)]| {
        Ipv4Lpm::from_routes(routes.iter().map(|&(a, l, f)| (a.parse().unwrap(), l, f))).unwrap()
    };
    let v6t = |routes: &[(&str, u8, u32)]| {
        Ipv6Lpm::from_routes(routes.iter().map(|&(a, l, f)| (v6(a), l, f))).unwrap()
    };
    Snapshot::new(SnapshotParts {
        name: "nd-pe".into(),
        ports: vec![
            Port::new("core0".into(), PortKind::Core, CORE_MAC, 1500),
            Port::new("dx0".into(), PortKind::Edge, EDGE_MAC, 1500),
        ],
        attachments: vec![
            Attachment {
                port: CORE,
                vlan: None,
                vrf: VrfId::GLOBAL,
                address: "198.18.0.1/30".parse().ok(),
                address6: "2001:db8::1/64".parse().ok(),
            },
            Attachment {
                port: EDGE,
                vlan: VlanId::new(101),
                vrf: VrfId(1),
                address: "169.254.10.1/30".parse().ok(),
                address6: "2001:db8:a::1/64".parse().ok(),
            },
        ],
        adjacencies: vec![Adjacency::new(
            AttachmentId(1),
            Ipv4Addr::new(169, 254, 10, 2),
            Some(MacAddr(HOST_MAC)),
        )],
        fecs: vec![
            Fec::Local,
            Fec::Glean {
                attachment: AttachmentId(1),
            },
            Fec::Forward {
                adj: AdjacencyId(0),
                push: LabelStack::EMPTY,
            },
        ],
        vrfs: vec![
            Vrf {
                name: "global".into(),
                table_label: None,
                v4: v4(&[("198.18.0.1", 32, 0)]),
                v6: v6t(&[("2001:db8::1", 128, 0)]),
            },
            Vrf {
                name: "vpc-a".into(),
                table_label: None,
                v4: v4(&[("169.254.10.1", 32, 0)]),
                v6: v6t(&[
                    ("2001:db8:a::1", 128, 0),
                    ("2001:db8:a::", 64, 1),
                    ("2001:db8:a::2", 128, 2),
                ]),
            },
        ],
        ..Default::default()
    })
    .unwrap()
}

/// What became of a frame: its verdict, the bytes it left with, the counters and the steps.
struct Run {
    verdict: Verdict,
    out: Vec<u8>,
    counters: Counters,
    steps: Vec<Step>,
}

fn run(ingress: PortId, bytes: &[u8]) -> Run {
    let snap = snapshot();
    let mut buf = vec![0u8; HEADROOM + bytes.len()];
    buf[HEADROOM..].copy_from_slice(bytes);
    let mut frame = Frame::new(&mut buf, HEADROOM, bytes.len()).unwrap();
    let mut counters = Counters::new(2);
    let mut steps = Vec::new();
    let verdict = process(&snap, ingress, &mut frame, &mut counters, &mut steps);
    Run {
        verdict,
        out: frame.data().to_vec(),
        counters,
        steps,
    }
}

/// A frame etherparse reads as IPv6 with ICMPv6 whose checksum is valid; returns its
/// (hop limit, ICMPv6 type).
fn etherparse_icmp6(frame: &[u8]) -> (u8, u8) {
    let p = etherparse::SlicedPacket::from_ethernet(frame).unwrap();
    let Some(etherparse::NetSlice::Ipv6(ip)) = &p.net else {
        panic!("etherparse did not see IPv6 in {frame:02x?}");
    };
    let Some(etherparse::TransportSlice::Icmpv6(icmp)) = &p.transport else {
        panic!("etherparse did not see ICMPv6 in {frame:02x?}");
    };
    let h = ip.header();
    assert!(icmp.is_checksum_valid(h.source(), h.destination()));
    (h.hop_limit(), icmp.type_u8())
}

#[test]
fn a_solicitation_for_our_address_is_answered_in_place() {
    let input = icmp6_frame(
        [0x33, 0x33, 0xff, 0, 0, 1],
        true,
        255,
        "2001:db8:a::2",
        "ff02::1:ff00:1",
        ns("2001:db8:a::1", Some(HOST_MAC)),
    );
    let r = run(EDGE, &input);
    assert_eq!(r.verdict, Verdict::Forward(EDGE));
    let expected = h("
        020000 00aa01  020000 000102  8100 0065  86dd
        6000 0000 0020 3a ff  20010db8000a0000 0000000000000001  20010db8000a0000 0000000000000002
        88 00 0954 e0000000  20010db8000a0000 0000000000000001  0201 020000000102
    ");
    assert_eq!(r.out, expected);
    assert_eq!(etherparse_icmp6(&r.out), (255, 136));
    assert_eq!((r.counters.nd_replies, r.counters.forwarded), (1, 1));
    assert!(r.steps.contains(&Step::NdAdvert {
        target: v6("2001:db8:a::1"),
        to: v6("2001:db8:a::2"),
    }));
    // The worker learns the solicitor from the advertisement it sends.
    let n = learn::neighbor(&r.out, true).unwrap();
    assert_eq!(
        (n.vid, n.ip, n.mac),
        (101, v6("2001:db8:a::2").into(), MacAddr(HOST_MAC))
    );
}

#[test]
fn a_solicitation_for_our_link_local_address_is_answered_from_it() {
    // dx0's MAC 02:00:00:00:01:02 makes fe80::ff:fe00:102; the host's, fe80::ff:fe00:aa01.
    let input = icmp6_frame(
        [0x33, 0x33, 0xff, 0, 0x01, 0x02],
        true,
        255,
        "fe80::ff:fe00:aa01",
        "ff02::1:ff00:102",
        ns("fe80::ff:fe00:102", Some(HOST_MAC)),
    );
    let r = run(EDGE, &input);
    assert_eq!(r.verdict, Verdict::Forward(EDGE));
    let expected = h("
        020000 00aa01  020000 000102  8100 0065  86dd
        6000 0000 0020 3a ff  fe80000000000000 000000fffe000102  fe80000000000000 000000fffe00aa01
        88 00 ee18 e0000000  fe80000000000000 000000fffe000102  0201 020000000102
    ");
    assert_eq!(r.out, expected);
    assert_eq!(etherparse_icmp6(&r.out), (255, 136));
}

#[test]
fn a_unicast_solicitation_without_an_option_is_answered_to_the_frame_source() {
    // Neighbour unreachability detection: to our address itself, no option (§4.3 allows it).
    // The advertisement is 8 bytes longer: the frame start moves back into the headroom.
    let input = icmp6_frame(
        EDGE_MAC.0,
        true,
        255,
        "2001:db8:a::2",
        "2001:db8:a::1",
        ns("2001:db8:a::1", None),
    );
    let r = run(EDGE, &input);
    assert_eq!(r.verdict, Verdict::Forward(EDGE));
    assert_eq!(r.out.len(), input.len() + 8);
    assert_eq!(
        r.out,
        h("
        020000 00aa01  020000 000102  8100 0065  86dd
        6000 0000 0020 3a ff  20010db8000a0000 0000000000000001  20010db8000a0000 0000000000000002
        88 00 0954 e0000000  20010db8000a0000 0000000000000001  0201 020000000102
    ")
    );
}

#[test]
fn duplicate_address_detection_is_answered_to_all_nodes() {
    // RFC 4861 §7.2.4: an unspecified source cannot be answered directly.
    let input = icmp6_frame(
        [0x33, 0x33, 0xff, 0, 0, 1],
        true,
        255,
        "::",
        "ff02::1:ff00:1",
        ns("2001:db8:a::1", None),
    );
    let r = run(EDGE, &input);
    assert_eq!(r.verdict, Verdict::Forward(EDGE));
    assert_eq!(
        r.out,
        h("
        333300000001  020000 000102  8100 0065  86dd
        6000 0000 0020 3a ff  20010db8000a0000 0000000000000001  ff02000000000000 0000000000000001
        88 00 7815 a0000000  20010db8000a0000 0000000000000001  0201 020000000102
    ")
    );
    assert_eq!(etherparse_icmp6(&r.out), (255, 136));
    // Unsolicited, to a group: nobody to learn from it.
    assert_eq!(learn::neighbor(&r.out, true), None);
}

#[test]
fn a_solicitation_on_the_core_is_answered_untagged() {
    let mut input = icmp6_frame(
        [0x33, 0x33, 0xff, 0, 0, 1],
        false,
        255,
        "2001:db8::2",
        "ff02::1:ff00:1",
        ns("2001:db8::1", Some(HOST_MAC)),
    );
    input[6..12].copy_from_slice(&HOST_MAC);
    let r = run(CORE, &input);
    assert_eq!(r.verdict, Verdict::Forward(CORE));
    assert_eq!(
        r.out,
        h("
        020000 00aa01  020000 000101  86dd
        6000 0000 0020 3a ff  20010db800000000 0000000000000001  20010db800000000 0000000000000002
        88 00 0973 e0000000  20010db800000000 0000000000000001  0201 020000000101
    ")
    );
    // The VLAN 101 address is not the core's: a solicitation for it there is not ours.
    let other = icmp6_frame(
        [0x33, 0x33, 0xff, 0, 0, 1],
        false,
        255,
        "2001:db8::2",
        "ff02::1:ff00:1",
        ns("2001:db8:a::1", Some(HOST_MAC)),
    );
    let r = run(CORE, &other);
    assert_eq!(r.verdict, Verdict::Punt(Punt::Nd));
    assert_eq!(r.out, other);
}

#[test]
fn advertisements_and_solicitations_for_others_are_punted_for_learning() {
    let group = [0x33, 0x33, 0, 0, 0, 1];
    // Solicited, to our address, with the option: what answers our own solicitation.
    let answer = icmp6_frame(
        EDGE_MAC.0,
        true,
        255,
        "2001:db8:a::2",
        "2001:db8:a::1",
        na("2001:db8:a::2", 0x60, Some(HOST_MAC)),
    );
    let unsolicited = icmp6_frame(
        group,
        true,
        255,
        "2001:db8:a::2",
        "ff02::1",
        na("2001:db8:a::2", 0x20, Some(HOST_MAC)),
    );
    let no_option = icmp6_frame(
        group,
        true,
        255,
        "2001:db8:a::2",
        "ff02::1",
        na("2001:db8:a::2", 0x20, None),
    );
    let for_another = icmp6_frame(
        [0x33, 0x33, 0xff, 0, 0, 3],
        true,
        255,
        "2001:db8:a::2",
        "ff02::1:ff00:3",
        ns("2001:db8:a::3", Some(HOST_MAC)),
    );
    let dad_of_another = icmp6_frame(
        [0x33, 0x33, 0xff, 0, 0, 3],
        true,
        255,
        "::",
        "ff02::1:ff00:3",
        ns("2001:db8:a::3", None),
    );
    for (name, frame, punt) in [
        ("solicited advertisement", &answer, Punt::Nd),
        ("unsolicited advertisement", &unsolicited, Punt::Nd),
        ("advertisement without option", &no_option, Punt::Multicast),
        ("solicitation for another", &for_another, Punt::Nd),
        (
            "duplicate address detection of another",
            &dad_of_another,
            Punt::Multicast,
        ),
    ] {
        let r = run(EDGE, frame);
        assert_eq!(r.verdict, Verdict::Punt(punt), "{name}");
        assert_eq!(&r.out, frame, "{name}: a punted frame is left as it came");
        assert_eq!(r.counters.punt_count(punt), 1, "{name}");
    }
    let n = learn::neighbor(&answer, false).unwrap();
    assert_eq!(
        (n.ip, n.mac),
        (v6("2001:db8:a::2").into(), MacAddr(HOST_MAC))
    );
    let n = learn::neighbor(&for_another, false).unwrap();
    assert_eq!(n.ip, core::net::IpAddr::V6(v6("2001:db8:a::2")));
}

#[test]
fn malformed_neighbour_discovery_is_a_counted_drop() {
    let ok = || ns("2001:db8:a::1", Some(HOST_MAC));
    let frame = |hop_limit, src: &str, msg| {
        icmp6_frame(
            [0x33, 0x33, 0xff, 0, 0, 1],
            true,
            hop_limit,
            src,
            "ff02::1:ff00:1",
            msg,
        )
    };
    let mut zero_option = ok();
    zero_option[25] = 0;
    let mut long_option = ok();
    long_option[25] = 2;
    let mut code = ok();
    code[1] = 1;
    let mut bad_checksum = frame(255, "2001:db8:a::2", ok());
    let last = bad_checksum.len() - 1;
    bad_checksum[last] ^= 0x01;
    let short = {
        let mut m = ok();
        m.truncate(20);
        m
    };
    let cases = [
        ("hop limit 254", frame(254, "2001:db8:a::2", ok())),
        ("bad checksum", bad_checksum),
        (
            "option of length 0",
            frame(255, "2001:db8:a::2", zero_option),
        ),
        (
            "option past the end",
            frame(255, "2001:db8:a::2", long_option),
        ),
        ("code 1", frame(255, "2001:db8:a::2", code)),
        ("cut short", frame(255, "2001:db8:a::2", short)),
        (
            "multicast target",
            frame(255, "2001:db8:a::2", ns("ff02::1", None)),
        ),
        ("unspecified source with an option", frame(255, "::", ok())),
        (
            "unspecified source to a unicast address",
            icmp6_frame(
                EDGE_MAC.0,
                true,
                255,
                "::",
                "2001:db8:a::1",
                ns("2001:db8:a::1", None),
            ),
        ),
        (
            "solicited advertisement to a group",
            icmp6_frame(
                [0x33, 0x33, 0, 0, 0, 1],
                true,
                255,
                "2001:db8:a::2",
                "ff02::1",
                na("2001:db8:a::2", 0x60, Some(HOST_MAC)),
            ),
        ),
    ];
    for (name, f) in cases {
        let r = run(EDGE, &f);
        assert_eq!(r.verdict, Verdict::Drop(DropReason::BadNd), "{name}");
        assert_eq!(r.counters.drop_count(DropReason::BadNd), 1, "{name}");
        assert_eq!(r.counters.nd_replies, 0, "{name}");
    }
}

#[test]
fn echo_requests_to_our_global_address_are_answered_and_routed_back() {
    let input = icmp6_frame(
        EDGE_MAC.0,
        true,
        64,
        "2001:db8:a::2",
        "2001:db8:a::1",
        echo_request(),
    );
    assert_eq!(input[58 + 2..58 + 4], [0x34, 0x54]);
    let r = run(EDGE, &input);
    assert_eq!(r.verdict, Verdict::Forward(EDGE));
    // Out by the host's adjacency (PCP 0), hop limit 64.
    assert_eq!(
        r.out,
        h("
        020000 00aa01  020000 000102  8100 0065  86dd
        6000 0000 000c 3a 40  20010db8000a0000 0000000000000001  20010db8000a0000 0000000000000002
        81 00 3354 1234 0001  78706536
    ")
    );
    assert_eq!(etherparse_icmp6(&r.out), (64, 129));
    assert_eq!((r.counters.echo6_replies, r.counters.forwarded), (1, 1));
    assert!(r.steps.contains(&Step::Echo6Reply {
        to: v6("2001:db8:a::2")
    }));
}

#[test]
fn echo_requests_to_our_link_local_address_are_answered_in_place() {
    let input = icmp6_frame(
        EDGE_MAC.0,
        true,
        64,
        "fe80::ff:fe00:aa01",
        "fe80::ff:fe00:102",
        echo_request(),
    );
    let r = run(EDGE, &input);
    assert_eq!(r.verdict, Verdict::Forward(EDGE));
    assert_eq!(
        r.out,
        h("
        020000 00aa01  020000 000102  8100 0065  86dd
        6000 0000 000c 3a 40  fe80000000000000 000000fffe000102  fe80000000000000 000000fffe00aa01
        81 00 e8d7 1234 0001  78706536
    ")
    );
    assert_eq!(r.counters.echo6_replies, 1);
    // Another link-local address on the link is not ours.
    let other = icmp6_frame(
        EDGE_MAC.0,
        true,
        64,
        "fe80::ff:fe00:aa01",
        "fe80::1",
        echo_request(),
    );
    assert_eq!(run(EDGE, &other).verdict, Verdict::Punt(Punt::ForUs));
}

#[test]
fn other_ipv6_for_us_is_punted_untouched() {
    let mut bad_checksum = icmp6_frame(
        EDGE_MAC.0,
        true,
        64,
        "2001:db8:a::2",
        "2001:db8:a::1",
        echo_request(),
    );
    let last = bad_checksum.len() - 1;
    bad_checksum[last] ^= 0x01;
    let from_ourselves = icmp6_frame(
        EDGE_MAC.0,
        true,
        64,
        "2001:db8:a::1",
        "2001:db8:a::1",
        echo_request(),
    );
    let to_all_nodes = icmp6_frame(
        [0x33, 0x33, 0, 0, 0, 1],
        true,
        64,
        "2001:db8:a::2",
        "ff02::1",
        echo_request(),
    );
    // A router solicitation (type 133) to all routers.
    let rs = icmp6_frame(
        [0x33, 0x33, 0, 0, 0, 2],
        true,
        255,
        "fe80::ff:fe00:aa01",
        "ff02::2",
        vec![133, 0, 0, 0, 0, 0, 0, 0],
    );
    let mut udp = icmp6_frame(
        EDGE_MAC.0,
        true,
        64,
        "2001:db8:a::2",
        "2001:db8:a::1",
        echo_request(),
    );
    udp[18 + 6] = 17;
    // IPv6 to a unicast address in a multicast frame is never routed.
    let unicast_in_group = icmp6_frame(
        [0x33, 0x33, 0, 0, 0, 1],
        true,
        64,
        "2001:db8:a::2",
        "2001:db8:a::9",
        echo_request(),
    );
    let mut ipv4_in_group = unicast_in_group.clone();
    ipv4_in_group[16..18].copy_from_slice(&[0x08, 0x00]);
    for (name, f, punt) in [
        ("echo with a bad checksum", bad_checksum, Punt::ForUs),
        ("echo from our own address", from_ourselves, Punt::ForUs),
        ("echo to all nodes", to_all_nodes, Punt::Multicast),
        ("router solicitation", rs, Punt::Multicast),
        ("udp to us", udp, Punt::ForUs),
        (
            "unicast in a multicast frame",
            unicast_in_group,
            Punt::Multicast,
        ),
        (
            "IPv4 in an IPv6 multicast frame",
            ipv4_in_group,
            Punt::Multicast,
        ),
    ] {
        let r = run(EDGE, &f);
        assert_eq!(r.verdict, Verdict::Punt(punt), "{name}");
        assert_eq!(r.out, f, "{name}: a punted frame is left as it came");
        assert_eq!(r.counters.echo6_replies, 0, "{name}");
    }
}

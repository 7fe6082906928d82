//! Classification and header checks that drop or punt a frame, and the two captures replay
//! writes: the output capture (forwarded frames in input order, by egress interface) and the
//! drops capture (dropped and punted frames in input order, as they arrived, with reasons).

use xpe_tests::*;

/// Every malformed or unclassifiable frame gets its own reason.
#[test]
fn classification_and_header_drops() {
    let ip = V4::new(Eth::dx0(101), "169.254.10.2", "198.19.20.5");
    let good = ip.udp();

    let mut bad_checksum = good.clone();
    bad_checksum[18 + 10] ^= 0x01;
    let mut too_long = good.clone();
    too_long[18 + 2..18 + 4].copy_from_slice(&1000u16.to_be_bytes());
    fix_ipv4_checksum(&mut too_long[18..]);
    let mut shorter_than_header = good.clone();
    shorter_than_header[18 + 2..18 + 4].copy_from_slice(&19u16.to_be_bytes());
    fix_ipv4_checksum(&mut shorter_than_header[18..]);
    let mut ihl_4 = good.clone();
    ihl_4[18] = 0x44;
    let mut ipv6_in_ipv4 = V6::new(Eth::dx0(101), "2001:db8:a::2", "2001:db8:20::1").udp();
    ipv6_in_ipv4[16..18].copy_from_slice(&0x0800u16.to_be_bytes());
    let mut ipv4_in_ipv6 = good.clone();
    ipv4_in_ipv6[16..18].copy_from_slice(&0x86ddu16.to_be_bytes());
    let mut v6_too_long = V6::new(Eth::dx0(101), "2001:db8:a::2", "2001:db8:20::1").udp();
    v6_too_long[18 + 4..18 + 6].copy_from_slice(&500u16.to_be_bytes());

    let mut qinq = Eth::dx0(101).header(ETHERTYPE_QINQ);
    qinq.truncate(12);
    qinq.extend_from_slice(&[0x88, 0xa8, 0x00, 0x0a, 0x81, 0x00, 0x00, 0x65, 0x08, 0x00]);
    qinq.extend_from_slice(l3_of(&good));
    let mut double_q = Eth::dx0(101).header(ETHERTYPE_VLAN);
    double_q.extend_from_slice(&[0x00, 0x65, 0x08, 0x00]);
    double_q.extend_from_slice(l3_of(&good));
    let vid_4095 = V4 {
        eth: Eth {
            vlan: Some((4095, 0)),
            ..ip.eth
        },
        ..ip
    }
    .udp();
    let priority_tagged = V4 {
        eth: Eth {
            vlan: Some((0, 5)),
            ..ip.eth
        },
        ..ip
    }
    .udp();
    let lldp = Eth {
        src: STRANGER_MAC,
        dst: [0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e],
        vlan: None,
    }
    .frame(0x88cc, &[0x02, 0x07, 0x04, 0x02, 0, 0, 0, 0xee, 0xee, 0, 0]);

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("dx0", good[..13].to_vec(), "truncated"),
        (
            "dx0",
            V4 {
                eth: ip.eth.to(STRANGER_MAC),
                ..ip
            }
            .udp(),
            "other-mac",
        ),
        (
            "dx0",
            V4::new(Eth::dx0(103), "169.254.30.2", "198.19.20.5").udp(),
            "unknown-vlan",
        ),
        ("dx0", vid_4095, "unknown-vlan"),
        (
            "core0",
            V4 {
                eth: Eth {
                    vlan: Some((101, 0)),
                    ..Eth::core0()
                },
                ..ip
            }
            .udp(),
            "unknown-vlan",
        ),
        (
            "dx0",
            V4 {
                eth: ip.eth.untagged(),
                ..ip
            }
            .udp(),
            "no-attachment",
        ),
        ("dx0", priority_tagged, "no-attachment"),
        (
            "dx0",
            with_labels(&good, &[lse(1001, 0, true, 64)]),
            "mpls-on-edge",
        ),
        ("dx0", qinq, "stacked-vlan"),
        ("dx0", double_q, "stacked-vlan"),
        ("dx0", good[..16].to_vec(), "truncated"),
        ("dx0", good[..18].to_vec(), "truncated"),
        ("dx0", bad_checksum, "bad-ipv4-header"),
        ("dx0", too_long, "truncated"),
        ("dx0", shorter_than_header, "bad-ipv4-header"),
        ("dx0", ihl_4, "bad-ipv4-header"),
        ("dx0", ipv6_in_ipv4, "bad-ipv4-header"),
        ("dx0", ipv4_in_ipv6, "bad-ipv6-header"),
        ("dx0", v6_too_long, "truncated"),
        (
            "dx0",
            V4::new(Eth::dx0(101), "169.254.10.2", "203.0.113.9").udp(),
            "no-route",
        ),
        ("dx0", lldp.clone(), "punt/multicast"),
        ("core0", lldp, "punt/multicast"),
        (
            "dx0",
            Eth::dx0(101).frame(0x88cc, &[0; 32]),
            "punt/other-protocol",
        ),
    ];
    let frames: Vec<(&str, Vec<u8>)> = cases.iter().map(|(i, f, _)| (*i, f.clone())).collect();
    let r = replay(&example_config(), &frames);
    let expected: Vec<&str> = cases.iter().map(|(_, _, c)| *c).collect();
    assert_eq!(r.comments(), expected, "{}", r.stdout);
    assert!(r.out().is_empty());
    assert_eq!(
        r.report.drops,
        counts(&[
            ("truncated", 5),
            ("other-mac", 1),
            ("unknown-vlan", 3),
            ("no-attachment", 2),
            ("mpls-on-edge", 1),
            ("stacked-vlan", 2),
            ("bad-ipv4-header", 4),
            ("bad-ipv6-header", 1),
            ("no-route", 1),
        ])
    );
    assert_eq!(
        r.report.punts,
        counts(&[("multicast", 2), ("other-protocol", 1)])
    );
    assert_eq!(
        (
            r.report.frames_in,
            r.report.forwarded,
            r.report.dropped,
            r.report.punted
        ),
        (cases.len() as u64, 0, 20, 3)
    );
}

/// Next hops whose MAC is unknown: a route via a next hop without a static neighbour, and a
/// connected-subnet address nobody has resolved.
#[test]
fn next_hop_without_neighbour() {
    let eth = Eth::dx0(103);
    let r = replay(
        &test_config("extras"),
        &[
            ("dx0", V4::new(eth, "169.254.30.2", "198.51.100.9").udp()),
            ("dx0", V4::new(eth, "169.254.30.2", "169.254.30.2").udp()),
            // Labelled traffic from the same VRF still leaves by the core.
            ("dx0", V4::new(eth, "169.254.30.2", "198.19.20.5").udp()),
        ],
    );
    assert_eq!(r.comments(), ["no-neighbor", "no-neighbor"]);
    assert_eq!(r.report.drops, counts(&[("no-neighbor", 2)]));
    assert_eq!(r.out().len(), 1);
}

/// Both captures keep the input order; the output names the egress interface, the drops
/// capture the ingress one, with the original bytes, timestamps and one or two comments.
#[test]
fn captures_keep_order_bytes_and_reasons() {
    let to_core = V4::new(Eth::dx0(101), "169.254.10.2", "198.19.20.1").udp();
    let no_route = V4::new(Eth::dx0(101), "169.254.10.2", "203.0.113.2").udp();
    let to_vpc = with_labels(
        &V4::new(Eth::core0(), "198.19.20.5", "198.18.10.3").udp(),
        &[lse(1002, 0, true, 64)],
    );
    let for_us = V4::new(Eth::dx0(102), "169.254.10.2", "169.254.10.1").udp();
    let edge_to_edge = V4::new(Eth::dx0(102), "169.254.10.2", "198.18.10.5").udp();
    let expired = with_labels(
        &V4::new(Eth::core0(), "198.19.20.5", "198.18.10.6").udp(),
        &[lse(16002, 0, true, 1)],
    );
    let swap = with_labels(
        &V4::new(Eth::core0(), "198.19.20.5", "198.18.10.7").udp(),
        &[lse(16002, 0, true, 64)],
    );
    let frames = vec![
        ("dx0", to_core),
        ("dx0", no_route.clone()),
        ("core0", to_vpc),
        ("dx0", for_us.clone()),
        ("dx0", edge_to_edge),
        ("core0", expired.clone()),
        ("core0", swap.clone()),
    ];
    let in_bytes = |port: &str| -> u64 {
        frames
            .iter()
            .filter(|(i, _)| *i == port)
            .map(|(_, f)| f.len() as u64)
            .sum()
    };
    let (dx0_in, core0_in, swap_len) = (in_bytes("dx0"), in_bytes("core0"), swap.len() as u64);
    let r = replay(&example_config(), &frames);

    let out = r.out_fields(&[
        "frame.interface_name",
        "ip.dst",
        "frame.time_epoch",
        "frame.comment",
    ]);
    let got: Vec<(&str, &str, &str, &str)> = out
        .iter()
        .map(|row| {
            (
                row["frame.interface_name"].as_str(),
                row["ip.dst"].as_str(),
                row["frame.time_epoch"].as_str(),
                row["frame.comment"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("core0", "198.19.20.1", "1700000000.000000000", ""),
            ("dx0", "198.18.10.3", "1700000000.002000000", ""),
            ("dx0", "198.18.10.5", "1700000000.004000000", ""),
            // The expired packet's time exceeded, sent on along its LSP (the quoted
            // packet's destination second).
            (
                "core0",
                "198.19.20.5,198.18.10.6",
                "1700000000.005000000",
                "icmp time-exceeded: ttl-expired"
            ),
            ("core0", "198.18.10.7", "1700000000.006000000", ""),
        ]
    );

    let drops = r.drops();
    assert_eq!(
        drops,
        [
            CapturedFrame {
                interface: "dx0".into(),
                data: no_route,
                comments: vec!["no-route".into()],
            },
            CapturedFrame {
                interface: "dx0".into(),
                data: for_us,
                comments: vec!["punt".into(), "for-us".into()],
            },
            CapturedFrame {
                interface: "core0".into(),
                data: expired,
                comments: vec!["ttl-expired".into(), "icmp time-exceeded sent".into()],
            },
        ]
    );
    let rows = r.drops_fields(&["frame.interface_name", "frame.time_epoch", "frame.comment"]);
    let got: Vec<Vec<&str>> = rows
        .iter()
        .map(|row| {
            vec![
                row["frame.interface_name"].as_str(),
                row["frame.time_epoch"].as_str(),
                row["frame.comment"].as_str(),
            ]
        })
        .collect();
    assert_eq!(
        got,
        [
            ["dx0", "1700000000.001000000", "no-route"],
            ["dx0", "1700000000.003000000", "punt,for-us"],
            [
                "core0",
                "1700000000.005000000",
                "ttl-expired,icmp time-exceeded sent"
            ],
        ]
    );

    // Per interface: every frame in, every frame out, bytes as on the wire.
    assert_eq!(
        r.report.ports["dx0"],
        PortLine {
            in_frames: 4,
            in_bytes: dx0_in,
            out_frames: 2,
            out_bytes: 2 * 64
        }
    );
    assert_eq!(
        r.report.ports["core0"],
        PortLine {
            in_frames: 3,
            in_bytes: core0_in,
            // The time exceeded: 14 + 4 (its label) + 20 + 8 + 128 (quote) + 8 + 4 (RFC
            // 4950 object with one entry).
            out_frames: 3,
            out_bytes: 68 + swap_len + 186
        }
    );
    assert_eq!(
        (
            r.report.frames_in,
            r.report.forwarded,
            r.report.dropped,
            r.report.punted
        ),
        (7, 5, 1, 1)
    );
    assert!(
        r.stdout
            .starts_with("replay: 7 frames in, 5 forwarded, 1 dropped, 1 punted\n"),
        "{}",
        r.stdout
    );
}

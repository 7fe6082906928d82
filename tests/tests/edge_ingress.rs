//! IP arriving from customers on dx0: label imposition towards the core (RFC 3031 §3.10,
//! RFC 3443 uniform TTL, precedence -> TC) and routing between attachments of one VRF.
//!
//! Every frame is replayed from examples/dx-pe.toml, decoded by tshark and compared field by
//! field, and the rewritten bytes are compared with a frame built independently.

use xpe_tests::*;

/// vpc-a and vpc-b both reach 198.19.20.0/24 across the core, each with its own VPN label.
#[test]
fn ipv4_to_remote_site_gets_transport_and_vpn_label() {
    let a = V4::new(Eth::dx0(101), "169.254.10.2", "198.19.20.5").dscp(46);
    let a_low = V4::new(Eth::dx0(101), "169.254.10.2", "198.19.20.200")
        .dscp(10)
        .ttl(200);
    let b = V4::new(Eth::dx0(102), "169.254.10.2", "198.19.20.5").dscp(46);
    let r = replay(
        &example_config(),
        &[("dx0", a.udp()), ("dx0", a_low.udp()), ("dx0", b.udp())],
    );

    let rows = r.out_fields(FIELDS);
    assert_eq!(rows.len(), 3, "{}", r.stdout);
    let core = [
        ("frame.interface_name", "core0"),
        ("eth.src", "02:00:00:00:01:01"),
        ("eth.dst", "02:00:00:00:02:01"),
        ("eth.type", "0x8847"),
        ("vlan.id", ""),
        ("mpls.bottom", "0,1"),
        ("ip.checksum.status", CHECKSUM_GOOD),
    ];
    assert_fields(&rows[0], &core);
    assert_fields(
        &rows[0],
        &[
            ("mpls.label", "16001,2001"),
            // DSCP 46 (EF) is precedence 5: TC 5 on both labels.
            ("mpls.exp", "5,5"),
            ("mpls.ttl", "63,63"),
            ("ip.ttl", "63"),
            ("ip.dsfield.dscp", "46"),
            ("ip.dst", "198.19.20.5"),
        ],
    );
    assert_fields(&rows[1], &core);
    assert_fields(
        &rows[1],
        &[
            ("mpls.label", "16001,2001"),
            // DSCP 10 (AF11) is precedence 1.
            ("mpls.exp", "1,1"),
            ("mpls.ttl", "199,199"),
            ("ip.ttl", "199"),
            ("ip.dst", "198.19.20.200"),
        ],
    );
    assert_fields(&rows[2], &core);
    assert_fields(
        &rows[2],
        &[
            ("mpls.label", "16001,2002"),
            ("mpls.exp", "5,5"),
            ("mpls.ttl", "63,63"),
            ("ip.ttl", "63"),
        ],
    );

    let out = r.out();
    let expected = with_labels(
        &V4 {
            eth: Eth::core0_out(),
            ..a.ttl(63)
        }
        .udp(),
        &[lse(16001, 5, false, 63), lse(2001, 5, true, 63)],
    );
    assert_eq!(out[0].data, expected, "vpc-a frame bytes");
    let expected = with_labels(
        &V4 {
            eth: Eth::core0_out(),
            ..b.ttl(63)
        }
        .udp(),
        &[lse(16001, 5, false, 63), lse(2002, 5, true, 63)],
    );
    assert_eq!(out[2].data, expected, "vpc-b frame bytes");

    // 18 + 46 bytes in, 14 + 8 + 46 out, per frame.
    assert_eq!(r.report.frames_in, 3);
    assert_eq!(
        (r.report.forwarded, r.report.dropped, r.report.punted),
        (3, 0, 0)
    );
    assert_eq!(
        r.report.ports["dx0"],
        PortLine {
            in_frames: 3,
            in_bytes: 192,
            out_frames: 0,
            out_bytes: 0
        }
    );
    assert_eq!(
        r.report.ports["core0"],
        PortLine {
            in_frames: 0,
            in_bytes: 0,
            out_frames: 3,
            out_bytes: 204
        }
    );
    assert!(
        r.report.drops.is_empty() && r.report.punts.is_empty(),
        "{}",
        r.stdout
    );
    assert!(r.drops().is_empty());
}

/// IPv6 in vpc-a is labelled like IPv4; vpc-b has no IPv6 route at all.
#[test]
fn ipv6_imposition_and_vrf_without_v6_route() {
    // Traffic class 0xb8 is DSCP 46: precedence 5.
    let a = V6::new(Eth::dx0(101), "2001:db8:a::2", "2001:db8:20::1").traffic_class(0xb8);
    let b = V6::new(Eth::dx0(102), "2001:db8:b::2", "2001:db8:20::1");
    let r = replay(&example_config(), &[("dx0", a.udp()), ("dx0", b.udp())]);

    let rows = r.out_fields(FIELDS);
    assert_eq!(rows.len(), 1, "{}", r.stdout);
    assert_fields(
        &rows[0],
        &[
            ("frame.interface_name", "core0"),
            ("eth.src", "02:00:00:00:01:01"),
            ("eth.dst", "02:00:00:00:02:01"),
            ("vlan.id", ""),
            ("mpls.label", "16001,2001"),
            ("mpls.exp", "5,5"),
            ("mpls.bottom", "0,1"),
            ("mpls.ttl", "63,63"),
            ("ipv6.hlim", "63"),
            ("ipv6.dst", "2001:db8:20::1"),
        ],
    );
    let expected = with_labels(
        &V6 {
            eth: Eth::core0_out(),
            ..a.hop_limit(63)
        }
        .udp(),
        &[lse(16001, 5, false, 63), lse(2001, 5, true, 63)],
    );
    assert_eq!(r.out()[0].data, expected);

    let drops = r.drops_fields(&[
        "frame.interface_name",
        "vlan.id",
        "ipv6.dst",
        "frame.comment",
    ]);
    assert_eq!(drops.len(), 1);
    assert_fields(
        &drops[0],
        &[
            ("frame.interface_name", "dx0"),
            ("vlan.id", "102"),
            ("ipv6.dst", "2001:db8:20::1"),
            ("frame.comment", "no-route"),
        ],
    );
    assert_eq!(r.report.drops, counts(&[("no-route", 1)]));
    assert_eq!((r.report.forwarded, r.report.dropped), (1, 1));
}

/// Within a VRF: out dx0 on the destination's VLAN, PCP from the IP precedence, TTL - 1.
#[test]
fn edge_to_edge_within_each_vrf() {
    let a = V4::new(Eth::dx0(101), "169.254.10.2", "198.18.10.7").dscp(46);
    // The ingress PCP does not matter: the egress PCP is the IP precedence (here 0).
    let a_pcp = V4::new(
        Eth {
            vlan: Some((101, 3)),
            ..Eth::dx0(101)
        },
        "169.254.10.2",
        "198.18.10.8",
    )
    .ttl(2);
    let b = V4::new(Eth::dx0(102), "169.254.10.2", "198.18.10.7").dscp(26);
    let r = replay(
        &example_config(),
        &[("dx0", a.udp()), ("dx0", a_pcp.udp()), ("dx0", b.udp())],
    );

    let rows = r.out_fields(FIELDS);
    assert_eq!(rows.len(), 3, "{}", r.stdout);
    assert_fields(
        &rows[0],
        &[
            ("frame.interface_name", "dx0"),
            ("eth.src", "02:00:00:00:01:02"),
            ("eth.dst", "02:00:00:00:aa:01"),
            ("vlan.id", "101"),
            ("vlan.priority", "5"),
            ("mpls.label", ""),
            ("ip.ttl", "63"),
            ("ip.dst", "198.18.10.7"),
            ("ip.checksum.status", CHECKSUM_GOOD),
        ],
    );
    assert_fields(
        &rows[1],
        &[
            ("vlan.id", "101"),
            ("vlan.priority", "0"),
            ("ip.ttl", "1"),
            ("ip.checksum.status", CHECKSUM_GOOD),
        ],
    );
    assert_fields(
        &rows[2],
        &[
            ("frame.interface_name", "dx0"),
            ("eth.dst", "02:00:00:00:bb:01"),
            ("vlan.id", "102"),
            // DSCP 26 (AF31) is precedence 3.
            ("vlan.priority", "3"),
            ("ip.ttl", "63"),
            ("ip.checksum.status", CHECKSUM_GOOD),
        ],
    );
    let out = r.out();
    let expected = V4 {
        eth: Eth::dx0_out(101, 5),
        ..a.ttl(63)
    }
    .udp();
    assert_eq!(out[0].data, expected);
    let expected = V4 {
        eth: Eth::dx0_out(102, 3),
        ..b.ttl(63)
    }
    .udp();
    assert_eq!(out[2].data, expected);
    assert_eq!(
        r.report.ports["dx0"],
        PortLine {
            in_frames: 3,
            in_bytes: 192,
            out_frames: 3,
            out_bytes: 192
        }
    );
    assert!(!r.report.ports.contains_key("core0"), "{}", r.stdout);
}

/// Ethernet padding after a short IP packet is not forwarded: the frame is cut to the IP
/// total length before the new headers go on.
#[test]
fn ethernet_padding_is_not_forwarded() {
    let ip = V4::new(Eth::dx0(101), "169.254.10.2", "198.19.20.5").payload(0);
    let mut frame = ip.udp();
    assert_eq!(frame.len(), 18 + 28);
    frame.resize(64, 0);
    let r = replay(&example_config(), &[("dx0", frame)]);
    let out = r.out();
    assert_eq!(out.len(), 1, "{}", r.stdout);
    let expected = with_labels(
        &V4 {
            eth: Eth::core0_out(),
            ..ip.ttl(63)
        }
        .udp(),
        &[lse(16001, 0, false, 63), lse(2001, 0, true, 63)],
    );
    assert_eq!(out[0].data, expected);
    assert_eq!(out[0].data.len(), 14 + 8 + 28);
    let rows = r.out_fields(&["frame.len", "ip.len", "mpls.label"]);
    assert_fields(
        &rows[0],
        &[
            ("frame.len", "50"),
            ("ip.len", "28"),
            ("mpls.label", "16001,2001"),
        ],
    );
    assert_eq!(r.report.ports["core0"].out_bytes, 50);
}

/// IPv4 options do not move the TTL or break the checksum update.
#[test]
fn ipv4_with_options_is_forwarded() {
    let ip = V4::new(Eth::dx0(101), "169.254.10.2", "198.19.20.5").ttl(9);
    let frame = with_ipv4_options(&ip.udp(), &[1, 1, 1, 0]);
    let r = replay(&example_config(), &[("dx0", frame)]);
    let rows = r.out_fields(&["ip.hdr_len", "ip.ttl", "ip.checksum.status", "udp.dstport"]);
    assert_eq!(rows.len(), 1, "{}", r.stdout);
    assert_fields(
        &rows[0],
        &[
            ("ip.hdr_len", "24"),
            ("ip.ttl", "8"),
            ("ip.checksum.status", CHECKSUM_GOOD),
            ("udp.dstport", "4789"),
        ],
    );
}

/// An untagged (port) attachment: frames arrive and leave without a tag; a priority tag
/// (VID 0) belongs to it too; any other VLAN on that port is unknown.
#[test]
fn untagged_attachment() {
    let dx1_mac = [0x02, 0, 0, 0, 0x01, 0x03];
    let peer_mac = [0x02, 0, 0, 0, 0xdd, 0x01];
    let eth = Eth {
        src: peer_mac,
        dst: dx1_mac,
        vlan: None,
    };
    let up = V4::new(eth, "169.254.40.2", "198.19.20.5").dscp(46);
    let prio = V4 {
        eth: Eth {
            vlan: Some((0, 6)),
            ..eth
        },
        ..up
    };
    let tagged = V4 {
        eth: Eth {
            vlan: Some((101, 0)),
            ..eth
        },
        ..up
    };
    let down = with_labels(
        &V4::new(Eth::core0(), "198.19.20.5", "198.18.40.9").udp(),
        &[lse(1004, 3, true, 64)],
    );
    let r = replay(
        &test_config("extras"),
        &[
            ("dx1", up.udp()),
            ("dx1", prio.udp()),
            ("dx1", tagged.udp()),
            ("core0", down),
            ("dx1", arp_request(eth, "169.254.40.2", "169.254.40.1")),
        ],
    );
    let rows = r.out_fields(&[
        "frame.interface_name",
        "eth.src",
        "eth.dst",
        "vlan.id",
        "mpls.label",
        "mpls.exp",
        "ip.ttl",
        "arp.opcode",
    ]);
    assert_eq!(rows.len(), 4, "{}", r.stdout);
    for row in &rows[..2] {
        assert_fields(
            row,
            &[
                ("frame.interface_name", "core0"),
                ("mpls.label", "16001,2004"),
                ("mpls.exp", "5,5"),
                ("ip.ttl", "63"),
            ],
        );
    }
    assert_fields(
        &rows[2],
        &[
            ("frame.interface_name", "dx1"),
            ("eth.src", "02:00:00:00:01:03"),
            ("eth.dst", "02:00:00:00:dd:01"),
            ("vlan.id", ""),
            ("mpls.label", ""),
            ("ip.ttl", "63"),
        ],
    );
    assert_fields(
        &rows[3],
        &[
            ("frame.interface_name", "dx1"),
            ("eth.src", "02:00:00:00:01:03"),
            ("eth.dst", "02:00:00:00:dd:01"),
            ("vlan.id", ""),
            ("arp.opcode", "2"),
        ],
    );
    let expected = V4 {
        eth: Eth {
            src: dx1_mac,
            dst: peer_mac,
            vlan: None,
        },
        ..V4::new(Eth::core0(), "198.19.20.5", "198.18.40.9").ttl(63)
    }
    .udp();
    assert_eq!(r.out()[2].data, expected);
    assert_eq!(r.report.drops, counts(&[("unknown-vlan", 1)]));
}

/// The incremental checksum update (RFC 1624) holds for every TTL and many header sums.
#[test]
fn ttl_decrement_keeps_checksum_valid_for_every_ttl() {
    let frames: Vec<(&str, Vec<u8>)> = (2..=255u8)
        .map(|ttl| {
            let dst = format!("198.19.20.{}", 255 - ttl);
            let ip = V4::new(Eth::dx0(101), "169.254.10.2", &dst)
                .ttl(ttl)
                .dscp(ttl >> 2);
            ("dx0", ip.udp())
        })
        .collect();
    let r = replay(&example_config(), &frames);
    let rows = r.out_fields(&["ip.ttl", "mpls.ttl", "ip.checksum.status"]);
    assert_eq!(rows.len(), 254, "{}", r.stdout);
    for (row, ttl) in rows.iter().zip(2..=255u8) {
        let t = (ttl - 1).to_string();
        assert_fields(
            row,
            &[
                ("ip.ttl", &t),
                ("mpls.ttl", &format!("{t},{t}")),
                ("ip.checksum.status", CHECKSUM_GOOD),
            ],
        );
    }
}

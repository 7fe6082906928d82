//! Traffic for the router itself: ARP requests for our attachment addresses are answered in
//! place (RFC 826), ICMP echo requests are answered and routed like any packet we originate
//! (RFC 792, RFC 1812 §4.3.3.6), everything else for us goes to the kernel (punt).

use xpe_tests::*;

/// The fields of an ARP reply.
const ARP_FIELDS: &[&str] = &[
    "frame.interface_name",
    "eth.src",
    "eth.dst",
    "vlan.id",
    "arp.opcode",
    "arp.src.hw_mac",
    "arp.src.proto_ipv4",
    "arp.dst.hw_mac",
    "arp.dst.proto_ipv4",
];

/// Requests for 169.254.10.1 on either VLAN and for 198.18.0.1 on core0 are answered from
/// the ingress interface's MAC, on the VLAN they came in on.
#[test]
fn arp_requests_for_our_addresses_are_answered() {
    let r = replay(
        &example_config(),
        &[
            (
                "dx0",
                arp_request(Eth::dx0(101), "169.254.10.2", "169.254.10.1"),
            ),
            (
                "dx0",
                arp_request(Eth::dx0(102), "169.254.10.2", "169.254.10.1"),
            ),
            (
                "core0",
                arp_request(Eth::core0(), "198.18.0.2", "198.18.0.1"),
            ),
        ],
    );
    let rows = r.out_fields(ARP_FIELDS);
    assert_eq!(rows.len(), 3, "{}", r.stdout);
    assert_fields(
        &rows[0],
        &[
            ("frame.interface_name", "dx0"),
            ("eth.src", "02:00:00:00:01:02"),
            ("eth.dst", "02:00:00:00:aa:01"),
            ("vlan.id", "101"),
            ("arp.opcode", "2"),
            ("arp.src.hw_mac", "02:00:00:00:01:02"),
            ("arp.src.proto_ipv4", "169.254.10.1"),
            ("arp.dst.hw_mac", "02:00:00:00:aa:01"),
            ("arp.dst.proto_ipv4", "169.254.10.2"),
        ],
    );
    assert_fields(
        &rows[1],
        &[
            ("frame.interface_name", "dx0"),
            ("eth.dst", "02:00:00:00:bb:01"),
            ("vlan.id", "102"),
            ("arp.opcode", "2"),
            ("arp.src.hw_mac", "02:00:00:00:01:02"),
            ("arp.dst.hw_mac", "02:00:00:00:bb:01"),
        ],
    );
    assert_fields(
        &rows[2],
        &[
            ("frame.interface_name", "core0"),
            ("eth.src", "02:00:00:00:01:01"),
            ("eth.dst", "02:00:00:00:02:01"),
            ("vlan.id", ""),
            ("arp.opcode", "2"),
            ("arp.src.hw_mac", "02:00:00:00:01:01"),
            ("arp.src.proto_ipv4", "198.18.0.1"),
            ("arp.dst.hw_mac", "02:00:00:00:02:01"),
            ("arp.dst.proto_ipv4", "198.18.0.2"),
        ],
    );
    let out = r.out();
    let expected = Eth::dx0_out(101, 0).frame(
        ETHERTYPE_ARP,
        &arp_body(2, DX0_MAC, "169.254.10.1", VPC_A_PEER_MAC, "169.254.10.2"),
    );
    assert_eq!(out[0].data, expected);
    let expected = Eth::core0_out().frame(
        ETHERTYPE_ARP,
        &arp_body(2, CORE0_MAC, "198.18.0.1", CORE_PEER_MAC, "198.18.0.2"),
    );
    assert_eq!(out[2].data, expected);
    assert_eq!(r.report.arp_replies, 3);
    assert_eq!(r.report.forwarded, 3);
}

/// ARP that is not a request for us: dropped, or punted for neighbour learning.
#[test]
fn other_arp() {
    let gratuitous = arp_request(Eth::dx0(101), "169.254.10.2", "169.254.10.2");
    let reply = Eth::dx0(101).frame(
        ETHERTYPE_ARP,
        &arp_body(2, VPC_A_PEER_MAC, "169.254.10.2", DX0_MAC, "169.254.10.1"),
    );
    let mut ipv6_arp = arp_request(Eth::dx0(101), "169.254.10.2", "169.254.10.1");
    ipv6_arp[18 + 2..18 + 4].copy_from_slice(&[0x86, 0xdd]);
    let short = arp_request(Eth::dx0(101), "169.254.10.2", "169.254.10.1")[..18 + 20].to_vec();
    let r = replay(
        &example_config(),
        &[
            (
                "dx0",
                arp_request(Eth::dx0(101), "169.254.10.2", "169.254.10.3"),
            ),
            // 169.254.10.1 is ours in the VRFs, not on the core.
            (
                "core0",
                arp_request(Eth::core0(), "198.18.0.2", "169.254.10.1"),
            ),
            ("dx0", gratuitous),
            ("dx0", reply),
            ("dx0", ipv6_arp),
            ("dx0", short),
        ],
    );
    assert_eq!(
        r.comments(),
        [
            "arp-not-for-us",
            "arp-not-for-us",
            "punt/arp",
            "punt/arp",
            "bad-arp",
            "bad-arp"
        ]
    );
    assert!(r.out().is_empty());
    assert_eq!(r.report.arp_replies, 0);
}

/// An echo request to our address comes back as an echo reply with valid checksums, routed
/// like a packet we originate (TTL 64, QoS 0).
#[test]
fn echo_requests_are_answered() {
    let a = V4::new(Eth::dx0(101), "169.254.10.2", "169.254.10.1").payload(56);
    let b = V4::new(Eth::dx0(102), "169.254.10.2", "169.254.10.1").ttl(3);
    let core = V4::new(Eth::core0(), "198.18.0.2", "198.18.0.1").ttl(255);
    // From a remote site of vpc-a, through its table label: the reply goes back labelled.
    let remote = with_labels(
        &V4::new(Eth::core0(), "198.19.20.5", "169.254.10.1").echo_request(),
        &[lse(1001, 3, true, 40)],
    );
    let r = replay(
        &example_config(),
        &[
            ("dx0", a.echo_request()),
            ("dx0", b.echo_request()),
            ("core0", core.echo_request()),
            ("core0", remote),
        ],
    );
    let mut fields = FIELDS.to_vec();
    fields.extend(["icmp.type", "icmp.checksum.status"]);
    let rows = r.out_fields(&fields);
    assert_eq!(rows.len(), 4, "{}", r.stdout);
    let reply = [
        ("icmp.type", "0"),
        ("icmp.checksum.status", CHECKSUM_GOOD),
        ("ip.checksum.status", CHECKSUM_GOOD),
        ("ip.ttl", "64"),
    ];
    for row in &rows {
        assert_fields(row, &reply);
    }
    assert_fields(
        &rows[0],
        &[
            ("frame.interface_name", "dx0"),
            ("eth.src", "02:00:00:00:01:02"),
            ("eth.dst", "02:00:00:00:aa:01"),
            ("vlan.id", "101"),
            ("ip.src", "169.254.10.1"),
            ("ip.dst", "169.254.10.2"),
        ],
    );
    assert_fields(
        &rows[1],
        &[
            ("frame.interface_name", "dx0"),
            ("eth.dst", "02:00:00:00:bb:01"),
            ("vlan.id", "102"),
        ],
    );
    assert_fields(
        &rows[2],
        &[
            ("frame.interface_name", "core0"),
            ("eth.dst", "02:00:00:00:02:01"),
            ("vlan.id", ""),
            ("ip.src", "198.18.0.1"),
            ("ip.dst", "198.18.0.2"),
        ],
    );
    assert_fields(
        &rows[3],
        &[
            ("frame.interface_name", "core0"),
            ("mpls.label", "16001,2001"),
            ("mpls.exp", "0,0"),
            ("mpls.ttl", "64,64"),
            ("ip.src", "169.254.10.1"),
            ("ip.dst", "198.19.20.5"),
        ],
    );
    let expected = V4::new(Eth::dx0_out(101, 0), "169.254.10.1", "169.254.10.2")
        .payload(56)
        .echo_reply();
    assert_eq!(r.out()[0].data, expected);
    assert_eq!(r.report.echo_replies, 4);
    assert_eq!(r.report.forwarded, 4);
    assert!(r.report.punts.is_empty(), "{}", r.stdout);
}

/// Replies to requests with IP options and an odd-length payload still carry valid
/// checksums: the ICMP message starts after the options and its sum covers the odd byte.
#[test]
fn echo_reply_with_options_and_odd_payload() {
    let ip = V4::new(Eth::dx0(101), "169.254.10.2", "169.254.10.1").payload(57);
    // NOP, NOP, NOP, end of options list.
    let request = with_ipv4_options(&ip.echo_request(), &[1, 1, 1, 0]);
    let r = replay(&example_config(), &[("dx0", request)]);
    let rows = r.out_fields(&[
        "ip.hdr_len",
        "ip.len",
        "ip.src",
        "ip.checksum.status",
        "icmp.type",
        "icmp.seq",
        "icmp.checksum.status",
    ]);
    assert_eq!(rows.len(), 1, "{}", r.stdout);
    assert_fields(
        &rows[0],
        &[
            ("ip.hdr_len", "24"),
            ("ip.len", "89"),
            ("ip.src", "169.254.10.1"),
            ("ip.checksum.status", CHECKSUM_GOOD),
            ("icmp.type", "0"),
            ("icmp.seq", "1"),
            ("icmp.checksum.status", CHECKSUM_GOOD),
        ],
    );
    let expected = with_ipv4_options(
        &V4::new(Eth::dx0_out(101, 0), "169.254.10.1", "169.254.10.2")
            .payload(57)
            .echo_reply(),
        &[1, 1, 1, 0],
    );
    assert_eq!(r.out()[0].data, expected);
}

/// The echo counter counts replies sent: a reply that cannot be delivered (its next hop is
/// not resolved, or with the labels it needs it no longer fits the MTU) is a drop, not a reply.
#[test]
fn undeliverable_echo_reply_is_not_counted() {
    let ping = V4::new(Eth::dx0(103), "169.254.30.2", "169.254.30.1");
    // 1496 bytes fit core0's MTU under one label; the reply needs two.
    let big = with_labels(
        &V4::new(Eth::core0(), "198.19.20.5", "169.254.10.1")
            .total_len(1496)
            .echo_request(),
        &[lse(1001, 0, true, 64)],
    );
    let r = replay(
        &test_config("extras"),
        &[("dx0", ping.echo_request()), ("core0", big)],
    );
    assert_eq!(r.comments(), ["no-neighbor", "mtu-exceeded"]);
    assert_eq!(r.drops()[0].data, ping.echo_request());
    assert_eq!((r.report.forwarded, r.report.dropped), (0, 2));
    assert_eq!(r.report.echo_replies, 0, "{}", r.stdout);
}

/// Everything else for us, and multicast or broadcast IP, goes to the kernel.
#[test]
fn other_traffic_for_us_is_punted() {
    let udp = V4::new(Eth::dx0(101), "169.254.10.2", "169.254.10.1");
    let mut bad_icmp = udp.echo_request();
    let last = bad_icmp.len() - 1;
    bad_icmp[last] ^= 0xff;
    let link_local = V6::new(Eth::dx0(101), "fe80::2", "fe80::1");
    let mcast = V4::new(Eth::dx0(101), "169.254.10.2", "224.0.0.5");
    let bcast = V4::new(Eth::dx0(101), "169.254.10.2", "255.255.255.255");
    let r = replay(
        &example_config(),
        &[
            ("dx0", udp.udp()),
            ("dx0", bad_icmp),
            ("dx0", link_local.udp()),
            ("dx0", mcast.udp()),
            ("dx0", bcast.udp()),
            // A broadcast MAC is punted before the IP header is even looked at.
            ("dx0", bcast.eth.to(BROADCAST).frame(0x0800, &[])),
            (
                "dx0",
                V4 {
                    eth: bcast.eth.to(BROADCAST),
                    ..udp
                }
                .udp(),
            ),
            (
                "core0",
                V4::new(Eth::core0(), "198.18.0.2", "198.18.0.1").udp(),
            ),
        ],
    );
    assert_eq!(
        r.comments(),
        [
            "punt/for-us",
            "punt/for-us",
            "punt/for-us",
            "punt/multicast",
            "punt/broadcast",
            "punt/broadcast",
            "punt/broadcast",
            "punt/for-us"
        ]
    );
    let rows = r.drops_fields(&["frame.interface_name", "frame.comment"]);
    assert_fields(
        &rows[0],
        &[
            ("frame.interface_name", "dx0"),
            ("frame.comment", "punt,for-us"),
        ],
    );
    assert_eq!(
        r.report.punts,
        counts(&[("for-us", 4), ("multicast", 1), ("broadcast", 3)])
    );
    assert_eq!(
        (r.report.forwarded, r.report.dropped, r.report.punted),
        (0, 0, 8)
    );
}

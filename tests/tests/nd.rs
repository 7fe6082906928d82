//! IPv6 for the router itself (tests/configs/nd.toml): neighbour solicitations for our
//! addresses are answered in place with an advertisement (RFC 4861 §7.2.4), echo requests to
//! our addresses are answered, advertisements are punted for learning, malformed neighbour
//! discovery is dropped as `bad-nd`, and routes leave by IPv6 next hops. tshark reads what
//! comes out, ICMPv6 checksums included.

use xpe_tests::*;

/// dx0's link-local address: fe80::/64 with the EUI-64 of 02:00:00:00:01:02.
const DX0_LINK_LOCAL: &str = "fe80::ff:fe00:102";
/// The vpc-a neighbour's link-local address, from its MAC 02:00:00:00:aa:01.
const PEER_LINK_LOCAL: &str = "fe80::ff:fe00:aa01";

/// The fields of an advertisement.
const NA_FIELDS: &[&str] = &[
    "frame.interface_name",
    "eth.src",
    "eth.dst",
    "vlan.id",
    "ipv6.src",
    "ipv6.dst",
    "ipv6.hlim",
    "icmpv6.type",
    "icmpv6.code",
    "icmpv6.checksum.status",
    "icmpv6.nd.na.flag.r",
    "icmpv6.nd.na.flag.s",
    "icmpv6.nd.na.flag.o",
    "icmpv6.nd.na.target_address",
    "icmpv6.opt.type",
    "icmpv6.opt.length",
    "icmpv6.opt.linkaddr",
];

fn config() -> std::path::PathBuf {
    test_config("nd")
}

#[test]
fn solicitations_for_our_addresses_are_answered() {
    let to_group = |eth: Eth, group: [u8; 6]| eth.to(group);
    let r = replay(
        &config(),
        &[
            // For vpc-a's address, to its solicited-node group.
            (
                "dx0",
                V6::new(
                    to_group(Eth::dx0(101), [0x33, 0x33, 0xff, 0, 0, 1]),
                    "2001:db8:a::2",
                    "ff02::1:ff00:1",
                )
                .hop_limit(255)
                .solicitation("2001:db8:a::1", Some(VPC_A_PEER_MAC)),
            ),
            // For dx0's link-local address on VLAN 102 (another VRF, the same link-local).
            (
                "dx0",
                V6::new(
                    to_group(Eth::dx0(102), [0x33, 0x33, 0xff, 0, 0x01, 0x02]),
                    "fe80::ff:fe00:bb01",
                    "ff02::1:ff00:102",
                )
                .hop_limit(255)
                .solicitation(DX0_LINK_LOCAL, Some(VPC_B_PEER_MAC)),
            ),
            // Duplicate address detection of vpc-a's address: answered to all nodes.
            (
                "dx0",
                V6::new(
                    to_group(Eth::dx0(101), [0x33, 0x33, 0xff, 0, 0, 1]),
                    "::",
                    "ff02::1:ff00:1",
                )
                .hop_limit(255)
                .solicitation("2001:db8:a::1", None),
            ),
            // On the core, for core0's address, unicast and without an option.
            (
                "core0",
                V6::new(Eth::core0(), "2001:db8::2", "2001:db8::1")
                    .hop_limit(255)
                    .solicitation("2001:db8::1", None),
            ),
        ],
    );
    assert_eq!(r.report.nd_replies, 4, "{}", r.stdout);
    assert_eq!((r.report.forwarded, r.report.dropped), (4, 0));
    let rows = r.out_fields(NA_FIELDS);
    assert_eq!(rows.len(), 4, "{}", r.stdout);
    let na = |interface, dst_mac, vlan, src, dst, solicited, target, mac| {
        vec![
            ("frame.interface_name", interface),
            ("eth.src", mac),
            ("eth.dst", dst_mac),
            ("vlan.id", vlan),
            ("ipv6.src", src),
            ("ipv6.dst", dst),
            ("ipv6.hlim", "255"),
            ("icmpv6.type", "136"),
            ("icmpv6.code", "0"),
            ("icmpv6.checksum.status", CHECKSUM_GOOD),
            ("icmpv6.nd.na.flag.r", "1"),
            ("icmpv6.nd.na.flag.s", solicited),
            ("icmpv6.nd.na.flag.o", "1"),
            ("icmpv6.nd.na.target_address", target),
            ("icmpv6.opt.type", "2"),
            ("icmpv6.opt.length", "1"),
            ("icmpv6.opt.linkaddr", mac),
        ]
    };
    let dx0 = "02:00:00:00:01:02";
    assert_fields(
        &rows[0],
        &na(
            "dx0",
            "02:00:00:00:aa:01",
            "101",
            "2001:db8:a::1",
            "2001:db8:a::2",
            "1",
            "2001:db8:a::1",
            dx0,
        ),
    );
    assert_fields(
        &rows[1],
        &na(
            "dx0",
            "02:00:00:00:bb:01",
            "102",
            DX0_LINK_LOCAL,
            "fe80::ff:fe00:bb01",
            "1",
            DX0_LINK_LOCAL,
            dx0,
        ),
    );
    assert_fields(
        &rows[2],
        &na(
            "dx0",
            "33:33:00:00:00:01",
            "101",
            "2001:db8:a::1",
            "ff02::1",
            "0",
            "2001:db8:a::1",
            dx0,
        ),
    );
    assert_fields(
        &rows[3],
        &na(
            "core0",
            "02:00:00:00:02:01",
            "",
            "2001:db8::1",
            "2001:db8::2",
            "1",
            "2001:db8::1",
            "02:00:00:00:01:01",
        ),
    );
}

#[test]
fn echo_requests_to_our_link_local_address_are_answered_in_place() {
    let request = |vlan, src, seq| V6::new(Eth::dx0(vlan), src, DX0_LINK_LOCAL).echo_request(seq);
    let r = replay(
        &config(),
        &[
            ("dx0", request(101, PEER_LINK_LOCAL, 1)),
            ("dx0", request(102, "fe80::ff:fe00:bb01", 2)),
        ],
    );
    assert_eq!(r.report.echo6_replies, 2, "{}", r.stdout);
    let rows = r.out_fields(&[
        "eth.src",
        "eth.dst",
        "vlan.id",
        "ipv6.src",
        "ipv6.dst",
        "ipv6.hlim",
        "icmpv6.type",
        "icmpv6.checksum.status",
        "icmpv6.echo.identifier",
        "icmpv6.echo.sequence_number",
    ]);
    assert_eq!(rows.len(), 2);
    for (row, (vlan, peer_mac, peer, seq)) in rows.iter().zip([
        ("101", "02:00:00:00:aa:01", PEER_LINK_LOCAL, "1"),
        ("102", "02:00:00:00:bb:01", "fe80::ff:fe00:bb01", "2"),
    ]) {
        assert_fields(
            row,
            &[
                ("eth.src", "02:00:00:00:01:02"),
                ("eth.dst", peer_mac),
                ("vlan.id", vlan),
                ("ipv6.src", DX0_LINK_LOCAL),
                ("ipv6.dst", peer),
                ("ipv6.hlim", "64"),
                ("icmpv6.type", "129"),
                ("icmpv6.checksum.status", CHECKSUM_GOOD),
                ("icmpv6.echo.identifier", "0x0b0b"),
                ("icmpv6.echo.sequence_number", seq),
            ],
        );
    }
}

#[test]
fn advertisements_are_punted_and_malformed_nd_dropped() {
    let peer = |dst_mac, src, dst| V6::new(Eth::dx0(101).to(dst_mac), src, dst).hop_limit(255);
    let all_nodes = [0x33, 0x33, 0, 0, 0, 1];
    let group_1 = [0x33, 0x33, 0xff, 0, 0, 1];
    let mut bad_checksum = peer(group_1, "2001:db8:a::2", "ff02::1:ff00:1")
        .solicitation("2001:db8:a::1", Some(VPC_A_PEER_MAC));
    let last = bad_checksum.len() - 1;
    bad_checksum[last] ^= 0x01;
    let mut zero_length_option = peer(group_1, "2001:db8:a::2", "ff02::1:ff00:1")
        .solicitation("2001:db8:a::1", Some(VPC_A_PEER_MAC));
    // The option's length byte (after 18 + 40 + 24 bytes and its type): 0, checksum redone.
    zero_length_option[18 + 40 + 24 + 1] = 0;
    let redone = V6::new(Eth::dx0(101).to(group_1), "2001:db8:a::2", "ff02::1:ff00:1")
        .hop_limit(255)
        .icmp6(135, 0, [0; 4], &zero_length_option[18 + 40 + 8..]);
    let r = replay(
        &config(),
        &[
            (
                "dx0",
                peer(DX0_MAC, "2001:db8:a::2", "2001:db8:a::1").advertisement(
                    "2001:db8:a::2",
                    0x60,
                    Some(VPC_A_PEER_MAC),
                ),
            ),
            (
                "dx0",
                peer(all_nodes, "2001:db8:a::2", "ff02::1").advertisement(
                    "2001:db8:a::2",
                    0x20,
                    None,
                ),
            ),
            (
                "dx0",
                V6::new(Eth::dx0(101).to(group_1), "2001:db8:a::2", "ff02::1:ff00:1")
                    .hop_limit(64)
                    .solicitation("2001:db8:a::1", Some(VPC_A_PEER_MAC)),
            ),
            ("dx0", bad_checksum),
            ("dx0", redone),
        ],
    );
    assert_eq!(
        r.comments(),
        ["punt/nd", "punt/multicast", "bad-nd", "bad-nd", "bad-nd"],
        "{}",
        r.stdout
    );
    assert_eq!(r.report.drops, counts(&[("bad-nd", 3)]));
    assert_eq!(r.report.punts, counts(&[("nd", 1), ("multicast", 1)]));
    assert_eq!(r.report.nd_replies, 0);
    // tshark sees the punted advertisement as it arrived.
    let rows = r.drops_fields(&["icmpv6.type", "icmpv6.checksum.status", "frame.comment"]);
    assert_fields(
        &rows[0],
        &[
            ("icmpv6.type", "136"),
            ("icmpv6.checksum.status", CHECKSUM_GOOD),
        ],
    );
    assert_fields(&rows[3], &[("icmpv6.checksum.status", CHECKSUM_BAD)]);
}

#[test]
fn echo_requests_to_our_global_address_are_routed_back() {
    let r = replay(
        &config(),
        &[(
            "dx0",
            V6::new(Eth::dx0(101), "2001:db8:a::2", "2001:db8:a::1").echo_request(7),
        )],
    );
    assert_eq!(r.report.echo6_replies, 1, "{}", r.stdout);
    let rows = r.out_fields(&[
        "eth.dst",
        "vlan.id",
        "ipv6.src",
        "ipv6.dst",
        "ipv6.hlim",
        "icmpv6.type",
        "icmpv6.checksum.status",
        "icmpv6.echo.sequence_number",
    ]);
    assert_fields(
        &rows[0],
        &[
            // The static IPv6 neighbour's host route.
            ("eth.dst", "02:00:00:00:aa:01"),
            ("vlan.id", "101"),
            ("ipv6.src", "2001:db8:a::1"),
            ("ipv6.dst", "2001:db8:a::2"),
            ("ipv6.hlim", "64"),
            ("icmpv6.type", "129"),
            ("icmpv6.checksum.status", CHECKSUM_GOOD),
            ("icmpv6.echo.sequence_number", "7"),
        ],
    );
}

#[test]
fn routes_leave_by_ipv6_next_hops() {
    // From the core under each VRF's table label to 2001:db8:30::5: vpc-a's next hop
    // 2001:db8:a::2 has a static neighbour, vpc-b's 2001:db8:a::3 is not resolved offline.
    let to = |label| {
        with_labels(
            &V6::new(Eth::core0(), "2001:db8:ff::1", "2001:db8:30::5").udp(),
            &[lse(label, 0, true, 60)],
        )
    };
    let r = replay(&config(), &[("core0", to(1001)), ("core0", to(1002))]);
    assert_eq!(
        r.report.drops,
        counts(&[("no-neighbor", 1)]),
        "{}",
        r.stdout
    );
    let rows = r.out_fields(FIELDS);
    assert_eq!(rows.len(), 1);
    assert_fields(
        &rows[0],
        &[
            ("frame.interface_name", "dx0"),
            ("eth.src", "02:00:00:00:01:02"),
            ("eth.dst", "02:00:00:00:aa:01"),
            ("vlan.id", "101"),
            ("ipv6.dst", "2001:db8:30::5"),
            ("ipv6.hlim", "59"),
        ],
    );
}

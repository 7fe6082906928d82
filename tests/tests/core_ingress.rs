//! MPLS and IP arriving from the core on core0 for the PE role: a table (VPN) label pops into
//! its VRF, the IP TTL follows the RFC 3443 mode, and the VRFs stay apart from each other and
//! from the global table.

use xpe_tests::*;

/// An IPv4 packet from the core under one table (VPN) label.
fn vpn(label: u32, tc: u8, label_ttl: u8, ip: V4) -> Vec<u8> {
    with_labels(&ip.udp(), &[lse(label, tc, true, label_ttl)])
}

/// Uniform mode: IP TTL = label TTL - 1, PCP = the popped label's TC.
#[test]
fn table_label_pops_into_its_vrf_uniform() {
    let ip = V4::new(Eth::core0(), "198.19.20.5", "198.18.10.7").ttl(50);
    let r = replay(
        &example_config(),
        &[
            ("core0", vpn(1001, 4, 40, ip)),
            ("core0", vpn(1002, 6, 200, ip.ttl(10))),
        ],
    );
    let rows = r.out_fields(FIELDS);
    assert_eq!(rows.len(), 2, "{}", r.stdout);
    assert_fields(
        &rows[0],
        &[
            ("frame.interface_name", "dx0"),
            ("eth.src", "02:00:00:00:01:02"),
            ("eth.dst", "02:00:00:00:aa:01"),
            ("eth.type", "0x8100"),
            ("vlan.id", "101"),
            ("vlan.priority", "4"),
            ("mpls.label", ""),
            ("ip.ttl", "39"),
            ("ip.dst", "198.18.10.7"),
            ("ip.checksum.status", CHECKSUM_GOOD),
        ],
    );
    // The same destination through vpc-b's label: the overlapping subnets stay apart.
    assert_fields(
        &rows[1],
        &[
            ("frame.interface_name", "dx0"),
            ("eth.dst", "02:00:00:00:bb:01"),
            ("vlan.id", "102"),
            ("vlan.priority", "6"),
            ("ip.ttl", "199"),
            ("ip.checksum.status", CHECKSUM_GOOD),
        ],
    );
    let out = r.out();
    let expected = V4 {
        eth: Eth::dx0_out(101, 4),
        ..ip.ttl(39)
    }
    .udp();
    assert_eq!(out[0].data, expected);
    assert_eq!(
        r.report.ports["core0"],
        PortLine {
            in_frames: 2,
            in_bytes: 2 * (14 + 4 + 46),
            out_frames: 0,
            out_bytes: 0
        }
    );
    assert_eq!(
        r.report.ports["dx0"],
        PortLine {
            in_frames: 0,
            in_bytes: 0,
            out_frames: 2,
            out_bytes: 2 * (18 + 46)
        }
    );
}

/// Pipe mode: the IP TTL only counts this PE, whatever the label TTL; imposed labels start
/// at 255.
#[test]
fn table_label_and_imposition_in_pipe_mode() {
    let from_core = V4::new(Eth::core0(), "198.19.20.5", "198.18.10.7").ttl(50);
    let from_edge = V4::new(Eth::dx0(101), "169.254.10.2", "198.19.20.5").dscp(46);
    let r = replay(
        &test_config("pipe"),
        &[
            ("core0", vpn(1001, 4, 3, from_core)),
            ("dx0", from_edge.udp()),
        ],
    );
    let rows = r.out_fields(FIELDS);
    assert_eq!(rows.len(), 2, "{}", r.stdout);
    assert_fields(
        &rows[0],
        &[
            ("frame.interface_name", "dx0"),
            ("vlan.id", "101"),
            ("vlan.priority", "4"),
            ("ip.ttl", "49"),
            ("ip.checksum.status", CHECKSUM_GOOD),
        ],
    );
    assert_fields(
        &rows[1],
        &[
            ("frame.interface_name", "core0"),
            ("mpls.label", "16001,2001"),
            ("mpls.exp", "5,5"),
            ("mpls.bottom", "0,1"),
            ("mpls.ttl", "255,255"),
            ("ip.ttl", "63"),
            ("ip.checksum.status", CHECKSUM_GOOD),
        ],
    );
    let expected = with_labels(
        &V4 {
            eth: Eth::core0_out(),
            ..from_edge.ttl(63)
        }
        .udp(),
        &[lse(16001, 5, false, 255), lse(2001, 5, true, 255)],
    );
    assert_eq!(r.out()[1].data, expected);
}

/// IPv6 under a table label: hop limit = label TTL - 1, then vpc-a's route sends it back
/// across the core with its labels.
#[test]
fn table_label_over_ipv6() {
    let ip = V6::new(Eth::core0(), "2001:db8:a::2", "2001:db8:20::1").hop_limit(64);
    let frame = with_labels(&ip.udp(), &[lse(1001, 2, true, 30)]);
    let r = replay(&example_config(), &[("core0", frame)]);
    let rows = r.out_fields(FIELDS);
    assert_eq!(rows.len(), 1, "{}", r.stdout);
    assert_fields(
        &rows[0],
        &[
            ("frame.interface_name", "core0"),
            ("eth.dst", "02:00:00:00:02:01"),
            ("mpls.label", "16001,2001"),
            ("mpls.exp", "2,2"),
            ("mpls.bottom", "0,1"),
            ("mpls.ttl", "29,29"),
            ("ipv6.hlim", "29"),
        ],
    );
}

/// A table label must be the bottom of the stack, and its TTL must not expire.
#[test]
fn table_label_drops() {
    let ip = V4::new(Eth::core0(), "198.19.20.5", "198.18.10.7");
    let not_bottom = with_labels(
        &ip.udp(),
        &[lse(1001, 0, false, 64), lse(2001, 0, true, 64)],
    );
    let frames = [
        ("core0", not_bottom),
        ("core0", vpn(1001, 0, 1, ip)),
        ("core0", vpn(1001, 0, 0, ip)),
        // vpc-a has no route to 203.0.113.9.
        (
            "core0",
            vpn(
                1001,
                0,
                64,
                V4::new(Eth::core0(), "198.19.20.5", "203.0.113.9"),
            ),
        ),
    ];
    let r = replay(&example_config(), &frames);
    // The expired ones get time exceeded (tests/tests/icmp_errors.rs has the details).
    assert_eq!(r.out().len(), 2, "{}", r.stdout);
    assert_eq!(
        r.comments(),
        [
            "vpn-label-not-bottom",
            "ttl-expired/icmp time-exceeded sent",
            "ttl-expired/icmp time-exceeded sent",
            "no-route"
        ]
    );
    assert_eq!(
        r.report.drops,
        counts(&[("vpn-label-not-bottom", 1), ("no-route", 1)])
    );
}

/// Plain IP on the core is looked up in the global table only: VRF prefixes are not there,
/// global routes are, labelled or not.
#[test]
fn ip_on_core_uses_the_global_table() {
    let to_vrf = V4::new(Eth::core0(), "198.18.0.2", "198.18.10.7");
    let labelled = V4::new(Eth::core0(), "198.18.0.2", "203.0.113.9")
        .dscp(34)
        .ttl(20);
    let plain = V4::new(Eth::core0(), "198.18.0.2", "192.0.2.1").ttl(20);

    let r = replay(&example_config(), &[("core0", to_vrf.udp())]);
    assert_eq!(r.report.drops, counts(&[("no-route", 1)]));
    assert!(r.out().is_empty());

    let r = replay(
        &test_config("extras"),
        &[
            ("core0", to_vrf.udp()),
            ("core0", labelled.udp()),
            ("core0", plain.udp()),
        ],
    );
    assert_eq!(r.report.drops, counts(&[("no-route", 1)]), "{}", r.stdout);
    let rows = r.out_fields(FIELDS);
    assert_eq!(rows.len(), 2, "{}", r.stdout);
    assert_fields(
        &rows[0],
        &[
            ("frame.interface_name", "core0"),
            ("eth.src", "02:00:00:00:01:01"),
            ("eth.dst", "02:00:00:00:02:01"),
            ("mpls.label", "16007"),
            // DSCP 34 (AF41) is precedence 4.
            ("mpls.exp", "4"),
            ("mpls.bottom", "1"),
            ("mpls.ttl", "19"),
            ("ip.ttl", "19"),
            ("ip.checksum.status", CHECKSUM_GOOD),
        ],
    );
    assert_fields(
        &rows[1],
        &[
            ("frame.interface_name", "core0"),
            ("eth.type", "0x0800"),
            ("mpls.label", ""),
            ("ip.ttl", "19"),
            ("ip.dst", "192.0.2.1"),
            ("ip.checksum.status", CHECKSUM_GOOD),
        ],
    );
}

/// A VRF without a table label still imposes its routes' labels and routes between its
/// attachments; nothing pops into it.
#[test]
fn vrf_without_table_label() {
    let out = V4::new(Eth::dx0(103).to(DX0_MAC), "169.254.30.2", "198.19.20.5");
    let probe = with_labels(
        &V4::new(Eth::core0(), "198.19.20.5", "169.254.30.2").udp(),
        &[lse(1003, 0, true, 64)],
    );
    let r = replay(
        &test_config("extras"),
        &[("dx0", out.udp()), ("core0", probe)],
    );
    let rows = r.out_fields(FIELDS);
    assert_eq!(rows.len(), 1, "{}", r.stdout);
    assert_fields(
        &rows[0],
        &[
            ("frame.interface_name", "core0"),
            ("mpls.label", "16001,2003"),
            ("mpls.ttl", "63,63"),
            ("ip.ttl", "63"),
        ],
    );
    assert_eq!(r.report.drops, counts(&[("unknown-label", 1)]));
}

/// The label TTL is checked when a packet is forwarded, not when it is for us: under a VPN
/// label with TTL 1, a packet to a host in the VRF expires (uniform: IP TTL would be 0) and
/// gets time exceeded, while a ping to our own attachment address is answered.
#[test]
fn vpn_label_ttl_one_expires_unless_the_packet_is_for_us() {
    let to_host = V4::new(Eth::core0(), "198.19.20.5", "198.18.10.7");
    let to_us = V4::new(Eth::core0(), "198.19.20.5", "169.254.10.1");
    let r = replay(
        &example_config(),
        &[
            ("core0", vpn(1001, 0, 1, to_host)),
            (
                "core0",
                with_labels(&to_us.echo_request(), &[lse(1001, 0, true, 1)]),
            ),
        ],
    );
    assert_eq!(r.comments(), ["ttl-expired/icmp time-exceeded sent"]);
    // It left as the error: counted as forwarded, not as a drop.
    assert_eq!(r.report.drops, counts(&[]));
    assert_eq!(r.report.icmp, counts(&[("time-exceeded", 1)]));
    assert_eq!(r.report.echo_replies, 1);
    let rows = r.out_fields(&["frame.interface_name", "mpls.label", "ip.dst", "icmp.type"]);
    assert_eq!(rows.len(), 2, "{}", r.stdout);
    assert_fields(
        &rows[0],
        &[
            ("mpls.label", "16001,2001"),
            ("ip.dst", "198.19.20.5,198.18.10.7"),
            ("icmp.type", "11"),
        ],
    );
    // The reply goes back to the remote site across the core under vpc-a's labels.
    assert_fields(
        &rows[1],
        &[
            ("frame.interface_name", "core0"),
            ("mpls.label", "16001,2001"),
            ("ip.dst", "198.19.20.5"),
            ("icmp.type", "0"),
        ],
    );
}

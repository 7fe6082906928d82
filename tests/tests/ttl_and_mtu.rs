//! IP TTL / hop limit expiry at edge ingress (RFC 1812 §5.3.1) and the egress MTU, which
//! counts the labels and the IP packet but not the Ethernet header or VLAN tag.

use xpe_tests::*;

/// TTL 1 or 0 cannot be forwarded, labelled or not; TTL 2 leaves with 1. The expired IPv4
/// packets get time exceeded from the VIF address; the IPv6 ones none, since vpc-a has no
/// IPv6 address of ours here to send it from.
#[test]
fn ip_ttl_expiry_at_edge_ingress() {
    let remote = V4::new(Eth::dx0(101), "169.254.10.2", "198.19.20.5");
    let local_vpc = V4::new(Eth::dx0(101), "169.254.10.2", "198.18.10.7");
    let v6 = V6::new(Eth::dx0(101), "2001:db8:a::2", "2001:db8:20::1");
    let r = replay(
        &example_config(),
        &[
            ("dx0", remote.ttl(1).udp()),
            ("dx0", remote.ttl(0).udp()),
            ("dx0", local_vpc.ttl(1).udp()),
            ("dx0", v6.hop_limit(1).udp()),
            ("dx0", v6.hop_limit(0).udp()),
            ("dx0", remote.ttl(2).udp()),
            ("dx0", v6.hop_limit(2).udp()),
        ],
    );
    assert_eq!(
        r.comments(),
        [
            "ttl-expired/icmp time-exceeded sent",
            "ttl-expired/icmp time-exceeded sent",
            "ttl-expired/icmp time-exceeded sent",
            "ttl-expired",
            "ttl-expired"
        ]
    );
    assert_eq!(r.report.drops, counts(&[("ttl-expired", 2)]));
    assert_eq!(r.report.icmp, counts(&[("time-exceeded", 3)]));
    let rows = r.out_fields(FIELDS);
    assert_eq!(rows.len(), 5, "{}", r.stdout);
    for (row, quoted_dst) in rows[..3]
        .iter()
        .zip(["198.19.20.5", "198.19.20.5", "198.18.10.7"])
    {
        let dst = format!("169.254.10.2,{quoted_dst}");
        assert_fields(
            row,
            &[("ip.src", "169.254.10.1,169.254.10.2"), ("ip.dst", &dst)],
        );
    }
    let rows = &rows[3..];
    assert_fields(
        &rows[0],
        &[
            ("mpls.ttl", "1,1"),
            ("ip.ttl", "1"),
            ("ip.checksum.status", CHECKSUM_GOOD),
        ],
    );
    assert_fields(&rows[1], &[("mpls.ttl", "1,1"), ("ipv6.hlim", "1")]);
    // The drops capture holds the frames as they arrived.
    let drops = r.drops();
    assert_eq!(drops[0].data, remote.ttl(1).udp());
    assert_eq!(drops[3].data, v6.hop_limit(1).udp());
}

/// Packets for our own address are delivered whatever their TTL.
#[test]
fn ttl_one_to_our_address_is_delivered() {
    let us = V4::new(Eth::dx0(101), "169.254.10.2", "169.254.10.1").ttl(1);
    let r = replay(
        &example_config(),
        &[("dx0", us.udp()), ("dx0", us.echo_request())],
    );
    assert_eq!(r.comments(), ["punt/for-us"]);
    assert_eq!(r.report.echo_replies, 1);
    let rows = r.out_fields(&["ip.src", "ip.dst", "ip.ttl", "icmp.type"]);
    assert_eq!(rows.len(), 1, "{}", r.stdout);
    assert_fields(
        &rows[0],
        &[
            ("ip.src", "169.254.10.1"),
            ("ip.dst", "169.254.10.2"),
            ("ip.ttl", "64"),
            ("icmp.type", "0"),
        ],
    );
}

/// core0 (MTU 1500): 1492 bytes of IP + 8 of labels is exactly 1500 and leaves; 1493 and
/// 1496 do not, and (DF set) get fragmentation needed with an MTU of 1492.
#[test]
fn imposition_respects_core_mtu() {
    let ip = V4::new(Eth::dx0(101), "169.254.10.2", "198.19.20.5");
    let r = replay(
        &example_config(),
        &[
            ("dx0", ip.total_len(1496).udp()),
            ("dx0", ip.total_len(1493).udp()),
            ("dx0", ip.total_len(1492).udp()),
        ],
    );
    assert_eq!(r.comments(), vec!["mtu-exceeded/icmp frag-needed sent"; 2]);
    assert_eq!(r.drops()[0].data, ip.total_len(1496).udp());
    let errors = r.out_fields(&["frame.interface_name", "icmp.type", "icmp.code", "icmp.mtu"]);
    for row in &errors[..2] {
        assert_fields(
            row,
            &[
                ("frame.interface_name", "dx0"),
                ("icmp.type", "3"),
                ("icmp.code", "4"),
                ("icmp.mtu", "1492"),
            ],
        );
    }
    let rows = r.forwarded_fields(&["frame.len", "ip.len", "mpls.label", "ip.checksum.status"]);
    assert_eq!(rows.len(), 1, "{}", r.stdout);
    assert_fields(
        &rows[0],
        &[
            ("frame.len", "1514"),
            ("ip.len", "1492"),
            ("mpls.label", "16001,2001"),
            ("ip.checksum.status", CHECKSUM_GOOD),
        ],
    );
    assert_eq!(r.report.drops, counts(&[]));
    assert_eq!(r.report.icmp, counts(&[("frag-needed", 2)]));
    assert_eq!(
        r.report.ports["core0"],
        PortLine {
            in_frames: 0,
            in_bytes: 0,
            out_frames: 1,
            out_bytes: 1514
        }
    );
}

/// dx0 (MTU 1500 in extras.toml): the VLAN tag does not count, disposed labels do not count;
/// what does not fit gets fragmentation needed.
#[test]
fn edge_mtu_excludes_the_vlan_tag() {
    let edge = V4::new(Eth::dx0(101), "169.254.10.2", "198.18.10.7");
    let core = V4::new(Eth::core0(), "198.19.20.5", "198.18.10.7");
    let vpn = |ip: V4| with_labels(&ip.udp(), &[lse(1001, 0, true, 64)]);
    let r = replay(
        &test_config("extras"),
        &[
            ("dx0", edge.total_len(1500).udp()),
            ("dx0", edge.total_len(1501).udp()),
            ("core0", vpn(core.total_len(1500))),
            ("core0", vpn(core.total_len(1501))),
        ],
    );
    assert_eq!(r.comments(), vec!["mtu-exceeded/icmp frag-needed sent"; 2]);
    assert_eq!(r.report.icmp, counts(&[("frag-needed", 2)]));
    let rows = r.forwarded_fields(&["frame.interface_name", "frame.len", "vlan.id", "ip.len"]);
    assert_eq!(rows.len(), 2, "{}", r.stdout);
    for row in &rows {
        assert_fields(
            row,
            &[
                ("frame.interface_name", "dx0"),
                ("frame.len", "1518"),
                ("vlan.id", "101"),
                ("ip.len", "1500"),
            ],
        );
    }
}

//! ICMP errors from the router (RFC 792, RFC 4443, RFC 1812 §4.3.2, RFC 3032 §2.3.2, RFC 4884
//! and RFC 4950): time exceeded for an IP TTL or hop limit at a lookup and for a label TTL at
//! an LSR, decoded by tshark field by field, the quoted datagram compared byte for byte, the
//! cases RFC 1812 §4.3.2.7 forbids, and the rate limit.

use xpe_tests::*;

/// The ICMP fields these tests read, after the common ones (`FIELDS`: link, labels, IP).
const ICMP_ONLY: &[&str] = &[
    "ip.dsfield",
    "icmp.type",
    "icmp.code",
    "icmp.checksum.status",
    "icmp.length",
    "icmp.ext.version",
    "icmp.ext.checksum.status",
    "icmp.ext.class",
    "icmp.ext.ctype",
    "icmp.mpls.label",
    "icmp.mpls.exp",
    "icmp.mpls.s",
    "icmp.mpls.ttl",
];

/// Every field these tests read.
fn icmp_fields() -> Vec<&'static str> {
    FIELDS.iter().chain(ICMP_ONLY).copied().collect()
}

/// Writes the ICMP checksum of `msg`, computed here, not by the code under test.
fn fix_icmp_checksum(msg: &mut [u8]) {
    msg[2..4].fill(0);
    let sum = internet_checksum(msg);
    msg[2..4].copy_from_slice(&sum.to_be_bytes());
}

/// An IPv4 packet from a remote site to a vpc-a host, as the core neighbour sends it.
fn from_site() -> V4 {
    V4::new(Eth::core0(), "198.19.20.5", "198.18.10.7")
}

/// The ICMP message of an output frame: what follows its Ethernet, 802.1Q, label and IP
/// headers (the IP header without options, as xpe writes it).
fn icmp_of(frame: &[u8]) -> &[u8] {
    let mut off = 12;
    let mut ethertype = u16::from_be_bytes([frame[off], frame[off + 1]]);
    if ethertype == 0x8100 {
        off += 4;
        ethertype = u16::from_be_bytes([frame[off], frame[off + 1]]);
    }
    off += 2;
    if ethertype == 0x8847 {
        while frame[off + 2] & 1 == 0 {
            off += 4;
        }
        off += 4;
    }
    let ip_len = if frame[off] >> 4 == 6 { 40 } else { 20 };
    &frame[off + ip_len..]
}

/// The quoted datagram of an error equals the start of `original`'s IP packet (`len` bytes),
/// then zeros up to `field` (RFC 4884's 128 bytes when an extension follows).
fn assert_quotes(error: &[u8], original: &[u8], len: usize, field: usize) {
    let msg = icmp_of(error);
    let quoted = &msg[8..8 + field];
    assert_eq!(
        &quoted[..len],
        &l3_of(original)[..len],
        "the quoted datagram"
    );
    assert!(
        quoted[len..].iter().all(|&b| b == 0),
        "zero padding after the quote"
    );
}

/// IP TTL 1 at the edge: time exceeded from our VIF address back to the host, on its VLAN,
/// quoting the whole (short) packet; TTL 0 the same; IPv6 hop limit 1 from our VIF's IPv6
/// address. The packets are in the drops capture, said to have had an error.
#[test]
fn ip_ttl_expiry_at_the_edge_is_answered_from_the_vif() {
    let to_site = V4::new(Eth::dx0(101), "169.254.10.2", "198.19.20.5");
    let v6 = V6::new(Eth::dx0(101), "2001:db8:a::2", "2001:db8:20::1");
    let frames = [
        ("dx0", to_site.ttl(1).udp()),
        ("dx0", to_site.ttl(0).payload(1000).udp()),
        ("dx0", v6.hop_limit(1).udp()),
    ];
    let r = replay(&test_config("icmp"), &frames);
    assert_eq!(
        r.comments(),
        [
            "ttl-expired/icmp time-exceeded sent",
            "ttl-expired/icmp time-exceeded sent",
            "ttl-expired/icmp time-exceeded-v6 sent"
        ]
    );
    // Each packet left as its error: counted as forwarded, not as a drop.
    assert_eq!(r.report.drops, counts(&[]));
    assert_eq!((r.report.frames_in, r.report.forwarded), (3, 3));
    assert_eq!(
        r.report.icmp,
        counts(&[("time-exceeded", 2), ("time-exceeded-v6", 1)])
    );
    let rows = r.out_fields(&icmp_fields());
    assert_eq!(rows.len(), 3, "{}", r.stdout);
    let v4 = [
        ("frame.interface_name", "dx0"),
        ("frame.comment", "icmp time-exceeded: ttl-expired"),
        ("vlan.id", "101"),
        // The outer header, then the quoted one.
        ("ip.src", "169.254.10.1,169.254.10.2"),
        ("ip.dst", "169.254.10.2,198.19.20.5"),
        ("icmp.type", "11"),
        ("icmp.code", "0"),
        ("icmp.checksum.status", CHECKSUM_GOOD),
        ("icmp.ext.version", ""),
        ("mpls.label", ""),
    ];
    for row in &rows[..2] {
        // tshark may read the quoted UDP (to port 4789) as VXLAN, adding an inner Ethernet.
        assert!(row["eth.src"].starts_with("02:00:00:00:01:02"), "{row:?}");
        assert!(row["eth.dst"].starts_with("02:00:00:00:aa:01"), "{row:?}");
    }
    assert_fields(&rows[0], &v4);
    assert_fields(&rows[0], &[("ip.ttl", "64,1"), ("ip.dsfield", "0xc0,0x00")]);
    assert_fields(&rows[1], &v4);
    let out = r.out();
    // 28 + 18 bytes: all of it; 1028 bytes: as much as fits in 576.
    assert_quotes(&out[0].data, &frames[0].1, 46, 46);
    assert_eq!(icmp_of(&out[1].data).len(), 576 - 20);
    assert_quotes(&out[1].data, &frames[1].1, 548, 548);
    assert_fields(
        &rows[2],
        &[
            ("frame.comment", "icmp time-exceeded-v6: ttl-expired"),
            ("vlan.id", "101"),
        ],
    );
    let row6 = &r.out_fields(&[
        "ipv6.src",
        "ipv6.dst",
        "ipv6.hlim",
        "icmpv6.type",
        "icmpv6.code",
        "icmpv6.checksum.status",
    ])[2];
    assert_fields(
        row6,
        &[
            ("ipv6.src", "2001:db8:a::1,2001:db8:a::2"),
            ("ipv6.dst", "2001:db8:a::2,2001:db8:20::1"),
            ("ipv6.hlim", "64,1"),
            ("icmpv6.type", "3"),
            ("icmpv6.code", "0"),
            ("icmpv6.checksum.status", CHECKSUM_GOOD),
        ],
    );
    assert_quotes(&out[2].data, &frames[2].1, 66, 66);
}

/// A label TTL of 1 at an LSR (swap, swap above a VPN label, PHP): time exceeded from our
/// core address with the label stack as received (RFC 4950), sent on along the LSP with the
/// labels a swap would have sent, fresh TTLs and TC 6 (RFC 3032 §2.3.2).
#[test]
fn label_ttl_expiry_is_tunnelled_with_the_received_stack() {
    let ip = from_site();
    let frames = [
        ("core0", with_labels(&ip.udp(), &[lse(16002, 0, true, 1)])),
        (
            "core0",
            with_labels(&ip.udp(), &[lse(16002, 5, false, 1), lse(5000, 5, true, 1)]),
        ),
        ("core0", with_labels(&ip.udp(), &[lse(16004, 0, true, 1)])),
        ("core0", with_labels(&ip.udp(), &[lse(16002, 0, true, 0)])),
    ];
    let r = replay(&test_config("icmp"), &frames);
    assert_eq!(r.report.icmp, counts(&[("time-exceeded", 4)]));
    assert_eq!(r.report.drops, counts(&[]));
    let rows = r.out_fields(&icmp_fields());
    assert_eq!(rows.len(), 4, "{}", r.stdout);
    let error = [
        ("frame.interface_name", "core0"),
        ("eth.dst", "02:00:00:00:02:01"),
        ("ip.src", "198.18.0.1,198.19.20.5"),
        ("ip.dst", "198.19.20.5,198.18.10.7"),
        ("ip.ttl", "64,64"),
        ("icmp.type", "11"),
        ("icmp.code", "0"),
        ("icmp.checksum.status", CHECKSUM_GOOD),
        // RFC 4884: 128 bytes of original datagram, in 32-bit words.
        ("icmp.length", "32"),
        ("icmp.ext.version", "2"),
        ("icmp.ext.checksum.status", CHECKSUM_GOOD),
        ("icmp.ext.class", "1"),
        ("icmp.ext.ctype", "1"),
    ];
    for row in &rows {
        assert_fields(row, &error);
    }
    assert_fields(
        &rows[0],
        &[
            ("mpls.label", "16003"),
            ("mpls.exp", "6"),
            ("mpls.bottom", "1"),
            ("mpls.ttl", "255"),
            ("icmp.mpls.label", "16002"),
            ("icmp.mpls.exp", "0"),
            ("icmp.mpls.s", "1"),
            ("icmp.mpls.ttl", "1"),
        ],
    );
    assert_fields(
        &rows[1],
        &[
            ("mpls.label", "16003,5000"),
            ("mpls.bottom", "0,1"),
            ("mpls.ttl", "255,255"),
            ("icmp.mpls.label", "16002,5000"),
            ("icmp.mpls.exp", "5,5"),
            ("icmp.mpls.s", "0,1"),
            ("icmp.mpls.ttl", "1,1"),
        ],
    );
    // PHP: the error leaves unlabelled, as the packet would have.
    assert_fields(
        &rows[2],
        &[
            ("eth.type", "0x0800"),
            ("mpls.label", ""),
            ("icmp.mpls.label", "16004"),
        ],
    );
    assert_fields(&rows[3], &[("icmp.mpls.ttl", "0")]);
    let original = ip.udp();
    for o in r.out() {
        assert_quotes(&o.data, &original, 46, 128);
    }
}

/// A packet that expires at disposition (uniform mode: VPN label TTL 1) gets its error from
/// our address in the VRF, routed back in the VRF under its labels, with the VPN label quoted.
#[test]
fn expiry_at_disposition_is_routed_back_in_the_vrf() {
    let packet = with_labels(&from_site().udp(), &[lse(1001, 0, true, 1)]);
    let r = replay(&test_config("icmp"), &[("core0", packet)]);
    assert_eq!(r.report.icmp, counts(&[("time-exceeded", 1)]));
    let rows = r.out_fields(&icmp_fields());
    assert_eq!(rows.len(), 1, "{}", r.stdout);
    assert_fields(
        &rows[0],
        &[
            ("frame.interface_name", "core0"),
            // vpc-a's route to the site: transport label, then the remote PE's VPN label.
            ("mpls.label", "16001,2001"),
            ("mpls.exp", "6,6"),
            ("mpls.ttl", "64,64"),
            ("ip.src", "169.254.10.1,198.19.20.5"),
            ("ip.dst", "198.19.20.5,198.18.10.7"),
            ("icmp.type", "11"),
            ("icmp.length", "32"),
            ("icmp.mpls.label", "1001"),
            ("icmp.mpls.ttl", "1"),
        ],
    );
}

/// RFC 1812 §4.3.2.7: no error about an ICMP error, a non-first fragment, or a packet from a
/// source that is not unicast; an echo request is no error, so it gets one.
#[test]
fn no_error_where_rfc_1812_forbids_one() {
    let eth = Eth::dx0(101);
    let host = V4::new(eth, "169.254.10.2", "198.19.20.5").ttl(1);
    // An ICMP time exceeded (type 11) from the host, itself expiring.
    let mut icmp_error = host.echo_request();
    let l3 = icmp_error.len() - l3_of(&icmp_error).len();
    icmp_error[l3 + 20] = 11;
    fix_icmp_checksum(&mut icmp_error[l3 + 20..]);
    let mut fragment = host.udp();
    fragment[l3 + 6..l3 + 8].copy_from_slice(&0x0010u16.to_be_bytes());
    fix_ipv4_checksum(&mut fragment[l3..]);
    let frames = [
        ("dx0", icmp_error),
        ("dx0", fragment),
        ("dx0", V4::new(eth, "0.0.0.0", "198.19.20.5").ttl(1).udp()),
        ("dx0", V4::new(eth, "224.0.0.5", "198.19.20.5").ttl(1).udp()),
        ("dx0", V4::new(eth, "127.0.0.1", "198.19.20.5").ttl(1).udp()),
        ("dx0", V4::new(eth, "240.0.0.1", "198.19.20.5").ttl(1).udp()),
        ("dx0", host.echo_request()),
    ];
    let r = replay(&test_config("icmp"), &frames);
    assert_eq!(
        r.comments(),
        [
            "ttl-expired",
            "ttl-expired",
            "ttl-expired",
            "ttl-expired",
            "ttl-expired",
            "ttl-expired",
            "ttl-expired/icmp time-exceeded sent"
        ]
    );
    assert_eq!(r.report.icmp, counts(&[("time-exceeded", 1)]));
}

/// Labels over something that is not IP: dropped as before, no error.
#[test]
fn no_error_for_labels_over_other_payloads() {
    let ip = from_site();
    let mut frame = with_labels(&ip.udp(), &[lse(16002, 0, true, 1)]);
    let at = frame.len() - l3_of(&ip.udp()).len();
    frame[at] = 0x00; // not version 4 or 6
    let r = replay(&test_config("icmp"), &[("core0", frame)]);
    assert_eq!(r.comments(), ["ttl-expired"]);
    assert!(r.out().is_empty());
}

/// The rate: `[copp] icmp_errors` of 10 a second with a burst of 5, 20 expiring packets 1 ms
/// apart on the capture's clock: 5 errors, 15 counted as rate-limited.
#[test]
fn errors_are_rate_limited_per_worker() {
    let dir = TempDir::new();
    let mut text = std::fs::read_to_string(test_config("icmp")).expect("icmp.toml");
    text.push_str("\n[copp]\nicmp_errors = { rate = 10, burst = 5 }\n");
    let config = dir.write("limited.toml", text);
    let packet = V4::new(Eth::dx0(101), "169.254.10.2", "198.19.20.5").ttl(1);
    let frames: Vec<(&str, Vec<u8>)> = (0..20).map(|_| ("dx0", packet.udp())).collect();
    let r = replay(&config, &frames);
    assert_eq!(
        r.report.icmp,
        counts(&[("time-exceeded", 5), ("rate-limited", 15)])
    );
    // Those without an error are dropped.
    assert_eq!(r.report.drops, counts(&[("ttl-expired", 15)]));
    assert_eq!(r.out().len(), 5);
}

/// Too big at the edge for the route's next hop (core0, MTU 1500, two labels: 1492 bytes of
/// IP): IPv4 with DF gets fragmentation needed with MTU 1492 (RFC 1191), quoting as much as
/// fits in 576 bytes; without DF, no error: it leaves as two fragments (tests/tests/
/// fragments.rs); IPv6 gets packet too big with MTU 1492 (RFC 4443 §3.2), quoting up to 1280
/// bytes in all.
#[test]
fn too_big_at_the_edge_gets_frag_needed_or_packet_too_big() {
    let eth = Eth::dx0(101);
    let df = V4::new(eth, "169.254.10.2", "198.19.20.5")
        .total_len(1493)
        .udp();
    let mut no_df = df.clone();
    let l3 = no_df.len() - l3_of(&df).len();
    no_df[l3 + 6] &= !0x40;
    fix_ipv4_checksum(&mut no_df[l3..]);
    let v6 =
        V6::new(eth, "2001:db8:a::2", "2001:db8:20::1").icmp6(128, 0, [0, 1, 0, 1], &[7; 1500]);
    let frames = [("dx0", df.clone()), ("dx0", no_df), ("dx0", v6.clone())];
    let r = replay(&test_config("icmp"), &frames);
    assert_eq!(
        r.comments(),
        [
            "mtu-exceeded/icmp frag-needed sent",
            "mtu-exceeded/icmp packet-too-big sent"
        ]
    );
    assert_eq!(
        r.report.icmp,
        counts(&[("frag-needed", 1), ("packet-too-big", 1)])
    );
    assert_eq!(r.report.drops, counts(&[]));
    assert_eq!(r.report.fragmented, (1, 2, 0));
    // The error, the two fragments, the error.
    let rows = r.out_fields(&icmp_fields());
    assert_eq!(rows.len(), 4, "{}", r.stdout);
    assert_fields(
        &rows[0],
        &[
            ("frame.interface_name", "dx0"),
            ("frame.comment", "icmp frag-needed: mtu-exceeded"),
            ("vlan.id", "101"),
            ("ip.src", "169.254.10.1,169.254.10.2"),
            ("ip.dst", "169.254.10.2,198.19.20.5"),
            ("icmp.type", "3"),
            ("icmp.code", "4"),
            ("icmp.checksum.status", CHECKSUM_GOOD),
            ("icmp.ext.version", ""),
        ],
    );
    let mtu = r.out_fields(&["icmp.mtu"]);
    assert_fields(&mtu[0], &[("icmp.mtu", "1492")]);
    let out = r.out();
    assert_eq!(icmp_of(&out[0].data).len(), 576 - 20);
    // Quoted as it would have been forwarded: this hop's TTL decrement is in it (and the
    // header checksum with it); everything else is the packet as sent.
    let mut forwarded = df.clone();
    forwarded[l3 + 8] -= 1;
    fix_ipv4_checksum(&mut forwarded[l3..]);
    assert_quotes(&out[0].data, &forwarded, 548, 548);
    let row6 = &r.out_fields(&[
        "ipv6.src",
        "ipv6.dst",
        "icmpv6.type",
        "icmpv6.code",
        "icmpv6.mtu",
        "icmpv6.checksum.status",
    ])[3];
    assert_fields(
        row6,
        &[
            ("ipv6.src", "2001:db8:a::1,2001:db8:a::2"),
            ("ipv6.dst", "2001:db8:a::2,2001:db8:20::1"),
            // The error, then the quoted echo request (its checksum not verifiable, cut short).
            ("icmpv6.type", "2,128"),
            ("icmpv6.code", "0,0"),
            ("icmpv6.mtu", "1492"),
            ("icmpv6.checksum.status", "1,2"),
        ],
    );
    assert_eq!(icmp_of(&out[3].data).len(), 1280 - 40);
    let mut forwarded6 = v6.clone();
    forwarded6[l3 + 7] -= 1;
    assert_quotes(&out[3].data, &forwarded6, 1232, 1232);
}

/// Too big at an LSR: a swap to one label on core0 (MTU 1500) leaves 1496 bytes for the IP
/// packet; the error comes from our core address with the stack as received, sent on along
/// the LSP like time exceeded.
#[test]
fn too_big_at_an_lsr_is_tunnelled_with_the_next_hop_mtu() {
    let packet = with_labels(
        &from_site().total_len(1497).udp(),
        &[lse(16002, 0, true, 64)],
    );
    let r = replay(&test_config("icmp"), &[("core0", packet)]);
    assert_eq!(r.comments(), ["mtu-exceeded/icmp frag-needed sent"]);
    let rows = r.out_fields(&icmp_fields());
    assert_eq!(rows.len(), 1, "{}", r.stdout);
    assert_fields(
        &rows[0],
        &[
            ("frame.interface_name", "core0"),
            ("mpls.label", "16003"),
            ("mpls.ttl", "255"),
            ("ip.src", "198.18.0.1,198.19.20.5"),
            ("icmp.type", "3"),
            ("icmp.code", "4"),
            ("icmp.length", "32"),
        ],
    );
    assert_fields(&r.out_fields(&["icmp.mtu"])[0], &[("icmp.mtu", "1496")]);
    // tshark 4.0 decodes RFC 4884 extensions of time exceeded only: read this one here.
    let out = r.out();
    let ext = &icmp_of(&out[0].data)[8 + 128..];
    assert_eq!(ext.len(), 8 + 4);
    assert_eq!(ext[0], 0x20, "extension version 2");
    assert_eq!(&ext[4..8], &[0, 8, 1, 1], "one MPLS label stack object");
    assert_eq!(&ext[8..], &lse(16002, 0, true, 64).to_be_bytes());
    assert_eq!(internet_checksum(ext), 0, "the extension checksum");
}

//! IPv4 fragmentation (RFC 791 §3.2, RFC 1812 §5.2.6): a packet without DF too big for its
//! next hop leaves as fragments under the same labels, which tshark reassembles to the
//! packet as forwarded; with DF it gets fragmentation needed instead (tests/tests/icmp_errors.rs).

use xpe_tests::*;

const FIELDS: &[&str] = &[
    "frame.interface_name",
    "frame.comment",
    "mpls.label",
    "ip.id",
    "ip.flags.df",
    "ip.flags.mf",
    "ip.frag_offset",
    "ip.len",
    "ip.ttl",
    "ip.checksum.status",
    "ip.fragment.count",
    "ip.fragment.error",
    "ip.reassembled.length",
];

/// `frame` with DF cleared in its IPv4 header (at `l3`) and the checksum written again.
fn without_df(frame: &[u8]) -> Vec<u8> {
    let mut f = frame.to_vec();
    let l3 = f.len() - l3_of(frame).len();
    f[l3 + 6] &= !0x40;
    fix_ipv4_checksum(&mut f[l3..]);
    f
}

/// The IP payload of fragments put back together by offset, as a host would.
fn reassemble(fragments: &[Vec<u8>], ip_at: usize) -> Vec<u8> {
    let mut data = Vec::new();
    for f in fragments {
        let ip = &f[ip_at..];
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let len = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        let offset = usize::from(u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff) * 8;
        if data.len() < offset + len - ihl {
            data.resize(offset + len - ihl, 0);
        }
        data[offset..offset + len - ihl].copy_from_slice(&ip[ihl..len]);
    }
    data
}

/// At the edge: 4000 bytes from vpc-a's VIF to the site behind the core (core0, MTU 1500,
/// two labels: 1492 bytes of IP) leave as three fragments of at most 1492 under both labels.
#[test]
fn too_big_without_df_leaves_as_fragments_that_reassemble() {
    let packet = without_df(
        &V4::new(Eth::dx0(101), "169.254.10.2", "198.19.20.5")
            .total_len(4000)
            .udp(),
    );
    let r = replay(&test_config("icmp"), &[("dx0", packet.clone())]);
    assert!(r.comments().is_empty(), "{}", r.stdout);
    assert_eq!(r.report.forwarded, 1);
    assert_eq!(r.report.fragmented, (1, 3, 0));
    let rows = r.out_fields(FIELDS);
    assert_eq!(rows.len(), 3, "{}", r.stdout);
    for (i, row) in rows.iter().enumerate() {
        assert_fields(
            row,
            &[
                ("frame.interface_name", "core0"),
                ("frame.comment", "ipv4 fragment (port mtu 1500)"),
                ("mpls.label", "16001,2001"),
                ("ip.flags.df", "0"),
                ("ip.flags.mf", if i < 2 { "1" } else { "0" }),
                ("ip.ttl", "63"),
                ("ip.checksum.status", CHECKSUM_GOOD),
                ("ip.fragment.error", ""),
            ],
        );
    }
    assert_fields(&rows[0], &[("ip.frag_offset", "0"), ("ip.len", "1492")]);
    // In 8-byte units: 1472 and 2944 bytes in.
    assert_fields(&rows[1], &[("ip.frag_offset", "184"), ("ip.len", "1492")]);
    assert_fields(&rows[2], &[("ip.frag_offset", "368"), ("ip.len", "1056")]);
    // tshark reassembles the three in the last one: 3980 bytes of UDP.
    assert_fields(
        &rows[2],
        &[
            ("ip.fragment.count", "3"),
            ("ip.reassembled.length", "3980"),
        ],
    );
    // And byte for byte: the fragments' data is the packet's.
    let out: Vec<Vec<u8>> = r.out().into_iter().map(|f| f.data).collect();
    let ip_at = 14 + 8;
    assert_eq!(reassemble(&out, ip_at), l3_of(&packet)[20..]);
    assert_eq!(
        r.report.ports["core0"].out_frames, 3,
        "each fragment counted on the port"
    );
}

/// At an LSR: a swap to one label on core0 leaves 1496 bytes for the IP packet under it; a
/// 1600-byte packet without DF leaves as two fragments, each under the swapped label.
#[test]
fn an_lsr_fragments_under_the_swapped_label() {
    let ip = without_df(
        &V4::new(Eth::core0(), "198.19.20.5", "198.18.10.7")
            .total_len(1600)
            .udp(),
    );
    let packet = with_labels(&ip, &[lse(16002, 0, true, 64)]);
    let r = replay(&test_config("icmp"), &[("core0", packet)]);
    assert_eq!(r.report.fragmented, (1, 2, 0));
    let rows = r.out_fields(FIELDS);
    assert_eq!(rows.len(), 2, "{}", r.stdout);
    for row in &rows {
        assert_fields(
            row,
            &[
                ("mpls.label", "16003"),
                ("ip.ttl", "64"),
                ("ip.checksum.status", CHECKSUM_GOOD),
            ],
        );
    }
    assert_fields(&rows[0], &[("ip.len", "1492")]);
    assert_fields(&rows[1], &[("ip.reassembled.length", "1580")]);
    let out: Vec<Vec<u8>> = r.out().into_iter().map(|f| f.data).collect();
    assert_eq!(reassemble(&out, 14 + 4), l3_of(&ip)[20..]);
}

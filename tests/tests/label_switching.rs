//! Transit MPLS on core0 (the LSR role): swap, penultimate-hop pop, the reserved labels of
//! RFC 3032 §2.1 (explicit null, router alert, implicit null and the unassigned 4..15), and
//! label stacks that are too deep or cut short.

use xpe_tests::*;

/// An IPv4 packet from the core neighbour under `entries`.
fn labelled(entries: &[u32], ip: V4) -> Vec<u8> {
    with_labels(&ip.udp(), entries)
}

/// An IPv4 packet from a remote site to a vpc-a host, as the core neighbour sends it.
fn core_ip() -> V4 {
    V4::new(Eth::core0(), "198.19.20.5", "198.18.10.7")
}

/// Swap: out label, TTL - 1, TC and S kept, the rest of the stack and the IP packet untouched.
#[test]
fn swap_one_label() {
    let ip = core_ip();
    let r = replay(
        &example_config(),
        &[
            ("core0", labelled(&[lse(16002, 6, true, 10)], ip)),
            (
                "core0",
                labelled(&[lse(16002, 2, false, 100), lse(5000, 7, true, 77)], ip),
            ),
        ],
    );
    let rows = r.out_fields(FIELDS);
    assert_eq!(rows.len(), 2, "{}", r.stdout);
    let core = [
        ("frame.interface_name", "core0"),
        ("eth.src", "02:00:00:00:01:01"),
        ("eth.dst", "02:00:00:00:02:01"),
        ("eth.type", "0x8847"),
        ("ip.ttl", "64"),
        ("ip.checksum.status", CHECKSUM_GOOD),
    ];
    assert_fields(&rows[0], &core);
    assert_fields(
        &rows[0],
        &[
            ("mpls.label", "16003"),
            ("mpls.exp", "6"),
            ("mpls.bottom", "1"),
            ("mpls.ttl", "9"),
        ],
    );
    assert_fields(&rows[1], &core);
    assert_fields(
        &rows[1],
        &[
            ("mpls.label", "16003,5000"),
            ("mpls.exp", "2,7"),
            ("mpls.bottom", "0,1"),
            ("mpls.ttl", "99,77"),
        ],
    );
    let out = r.out();
    let mut ip_out = core_ip();
    ip_out.eth = Eth::core0_out();
    assert_eq!(out[0].data, labelled(&[lse(16003, 6, true, 9)], ip_out));
    assert_eq!(
        out[1].data,
        labelled(&[lse(16003, 2, false, 99), lse(5000, 7, true, 77)], ip_out)
    );
    assert_eq!(
        r.report.ports["core0"].in_bytes,
        r.report.ports["core0"].out_bytes
    );
}

/// A label TTL of 1 or 0 cannot be forwarded, by swap or by pop: each gets time exceeded
/// (tests/tests/icmp_errors.rs has the details).
#[test]
fn label_ttl_expiry() {
    let ip = core_ip();
    let r = replay(
        &example_config(),
        &[
            ("core0", labelled(&[lse(16002, 0, true, 1)], ip)),
            ("core0", labelled(&[lse(16002, 0, true, 0)], ip)),
            ("core0", labelled(&[lse(16004, 0, true, 1)], ip)),
            ("core0", labelled(&[lse(16002, 0, true, 2)], ip)),
        ],
    );
    assert_eq!(r.comments(), vec!["ttl-expired/icmp time-exceeded sent"; 3]);
    assert_eq!(r.report.drops, counts(&[]));
    assert_eq!(r.report.icmp, counts(&[("time-exceeded", 3)]));
    let rows = r.out_fields(&["mpls.label", "mpls.ttl", "icmp.type"]);
    assert_eq!(rows.len(), 4);
    for row in &rows[..3] {
        assert_fields(row, &[("icmp.type", "11")]);
    }
    assert_fields(
        &rows[3],
        &[
            ("mpls.label", "16003"),
            ("mpls.ttl", "1"),
            ("icmp.type", ""),
        ],
    );
}

/// A swap to several labels: S only on the original bottom; MTU counts the pushed labels.
#[test]
fn swap_to_several_labels() {
    let ip = core_ip();
    let big = core_ip().total_len(1496);
    let fits = core_ip().total_len(1492);
    let r = replay(
        &test_config("extras"),
        &[
            ("core0", labelled(&[lse(16010, 3, true, 64)], ip)),
            (
                "core0",
                labelled(&[lse(16010, 3, false, 64), lse(5000, 1, true, 50)], ip),
            ),
            // 1496 + 4 bytes arrive; 1496 + 8 would leave: more than core0's MTU of 1500.
            ("core0", labelled(&[lse(16010, 0, true, 64)], big)),
            ("core0", labelled(&[lse(16010, 0, true, 64)], fits)),
            // A swap to explicit null keeps S and TTL rules.
            ("core0", labelled(&[lse(16011, 5, true, 9)], ip)),
        ],
    );
    // The one too big gets fragmentation needed (tests/tests/icmp_errors.rs).
    assert_eq!(r.report.icmp, counts(&[("frag-needed", 1)]));
    let rows = r.forwarded_fields(&[
        "mpls.label",
        "mpls.exp",
        "mpls.bottom",
        "mpls.ttl",
        "ip.len",
    ]);
    assert_eq!(rows.len(), 4, "{}", r.stdout);
    assert_fields(
        &rows[0],
        &[
            ("mpls.label", "16005,16006"),
            ("mpls.exp", "3,3"),
            ("mpls.bottom", "0,1"),
            ("mpls.ttl", "63,63"),
        ],
    );
    assert_fields(
        &rows[1],
        &[
            ("mpls.label", "16005,16006,5000"),
            ("mpls.exp", "3,3,1"),
            ("mpls.bottom", "0,0,1"),
            ("mpls.ttl", "63,63,50"),
        ],
    );
    assert_fields(
        &rows[2],
        &[("mpls.label", "16005,16006"), ("ip.len", "1492")],
    );
    assert_fields(
        &rows[3],
        &[
            ("mpls.label", "0"),
            ("mpls.exp", "5"),
            ("mpls.bottom", "1"),
            ("mpls.ttl", "8"),
        ],
    );
    let mut ip_out = core_ip();
    ip_out.eth = Eth::core0_out();
    assert_eq!(
        r.out()[1].data,
        labelled(
            &[
                lse(16005, 3, false, 63),
                lse(16006, 3, false, 63),
                lse(5000, 1, true, 50)
            ],
            ip_out
        )
    );
    assert_eq!(r.comments(), ["mtu-exceeded/icmp frag-needed sent"]);
    // 14 + 8 + 1492 bytes: exactly 1500 bytes of labels + IP.
    assert_eq!(r.out()[3].data.len(), 14 + 1500);
}

/// PHP: the label goes, the IP TTL becomes label TTL - 1 in uniform mode; above another
/// label the TTL moves to that label.
#[test]
fn penultimate_hop_pop_uniform() {
    let ip = core_ip().ttl(64).dscp(46);
    let ip6 = V6::new(Eth::core0(), "2001:db8:20::1", "2001:db8:a::2").hop_limit(64);
    let r = replay(
        &example_config(),
        &[
            ("core0", labelled(&[lse(16004, 1, true, 30)], ip)),
            (
                "core0",
                labelled(&[lse(16004, 1, false, 30), lse(5000, 6, true, 200)], ip),
            ),
            ("core0", with_labels(&ip6.udp(), &[lse(16004, 0, true, 12)])),
        ],
    );
    let rows = r.out_fields(FIELDS);
    assert_eq!(rows.len(), 3, "{}", r.stdout);
    assert_fields(
        &rows[0],
        &[
            ("frame.interface_name", "core0"),
            ("eth.src", "02:00:00:00:01:01"),
            ("eth.dst", "02:00:00:00:02:01"),
            ("eth.type", "0x0800"),
            ("mpls.label", ""),
            ("ip.ttl", "29"),
            ("ip.dsfield.dscp", "46"),
            ("ip.checksum.status", CHECKSUM_GOOD),
        ],
    );
    assert_fields(
        &rows[1],
        &[
            ("eth.type", "0x8847"),
            ("mpls.label", "5000"),
            ("mpls.exp", "6"),
            ("mpls.bottom", "1"),
            ("mpls.ttl", "29"),
            ("ip.ttl", "64"),
        ],
    );
    assert_fields(
        &rows[2],
        &[
            ("eth.type", "0x86dd"),
            ("mpls.label", ""),
            ("ipv6.hlim", "11"),
        ],
    );
    let expected = V4 {
        eth: Eth::core0_out(),
        ..ip.ttl(29)
    }
    .udp();
    assert_eq!(r.out()[0].data, expected);
}

/// PHP rewrites the IP TTL from every label TTL with a valid checksum.
#[test]
fn penultimate_hop_pop_checksum_for_every_ttl() {
    let frames: Vec<(&str, Vec<u8>)> = (2..=255u8)
        .map(|ttl| {
            let ip = core_ip().ttl(255 - ttl / 2).dscp(ttl >> 2);
            ("core0", labelled(&[lse(16004, 0, true, ttl)], ip))
        })
        .collect();
    let r = replay(&example_config(), &frames);
    let rows = r.out_fields(&["ip.ttl", "ip.checksum.status"]);
    assert_eq!(rows.len(), 254, "{}", r.stdout);
    for (row, ttl) in rows.iter().zip(2..=255u8) {
        assert_fields(
            row,
            &[
                ("ip.ttl", &(ttl - 1).to_string()),
                ("ip.checksum.status", CHECKSUM_GOOD),
            ],
        );
    }
}

/// PHP in pipe mode leaves the IP TTL and the label below alone.
#[test]
fn penultimate_hop_pop_pipe() {
    let ip = core_ip().ttl(64);
    let r = replay(
        &test_config("pipe"),
        &[
            ("core0", labelled(&[lse(16004, 0, true, 30)], ip)),
            (
                "core0",
                labelled(&[lse(16004, 0, false, 30), lse(5000, 0, true, 200)], ip),
            ),
        ],
    );
    let rows = r.out_fields(FIELDS);
    assert_eq!(rows.len(), 2, "{}", r.stdout);
    assert_fields(
        &rows[0],
        &[
            ("eth.type", "0x0800"),
            ("ip.ttl", "64"),
            ("ip.checksum.status", CHECKSUM_GOOD),
        ],
    );
    assert_fields(&rows[1], &[("mpls.label", "5000"), ("mpls.ttl", "200")]);
    let expected = V4 {
        eth: Eth::core0_out(),
        ..ip
    }
    .udp();
    assert_eq!(r.out()[0].data, expected);
}

/// Explicit null pops into the global table (IPv4 label 0, IPv6 label 2).
#[test]
fn explicit_null() {
    let to_peer = V4::new(Eth::core0(), "198.19.20.5", "198.18.0.2").ttl(64);
    let ip6 = V6::new(Eth::core0(), "2001:db8:20::1", "2001:db8:a::2");
    let r = replay(
        &example_config(),
        &[
            ("core0", labelled(&[lse(0, 3, true, 20)], to_peer)),
            ("core0", with_labels(&ip6.udp(), &[lse(2, 0, true, 20)])),
        ],
    );
    let rows = r.out_fields(FIELDS);
    assert_eq!(rows.len(), 1, "{}", r.stdout);
    assert_fields(
        &rows[0],
        &[
            ("frame.interface_name", "core0"),
            ("eth.src", "02:00:00:00:01:01"),
            ("eth.dst", "02:00:00:00:02:01"),
            ("eth.type", "0x0800"),
            ("vlan.id", ""),
            ("mpls.label", ""),
            ("ip.ttl", "19"),
            ("ip.checksum.status", CHECKSUM_GOOD),
        ],
    );
    assert_eq!(r.comments(), ["no-route"]);

    // Through a labelled global route: the pushed label takes the new TTL and the null's TC.
    let to_global = V4::new(Eth::core0(), "198.19.20.5", "203.0.113.9").ttl(64);
    let r = replay(
        &test_config("extras"),
        &[("core0", labelled(&[lse(0, 3, true, 20)], to_global))],
    );
    let rows = r.out_fields(FIELDS);
    assert_eq!(rows.len(), 1, "{}", r.stdout);
    assert_fields(
        &rows[0],
        &[
            ("mpls.label", "16007"),
            ("mpls.exp", "3"),
            ("mpls.bottom", "1"),
            ("mpls.ttl", "19"),
            ("ip.ttl", "19"),
            ("ip.checksum.status", CHECKSUM_GOOD),
        ],
    );
}

/// Explicit null above another label (RFC 4182): popping it and acting on the label below
/// is one hop; in uniform mode the null's TTL carries down, in pipe mode it does not.
#[test]
fn explicit_null_above_another_label() {
    let ip = core_ip().ttl(50);
    let frames = [
        (
            "core0",
            labelled(&[lse(0, 1, false, 20), lse(16002, 6, true, 64)], ip),
        ),
        (
            "core0",
            labelled(&[lse(0, 1, false, 20), lse(1001, 4, true, 64)], ip),
        ),
    ];
    let r = replay(&example_config(), &frames);
    let rows = r.out_fields(FIELDS);
    assert_eq!(rows.len(), 2, "{}", r.stdout);
    assert_fields(
        &rows[0],
        &[
            ("frame.interface_name", "core0"),
            ("mpls.label", "16003"),
            ("mpls.exp", "6"),
            ("mpls.bottom", "1"),
            ("mpls.ttl", "19"),
            ("ip.ttl", "50"),
        ],
    );
    assert_fields(
        &rows[1],
        &[
            ("frame.interface_name", "dx0"),
            ("vlan.id", "101"),
            ("vlan.priority", "4"),
            ("ip.ttl", "19"),
            ("ip.checksum.status", CHECKSUM_GOOD),
        ],
    );

    let r = replay(&test_config("pipe"), &frames);
    let rows = r.out_fields(FIELDS);
    assert_eq!(rows.len(), 2, "{}", r.stdout);
    assert_fields(&rows[0], &[("mpls.label", "16003"), ("mpls.ttl", "63")]);
    assert_fields(&rows[1], &[("vlan.id", "101"), ("ip.ttl", "49")]);
}

/// A priority tag (VID 0) on core0 belongs to the untagged attachment (802.1Q §9.6); what
/// leaves is untagged.
#[test]
fn priority_tagged_mpls_on_core() {
    let eth = Eth {
        vlan: Some((0, 5)),
        ..Eth::core0()
    };
    let ip = V4 { eth, ..core_ip() };
    let r = replay(
        &example_config(),
        &[("core0", labelled(&[lse(16002, 2, true, 64)], ip))],
    );
    let mut ip_out = core_ip();
    ip_out.eth = Eth::core0_out();
    let out = r.out();
    assert_eq!(out.len(), 1, "{}", r.stdout);
    assert_eq!(out[0].data, labelled(&[lse(16003, 2, true, 63)], ip_out));
}

/// Router alert is punted; implicit null (3) and the unassigned 4..15 never appear on the
/// wire; labels without an entry are dropped.
#[test]
fn reserved_and_unknown_labels() {
    let ip = core_ip();
    let mut frames = vec![("core0", labelled(&[lse(1, 0, true, 64)], ip))];
    for label in 3..=15 {
        frames.push(("core0", labelled(&[lse(label, 0, true, 64)], ip)));
    }
    frames.push(("core0", labelled(&[lse(99999, 0, true, 64)], ip)));
    let r = replay(&example_config(), &frames);
    let mut expected = vec!["punt/router-alert".to_string()];
    expected.extend((3..=15).map(|_| "reserved-label".to_string()));
    expected.push("unknown-label".into());
    assert_eq!(r.comments(), expected);
    assert_eq!(
        r.report.drops,
        counts(&[("reserved-label", 13), ("unknown-label", 1)])
    );
    assert_eq!(r.report.punts, counts(&[("router-alert", 1)]));
    assert_eq!(
        (r.report.forwarded, r.report.dropped, r.report.punted),
        (0, 14, 1)
    );

    let rows = r.drops_fields(&["mpls.label", "frame.comment"]);
    assert_fields(
        &rows[0],
        &[("mpls.label", "1"), ("frame.comment", "punt,router-alert")],
    );
    assert_fields(
        &rows[14],
        &[("mpls.label", "99999"), ("frame.comment", "unknown-label")],
    );
}

/// Stacks without a bottom: cut short is `truncated`, deeper than 16 is `bad-label-stack`;
/// exactly 16 entries are walked.
#[test]
fn label_stack_depth() {
    let ip = core_ip();
    let no_bottom: Vec<u32> = (0..3).map(|i| lse(16002 + i, 0, false, 64)).collect();
    let cut = Eth::core0().frame(
        ETHERTYPE_MPLS,
        &no_bottom
            .iter()
            .flat_map(|e| e.to_be_bytes())
            .collect::<Vec<_>>(),
    );
    let mut seventeen: Vec<u32> = vec![lse(16002, 0, false, 64)];
    seventeen.extend((0..16).map(|_| lse(5000, 0, false, 64)));
    let mut seventeen_bos = seventeen.clone();
    *seventeen_bos.last_mut().expect("17 entries") |= 1 << 8;
    let mut sixteen_bos: Vec<u32> = vec![lse(16002, 0, false, 64)];
    sixteen_bos.extend((0..14).map(|_| lse(5000, 0, false, 64)));
    sixteen_bos.push(lse(5000, 0, true, 64));
    // A two-byte tail: the frame ends in the middle of the next entry.
    let mut half = cut.clone();
    half.extend_from_slice(&[0, 0]);
    let r = replay(
        &example_config(),
        &[
            ("core0", cut),
            ("core0", half),
            ("core0", labelled(&seventeen, ip)),
            ("core0", labelled(&seventeen_bos, ip)),
            ("core0", labelled(&sixteen_bos, ip)),
            ("core0", Eth::core0().frame(ETHERTYPE_MPLS, &[])),
        ],
    );
    assert_eq!(
        r.comments(),
        [
            "truncated",
            "truncated",
            "bad-label-stack",
            "bad-label-stack",
            "truncated"
        ]
    );
    let rows = r.out_fields(&["mpls.label"]);
    assert_eq!(rows.len(), 1, "{}", r.stdout);
    assert!(rows[0]["mpls.label"].starts_with("16003,5000,"), "{rows:?}");
    assert_eq!(rows[0]["mpls.label"].split(',').count(), 16);
}

//! Templates read back field by field with etherparse (IP, UDP) and the wire views (VLAN,
//! MPLS, which etherparse 0.16 does not parse past), one byte-for-byte fixture, and property
//! tests: every flow of every template has correct checksums and the fields the flow number
//! says, against a reference model of what each `Vary` field adds.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::{NetHeaders, PacketHeaders, PayloadSlice, TransportHeader};
use proptest::prelude::*;

use super::*;

fn mac(last: u8) -> MacAddr {
    MacAddr([0x02, 0, 0, 0, 0, last])
}

fn spec_v4() -> Spec {
    Spec {
        src_mac: mac(1),
        dst_mac: mac(2),
        tags: vec![],
        labels: vec![],
        src: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)),
        dst: IpAddr::V4(Ipv4Addr::new(198, 19, 0, 1)),
        ttl: 64,
        sport: 1024,
        dport: 9,
        size: 60,
        flows: 1,
        vary: Vary::default(),
    }
}

fn label(label: u32, tc: u8, ttl: u8) -> LabelSpec {
    LabelSpec {
        label: Label::new(label).expect("20 bits"),
        tc: Tc::new(tc).expect("3 bits"),
        ttl,
    }
}

fn tag(vid: u16, pcp: u8) -> Tag {
    Tag {
        vid: VlanId::new(vid).expect("1..4094"),
        pcp: Pcp::new(pcp).expect("3 bits"),
    }
}

/// What a frame says, read back without any of the builder's code.
#[derive(Debug, PartialEq, Eq)]
struct Parsed {
    tags: Vec<(u16, u16, u8)>,
    labels: Vec<(u32, u8, bool, u8)>,
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    sport: u16,
    dport: u16,
    ip_checksum_ok: bool,
    udp_checksum: u16,
    udp_checksum_expected: u16,
    payload_len: usize,
}

fn parse(frame: &[u8]) -> Parsed {
    let eth = ethernet::Frame::new_checked(frame).expect("ethernet");
    let mut ethertype = eth.ethertype();
    let mut at = ethernet::HEADER_LEN;
    let mut tags = Vec::new();
    while ethertype.is_vlan_tpid() {
        let t = vlan::Tag::new_checked(&frame[at..]).expect("tag");
        tags.push((ethertype.to_u16(), t.vlan_id_raw(), t.pcp().get()));
        ethertype = t.inner_ethertype();
        at += vlan::HEADER_LEN;
    }
    let mut labels = Vec::new();
    if ethertype == EtherType::Mpls {
        loop {
            let e = mpls::Entry::new_checked(&frame[at..]).expect("label");
            labels.push((e.label().get(), e.tc().get(), e.bos(), e.ttl()));
            at += mpls::HEADER_LEN;
            if e.bos() {
                break;
            }
        }
    }
    let headers = PacketHeaders::from_ip_slice(&frame[at..]).expect("IP and UDP");
    let Some(TransportHeader::Udp(udp)) = headers.transport else {
        panic!("no UDP header: {headers:?}")
    };
    let PayloadSlice::Udp(payload) = headers.payload else {
        panic!("no UDP payload")
    };
    let (src, dst, ttl, ip_checksum_ok, expected) = match headers.net.expect("IP") {
        NetHeaders::Ipv4(ip, _) => (
            IpAddr::V4(ip.source.into()),
            IpAddr::V4(ip.destination.into()),
            ip.time_to_live,
            ip.header_checksum == ip.calc_header_checksum(),
            udp.calc_checksum_ipv4(&ip, payload).expect("checksum"),
        ),
        NetHeaders::Ipv6(ip, _) => (
            IpAddr::V6(ip.source.into()),
            IpAddr::V6(ip.destination.into()),
            ip.hop_limit,
            true,
            udp.calc_checksum_ipv6(&ip, payload).expect("checksum"),
        ),
    };
    Parsed {
        tags,
        labels,
        src,
        dst,
        ttl,
        sport: udp.source_port,
        dport: udp.destination_port,
        ip_checksum_ok,
        udp_checksum: udp.checksum,
        udp_checksum_expected: expected,
        payload_len: payload.len(),
    }
}

#[test]
fn an_ipv4_udp_frame_is_exactly_these_bytes() {
    let t = Template::build(&spec_v4()).expect("builds");
    #[rustfmt::skip]
    let expected: [u8; 60] = [
        // Ethernet: dst, src, IPv4
        0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00,
        // IPv4: 4/5, tos 0, length 46, ident 0, flags 0, TTL 64, UDP, checksum, src, dst
        0x45, 0x00, 0x00, 46, 0, 0, 0, 0, 64, 17, 0xee, 0x97,
        198, 18, 0, 1, 198, 19, 0, 1,
        // UDP: 1024 -> 9, length 26, checksum
        0x04, 0x00, 0x00, 0x09, 0x00, 26, 0x27, 0x38,
        // payload: offsets 0..18
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17,
    ];
    assert_eq!(t.frame(), &expected[..]);
    assert_eq!(t.header_len(), 42);
    assert_eq!(
        t.describe(),
        "Ethernet 14 + IPv4 20 + UDP 8 + payload 18".to_string()
    );
    let p = parse(t.frame());
    assert!(p.ip_checksum_ok);
    assert_eq!(p.udp_checksum, p.udp_checksum_expected);
}

#[test]
fn a_tagged_two_label_frame_reads_back_field_by_field() {
    let spec = Spec {
        tags: vec![tag(101, 5)],
        labels: vec![label(16001, 5, 63), label(2001, 0, 255)],
        size: 128,
        ..spec_v4()
    };
    let t = Template::build(&spec).expect("builds");
    assert_eq!(t.frame().len(), 128);
    assert_eq!(t.l3_offset(), 14 + 4 + 8);
    let p = parse(t.frame());
    assert_eq!(p.tags, vec![(0x8100, 101, 5)]);
    assert_eq!(p.labels, vec![(16001, 5, false, 63), (2001, 0, true, 255)]);
    assert_eq!(p.src, spec.src);
    assert_eq!(p.dst, spec.dst);
    assert_eq!((p.ttl, p.sport, p.dport), (64, 1024, 9));
    assert!(p.ip_checksum_ok);
    assert_eq!(p.udp_checksum, p.udp_checksum_expected);
    assert_eq!(p.payload_len, 128 - 14 - 4 - 8 - 20 - 8);
    assert_eq!(
        t.describe(),
        "Ethernet 14 + 802.1Q 4 + MPLS 8 + IPv4 20 + UDP 8 + payload 74"
    );
}

#[test]
fn two_tags_are_an_s_tag_then_a_c_tag() {
    let spec = Spec {
        tags: vec![tag(200, 3), tag(101, 0)],
        ..spec_v4()
    };
    let p = parse(Template::build(&spec).expect("builds").frame());
    assert_eq!(p.tags, vec![(0x88a8, 200, 3), (0x8100, 101, 0)]);
}

#[test]
fn ipv6_over_mpls_has_its_mandatory_udp_checksum() {
    let spec = Spec {
        labels: vec![label(2002, 0, 64)],
        src: IpAddr::V6("2001:db8::1".parse().expect("v6")),
        dst: IpAddr::V6("2001:db8:1::1".parse().expect("v6")),
        ttl: 7,
        size: 66,
        ..spec_v4()
    };
    let t = Template::build(&spec).expect("builds");
    let p = parse(t.frame());
    assert_eq!(p.labels, vec![(2002, 0, true, 64)]);
    assert_eq!(p.ttl, 7);
    assert_ne!(p.udp_checksum, 0);
    assert_eq!(p.udp_checksum, p.udp_checksum_expected);
    assert_eq!(p.payload_len, 0);
}

#[test]
fn flows_move_the_source_address_and_both_ports() {
    let spec = Spec {
        flows: 4,
        ..spec_v4()
    };
    let t = Template::build(&spec).expect("builds");
    let p = parse(&t.flow_frame(3));
    assert_eq!(p.src, IpAddr::V4(Ipv4Addr::new(198, 18, 0, 4)));
    assert_eq!((p.sport, p.dport), (1027, 12));
    assert_eq!(t.flow_frame(0), t.frame());
    // IPv4 carries into the next byte, IPv6 wraps within its low 32 bits.
    let v4 = Template::build(&Spec {
        src: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 255)),
        ..spec.clone()
    })
    .expect("builds");
    assert_eq!(v4.flow_src(1), IpAddr::V4(Ipv4Addr::new(198, 18, 1, 0)));
    let v6 = Template::build(&Spec {
        src: IpAddr::V6("2001:db8::ffff:ffff".parse().expect("v6")),
        dst: IpAddr::V6("2001:db8::2".parse().expect("v6")),
        size: 62,
        ..spec
    })
    .expect("builds");
    assert_eq!(
        v6.flow_src(2),
        IpAddr::V6("2001:db8::1".parse::<Ipv6Addr>().expect("v6"))
    );
}

#[test]
fn flows_can_vary_the_destination_alone_over_a_whole_slash_16() {
    let spec = Spec {
        dst: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 0)),
        flows: MAX_FLOWS,
        vary: Vary {
            src: false,
            dst: true,
            ports: false,
        },
        ..spec_v4()
    };
    let t = Template::build(&spec).expect("builds");
    for (flow, dst) in [
        (0, Ipv4Addr::new(198, 18, 0, 0)),
        (255, Ipv4Addr::new(198, 18, 0, 255)),
        (256, Ipv4Addr::new(198, 18, 1, 0)),
        (MAX_FLOWS - 1, Ipv4Addr::new(198, 18, 255, 255)),
    ] {
        let p = parse(&t.flow_frame(flow));
        assert_eq!(p.dst, IpAddr::V4(dst), "flow {flow}");
        assert_eq!(p.src, spec.src, "flow {flow}");
        assert_eq!((p.sport, p.dport), (1024, 9), "flow {flow}");
        assert!(p.ip_checksum_ok, "flow {flow}");
        assert_eq!(p.udp_checksum, p.udp_checksum_expected, "flow {flow}");
    }
    // IPv6: the low 32 bits wrap, the rest stays.
    let v6 = Template::build(&Spec {
        src: IpAddr::V6("2001:db8::1".parse().expect("v6")),
        dst: IpAddr::V6("2001:db8:1::ffff:fffe".parse().expect("v6")),
        size: 62,
        flows: 4,
        vary: Vary {
            src: true,
            dst: true,
            ports: true,
        },
        ..spec_v4()
    })
    .expect("builds");
    let p = parse(&v6.flow_frame(3));
    assert_eq!(p.dst, IpAddr::V6("2001:db8:1::1".parse().expect("v6")));
    assert_eq!(p.src, IpAddr::V6("2001:db8::4".parse().expect("v6")));
    assert_eq!((p.sport, p.dport), (1027, 12));
    assert_eq!(Vary::default().to_string(), "src,ports");
    assert_eq!(
        Vary {
            src: false,
            dst: false,
            ports: false
        }
        .to_string(),
        "none"
    );
}

#[test]
fn limits_are_refused_with_the_layout() {
    let too_small = Spec {
        labels: vec![label(16001, 0, 64), label(2001, 0, 64)],
        src: IpAddr::V6("2001:db8::1".parse().expect("v6")),
        dst: IpAddr::V6("2001:db8::2".parse().expect("v6")),
        size: 69,
        ..spec_v4()
    };
    let e = Template::build(&too_small).expect_err("70 bytes of headers");
    assert_eq!(
        e.to_string(),
        "a frame of 69 bytes is too short: Ethernet 14 + MPLS 8 + IPv6 40 + UDP 8 need at least 70 bytes"
    );
    let e = Template::build(&Spec {
        size: 59,
        ..spec_v4()
    })
    .expect_err("below 60");
    assert!(matches!(e, TemplateError::TooSmall { min: 60, .. }), "{e}");
    let e = Template::build(&Spec {
        size: 9001,
        ..spec_v4()
    })
    .expect_err("above 9000");
    assert_eq!(e, TemplateError::TooLarge { size: 9001 });
    assert!(Template::build(&Spec {
        size: 9000,
        ..spec_v4()
    })
    .is_ok());
    let e = Template::build(&Spec {
        dst: IpAddr::V6(Ipv6Addr::LOCALHOST),
        ..spec_v4()
    })
    .expect_err("mixed");
    assert!(matches!(e, TemplateError::MixedFamilies { .. }));
    for flows in [0, MAX_FLOWS + 1] {
        let e = Template::build(&Spec { flows, ..spec_v4() }).expect_err("flows");
        assert_eq!(e, TemplateError::Flows(flows));
    }
    let e = Template::build(&Spec {
        tags: vec![tag(1, 0); 3],
        ..spec_v4()
    })
    .expect_err("tags");
    assert_eq!(e, TemplateError::TooManyTags(3));
    let e = Template::build(&Spec {
        labels: vec![label(16, 0, 1); MAX_LABELS + 1],
        size: 200,
        ..spec_v4()
    })
    .expect_err("labels");
    assert_eq!(e, TemplateError::TooManyLabels(MAX_LABELS + 1));
}

#[test]
fn the_longest_header_stack_fits_a_head() {
    let spec = Spec {
        tags: vec![tag(1, 7), tag(4094, 0)],
        labels: vec![label(1_048_575, 7, 1); MAX_LABELS],
        src: IpAddr::V6("2001:db8::1".parse().expect("v6")),
        dst: IpAddr::V6("2001:db8::2".parse().expect("v6")),
        size: 134,
        flows: MAX_FLOWS,
        ..spec_v4()
    };
    let t = Template::build(&spec).expect("builds");
    assert_eq!(t.header_len(), 134);
    let p = parse(&t.flow_frame(MAX_FLOWS - 1));
    assert_eq!(p.labels.len(), MAX_LABELS);
    assert_eq!(p.udp_checksum, p.udp_checksum_expected);
}

/// A 32-bit number, often within a few hundred of wrapping: where address and port
/// arithmetic goes wrong.
fn arb_low32() -> impl Strategy<Value = u32> {
    prop_oneof![any::<u32>(), (u32::MAX - 300)..=u32::MAX]
}

/// Valid specs with up to `max_flows` flows, varying any set of fields.
fn arb_spec(max_flows: u32) -> impl Strategy<Value = Spec> {
    (
        prop::collection::vec((1u16..=4094, 0u8..=7), 0..=MAX_TAGS),
        prop::collection::vec((16u32..=1_048_575, 0u8..=7, any::<u8>()), 0..=4),
        any::<bool>(),
        (any::<[u8; 16]>(), arb_low32()),
        (any::<[u8; 16]>(), arb_low32()),
        (any::<u8>(), arb_low32(), arb_low32()),
        0usize..=400,
        1u32..=max_flows,
        any::<(bool, bool, bool)>(),
    )
        .prop_map(
            |(tags, labels, v6, src, dst, (ttl, sport, dport), extra, flows, vary)| {
                // The high bytes at random, the low 32 bits from `arb_low32`.
                let v6_addr = |(mut o, low): ([u8; 16], u32)| {
                    o[12..].copy_from_slice(&low.to_be_bytes());
                    IpAddr::V6(Ipv6Addr::from(o))
                };
                let (src, dst) = if v6 {
                    (v6_addr(src), v6_addr(dst))
                } else {
                    (
                        IpAddr::V4(Ipv4Addr::from(src.1)),
                        IpAddr::V4(Ipv4Addr::from(dst.1)),
                    )
                };
                let tags: Vec<Tag> = tags.into_iter().map(|(v, p)| tag(v, p)).collect();
                let labels: Vec<LabelSpec> = labels
                    .into_iter()
                    .map(|(l, tc, ttl)| label(l, tc, ttl))
                    .collect();
                let headers = 14 + 4 * tags.len() + 4 * labels.len() + if v6 { 48 } else { 28 };
                Spec {
                    src_mac: mac(1),
                    dst_mac: mac(2),
                    tags,
                    labels,
                    src,
                    dst,
                    ttl,
                    // The low 16 bits: near the top of the port range as often as anywhere.
                    sport: sport as u16,
                    dport: dport as u16,
                    size: headers.max(MIN_FRAME) + extra,
                    flows,
                    vary: Vary {
                        src: vary.0,
                        dst: vary.1,
                        ports: vary.2,
                    },
                }
            },
        )
}

/// The reference model of flow `f`'s varied fields, written apart from the builder's code:
/// addresses as integers (IPv4 whole, IPv6 low 32 bits), ports modulo 65536.
fn expected_flow(spec: &Spec, f: u32) -> (IpAddr, IpAddr, u16, u16) {
    let add = |a: IpAddr, on: bool| -> IpAddr {
        let n = if on { f } else { 0 };
        match a {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(
                ((u64::from(u32::from(a)) + u64::from(n)) % (1 << 32)) as u32,
            )),
            IpAddr::V6(a) => {
                let a = u128::from(a);
                let low = ((a & 0xffff_ffff) + u128::from(n)) & 0xffff_ffff;
                IpAddr::V6(Ipv6Addr::from((a & !0xffff_ffff) | low))
            }
        }
    };
    let port = |p: u16| -> u16 {
        let n = if spec.vary.ports { f } else { 0 };
        ((u32::from(p) + n) % 65536) as u16
    };
    (
        add(spec.src, spec.vary.src),
        add(spec.dst, spec.vary.dst),
        port(spec.sport),
        port(spec.dport),
    )
}

/// Checks flow `flow` of `t`: correct checksums (as etherparse computes them from scratch),
/// the varied fields as the model says, the rest as the spec says, the head exactly the
/// frame's headers.
fn check_flow(t: &Template, flow: u32) -> Result<(), TestCaseError> {
    let spec = t.spec();
    let frame = t.flow_frame(flow);
    prop_assert_eq!(frame.len(), spec.size);
    let p = parse(&frame);
    prop_assert!(p.ip_checksum_ok, "flow {}", flow);
    prop_assert_eq!(p.udp_checksum, p.udp_checksum_expected, "flow {}", flow);
    prop_assert_ne!(p.udp_checksum, 0);
    let (src, dst, sport, dport) = expected_flow(spec, flow);
    prop_assert_eq!((p.src, p.dst), (src, dst), "flow {}", flow);
    prop_assert_eq!((p.sport, p.dport), (sport, dport), "flow {}", flow);
    prop_assert_eq!((t.flow_src(flow), t.flow_dst(flow)), (src, dst));
    prop_assert_eq!(t.flow_ports(flow), (sport, dport));
    prop_assert_eq!(p.ttl, spec.ttl);
    prop_assert_eq!(p.labels.len(), spec.labels.len());
    prop_assert_eq!(p.tags.len(), spec.tags.len());
    // The head is exactly the frame's first header_len bytes, then zeros.
    let mut head = [0xa5u8; HEAD_MAX];
    t.write_head(flow, &mut head);
    prop_assert_eq!(&head[..t.header_len()], &frame[..t.header_len()]);
    prop_assert!(head[t.header_len()..].iter().all(|&b| b == 0));
    // The payload after the head is the template's in every flow.
    prop_assert_eq!(&frame[t.header_len()..], &t.frame()[t.header_len()..]);
    Ok(())
}

proptest! {
    /// Every flow of templates with up to 300 flows (so the ports and, near the top of their
    /// range, the addresses wrap): checksums and every field, varied or not.
    #[test]
    fn every_flow_has_correct_checksums_and_its_fields(spec in arb_spec(300)) {
        let t = Template::build(&spec).expect("the strategy builds valid specs");
        for flow in 0..spec.flows {
            check_flow(&t, flow)?;
        }
    }

    /// Any flow of templates with up to 65536 flows: the last, and one at random.
    #[test]
    fn any_flow_of_many_has_correct_checksums_and_its_fields(
        spec in arb_spec(MAX_FLOWS),
        pick in any::<prop::sample::Index>(),
    ) {
        let t = Template::build(&spec).expect("the strategy builds valid specs");
        check_flow(&t, spec.flows - 1)?;
        check_flow(&t, pick.index(spec.flows as usize) as u32)?;
    }
}

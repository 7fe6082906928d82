//! Argument checking: every bad value is one sentence naming the argument and its range.

use super::*;

fn args() -> GenArgs {
    GenArgs {
        dev: "veth0".into(),
        src: "198.18.0.1".into(),
        dst: "198.19.0.1".into(),
        ttl: "64".into(),
        sport: "1024".into(),
        dport: "9".into(),
        size: "60".into(),
        flows: "1".into(),
        vary: "src,ports".into(),
        batch: "64".into(),
        ..GenArgs::default()
    }
}

fn error(a: GenArgs) -> String {
    parse(&a).expect_err("must be refused").message
}

#[test]
fn defaults_make_a_plain_ipv4_plan() {
    let p = parse(&args()).expect("valid");
    assert_eq!(p.spec.size, 60);
    assert_eq!(p.spec.flows, 1);
    assert_eq!(p.batch, 64);
    assert_eq!(p.stop, Stop::Signal);
    assert!(p.spec.tags.is_empty() && p.spec.labels.is_empty());
    assert_eq!((p.src_mac, p.dst_mac), (None, None));
    assert_eq!(p.spec.vary, Vary::default());
}

#[test]
fn vary_takes_any_comma_list_of_src_dst_and_ports() {
    let vary = |v: &str| {
        parse(&GenArgs {
            vary: v.into(),
            ..args()
        })
        .map(|p| p.spec.vary.to_string())
    };
    assert_eq!(vary("dst").ok().as_deref(), Some("dst"));
    assert_eq!(vary("ports, dst").ok().as_deref(), Some("dst,ports"));
    assert_eq!(vary("src,dst,ports").ok().as_deref(), Some("src,dst,ports"));
}

#[test]
fn vlans_and_labels_take_their_documented_syntax() {
    let p = parse(&GenArgs {
        vlan: vec!["200:3".into(), "101".into()],
        labels: Some("16001/5/63,2001/0,3".into()),
        count: Some("10000".into()),
        rate: Some("1000000".into()),
        dst_mac: Some("02:00:00:00:01:0A".into()),
        ..args()
    })
    .expect("valid");
    let tags: Vec<(u16, u8)> = p
        .spec
        .tags
        .iter()
        .map(|t| (t.vid.get(), t.pcp.get()))
        .collect();
    assert_eq!(tags, vec![(200, 3), (101, 0)]);
    let labels: Vec<(u32, u8, u8)> = p
        .spec
        .labels
        .iter()
        .map(|l| (l.label.get(), l.tc.get(), l.ttl))
        .collect();
    assert_eq!(labels, vec![(16001, 5, 63), (2001, 0, 64), (3, 0, 64)]);
    assert_eq!(p.stop, Stop::Count(10000));
    assert_eq!(p.rate, Some(1_000_000));
    assert_eq!(p.dst_mac, Some(MacAddr([2, 0, 0, 0, 1, 10])));
    let p = parse(&GenArgs {
        duration: Some("0.5".into()),
        src: "2001:db8::1".into(),
        dst: "2001:db8::2".into(),
        ..args()
    })
    .expect("valid");
    assert_eq!(p.stop, Stop::Duration(Duration::from_millis(500)));
}

#[test]
fn every_bad_value_names_its_argument_and_range() {
    let cases: Vec<(GenArgs, &str)> = vec![
        (
            GenArgs { size: "59".into(), ..args() },
            "--size must be a frame length in bytes (without the FCS) from 60 to 9000, not '59'",
        ),
        (
            GenArgs { size: "9001".into(), ..args() },
            "--size must be a frame length in bytes (without the FCS) from 60 to 9000, not '9001'",
        ),
        (
            GenArgs { size: "big".into(), ..args() },
            "--size must be a frame length in bytes (without the FCS) from 60 to 9000, not 'big'",
        ),
        (
            GenArgs { flows: "0".into(), ..args() },
            "--flows must be a flow count from 1 to 65536, not '0'",
        ),
        (
            GenArgs { flows: "65537".into(), ..args() },
            "--flows must be a flow count from 1 to 65536, not '65537'",
        ),
        (
            GenArgs { vary: "dst,sport".into(), ..args() },
            "--vary must be a comma list of src, dst and ports (like src,ports or dst), not 'dst,sport'",
        ),
        (
            GenArgs { vary: "".into(), ..args() },
            "--vary must be a comma list of src, dst and ports (like src,ports or dst), not ''",
        ),
        (
            GenArgs { batch: "257".into(), ..args() },
            "--batch must be a batch size from 1 to 256, not '257'",
        ),
        (
            GenArgs { rate: Some("0".into()), ..args() },
            "--rate must be frames per second from 1 to 100000000, not '0'",
        ),
        (
            GenArgs { count: Some("0".into()), ..args() },
            "--count must be a number of frames, 1 or more, not '0'",
        ),
        (
            GenArgs { duration: Some("-1".into()), ..args() },
            "--duration must be a number of seconds above 0 and at most 31536000 (like 5 or 0.5), not '-1'",
        ),
        (
            GenArgs { count: Some("5".into()), duration: Some("5".into()), ..args() },
            "--count and --duration cannot both be given: the generator stops at one of them",
        ),
        (
            GenArgs { ttl: "256".into(), ..args() },
            "--ttl must be a TTL from 0 to 255, not '256'",
        ),
        (
            GenArgs { sport: "65536".into(), ..args() },
            "--sport must be a UDP port from 0 to 65535, not '65536'",
        ),
        (
            GenArgs { src: "198.18.0".into(), ..args() },
            "--src must be an IPv4 or IPv6 address (like 198.18.0.1 or 2001:db8::1), not '198.18.0'",
        ),
        (
            GenArgs { dst: "2001:db8::1".into(), ..args() },
            "--src 198.18.0.1 and --dst 2001:db8::1 must both be IPv4 or both be IPv6",
        ),
        (
            GenArgs { dst_mac: Some("02:00:00:00:01".into()), ..args() },
            "--dst-mac must be a MAC address like 02:00:00:00:01:01, not '02:00:00:00:01'",
        ),
        (
            GenArgs { vlan: vec!["4095".into()], ..args() },
            "--vlan must be VID[:PCP] with VID from 1 to 4094 and PCP from 0 to 7, not '4095'",
        ),
        (
            GenArgs { vlan: vec!["101:8".into()], ..args() },
            "--vlan must be VID[:PCP] with VID from 1 to 4094 and PCP from 0 to 7, not '101:8'",
        ),
        (
            GenArgs { vlan: vec!["1".into(), "2".into(), "3".into()], ..args() },
            "--vlan is given 3 times: a frame carries at most 2 tags (802.1ad S-tag, then 802.1Q C-tag)",
        ),
        (
            GenArgs { labels: Some("16001/8".into()), ..args() },
            "--labels entry '16001/8' must be LABEL[/TC[/TTL]] with LABEL from 0 to 1048575, TC from 0 to 7 and TTL from 0 to 255",
        ),
        (
            GenArgs { labels: Some("1048576".into()), ..args() },
            "--labels entry '1048576' must be LABEL[/TC[/TTL]] with LABEL from 0 to 1048575, TC from 0 to 7 and TTL from 0 to 255",
        ),
        (
            GenArgs { labels: Some("16/0/64/1".into()), ..args() },
            "--labels entry '16/0/64/1' must be LABEL[/TC[/TTL]] with LABEL from 0 to 1048575, TC from 0 to 7 and TTL from 0 to 255",
        ),
        (
            GenArgs { labels: Some(vec!["16"; 17].join(",")), ..args() },
            "--labels has 17 entries: a stack has at most 16",
        ),
    ];
    for (a, expected) in cases {
        assert_eq!(error(a), expected);
    }
}

#[test]
fn rates_read_in_their_unit() {
    assert_eq!(rate(5_812_345.0), "5.81 Mpps");
    assert_eq!(rate(812_300.0), "812.3 kpps");
    assert_eq!(rate(7.0), "7 pps");
}

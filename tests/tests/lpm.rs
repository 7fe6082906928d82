//! Longest-prefix match through the whole path: nested prefixes of every interesting length
//! in one VRF, each with its own VPN label, so the label tshark decodes names the route the
//! pipeline chose. The IPv4 table is tried small (8-8-8-8 root) and large (16-8-8 root, from
//! 8192 routes on).

use std::fmt::Write as _;

use xpe_tests::*;

/// IPv4 routes of vpc-a: prefix and the VPN label that identifies it.
const ROUTES_V4: &[(&str, u32)] = &[
    ("0.0.0.0/0", 2000),
    ("198.18.0.0/15", 2015),
    ("198.19.0.0/16", 2016),
    ("198.19.64.0/18", 2018),
    ("198.19.20.0/23", 2023),
    ("198.19.20.0/24", 2024),
    ("198.19.20.128/25", 2025),
    ("198.19.20.202/31", 2031),
    ("198.19.20.200/32", 2032),
    ("198.19.255.255/32", 2099),
];

/// Destinations and the VPN label of the route that must win.
const LOOKUPS_V4: &[(&str, u32)] = &[
    ("203.0.113.1", 2000),
    ("198.18.99.1", 2015),
    ("198.19.0.1", 2016),
    ("198.19.63.255", 2016),
    ("198.19.64.0", 2018),
    ("198.19.127.255", 2018),
    ("198.19.128.0", 2016),
    ("198.19.21.9", 2023),
    ("198.19.20.0", 2024),
    ("198.19.20.127", 2024),
    ("198.19.20.128", 2025),
    ("198.19.20.199", 2025),
    ("198.19.20.200", 2032),
    ("198.19.20.201", 2025),
    ("198.19.20.202", 2031),
    ("198.19.20.203", 2031),
    ("198.19.20.204", 2025),
    ("198.19.20.255", 2025),
    ("198.19.255.254", 2016),
    ("198.19.255.255", 2099),
];

/// IPv6 routes of vpc-a: prefix and VPN label.
const ROUTES_V6: &[(&str, u32)] = &[
    ("::/0", 2100),
    ("2001:db8::/32", 2132),
    ("2001:db8:20::/48", 2148),
    ("2001:db8:20::/64", 2164),
    ("2001:db8:20::1/128", 2228),
    ("2001:db8:20:0:8000::/65", 2165),
];

/// IPv6 destinations and the VPN label of the route that must win.
const LOOKUPS_V6: &[(&str, u32)] = &[
    ("2001:db9::1", 2100),
    ("2001:db8:ffff::1", 2132),
    ("2001:db8:20:1::1", 2148),
    ("2001:db8:20::2", 2164),
    ("2001:db8:20::1", 2228),
    ("2001:db8:20:0:8000::1", 2165),
    ("2001:db8:20:0:7fff:ffff:ffff:ffff", 2164),
];

/// A config with vpc-a holding the routes above plus `filler` /32 routes of another label.
fn config(filler: usize) -> String {
    let mut c = String::from(
        r#"[router]
name = "pe-lpm"

[[interface]]
name = "core0"
kind = "core"
mac = "02:00:00:00:01:01"
address = "198.18.0.1/30"

[[interface]]
name = "dx0"
kind = "edge"
mac = "02:00:00:00:01:02"

[[neighbor]]
interface = "core0"
ip = "198.18.0.2"
mac = "02:00:00:00:02:01"

[[vrf]]
name = "vpc-a"

[[vrf.attachment]]
interface = "dx0"
vlan = 101
address = "169.254.10.1/30"
"#,
    );
    let route = |c: &mut String, prefix: &str, label: u32| {
        write!(
            c,
            "\n[[vrf.route]]\nprefix = \"{prefix}\"\nvia = \"198.18.0.2\"\nlabels = [16001, {label}]\n"
        )
        .expect("write to String");
    };
    for (p, l) in ROUTES_V4.iter().chain(ROUTES_V6) {
        route(&mut c, p, *l);
    }
    // Host routes in 198.18.128.0/17, away from every lookup above.
    for i in 0..filler {
        let addr = format!("198.18.{}.{}", 128 + i / 256, i % 256);
        route(&mut c, &format!("{addr}/32"), 3000);
    }
    c
}

/// Replays one packet per lookup through a table with `filler` extra routes and compares
/// the VPN label of each.
fn check(filler: usize) {
    let dir = TempDir::new();
    let path = dir.write("lpm.toml", config(filler));
    let mut frames = Vec::new();
    for (dst, _) in LOOKUPS_V4 {
        frames.push(("dx0", V4::new(Eth::dx0(101), "169.254.10.2", dst).udp()));
    }
    for (dst, _) in LOOKUPS_V6 {
        frames.push(("dx0", V6::new(Eth::dx0(101), "2001:db8:a::2", dst).udp()));
    }
    // The filler itself is reachable (first and last host).
    let last = format!("198.18.{}.{}", 128 + (filler - 1) / 256, (filler - 1) % 256);
    for dst in ["198.18.128.0", last.as_str()] {
        frames.push(("dx0", V4::new(Eth::dx0(101), "169.254.10.2", dst).udp()));
    }
    let r = replay(&path, &frames);
    let rows = r.out_fields(&["ip.dst", "ipv6.dst", "mpls.label"]);
    assert_eq!(rows.len(), frames.len(), "{}", r.stdout);
    let expected = LOOKUPS_V4
        .iter()
        .chain(LOOKUPS_V6)
        .map(|(dst, label)| (dst.to_string(), format!("16001,{label}")))
        .chain([
            ("198.18.128.0".to_string(), "16001,3000".to_string()),
            (last.clone(), "16001,3000".to_string()),
        ]);
    let mut wrong = Vec::new();
    for (row, (dst, labels)) in rows.iter().zip(expected) {
        let got_dst = format!("{}{}", row["ip.dst"], row["ipv6.dst"]);
        assert_eq!(got_dst, dst, "capture order");
        if row["mpls.label"] != labels {
            wrong.push(format!(
                "{dst}: expected {labels}, got {}",
                row["mpls.label"]
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{filler} filler routes:\n{}",
        wrong.join("\n")
    );
}

/// A small table: 8-bit root.
#[test]
fn longest_prefix_wins_small_table() {
    check(16);
}

/// A large table: 16-bit root.
#[test]
fn longest_prefix_wins_large_table() {
    check(8200);
}

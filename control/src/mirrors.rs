//! Which mirror devices a config asks for, where they live, and the kernel routes that send
//! the kernel's traffic into xpe: planned from the config and its compiled tables, checked by
//! `xpe check` like the rest of the config, and made by `xpe run`.
//!
//! - A core interface's mirror is `cp-NAME` in the router's own namespace (the interface
//!   itself is there, so the mirror cannot take its name).
//! - A VRF attachment's mirror is `IFNAME.VLAN` (tagged) or `IFNAME` (untagged) in the VRF's
//!   namespace, `ROUTER-VRF` unless the VRF names one. Linux names hold 15 bytes: a longer
//!   default keeps its `.VLAN` and cuts the interface name to fit; `mirror = "..."` names it.
//! - The router address sits on `xpe-lo` in the router's namespace.
//!
//! Kernel routes point into xpe through a gateway that is xpe itself: a permanent neighbour
//! [`GATEWAY`] whose MAC is the port's, so what the kernel routes there arrives at the data
//! plane addressed to the router and is looked up in the mirror's VRF
//! (`pipeline::route_from_kernel`). A namespace that holds one VRF gets default routes; a
//! namespace shared by several VRFs, and the router's own, get the config's static routes.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use xpe_dataplane::tables::{IpPrefix, Ipv4Prefix, Ipv6Prefix, Snapshot, VrfId};
use xpe_dataplane::wire::ethernet::MacAddr;
use xpe_dataplane::xsk::mirror::MirrorSpec;

use crate::compile::{ConfigError, Object, Problem};
use crate::config::{Config, InterfaceKind};

/// The kernel's next hop for routes into xpe: an IPv6 link-local address (so it never
/// collides with a customer's IPv4 plan) whose permanent neighbour entry is the port's MAC.
/// IPv4 routes use it too (RFC 5549 next hops, Linux 5.2 and later).
pub const GATEWAY: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0x78, 0x7065);

/// The device that holds the router address.
pub const LOOPBACK: &str = "xpe-lo";

/// Longest Linux interface name.
const IFNAMSIZ: usize = 15;

/// A kernel route into xpe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelRoute {
    /// The destination.
    pub prefix: IpPrefix,
    /// The mirror it leaves by.
    pub mirror: String,
}

/// One namespace's mirrors and routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    /// Its name; `None`: the router's own.
    pub name: Option<String>,
    /// The VRFs whose mirrors it holds.
    pub vrfs: Vec<String>,
    /// Routes into xpe.
    pub routes: Vec<KernelRoute>,
}

/// Every mirror of a config, and the namespaces they live in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MirrorPlan {
    /// The devices.
    pub mirrors: Vec<MirrorSpec>,
    /// The namespaces, the router's own first.
    pub namespaces: Vec<Namespace>,
}

impl MirrorPlan {
    /// The plan with every namespace but the router's own renamed `PREFIX` + name (labs and
    /// tests that run several copies of one config side by side).
    pub fn with_prefix(mut self, prefix: &str) -> MirrorPlan {
        if prefix.is_empty() {
            return self;
        }
        for m in &mut self.mirrors {
            if let Some(ns) = &mut m.netns {
                *ns = format!("{prefix}{ns}");
            }
        }
        for n in &mut self.namespaces {
            if let Some(ns) = &mut n.name {
                *ns = format!("{prefix}{ns}");
            }
        }
        self
    }

    /// The `ip -batch` commands that give namespace `ns` its gateway neighbours and routes.
    pub fn batch(&self, ns: &Namespace) -> String {
        let mut out = String::new();
        if ns.name.is_some() {
            out.push_str("link set lo up\n");
        }
        let mut gateways: Vec<&str> = ns.routes.iter().map(|r| r.mirror.as_str()).collect();
        gateways.sort_unstable();
        gateways.dedup();
        for name in gateways {
            if let Some(m) = self.mirrors.iter().find(|m| m.name == name) {
                out.push_str(&format!(
                    "neigh replace {GATEWAY} lladdr {} dev {name} nud permanent\n",
                    m.mac
                ));
            }
        }
        for r in &ns.routes {
            let via = match r.prefix {
                IpPrefix::V4(_) => format!("inet6 {GATEWAY}"),
                IpPrefix::V6(_) => GATEWAY.to_string(),
            };
            out.push_str(&format!(
                "route replace {} via {via} dev {}\n",
                r.prefix, r.mirror
            ));
        }
        out
    }
}

/// A namespace name `ip netns` accepts.
fn valid_netns(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && name != "."
        && name != ".."
        && !name.chars().any(|c| c == '/' || c.is_whitespace())
}

fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= IFNAMSIZ
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace())
}

/// `base` + `suffix`, with `base` cut so the whole fits a Linux interface name.
fn fit(base: &str, suffix: &str) -> String {
    let room = IFNAMSIZ.saturating_sub(suffix.len());
    let mut cut = base.len().min(room);
    while !base.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{suffix}", &base[..cut])
}

/// A locally administered MAC for the router-address device, from the router's name.
fn loopback_mac(name: &str) -> MacAddr {
    let h = name.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    let b = h.to_be_bytes();
    MacAddr([0x02, 0x78, b[0], b[1], b[2], b[3]])
}

/// Plans the mirrors of a config whose tables compiled into `snap`; every problem is
/// reported, naming the object.
pub fn plan(config: &Config, snap: &Snapshot) -> Result<MirrorPlan, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let mut mirrors = Vec::new();
    let mut objects = Vec::new();
    let router = &config.router.name;
    let global = snap.vrf(VrfId::GLOBAL).name.clone();
    for ifc in &config.interfaces {
        if ifc.kind != InterfaceKind::Core {
            continue;
        }
        let Some(port) = snap.port_by_name(&ifc.name) else {
            continue;
        };
        let p = snap.port(port);
        let att = p.attachment(0).map(|a| snap.attachment(a));
        mirrors.push(MirrorSpec {
            name: ifc
                .mirror
                .clone()
                .unwrap_or_else(|| fit(&format!("cp-{}", ifc.name), "")),
            netns: None,
            carries: Some((port, None)),
            vrf: global.clone(),
            mac: p.mac,
            mtu: p.mtu,
            address: att.and_then(|a| a.address).map(|a| (a.addr(), a.len())),
            address6: att.and_then(|a| a.address6).map(|a| (a.addr(), a.len())),
        });
        objects.push(Object::Interface(ifc.name.clone()));
    }
    for v in &config.vrfs {
        let netns = v
            .namespace
            .clone()
            .unwrap_or_else(|| format!("{router}-{}", v.name));
        if !valid_netns(&netns) {
            errors.push(ConfigError {
                object: Object::Vrf(v.name.clone()),
                problem: Problem::BadNamespace(netns.clone()),
            });
        }
        for a in &v.attachments {
            let Some(port) = snap.port_by_name(&a.interface) else {
                continue;
            };
            let p = snap.port(port);
            let vlan = a.vlan.and_then(|n| u16::try_from(n).ok());
            let Some(att) = p
                .attachment(vlan.unwrap_or(0))
                .map(|id| snap.attachment(id))
            else {
                continue;
            };
            let name = a.mirror.clone().unwrap_or_else(|| match vlan {
                Some(vid) => fit(&a.interface, &format!(".{vid}")),
                None => fit(&a.interface, ""),
            });
            mirrors.push(MirrorSpec {
                name,
                netns: Some(netns.clone()),
                carries: Some((port, vlan)),
                vrf: v.name.clone(),
                mac: p.mac,
                mtu: p.mtu,
                address: att.address.map(|a| (a.addr(), a.len())),
                address6: att.address6.map(|a| (a.addr(), a.len())),
            });
            objects.push(Object::Attachment {
                vrf: v.name.clone(),
                interface: a.interface.clone(),
                vlan: att.vlan,
            });
        }
    }
    if let Some(text) = &config.router.address {
        if let Ok(addr) = text.parse::<Ipv4Addr>() {
            mirrors.push(MirrorSpec {
                name: LOOPBACK.to_string(),
                netns: None,
                carries: None,
                vrf: global.clone(),
                mac: loopback_mac(router),
                mtu: 1500,
                address: Some((addr, 32)),
                address6: None,
            });
            objects.push(Object::Router);
        }
    }
    // Names: valid, and each once per namespace.
    // (namespace, name) -> the object whose mirror took the name first.
    let mut claimed: BTreeMap<(Option<String>, String), &Object> = BTreeMap::new();
    for (m, object) in mirrors.iter().zip(&objects) {
        if !valid_ifname(&m.name) {
            errors.push(ConfigError {
                object: object.clone(),
                problem: Problem::BadMirrorName(m.name.clone()),
            });
            continue;
        }
        let key = (m.netns.clone(), m.name.clone());
        if let Some(first) = claimed.get(&key) {
            errors.push(ConfigError {
                object: object.clone(),
                problem: Problem::MirrorTwice {
                    name: m.name.clone(),
                    first: first.to_string(),
                },
            });
        } else {
            claimed.insert(key, object);
        }
        // A core mirror may not take the name of an interface xpe forwards on: both live in
        // the router's namespace.
        if m.netns.is_none() && config.interfaces.iter().any(|i| i.name == m.name) {
            errors.push(ConfigError {
                object: object.clone(),
                problem: Problem::MirrorIsInterface(m.name.clone()),
            });
        }
    }
    // Namespaces, and overlapping subnets of different VRFs sharing one.
    let mut namespaces: Vec<Namespace> = vec![Namespace {
        name: None,
        vrfs: vec![global.clone()],
        routes: Vec::new(),
    }];
    for m in &mirrors {
        let Some(ns) = &m.netns else { continue };
        match namespaces.iter_mut().find(|n| n.name.as_ref() == Some(ns)) {
            Some(n) if !n.vrfs.contains(&m.vrf) => n.vrfs.push(m.vrf.clone()),
            Some(_) => {}
            None => namespaces.push(Namespace {
                name: Some(ns.clone()),
                vrfs: vec![m.vrf.clone()],
                routes: Vec::new(),
            }),
        }
    }
    for (i, (a, a_object)) in mirrors.iter().zip(&objects).enumerate() {
        for (b, b_object) in mirrors[i + 1..].iter().zip(&objects[i + 1..]) {
            if a.netns != b.netns || a.vrf == b.vrf {
                continue;
            }
            let mut overlaps = Vec::new();
            if let (Some(x), Some(y)) = (a.address, b.address) {
                let (px, py) = (prefix(x), prefix(y));
                if px.contains(py.network()) || py.contains(px.network()) {
                    overlaps.push(IpPrefix::V4(py.trunc()));
                }
            }
            if let (Some(x), Some(y)) = (a.address6, b.address6) {
                let (px, py) = (prefix6(x), prefix6(y));
                if px.contains(py.network()) || py.contains(px.network()) {
                    overlaps.push(IpPrefix::V6(py.trunc()));
                }
            }
            for subnet in overlaps {
                errors.push(ConfigError {
                    object: b_object.clone(),
                    problem: Problem::NamespaceOverlap {
                        netns: b.netns.clone().unwrap_or_default(),
                        subnet,
                        other: a_object.to_string(),
                    },
                });
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    for n in &mut namespaces {
        n.routes = routes_of(config, &mirrors, n);
    }
    Ok(MirrorPlan {
        mirrors,
        namespaces,
    })
}

fn prefix((addr, len): (Ipv4Addr, u8)) -> Ipv4Prefix {
    Ipv4Prefix::new(addr, len).expect("a compiled attachment address")
}

fn prefix6((addr, len): (Ipv6Addr, u8)) -> Ipv6Prefix {
    Ipv6Prefix::new(addr, len).expect("a compiled attachment address")
}

/// The kernel routes of namespace `n`: defaults into the VRF's first mirror when the
/// namespace holds one VRF; otherwise each static route of its tables, by the mirror whose
/// subnet holds the route's next hop, else the VRF's first mirror.
fn routes_of(config: &Config, mirrors: &[MirrorSpec], n: &Namespace) -> Vec<KernelRoute> {
    let here: Vec<&MirrorSpec> = mirrors
        .iter()
        .filter(|m| m.netns == n.name && m.carries.is_some())
        .collect();
    if n.name.is_some() && n.vrfs.len() == 1 {
        let Some(first) = here.first() else {
            return Vec::new();
        };
        return ["0.0.0.0/0", "::/0"]
            .iter()
            .filter_map(|p| p.parse().ok())
            .map(|prefix| KernelRoute {
                prefix,
                mirror: first.name.clone(),
            })
            .collect();
    }
    let mut routes = Vec::new();
    for vrf in &n.vrfs {
        let table = if n.name.is_none() {
            &config.routes
        } else {
            match config.vrfs.iter().find(|v| &v.name == vrf) {
                Some(v) => &v.routes,
                None => continue,
            }
        };
        let of_vrf: Vec<&&MirrorSpec> = here.iter().filter(|m| &m.vrf == vrf).collect();
        for r in table {
            let Ok(dest) = r.prefix.parse::<IpPrefix>() else {
                continue;
            };
            let by_subnet = of_vrf.iter().find(|m| match r.via.parse::<IpAddr>() {
                Ok(IpAddr::V4(via)) => m.address.is_some_and(|a| prefix(a).contains(via)),
                Ok(IpAddr::V6(via)) => m.address6.is_some_and(|a| prefix6(a).contains(via)),
                Err(_) => false,
            });
            if let Some(m) = by_subnet.or(of_vrf.first()) {
                routes.push(KernelRoute {
                    prefix: dest,
                    mirror: m.name.clone(),
                });
            }
        }
    }
    routes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::{compile, Offline};

    fn example() -> String {
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/dx-pe.toml"
        ))
        .expect("example config")
    }

    fn plan_of(text: &str) -> Result<MirrorPlan, Vec<ConfigError>> {
        let config = Config::parse(text, "test").expect("parses");
        compile(&config, &Offline)
            .map(|c| c.mirrors)
            .map_err(|e| e.0)
    }

    #[test]
    fn the_example_gets_a_mirror_per_core_port_and_attachment() {
        let text = example().replace(
            "ttl_mode = \"uniform\"",
            "ttl_mode = \"uniform\"\naddress = \"198.18.255.1\"",
        );
        let p = plan_of(&text).expect("plans");
        let names: Vec<(Option<&str>, &str, &str)> = p
            .mirrors
            .iter()
            .map(|m| (m.netns.as_deref(), m.name.as_str(), m.vrf.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                (None, "cp-core0", "global"),
                (Some("pe-dx-vpc-a"), "dx0.101", "vpc-a"),
                (Some("pe-dx-vpc-b"), "dx0.102", "vpc-b"),
                (None, "xpe-lo", "global"),
            ]
        );
        let a = &p.mirrors[1];
        assert_eq!(a.address, Some(("169.254.10.1".parse().unwrap(), 30)));
        assert_eq!(a.mtu, 9001);
        assert_eq!(a.mac.to_string(), "02:00:00:00:01:02");
        // One VRF per namespace: default routes into xpe.
        let ns = &p.namespaces[1];
        assert_eq!(ns.name.as_deref(), Some("pe-dx-vpc-a"));
        assert_eq!(
            p.batch(ns),
            "link set lo up\n\
             neigh replace fe80::78:7065 lladdr 02:00:00:00:01:02 dev dx0.101 nud permanent\n\
             route replace 0.0.0.0/0 via inet6 fe80::78:7065 dev dx0.101\n\
             route replace ::/0 via fe80::78:7065 dev dx0.101\n"
        );
        let prefixed = p.clone().with_prefix("t1-");
        assert_eq!(prefixed.mirrors[1].netns.as_deref(), Some("t1-pe-dx-vpc-a"));
        assert_eq!(prefixed.mirrors[0].netns, None);
    }

    #[test]
    fn long_names_are_cut_to_fit_and_clashes_named() {
        assert_eq!(fit("averyverylongif", ".4094"), "averyveryl.4094");
        assert_eq!(fit("core0", ""), "core0");
        let text = example().replace(
            "vlan = 102\naddress",
            "vlan = 102\nmirror = \"dx0.101\"\naddress",
        );
        // Different namespaces: no clash.
        assert!(plan_of(&text).is_ok());
        let shared = text.replace(
            "name = \"vpc-b\"",
            "name = \"vpc-b\"\nnamespace = \"pe-dx-vpc-a\"",
        );
        let errors = plan_of(&shared).expect_err("clash");
        let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert!(
            text.iter().any(|t| t.contains(
                "mirror dx0.101 is also the mirror of vrf \"vpc-a\" attachment dx0 VLAN 101"
            )),
            "{text:?}"
        );
        assert!(
            text.iter().any(|t| t.contains("169.254.10.0/30")
                && t.contains("overlaps")
                && t.contains("vrf \"vpc-a\" attachment dx0 VLAN 101")),
            "{text:?}"
        );
    }

    #[test]
    fn a_shared_namespace_gets_static_routes() {
        let text = example()
            .replace(
                "name = \"vpc-b\"",
                "name = \"vpc-b\"\nnamespace = \"pe-dx-vpc-a\"",
            )
            .replace(
                "vlan = 102\naddress = \"169.254.10.1/30\"",
                "vlan = 102\naddress = \"169.254.11.1/30\"",
            )
            .replace(
                "[[vrf.route]]\nprefix = \"198.18.10.0/24\"\nvia = \"169.254.10.2\"\n\n[[vrf.route]]\nprefix = \"198.19.20.0/24\"\nvia = \"198.18.0.2\"\nlabels = [16001, 2002]",
                "[[vrf.route]]\nprefix = \"198.18.11.0/24\"\nvia = \"169.254.11.2\"",
            )
            .replace("ip = \"169.254.10.2\"             # the same", "ip = \"169.254.11.2\"             # the same");
        let p = plan_of(&text).expect("plans");
        let ns = &p.namespaces[1];
        assert_eq!(ns.vrfs, ["vpc-a", "vpc-b"]);
        let routes: Vec<String> = ns
            .routes
            .iter()
            .map(|r| format!("{} {}", r.prefix, r.mirror))
            .collect();
        assert_eq!(
            routes,
            [
                "198.18.10.0/24 dx0.101",
                "198.19.20.0/24 dx0.101",
                "2001:db8:20::/48 dx0.101",
                "198.18.11.0/24 dx0.102"
            ]
        );
    }

    /// The example's tables, and a TCP/IPv4 segment 169.254.10.2 -> DST port 179.
    fn example_tables() -> Snapshot {
        let config = Config::parse(&example(), "test").expect("parses");
        compile(&config, &Offline).expect("compiles").snapshot
    }

    fn segment(dst: [u8; 4]) -> Vec<u8> {
        let mut ip = vec![0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0, 169, 254, 10, 2];
        ip.extend_from_slice(&dst);
        let sum = xpe_dataplane::wire::checksum::compute(&ip);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        ip.extend_from_slice(&[0x9c, 0x40, 0, 179]);
        ip.extend_from_slice(&[0; 16]);
        ip
    }

    #[test]
    fn the_kernel_gets_frames_untagged_and_unlabelled() {
        use xpe_dataplane::pipeline::punt::{for_kernel, KernelPath};
        let snap = example_tables();
        let dx0 = snap.port_by_name("dx0").unwrap();
        let core0 = snap.port_by_name("core0").unwrap();
        let ip = segment([169, 254, 10, 1]);
        // On VLAN 102: the tag goes, the attachment picks the mirror.
        let mut tagged = vec![2, 0, 0, 0, 1, 2, 2, 0, 0, 0, 0xbb, 1, 0x81, 0, 0, 102, 8, 0];
        tagged.extend_from_slice(&ip);
        let mut out = Vec::new();
        let path = for_kernel(&snap, dx0, &tagged, &mut out).expect("for the kernel");
        let att = snap.port(dx0).attachment(102).unwrap();
        assert_eq!(path, KernelPath::Attachment(att));
        assert_eq!(&out[..12], &tagged[..12]);
        assert_eq!(&out[12..14], &[8, 0]);
        assert_eq!(&out[14..], &ip[..]);
        // From the core under vpc-b's VPN label 1002: the labels go, the VRF picks the mirror.
        let mut labelled = vec![2, 0, 0, 0, 1, 1, 2, 0, 0, 0, 2, 1, 0x88, 0x47];
        labelled
            .extend_from_slice(&xpe_dataplane::wire::mpls::encode(1002, 0, true, 63).to_be_bytes());
        labelled.extend_from_slice(&ip);
        let path = for_kernel(&snap, core0, &labelled, &mut out).expect("for the kernel");
        assert_eq!(path, KernelPath::Vrf(snap.vrf_by_name("vpc-b").unwrap()));
        assert_eq!(&out[12..14], &[8, 0]);
        assert_eq!(&out[14..], &ip[..]);
        // A transit label is not ours to pop for the kernel; a VLAN without attachment has no
        // mirror.
        labelled[14..18]
            .copy_from_slice(&xpe_dataplane::wire::mpls::encode(16002, 0, true, 63).to_be_bytes());
        assert_eq!(for_kernel(&snap, core0, &labelled, &mut out), None);
        tagged[15] = 103;
        assert_eq!(for_kernel(&snap, dx0, &tagged, &mut out), None);
    }

    #[test]
    fn what_the_kernel_routes_through_xpe_stays_in_its_vrf() {
        use xpe_dataplane::pipeline::{route_from_kernel, Counters, DropReason, Frame, Verdict};
        let snap = example_tables();
        let dx0 = snap.port_by_name("dx0").unwrap();
        let core0 = snap.port_by_name("core0").unwrap();
        // vpc-b's kernel sends to a remote site through xpe's MAC: labels 16001/2002 out of
        // core0, the IP packet as the kernel made it (TTL kept: we originate it).
        let mut ip = segment([198, 19, 20, 10]);
        ip[12..16].copy_from_slice(&[169, 254, 10, 1]);
        ip[10..12].fill(0);
        let sum = xpe_dataplane::wire::checksum::compute(&ip[..20]);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        let mut frame = vec![2, 0, 0, 0, 1, 2, 2, 0, 0, 0, 1, 2, 8, 0];
        frame.extend_from_slice(&ip);
        let mut buf = vec![0u8; 64];
        buf.extend_from_slice(&frame);
        let len = frame.len();
        let att_b = snap.port(dx0).attachment(102).unwrap();
        let mut counters = Counters::new(snap.ports().len());
        let mut f = Frame::new(&mut buf, 64, len).unwrap();
        assert_eq!(
            route_from_kernel(&snap, att_b, &mut f, &mut counters),
            Verdict::Forward(core0)
        );
        let out = f.data();
        assert_eq!(&out[12..14], &[0x88, 0x47]);
        let labels: Vec<u32> = out[14..22]
            .chunks(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) >> 12)
            .collect();
        assert_eq!(labels, [16001, 2002]);
        assert_eq!(out[22 + 8], 64, "the kernel's TTL is kept");
        // For one of our own addresses: never looped back.
        let mut own = frame.clone();
        own[14 + 16..14 + 20].copy_from_slice(&[169, 254, 10, 1]);
        own[14 + 10..14 + 12].fill(0);
        let sum = xpe_dataplane::wire::checksum::compute(&own[14..34]);
        own[14 + 10..14 + 12].copy_from_slice(&sum.to_be_bytes());
        let mut buf = vec![0u8; 64];
        buf.extend_from_slice(&own);
        let mut f = Frame::new(&mut buf, 64, len).unwrap();
        assert_eq!(
            route_from_kernel(&snap, att_b, &mut f, &mut counters),
            Verdict::Drop(DropReason::FromKernelNotRouted)
        );
        assert_eq!(counters.forwarded, 1);
        assert_eq!(counters.drop_count(DropReason::FromKernelNotRouted), 1);
        // A runt is counted too (the fuzz target found it uncounted once).
        let mut runt = vec![0u8; 64 + 5];
        let mut f = Frame::new(&mut runt, 64, 5).unwrap();
        assert_eq!(
            route_from_kernel(&snap, att_b, &mut f, &mut counters),
            Verdict::Drop(DropReason::Truncated)
        );
        assert_eq!(counters.drop_count(DropReason::Truncated), 1);
    }

    #[test]
    fn loopback_macs_are_unicast_and_local() {
        let m = loopback_mac("pe-dx");
        assert_eq!(m.0[0] & 3, 2);
    }
}

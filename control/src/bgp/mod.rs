//! BGP/MPLS IP VPNs (RFC 4364, RFC 4659) through GoBGP: what the config asks for, checked
//! and planned ([`plan`]), and the routes in the shapes xpe and GoBGP's API exchange them
//! ([`wire`]).
//!
//! The design (docs/bgp.md): one gobgpd for the core, in the router's namespace, speaking
//! VPNv4/VPNv6 to the core neighbours (usually route reflectors); and one gobgpd per VRF that
//! has CE neighbours, in that VRF's mirror namespace, speaking plain IPv4/IPv6 unicast to its
//! CEs. GoBGP's own VRFs are never used: xpe does the route-target import and export between
//! the speakers, originates every VPN route itself with its own VPN label and its router
//! address as next hop, and so no VPN route with a label GoBGP made up (0) can leave the PE.
//! The per-VRF speakers are what the namespaces demand: two VRFs may use the same peering
//! addresses, and one gobgpd lives in one network namespace.

pub mod wire;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;
use std::time::Duration;

use xpe_dataplane::tables::{IpPrefix, Snapshot, VrfId};
use xpe_dataplane::wire::mpls::Label;

use crate::compile::{ConfigError, Object, Problem};
use crate::config::{BgpNeighbor, Config};
use crate::mirrors::MirrorPlan;

/// A route distinguisher or a route target's value, in one of the three RFC 4364 §4.2 forms:
/// `ASN:N` with a 2-octet ASN and a 4-octet number, `IP:N`, or `ASN:N` with a 4-octet ASN
/// and a 2-octet number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tag {
    /// Type 0: 2-octet ASN, 4-octet number.
    #[allow(missing_docs)]
    As2 { asn: u16, n: u32 },
    /// Type 1: IPv4 address, 2-octet number.
    #[allow(missing_docs)]
    Ip { ip: Ipv4Addr, n: u16 },
    /// Type 2: 4-octet ASN, 2-octet number.
    #[allow(missing_docs)]
    As4 { asn: u32, n: u16 },
}

impl FromStr for Tag {
    type Err = String;

    fn from_str(s: &str) -> Result<Tag, String> {
        let bad = || {
            format!(
                "\"{s}\" is not ASN:N or IPV4:N (like 65000:101, 4200000000:7 or 198.51.100.1:7)"
            )
        };
        let (admin, n) = s.trim().rsplit_once(':').ok_or_else(bad)?;
        if let Ok(ip) = admin.parse::<Ipv4Addr>() {
            let n = n
                .parse::<u16>()
                .map_err(|_| format!("\"{s}\": after an IPv4 address the number is 0 to 65535"))?;
            return Ok(Tag::Ip { ip, n });
        }
        let asn = admin.parse::<u32>().map_err(|_| bad())?;
        match u16::try_from(asn) {
            Ok(asn) => Ok(Tag::As2 {
                asn,
                n: n.parse().map_err(|_| bad())?,
            }),
            Err(_) => Ok(Tag::As4 {
                asn,
                n: n.parse().map_err(|_| {
                    format!("\"{s}\": after a 4-octet ASN the number is 0 to 65535")
                })?,
            }),
        }
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tag::As2 { asn, n } => write!(f, "{asn}:{n}"),
            Tag::Ip { ip, n } => write!(f, "{ip}:{n}"),
            Tag::As4 { asn, n } => write!(f, "{asn}:{n}"),
        }
    }
}

/// A BGP neighbour, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Its address.
    pub address: IpAddr,
    /// Its ASN.
    pub asn: u32,
    /// TCP MD5 password.
    pub password: Option<String>,
    /// Our address for the session.
    pub source: Option<IpAddr>,
}

/// What BGP does for one VRF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VrfBgp {
    /// The VRF.
    pub vrf: VrfId,
    /// Its name.
    pub name: String,
    /// Route distinguisher of the VPN routes it exports.
    pub rd: Option<Tag>,
    /// Route targets it imports.
    pub import: Vec<Tag>,
    /// Route targets its VPN routes carry (empty: it exports nothing).
    pub export: Vec<Tag>,
    /// The VPN label its routes carry: its `table_label`.
    pub label: Option<Label>,
    /// Its CE neighbours.
    pub ces: Vec<Peer>,
    /// What it exports besides what its CEs announce: its connected subnets and its static
    /// routes through its attachments (not those into the core, which lead to other PEs).
    pub originated: Vec<IpPrefix>,
}

/// The BGP of a config: the router's part and each VRF's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpPlan {
    /// The router's ASN.
    pub asn: u32,
    /// The router id.
    pub router_id: Ipv4Addr,
    /// The next hop of the VPN routes xpe originates: the router address.
    pub next_hop: Ipv4Addr,
    /// How long routes of a GoBGP that died are kept after it is back.
    pub stale_time: Duration,
    /// The gobgpd program.
    pub program: String,
    /// Core neighbours (VPNv4, VPNv6).
    pub core: Vec<Peer>,
    /// VRFs that import, export or have CE neighbours, in VRF order.
    pub vrfs: Vec<VrfBgp>,
}

/// What is wrong with a BGP part of the config.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BgpProblem {
    /// `[bgp]` without a router address.
    #[error(
        "needs [router] address: it is the next hop of this PE's VPN routes and its router id"
    )]
    NoRouterAddress,
    /// An ASN out of range.
    #[error("asn {0} is not 1 to 4294967295 (and not 23456, AS_TRANS)")]
    Asn(i64),
    /// A router id that is not an IPv4 address.
    #[error("router_id \"{0}\" is not an IPv4 address")]
    RouterId(String),
    /// A stale time out of range.
    #[error("stale_time {0} is not 1 to 3600 seconds")]
    StaleTime(i64),
    /// An address that is not one.
    #[error("address \"{0}\" is not an IP address")]
    Address(String),
    /// A source address that is not one.
    #[error("source \"{0}\" is not an IP address")]
    Source(String),
    /// Two neighbours with one address.
    #[error("defined twice")]
    NeighborTwice,
    /// A password the kernel refuses (TCP_MD5SIG_MAXKEYLEN).
    #[error("password is longer than 80 bytes (the kernel's TCP MD5 key limit)")]
    Password,
    /// A CE neighbour not on any of the VRF's attachment subnets.
    #[error("is not on a subnet of the VRF's attachments ({0})")]
    NotOnAttachment(String),
    /// A CE neighbour at one of our own addresses.
    #[error("is this router's own address on the attachment")]
    OwnAddress,
    /// A VRF that uses BGP while the config has no `[bgp]`.
    #[error("uses BGP ({0}), so the config needs a [bgp] section with the router's asn")]
    NoBgp(&'static str),
    /// A malformed RD or route target.
    #[error("{what} {error}")]
    Tag {
        /// `rd`, `import` or `export`.
        what: &'static str,
        /// Why.
        error: String,
    },
    /// Exporting without an RD.
    #[error("exports VPN routes (export = [...]) and so needs an rd")]
    ExportWithoutRd,
    /// Exporting without a VPN label.
    #[error("exports VPN routes and so needs a table_label: the VPN label its routes carry")]
    ExportWithoutLabel,
    /// Two VRFs with CE neighbours whose mirrors share a namespace (one gobgpd per namespace).
    #[error("has CE neighbours, and so has vrf \"{other}\" in the same namespace {netns}: each VRF with CEs needs a namespace of its own (its gobgpd listens there)")]
    SharedNamespace {
        /// The namespace.
        netns: String,
        /// The other VRF.
        other: String,
    },
    /// Two VRFs with one RD.
    #[error("rd {rd} is also vrf \"{other}\"'s: each VRF needs its own")]
    RdTwice {
        /// The RD.
        rd: Tag,
        /// The other VRF.
        other: String,
    },
}

/// The largest TCP MD5 key Linux takes (TCP_MD5SIG_MAXKEYLEN).
const MAX_PASSWORD: usize = 80;

/// The stale time when the config gives none (RFC 4724's restart time is often 120 s).
pub const DEFAULT_STALE: Duration = Duration::from_secs(120);

/// Checks the BGP parts of `config` against its compiled tables: `None` when it has none.
pub fn plan(
    config: &Config,
    snap: &Snapshot,
    mirrors: &MirrorPlan,
) -> Result<Option<BgpPlan>, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let mut err = |object: Object, p: BgpProblem| {
        errors.push(ConfigError {
            object,
            problem: Problem::Bgp(p),
        })
    };
    let Some(bgp) = &config.bgp else {
        for v in &config.vrfs {
            let uses = if !v.bgp_neighbors.is_empty() {
                Some("bgp_neighbor")
            } else if v.rd.is_some() || !v.import.is_empty() || !v.export.is_empty() {
                Some("rd or route targets")
            } else {
                None
            };
            if let Some(uses) = uses {
                err(Object::Vrf(v.name.clone()), BgpProblem::NoBgp(uses));
            }
        }
        return if errors.is_empty() {
            Ok(None)
        } else {
            Err(errors)
        };
    };
    let asn = asn_of(bgp.asn);
    if asn.is_none() {
        err(Object::Bgp, BgpProblem::Asn(bgp.asn));
    }
    let asn = asn.unwrap_or(0);
    let address = config
        .router
        .address
        .as_ref()
        .and_then(|a| a.parse::<Ipv4Addr>().ok());
    if config.router.address.is_none() {
        err(Object::Bgp, BgpProblem::NoRouterAddress);
    }
    let router_id = match &bgp.router_id {
        Some(t) => match t.parse::<Ipv4Addr>() {
            Ok(a) => Some(a),
            Err(_) => {
                err(Object::Bgp, BgpProblem::RouterId(t.clone()));
                None
            }
        },
        None => address,
    };
    let stale_time = match bgp.stale_time {
        None => DEFAULT_STALE,
        Some(s @ 1..=3600) => Duration::from_secs(s as u64),
        Some(s) => {
            err(Object::Bgp, BgpProblem::StaleTime(s));
            DEFAULT_STALE
        }
    };
    let core = peers(&bgp.neighbors, None, asn, &mut err);
    let mut vrfs = Vec::new();
    let mut rds: Vec<(Tag, String)> = Vec::new();
    for (j, v) in config.vrfs.iter().enumerate() {
        let vrf = VrfId(j as u16 + 1);
        let obj = || Object::Vrf(v.name.clone());
        let tags =
            |what: &'static str, list: &[String], err: &mut dyn FnMut(Object, BgpProblem)| {
                list.iter()
                    .filter_map(|t| match t.parse::<Tag>() {
                        Ok(t) => Some(t),
                        Err(error) => {
                            err(obj(), BgpProblem::Tag { what, error });
                            None
                        }
                    })
                    .collect::<Vec<Tag>>()
            };
        let rd =
            v.rd.as_ref()
                .and_then(|t| tags("rd", std::slice::from_ref(t), &mut err).pop());
        let import = tags("import", &v.import, &mut err);
        let export = tags("export", &v.export, &mut err);
        if let Some(rd) = rd {
            if let Some((_, other)) = rds.iter().find(|(r, _)| *r == rd) {
                err(
                    obj(),
                    BgpProblem::RdTwice {
                        rd,
                        other: other.clone(),
                    },
                );
            }
            rds.push((rd, v.name.clone()));
        }
        let label = snap.vrf(vrf).table_label;
        if !v.export.is_empty() {
            if v.rd.is_none() {
                err(obj(), BgpProblem::ExportWithoutRd);
            }
            if label.is_none() {
                err(obj(), BgpProblem::ExportWithoutLabel);
            }
        }
        let ces = peers(&v.bgp_neighbors, Some((snap, vrf, &v.name)), asn, &mut err);
        if v.rd.is_none() && import.is_empty() && export.is_empty() && ces.is_empty() {
            continue;
        }
        vrfs.push(VrfBgp {
            vrf,
            name: v.name.clone(),
            rd,
            import,
            export,
            label,
            ces,
            originated: originated(config, snap, vrf),
        });
    }
    for n in &mirrors.namespaces {
        let with_ces: Vec<&VrfBgp> = vrfs
            .iter()
            .filter(|v| !v.ces.is_empty() && n.vrfs.contains(&v.name))
            .collect();
        if let [first, rest @ ..] = with_ces.as_slice() {
            for v in rest {
                err(
                    Object::Vrf(v.name.clone()),
                    BgpProblem::SharedNamespace {
                        netns: n.name.clone().unwrap_or_else(|| "(the router's)".into()),
                        other: first.name.clone(),
                    },
                );
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Some(BgpPlan {
        asn,
        router_id: router_id.unwrap_or(Ipv4Addr::UNSPECIFIED),
        next_hop: address.unwrap_or(Ipv4Addr::UNSPECIFIED),
        stale_time,
        program: bgp.gobgpd.clone().unwrap_or_else(|| "gobgpd".into()),
        core,
        vrfs,
    }))
}

/// A valid ASN.
fn asn_of(n: i64) -> Option<u32> {
    u32::try_from(n).ok().filter(|&a| a != 0 && a != 23456)
}

/// Checks a list of neighbours: the core's (`on` is `None`) or a VRF's CEs, which must sit on
/// one of its attachment subnets.
fn peers(
    list: &[BgpNeighbor],
    on: Option<(&Snapshot, VrfId, &str)>,
    router_asn: u32,
    err: &mut dyn FnMut(Object, BgpProblem),
) -> Vec<Peer> {
    let mut out: Vec<Peer> = Vec::new();
    for n in list {
        let obj = Object::BgpNeighbor {
            vrf: on.map(|(_, _, name)| name.to_string()),
            address: n.address.clone(),
        };
        let Ok(address) = n.address.trim().parse::<IpAddr>() else {
            err(obj, BgpProblem::Address(n.address.clone()));
            continue;
        };
        let asn = match n.asn {
            None => router_asn,
            Some(a) => match asn_of(a) {
                Some(a) => a,
                None => {
                    err(obj.clone(), BgpProblem::Asn(a));
                    router_asn
                }
            },
        };
        if n.password.as_ref().is_some_and(|p| p.len() > MAX_PASSWORD) {
            err(obj.clone(), BgpProblem::Password);
        }
        let source = match &n.source {
            None => None,
            Some(s) => match s.trim().parse::<IpAddr>() {
                Ok(a) => Some(a),
                Err(_) => {
                    err(obj.clone(), BgpProblem::Source(s.clone()));
                    None
                }
            },
        };
        if let Some((snap, vrf, _)) = on {
            let atts: Vec<_> = snap.attachments().iter().filter(|a| a.vrf == vrf).collect();
            let on_subnet = atts.iter().find(|a| match address {
                IpAddr::V4(ip) => a.address.is_some_and(|p| p.contains(ip)),
                IpAddr::V6(ip) => a.address6.is_some_and(|p| p.contains(ip)),
            });
            match on_subnet {
                None => {
                    let subnets: Vec<String> = atts
                        .iter()
                        .flat_map(|a| {
                            a.address
                                .map(|p| p.trunc().to_string())
                                .into_iter()
                                .chain(a.address6.map(|p| p.trunc().to_string()))
                        })
                        .collect();
                    let subnets = if subnets.is_empty() {
                        "it has none with an address".to_string()
                    } else {
                        subnets.join(", ")
                    };
                    err(obj.clone(), BgpProblem::NotOnAttachment(subnets));
                }
                Some(a) => {
                    let own = match address {
                        IpAddr::V4(ip) => a.address.is_some_and(|p| p.addr() == ip),
                        IpAddr::V6(ip) => a.address6.is_some_and(|p| p.addr() == ip),
                    };
                    if own {
                        err(obj.clone(), BgpProblem::OwnAddress);
                    }
                }
            }
        }
        if out.iter().any(|p| p.address == address) {
            err(obj, BgpProblem::NeighborTwice);
            continue;
        }
        out.push(Peer {
            address,
            asn,
            password: n.password.clone(),
            source,
        });
    }
    out
}

/// The prefixes a VRF originates into the VPN: its attachments' subnets and its static
/// routes that leave through an attachment (no labels).
fn originated(config: &Config, snap: &Snapshot, vrf: VrfId) -> Vec<IpPrefix> {
    let mut out: Vec<IpPrefix> = Vec::new();
    for a in snap.attachments().iter().filter(|a| a.vrf == vrf) {
        out.extend(a.address.map(|p| IpPrefix::V4(p.trunc())));
        out.extend(a.address6.map(|p| IpPrefix::V6(p.trunc())));
    }
    if let Some(v) = config.vrfs.get(usize::from(vrf.0) - 1) {
        for r in v.routes.iter().filter(|r| r.labels.is_empty()) {
            if let Ok(p) = crate::resolve::prefix(&r.prefix) {
                out.push(p);
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use crate::compile::{compile, Offline};
    use crate::config::Config;

    const PE: &str = include_str!("../../tests/live/bgp-pe1.toml");

    fn errors(text: &str) -> Vec<String> {
        let config = Config::parse(text, "test").expect("parses");
        match compile(&config, &Offline) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        }
    }

    fn with(from: &str, to: &str) -> String {
        assert!(PE.contains(from), "{from}");
        PE.replacen(from, to, 1)
    }

    #[test]
    fn the_test_pe_plans_two_vrfs_with_their_ces_and_originated_subnets() {
        let config = Config::parse(PE, "test").unwrap();
        let plan = compile(&config, &Offline).unwrap().bgp.unwrap();
        assert_eq!(plan.asn, 65000);
        assert_eq!(plan.router_id.to_string(), "198.51.100.1");
        assert_eq!(plan.core.len(), 1);
        assert_eq!(plan.core[0].asn, 65000, "a core neighbour defaults to iBGP");
        let names: Vec<&str> = plan.vrfs.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["vpc-a", "vpc-b"]);
        assert_eq!(
            plan.vrfs[1].ces[0].password.as_deref(),
            Some("xpe-bgp-test")
        );
        assert_eq!(plan.vrfs[0].label.map(|l| l.get()), Some(1001));
        let originated: Vec<String> = plan.vrfs[0]
            .originated
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(originated, ["169.254.10.0/30"]);
    }

    #[test]
    fn bgp_config_errors_name_their_object() {
        for (from, to, want) in [
            ("asn = 65000", "asn = 0", "bgp: asn 0 is not 1 to 4294967295"),
            ("asn = 65000", "asn = 23456", "AS_TRANS"),
            ("stale_time = 6", "stale_time = 0", "bgp: stale_time 0 is not 1 to 3600 seconds"),
            ("address = \"198.18.0.3\"", "address = \"rr\"", "bgp neighbor rr: address \"rr\" is not an IP address"),
            ("rd = \"65000:1\"", "rd = \"65000\"", "vrf \"vpc-a\": rd \"65000\" is not ASN:N"),
            ("rd = \"65000:2\"", "rd = \"65000:1\"", "vrf \"vpc-b\": rd 65000:1 is also vrf \"vpc-a\"'s"),
            ("import = [\"65000:100\"]", "import = [\"x:1\"]", "vrf \"vpc-a\": import \"x:1\""),
            ("table_label = 1001\n", "", "vrf \"vpc-a\": exports VPN routes and so needs a table_label"),
            ("rd = \"65000:1\"\n", "", "vrf \"vpc-a\": exports VPN routes (export = [...]) and so needs an rd"),
            (
                "address = \"169.254.10.2\"\nasn = 64512\n\n",
                "address = \"169.254.99.2\"\nasn = 64512\n\n",
                "vrf \"vpc-a\" bgp neighbor 169.254.99.2: is not on a subnet of the VRF's attachments (169.254.10.0/30)",
            ),
            (
                "address = \"169.254.10.2\"\nasn = 64512\n\n",
                "address = \"169.254.10.1\"\nasn = 64512\n\n",
                "vrf \"vpc-a\" bgp neighbor 169.254.10.1: is this router's own address on the attachment",
            ),
            ("password = \"xpe-bgp-test\"", "password = \"\"\"\n0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890\"\"\"", "password is longer than 80 bytes"),
            ("address = \"198.51.100.1\"", "# no router address", "bgp: needs [router] address"),
        ] {
            let errs = errors(&with(from, to));
            assert!(errs.iter().any(|e| e.contains(want)), "{to}: want {want}, got {errs:?}");
        }
    }

    #[test]
    fn vrfs_that_use_bgp_need_a_bgp_section_and_their_own_namespace() {
        let start = PE.find("[bgp]").unwrap();
        let end = PE.find("[[interface]]").unwrap();
        let without = format!("{}{}", &PE[..start], &PE[end..]);
        let errs = errors(&without);
        assert!(
            errs.iter().any(|e| e == "vrf \"vpc-a\": uses BGP (bgp_neighbor), so the config needs a [bgp] section with the router's asn"),
            "{errs:?}"
        );
        let shared = PE
            .replace(
                "name = \"vpc-a\"\n",
                "name = \"vpc-a\"\nnamespace = \"cust\"\n",
            )
            .replace(
                "name = \"vpc-b\"\n",
                "name = \"vpc-b\"\nnamespace = \"cust\"\n",
            )
            .replace(
                "interface = \"b0\"\naddress = \"169.254.10.1/30\"",
                "interface = \"b0\"\naddress = \"169.254.11.1/30\"",
            )
            .replace(
                "address = \"169.254.10.2\"\nasn = 64512\npassword",
                "address = \"169.254.11.2\"\nasn = 64512\npassword",
            );
        let errs = errors(&shared);
        assert!(
            errs.iter().any(|e| e.starts_with("vrf \"vpc-b\": has CE neighbours, and so has vrf \"vpc-a\" in the same namespace cust")),
            "{errs:?}"
        );
    }
}

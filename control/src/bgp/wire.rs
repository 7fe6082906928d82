//! Routes in GoBGP's API shapes: the paths xpe adds (VPN routes to the core speaker, unicast
//! routes to a VRF's speaker) and the best paths it reads back, decoded.
//!
//! GoBGP's API carries NLRIs and attributes as `google.protobuf.Any`, each naming its
//! `apipb` message; [`pack`] and the decoders below are the only places that know the names.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use prost::Message;
use xpe_gobgp::apipb::{
    as_segment, family, AsPathAttribute, AsSegment, ExtendedCommunitiesAttribute, Family,
    FourOctetAsSpecificExtended, IPv4AddressSpecificExtended, IpAddressPrefix,
    LabeledVpnipAddressPrefix, MpReachNlriAttribute, NextHopAttribute, OriginAttribute, Path,
    RouteDistinguisherFourOctetAsn, RouteDistinguisherIpAddress, RouteDistinguisherTwoOctetAsn,
    TwoOctetAsSpecificExtended,
};
use xpe_gobgp::{prost, prost_types::Any};

use xpe_dataplane::tables::{IpPrefix, Ipv4Prefix, Ipv6Prefix};

use super::Tag;

/// The extended community sub-type of a route target (RFC 4360 §4).
const ROUTE_TARGET: u32 = 0x02;

/// `msg` as an `Any` naming its `apipb` type.
fn pack<M: Message>(name: &str, msg: &M) -> Any {
    Any {
        type_url: format!("type.googleapis.com/apipb.{name}"),
        value: msg.encode_to_vec(),
    }
}

/// The `apipb` type an `Any` holds.
fn type_of(any: &Any) -> &str {
    any.type_url.rsplit('.').next().unwrap_or_default()
}

fn unpack<M: Message + Default>(any: &Any) -> Result<M, String> {
    M::decode(any.value.as_slice()).map_err(|e| format!("undecodable {}: {e}", any.type_url))
}

/// The four address families xpe uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Afi {
    /// IPv4 unicast (CE sessions).
    Ipv4,
    /// IPv6 unicast (CE sessions).
    Ipv6,
    /// VPNv4 (RFC 4364).
    Vpnv4,
    /// VPNv6 (RFC 4659).
    Vpnv6,
}

impl Afi {
    /// The family as GoBGP names it.
    pub fn family(self) -> Family {
        let (afi, safi) = match self {
            Afi::Ipv4 => (family::Afi::Ip, family::Safi::Unicast),
            Afi::Ipv6 => (family::Afi::Ip6, family::Safi::Unicast),
            Afi::Vpnv4 => (family::Afi::Ip, family::Safi::MplsVpn),
            Afi::Vpnv6 => (family::Afi::Ip6, family::Safi::MplsVpn),
        };
        Family {
            afi: afi as i32,
            safi: safi as i32,
        }
    }

    /// The family of a GoBGP `Family`, if xpe uses it.
    pub fn of(f: &Family) -> Option<Afi> {
        let ip = f.afi == family::Afi::Ip as i32;
        let ip6 = f.afi == family::Afi::Ip6 as i32;
        let uni = f.safi == family::Safi::Unicast as i32;
        let vpn = f.safi == family::Safi::MplsVpn as i32;
        match (ip, ip6, uni, vpn) {
            (true, _, true, _) => Some(Afi::Ipv4),
            (_, true, true, _) => Some(Afi::Ipv6),
            (true, _, _, true) => Some(Afi::Vpnv4),
            (_, true, _, true) => Some(Afi::Vpnv6),
            _ => None,
        }
    }

    /// The unicast family of a prefix.
    pub fn unicast(prefix: IpPrefix) -> Afi {
        match prefix {
            IpPrefix::V4(_) => Afi::Ipv4,
            IpPrefix::V6(_) => Afi::Ipv6,
        }
    }

    /// The VPN family of a prefix.
    pub fn vpn(prefix: IpPrefix) -> Afi {
        match prefix {
            IpPrefix::V4(_) => Afi::Vpnv4,
            IpPrefix::V6(_) => Afi::Vpnv6,
        }
    }
}

/// A path GoBGP reported, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Learned {
    /// The family.
    pub afi: Afi,
    /// The prefix.
    pub prefix: IpPrefix,
    /// The route distinguisher (VPN families).
    pub rd: Option<Tag>,
    /// The label stack of the NLRI (VPN families), as 20-bit values.
    pub labels: Vec<u32>,
    /// The next hop (an IPv4-mapped IPv6 next hop is given as IPv4).
    pub next_hop: Option<IpAddr>,
    /// The route targets.
    pub targets: Vec<Tag>,
    /// The AS path, to carry on.
    pub as_path: Option<AsPathAttribute>,
    /// A withdrawal.
    pub withdraw: bool,
    /// Added through the API to this GoBGP (one of xpe's own), not learned from a peer.
    pub local: bool,
    /// The peer it came from, as GoBGP names it.
    pub neighbor: String,
}

/// Decodes one of GoBGP's paths; an error names what could not be read.
pub fn decode(path: &Path) -> Result<Learned, String> {
    let afi = path
        .family
        .as_ref()
        .and_then(Afi::of)
        .ok_or_else(|| format!("a path of family {:?}, which xpe does not use", path.family))?;
    let nlri = path.nlri.as_ref().ok_or("a path without an NLRI")?;
    let (prefix, rd, labels) = match type_of(nlri) {
        "IPAddressPrefix" => {
            let p: IpAddressPrefix = unpack(nlri)?;
            (prefix_of(&p.prefix, p.prefix_len)?, None, Vec::new())
        }
        "LabeledVPNIPAddressPrefix" => {
            let p: LabeledVpnipAddressPrefix = unpack(nlri)?;
            let rd = p.rd.as_ref().map(rd_of).transpose()?;
            (prefix_of(&p.prefix, p.prefix_len)?, rd, p.labels)
        }
        other => return Err(format!("an NLRI of type {other}, which xpe does not use")),
    };
    let mut learned = Learned {
        afi,
        prefix,
        rd,
        labels,
        next_hop: None,
        targets: Vec::new(),
        as_path: None,
        withdraw: path.is_withdraw,
        local: path.neighbor_ip.is_empty() || path.neighbor_ip == "<nil>" || !path.uuid.is_empty(),
        neighbor: path.neighbor_ip.clone(),
    };
    for attr in &path.pattrs {
        match type_of(attr) {
            "NextHopAttribute" => {
                let n: NextHopAttribute = unpack(attr)?;
                learned.next_hop = next_hop_of(&n.next_hop);
            }
            "MpReachNLRIAttribute" => {
                let m: MpReachNlriAttribute = unpack(attr)?;
                learned.next_hop = m.next_hops.first().and_then(|n| next_hop_of(n));
            }
            "ExtendedCommunitiesAttribute" => {
                let e: ExtendedCommunitiesAttribute = unpack(attr)?;
                learned.targets = e.communities.iter().filter_map(target_of).collect();
            }
            "AsPathAttribute" => learned.as_path = Some(unpack(attr)?),
            _ => {}
        }
    }
    Ok(learned)
}

fn prefix_of(text: &str, len: u32) -> Result<IpPrefix, String> {
    let bad = || format!("a prefix {text}/{len} that is not one");
    let len = u8::try_from(len).map_err(|_| bad())?;
    match text.parse::<IpAddr>().map_err(|_| bad())? {
        IpAddr::V4(a) => Ipv4Prefix::new(a, len).map(|p| IpPrefix::V4(p.trunc())),
        IpAddr::V6(a) => Ipv6Prefix::new(a, len).map(|p| IpPrefix::V6(p.trunc())),
    }
    .ok_or_else(bad)
}

/// A next hop; an IPv4-mapped IPv6 one (a VPNv6 route over an IPv4 core) as IPv4.
fn next_hop_of(text: &str) -> Option<IpAddr> {
    match text.parse::<IpAddr>().ok()? {
        IpAddr::V6(a) => Some(a.to_ipv4_mapped().map_or(IpAddr::V6(a), IpAddr::V4)),
        v4 => Some(v4),
    }
}

fn rd_of(any: &Any) -> Result<Tag, String> {
    match type_of(any) {
        "RouteDistinguisherTwoOctetASN" => {
            let r: RouteDistinguisherTwoOctetAsn = unpack(any)?;
            Ok(Tag::As2 {
                asn: u16::try_from(r.admin).map_err(|_| "an RD's ASN out of range")?,
                n: r.assigned,
            })
        }
        "RouteDistinguisherIPAddress" => {
            let r: RouteDistinguisherIpAddress = unpack(any)?;
            Ok(Tag::Ip {
                ip: r.admin.parse().map_err(|_| "an RD's address is not one")?,
                n: u16::try_from(r.assigned).map_err(|_| "an RD's number out of range")?,
            })
        }
        "RouteDistinguisherFourOctetASN" => {
            let r: RouteDistinguisherFourOctetAsn = unpack(any)?;
            Ok(Tag::As4 {
                asn: r.admin,
                n: u16::try_from(r.assigned).map_err(|_| "an RD's number out of range")?,
            })
        }
        other => Err(format!("an RD of type {other}")),
    }
}

/// A route target, if the community is one.
fn target_of(any: &Any) -> Option<Tag> {
    match type_of(any) {
        "TwoOctetAsSpecificExtended" => {
            let c: TwoOctetAsSpecificExtended = unpack(any).ok()?;
            (c.sub_type == ROUTE_TARGET).then_some(Tag::As2 {
                asn: u16::try_from(c.asn).ok()?,
                n: c.local_admin,
            })
        }
        "IPv4AddressSpecificExtended" => {
            let c: IPv4AddressSpecificExtended = unpack(any).ok()?;
            (c.sub_type == ROUTE_TARGET).then_some(Tag::Ip {
                ip: c.address.parse().ok()?,
                n: u16::try_from(c.local_admin).ok()?,
            })
        }
        "FourOctetAsSpecificExtended" => {
            let c: FourOctetAsSpecificExtended = unpack(any).ok()?;
            (c.sub_type == ROUTE_TARGET).then_some(Tag::As4 {
                asn: c.asn,
                n: u16::try_from(c.local_admin).ok()?,
            })
        }
        _ => None,
    }
}

fn rd_any(rd: Tag) -> Any {
    match rd {
        Tag::As2 { asn, n } => pack(
            "RouteDistinguisherTwoOctetASN",
            &RouteDistinguisherTwoOctetAsn {
                admin: u32::from(asn),
                assigned: n,
            },
        ),
        Tag::Ip { ip, n } => pack(
            "RouteDistinguisherIPAddress",
            &RouteDistinguisherIpAddress {
                admin: ip.to_string(),
                assigned: u32::from(n),
            },
        ),
        Tag::As4 { asn, n } => pack(
            "RouteDistinguisherFourOctetASN",
            &RouteDistinguisherFourOctetAsn {
                admin: asn,
                assigned: u32::from(n),
            },
        ),
    }
}

fn target_any(rt: Tag) -> Any {
    match rt {
        Tag::As2 { asn, n } => pack(
            "TwoOctetAsSpecificExtended",
            &TwoOctetAsSpecificExtended {
                is_transitive: true,
                sub_type: ROUTE_TARGET,
                asn: u32::from(asn),
                local_admin: n,
            },
        ),
        Tag::Ip { ip, n } => pack(
            "IPv4AddressSpecificExtended",
            &IPv4AddressSpecificExtended {
                is_transitive: true,
                sub_type: ROUTE_TARGET,
                address: ip.to_string(),
                local_admin: u32::from(n),
            },
        ),
        Tag::As4 { asn, n } => pack(
            "FourOctetAsSpecificExtended",
            &FourOctetAsSpecificExtended {
                is_transitive: true,
                sub_type: ROUTE_TARGET,
                asn,
                local_admin: u32::from(n),
            },
        ),
    }
}

/// ORIGIN: IGP for xpe's own routes, INCOMPLETE for what it carries from elsewhere.
fn origin(value: u32) -> Any {
    pack("OriginAttribute", &OriginAttribute { origin: value })
}

fn prefix_any(prefix: IpPrefix) -> Any {
    let (text, len) = text_of(prefix);
    pack(
        "IPAddressPrefix",
        &IpAddressPrefix {
            prefix_len: len,
            prefix: text,
        },
    )
}

fn text_of(prefix: IpPrefix) -> (String, u32) {
    match prefix {
        IpPrefix::V4(p) => (p.network().to_string(), u32::from(p.len())),
        IpPrefix::V6(p) => (p.network().to_string(), u32::from(p.len())),
    }
}

/// A VPN route of one of xpe's VRFs, as the core speaker is to announce it: `prefix` in
/// `rd` with xpe's `label`, the route targets, and the router address as next hop (IPv4
/// mapped for VPNv6, RFC 4659 §3.2.1.2). `as_path` carries what a CE announced.
pub fn vpn_path(
    prefix: IpPrefix,
    rd: Tag,
    label: u32,
    next_hop: Ipv4Addr,
    targets: &[Tag],
    as_path: Option<&AsPathAttribute>,
) -> Path {
    let afi = Afi::vpn(prefix);
    let (text, len) = text_of(prefix);
    let nlri = pack(
        "LabeledVPNIPAddressPrefix",
        &LabeledVpnipAddressPrefix {
            labels: vec![label],
            rd: Some(rd_any(rd)),
            prefix_len: len,
            prefix: text,
        },
    );
    let hop = match afi {
        Afi::Vpnv6 => next_hop.to_ipv6_mapped().to_string(),
        _ => next_hop.to_string(),
    };
    let pattrs = vec![
        origin(if as_path.is_some() { 2 } else { 0 }),
        pack(
            "MpReachNLRIAttribute",
            &MpReachNlriAttribute {
                family: Some(afi.family()),
                next_hops: vec![hop],
                nlris: vec![nlri.clone()],
            },
        ),
        pack(
            "ExtendedCommunitiesAttribute",
            &ExtendedCommunitiesAttribute {
                communities: targets.iter().map(|&t| target_any(t)).collect(),
            },
        ),
    ];
    path(afi, nlri, pattrs, as_path)
}

/// A route a VRF's speaker is to announce to its CEs: `prefix` with this speaker as next hop
/// (GoBGP puts its own address on an eBGP session) and the AS path the VPN route carried.
pub fn unicast_path(prefix: IpPrefix, as_path: Option<&AsPathAttribute>) -> Path {
    let afi = Afi::unicast(prefix);
    let nlri = prefix_any(prefix);
    let mut pattrs = vec![origin(if as_path.is_some() { 2 } else { 0 })];
    match prefix {
        IpPrefix::V4(_) => pattrs.push(pack(
            "NextHopAttribute",
            &NextHopAttribute {
                next_hop: Ipv4Addr::UNSPECIFIED.to_string(),
            },
        )),
        IpPrefix::V6(_) => pattrs.push(pack(
            "MpReachNLRIAttribute",
            &MpReachNlriAttribute {
                family: Some(afi.family()),
                next_hops: vec![Ipv6Addr::UNSPECIFIED.to_string()],
                nlris: vec![nlri.clone()],
            },
        )),
    }
    path(afi, nlri, pattrs, as_path)
}

/// A path of `afi` for `nlri` with `pattrs`, and the AS path if there is one.
fn path(afi: Afi, nlri: Any, mut pattrs: Vec<Any>, as_path: Option<&AsPathAttribute>) -> Path {
    if let Some(p) = as_path {
        pattrs.push(pack("AsPathAttribute", p));
    }
    Path {
        nlri: Some(nlri),
        pattrs,
        family: Some(afi.family()),
        ..Path::default()
    }
}

/// The ASNs of an AS path, in order, for `show bgp`.
pub fn as_numbers(path: &AsPathAttribute) -> Vec<u32> {
    path.segments
        .iter()
        .filter(|s: &&AsSegment| {
            s.r#type == as_segment::Type::AsSequence as i32
                || s.r#type == as_segment::Type::AsSet as i32
        })
        .flat_map(|s| s.numbers.iter().copied())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> IpPrefix {
        crate::resolve::prefix(s).unwrap()
    }

    #[test]
    fn tags_parse_in_all_three_forms_and_print_back() {
        for (text, tag) in [
            ("65000:101", Tag::As2 { asn: 65000, n: 101 }),
            (
                "4200000000:7",
                Tag::As4 {
                    asn: 4_200_000_000,
                    n: 7,
                },
            ),
            (
                "198.51.100.1:7",
                Tag::Ip {
                    ip: Ipv4Addr::new(198, 51, 100, 1),
                    n: 7,
                },
            ),
        ] {
            assert_eq!(text.parse::<Tag>().unwrap(), tag);
            assert_eq!(tag.to_string(), text);
        }
        for bad in [
            "65000",
            "x:1",
            "4200000000:70000",
            "198.51.100.1:65536",
            ":",
        ] {
            assert!(bad.parse::<Tag>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_vpn_path_decodes_to_what_was_put_in() {
        let rt = Tag::As2 { asn: 65000, n: 1 };
        let rd = Tag::Ip {
            ip: Ipv4Addr::new(198, 51, 100, 1),
            n: 101,
        };
        let as_path = AsPathAttribute {
            segments: vec![AsSegment {
                r#type: as_segment::Type::AsSequence as i32,
                numbers: vec![64512],
            }],
        };
        for prefix in [p("198.18.10.0/24"), p("2001:db8:10::/48")] {
            let path = vpn_path(
                prefix,
                rd,
                1001,
                Ipv4Addr::new(198, 51, 100, 1),
                &[rt],
                Some(&as_path),
            );
            let back = decode(&path).unwrap();
            assert_eq!(back.prefix, prefix);
            assert_eq!(back.rd, Some(rd));
            assert_eq!(back.labels, vec![1001]);
            assert_eq!(back.targets, vec![rt]);
            assert_eq!(
                back.next_hop,
                Some(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1))),
                "an IPv4-mapped next hop reads as IPv4"
            );
            assert_eq!(back.afi, Afi::vpn(prefix));
            assert_eq!(as_numbers(back.as_path.as_ref().unwrap()), vec![64512]);
            assert!(back.local, "no neighbour: added through the API");
        }
    }

    #[test]
    fn a_unicast_path_decodes_and_a_peers_path_is_not_local() {
        let mut path = unicast_path(p("198.19.20.0/24"), None);
        path.neighbor_ip = "169.254.10.2".into();
        let back = decode(&path).unwrap();
        assert_eq!(back.prefix, p("198.19.20.0/24"));
        assert_eq!(back.next_hop, Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)));
        assert!(!back.local);
        assert!(back.rd.is_none() && back.labels.is_empty());
    }

    #[test]
    fn undecodable_paths_are_errors_not_panics() {
        let mut path = unicast_path(p("198.19.20.0/24"), None);
        path.family = Some(Family { afi: 25, safi: 70 });
        assert!(decode(&path).unwrap_err().contains("family"));
        let mut path = unicast_path(p("198.19.20.0/24"), None);
        path.nlri.as_mut().unwrap().value = vec![0xff, 0xff, 0xff];
        assert!(decode(&path).is_err());
        let mut path = unicast_path(p("198.19.20.0/24"), None);
        path.nlri = Some(pack(
            "IPAddressPrefix",
            &IpAddressPrefix {
                prefix_len: 40,
                prefix: "198.19.20.0".into(),
            },
        ));
        assert!(decode(&path).unwrap_err().contains("not one"));
    }
}

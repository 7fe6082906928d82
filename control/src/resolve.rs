//! The checks of one route that the config compiler and the running daemon share: its prefix,
//! its label stack, and the attachment its next hop (IPv4 or IPv6) is on. The compiler runs them over a whole
//! config; `route add` and `route load` run them against the running tables, so a route is
//! held to the same rules whichever way it arrives.

use std::net::IpAddr;

use xpe_dataplane::tables::{Attachment, AttachmentId, IpPrefix, LabelStack, VrfId, MAX_PUSH};
use xpe_dataplane::wire::mpls::Label;

use crate::rib::Source;

/// Labels a config may assign: 0..15 are reserved (RFC 3032 §2.1).
pub const LABEL_RANGE: std::ops::RangeInclusive<i64> = 16..=1_048_575;

/// Why a route was refused; the caller says which route.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// The prefix does not parse.
    #[error("prefix {0}")]
    Prefix(String),
    /// The prefix has bits set past its length.
    #[error("prefix {prefix} has host bits set; did you mean {}?", prefix.trunc())]
    HostBits {
        /// The prefix as given.
        prefix: IpPrefix,
    },
    /// More labels than a route may push.
    #[error("{0} labels: at most {MAX_PUSH} may be pushed")]
    TooManyLabels(usize),
    /// A label outside the range a config may use.
    #[error("{what} {value} is outside 16..1048575 (0..15 are reserved labels)")]
    Label {
        /// What the number is (`label`, `in-label`, ...).
        what: &'static str,
        /// The number given.
        value: i64,
    },
    /// The next hop is an IPv6 link-local address.
    #[error("via {0} is a link-local address: give the next hop's global address, in a connected subnet (an address6)")]
    LinkLocalNextHop(std::net::Ipv6Addr),
    /// The next hop does not parse.
    #[error("via \"{0}\" is not an IPv4 or IPv6 address")]
    NotAnAddress(String),
    /// No attachment of the right table has the next hop's subnet.
    #[error("via {ip} is not in {place}")]
    Unreachable {
        /// The next hop.
        ip: IpAddr,
        /// Where it should have been.
        place: String,
    },
    /// The next hop is one of our addresses.
    #[error("via {0} is our own address")]
    OwnAddress(IpAddr),
    /// The prefix already has a route of a source a static route may not override.
    #[error("prefix {prefix} is already {} in this table", clash_text(*.existing))]
    Clash {
        /// The prefix.
        prefix: IpPrefix,
        /// The source of the route it has.
        existing: Source,
    },
}

fn clash_text(source: Source) -> &'static str {
    match source {
        Source::Static => "another route",
        Source::Connected => "a connected subnet",
        Source::Local => "one of our addresses",
        Source::Neighbor => "a static neighbour",
        Source::Bgp => "a BGP route",
    }
}

/// A label number a config may use.
pub fn label(value: i64, what: &'static str) -> Result<Label, RouteError> {
    if !LABEL_RANGE.contains(&value) {
        return Err(RouteError::Label { what, value });
    }
    Label::new(value as u32).ok_or(RouteError::Label { what, value })
}

/// A route's prefix: it parses and has no host bits.
pub fn prefix(text: &str) -> Result<IpPrefix, RouteError> {
    let prefix = text
        .trim()
        .parse::<IpPrefix>()
        .map_err(|e| RouteError::Prefix(e.to_string()))?;
    if prefix.has_host_bits() {
        return Err(RouteError::HostBits { prefix });
    }
    Ok(prefix)
}

/// A label stack to push (swap entries may also push explicit null, 0 or 2).
pub fn labels(labels: &[i64], explicit_null_ok: bool) -> Result<LabelStack, RouteError> {
    if labels.len() > MAX_PUSH {
        return Err(RouteError::TooManyLabels(labels.len()));
    }
    let mut out = Vec::with_capacity(labels.len());
    for &n in labels {
        let l = match Label::new(n as u32) {
            Some(l) if explicit_null_ok && (n == 0 || n == 2) => l,
            _ => label(n, "label")?,
        };
        out.push(l);
    }
    LabelStack::new(&out).ok_or(RouteError::TooManyLabels(labels.len()))
}

/// A next hop: an IPv4 address, or a global IPv6 address (a link-local one would need an
/// interface to go with it, which routes do not name).
pub fn next_hop(via: &str) -> Result<IpAddr, RouteError> {
    match via.trim().parse::<IpAddr>() {
        Ok(IpAddr::V6(ip)) if ip.is_unicast_link_local() => Err(RouteError::LinkLocalNextHop(ip)),
        Ok(ip) => Ok(ip),
        Err(_) => Err(RouteError::NotAnAddress(via.to_string())),
    }
}

/// Whether `ip` is in the attachment's connected subnet of its family.
fn in_subnet(a: &Attachment, ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => a.address.is_some_and(|p| p.contains(ip)),
        IpAddr::V6(ip) => a.address6.is_some_and(|p| p.contains(ip)),
    }
}

/// Whether `ip` is the attachment's own address of its family.
fn is_own(a: &Attachment, ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => a.address.is_some_and(|p| p.addr() == ip),
        IpAddr::V6(ip) => a.address6.is_some_and(|p| p.addr() == ip),
    }
}

/// The attachment a route's next hop `ip` is on: in the table's own connected subnets (of the
/// next hop's family: `address` or `address6`) for unlabelled routes, on core interfaces (the
/// global table) for labelled ones, whose labels carry the VRF across the core. `vrf_name`
/// names `vrf` in the refusal.
pub fn attachment(
    attachments: &[Attachment],
    vrf: VrfId,
    vrf_name: &str,
    ip: IpAddr,
    core: bool,
) -> Result<AttachmentId, RouteError> {
    let table = if core { VrfId::GLOBAL } else { vrf };
    let Some(att) = attachments
        .iter()
        .position(|a| a.vrf == table && in_subnet(a, ip))
    else {
        let place = if core {
            "any core interface's subnet (labelled routes leave by the core)".to_string()
        } else if vrf == VrfId::GLOBAL {
            "any core interface's subnet".to_string()
        } else {
            format!(
                "any connected subnet of vrf \"{vrf_name}\" (give it labels to reach it across the core)"
            )
        };
        return Err(RouteError::Unreachable { ip, place });
    };
    if is_own(&attachments[att], ip) {
        return Err(RouteError::OwnAddress(ip));
    }
    Ok(AttachmentId(att as u16))
}

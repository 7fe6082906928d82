//! The checks of one route that the config compiler and the running daemon share: its prefix,
//! its label stack, and the attachment its next hop is on. The compiler runs them over a whole
//! config; `route add` and `route load` run them against the running tables, so a route is
//! held to the same rules whichever way it arrives.

use std::net::{IpAddr, Ipv4Addr};

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
    /// The next hop is an IPv6 address.
    #[error("via {0}: next hops are IPv4 addresses")]
    Ipv6NextHop(String),
    /// The next hop does not parse.
    #[error("via \"{0}\" is not an IPv4 address")]
    NotAnAddress(String),
    /// No attachment of the right table has the next hop's subnet.
    #[error("via {ip} is not in {place}")]
    Unreachable {
        /// The next hop.
        ip: Ipv4Addr,
        /// Where it should have been.
        place: String,
    },
    /// The next hop is one of our addresses.
    #[error("via {0} is our own address")]
    OwnAddress(Ipv4Addr),
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

/// A next hop: an IPv4 address.
pub fn next_hop(via: &str) -> Result<Ipv4Addr, RouteError> {
    match via.trim().parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => Ok(ip),
        Ok(IpAddr::V6(_)) => Err(RouteError::Ipv6NextHop(via.to_string())),
        Err(_) => Err(RouteError::NotAnAddress(via.to_string())),
    }
}

/// The attachment a route's next hop `ip` is on: in the table's own connected subnets for
/// unlabelled routes, on core interfaces (the global table) for labelled ones, whose labels
/// carry the VRF across the core. `vrf_name` names `vrf` in the refusal.
pub fn attachment(
    attachments: &[Attachment],
    vrf: VrfId,
    vrf_name: &str,
    ip: Ipv4Addr,
    core: bool,
) -> Result<AttachmentId, RouteError> {
    let table = if core { VrfId::GLOBAL } else { vrf };
    let Some(att) = attachments
        .iter()
        .position(|a| a.vrf == table && a.address.is_some_and(|p| p.contains(ip)))
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
    if attachments[att].address.is_some_and(|p| p.addr() == ip) {
        return Err(RouteError::OwnAddress(ip));
    }
    Ok(AttachmentId(att as u16))
}

//! The configuration model: what a network engineer writes in `xpe.toml`.
//!
//! Parsing (serde + toml) catches syntax and type errors and reports the TOML line; the
//! checks in [`crate::validate`] catch what the types cannot (references, ranges, overlaps)
//! and name the object at fault. Every field is documented in `docs/config.md`.

use std::fmt;
use std::path::Path;

use serde::Deserialize;
use xpe_dataplane::tables::TtlMode;

/// The whole config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Router-wide settings.
    pub router: Router,
    /// Interfaces xpe forwards on.
    #[serde(default, rename = "interface")]
    pub interfaces: Vec<Interface>,
    /// Static neighbours (ARP entries).
    #[serde(default, rename = "neighbor")]
    pub neighbors: Vec<Neighbor>,
    /// Customer VRFs.
    #[serde(default, rename = "vrf")]
    pub vrfs: Vec<Vrf>,
    /// Routes of the global table (IP on core interfaces, after explicit null).
    #[serde(default, rename = "route")]
    pub routes: Vec<Route>,
    /// Incoming label entries for transit traffic (LSR role).
    #[serde(default, rename = "label")]
    pub labels: Vec<LabelEntry>,
    /// Control-plane policing of what is punted to the kernel's mirrors.
    #[serde(default)]
    pub copp: Copp,
    /// BGP: the router's ASN and its core neighbours (VPNv4/VPNv6), through GoBGP.
    pub bgp: Option<Bgp>,
}

/// `[bgp]`: xpe runs GoBGP for the VPN routes of its VRFs (docs/bgp.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bgp {
    /// The router's autonomous system number.
    pub asn: i64,
    /// The BGP router id; default the `[router] address`.
    pub router_id: Option<String>,
    /// Seconds a route learned from a GoBGP that died is kept (stale) after it is back,
    /// waiting to be announced again; default 120.
    pub stale_time: Option<i64>,
    /// The gobgpd program; default `gobgpd` from PATH.
    pub gobgpd: Option<String>,
    /// Core neighbours: VPNv4 and VPNv6, usually route reflectors.
    #[serde(default, rename = "neighbor")]
    pub neighbors: Vec<BgpNeighbor>,
}

/// `[[bgp.neighbor]]` and `[[vrf.bgp_neighbor]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BgpNeighbor {
    /// Its address.
    pub address: String,
    /// Its ASN; default the router's (iBGP).
    pub asn: Option<i64>,
    /// TCP MD5 password (RFC 2385).
    pub password: Option<String>,
    /// Our address for the session (core neighbours); default the router address.
    pub source: Option<String>,
}

/// `[router]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Router {
    /// Router name (shown by `show`, names the control socket later).
    pub name: String,
    /// RFC 3443 TTL mode.
    #[serde(default)]
    pub ttl_mode: TtlModeConfig,
    /// The router address: a loopback-style IPv4 address (BGP next hop, router id),
    /// reachable from every core interface.
    pub address: Option<String>,
}

/// `ttl_mode = "uniform" | "pipe"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TtlModeConfig {
    /// Copy TTL between IP and labels.
    #[default]
    Uniform,
    /// Labels start at 255; the core counts as one hop.
    Pipe,
}

impl From<TtlModeConfig> for TtlMode {
    fn from(m: TtlModeConfig) -> TtlMode {
        match m {
            TtlModeConfig::Uniform => TtlMode::Uniform,
            TtlModeConfig::Pipe => TtlMode::Pipe,
        }
    }
}

/// `kind = "core" | "edge"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InterfaceKind {
    /// Provider core: MPLS and the global table.
    Core,
    /// Customer edge: VRF attachments only.
    Edge,
}

impl fmt::Display for InterfaceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InterfaceKind::Core => "core",
            InterfaceKind::Edge => "edge",
        })
    }
}

/// `[[interface]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interface {
    /// Linux netdev name.
    pub name: String,
    /// Core or edge.
    pub kind: InterfaceKind,
    /// MAC address; required offline, defaults to the netdev's MAC when running live.
    pub mac: Option<String>,
    /// Our address and subnet on a core interface (`198.18.0.1/30`).
    pub address: Option<String>,
    /// Our IPv6 address and subnet on a core interface (`2001:db8::1/64`).
    pub address6: Option<String>,
    /// Largest L3 payload (labels + IP) sent; default 1500.
    #[serde(default = "default_mtu")]
    pub mtu: u32,
    /// The name of its mirror device (core interfaces); default `cp-NAME`.
    pub mirror: Option<String>,
}

/// The default interface MTU.
pub fn default_mtu() -> u32 {
    1500
}

/// `[[neighbor]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Neighbor {
    /// Interface the neighbour is on.
    pub interface: String,
    /// VLAN of the attachment (edge interfaces), absent for untagged.
    pub vlan: Option<i64>,
    /// Its IPv4 address.
    pub ip: String,
    /// Its MAC.
    pub mac: String,
}

/// `[[vrf]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vrf {
    /// VRF name.
    pub name: String,
    /// The VPN label that pops into this VRF.
    pub table_label: Option<i64>,
    /// Where customers attach.
    #[serde(default, rename = "attachment")]
    pub attachments: Vec<Attachment>,
    /// Static routes.
    #[serde(default, rename = "route")]
    pub routes: Vec<Route>,
    /// The network namespace of its mirror devices; default `ROUTER-VRF`.
    pub namespace: Option<String>,
    /// Route distinguisher of its VPN routes (`65000:101`, `198.51.100.1:7`).
    pub rd: Option<String>,
    /// Route targets whose VPN routes are imported into it.
    #[serde(default)]
    pub import: Vec<String>,
    /// Route targets its VPN routes carry.
    #[serde(default)]
    pub export: Vec<String>,
    /// eBGP neighbours on its attachments (CEs): IPv4/IPv6 unicast.
    #[serde(default, rename = "bgp_neighbor")]
    pub bgp_neighbors: Vec<BgpNeighbor>,
}

/// `[[vrf.attachment]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attachment {
    /// Edge interface.
    pub interface: String,
    /// 802.1Q VLAN id; absent for an untagged (port) attachment.
    pub vlan: Option<i64>,
    /// Our address and the connected subnet (`169.254.10.1/30`).
    pub address: Option<String>,
    /// Our IPv6 address and the connected subnet (`2001:db8:a::1/64`).
    pub address6: Option<String>,
    /// The name of its mirror device; default `IFNAME.VLAN` (tagged) or `IFNAME`.
    pub mirror: Option<String>,
}

/// `[copp]`: a token bucket per policing class, per worker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Copp {
    /// BGP, BFD, LDP, OSPF, IS-IS, RIP, PIM, VRRP.
    pub routing: Option<PolicerRate>,
    /// ARP and IPv6 neighbour discovery.
    pub arp_nd: Option<PolicerRate>,
    /// ICMP and ICMPv6 other than neighbour discovery.
    pub icmp: Option<PolicerRate>,
    /// Everything else for the router.
    pub other: Option<PolicerRate>,
    /// Not a punt class: the ICMP errors the router sends (time exceeded, ...).
    pub icmp_errors: Option<PolicerRate>,
}

/// `{ rate = PPS, burst = PACKETS }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicerRate {
    /// Packets per second (0: none reach the kernel).
    pub rate: u32,
    /// Bucket depth in packets.
    pub burst: u32,
}

/// `[[route]]` and `[[vrf.route]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Destination prefix, IPv4 or IPv6, host bits clear.
    pub prefix: String,
    /// IPv4 next hop.
    pub via: String,
    /// Labels to push, outermost first.
    #[serde(default)]
    pub labels: Vec<i64>,
}

/// `action = "swap" | "pop"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LabelAction {
    /// Swap the top label (and push more).
    Swap,
    /// Penultimate-hop pop.
    Pop,
}

/// `[[label]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelEntry {
    /// Incoming label.
    #[serde(rename = "in")]
    pub in_label: i64,
    /// Swap or pop.
    pub action: LabelAction,
    /// Outgoing labels for swap, outermost first.
    pub out: Option<Vec<i64>>,
    /// IPv4 next hop on a core interface.
    pub via: String,
}

/// A config file that could not be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// TOML syntax or a field of the wrong type; the message names the line.
    #[error("{path}: {message}")]
    Parse {
        /// The path.
        path: String,
        /// toml's message, with line and column.
        message: String,
    },
}

impl Config {
    /// Parses config text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Config, LoadError> {
        toml::from_str(text).map_err(|e| LoadError::Parse {
            path: origin.to_string(),
            message: parse_message(text, &e),
        })
    }

    /// Reads and parses a config file.
    pub fn load(path: &Path) -> Result<Config, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::parse(&text, &path.display().to_string())
    }
}

/// `line L, column C: message` from a toml error (its own Display spreads over several lines).
fn parse_message(text: &str, e: &toml::de::Error) -> String {
    let msg = e.message().trim_end().to_string();
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            let src = text.lines().nth(line - 1).unwrap_or("").trim();
            format!("line {line}, column {col}: {msg}\n    | {src}")
        }
        None => msg,
    }
}

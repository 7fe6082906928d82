//! Validates a [`Config`] and compiles it into a dataplane [`Snapshot`].
//!
//! All checks run before anything is built and every problem is reported, each naming the
//! object at fault (the VRF, the label entry, the VLAN), so one `xpe check` shows the whole
//! list. Nothing is published unless the whole config is valid: a config is applied whole or
//! not at all.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{AddrParseError, IpAddr, Ipv4Addr};

use xpe_dataplane::tables::{
    Adjacency, AdjacencyId, Attachment as TAttachment, AttachmentId, Fec, FecId, IlmAction,
    IlmEntry, IlmOrigin, IpPrefix, Ipv4Prefix, Ipv6Prefix, LabelStack, LpmError, Port, PortId,
    PortKind, PrefixError, Snapshot, SnapshotParts, TableError, Vrf as TVrf, VrfId,
};
use xpe_dataplane::wire::ethernet::{MacAddr, ParseMacAddrError};
use xpe_dataplane::wire::mpls::Label;
use xpe_dataplane::wire::vlan::VlanId;

use crate::config::{Config, InterfaceKind, LabelAction, LabelEntry, Route};
use crate::resolve::{self, RouteError};
use crate::rib::{Rib, Source};

/// Smallest and largest interface MTU accepted (RFC 791 minimum; common jumbo maximum).
pub const MTU_RANGE: std::ops::RangeInclusive<u32> = 68..=9216;
pub use crate::resolve::LABEL_RANGE;

/// Most interfaces a config may have.
pub const MAX_INTERFACES: usize = 256;

/// One thing wrong with a config, naming the object at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{object}: {problem}")]
pub struct ConfigError {
    /// The object: `interface "dx0"`, `vrf "vpc-a" route 198.19.20.0/24`, `label entry 2`.
    pub object: Object,
    /// What is wrong, and where useful what to do.
    pub problem: Problem,
}

/// The part of a config a [`ConfigError`] is about; it displays as the error names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Object {
    /// `[router]`: `router`.
    Router,
    /// The config as a whole: `config`.
    Config,
    /// An interface, by name: `interface "dx0"`.
    Interface(String),
    /// A VRF, by name: `vrf "vpc-a"`.
    Vrf(String),
    /// A VRF attachment whose VLAN is not valid, so named by its interface alone:
    /// `vrf "vpc-a" attachment on dx0`.
    AttachmentOn {
        /// The VRF's name.
        vrf: String,
        /// The interface, as written.
        interface: String,
    },
    /// A VRF attachment: `vrf "vpc-a" attachment dx0 VLAN 101`, `... dx1 untagged`.
    Attachment {
        /// The VRF's name.
        vrf: String,
        /// The interface, as written.
        interface: String,
        /// The VLAN; `None` for an untagged attachment.
        vlan: Option<VlanId>,
    },
    /// A static neighbour, by address and interface as written: `neighbor 169.254.10.2 on dx0`.
    Neighbor {
        /// The address, as written.
        ip: String,
        /// The interface, as written.
        interface: String,
    },
    /// A static route: `global route 3` (by position) or `vrf "vpc-a" route 198.19.20.0/24`
    /// (by prefix).
    Route {
        /// The VRF's name; `None` for the global table.
        vrf: Option<String>,
        /// Position among the routes of its table, from 1.
        index: usize,
        /// The prefix, as written.
        prefix: String,
    },
    /// An incoming label used twice: `label 1001`.
    Label(i64),
    /// A label entry, by position from 1 and in-label: `label entry 2 (in 16004)`.
    LabelEntry {
        /// Position among the label entries, from 1.
        index: usize,
        /// Its in-label, as written.
        in_label: i64,
    },
    /// The tables built from a config that passed every check: `tables`.
    Tables,
    /// `[bgp]`: `bgp`.
    Bgp,
    /// A BGP neighbour: `bgp neighbor 198.18.0.9` (core) or `vrf "vpc-a" bgp neighbor
    /// 169.254.10.2` (a CE).
    BgpNeighbor {
        /// The VRF of a CE neighbour; `None` for a core neighbour.
        vrf: Option<String>,
        /// The address, as written.
        address: String,
    },
}

impl fmt::Display for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Object::Router => f.write_str("router"),
            Object::Config => f.write_str("config"),
            Object::Interface(name) => write!(f, "interface \"{name}\""),
            Object::Vrf(name) => write!(f, "vrf \"{name}\""),
            Object::AttachmentOn { vrf, interface } => {
                write!(f, "vrf \"{vrf}\" attachment on {interface}")
            }
            Object::Attachment {
                vrf,
                interface,
                vlan,
            } => write!(
                f,
                "vrf \"{vrf}\" attachment {interface} {}",
                VlanText(*vlan)
            ),
            Object::Neighbor { ip, interface } => write!(f, "neighbor {ip} on {interface}"),
            Object::Route {
                vrf: None, index, ..
            } => write!(f, "global route {index}"),
            Object::Route {
                vrf: Some(vrf),
                prefix,
                ..
            } => write!(f, "vrf \"{vrf}\" route {prefix}"),
            Object::Label(n) => write!(f, "label {n}"),
            Object::LabelEntry { index, in_label } => {
                write!(f, "label entry {index} (in {in_label})")
            }
            Object::Tables => f.write_str("tables"),
            Object::Bgp => f.write_str("bgp"),
            Object::BgpNeighbor { vrf: None, address } => write!(f, "bgp neighbor {address}"),
            Object::BgpNeighbor {
                vrf: Some(vrf),
                address,
            } => write!(f, "vrf \"{vrf}\" bgp neighbor {address}"),
        }
    }
}

/// Who claims an incoming label, in a [`Problem::DuplicateInLabel`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelUser {
    /// A VRF's `table_label`: `vrf "vpc-a"`.
    Vrf(String),
    /// A label entry, by position from 1: `label entry 2`.
    LabelEntry(usize),
}

impl fmt::Display for LabelUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabelUser::Vrf(name) => write!(f, "vrf \"{name}\""),
            LabelUser::LabelEntry(index) => write!(f, "label entry {index}"),
        }
    }
}

/// What is wrong with the object of a [`ConfigError`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// The router has no name.
    #[error("name must not be empty")]
    EmptyRouterName,
    /// An interface name Linux would refuse.
    #[error("not a valid Linux interface name (1 to 15 characters, no '/', ':' or spaces)")]
    BadInterfaceName,
    /// Two interface entries of one name.
    #[error("defined twice (interface entries {first} and {second})")]
    InterfaceTwice {
        /// Position of the first entry, from 1.
        first: usize,
        /// Position of the second entry, from 1.
        second: usize,
    },
    /// A VRF or neighbour defined twice.
    #[error("defined twice")]
    DefinedTwice,
    /// A MAC that is multicast or broadcast (or, of an interface, all zeros).
    #[error("mac {0} is not a unicast address")]
    MacNotUnicast(MacAddr),
    /// A MAC that does not parse.
    #[error("mac \"{text}\" is not a MAC address like 02:00:00:00:01:01")]
    BadMac {
        /// The MAC as written.
        text: String,
        /// Why it does not parse.
        #[source]
        source: ParseMacAddrError,
    },
    /// No MAC in the config and no interface here to read it from.
    #[error("no mac given, and there is no interface of that name here to read it from: add `mac = \"..\"` (xpe run reads it from the interface)")]
    NoMac,
    /// An MTU outside [`MTU_RANGE`].
    #[error("mtu {mtu} is outside {}..{}", MTU_RANGE.start(), MTU_RANGE.end())]
    Mtu {
        /// The MTU given.
        mtu: u32,
    },
    /// An address on an edge interface (edge addresses belong to attachments).
    #[error("an edge interface takes no address: give it to the VRF attachment instead")]
    EdgeAddress,
    /// More than [`MAX_INTERFACES`] interfaces.
    #[error("more than {MAX_INTERFACES} interfaces ({0})")]
    TooManyInterfaces(usize),
    /// An interface or attachment address that does not parse.
    #[error("address {0}")]
    Address(#[source] PrefixError),
    /// An interface or attachment address that is a /32.
    #[error("address {0} has no subnet: neighbours need a prefix of /31 or shorter")]
    AddressWithoutSubnet(Ipv4Prefix),
    /// An interface or attachment address that is its subnet's network or broadcast address.
    #[error("address {0} is the subnet's network or broadcast address")]
    AddressNotHost(Ipv4Prefix),
    /// An interface or attachment IPv6 address that does not parse.
    #[error("address6 {0}")]
    Address6(#[source] PrefixError),
    /// An interface or attachment IPv6 address that is a /128.
    #[error("address6 {0} has no subnet: neighbours need a prefix of /127 or shorter")]
    Address6WithoutSubnet(Ipv6Prefix),
    /// An interface or attachment IPv6 address that is its subnet's Subnet-Router anycast
    /// address (the host part all zeros, RFC 4291 §2.6.1).
    #[error("address6 {0} is the subnet's Subnet-Router anycast address (RFC 4291 §2.6.1): give a host address")]
    Address6NotHost(Ipv6Prefix),
    /// An interface or attachment IPv6 address that is not a global unicast address.
    #[error("address6 {0} is not a global unicast address (multicast, loopback, unspecified, IPv4-mapped or link-local; the link-local address comes from the MAC)")]
    Address6NotUnicast(Ipv6Prefix),
    /// A VRF named `global` or nothing.
    #[error("name must be non-empty and not \"global\" (the core table)")]
    BadVrfName,
    /// A VLAN id outside 1..4094.
    #[error("VLAN {0} is outside 1..4094 (0 and 4095 are reserved by 802.1Q)")]
    Vlan(i64),
    /// A reference to an interface the config does not have.
    #[error("unknown interface \"{0}\"")]
    UnknownInterface(String),
    /// A VRF attached to a core interface.
    #[error("{0} is a core interface (global table); attach VRFs to edge interfaces")]
    CoreAttachment(String),
    /// One (interface, VLAN) in two attachments.
    #[error("{} attached twice (vrf \"{first}\" and vrf \"{second}\")", VlanText(*.vlan))]
    AttachedTwice {
        /// The VLAN; `None` for untagged.
        vlan: Option<VlanId>,
        /// The VRF of the first attachment.
        first: String,
        /// The VRF of the second.
        second: String,
    },
    /// Two attachments of one VRF with overlapping subnets (IPv4 or IPv6).
    #[error("subnet {subnet} overlaps {other} of another attachment of the same VRF")]
    SubnetOverlap {
        /// This attachment's subnet.
        subnet: IpPrefix,
        /// The other attachment's.
        other: IpPrefix,
    },
    /// Two core interfaces with overlapping subnets (IPv4 or IPv6).
    #[error("subnet {subnet} overlaps {other} of interface \"{interface}\": core interfaces' subnets may not overlap (a next hop in both would have two ways out)")]
    CoreSubnetOverlap {
        /// This interface's subnet.
        subnet: IpPrefix,
        /// The other interface's.
        other: IpPrefix,
        /// The other interface.
        interface: String,
    },
    /// A neighbour on a core interface with a VLAN.
    #[error("core interfaces are untagged: remove `vlan`")]
    TaggedCoreNeighbor,
    /// A neighbour on an (interface, VLAN) no VRF is attached to.
    #[error("no VRF is attached to {} on {interface}", VlanText(*.vlan))]
    NoAttachment {
        /// The interface.
        interface: String,
        /// The VLAN; `None` for untagged.
        vlan: Option<VlanId>,
    },
    /// A neighbour address that does not parse.
    #[error("ip \"{text}\" is not an IPv4 or IPv6 address")]
    BadNeighborIp {
        /// The address as written.
        text: String,
        /// Why it does not parse.
        #[source]
        source: AddrParseError,
    },
    /// A neighbour at our own address.
    #[error("{0} is our own address on this subnet")]
    OwnAddress(IpAddr),
    /// A neighbour outside its attachment's subnet.
    #[error("{ip} is not in the connected subnet {subnet}")]
    OutsideSubnet {
        /// The neighbour.
        ip: IpAddr,
        /// The attachment's subnet of the neighbour's family.
        subnet: IpPrefix,
    },
    /// A neighbour on an attachment without an address of its family.
    #[error("the attachment has no {0}, so no connected subnet for it")]
    NoSubnet(&'static str),
    /// One in-label claimed twice.
    #[error("duplicate in-label {label} used by {first} and {second}")]
    DuplicateInLabel {
        /// The label.
        label: i64,
        /// Who claimed it first.
        first: LabelUser,
        /// Who claimed it again.
        second: LabelUser,
    },
    /// A route, label or label stack refused by the checks `route add` shares.
    #[error(transparent)]
    Route(#[from] RouteError),
    /// A swap entry without `out`.
    #[error("swap needs `out` (one or more labels)")]
    SwapWithoutOut,
    /// A swap entry with an empty `out`.
    #[error("swap needs at least one `out` label; use action = \"pop\" to pop")]
    SwapEmptyOut,
    /// A pop entry with `out`.
    #[error("pop takes no `out` labels")]
    PopWithOut,
    /// An LPM table could not hold the routes.
    #[error("LPM table: {0}")]
    Lpm(#[source] LpmError),
    /// The snapshot could not be built from the compiled parts.
    #[error(transparent)]
    Table(#[from] TableError),
    /// A router address that is not a unicast IPv4 address.
    #[error("address \"{0}\" is not a unicast IPv4 address (the router address is one address, like 198.18.255.1)")]
    RouterAddress(String),
    /// A namespace name `ip netns` would refuse.
    #[error("namespace \"{0}\" is not a valid network namespace name (no '/' or spaces)")]
    BadNamespace(String),
    /// A mirror name Linux would refuse.
    #[error("mirror name \"{0}\" is not a valid Linux interface name (1 to 15 characters, no '/', ':' or spaces)")]
    BadMirrorName(String),
    /// Two mirrors of one name in one namespace.
    #[error("mirror {name} is also the mirror of {first} in the same namespace: set mirror = \"...\" on one of them")]
    MirrorTwice {
        /// The name.
        name: String,
        /// The object whose mirror has it already.
        first: String,
    },
    /// A core mirror named like an interface xpe forwards on.
    #[error("mirror {0} would take the name of an interface xpe forwards on, in the same namespace: set mirror = \"...\"")]
    MirrorIsInterface(String),
    /// Overlapping subnets of two VRFs whose mirrors share a namespace.
    #[error("subnet {subnet} overlaps {other} in namespace {netns}, which holds both VRFs' mirrors: give one VRF a namespace of its own")]
    NamespaceOverlap {
        /// The shared namespace.
        netns: String,
        /// This attachment's subnet.
        subnet: IpPrefix,
        /// The other attachment.
        other: String,
    },
    /// A BGP part of the config (`[bgp]`, a VRF's rd, route targets, CE neighbours).
    #[error(transparent)]
    Bgp(#[from] crate::bgp::BgpProblem),
    /// A policing rate that lets bursts of nothing through.
    #[error("copp {class}: burst must be at least 1 when rate is not 0")]
    PolicerBurst {
        /// The class.
        class: &'static str,
    },
}

/// A VLAN as errors name it: `VLAN 101` or `untagged`.
struct VlanText(Option<VlanId>);

impl fmt::Display for VlanText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(v) => write!(f, "VLAN {v}"),
            None => f.write_str("untagged"),
        }
    }
}

/// All the problems of a config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Where interface MACs come from when the config omits them.
pub trait MacSource {
    /// The MAC of a Linux interface, if known.
    fn mac_of(&self, ifname: &str) -> Option<MacAddr>;
}

/// Offline: only the config's own `mac` fields count.
#[derive(Debug, Clone, Copy, Default)]
pub struct Offline;

impl MacSource for Offline {
    fn mac_of(&self, _: &str) -> Option<MacAddr> {
        None
    }
}

/// Interface MACs from sysfs, for interfaces of the current network namespace; `None` for
/// the others. What `xpe run` uses, and what `check`, `show`, `trace` and `replay` use for a
/// config that omits a `mac`, so they predict what `run` will do here.
#[derive(Debug, Clone, Copy, Default)]
pub struct SysfsMacs;

impl MacSource for SysfsMacs {
    fn mac_of(&self, ifname: &str) -> Option<MacAddr> {
        xpe_dataplane::xsk::netdev::Netdev::read(ifname).and_then(|d| d.mac)
    }
}

/// A compiled config: the snapshot, the RIB behind it and what `check` reports about it.
#[derive(Debug)]
pub struct Compiled {
    /// The tables.
    pub snapshot: Snapshot,
    /// Every route with its source; the snapshot's LPM tables are its FIB.
    pub rib: Rib,
    /// Things that are valid but probably not what was meant.
    pub warnings: Vec<String>,
    /// The mirror devices and their namespaces.
    pub mirrors: crate::mirrors::MirrorPlan,
    /// Control-plane policing rates.
    pub policer: xpe_dataplane::pipeline::punt::PolicerConfig,
    /// What BGP does, if the config has a `[bgp]`.
    pub bgp: Option<crate::bgp::BgpPlan>,
}

/// A `[[label]]` entry that passed [`check_label_entry`]: its in-label, what it does, and
/// where its next hop is (the caller finds or makes the adjacency).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckedLabel {
    /// The incoming label.
    pub label: Label,
    /// The labels a swap puts in its place, outermost first; `None` for a pop.
    pub swap: Option<LabelStack>,
    /// The core attachment the next hop is on.
    pub attachment: AttachmentId,
    /// The next hop.
    pub next_hop: IpAddr,
}

impl CheckedLabel {
    /// The entry's action once its next hop is adjacency `adj`.
    pub fn action(&self, adj: AdjacencyId) -> IlmAction {
        match self.swap {
            Some(out) => IlmAction::Swap { adj, out },
            None => IlmAction::Pop { adj },
        }
    }
}

/// The checks of one `[[label]]` entry, the `index`-th of its config (from 1), that the
/// compiler and `xpe label add` share, so an entry is held to the same rules whichever way
/// it arrives: its in-label is in [`LABEL_RANGE`]; no VRF's `table_label` or other entry
/// uses it (`claim` records the entry as the label's user and gives the one that had it, if
/// any); a swap has `out` labels and a pop none; the `out` labels are valid (explicit null
/// allowed); `via` is an address in a core interface's subnet among `attachments`, not ours.
///
/// Every problem found is returned, each naming its object, in the order the compiler
/// reports them.
pub fn check_label_entry(
    e: &LabelEntry,
    index: usize,
    attachments: &[TAttachment],
    claim: impl FnOnce(i64, LabelUser) -> Option<LabelUser>,
) -> Result<CheckedLabel, Vec<ConfigError>> {
    let obj = Object::LabelEntry {
        index,
        in_label: e.in_label,
    };
    let error = |object: &Object, problem: Problem| ConfigError {
        object: object.clone(),
        problem,
    };
    let label = resolve::label(e.in_label, "in-label").map_err(|p| vec![error(&obj, p.into())])?;
    let mut errors = Vec::new();
    if let Some(first) = claim(e.in_label, LabelUser::LabelEntry(index)) {
        errors.push(duplicate_in_label(
            e.in_label,
            first,
            LabelUser::LabelEntry(index),
        ));
    }
    let swap = match (e.action, &e.out) {
        (LabelAction::Swap, None) => Err(Problem::SwapWithoutOut),
        (LabelAction::Swap, Some(out)) if out.is_empty() => Err(Problem::SwapEmptyOut),
        (LabelAction::Pop, Some(_)) => Err(Problem::PopWithOut),
        (LabelAction::Swap, Some(out)) => {
            resolve::labels(out, true).map(Some).map_err(Problem::from)
        }
        (LabelAction::Pop, None) => Ok(None),
    };
    let checked = swap.and_then(|swap| {
        let next_hop = resolve::next_hop(&e.via)?;
        let attachment = resolve::attachment(attachments, VrfId::GLOBAL, "global", next_hop, true)?;
        Ok(CheckedLabel {
            label,
            swap,
            attachment,
            next_hop,
        })
    });
    match checked {
        Ok(checked) if errors.is_empty() => Ok(checked),
        Ok(_) => Err(errors),
        Err(problem) => {
            errors.push(error(&obj, problem));
            Err(errors)
        }
    }
}

/// The warning for a next hop `ip` of `object` that no static neighbour resolves.
pub fn unresolved_next_hop(object: &Object, ip: IpAddr) -> String {
    let how = if ip.is_ipv4() {
        "ARP"
    } else {
        "neighbour discovery"
    };
    format!(
        "{object}: via {ip} has no static neighbour; its traffic counts as no-neighbor until {how} resolves it"
    )
}

/// In-label `n` claimed by `second` after `first`.
fn duplicate_in_label(n: i64, first: LabelUser, second: LabelUser) -> ConfigError {
    ConfigError {
        object: Object::Label(n),
        problem: Problem::DuplicateInLabel {
            label: n,
            first,
            second,
        },
    }
}

/// Records `user` as the user of in-label `n`, unless another has it: then that one.
fn claim(users: &mut BTreeMap<i64, LabelUser>, n: i64, user: LabelUser) -> Option<LabelUser> {
    match users.entry(n) {
        Entry::Occupied(first) => Some(first.get().clone()),
        Entry::Vacant(slot) => {
            slot.insert(user);
            None
        }
    }
}

/// Validates `config` and compiles its tables.
pub fn compile(config: &Config, macs: &dyn MacSource) -> Result<Compiled, ConfigErrors> {
    let mut c = Compiler::default();
    c.run(config, macs);
    if !c.errors.is_empty() {
        return Err(ConfigErrors(c.errors));
    }
    let warnings = std::mem::take(&mut c.warnings);
    let (snapshot, rib) = c.finish(config).map_err(|problem| {
        ConfigErrors(vec![ConfigError {
            object: Object::Tables,
            problem,
        }])
    })?;
    let mirrors = crate::mirrors::plan(config, &snapshot).map_err(ConfigErrors)?;
    let bgp = crate::bgp::plan(config, &snapshot, &mirrors).map_err(ConfigErrors)?;
    Ok(Compiled {
        bgp,
        snapshot,
        rib,
        warnings,
        mirrors,
        policer: policer(config),
    })
}

/// The policing rates of `[copp]`, with the defaults for classes it does not name.
fn policer(config: &Config) -> xpe_dataplane::pipeline::punt::PolicerConfig {
    use xpe_dataplane::pipeline::punt::{PolicerConfig, Rate};
    use xpe_dataplane::pipeline::PuntClass;
    let mut p = PolicerConfig::DEFAULT;
    let c = &config.copp;
    for (class, given) in [
        (PuntClass::Routing, c.routing),
        (PuntClass::Resolution, c.arp_nd),
        (PuntClass::Icmp, c.icmp),
        (PuntClass::Other, c.other),
    ] {
        if let Some(r) = given {
            p.rates[class as usize] = Rate {
                per_second: r.rate,
                burst: r.burst,
            };
        }
    }
    if let Some(r) = c.icmp_errors {
        p.icmp_errors = Rate {
            per_second: r.rate,
            burst: r.burst,
        };
    }
    p
}

#[derive(Default)]
struct Compiler {
    errors: Vec<ConfigError>,
    warnings: Vec<String>,
    ports: Vec<Port>,
    /// Attachments, with the VRF index (0 = global) and interface kind.
    attachments: Vec<TAttachment>,
    /// VRF names, index = VrfId (0 = global).
    vrf_names: Vec<String>,
    table_labels: Vec<Option<Label>>,
    /// (attachment, next hop) -> adjacency.
    adj_index: HashMap<(u16, IpAddr), AdjacencyId>,
    adjacencies: Vec<Adjacency>,
    /// Static neighbours by (attachment, ip).
    neighbors: BTreeMap<(u16, IpAddr), MacAddr>,
    fec_index: HashMap<Fec, FecId>,
    fecs: Vec<Fec>,
    /// Routes per VRF: prefix -> (origin, fec).
    routes: Vec<BTreeMap<IpPrefix, (Source, FecId)>>,
    ilm: Vec<IlmEntry>,
    /// In-label -> who uses it, for duplicate reports.
    label_users: BTreeMap<i64, LabelUser>,
}

/// A Linux interface name: 1..15 bytes, no '/', ':' or white space (IFNAMSIZ is 16 with NUL).
fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 16
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace())
}

/// The host route of one address: a /32 or a /128.
pub fn host_prefix(ip: IpAddr) -> IpPrefix {
    match ip {
        IpAddr::V4(ip) => IpPrefix::V4(Ipv4Prefix::new(ip, 32).expect("32 is a valid length")),
        IpAddr::V6(ip) => IpPrefix::V6(Ipv6Prefix::new(ip, 128).expect("128 is a valid length")),
    }
}

fn vlan_of(v: Option<i64>) -> Result<Option<VlanId>, Problem> {
    match v {
        None => Ok(None),
        Some(n) => u16::try_from(n)
            .ok()
            .and_then(VlanId::new)
            .map(Some)
            .ok_or(Problem::Vlan(n)),
    }
}

impl Compiler {
    /// Records that `problem` is wrong with `object`.
    fn error(&mut self, object: &Object, problem: impl Into<Problem>) {
        self.errors.push(ConfigError {
            object: object.clone(),
            problem: problem.into(),
        });
    }

    fn run(&mut self, config: &Config, macs: &dyn MacSource) {
        if config.router.name.trim().is_empty() {
            self.error(&Object::Router, Problem::EmptyRouterName);
        }
        let c = &config.copp;
        for (class, given) in [
            ("routing", c.routing),
            ("arp_nd", c.arp_nd),
            ("icmp", c.icmp),
            ("other", c.other),
            ("icmp_errors", c.icmp_errors),
        ] {
            if given.is_some_and(|r| r.rate > 0 && r.burst == 0) {
                self.error(&Object::Config, Problem::PolicerBurst { class });
            }
        }
        self.interfaces(config, macs);
        self.vrfs(config);
        self.neighbors(config);
        self.connected();
        self.router_address(config);
        self.table_labels(config);
        for (i, r) in config.routes.iter().enumerate() {
            let obj = Object::Route {
                vrf: None,
                index: i + 1,
                prefix: r.prefix.clone(),
            };
            self.route(VrfId::GLOBAL, r, &obj);
        }
        for (j, v) in config.vrfs.iter().enumerate() {
            for (i, r) in v.routes.iter().enumerate() {
                let obj = Object::Route {
                    vrf: Some(v.name.clone()),
                    index: i + 1,
                    prefix: r.prefix.clone(),
                };
                self.route(VrfId(j as u16 + 1), r, &obj);
            }
        }
        self.label_entries(config);
    }

    fn interfaces(&mut self, config: &Config, macs: &dyn MacSource) {
        let mut seen = BTreeMap::new();
        self.vrf_names.push("global".into());
        self.table_labels.push(None);
        self.routes.push(BTreeMap::new());
        for (i, ifc) in config.interfaces.iter().enumerate() {
            let obj = Object::Interface(ifc.name.clone());
            if !valid_ifname(&ifc.name) {
                self.error(&obj, Problem::BadInterfaceName);
            }
            if let Some(first) = seen.insert(ifc.name.clone(), i) {
                self.error(
                    &obj,
                    Problem::InterfaceTwice {
                        first: first + 1,
                        second: i + 1,
                    },
                );
            }
            let mac = match &ifc.mac {
                Some(text) => match text.parse::<MacAddr>() {
                    Ok(m) if m.is_unicast() && m != MacAddr([0; 6]) => Some(m),
                    Ok(m) => {
                        self.error(&obj, Problem::MacNotUnicast(m));
                        None
                    }
                    Err(source) => {
                        self.error(
                            &obj,
                            Problem::BadMac {
                                text: text.clone(),
                                source,
                            },
                        );
                        None
                    }
                },
                None => {
                    let m = macs.mac_of(&ifc.name);
                    if m.is_none() {
                        self.error(&obj, Problem::NoMac);
                    }
                    m
                }
            };
            if !MTU_RANGE.contains(&ifc.mtu) {
                self.error(&obj, Problem::Mtu { mtu: ifc.mtu });
            }
            let address = match (&ifc.address, ifc.kind) {
                (None, _) => None,
                (Some(_), InterfaceKind::Edge) => {
                    self.error(&obj, Problem::EdgeAddress);
                    None
                }
                (Some(text), InterfaceKind::Core) => self.subnet(&obj, text),
            };
            let address6 = match (&ifc.address6, ifc.kind) {
                (None, _) => None,
                (Some(_), InterfaceKind::Edge) => {
                    self.error(&obj, Problem::EdgeAddress);
                    None
                }
                (Some(text), InterfaceKind::Core) => self.subnet6(&obj, text),
            };
            let kind = match ifc.kind {
                InterfaceKind::Core => PortKind::Core,
                InterfaceKind::Edge => PortKind::Edge,
            };
            let port = PortId(self.ports.len() as u16);
            self.ports.push(Port::new(
                ifc.name.clone(),
                kind,
                mac.unwrap_or(MacAddr([0; 6])),
                ifc.mtu.min(u32::from(u16::MAX)) as u16,
            ));
            if kind == PortKind::Core {
                self.core_overlap(&obj, address.map(IpPrefix::V4), address6.map(IpPrefix::V6));
                self.attachments.push(TAttachment {
                    port,
                    vlan: None,
                    vrf: VrfId::GLOBAL,
                    address,
                    address6,
                });
            }
        }
        if self.ports.len() > MAX_INTERFACES {
            self.error(
                &Object::Config,
                Problem::TooManyInterfaces(self.ports.len()),
            );
        }
    }

    /// Refuses a core interface whose subnets overlap another core interface's.
    fn core_overlap(&mut self, obj: &Object, v4: Option<IpPrefix>, v6: Option<IpPrefix>) {
        let mut found = Vec::new();
        for a in self.attachments.iter().filter(|a| a.vrf == VrfId::GLOBAL) {
            let theirs = [a.address.map(IpPrefix::V4), a.address6.map(IpPrefix::V6)];
            for (mine, other) in [(v4, theirs[0]), (v6, theirs[1])] {
                if let (Some(m), Some(o)) = (mine, other) {
                    if overlaps(m, o) {
                        let interface = self.ports[usize::from(a.port.0)].name.clone();
                        found.push(Problem::CoreSubnetOverlap {
                            subnet: m.trunc(),
                            other: o.trunc(),
                            interface,
                        });
                    }
                }
            }
        }
        for p in found {
            self.error(obj, p);
        }
    }

    /// Parses an interface address: host bits required (it is ours), not the subnet's
    /// network or broadcast address.
    fn subnet(&mut self, obj: &Object, text: &str) -> Option<Ipv4Prefix> {
        let p = match text.parse::<Ipv4Prefix>() {
            Ok(p) => p,
            Err(e) => {
                self.error(obj, Problem::Address(e));
                return None;
            }
        };
        if p.len() == 32 {
            self.error(obj, Problem::AddressWithoutSubnet(p));
            return None;
        }
        if p.len() < 31 && (p.addr() == p.network() || p.addr() == p.broadcast()) {
            self.error(obj, Problem::AddressNotHost(p));
            return None;
        }
        Some(p)
    }

    /// Parses an interface IPv6 address: a global unicast address with a subnet, not the
    /// subnet's Subnet-Router anycast address (except on a /127, RFC 6164).
    fn subnet6(&mut self, obj: &Object, text: &str) -> Option<Ipv6Prefix> {
        let p = match text.parse::<Ipv6Prefix>() {
            Ok(p) => p,
            Err(e) => {
                self.error(obj, Problem::Address6(e));
                return None;
            }
        };
        let a = p.addr();
        if a.is_multicast()
            || a.is_unspecified()
            || a.is_loopback()
            || a.is_unicast_link_local()
            || a.to_ipv4_mapped().is_some()
        {
            self.error(obj, Problem::Address6NotUnicast(p));
            return None;
        }
        if p.len() == 128 {
            self.error(obj, Problem::Address6WithoutSubnet(p));
            return None;
        }
        if p.len() < 127 && a == p.network() {
            self.error(obj, Problem::Address6NotHost(p));
            return None;
        }
        Some(p)
    }

    fn port_named(&self, config: &Config, name: &str) -> Option<(PortId, InterfaceKind)> {
        config
            .interfaces
            .iter()
            .position(|i| i.name == name)
            .map(|i| (PortId(i as u16), config.interfaces[i].kind))
    }

    fn vrfs(&mut self, config: &Config) {
        let mut names = BTreeMap::new();
        let mut slots: BTreeMap<(u16, u16), String> = BTreeMap::new();
        for (j, v) in config.vrfs.iter().enumerate() {
            let vrf = VrfId(j as u16 + 1);
            let obj = Object::Vrf(v.name.clone());
            if v.name.is_empty() || v.name == "global" {
                self.error(&obj, Problem::BadVrfName);
            }
            if names.insert(v.name.clone(), j).is_some() {
                self.error(&obj, Problem::DefinedTwice);
            }
            self.vrf_names.push(v.name.clone());
            self.table_labels.push(None);
            self.routes.push(BTreeMap::new());
            let mut subnets: Vec<Ipv4Prefix> = Vec::new();
            let mut subnets6: Vec<Ipv6Prefix> = Vec::new();
            for a in &v.attachments {
                let vlan = match vlan_of(a.vlan) {
                    Ok(v) => v,
                    Err(problem) => {
                        let aobj = Object::AttachmentOn {
                            vrf: v.name.clone(),
                            interface: a.interface.clone(),
                        };
                        self.error(&aobj, problem);
                        continue;
                    }
                };
                let aobj = Object::Attachment {
                    vrf: v.name.clone(),
                    interface: a.interface.clone(),
                    vlan,
                };
                let Some((port, kind)) = self.port_named(config, &a.interface) else {
                    self.error(&aobj, Problem::UnknownInterface(a.interface.clone()));
                    continue;
                };
                if kind == InterfaceKind::Core {
                    self.error(&aobj, Problem::CoreAttachment(a.interface.clone()));
                    continue;
                }
                let slot = (port.0, vlan.map_or(0, |v| v.get()));
                if let Some(other) = slots.insert(slot, v.name.clone()) {
                    self.error(
                        &Object::Interface(a.interface.clone()),
                        Problem::AttachedTwice {
                            vlan,
                            first: other,
                            second: v.name.clone(),
                        },
                    );
                    continue;
                }
                let address = a.address.as_ref().and_then(|t| self.subnet(&aobj, t));
                if let Some(p) = address {
                    if let Some(&o) = subnets.iter().find(|o| o.overlaps(&p)) {
                        self.error(
                            &aobj,
                            Problem::SubnetOverlap {
                                subnet: IpPrefix::V4(p),
                                other: IpPrefix::V4(o),
                            },
                        );
                    }
                    subnets.push(p);
                }
                let address6 = a.address6.as_ref().and_then(|t| self.subnet6(&aobj, t));
                if let Some(p) = address6 {
                    if let Some(&o) = subnets6.iter().find(|o| o.overlaps(&p)) {
                        self.error(
                            &aobj,
                            Problem::SubnetOverlap {
                                subnet: IpPrefix::V6(p),
                                other: IpPrefix::V6(o),
                            },
                        );
                    }
                    subnets6.push(p);
                }
                self.attachments.push(TAttachment {
                    port,
                    vlan,
                    vrf,
                    address,
                    address6,
                });
            }
        }
    }

    /// The attachment of (interface, vlan), if configured.
    fn attachment_at(&self, port: PortId, vlan: Option<VlanId>) -> Option<u16> {
        self.attachments
            .iter()
            .position(|a| a.port == port && a.vlan == vlan)
            .map(|i| i as u16)
    }

    fn neighbors(&mut self, config: &Config) {
        for n in &config.neighbors {
            let obj = Object::Neighbor {
                ip: n.ip.clone(),
                interface: n.interface.clone(),
            };
            let vlan = match vlan_of(n.vlan) {
                Ok(v) => v,
                Err(problem) => {
                    self.error(&obj, problem);
                    continue;
                }
            };
            let Some((port, kind)) = self.port_named(config, &n.interface) else {
                self.error(&obj, Problem::UnknownInterface(n.interface.clone()));
                continue;
            };
            if kind == InterfaceKind::Core && vlan.is_some() {
                self.error(&obj, Problem::TaggedCoreNeighbor);
                continue;
            }
            let Some(att) = self.attachment_at(port, vlan) else {
                self.error(
                    &obj,
                    Problem::NoAttachment {
                        interface: n.interface.clone(),
                        vlan,
                    },
                );
                continue;
            };
            let ip = match n.ip.parse::<IpAddr>() {
                Ok(ip) => ip,
                Err(source) => {
                    self.error(
                        &obj,
                        Problem::BadNeighborIp {
                            text: n.ip.clone(),
                            source,
                        },
                    );
                    continue;
                }
            };
            let mac = match n.mac.parse::<MacAddr>() {
                Ok(m) if m.is_unicast() => m,
                Ok(m) => {
                    self.error(&obj, Problem::MacNotUnicast(m));
                    continue;
                }
                Err(source) => {
                    self.error(
                        &obj,
                        Problem::BadMac {
                            text: n.mac.clone(),
                            source,
                        },
                    );
                    continue;
                }
            };
            let a = &self.attachments[usize::from(att)];
            // The attachment's own address and subnet of the neighbour's family.
            let subnet = match ip {
                IpAddr::V4(v4) => a
                    .address
                    .map(|p| (p.addr() == v4, p.contains(v4), IpPrefix::V4(p.trunc())))
                    .ok_or(Problem::NoSubnet("address")),
                IpAddr::V6(v6) => a
                    .address6
                    .map(|p| (p.addr() == v6, p.contains(v6), IpPrefix::V6(p.trunc())))
                    .ok_or(Problem::NoSubnet("address6")),
            };
            match subnet {
                Ok((true, _, _)) => {
                    self.error(&obj, Problem::OwnAddress(ip));
                    continue;
                }
                Ok((false, true, _)) => {}
                Ok((false, false, subnet)) => {
                    self.error(&obj, Problem::OutsideSubnet { ip, subnet });
                    continue;
                }
                Err(problem) => {
                    self.error(&obj, problem);
                    continue;
                }
            }
            if self.neighbors.insert((att, ip), mac).is_some() {
                self.error(&obj, Problem::DefinedTwice);
            }
        }
    }

    fn fec(&mut self, fec: Fec) -> FecId {
        if let Some(id) = self.fec_index.get(&fec) {
            return *id;
        }
        let id = FecId(self.fecs.len() as u32);
        self.fecs.push(fec);
        self.fec_index.insert(fec, id);
        id
    }

    fn adjacency(&mut self, att: u16, next_hop: IpAddr) -> AdjacencyId {
        if let Some(id) = self.adj_index.get(&(att, next_hop)) {
            return *id;
        }
        let id = AdjacencyId(self.adjacencies.len() as u32);
        self.adjacencies.push(Adjacency::new(
            AttachmentId(att),
            next_hop,
            self.neighbors.get(&(att, next_hop)).copied(),
        ));
        self.adj_index.insert((att, next_hop), id);
        id
    }

    /// Connected subnets, our own addresses and static neighbours' host routes, of both
    /// families.
    fn connected(&mut self) {
        for i in 0..self.attachments.len() {
            let a = self.attachments[i].clone();
            let vrf = usize::from(a.vrf.0);
            let subnets = [
                a.address.map(|p| {
                    let host = Ipv4Prefix::new(p.addr(), 32).expect("32 is a valid length");
                    (IpPrefix::V4(p.trunc()), IpPrefix::V4(host))
                }),
                a.address6.map(|p| {
                    let host = Ipv6Prefix::new(p.addr(), 128).expect("128 is a valid length");
                    (IpPrefix::V6(p.trunc()), IpPrefix::V6(host))
                }),
            ];
            for (subnet, ours) in subnets.into_iter().flatten() {
                let glean = self.fec(Fec::Glean {
                    attachment: AttachmentId(i as u16),
                });
                self.routes[vrf].insert(subnet, (Source::Connected, glean));
                let local = self.fec(Fec::Local);
                self.routes[vrf].insert(ours, (Source::Local, local));
            }
            let hosts: Vec<IpAddr> = self
                .neighbors
                .range(
                    (i as u16, IpAddr::V4(Ipv4Addr::UNSPECIFIED))
                        ..(i as u16 + 1, IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
                )
                .map(|((_, ip), _)| *ip)
                .collect();
            for ip in hosts {
                let adj = self.adjacency(i as u16, ip);
                let fec = self.fec(Fec::Forward {
                    adj,
                    push: LabelStack::EMPTY,
                });
                self.routes[vrf].insert(host_prefix(ip), (Source::Neighbor, fec));
            }
        }
    }

    /// The router address: one of our addresses in the global table, like a loopback's.
    fn router_address(&mut self, config: &Config) {
        let Some(text) = &config.router.address else {
            return;
        };
        let addr = match text.parse::<Ipv4Addr>() {
            Ok(a)
                if !(a.is_unspecified()
                    || a.is_multicast()
                    || a.is_broadcast()
                    || a.is_loopback()) =>
            {
                a
            }
            _ => {
                self.error(&Object::Router, Problem::RouterAddress(text.clone()));
                return;
            }
        };
        let local = self.fec(Fec::Local);
        let host = Ipv4Prefix::new(addr, 32).expect("32 is a valid length");
        self.routes[usize::from(VrfId::GLOBAL.0)]
            .insert(IpPrefix::V4(host), (Source::Local, local));
    }

    fn claim_label(&mut self, n: i64, user: LabelUser) {
        if let Some(first) = claim(&mut self.label_users, n, user.clone()) {
            self.errors.push(duplicate_in_label(n, first, user));
        }
    }

    fn table_labels(&mut self, config: &Config) {
        for (j, v) in config.vrfs.iter().enumerate() {
            let Some(n) = v.table_label else { continue };
            match resolve::label(n, "table_label") {
                Ok(l) => {
                    self.table_labels[j + 1] = Some(l);
                    self.claim_label(n, LabelUser::Vrf(v.name.clone()));
                    self.ilm.push(IlmEntry {
                        label: l,
                        action: IlmAction::PopLookup {
                            vrf: VrfId(j as u16 + 1),
                        },
                        origin: IlmOrigin::TableLabel,
                        counter: 0,
                    });
                }
                Err(e) => self.error(&Object::Vrf(v.name.clone()), e),
            }
        }
    }

    /// Resolves `via` to an adjacency (see [`resolve::attachment`]).
    fn resolve(&mut self, obj: &Object, vrf: VrfId, via: &str, core: bool) -> Option<AdjacencyId> {
        let found = resolve::next_hop(via).and_then(|ip| {
            let name = &self.vrf_names[usize::from(vrf.0)];
            resolve::attachment(&self.attachments, vrf, name, ip, core).map(|att| (att, ip))
        });
        let (att, ip) = match found {
            Ok(found) => found,
            Err(e) => {
                self.error(obj, e);
                return None;
            }
        };
        Some(self.next_hop(obj, att, ip))
    }

    /// The adjacency of next hop `ip` on `att`, with a warning when no static neighbour
    /// resolves it.
    fn next_hop(&mut self, obj: &Object, att: AttachmentId, ip: IpAddr) -> AdjacencyId {
        if !self.neighbors.contains_key(&(att.0, ip)) {
            self.warnings.push(unresolved_next_hop(obj, ip));
        }
        self.adjacency(att.0, ip)
    }

    fn labels(
        &mut self,
        obj: &Object,
        labels: &[i64],
        explicit_null_ok: bool,
    ) -> Option<LabelStack> {
        resolve::labels(labels, explicit_null_ok)
            .map_err(|e| self.error(obj, e))
            .ok()
    }

    fn route(&mut self, vrf: VrfId, r: &Route, obj: &Object) {
        let prefix = match resolve::prefix(&r.prefix) {
            Ok(p) => p,
            Err(e) => {
                self.error(obj, e);
                return;
            }
        };
        let Some(push) = self.labels(obj, &r.labels, false) else {
            return;
        };
        let Some(adj) = self.resolve(obj, vrf, &r.via, !push.is_empty()) else {
            return;
        };
        let fec = self.fec(Fec::Forward { adj, push });
        let table = &mut self.routes[usize::from(vrf.0)];
        if let Some(&(source, _)) = table.get(&prefix) {
            let clash = RouteError::Clash {
                prefix,
                existing: source,
            };
            self.error(obj, clash);
            return;
        }
        table.insert(prefix, (Source::Static, fec));
    }

    fn label_entries(&mut self, config: &Config) {
        for (i, e) in config.labels.iter().enumerate() {
            let users = &mut self.label_users;
            let checked =
                check_label_entry(e, i + 1, &self.attachments, |n, user| claim(users, n, user));
            let c = match checked {
                Ok(c) => c,
                Err(errors) => {
                    self.errors.extend(errors);
                    continue;
                }
            };
            let obj = Object::LabelEntry {
                index: i + 1,
                in_label: e.in_label,
            };
            let adj = self.next_hop(&obj, c.attachment, c.next_hop);
            self.ilm.push(IlmEntry {
                label: c.label,
                action: c.action(adj),
                origin: IlmOrigin::LabelEntry(i + 1),
                counter: 0,
            });
        }
    }

    /// Builds the tables of a config that passed every check; what fails here is about
    /// [`Object::Tables`].
    fn finish(self, config: &Config) -> Result<(Snapshot, Rib), Problem> {
        let mut rib = Rib::new(self.vrf_names.len());
        for (j, table) in self.routes.iter().enumerate() {
            for (prefix, &(source, fec)) in table {
                rib.set(VrfId(j as u16), *prefix, source, Some(fec));
            }
        }
        rib.commit().map_err(Problem::Lpm)?;
        let vrfs = self
            .vrf_names
            .iter()
            .enumerate()
            .map(|(j, name)| {
                let (v4, v6) = rib.tables(VrfId(j as u16));
                TVrf {
                    name: name.clone(),
                    table_label: self.table_labels[j],
                    v4,
                    v6,
                }
            })
            .collect();
        Snapshot::new(SnapshotParts {
            name: config.router.name.clone(),
            ttl_mode: config.router.ttl_mode.into(),
            ports: self.ports,
            attachments: self.attachments,
            adjacencies: self.adjacencies,
            fecs: self.fecs,
            vrfs,
            ilm: self.ilm,
        })
        .map(|snapshot| (snapshot, rib))
        .map_err(Problem::Table)
    }
}

/// Two prefixes of one family that share addresses.
fn overlaps(a: IpPrefix, b: IpPrefix) -> bool {
    match (a, b) {
        (IpPrefix::V4(a), IpPrefix::V4(b)) => a.overlaps(&b),
        (IpPrefix::V6(a), IpPrefix::V6(b)) => a.overlaps(&b),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../examples/dx-pe.toml");

    fn errors_of(text: &str) -> Vec<String> {
        let config = Config::parse(text, "test.toml").expect("parses");
        match compile(&config, &Offline) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        }
    }

    /// The example with `from` replaced by `to` (exactly once).
    fn example_with(from: &str, to: &str) -> String {
        assert_eq!(EXAMPLE.matches(from).count(), 1, "{from:?} must occur once");
        EXAMPLE.replacen(from, to, 1)
    }

    fn assert_error(text: &str, expected: &str) {
        let errors = errors_of(text);
        assert!(
            errors.iter().any(|e| e.contains(expected)),
            "expected an error containing {expected:?}, got {errors:#?}"
        );
    }

    #[test]
    fn example_compiles_as_written() {
        let config = Config::parse(EXAMPLE, "dx-pe.toml").unwrap();
        let c = compile(&config, &Offline).unwrap();
        let s = &c.snapshot;
        assert_eq!(s.name(), "pe-dx");
        assert_eq!(s.vrfs().len(), 3);
        assert_eq!(s.ilm().len(), 4);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        // Both VRFs hold 198.18.10.0/24, resolved to different adjacencies.
        let a = s.vrf(s.vrf_by_name("vpc-a").unwrap());
        let b = s.vrf(s.vrf_by_name("vpc-b").unwrap());
        let dst = u32::from(Ipv4Addr::new(198, 18, 10, 9));
        let (fa, fb) = (a.v4.lookup(dst).unwrap(), b.v4.lookup(dst).unwrap());
        assert_ne!(fa, fb);
    }

    #[test]
    fn duplicate_in_label_names_both_users() {
        let text = example_with("in = 16004", "in = 1001");
        assert_error(
            &text,
            "duplicate in-label 1001 used by vrf \"vpc-a\" and label entry 2",
        );
    }

    #[test]
    fn vlan_attached_twice() {
        let text = example_with("vlan = 102\naddress", "vlan = 101\naddress");
        assert_error(
            &text,
            "VLAN 101 attached twice (vrf \"vpc-a\" and vrf \"vpc-b\")",
        );
    }

    #[test]
    fn via_outside_connected_subnets() {
        let text = example_with(
            "prefix = \"198.18.10.0/24\"       # the VPC, behind the virtual private gateway\nvia = \"169.254.10.2\"",
            "prefix = \"198.18.10.0/24\"\nvia = \"169.254.20.2\"",
        );
        assert_error(
            &text,
            "via 169.254.20.2 is not in any connected subnet of vrf \"vpc-a\"",
        );
        let text = example_with(
            "labels = [16001, 2002]",
            "labels = [16001, 2002]\nvia = \"198.18.5.5\"",
        );
        // A duplicate key is a TOML error, not a semantic one.
        assert!(Config::parse(&text, "t").is_err());
        let text = EXAMPLE.replace(
            "via = \"198.18.0.2\"\nlabels = [16001, 2002]",
            "via = \"198.18.5.5\"\nlabels = [16001, 2002]",
        );
        assert_error(
            &text,
            "via 198.18.5.5 is not in any core interface's subnet",
        );
    }

    #[test]
    fn label_ranges() {
        assert_error(
            &example_with("in = 16002", "in = 15"),
            "in-label 15 is outside 16..1048575",
        );
        assert_error(
            &example_with("table_label = 1002", "table_label = 1048576"),
            "table_label 1048576 is outside 16..1048575",
        );
        assert_error(
            &example_with("labels = [16001, 2002]", "labels = [3, 2002]"),
            "label 3 is outside 16..1048575",
        );
        assert_error(
            &example_with("out = [16003] ", "out = [1] "),
            "label 1 is outside 16..1048575",
        );
        // Explicit null is a valid outgoing label of a swap.
        assert!(errors_of(&example_with("out = [16003] ", "out = [0] ")).is_empty());
    }

    #[test]
    fn unknown_interface() {
        let text = example_with(
            "interface = \"dx0\"\nvlan = 102\naddress",
            "interface = \"dx9\"\nvlan = 102\naddress",
        );
        assert_error(&text, "unknown interface \"dx9\"");
    }

    #[test]
    fn swap_and_pop_shapes() {
        let text = example_with("action = \"swap\"\nout = [16003]                   # one or more labels, outermost first\n", "action = \"swap\"\n");
        assert_error(&text, "swap needs `out`");
        let text = example_with(
            "action = \"pop\"                  # penultimate-hop pop, then forward\n",
            "action = \"pop\"\nout = [5]\n",
        );
        assert_error(&text, "pop takes no `out` labels");
    }

    #[test]
    fn a_label_entry_is_checked_alone_as_in_a_config() {
        // Its label is vpc-a's table label, and a pop takes no `out`: both are reported.
        let text = example_with(
            "in = 16004\naction = \"pop\"",
            "in = 1001\nout = [16005]\naction = \"pop\"",
        );
        let errors = config_errors(&text);
        assert_eq!(
            errors,
            [
                ConfigError {
                    object: Object::Label(1001),
                    problem: Problem::DuplicateInLabel {
                        label: 1001,
                        first: LabelUser::Vrf("vpc-a".into()),
                        second: LabelUser::LabelEntry(2),
                    },
                },
                ConfigError {
                    object: Object::LabelEntry {
                        index: 2,
                        in_label: 1001
                    },
                    problem: Problem::PopWithOut,
                },
            ]
        );
        let config = Config::parse(&text, "t").unwrap();
        let running = compile(&Config::parse(EXAMPLE, "t").unwrap(), &Offline).unwrap();
        let alone = check_label_entry(
            &config.labels[1],
            2,
            running.snapshot.attachments(),
            |n, _| (n == 1001).then(|| LabelUser::Vrf("vpc-a".into())),
        );
        assert_eq!(alone, Err(errors));
        // A good one: the core attachment and the next hop.
        let checked = check_label_entry(
            &config.labels[0],
            1,
            running.snapshot.attachments(),
            |_, _| None,
        )
        .unwrap();
        assert_eq!(
            (checked.label.get(), checked.attachment, checked.next_hop),
            (
                16002,
                AttachmentId(0),
                IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2))
            )
        );
        assert_eq!(
            checked.swap.map(|s| s.to_string()),
            Some("16003".to_string())
        );
    }

    #[test]
    fn prefix_with_host_bits_gets_a_hint() {
        let text = example_with(
            "prefix = \"2001:db8:20::/48\"",
            "prefix = \"198.19.21.1/24\"",
        );
        assert_error(
            &text,
            "prefix 198.19.21.1/24 has host bits set; did you mean 198.19.21.0/24?",
        );
    }

    #[test]
    fn neighbour_checks() {
        assert_error(
            &example_with(
                "vlan = 101\nip = \"169.254.10.2\"",
                "vlan = 103\nip = \"169.254.10.2\"",
            ),
            "no VRF is attached to VLAN 103 on dx0",
        );
        assert_error(
            &example_with(
                "vlan = 101\nip = \"169.254.10.2\"",
                "vlan = 101\nip = \"169.254.10.1\"",
            ),
            "169.254.10.1 is our own address",
        );
        assert_error(
            &example_with("ip = \"198.18.0.2\"", "ip = \"198.18.0.9\""),
            "198.18.0.9 is not in the connected subnet 198.18.0.0/30",
        );
    }

    #[test]
    fn interface_checks() {
        assert_error(
            &example_with("mtu = 9001", "mtu = 20000"),
            "mtu 20000 is outside 68..9216",
        );
        assert_error(
            &example_with("mac = \"02:00:00:00:01:02\"", "mac = \"01:00:5e:00:00:01\""),
            "is not a unicast address",
        );
        assert_error(
            &example_with("mac = \"02:00:00:00:01:02\"\n", ""),
            "no mac given",
        );
        assert_error(
            &example_with("address = \"198.18.0.1/30\"", "address = \"198.18.0.0/30\""),
            "network or broadcast address",
        );
        assert_error(
            &example_with("name = \"dx0\"", "name = \"core0\""),
            "defined twice",
        );
    }

    #[test]
    fn core_subnets_may_not_overlap() {
        // The lab's p1 with its first link as a /29 that covers the second link's /30.
        let p1 = include_str!("../../examples/lab/p1.toml");
        assert!(errors_of(p1).is_empty());
        let overlapping = p1
            .replace("198.18.0.10/29", "198.18.0.2/29")
            .replace("via = \"198.18.0.9\"", "via = \"198.18.0.1\"");
        assert_eq!(
            errors_of(&overlapping),
            ["interface \"east\": subnet 198.18.0.4/30 overlaps 198.18.0.0/29 of interface \"west\": core interfaces' subnets may not overlap (a next hop in both would have two ways out)"]
        );
    }

    /// The example with an IPv6 address on core0 and on both VPCs' attachments.
    fn example_with_v6(core: &str, vpc_a: &str, vpc_b: &str) -> String {
        let text = example_with(
            "address = \"198.18.0.1/30\"",
            &format!("address = \"198.18.0.1/30\"\naddress6 = \"{core}\""),
        );
        let mut parts = text.splitn(3, "address = \"169.254.10.1/30\"");
        let (head, a, b) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        format!(
            "{head}address = \"169.254.10.1/30\"\naddress6 = \"{vpc_a}\"{a}address = \"169.254.10.1/30\"\naddress6 = \"{vpc_b}\"{b}"
        )
    }

    #[test]
    fn ipv6_addresses_are_local_and_their_subnets_connected() {
        // The same subnet in two VRFs, as for IPv4.
        let text = example_with_v6("2001:db8::1/64", "2001:db8:a::1/64", "2001:db8:a::1/64");
        let config = Config::parse(&text, "t").unwrap();
        let c = compile(&config, &Offline).unwrap();
        let s = &c.snapshot;
        let core = s.attachment(AttachmentId(0));
        assert_eq!(core.address6, Some("2001:db8::1/64".parse().unwrap()));
        let global = s.vrf(VrfId::GLOBAL);
        let fec = |v: &TVrf, ip: &str| {
            v.v6.lookup(u128::from(ip.parse::<std::net::Ipv6Addr>().unwrap()))
                .map(|f| *s.fec(FecId(f)))
        };
        assert_eq!(fec(global, "2001:db8::1"), Some(Fec::Local));
        assert_eq!(
            fec(global, "2001:db8::2"),
            Some(Fec::Glean {
                attachment: AttachmentId(0)
            })
        );
        for name in ["vpc-a", "vpc-b"] {
            let v = s.vrf(s.vrf_by_name(name).unwrap());
            assert_eq!(fec(v, "2001:db8:a::1"), Some(Fec::Local), "{name}");
            assert!(matches!(fec(v, "2001:db8:a::9"), Some(Fec::Glean { .. })));
            assert_eq!(fec(v, "2001:db8::1"), None, "{name} does not see the core");
        }
        // A link-local address is the port's own, from its MAC: not in the tables.
        assert_eq!(
            s.port(PortId(1)).link_local(),
            "fe80::ff:fe00:102".parse::<std::net::Ipv6Addr>().unwrap()
        );
        // A route may not take our address or a connected subnet.
        assert_error(
            &text.replace(
                "prefix = \"2001:db8:20::/48\"",
                "prefix = \"2001:db8:a::/64\"",
            ),
            "prefix 2001:db8:a::/64 is already a connected subnet in this table",
        );
    }

    #[test]
    fn ipv6_address_checks() {
        let bad = |core: &str, a: &str, expected: &str| {
            assert_error(&example_with_v6(core, a, "2001:db8:b::1/64"), expected);
        };
        bad(
            "2001:db8::1",
            "2001:db8:a::1/64",
            "interface \"core0\": address6 `2001:db8::1` is not a prefix",
        );
        bad(
            "2001:db8::1/129",
            "2001:db8:a::1/64",
            "address6 `2001:db8::1/129`: prefix length must be 0..=128",
        );
        bad(
            "2001:db8::/64",
            "2001:db8:a::1/64",
            "address6 2001:db8::/64 is the subnet's Subnet-Router anycast address",
        );
        bad(
            "2001:db8::1/128",
            "2001:db8:a::1/64",
            "address6 2001:db8::1/128 has no subnet",
        );
        bad(
            "fe80::1/64",
            "2001:db8:a::1/64",
            "address6 fe80::1/64 is not a global unicast address",
        );
        bad(
            "2001:db8::1/64",
            "ff02::1/64",
            "vrf \"vpc-a\" attachment dx0 VLAN 101: address6 ff02::1/64 is not a global unicast address",
        );
        bad(
            "2001:db8::1/64",
            "198.18.0.1/30",
            "address6 `198.18.0.1` is not a valid address",
        );
        // A /127 has no anycast address to avoid (RFC 6164).
        assert!(errors_of(&example_with_v6(
            "2001:db8::/127",
            "2001:db8:a::1/64",
            "2001:db8:b::1/64"
        ))
        .is_empty());
        // Edge interfaces take no address of either family.
        assert_error(
            &example_with("mtu = 9001", "mtu = 9001\naddress6 = \"2001:db8:e::1/64\""),
            "interface \"dx0\": an edge interface takes no address",
        );
    }

    #[test]
    fn ipv6_subnets_of_one_vrf_may_not_overlap() {
        // A second attachment of vpc-a on an untagged dx1, overlapping VLAN 101's subnet.
        let text = example_with_v6("2001:db8::1/64", "2001:db8:a::1/64", "2001:db8:a::1/64")
            .replacen(
                "[[neighbor]]",
                "[[interface]]\nname = \"dx1\"\nkind = \"edge\"\nmac = \"02:00:00:00:01:03\"\n\n[[neighbor]]",
                1,
            )
            .replacen(
                "[[vrf.route]]",
                "[[vrf.attachment]]\ninterface = \"dx1\"\naddress6 = \"2001:db8:a:0:8000::1/65\"\n\n[[vrf.route]]",
                1,
            );
        assert_error(
            &text,
            "vrf \"vpc-a\" attachment dx1 untagged: subnet 2001:db8:a:0:8000::1/65 overlaps 2001:db8:a::1/64 of another attachment of the same VRF",
        );
    }

    #[test]
    fn ipv6_next_hops_and_static_neighbours() {
        // vpc-a reaches 2001:db8:30::/48 through a customer router on its VLAN, resolved by a
        // static IPv6 neighbour; vpc-b's router there is left to neighbour discovery; a
        // labelled route leaves by an IPv6 next hop on core0.
        let text = example_with_v6("2001:db8::1/64", "2001:db8:a::1/64", "2001:db8:b::1/64")
            .replacen(
                "[[vrf]]",
                "[[neighbor]]\ninterface = \"dx0\"\nvlan = 101\nip = \"2001:DB8:A::2\"\nmac = \"02:00:00:00:aa:06\"\n\n[[vrf]]",
                1,
            )
            .replace(
                "prefix = \"2001:db8:20::/48\"\nvia = \"198.18.0.2\"",
                "prefix = \"2001:db8:20::/48\"\nvia = \"2001:db8::2\"",
            )
            .replacen(
                "[[vrf.route]]",
                "[[vrf.route]]\nprefix = \"2001:db8:30::/48\"\nvia = \"2001:db8:a::2\"\n\n[[vrf.route]]",
                1,
            )
            + "\n[[vrf.route]]\nprefix = \"2001:db8:31::/48\"\nvia = \"2001:db8:b::2\"\n";
        let config = Config::parse(&text, "t").unwrap();
        let c = compile(&config, &Offline).unwrap_or_else(|e| panic!("{e}"));
        let s = &c.snapshot;
        let lookup = |vrf: &str, ip: &str| {
            let v = s.vrf(s.vrf_by_name(vrf).unwrap());
            let fec =
                v.v6.lookup(u128::from(ip.parse::<std::net::Ipv6Addr>().unwrap()));
            *s.fec(FecId(fec.expect("a route")))
        };
        let via = |fec: Fec| match fec {
            Fec::Forward { adj, push } => {
                let a = s.adjacency(adj);
                (a.next_hop.to_string(), a.mac, push.len())
            }
            other => panic!("{other:?}"),
        };
        let mac = MacAddr([2, 0, 0, 0, 0xaa, 6]);
        assert_eq!(
            via(lookup("vpc-a", "2001:db8:30::1")),
            ("2001:db8:a::2".into(), Some(mac), 0)
        );
        // The static neighbour's host route, a /128.
        assert_eq!(
            via(lookup("vpc-a", "2001:db8:a::2")),
            ("2001:db8:a::2".into(), Some(mac), 0)
        );
        assert_eq!(
            c.rib.candidates(
                s.vrf_by_name("vpc-a").unwrap(),
                "2001:db8:a::2/128".parse().unwrap()
            )[0]
            .source,
            Source::Neighbor
        );
        assert_eq!(
            via(lookup("vpc-b", "2001:db8:31::1")),
            ("2001:db8:b::2".into(), None, 0)
        );
        assert_eq!(
            via(lookup("vpc-a", "2001:db8:20::1")),
            ("2001:db8::2".into(), None, 2)
        );
        assert!(
            c.warnings.iter().any(|w| w
                == "vrf \"vpc-b\" route 2001:db8:31::/48: via 2001:db8:b::2 has no static neighbour; its traffic counts as no-neighbor until neighbour discovery resolves it"),
            "{:?}",
            c.warnings
        );
    }

    #[test]
    fn ipv6_next_hop_and_neighbour_checks() {
        let base = example_with_v6("2001:db8::1/64", "2001:db8:a::1/64", "2001:db8:b::1/64");
        let with_route = |via: &str| {
            base.replacen(
                "[[vrf.route]]",
                &format!("[[vrf.route]]\nprefix = \"2001:db8:30::/48\"\nvia = \"{via}\"\n\n[[vrf.route]]"),
                1,
            )
        };
        assert_error(
            &with_route("2001:db8:b::2"),
            "vrf \"vpc-a\" route 2001:db8:30::/48: via 2001:db8:b::2 is not in any connected subnet of vrf \"vpc-a\"",
        );
        assert_error(
            &with_route("fe80::2"),
            "via fe80::2 is a link-local address: give the next hop's global address",
        );
        assert_error(
            &with_route("2001:db8:a::1"),
            "via 2001:db8:a::1 is our own address",
        );
        let with_neighbor = |vlan: u16, ip: &str, text: &str| {
            text.replacen(
                "[[vrf]]",
                &format!("[[neighbor]]\ninterface = \"dx0\"\nvlan = {vlan}\nip = \"{ip}\"\nmac = \"02:00:00:00:aa:06\"\n\n[[vrf]]"),
                1,
            )
        };
        assert_error(
            &with_neighbor(101, "2001:db8:b::2", &base),
            "neighbor 2001:db8:b::2 on dx0: 2001:db8:b::2 is not in the connected subnet 2001:db8:a::/64",
        );
        assert_error(
            &with_neighbor(101, "2001:db8:a::1", &base),
            "2001:db8:a::1 is our own address on this subnet",
        );
        assert_error(
            &with_neighbor(101, "2001:db8:a::2", EXAMPLE),
            "neighbor 2001:db8:a::2 on dx0: the attachment has no address6, so no connected subnet for it",
        );
        assert_error(
            &with_neighbor(101, "not-an-ip", &base),
            "ip \"not-an-ip\" is not an IPv4 or IPv6 address",
        );
    }

    #[test]
    fn every_error_is_reported_at_once() {
        let text = example_with("in = 16002", "in = 15").replace("mtu = 9001", "mtu = 1");
        assert!(errors_of(&text).len() >= 2);
    }

    #[test]
    fn unresolved_next_hop_is_a_warning() {
        let text = EXAMPLE.replace(
            "[[neighbor]]\ninterface = \"dx0\"\nvlan = 102\nip = \"169.254.10.2\"             # the same address in another VRF is another neighbour\nmac = \"02:00:00:00:bb:01\"\n",
            "",
        );
        assert_ne!(text, EXAMPLE);
        let c = compile(&Config::parse(&text, "t").unwrap(), &Offline).unwrap();
        assert!(
            c.warnings.iter().any(|w| w.contains("no static neighbour")),
            "{:?}",
            c.warnings
        );
    }

    fn config_errors(text: &str) -> Vec<ConfigError> {
        let config = Config::parse(text, "test.toml").expect("parses");
        compile(&config, &Offline).expect_err("must be refused").0
    }

    #[test]
    fn objects_are_named_as_before() {
        let vlan = VlanId::new(101);
        for (object, text) in [
            (Object::Router, "router"),
            (Object::Config, "config"),
            (Object::Interface("dx0".into()), "interface \"dx0\""),
            (Object::Vrf("vpc-a".into()), "vrf \"vpc-a\""),
            (
                Object::AttachmentOn {
                    vrf: "vpc-a".into(),
                    interface: "dx0".into(),
                },
                "vrf \"vpc-a\" attachment on dx0",
            ),
            (
                Object::Attachment {
                    vrf: "vpc-a".into(),
                    interface: "dx0".into(),
                    vlan,
                },
                "vrf \"vpc-a\" attachment dx0 VLAN 101",
            ),
            (
                Object::Attachment {
                    vrf: "vpc-a".into(),
                    interface: "dx1".into(),
                    vlan: None,
                },
                "vrf \"vpc-a\" attachment dx1 untagged",
            ),
            (
                Object::Neighbor {
                    ip: "169.254.10.2".into(),
                    interface: "dx0".into(),
                },
                "neighbor 169.254.10.2 on dx0",
            ),
            (
                Object::Route {
                    vrf: None,
                    index: 3,
                    prefix: "10.0.0.0/8".into(),
                },
                "global route 3",
            ),
            (
                Object::Route {
                    vrf: Some("vpc-a".into()),
                    index: 2,
                    prefix: "198.19.20.0/24".into(),
                },
                "vrf \"vpc-a\" route 198.19.20.0/24",
            ),
            (Object::Label(1001), "label 1001"),
            (
                Object::LabelEntry {
                    index: 2,
                    in_label: 16004,
                },
                "label entry 2 (in 16004)",
            ),
            (Object::Tables, "tables"),
        ] {
            assert_eq!(object.to_string(), text);
        }
    }

    #[test]
    fn errors_carry_their_object_and_data() {
        let errors = config_errors(&example_with("in = 16004", "in = 1001"));
        assert_eq!(
            errors,
            [ConfigError {
                object: Object::Label(1001),
                problem: Problem::DuplicateInLabel {
                    label: 1001,
                    first: LabelUser::Vrf("vpc-a".into()),
                    second: LabelUser::LabelEntry(2),
                },
            }]
        );
        // A refusal of the checks `route add` shares keeps its own type.
        let errors = config_errors(&EXAMPLE.replace(
            "via = \"198.18.0.2\"\nlabels = [16001, 2002]",
            "via = \"198.18.5.5\"\nlabels = [16001, 2002]",
        ));
        assert!(
            errors.iter().any(|e| matches!(
                e,
                ConfigError {
                    object: Object::Route { vrf: Some(vrf), index: 2, .. },
                    problem: Problem::Route(RouteError::Unreachable { ip, .. }),
                } if vrf == "vpc-b" && *ip == IpAddr::V4(Ipv4Addr::new(198, 18, 5, 5))
            )),
            "{errors:#?}"
        );
        // A parse error is kept as the source.
        let errors = config_errors(&example_with(
            "mac = \"02:00:00:00:aa:01\"",
            "mac = \"02:00:00:00:aa\"",
        ));
        let e = errors
            .iter()
            .find(|e| matches!(e.problem, Problem::BadMac { .. }))
            .expect("a bad neighbour MAC");
        assert!(std::error::Error::source(&e.problem).is_some());
        assert_eq!(
            e.to_string(),
            "neighbor 169.254.10.2 on dx0: mac \"02:00:00:00:aa\" is not a MAC address like 02:00:00:00:01:01"
        );
    }
}

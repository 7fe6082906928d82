//! Validates a [`Config`] and compiles it into a dataplane [`Snapshot`].
//!
//! All checks run before anything is built and every problem is reported, each naming the
//! object at fault (the VRF, the label entry, the VLAN), so one `xpe check` shows the whole
//! list. Nothing is published unless the whole config is valid: a config is applied whole or
//! not at all.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::Ipv4Addr;

use xpe_dataplane::tables::{
    Adjacency, AdjacencyId, Attachment as TAttachment, AttachmentId, Fec, FecId, IlmAction,
    IlmEntry, IlmOrigin, IpPrefix, Ipv4Prefix, LabelStack, Port, PortId, PortKind, Snapshot,
    SnapshotParts, Vrf as TVrf, VrfId,
};
use xpe_dataplane::wire::ethernet::MacAddr;
use xpe_dataplane::wire::mpls::Label;
use xpe_dataplane::wire::vlan::VlanId;

use crate::config::{Config, InterfaceKind, LabelAction, Route};
use crate::resolve::{self, RouteError};
use crate::rib::{Rib, Source};

/// Smallest and largest interface MTU accepted (RFC 791 minimum; common jumbo maximum).
pub const MTU_RANGE: std::ops::RangeInclusive<u32> = 68..=9216;
pub use crate::resolve::LABEL_RANGE;

/// One thing wrong with a config, naming the object at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The object: `interface "dx0"`, `vrf "vpc-a" route 198.19.20.0/24`, `label entry 2`.
    pub object: String,
    /// What is wrong, and where useful what to do.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.object, self.message)
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
}

/// Validates `config` and compiles its tables.
pub fn compile(config: &Config, macs: &dyn MacSource) -> Result<Compiled, ConfigErrors> {
    let mut c = Compiler::default();
    c.run(config, macs);
    if !c.errors.is_empty() {
        return Err(ConfigErrors(c.errors));
    }
    let warnings = std::mem::take(&mut c.warnings);
    match c.finish(config) {
        Ok((snapshot, rib)) => Ok(Compiled {
            snapshot,
            rib,
            warnings,
        }),
        Err(e) => Err(ConfigErrors(vec![e])),
    }
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
    adj_index: HashMap<(u16, Ipv4Addr), AdjacencyId>,
    adjacencies: Vec<Adjacency>,
    /// Static neighbours by (attachment, ip).
    neighbors: BTreeMap<(u16, Ipv4Addr), MacAddr>,
    fec_index: HashMap<Fec, FecId>,
    fecs: Vec<Fec>,
    /// Routes per VRF: prefix -> (origin, fec).
    routes: Vec<BTreeMap<IpPrefix, (Source, FecId)>>,
    ilm: Vec<IlmEntry>,
    /// In-label -> who uses it, for duplicate reports.
    label_users: BTreeMap<i64, String>,
}

fn err(object: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError {
        object: object.into(),
        message: message.into(),
    }
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

fn vlan_of(v: Option<i64>) -> Result<Option<VlanId>, String> {
    match v {
        None => Ok(None),
        Some(n) => u16::try_from(n)
            .ok()
            .and_then(VlanId::new)
            .map(Some)
            .ok_or_else(|| {
                format!("VLAN {n} is outside 1..4094 (0 and 4095 are reserved by 802.1Q)")
            }),
    }
}

fn vlan_text(v: Option<VlanId>) -> String {
    v.map_or("untagged".to_string(), |v| format!("VLAN {v}"))
}

fn label_of(n: i64, what: &'static str) -> Result<Label, String> {
    resolve::label(n, what).map_err(|e| e.to_string())
}

impl Compiler {
    fn run(&mut self, config: &Config, macs: &dyn MacSource) {
        if config.router.name.trim().is_empty() {
            self.errors.push(err("router", "name must not be empty"));
        }
        self.interfaces(config, macs);
        self.vrfs(config);
        self.neighbors(config);
        self.connected();
        self.table_labels(config);
        for (i, r) in config.routes.iter().enumerate() {
            self.route(VrfId::GLOBAL, r, &format!("global route {}", i + 1));
        }
        for (j, v) in config.vrfs.iter().enumerate() {
            for r in &v.routes {
                self.route(
                    VrfId(j as u16 + 1),
                    r,
                    &format!("vrf \"{}\" route {}", v.name, r.prefix),
                );
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
            let obj = format!("interface \"{}\"", ifc.name);
            if !valid_ifname(&ifc.name) {
                self.errors.push(err(
                    &obj,
                    "not a valid Linux interface name (1 to 15 characters, no '/', ':' or spaces)",
                ));
            }
            if let Some(first) = seen.insert(ifc.name.clone(), i) {
                self.errors.push(err(
                    &obj,
                    format!(
                        "defined twice (interface entries {} and {})",
                        first + 1,
                        i + 1
                    ),
                ));
            }
            let mac = match &ifc.mac {
                Some(text) => match text.parse::<MacAddr>() {
                    Ok(m) if m.is_unicast() && m != MacAddr([0; 6]) => Some(m),
                    Ok(_) => {
                        self.errors
                            .push(err(&obj, format!("mac {text} is not a unicast address")));
                        None
                    }
                    Err(_) => {
                        self.errors.push(err(
                            &obj,
                            format!("mac \"{text}\" is not a MAC address like 02:00:00:00:01:01"),
                        ));
                        None
                    }
                },
                None => {
                    let m = macs.mac_of(&ifc.name);
                    if m.is_none() {
                        self.errors.push(err(
                            &obj,
                            "no mac given, and there is no interface of that name here to read it from: add `mac = \"..\"` (xpe run reads it from the interface)",
                        ));
                    }
                    m
                }
            };
            if !MTU_RANGE.contains(&ifc.mtu) {
                self.errors.push(err(
                    &obj,
                    format!(
                        "mtu {} is outside {}..{}",
                        ifc.mtu,
                        MTU_RANGE.start(),
                        MTU_RANGE.end()
                    ),
                ));
            }
            let address = match (&ifc.address, ifc.kind) {
                (None, _) => None,
                (Some(_), InterfaceKind::Edge) => {
                    self.errors.push(err(
                        &obj,
                        "an edge interface takes no address: give it to the VRF attachment instead",
                    ));
                    None
                }
                (Some(text), InterfaceKind::Core) => self.subnet(&obj, text),
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
                self.attachments.push(TAttachment {
                    port,
                    vlan: None,
                    vrf: VrfId::GLOBAL,
                    address,
                });
            }
        }
        if self.ports.len() > 256 {
            self.errors.push(err("config", "more than 256 interfaces"));
        }
    }

    /// Parses an interface address: host bits required (it is ours), not the subnet's
    /// network or broadcast address.
    fn subnet(&mut self, obj: &str, text: &str) -> Option<Ipv4Prefix> {
        let p = match text.parse::<Ipv4Prefix>() {
            Ok(p) => p,
            Err(e) => {
                self.errors.push(err(obj, format!("address {e}")));
                return None;
            }
        };
        if p.len() == 32 {
            self.errors.push(err(
                obj,
                format!("address {p} has no subnet: neighbours need a prefix of /31 or shorter"),
            ));
            return None;
        }
        if p.len() < 31 && (p.addr() == p.network() || p.addr() == p.broadcast()) {
            self.errors.push(err(
                obj,
                format!("address {p} is the subnet's network or broadcast address"),
            ));
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
            let obj = format!("vrf \"{}\"", v.name);
            if v.name.is_empty() || v.name == "global" {
                self.errors.push(err(
                    &obj,
                    "name must be non-empty and not \"global\" (the core table)",
                ));
            }
            if names.insert(v.name.clone(), j).is_some() {
                self.errors.push(err(&obj, "defined twice"));
            }
            self.vrf_names.push(v.name.clone());
            self.table_labels.push(None);
            self.routes.push(BTreeMap::new());
            let mut subnets: Vec<Ipv4Prefix> = Vec::new();
            for a in &v.attachments {
                let vlan = match vlan_of(a.vlan) {
                    Ok(v) => v,
                    Err(m) => {
                        self.errors
                            .push(err(format!("{obj} attachment on {}", a.interface), m));
                        continue;
                    }
                };
                let aobj = format!("{obj} attachment {} {}", a.interface, vlan_text(vlan));
                let Some((port, kind)) = self.port_named(config, &a.interface) else {
                    self.errors
                        .push(err(&aobj, format!("unknown interface \"{}\"", a.interface)));
                    continue;
                };
                if kind == InterfaceKind::Core {
                    self.errors.push(err(
                        &aobj,
                        format!(
                            "{} is a core interface (global table); attach VRFs to edge interfaces",
                            a.interface
                        ),
                    ));
                    continue;
                }
                let slot = (port.0, vlan.map_or(0, |v| v.get()));
                if let Some(other) = slots.insert(slot, v.name.clone()) {
                    self.errors.push(err(
                        format!("interface \"{}\"", a.interface),
                        format!(
                            "{} attached twice (vrf \"{other}\" and vrf \"{}\")",
                            vlan_text(vlan),
                            v.name
                        ),
                    ));
                    continue;
                }
                let address = a.address.as_ref().and_then(|t| self.subnet(&aobj, t));
                if let Some(p) = address {
                    if let Some(o) = subnets.iter().find(|o| o.overlaps(&p)) {
                        self.errors.push(err(
                            &aobj,
                            format!(
                                "subnet {p} overlaps {o} of another attachment of the same VRF"
                            ),
                        ));
                    }
                    subnets.push(p);
                }
                self.attachments.push(TAttachment {
                    port,
                    vlan,
                    vrf,
                    address,
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
            let obj = format!("neighbor {} on {}", n.ip, n.interface);
            let vlan = match vlan_of(n.vlan) {
                Ok(v) => v,
                Err(m) => {
                    self.errors.push(err(&obj, m));
                    continue;
                }
            };
            let Some((port, kind)) = self.port_named(config, &n.interface) else {
                self.errors
                    .push(err(&obj, format!("unknown interface \"{}\"", n.interface)));
                continue;
            };
            if kind == InterfaceKind::Core && vlan.is_some() {
                self.errors
                    .push(err(&obj, "core interfaces are untagged: remove `vlan`"));
                continue;
            }
            let Some(att) = self.attachment_at(port, vlan) else {
                self.errors.push(err(
                    &obj,
                    format!(
                        "no VRF is attached to {} on {}",
                        vlan_text(vlan),
                        n.interface
                    ),
                ));
                continue;
            };
            let ip = match n.ip.parse::<Ipv4Addr>() {
                Ok(ip) => ip,
                Err(_) => {
                    self.errors
                        .push(err(&obj, format!("ip \"{}\" is not an IPv4 address", n.ip)));
                    continue;
                }
            };
            let mac = match n.mac.parse::<MacAddr>() {
                Ok(m) if m.is_unicast() => m,
                _ => {
                    self.errors.push(err(
                        &obj,
                        format!("mac \"{}\" is not a unicast MAC address", n.mac),
                    ));
                    continue;
                }
            };
            match self.attachments[usize::from(att)].address {
                Some(p) if p.addr() == ip => {
                    self.errors
                        .push(err(&obj, format!("{ip} is our own address on this subnet")));
                    continue;
                }
                Some(p) if p.contains(ip) => {}
                Some(p) => {
                    self.errors.push(err(
                        &obj,
                        format!("{ip} is not in the connected subnet {}", p.trunc()),
                    ));
                    continue;
                }
                None => {
                    self.errors.push(err(
                        &obj,
                        "the attachment has no address, so no connected subnet",
                    ));
                    continue;
                }
            }
            if self.neighbors.insert((att, ip), mac).is_some() {
                self.errors.push(err(&obj, "defined twice"));
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

    fn adjacency(&mut self, att: u16, next_hop: Ipv4Addr) -> AdjacencyId {
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

    /// Connected subnets, our own addresses and static neighbours' host routes.
    fn connected(&mut self) {
        for i in 0..self.attachments.len() {
            let a = self.attachments[i].clone();
            let Some(p) = a.address else { continue };
            let vrf = usize::from(a.vrf.0);
            let glean = self.fec(Fec::Glean {
                attachment: AttachmentId(i as u16),
            });
            self.routes[vrf].insert(IpPrefix::V4(p.trunc()), (Source::Connected, glean));
            let local = self.fec(Fec::Local);
            let host = Ipv4Prefix::new(p.addr(), 32).expect("32 is a valid length");
            self.routes[vrf].insert(IpPrefix::V4(host), (Source::Local, local));
            let hosts: Vec<Ipv4Addr> = self
                .neighbors
                .range((i as u16, Ipv4Addr::UNSPECIFIED)..=(i as u16, Ipv4Addr::BROADCAST))
                .map(|((_, ip), _)| *ip)
                .collect();
            for ip in hosts {
                let adj = self.adjacency(i as u16, ip);
                let fec = self.fec(Fec::Forward {
                    adj,
                    push: LabelStack::EMPTY,
                });
                let host = Ipv4Prefix::new(ip, 32).expect("32 is a valid length");
                self.routes[vrf].insert(IpPrefix::V4(host), (Source::Neighbor, fec));
            }
        }
    }

    fn claim_label(&mut self, n: i64, user: String) {
        if let Some(first) = self.label_users.get(&n) {
            self.errors.push(err(
                format!("label {n}"),
                format!("duplicate in-label {n} used by {first} and {user}"),
            ));
        } else {
            self.label_users.insert(n, user);
        }
    }

    fn table_labels(&mut self, config: &Config) {
        for (j, v) in config.vrfs.iter().enumerate() {
            let Some(n) = v.table_label else { continue };
            match label_of(n, "table_label") {
                Ok(l) => {
                    self.table_labels[j + 1] = Some(l);
                    self.claim_label(n, format!("vrf \"{}\"", v.name));
                    self.ilm.push(IlmEntry {
                        label: l,
                        action: IlmAction::PopLookup {
                            vrf: VrfId(j as u16 + 1),
                        },
                        origin: IlmOrigin::TableLabel,
                        counter: 0,
                    });
                }
                Err(m) => self.errors.push(err(format!("vrf \"{}\"", v.name), m)),
            }
        }
    }

    /// Resolves `via` to an adjacency (see [`resolve::attachment`]).
    fn resolve(&mut self, obj: &str, vrf: VrfId, via: &str, core: bool) -> Option<AdjacencyId> {
        let found = resolve::next_hop(via).and_then(|ip| {
            let name = &self.vrf_names[usize::from(vrf.0)];
            resolve::attachment(&self.attachments, vrf, name, ip, core).map(|att| (att, ip))
        });
        let (att, ip) = match found {
            Ok(found) => found,
            Err(e) => {
                self.errors.push(err(obj, e.to_string()));
                return None;
            }
        };
        if !self.neighbors.contains_key(&(att.0, ip)) {
            self.warnings.push(format!(
                "{obj}: via {ip} has no static neighbour; its traffic counts as no-neighbor until ARP resolves it"
            ));
        }
        Some(self.adjacency(att.0, ip))
    }

    fn labels(&mut self, obj: &str, labels: &[i64], explicit_null_ok: bool) -> Option<LabelStack> {
        resolve::labels(labels, explicit_null_ok)
            .map_err(|e| self.errors.push(err(obj, e.to_string())))
            .ok()
    }

    fn route(&mut self, vrf: VrfId, r: &Route, obj: &str) {
        let prefix = match resolve::prefix(&r.prefix) {
            Ok(p) => p,
            Err(e) => {
                self.errors.push(err(obj, e.to_string()));
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
            self.errors.push(err(
                obj,
                RouteError::Clash {
                    prefix,
                    existing: source,
                }
                .to_string(),
            ));
            return;
        }
        table.insert(prefix, (Source::Static, fec));
    }

    fn label_entries(&mut self, config: &Config) {
        for (i, e) in config.labels.iter().enumerate() {
            let obj = format!("label entry {} (in {})", i + 1, e.in_label);
            let label = match label_of(e.in_label, "in-label") {
                Ok(l) => l,
                Err(m) => {
                    self.errors.push(err(&obj, m));
                    continue;
                }
            };
            self.claim_label(e.in_label, format!("label entry {}", i + 1));
            let action = match (e.action, &e.out) {
                (LabelAction::Swap, None) => {
                    self.errors
                        .push(err(&obj, "swap needs `out` (one or more labels)"));
                    continue;
                }
                (LabelAction::Swap, Some(out)) if out.is_empty() => {
                    self.errors.push(err(
                        &obj,
                        "swap needs at least one `out` label; use action = \"pop\" to pop",
                    ));
                    continue;
                }
                (LabelAction::Pop, Some(_)) => {
                    self.errors.push(err(&obj, "pop takes no `out` labels"));
                    continue;
                }
                (LabelAction::Swap, Some(out)) => {
                    let Some(stack) = self.labels(&obj, out, true) else {
                        continue;
                    };
                    let Some(adj) = self.resolve(&obj, VrfId::GLOBAL, &e.via, true) else {
                        continue;
                    };
                    IlmAction::Swap { adj, out: stack }
                }
                (LabelAction::Pop, None) => {
                    let Some(adj) = self.resolve(&obj, VrfId::GLOBAL, &e.via, true) else {
                        continue;
                    };
                    IlmAction::Pop { adj }
                }
            };
            self.ilm.push(IlmEntry {
                label,
                action,
                origin: IlmOrigin::LabelEntry(i + 1),
                counter: 0,
            });
        }
    }

    fn finish(self, config: &Config) -> Result<(Snapshot, Rib), ConfigError> {
        let mut rib = Rib::new(self.vrf_names.len());
        for (j, table) in self.routes.iter().enumerate() {
            for (prefix, &(source, fec)) in table {
                rib.set(VrfId(j as u16), *prefix, source, Some(fec));
            }
        }
        rib.commit()
            .map_err(|e| err("tables", format!("LPM table: {e}")))?;
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
        .map_err(|e| err("tables", e.to_string()))
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
        assert_eq!(s.ilm().entries().len(), 4);
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
}

//! What the control side publishes and the pipeline reads: one immutable [`Snapshot`].
//!
//! A snapshot holds the ports, the VLAN attachments that bind (port, VLAN) to a VRF, the VRFs
//! with their IPv4/IPv6 LPM tables, the forwarding equivalence classes (FECs) those tables point
//! to, the adjacencies (next hop on a port, with its MAC) and the incoming label map (ILM).
//! [`Snapshot::new`] checks every cross reference once, so the per-packet code can index the
//! tables without a failure path. Updates build a complete new snapshot and publish it with one
//! atomic pointer swap ([`Published`]): readers never wait and never see half an update.

pub mod ilm;
pub mod lpm;
pub mod prefix;

use core::fmt;
use core::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};

pub use ilm::{IlmAction, IlmEntry, IlmOrigin, LabelTable};
pub use lpm::{Ipv4Lpm, Ipv6Change, Ipv6Lpm, LpmError};
pub use prefix::{IpPrefix, Ipv4Prefix, Ipv6Prefix, PrefixError};

use crate::wire::ethernet::MacAddr;
use crate::wire::mpls::Label;
use crate::wire::vlan::VlanId;

/// Index of a port (a Linux interface xpe forwards on) in [`Snapshot::ports`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortId(pub u16);
/// Index of a VRF in [`Snapshot::vrfs`]; [`VrfId::GLOBAL`] is the global (core) table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VrfId(pub u16);
/// Index of an attachment (port + optional VLAN -> VRF) in [`Snapshot::attachments`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttachmentId(pub u16);
/// Index of an adjacency in [`Snapshot::adjacencies`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AdjacencyId(pub u32);
/// Index of a FEC in [`Snapshot::fecs`]; the value stored in the LPM tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FecId(pub u32);

impl VrfId {
    /// The global routing table: IP on core ports and after an explicit-null label.
    pub const GLOBAL: VrfId = VrfId(0);
}

/// How label TTLs relate to IP TTLs (RFC 3443).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TtlMode {
    /// The TTL is copied IP -> label at imposition and label -> IP at disposition (a traceroute
    /// sees every LSR).
    #[default]
    Uniform,
    /// Labels start at 255 and the IP TTL only counts the PEs (the core is one hop).
    Pipe,
}

impl fmt::Display for TtlMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TtlMode::Uniform => "uniform",
            TtlMode::Pipe => "pipe",
        })
    }
}

/// The role of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortKind {
    /// Provider core: MPLS and the global IP table, untagged.
    Core,
    /// Customer edge: VRF attachments only (802.1Q VLANs or untagged), never MPLS.
    Edge,
}

impl fmt::Display for PortKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PortKind::Core => "core",
            PortKind::Edge => "edge",
        })
    }
}

/// Number of slots in a port's VLAN map: one per 12-bit VLAN id; slot 0 is "untagged".
pub const VLAN_SLOTS: usize = 4096;

/// A port: a Linux interface with its role, MAC and MTU.
#[derive(Debug, Clone)]
pub struct Port {
    /// Linux interface name.
    pub name: String,
    /// Core or edge.
    pub kind: PortKind,
    /// The MAC xpe sends from and accepts unicast frames for.
    pub mac: MacAddr,
    /// Largest L3 payload (labels + IP) sent on this port.
    pub mtu: u16,
    /// VLAN id -> attachment index + 1 (0: no attachment); slot 0 is the untagged attachment.
    vlan_map: Box<[u16; VLAN_SLOTS]>,
    /// `mac` as the low 48 bits of an integer: the destination check is one compare.
    pub(crate) mac_key: u64,
}

impl Port {
    /// A port with no attachments yet.
    pub fn new(name: String, kind: PortKind, mac: MacAddr, mtu: u16) -> Self {
        Port {
            name,
            kind,
            mac,
            mtu,
            vlan_map: Box::new([0; VLAN_SLOTS]),
            mac_key: 0,
        }
    }

    /// Our IPv6 link-local address on this port, formed from its MAC (RFC 4291 App. A); every
    /// attachment of the port has it, as every VLAN subinterface of a Linux device would.
    #[inline]
    pub fn link_local(&self) -> Ipv6Addr {
        crate::wire::ipv6::link_local(self.mac)
    }

    /// The attachment for a VLAN id (0 = untagged or priority-tagged), if any.
    #[inline]
    pub fn attachment(&self, vid: u16) -> Option<AttachmentId> {
        match self.vlan_map[usize::from(vid) & (VLAN_SLOTS - 1)] {
            0 => None,
            n => Some(AttachmentId(n - 1)),
        }
    }
}

/// A port (and VLAN) bound to a VRF, with our address on that subnet.
#[derive(Debug, Clone)]
pub struct Attachment {
    /// The port.
    pub port: PortId,
    /// The 802.1Q VLAN, or `None` for the untagged port.
    pub vlan: Option<VlanId>,
    /// The VRF the attachment belongs to.
    pub vrf: VrfId,
    /// Our address and the connected subnet, if any.
    pub address: Option<Ipv4Prefix>,
    /// Our IPv6 (global) address and its connected subnet, if any; the link-local address
    /// is the port's ([`Port::link_local`]).
    pub address6: Option<Ipv6Prefix>,
}

/// A next hop on an attachment, with its MAC once known.
#[derive(Debug, Clone)]
pub struct Adjacency {
    /// The attachment frames leave by (it gives the port and VLAN).
    pub attachment: AttachmentId,
    /// The egress port (copied from the attachment for the hot path).
    pub port: PortId,
    /// The egress VLAN tag, if any (copied from the attachment).
    pub vlan: Option<VlanId>,
    /// The next hop's address: IPv4 (resolved by ARP) or IPv6 (by neighbour discovery).
    pub next_hop: IpAddr,
    /// The next hop's MAC; `None` until it is resolved (frames are counted as no-neighbor).
    pub mac: Option<MacAddr>,
    /// The L2 header to copy into the frame: destination and source MAC, then (tagged
    /// attachments) the 802.1Q TPID and TCI with PCP 0; the ethertype is written per frame.
    pub(crate) header: [u8; 16],
    /// The egress port's MTU (copied for the hot path).
    pub mtu: u16,
}

impl Adjacency {
    /// An adjacency for `next_hop` on an attachment; port, VLAN and MTU are filled in from
    /// the attachment by [`Snapshot::new`].
    pub fn new(
        attachment: AttachmentId,
        next_hop: impl Into<IpAddr>,
        mac: Option<MacAddr>,
    ) -> Self {
        Adjacency {
            attachment,
            port: PortId(0),
            vlan: None,
            next_hop: next_hop.into(),
            mac,
            header: [0; 16],
            mtu: 0,
        }
    }
}

// `emit` reads an adjacency per forwarded frame: keep it within a cache line. An IPv6 next
// hop made it 50 bytes (from 38 with an IPv4 one); the hot fields (header, MAC, port, VLAN,
// MTU) did not change.
const _: () = assert!(core::mem::size_of::<Adjacency>() <= 64);

/// Largest number of labels one route or swap entry may push.
pub const MAX_PUSH: usize = 8;

/// A label stack to impose, precomputed in wire order (outermost first).
///
/// Each word holds `label << 12` with TC, S and TTL zero; the pipeline ORs in the per-packet
/// TC and TTL and sets S on the innermost word when the payload below is IP (RFC 3032 §2.1).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct LabelStack {
    len: u8,
    words: [u32; MAX_PUSH],
}

impl LabelStack {
    /// The empty stack.
    pub const EMPTY: LabelStack = LabelStack {
        len: 0,
        words: [0; MAX_PUSH],
    };

    /// A stack from labels, outermost first; `None` if there are more than [`MAX_PUSH`].
    pub fn new(labels: &[Label]) -> Option<Self> {
        if labels.len() > MAX_PUSH {
            return None;
        }
        let mut s = LabelStack::EMPTY;
        for (w, l) in s.words.iter_mut().zip(labels) {
            *w = l.get() << 12;
        }
        s.len = labels.len() as u8;
        Some(s)
    }
    /// Number of labels.
    #[inline]
    pub fn len(&self) -> usize {
        usize::from(self.len).min(MAX_PUSH)
    }
    /// Whether no label is pushed.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// The precomputed words, outermost first.
    #[inline]
    pub fn words(&self) -> &[u32] {
        &self.words[..self.len()]
    }
    /// The labels, outermost first.
    pub fn labels(&self) -> impl Iterator<Item = Label> + '_ {
        self.words().iter().filter_map(|w| Label::new(w >> 12))
    }
}

impl fmt::Debug for LabelStack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.labels()).finish()
    }
}

impl fmt::Display for LabelStack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, l) in self.labels().enumerate() {
            if i > 0 {
                f.write_str("/")?;
            }
            write!(f, "{l}")?;
        }
        Ok(())
    }
}

/// What an LPM match means: a forwarding equivalence class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fec {
    /// One of our own addresses: ARP/ICMP echo are answered, the rest is punted.
    Local,
    /// Forward to an adjacency, pushing `push` (may be empty).
    Forward {
        /// Where to.
        adj: AdjacencyId,
        /// Labels to impose, outermost first.
        push: LabelStack,
    },
    /// A connected subnet whose destination has no known neighbour (a "glean" adjacency):
    /// counted as no-neighbor until ARP resolves it.
    Glean {
        /// The attachment of the subnet.
        attachment: AttachmentId,
    },
}

// The FEC is what the hot path reads after an LPM hit: keep it within one cache line.
const _: () = assert!(core::mem::size_of::<Fec>() <= 64);

/// A VRF: a routing table of its own, reached by attachments and by its VPN (table) label.
///
/// Only what the workers read: the routes behind the tables, with their sources, live in the
/// control side's RIB.
#[derive(Debug, Clone)]
pub struct Vrf {
    /// Name as configured (`global` for the global table).
    pub name: String,
    /// The label that pops into this VRF, if any.
    pub table_label: Option<Label>,
    /// IPv4 LPM: destination -> FEC index.
    pub v4: Ipv4Lpm,
    /// IPv6 LPM: destination -> FEC index.
    pub v6: Ipv6Lpm,
}

/// Everything a snapshot is made of, as the compiler assembles it.
#[derive(Debug, Clone, Default)]
pub struct SnapshotParts {
    /// Router name.
    pub name: String,
    /// RFC 3443 TTL mode.
    pub ttl_mode: TtlMode,
    /// Ports, indexed by [`PortId`].
    pub ports: Vec<Port>,
    /// Attachments, indexed by [`AttachmentId`].
    pub attachments: Vec<Attachment>,
    /// Adjacencies, indexed by [`AdjacencyId`] (their `macs` are filled in by [`Snapshot::new`]).
    pub adjacencies: Vec<Adjacency>,
    /// FECs, indexed by [`FecId`].
    pub fecs: Vec<Fec>,
    /// VRFs, indexed by [`VrfId`]; index 0 must be the global table.
    pub vrfs: Vec<Vrf>,
    /// Incoming label entries.
    pub ilm: Vec<IlmEntry>,
}

/// A reference in the parts that points nowhere, or a table that cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    /// An index is out of range.
    #[error("{what} refers to {target} {index}, which does not exist")]
    Dangling {
        /// The object holding the reference.
        what: String,
        /// The kind of object referred to.
        target: &'static str,
        /// The index.
        index: usize,
    },
    /// Two attachments claim the same (port, VLAN).
    #[error("VLAN slot {vid} of port {port} is attached twice")]
    DuplicateAttachment {
        /// Port name.
        port: String,
        /// VLAN id (0 = untagged).
        vid: u16,
    },
    /// Two ILM entries for one label.
    #[error("label {0} has two incoming entries")]
    DuplicateLabel(u32),
    /// No ILM entry for a label that was to be removed.
    #[error("label {0} has no incoming entry")]
    NoLabel(u32),
    /// More objects than an index type holds.
    #[error("too many {0}")]
    TooMany(&'static str),
    /// No global VRF at index 0.
    #[error("the first VRF must be the global table")]
    NoGlobal,
    /// An LPM table could not be built.
    #[error("{0}")]
    Lpm(String),
}

/// One complete, immutable set of forwarding tables.
#[derive(Debug, Clone)]
pub struct Snapshot {
    name: String,
    ttl_mode: TtlMode,
    ports: Vec<Port>,
    attachments: Vec<Attachment>,
    adjacencies: Vec<Adjacency>,
    fecs: Vec<Fec>,
    // The VRFs and the label table are shared between a snapshot and the copies made from it
    // by [`Snapshot::with_resolved`], so a learned neighbour never copies a million routes;
    // the label table's blocks are shared with the tables made from it by a label change.
    vrfs: Vec<Arc<Vrf>>,
    ilm: Arc<LabelTable>,
    has_large_vrf: bool,
    /// Counter slot of each VRF (by id): where the pipeline counts its lookups. The index
    /// itself unless the control side assigns slots that stay with a VRF name across table
    /// changes ([`Snapshot::with_counter_slots`]); label entries carry theirs.
    vrf_slots: Arc<[u32]>,
    /// One past the largest slot of each kind: the length of the counter arrays.
    slot_counts: (usize, usize),
}

/// From this many IPv4 routes a VRF's lookups start to miss the cache, and batches look their
/// destinations up ahead of the per-frame pass (see `pipeline::process_batch`). Smaller tables
/// stay cache resident, where the extra pass would only cost instructions.
pub const LARGE_VRF_ROUTES: usize = 4096;

fn check(
    what: impl FnOnce() -> String,
    target: &'static str,
    index: usize,
    len: usize,
) -> Result<(), TableError> {
    if index < len {
        Ok(())
    } else {
        Err(TableError::Dangling {
            what: what(),
            target,
            index,
        })
    }
}

/// Checks that every value a VRF's tables can return names a FEC (one of `nfec`), so the
/// pipeline can index the FEC table with it.
fn check_lpm_values(v: &Vrf, nfec: usize) -> Result<(), TableError> {
    for (family, max) in [("IPv4", v.v4.max_value()), ("IPv6", v.v6.max_value())] {
        if let Some(max) = max {
            check(
                || format!("the {family} table of VRF {}", v.name),
                "FEC",
                max as usize,
                nfec,
            )?;
        }
    }
    Ok(())
}

/// Checks that a FEC's adjacency or attachment exists (one of `nadj` and `na`).
fn check_fec(f: &Fec, what: impl Fn() -> String, nadj: usize, na: usize) -> Result<(), TableError> {
    match f {
        Fec::Local => Ok(()),
        Fec::Forward { adj, .. } => check(what, "adjacency", adj.0 as usize, nadj),
        Fec::Glean { attachment } => check(what, "attachment", attachment.0.into(), na),
    }
}

/// Checks that a label entry's adjacency or VRF exists (one of `nadj` and `nv`).
fn check_ilm_entry(e: &IlmEntry, nadj: usize, nv: usize) -> Result<(), TableError> {
    let what = || format!("label {}", e.label);
    match e.action {
        IlmAction::Swap { adj, .. } | IlmAction::Pop { adj } => {
            check(what, "adjacency", adj.0 as usize, nadj)
        }
        IlmAction::PopLookup { vrf } => check(what, "VRF", vrf.0.into(), nv),
    }
}

/// Copies an adjacency's port, VLAN and MTU from its attachment and precomputes its L2
/// header. The attachment index must be valid (checked by the caller).
fn fill_adjacency(adj: &mut Adjacency, attachments: &[Attachment], ports: &[Port]) {
    let att = &attachments[usize::from(adj.attachment.0)];
    let port = &ports[usize::from(att.port.0)];
    adj.port = att.port;
    adj.vlan = att.vlan;
    adj.mtu = port.mtu;
    adj.header[..6].copy_from_slice(&adj.mac.unwrap_or(MacAddr([0; 6])).0);
    adj.header[6..12].copy_from_slice(&port.mac.0);
    adj.header[12..14].copy_from_slice(&0x8100u16.to_be_bytes());
    adj.header[14..].copy_from_slice(&att.vlan.map_or(0, |v| v.get()).to_be_bytes());
}

impl Snapshot {
    /// Assembles a snapshot, checking every cross reference so the pipeline can index freely.
    pub fn new(mut parts: SnapshotParts) -> Result<Self, TableError> {
        if parts.vrfs.is_empty() {
            return Err(TableError::NoGlobal);
        }
        if parts.ports.len() > usize::from(u16::MAX)
            || parts.attachments.len() >= usize::from(u16::MAX)
            || parts.vrfs.len() > usize::from(u16::MAX)
        {
            return Err(TableError::TooMany("ports, attachments or VRFs"));
        }
        let (np, na, nv) = (parts.ports.len(), parts.attachments.len(), parts.vrfs.len());
        for (i, a) in parts.attachments.iter().enumerate() {
            check(|| format!("attachment {i}"), "port", a.port.0.into(), np)?;
            check(|| format!("attachment {i}"), "VRF", a.vrf.0.into(), nv)?;
        }
        for p in &mut parts.ports {
            p.vlan_map.fill(0);
            let m = p.mac.0;
            p.mac_key = u64::from_be_bytes([0, 0, m[0], m[1], m[2], m[3], m[4], m[5]]);
        }
        for (i, a) in parts.attachments.iter().enumerate() {
            let port = &mut parts.ports[usize::from(a.port.0)];
            let vid = a.vlan.map_or(0, |v| v.get());
            let slot = &mut port.vlan_map[usize::from(vid)];
            if *slot != 0 {
                return Err(TableError::DuplicateAttachment {
                    port: port.name.clone(),
                    vid,
                });
            }
            *slot = i as u16 + 1;
        }
        for (i, adj) in parts.adjacencies.iter_mut().enumerate() {
            check(
                || format!("adjacency {i}"),
                "attachment",
                adj.attachment.0.into(),
                na,
            )?;
            fill_adjacency(adj, &parts.attachments, &parts.ports);
        }
        let nadj = parts.adjacencies.len();
        for (i, f) in parts.fecs.iter().enumerate() {
            check_fec(f, || format!("FEC {i}"), nadj, na)?;
        }
        let nfec = parts.fecs.len();
        for v in &parts.vrfs {
            check_lpm_values(v, nfec)?;
        }
        for e in &parts.ilm {
            check_ilm_entry(e, nadj, nv)?;
        }
        let ilm = LabelTable::new(parts.ilm)?;
        let has_large_vrf = parts.vrfs.iter().any(|v| v.v4.len() >= LARGE_VRF_ROUTES);
        let (nl, nv) = (ilm.len(), parts.vrfs.len());
        Ok(Snapshot {
            vrf_slots: (0..nv as u32).collect(),
            slot_counts: (nl, nv),
            has_large_vrf,
            name: parts.name,
            ttl_mode: parts.ttl_mode,
            ports: parts.ports,
            attachments: parts.attachments,
            adjacencies: parts.adjacencies,
            fecs: parts.fecs,
            vrfs: parts.vrfs.into_iter().map(Arc::new).collect(),
            ilm: Arc::new(ilm),
        })
    }

    /// A copy of this snapshot in which every adjacency without a MAC takes the one `resolve`
    /// gives (learned by ARP); adjacencies that have a MAC (static neighbours) keep it.
    ///
    /// The VRFs and the label table are shared with `self`, so this costs the small tables
    /// only, whatever the number of routes.
    pub fn with_resolved(&self, mut resolve: impl FnMut(&Adjacency) -> Option<MacAddr>) -> Self {
        let mut next = self.clone();
        for adj in next.adjacencies.iter_mut().filter(|a| a.mac.is_none()) {
            if let Some(mac) = resolve(adj) {
                adj.mac = Some(mac);
                adj.header[..6].copy_from_slice(&mac.0);
            }
        }
        next
    }

    /// A copy of this snapshot in which VRF `id` has the tables `v4` and `v6`, after
    /// appending `adjacencies` and `fecs` to the tables (their indices continue the existing
    /// ones).
    ///
    /// This is how a route change is published without a recompile: the tables come from the
    /// control side's editable [`lpm::Ipv4Table`] and [`lpm::Ipv6Table`], which share all but
    /// the changed parts with the running ones; every other VRF and the label table are
    /// shared with `self`. FECs and adjacencies are only ever appended, so the values already
    /// in the tables stay valid; new references are checked as in [`Snapshot::new`].
    pub fn with_vrf_tables(
        &self,
        id: VrfId,
        v4: Ipv4Lpm,
        v6: Ipv6Lpm,
        adjacencies: Vec<Adjacency>,
        fecs: Vec<Fec>,
    ) -> Result<Self, TableError> {
        let slot = usize::from(id.0);
        check(|| "route change".into(), "VRF", slot, self.vrfs.len())?;
        let mut next = self.clone();
        next.append_adjacencies(adjacencies)?;
        let (nadj, na) = (next.adjacencies.len(), next.attachments.len());
        for f in &fecs {
            check_fec(f, || "new FEC".into(), nadj, na)?;
        }
        next.fecs.extend(fecs);
        let old = &self.vrfs[slot];
        let vrf = Vrf {
            name: old.name.clone(),
            table_label: old.table_label,
            v4,
            v6,
        };
        check_lpm_values(&vrf, next.fecs.len())?;
        next.vrfs[slot] = Arc::new(vrf);
        next.has_large_vrf = next.vrfs.iter().any(|v| v.v4.len() >= LARGE_VRF_ROUTES);
        Ok(next)
    }

    /// Appends `adjacencies` (indices continuing the existing ones), checked and filled in
    /// from their attachments as in [`Snapshot::new`].
    fn append_adjacencies(&mut self, adjacencies: Vec<Adjacency>) -> Result<(), TableError> {
        let na = self.attachments.len();
        for mut adj in adjacencies {
            let at = self.adjacencies.len();
            check(
                || format!("adjacency {at}"),
                "attachment",
                adj.attachment.0.into(),
                na,
            )?;
            fill_adjacency(&mut adj, &self.attachments, &self.ports);
            self.adjacencies.push(adj);
        }
        Ok(())
    }

    /// A copy of this snapshot in which `entry` is the incoming label entry for its label
    /// (added, or replacing the one there), after appending `adjacencies` to the table
    /// (their indices continue the existing ones).
    ///
    /// This is how `xpe label add` is published without a recompile: the label table copies
    /// its top level and the label's block ([`LabelTable::with_entry`]); every other block,
    /// the VRFs with their routes and the VRFs' table label entries are shared with `self`.
    /// Adjacencies are only ever appended, so the ones in use stay valid; the entry's
    /// references are checked as in [`Snapshot::new`]. `entry.counter` is its counter slot
    /// as given: the caller keeps a label's slot across changes (as with
    /// [`Snapshot::with_counter_slots`]), and the label counter arrays grow to hold it.
    pub fn with_label(
        &self,
        entry: IlmEntry,
        adjacencies: Vec<Adjacency>,
    ) -> Result<Self, TableError> {
        let mut next = self.clone();
        next.append_adjacencies(adjacencies)?;
        check_ilm_entry(&entry, next.adjacencies.len(), next.vrfs.len())?;
        next.ilm = Arc::new(self.ilm.with_entry(entry).0);
        next.slot_counts.0 = next.slot_counts.0.max(entry.counter as usize + 1);
        Ok(next)
    }

    /// A copy of this snapshot without the incoming label entry for `label`, sharing all
    /// but the label's block as [`Snapshot::with_label`] does. The entry's counter slot
    /// stays counted (its packets so far remain to be shown).
    pub fn without_label(&self, label: Label) -> Result<Self, TableError> {
        let (ilm, _) = self
            .ilm
            .without_entry(label)
            .ok_or(TableError::NoLabel(label.get()))?;
        let mut next = self.clone();
        next.ilm = Arc::new(ilm);
        Ok(next)
    }

    /// A copy of this snapshot whose label entries and VRFs count into the slots `label`
    /// and `vrf` give (by label value and VRF name), so their counters survive table changes
    /// that move them to other indices. The VRFs are shared; the label table's blocks are
    /// copied with their entries' new slots.
    pub fn with_counter_slots(
        &self,
        label: impl FnMut(Label) -> u32,
        mut vrf: impl FnMut(&str) -> u32,
    ) -> Self {
        let mut next = self.clone();
        next.ilm = Arc::new(self.ilm.with_counters(label));
        next.vrf_slots = self.vrfs.iter().map(|v| vrf(&v.name)).collect();
        let top =
            |slots: &mut dyn Iterator<Item = u32>| slots.map(|s| s as usize + 1).max().unwrap_or(0);
        next.slot_counts = (
            top(&mut next.ilm.entries().map(|e| e.counter)),
            top(&mut next.vrf_slots.iter().copied()),
        );
        next
    }

    /// The counter slot of a VRF.
    #[inline]
    pub fn vrf_slot(&self, id: VrfId) -> usize {
        self.vrf_slots
            .get(usize::from(id.0))
            .map_or(usize::MAX, |&s| s as usize)
    }

    /// (label slots, VRF slots): how long the pipeline's per-label and per-VRF counter
    /// arrays must be.
    #[inline]
    pub fn slot_counts(&self) -> (usize, usize) {
        self.slot_counts
    }

    /// Router name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// RFC 3443 TTL mode.
    pub fn ttl_mode(&self) -> TtlMode {
        self.ttl_mode
    }
    /// All ports.
    pub fn ports(&self) -> &[Port] {
        &self.ports
    }
    /// A port by name.
    pub fn port_by_name(&self, name: &str) -> Option<PortId> {
        self.ports
            .iter()
            .position(|p| p.name == name)
            .map(|i| PortId(i as u16))
    }
    /// All attachments.
    pub fn attachments(&self) -> &[Attachment] {
        &self.attachments
    }
    /// All adjacencies.
    pub fn adjacencies(&self) -> &[Adjacency] {
        &self.adjacencies
    }
    /// All FECs.
    pub fn fecs(&self) -> &[Fec] {
        &self.fecs
    }
    /// All VRFs; index 0 is the global table.
    pub fn vrfs(&self) -> &[Arc<Vrf>] {
        &self.vrfs
    }
    /// Whether some VRF is large enough for batched lookahead ([`LARGE_VRF_ROUTES`]).
    #[inline]
    pub fn has_large_vrf(&self) -> bool {
        self.has_large_vrf
    }
    /// The incoming label map.
    pub fn ilm(&self) -> &LabelTable {
        &self.ilm
    }
    /// The port with this id (ids come from this snapshot).
    #[inline]
    pub fn port(&self, id: PortId) -> &Port {
        &self.ports[usize::from(id.0)]
    }
    /// The attachment with this id.
    #[inline]
    pub fn attachment(&self, id: AttachmentId) -> &Attachment {
        &self.attachments[usize::from(id.0)]
    }
    /// The adjacency with this id.
    #[inline]
    pub fn adjacency(&self, id: AdjacencyId) -> &Adjacency {
        &self.adjacencies[id.0 as usize]
    }
    /// The FEC with this id.
    #[inline]
    pub fn fec(&self, id: FecId) -> &Fec {
        &self.fecs[id.0 as usize]
    }
    /// The VRF with this id.
    #[inline]
    pub fn vrf(&self, id: VrfId) -> &Vrf {
        &self.vrfs[usize::from(id.0)]
    }
    /// The FEC of the longest match for `addr` in `vrf`, IPv4 or IPv6. Off the forwarding
    /// path, which looks up by family with hints of its own.
    pub fn route(&self, vrf: VrfId, addr: IpAddr) -> Option<&Fec> {
        let v = self.vrf(vrf);
        let fec = match addr {
            IpAddr::V4(a) => v.v4.lookup(u32::from(a)),
            IpAddr::V6(a) => v.v6.lookup(u128::from(a)),
        }?;
        self.fecs.get(fec as usize)
    }
    /// A VRF by name.
    pub fn vrf_by_name(&self, name: &str) -> Option<VrfId> {
        self.vrfs
            .iter()
            .position(|v| v.name == name)
            .map(|i| VrfId(i as u16))
    }
    /// A display name for an attachment: `dx0.101` or `core0`.
    pub fn attachment_name(&self, id: AttachmentId) -> String {
        let a = self.attachment(id);
        let port = &self.port(a.port).name;
        match a.vlan {
            Some(v) => format!("{port}.{v}"),
            None => port.clone(),
        }
    }
}

/// The currently published snapshot, swapped atomically (RCU style) under running readers.
#[derive(Debug)]
pub struct Published(ArcSwap<Snapshot>);

impl Published {
    /// Starts with `first`.
    pub fn new(first: Snapshot) -> Self {
        Published(ArcSwap::from_pointee(first))
    }
    /// The current snapshot; a worker loads it once per batch.
    #[inline]
    pub fn load(&self) -> Guard<Arc<Snapshot>> {
        self.0.load()
    }
    /// Publishes `next`; the previous snapshot is freed when its last reader lets go.
    pub fn publish(&self, next: Snapshot) {
        self.0.store(Arc::new(next));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    fn global() -> Vrf {
        Vrf {
            name: "global".into(),
            table_label: None,
            v4: Ipv4Lpm::new(),
            v6: Ipv6Lpm::new(),
        }
    }

    fn parts(name: &str) -> SnapshotParts {
        let mac = MacAddr([2, 0, 0, 0, 0, 1]);
        SnapshotParts {
            name: name.into(),
            ports: vec![Port::new("core0".into(), PortKind::Core, mac, 1500)],
            attachments: vec![Attachment {
                port: PortId(0),
                vlan: None,
                vrf: VrfId::GLOBAL,
                address: "198.18.0.1/30".parse().ok(),
                address6: None,
            }],
            vrfs: vec![global()],
            ..Default::default()
        }
    }

    #[test]
    fn readers_keep_their_snapshot_across_a_publish() {
        let published = Published::new(Snapshot::new(parts("first")).unwrap());
        let old = published.load();
        published.publish(Snapshot::new(parts("second")).unwrap());
        assert_eq!(
            old.name(),
            "first",
            "a reader's snapshot never changes under it"
        );
        assert_eq!(published.load().name(), "second");
    }

    #[test]
    fn fills_the_vlan_map_and_adjacency_headers() {
        let mut p = parts("x");
        p.adjacencies.push(Adjacency::new(
            AttachmentId(0),
            Ipv4Addr::new(198, 18, 0, 2),
            Some(MacAddr([2, 0, 0, 0, 2, 1])),
        ));
        let s = Snapshot::new(p).unwrap();
        assert_eq!(s.port(PortId(0)).attachment(0), Some(AttachmentId(0)));
        assert_eq!(s.port(PortId(0)).attachment(101), None);
        let adj = s.adjacency(AdjacencyId(0));
        assert_eq!((adj.port, adj.mtu), (PortId(0), 1500));
        assert_eq!(adj.header[..12], [2, 0, 0, 0, 2, 1, 2, 0, 0, 0, 0, 1]);
    }

    #[test]
    fn rejects_dangling_references_and_double_attachments() {
        let mut p = parts("x");
        p.fecs.push(Fec::Forward {
            adj: AdjacencyId(7),
            push: LabelStack::EMPTY,
        });
        assert!(matches!(
            Snapshot::new(p),
            Err(TableError::Dangling {
                target: "adjacency",
                index: 7,
                ..
            })
        ));
        let mut p = parts("x");
        let again = p.attachments[0].clone();
        p.attachments.push(again);
        assert!(matches!(
            Snapshot::new(p),
            Err(TableError::DuplicateAttachment { vid: 0, .. })
        ));
        let mut p = parts("x");
        p.vrfs.clear();
        assert!(matches!(Snapshot::new(p), Err(TableError::NoGlobal)));
    }

    fn label(n: u32) -> Label {
        Label::new(n).unwrap()
    }

    /// A router with one core adjacency (198.18.0.2, resolved), a VRF with table label 1001
    /// and a route, and a transit entry 16002 (swap to 16003): counters by index.
    fn lsr() -> Snapshot {
        let mut p = parts("lsr");
        p.adjacencies.push(Adjacency::new(
            AttachmentId(0),
            Ipv4Addr::new(198, 18, 0, 2),
            Some(MacAddr([2, 0, 0, 0, 2, 1])),
        ));
        p.fecs.push(Fec::Forward {
            adj: AdjacencyId(0),
            push: LabelStack::new(&[label(16001)]).unwrap(),
        });
        p.vrfs.push(Vrf {
            name: "vpc-a".into(),
            table_label: Some(label(1001)),
            v4: Ipv4Lpm::from_routes([(Ipv4Addr::new(198, 19, 0, 0), 16, 0)]).unwrap(),
            v6: Ipv6Lpm::new(),
        });
        p.ilm = vec![
            IlmEntry {
                label: label(1001),
                action: IlmAction::PopLookup { vrf: VrfId(1) },
                origin: IlmOrigin::TableLabel,
                counter: 0,
            },
            IlmEntry {
                label: label(16002),
                action: IlmAction::Swap {
                    adj: AdjacencyId(0),
                    out: LabelStack::new(&[label(16003)]).unwrap(),
                },
                origin: IlmOrigin::LabelEntry(1),
                counter: 0,
            },
        ];
        Snapshot::new(p).unwrap()
    }

    fn pop(l: u32, adj: u32, counter: u32) -> IlmEntry {
        IlmEntry {
            label: label(l),
            action: IlmAction::Pop {
                adj: AdjacencyId(adj),
            },
            origin: IlmOrigin::LabelEntry(2),
            counter,
        }
    }

    #[test]
    fn a_label_change_appends_its_adjacency_and_shares_the_rest() {
        let s = lsr();
        assert_eq!(s.slot_counts(), (2, 2));
        // A pop through a next hop the tables do not have yet: its adjacency is appended and
        // filled in from its attachment.
        let next = s
            .with_label(
                pop(16004, 1, 2),
                vec![Adjacency::new(
                    AttachmentId(0),
                    Ipv4Addr::new(198, 18, 0, 3),
                    None,
                )],
            )
            .unwrap();
        assert_eq!(next.ilm().lookup(16004), Some(&pop(16004, 1, 2)));
        assert_eq!(next.ilm().len(), 3);
        let adj = next.adjacency(AdjacencyId(1));
        assert_eq!((adj.port, adj.mtu, adj.mac), (PortId(0), 1500, None));
        assert_eq!(adj.header[6..12], [2, 0, 0, 0, 0, 1]);
        assert_eq!(next.slot_counts(), (3, 2), "the new slot is counted");
        // Everything else is shared or equal: the VRF with its routes, its table label's
        // entry (another block, shared), the entry beside the new one (same block, copied).
        assert!(Arc::ptr_eq(&s.vrfs()[1], &next.vrfs()[1]));
        assert!(next.ilm().shares_block(s.ilm(), 1001));
        assert!(!next.ilm().shares_block(s.ilm(), 16004));
        assert_eq!(next.ilm().lookup(1001), s.ilm().lookup(1001));
        assert_eq!(next.ilm().lookup(16002), s.ilm().lookup(16002));
        assert_eq!(next.fecs(), s.fecs());
        assert!(s.ilm().lookup(16004).is_none() && s.adjacencies().len() == 1);

        // Replaced in place: the entry takes the existing adjacency and keeps its slot.
        let counter = next.ilm().lookup(16002).unwrap().counter;
        let swapped = next
            .with_label(
                IlmEntry {
                    counter,
                    ..pop(16002, 0, 0)
                },
                Vec::new(),
            )
            .unwrap();
        let e = swapped.ilm().lookup(16002).unwrap();
        assert_eq!(
            (e.action, e.counter),
            (
                IlmAction::Pop {
                    adj: AdjacencyId(0)
                },
                counter
            )
        );
        assert_eq!(swapped.ilm().len(), 3);
        assert_eq!(swapped.slot_counts(), (3, 2));

        // Removed: gone, the others stay, its slot stays counted.
        let removed = swapped.without_label(label(16004)).unwrap();
        assert!(removed.ilm().lookup(16004).is_none());
        assert_eq!(removed.ilm().lookup(16002), swapped.ilm().lookup(16002));
        assert_eq!(removed.ilm().lookup(1001), s.ilm().lookup(1001));
        assert!(removed.ilm().shares_block(s.ilm(), 1001));
        assert_eq!(removed.slot_counts(), (3, 2));
        assert_eq!(
            removed.adjacencies().len(),
            2,
            "adjacencies are never removed"
        );
        assert_eq!(
            removed.without_label(label(16004)).unwrap_err(),
            TableError::NoLabel(16004)
        );
    }

    #[test]
    fn a_label_change_with_a_dangling_reference_is_refused() {
        let s = lsr();
        assert!(matches!(
            s.with_label(pop(16004, 1, 2), Vec::new()),
            Err(TableError::Dangling {
                target: "adjacency",
                index: 1,
                ..
            })
        ));
        let far = Adjacency::new(AttachmentId(5), Ipv4Addr::new(198, 18, 0, 3), None);
        assert!(matches!(
            s.with_label(pop(16004, 1, 2), vec![far]),
            Err(TableError::Dangling {
                target: "attachment",
                index: 5,
                ..
            })
        ));
        let into_nowhere = IlmEntry {
            action: IlmAction::PopLookup { vrf: VrfId(9) },
            ..pop(16004, 0, 2)
        };
        assert!(matches!(
            s.with_label(into_nowhere, Vec::new()),
            Err(TableError::Dangling { target: "VRF", .. })
        ));
    }

    #[test]
    fn label_stack_precomputes_wire_words() {
        let labels = [Label::new(16001).unwrap(), Label::new(2001).unwrap()];
        let s = LabelStack::new(&labels).unwrap();
        assert_eq!(s.words(), [16001 << 12, 2001 << 12]);
        assert_eq!(s.to_string(), "16001/2001");
        assert!(LabelStack::new(&[labels[0]; MAX_PUSH + 1]).is_none());
    }
}

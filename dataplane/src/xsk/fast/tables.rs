//! What the fast path's maps hold, compiled from a [`Snapshot`].

use std::collections::BTreeMap;
use std::sync::Arc;

use xpe_ebpf::{self as names, FastAdj, FastFec, FastLabel, FastPort};

use crate::tables::{Fec, IlmAction, Ipv6Lpm, PortId, PortKind, Snapshot, TtlMode};

/// One VRF's IPv4 table as the fast path copies it: the userspace table's own root and pages
/// ([`crate::tables::Ipv4Lpm::raw_parts`]), shared, not copied, until they are written.
#[derive(Debug, Clone)]
pub struct VrfTable {
    /// The root.
    pub root: Arc<[u32]>,
    /// The shift that indexes the root.
    pub root_shift: u32,
    /// The arena pages, page 0 first.
    pub pages: Vec<Arc<[u32]>>,
    /// The VRF's counter slot.
    pub counter: u32,
    /// Whether the program gets the root 8 bits wider (a small table, while there is room:
    /// [`FastTables::compile`]), so that its lookups walk one node fewer.
    pub wide: bool,
}

impl PartialEq for VrfTable {
    /// The same table: the same root and pages (the userspace table never writes either once
    /// published, so the same allocation is the same content).
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.root, &other.root)
            && self.root_shift == other.root_shift
            && self.counter == other.counter
            && self.wide == other.wide
            && self.pages.len() == other.pages.len()
            && self
                .pages
                .iter()
                .zip(&other.pages)
                .all(|(a, b)| Arc::ptr_eq(a, b))
    }
}

impl Eq for VrfTable {}

/// One VRF's IPv6 routes as the fast path loads them into its trie: the userspace table,
/// shared, from which only the routes that changed are written ([`Ipv6Lpm::changes_to`]).
#[derive(Debug, Clone)]
pub struct Vrf6Table {
    /// The routes.
    pub lpm: Ipv6Lpm,
    /// The VRF's counter slot.
    pub counter: u32,
}

impl PartialEq for Vrf6Table {
    /// The same routes as far as sharing tells (a table that was rebuilt with the same routes
    /// counts as another, and is written as an empty change).
    fn eq(&self, other: &Self) -> bool {
        self.counter == other.counter && self.lpm.shares_routes_with(&other.lpm)
    }
}

impl Eq for Vrf6Table {}

/// What the fast path's maps hold for one snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FastTables {
    /// Every port, by slot (its port id). `core` is set where the pipeline takes labelled
    /// frames: core ports with an untagged attachment.
    pub ports: Vec<FastPort>,
    /// Incoming labels it handles: label -> entry.
    pub labels: BTreeMap<u32, FastLabel>,
    /// Attachments: port slot * 4096 + VLAN id (0 untagged) -> VRF id.
    pub attach: BTreeMap<u32, u32>,
    /// IPv4 tables by VRF id (`None`: that VRF's lookups go to the workers).
    pub vrfs: Vec<Option<VrfTable>>,
    /// IPv6 tables by VRF id (`None`: that VRF's IPv6 lookups go to the workers).
    pub v6: Vec<Option<Vrf6Table>>,
    /// FECs by id (kind 0: to the workers).
    pub fecs: Vec<FastFec>,
    /// Adjacencies by id (`ok` 0: unresolved, to the workers).
    pub adjs: Vec<FastAdj>,
    /// Uniform TTL mode (RFC 3443).
    pub uniform: bool,
}

impl FastTables {
    /// The entries for `snap`. Labels: a swap to one outgoing label or a PHP to a resolved
    /// untagged next hop, and VPN labels. IPv4 routes: every VRF's table, with the FECs that
    /// forward pushing at most [`names::FAST_MAX_PUSH`] labels; IPv6 routes: every VRF's table,
    /// the same way. Everything else (several labels swapped in, unresolved or tagged LSR next
    /// hops, FECs for us or gleaning, ids past the maps' sizes) stays with the pipeline.
    pub fn compile(snap: &Snapshot) -> FastTables {
        let uniform = snap.ttl_mode() == TtlMode::Uniform;
        let ports = snap
            .ports()
            .iter()
            .enumerate()
            .map(|(i, p)| FastPort {
                mac: p.mac.0,
                core: u8::from(p.kind == PortKind::Core && p.attachment(0).is_some()),
                ours: 1,
                slot: i as u32,
            })
            .collect();
        let labels = snap
            .ilm()
            .entries()
            .filter(|e| e.counter < names::FAST_MAX_LABELS)
            .filter_map(|e| {
                let mut entry = FastLabel {
                    out: 0,
                    vrf: 0,
                    tx_slot: 0,
                    counter: e.counter,
                    macs: [0; 12],
                    mtu: 0,
                    op: names::FAST_OP_SWAP,
                    uniform: u8::from(uniform),
                };
                let adj = match e.action {
                    IlmAction::Swap { adj, ref out } => {
                        let [word] = out.words() else {
                            return None;
                        };
                        entry.out = *word;
                        adj
                    }
                    IlmAction::Pop { adj } => {
                        entry.op = names::FAST_OP_POP;
                        adj
                    }
                    IlmAction::PopLookup { vrf } => {
                        entry.op = names::FAST_OP_POP_LOOKUP;
                        entry.vrf = u32::from(vrf.0);
                        return Some((e.label.get(), entry));
                    }
                };
                let adj = snap.adjacency(adj);
                if adj.mac.is_none()
                    || adj.vlan.is_some()
                    || u32::from(adj.port.0) >= names::FAST_MAX_PORTS
                {
                    return None;
                }
                entry.tx_slot = u32::from(adj.port.0);
                entry.macs.copy_from_slice(&adj.header[..12]);
                entry.mtu = adj.mtu;
                Some((e.label.get(), entry))
            })
            .collect();
        let attach = snap
            .attachments()
            .iter()
            .filter(|a| u32::from(a.port.0) < names::FAST_MAX_PORTS)
            .map(|a| {
                (
                    u32::from(a.port.0) * 4096 + u32::from(a.vlan.map_or(0, |v| v.get())),
                    u32::from(a.vrf.0),
                )
            })
            .collect();
        // Each VRF the program can hold, with its counter slot.
        let counted = snap
            .vrfs()
            .iter()
            .enumerate()
            .take(names::FAST_MAX_VRFS as usize)
            .map(|(i, v)| (v, snap.vrf_slot(crate::tables::VrfId(i as u16)) as u32));
        let mut vrfs: Vec<Option<VrfTable>> = counted
            .clone()
            .map(|(v, counter)| {
                let (root, root_shift, pages) = v.v4.raw_parts();
                (counter < names::FAST_MAX_VRFS).then(|| VrfTable {
                    root: root.clone(),
                    root_shift,
                    pages: pages.to_vec(),
                    counter,
                    wide: false,
                })
            })
            .collect();
        widen_small_roots(&mut vrfs);
        let v6 = counted
            .map(|(v, counter)| {
                (counter < names::FAST_MAX_VRFS).then(|| Vrf6Table {
                    lpm: v.v6.clone(),
                    counter,
                })
            })
            .collect();
        let fecs = snap
            .fecs()
            .iter()
            .take(names::FAST_MAX_FECS as usize)
            .map(|f| match f {
                Fec::Forward { adj, push } if push.words().len() <= names::FAST_MAX_PUSH => {
                    let mut labels = [0; names::FAST_MAX_PUSH];
                    labels[..push.words().len()].copy_from_slice(push.words());
                    FastFec {
                        kind: names::FAST_FEC_FORWARD,
                        adj: adj.0,
                        push: push.words().len() as u32,
                        labels,
                        pad: 0,
                    }
                }
                _ => FastFec::default(),
            })
            .collect();
        let adjs = snap
            .adjacencies()
            .iter()
            .map(|a| FastAdj {
                ok: u32::from(a.mac.is_some() && u32::from(a.port.0) < names::FAST_MAX_PORTS),
                tx_slot: u32::from(a.port.0),
                header: a.header,
                tagged: u16::from(a.vlan.is_some()),
                mtu: a.mtu,
                pad: 0,
            })
            .collect();
        FastTables {
            ports,
            labels,
            attach,
            vrfs,
            v6,
            fecs,
            adjs,
            uniform,
        }
    }

    /// The same tables with nothing sent to a port `egress_ok` says no to: labels that swap or
    /// pop toward it are dropped, adjacencies on it are marked not ok.
    pub fn sending_only_to(&self, egress_ok: &[bool]) -> FastTables {
        let ok = |slot: u32| egress_ok.get(slot as usize) == Some(&true);
        let mut next = self.clone();
        next.labels
            .retain(|_, e| e.op == names::FAST_OP_POP_LOOKUP || ok(e.tx_slot));
        for a in &mut next.adjs {
            if !ok(a.tx_slot) {
                a.ok = 0;
            }
        }
        next
    }
}

/// Root entries a small table's root takes, and its wider root
/// ([`crate::tables::lpm::v4::wider_root`]).
const SMALL_ROOT: usize = 1 << 8;
const WIDER_ROOT: usize = SMALL_ROOT << 8;

/// Marks the small tables whose roots the program gets 8 bits wider: in VRF order, as long as
/// the root array keeps room for every VRF's own root, and within a quarter of it, so that a
/// publish writes at most 4 MiB of roots more (about eight VRFs).
///
/// [`wider_root`]: crate::tables::lpm::v4::wider_root
fn widen_small_roots(vrfs: &mut [Option<VrfTable>]) {
    let room = names::FAST_ROOT_ENTRIES as usize;
    let own: usize = vrfs.iter().flatten().map(|t| t.root.len()).sum();
    let mut spare = room.saturating_sub(own).min(room / 4);
    for t in vrfs.iter_mut().flatten() {
        if t.root.len() == SMALL_ROOT && spare >= WIDER_ROOT - SMALL_ROOT {
            t.wide = true;
            spare -= WIDER_ROOT - SMALL_ROOT;
        }
    }
}

/// Which path a frame takes with the fast path on, as `xpe trace` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FastVerdict {
    /// Forwarded by the XDP program in the kernel (what it does).
    Kernel(&'static str),
    /// Handed to the workers (why).
    Workers(&'static str),
}

impl FastTables {
    /// Which path `frame`, arriving on port `ingress`, takes with these tables: the program's
    /// decisions (ebpf/src/fast.rs) step by step, checked against it by
    /// `dataplane/tests/fast_path.rs`. Whether the egress port takes redirects is not known
    /// here (`xpe show interfaces` says, live): these tables are taken to send everywhere.
    pub fn path(&self, snap: &Snapshot, ingress: PortId, frame: &[u8]) -> FastVerdict {
        use FastVerdict::Workers;
        let Some(port) = self.ports.get(usize::from(ingress.0)) else {
            return Workers("not one of xpe's interfaces");
        };
        if frame.len() < 18 {
            return Workers("shorter than an Ethernet header and a tag");
        }
        if frame[..6] != port.mac {
            return Workers("not to this port's MAC (broadcast, multicast, other)");
        }
        let be16 = |at: usize| u16::from_be_bytes([frame[at], frame[at + 1]]);
        match be16(12) {
            0x8847 if port.core != 0 => self.mpls_path(snap, frame),
            0x8847 => {
                Workers("MPLS on an edge port, or on a core port without an untagged attachment")
            }
            ip @ (0x0800 | 0x86dd) => self.impose_path(snap, ingress, frame, 0, 14, ip == 0x86dd),
            0x8100 if matches!(be16(16), 0x0800 | 0x86dd) => match be16(14) & 0xfff {
                0xfff => Workers("VLAN id 4095"),
                vid => self.impose_path(snap, ingress, frame, vid, 18, be16(16) == 0x86dd),
            },
            0x8100 => Workers("a tagged frame that is not IP"),
            _ => Workers("not MPLS or IP"),
        }
    }

    fn impose_path(
        &self,
        snap: &Snapshot,
        ingress: PortId,
        frame: &[u8],
        vid: u16,
        l3: usize,
        six: bool,
    ) -> FastVerdict {
        let key = u32::from(ingress.0) * 4096 + u32::from(vid);
        match self.attach.get(&key) {
            Some(&vrf) => self.route_path(snap, frame, l3, vrf, None, six),
            None => FastVerdict::Workers("no attachment for this VLAN"),
        }
    }

    fn mpls_path(&self, snap: &Snapshot, frame: &[u8]) -> FastVerdict {
        use FastVerdict::{Kernel, Workers};
        let entry = |i: usize| {
            let at = 14 + 4 * i;
            frame
                .get(at..at + 4)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        };
        let Some(top) = entry(0) else {
            return Workers("label stack cut short");
        };
        let bottom = (0..names::FAST_MAX_DEPTH)
            .map_while(entry)
            .position(|e| e & 0x100 != 0);
        if bottom.is_none() {
            return Workers("no bottom of stack within 16 labels, or cut short");
        }
        let (label, tc, bos, ttl) = (
            top >> 12,
            ((top >> 9) & 7) as u8,
            top & 0x100 != 0,
            (top & 0xff) as u8,
        );
        if label == 0 || label == 2 {
            if !bos {
                return Workers("explicit null above another label");
            }
            let hop = self.uniform.then_some(ttl);
            return self.route_path(snap, frame, 18, 0, Some((hop, tc)), label == 2);
        }
        if label < 16 {
            return Workers("a reserved label other than explicit null");
        }
        let Some(op) = self.labels.get(&label) else {
            return Workers("the label is not in the fast path's table (unknown, several labels out, next hop unresolved or tagged)");
        };
        let len = frame.len();
        match op.op {
            names::FAST_OP_SWAP | names::FAST_OP_POP if ttl <= 1 => Workers("label TTL expires"),
            names::FAST_OP_SWAP if len - 14 > usize::from(op.mtu) => Workers("over the egress MTU"),
            names::FAST_OP_SWAP => Kernel("label swapped"),
            names::FAST_OP_POP => {
                let keep = if bos {
                    match ip_total(frame, 18) {
                        Ok(total) => total,
                        Err(why) => return Workers(why),
                    }
                } else {
                    len - 18
                };
                if keep > usize::from(op.mtu) {
                    Workers("over the egress MTU")
                } else {
                    Kernel("label popped (PHP)")
                }
            }
            names::FAST_OP_POP_LOOKUP if bos => {
                let hop = (op.uniform != 0).then_some(ttl);
                let six = frame.get(18).is_some_and(|b| b >> 4 == 6);
                self.route_path(snap, frame, 18, op.vrf, Some((hop, tc)), six)
            }
            _ => Workers("VPN label not at the bottom of the stack"),
        }
    }

    /// `label`: after a label, (its TTL as the hop in uniform mode, its TC); `six`: IPv6 is
    /// expected at `l3` (else IPv4).
    fn route_path(
        &self,
        snap: &Snapshot,
        frame: &[u8],
        l3: usize,
        vrf: u32,
        label: Option<(Option<u8>, u8)>,
        six: bool,
    ) -> FastVerdict {
        use FastVerdict::{Kernel, Workers};
        let total = match ip_total(frame, l3) {
            Ok(total) => total,
            Err(why) => return Workers(why),
        };
        if frame[l3] >> 4 != if six { 6 } else { 4 } {
            return Workers("not the IP version its EtherType or label says");
        }
        let ip = &frame[l3..];
        let Some(v) = snap.vrfs().get(vrf as usize) else {
            return Workers("no such VRF");
        };
        let (fec, ttl) = if six {
            let dst = u128::from_be_bytes(ip[24..40].try_into().unwrap_or_default());
            if dst >> 120 == 0xff || dst >> 118 == 0xfe80 >> 6 {
                return Workers("IPv6 multicast or link-local");
            }
            if !matches!(self.v6.get(vrf as usize), Some(Some(_))) {
                return Workers("the VRF's IPv6 routes are not in the fast path's trie");
            }
            (v.v6.lookup(dst), ip[7])
        } else {
            let dst = u32::from_be_bytes([ip[16], ip[17], ip[18], ip[19]]);
            if dst >> 28 == 0xe || dst == u32::MAX {
                return Workers("multicast or broadcast");
            }
            if !matches!(self.vrfs.get(vrf as usize), Some(Some(_))) {
                return Workers("the VRF's table does not fit the fast path's arrays");
            }
            (v.v4.lookup(dst), ip[8])
        };
        let Some(fec) = fec else {
            return Workers("no route");
        };
        let Some(fec) = self
            .fecs
            .get(fec as usize)
            .filter(|f| f.kind == names::FAST_FEC_FORWARD)
        else {
            return Workers("the route is ours, gleans, or pushes more than 4 labels");
        };
        let Some(adj) = self.adjs.get(fec.adj as usize).filter(|a| a.ok != 0) else {
            return Workers("next hop unresolved");
        };
        let from = match label {
            Some((Some(hop), _)) => hop,
            _ => ttl,
        };
        if from <= 1 {
            return Workers(if six {
                "hop limit expires"
            } else {
                "TTL expires"
            });
        }
        if total + fec.push as usize * 4 > usize::from(adj.mtu) {
            return Workers("over the egress MTU");
        }
        Kernel(match (label.is_some(), fec.push, six) {
            (true, 0, false) => "label popped, IPv4 routed",
            (true, _, false) => "label popped, IPv4 routed and labels pushed",
            (false, 0, false) => "IPv4 routed",
            (false, _, false) => "IPv4 routed and labels pushed",
            (true, 0, true) => "label popped, IPv6 routed",
            (true, _, true) => "label popped, IPv6 routed and labels pushed",
            (false, 0, true) => "IPv6 routed",
            (false, _, true) => "IPv6 routed and labels pushed",
        })
    }
}

/// The length of the IP packet at `l3` by its header, checked as the program checks it.
fn ip_total(frame: &[u8], l3: usize) -> Result<usize, &'static str> {
    let ip = frame.get(l3..).unwrap_or_default();
    match ip.first().map(|b| b >> 4) {
        Some(4) => {
            if ip[0] & 0xf != 5 {
                return Err("IPv4 options (or a bad header length)");
            }
            if ip.len() < 20 {
                return Err("IPv4 header cut short");
            }
            let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
            if total < 20 || total > ip.len() {
                return Err("IPv4 total length wrong");
            }
            if crate::wire::checksum::compute(&ip[..20]) != 0 {
                return Err("IPv4 header checksum wrong");
            }
            Ok(total)
        }
        Some(6) => {
            if ip.len() < 40 {
                return Err("IPv6 header cut short");
            }
            let total = 40 + usize::from(u16::from_be_bytes([ip[4], ip[5]]));
            if total > ip.len() {
                Err("IPv6 payload length wrong")
            } else {
                Ok(total)
            }
        }
        _ => Err("not IP below the labels"),
    }
}

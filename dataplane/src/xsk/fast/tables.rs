//! What the fast path's maps hold, compiled from a [`Snapshot`].

use std::collections::BTreeMap;
use std::sync::Arc;

use xpe_ebpf::{self as names, FastAdj, FastFec, FastLabel, FastPort};

use crate::tables::{Fec, IlmAction, PortKind, Snapshot, TtlMode};

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
}

impl PartialEq for VrfTable {
    /// The same table: the same root and pages (the userspace table never writes either once
    /// published, so the same allocation is the same content).
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.root, &other.root)
            && self.root_shift == other.root_shift
            && self.counter == other.counter
            && self.pages.len() == other.pages.len()
            && self
                .pages
                .iter()
                .zip(&other.pages)
                .all(|(a, b)| Arc::ptr_eq(a, b))
    }
}

impl Eq for VrfTable {}

/// What the fast path's maps hold for one snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FastTables {
    /// Every port, by slot (its port id). `core` is set where the pipeline takes labelled
    /// frames: core ports with an untagged attachment.
    pub ports: Vec<FastPort>,
    /// Incoming labels it handles: label -> entry.
    pub labels: BTreeMap<u32, FastLabel>,
    /// Attachments: (port slot << 16 | VLAN id, 0 untagged) -> VRF id.
    pub attach: BTreeMap<u32, u32>,
    /// IPv4 tables by VRF id (`None`: that VRF's lookups go to the workers).
    pub vrfs: Vec<Option<VrfTable>>,
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
    /// forward pushing at most [`names::FAST_MAX_PUSH`] labels. Everything else (several labels
    /// swapped in, unresolved or tagged LSR next hops, IPv6, FECs for us or gleaning, ids past
    /// the maps' sizes) stays with the pipeline.
    pub fn compile(snap: &Snapshot) -> FastTables {
        let uniform = snap.ttl_mode() == TtlMode::Uniform;
        let ports = snap
            .ports()
            .iter()
            .enumerate()
            .map(|(i, p)| FastPort {
                mac: p.mac.0,
                core: u8::from(p.kind == PortKind::Core && p.attachment(0).is_some()),
                pad: 0,
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
            .map(|a| {
                (
                    u32::from(a.port.0) << 16 | u32::from(a.vlan.map_or(0, |v| v.get())),
                    u32::from(a.vrf.0),
                )
            })
            .collect();
        let vrfs = snap
            .vrfs()
            .iter()
            .enumerate()
            .take(names::FAST_MAX_VRFS as usize)
            .map(|(i, v)| {
                let counter = snap.vrf_slot(crate::tables::VrfId(i as u16)) as u32;
                let (root, root_shift, pages) = v.v4.raw_parts();
                (counter < names::FAST_MAX_VRFS && pages.len() <= names::FAST_MAX_PAGES as usize)
                    .then(|| VrfTable {
                        root: root.clone(),
                        root_shift,
                        pages: pages.to_vec(),
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
            .take(names::FAST_MAX_ADJS as usize)
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

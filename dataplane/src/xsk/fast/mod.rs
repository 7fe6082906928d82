//! The XDP fast path (`xpe run --fast-path xdp`): one loaded copy of the `xpe_fast` program
//! (ebpf/src/fast.rs) attached to every interface. It forwards in the kernel what its tables
//! hold: LSR swaps and penultimate-hop pops, IPv4 and IPv6 imposition from any attachment and
//! IPv4 and IPv6 disposition from VPN labels and explicit nulls. Every other frame goes,
//! untouched, to the AF_XDP socket of its port and queue, where the pipeline handles it as
//! without the fast path.
//!
//! The tables are compiled from the same [`Snapshot`](crate::tables::Snapshot) the workers use ([`FastTables`]) and kept
//! in step with every published one ([`FastPath::apply`]). Every table is double-buffered:
//! userspace writes the generation the program does not read, switches the generation slot,
//! and waits for an RCU grace period before it writes the other one, so a frame sees one
//! snapshot's tables or the next's, never half of an update. The IPv6 routes of both
//! generations share one LPM trie, where a generation is brought up to date with the routes
//! that changed since it was last written ([`FastPath::write_routes6`]). docs/runtime.md lists
//! what takes which path.

mod check;
mod mapped;
mod tables;

use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::RawFd;

use aya::maps::lpm_trie::{Key, LpmTrie};
use aya::maps::{Array, DevMap, MapData, PerCpuArray, XskMap};
use aya::Ebpf;
use xpe_ebpf::{self as names, FastLabel, FastNextHop, FastPort, FastVrf};

use super::steer::{attach_loaded, loaded_program, Mode, SteerError};
use super::xdp_features::{NetdevFamily, XDP_ACT_NDO_XMIT};
use crate::pipeline::Counters;
use crate::tables::lpm::v4::{node_page, wider_root};
use crate::tables::{Ipv6Lpm, PortId};
pub use check::{Agreed, ByIngress};
use mapped::Mapped;
pub use tables::{FastTables, FastVerdict, Vrf6Table, VrfTable};

/// A map value the kernel copies as plain bytes: [`FastLabel`] and [`FastPort`] are `repr(C)`
/// structs of integers with explicit padding, defined in the no_std crate the program shares
/// (which does not depend on aya, hence the wrapper).
#[repr(transparent)]
#[derive(Clone, Copy)]
struct Value<T>(T);

// SAFETY: `T` is one of the `repr(C)` structs above: integers and byte arrays only, every bit
// pattern valid, padding spelt out as fields.
unsafe impl aya::Pod for Value<FastLabel> {}
// SAFETY: as above.
unsafe impl aya::Pod for Value<FastPort> {}
// SAFETY: as above.
unsafe impl aya::Pod for Value<FastVrf> {}
// SAFETY: as above.
unsafe impl aya::Pod for Value<FastNextHop> {}

/// Why the fast path could not be loaded, attached, updated or read.
#[derive(Debug, thiserror::Error)]
pub enum FastError {
    /// The object or a map was refused.
    #[error("cannot load the XDP fast path: {0} (needs root, or CAP_BPF and CAP_NET_ADMIN)")]
    Load(#[source] aya::EbpfError),
    /// The program was refused, or could not be attached.
    #[error(transparent)]
    Program(#[from] SteerError),
    /// More ports than the program's maps have slots for.
    #[error("the XDP fast path takes at most {max} interfaces; the config has {ports}")]
    TooManyPorts {
        /// Ports in the config.
        ports: usize,
        /// The most the fast path takes.
        max: u32,
    },
    /// An interface's index is beyond what the program's index covers.
    #[error("the XDP fast path takes interfaces with an index below {max}; one has index {ifindex} (a namespace that has made that many devices: use a fresh one)")]
    IfindexTooLarge {
        /// The index.
        ifindex: u32,
        /// The bound.
        max: u32,
    },
    /// A map could not be read or written.
    #[error("fast-path map {map}: {detail}")]
    Map {
        /// The map.
        map: &'static str,
        /// Why.
        detail: String,
    },
}

/// What one [`FastPath::apply`] changed against the live tables.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FastDelta {
    /// Whether the IPv4 tables (roots and arenas) were copied.
    pub routes_written: bool,
    /// Labels added or changed.
    pub written: usize,
    /// Labels removed.
    pub removed: usize,
    /// Labels in the live table now.
    pub labels: usize,
    /// IPv6 routes inserted, updated or removed in the trie.
    pub routes6_written: usize,
    /// VRFs whose IPv6 routes did not fit in the trie, left to the workers.
    pub vrfs6_left_out: usize,
}

/// One port's fast-path counters, summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FastPortCounters {
    /// Frames received on the port and forwarded in the kernel.
    pub rx_packets: u64,
    /// Their bytes.
    pub rx_bytes: u64,
    /// Frames the kernel forwarded out of the port.
    pub tx_packets: u64,
    /// Their bytes.
    pub tx_bytes: u64,
    /// Frames received on the port and steered to an AF_XDP socket.
    pub redirected: u64,
    /// Frames received on the port and passed to the kernel (no socket bound on the queue).
    pub passed: u64,
}

/// The fast path's counters, summed over CPUs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FastCounters {
    /// By port slot.
    pub ports: Vec<FastPortCounters>,
    /// Packets by label counter slot, for every slot the fast path has counted in.
    pub labels: Vec<(u32, u64)>,
    /// IP lookups (IPv4 and IPv6) by VRF counter slot, for every VRF slot it has counted in.
    pub vrfs: Vec<(u32, u64)>,
}

impl FastCounters {
    /// Frames forwarded in the kernel.
    pub fn forwarded(&self) -> u64 {
        self.ports.iter().map(|p| p.rx_packets).sum()
    }

    /// Adds what the kernel forwarded to the workers' counters `c`, so they count every frame
    /// the router forwarded: per port, per label slot, and in `forwarded`.
    pub fn add_to(&self, c: &mut Counters) {
        c.forwarded += self.forwarded();
        if c.ports.len() < self.ports.len() {
            c.ports.resize(self.ports.len(), Default::default());
        }
        for (mine, fast) in c.ports.iter_mut().zip(&self.ports) {
            mine.rx_packets += fast.rx_packets;
            mine.rx_bytes += fast.rx_bytes;
            mine.tx_packets += fast.tx_packets;
            mine.tx_bytes += fast.tx_bytes;
        }
        for (list, mine) in [(&self.labels, &mut c.labels), (&self.vrfs, &mut c.vrfs)] {
            for &(slot, n) in list {
                let slot = slot as usize;
                if mine.len() <= slot {
                    mine.resize(slot + 1, 0);
                }
                mine[slot] += n;
            }
        }
    }
}

/// The fast path as `show counters` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FastStatus {
    /// Whether it forwards (a failed update switches it off until the next one succeeds).
    pub live: bool,
    /// Labels in its live table.
    pub labels: usize,
    /// Table updates that failed.
    pub failed_updates: u64,
    /// The last failure.
    pub last_error: Option<String>,
    /// Its counters (empty when they could not be read; `last_error` then says why).
    pub counters: FastCounters,
    /// By port slot: whether it sends out of the port (see [`FastPath::refresh_egress`]).
    pub egress_ok: Vec<bool>,
    /// VRFs whose IPv6 frames it leaves to the workers: their routes did not fit in the trie.
    pub vrfs6_left_out: usize,
}

/// The fast-path program loaded, with its tables; attached to each interface with
/// [`FastPath::attach`], detached when dropped.
pub struct FastPath {
    ebpf: Ebpf,
    /// The copy of the program loaded ([`Buffers::program`]).
    program: &'static str,
    /// Interface index of each port slot.
    ifindex: Vec<u32>,
    /// What each generation's maps hold.
    held: [FastTables; 2],
    /// The mmapable arrays (both generations).
    arrays: Arrays,
    /// The port map's entries.
    ports: Vec<FastPort>,
    /// The live generation (0, 1), or [`names::FAST_GEN_OFF`].
    generation: u32,
    /// Label and VRF counter slots ever installed (the ones whose counters are read).
    counted: (BTreeSet<u32>, BTreeSet<u32>),
    /// The tables last asked for ([`FastPath::apply`]), before the egress check.
    wanted: FastTables,
    /// By port slot: whether a redirect to it can succeed ([`FastPath::refresh_egress`]).
    egress_ok: Vec<bool>,
    /// Whether egress needs checking: some interface is attached in native mode, where a
    /// redirect needs the egress device's `ndo_xdp_xmit` (skb mode transmits an skb).
    check_egress: bool,
    /// Interfaces attached, with the mode that took.
    attached: Vec<(String, Mode)>,
    /// Their links, until [`FastPath::detach`].
    links: Vec<aya::programs::xdp::XdpLinkId>,
    /// Updates that failed, and the last one's error.
    failed: (u64, Option<String>),
    /// What the IPv6 trie holds.
    trie6: Trie6,
    /// VRFs whose IPv6 routes the live generation left to the workers (the trie was full).
    left_out6: usize,
}

/// How the interfaces hand frames to the program, which decides the copy of it loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Buffers {
    /// Every frame in one buffer: the copy without multi-buffer support, which skips the check
    /// for frames in pieces (the kernel never hands it one).
    One,
    /// A frame may come in several (an MTU beyond a chunk, `xpe run` with multi-buffer
    /// AF_XDP): the copy with multi-buffer support, which leaves such frames to the workers.
    Several,
}

impl Buffers {
    /// The name of the program's copy for these interfaces.
    pub fn program(self) -> &'static str {
        match self {
            Buffers::One => names::FAST_LINEAR_PROGRAM,
            Buffers::Several => names::FAST_PROGRAM,
        }
    }
}

/// The IPv6 trie's bookkeeping: what each generation holds is in `held[g].v6`.
#[derive(Debug, Clone, Copy)]
struct Trie6 {
    /// Entries in it, both generations.
    entries: usize,
    /// Its size (max_entries).
    max: usize,
    /// By generation: an update failed half-way, so what it holds is not known; its entries
    /// are found by a walk of the trie and removed before it is written again.
    dirty: [bool; 2],
}

/// The IPv6 trie, as userspace writes it.
type Routes6<'a> = LpmTrie<&'a mut MapData, [u8; names::FAST_ROUTE6_KEY_LEN], u32>;
/// One port's fast-path counters in `XPE_FAST_PORT_STATS`, indexed by the `FAST_PORT_*` constants.
type PortStats = [u64; names::FAST_PORT_STATS_LEN as usize];

/// The trie key of route (`network`, `len`) of VRF `vrf` in generation `g`.
fn key6(g: usize, vrf: usize, network: u128, len: u8) -> Key<[u8; names::FAST_ROUTE6_KEY_LEN]> {
    Key::new(
        names::FAST_ROUTE6_KEY_BITS + u32::from(len),
        names::fast_route6_key(g as u32, vrf as u32, network.to_be_bytes()),
    )
}

/// The mmapable arrays, mapped: each holds both generations, generation 1 after generation 0.
struct Arrays {
    label_index: Mapped,
    labels: Mapped,
    attach: Mapped,
    vrfs: Mapped,
    root: Mapped,
    arena: Mapped,
    fecs: Mapped,
}

/// The upper word of root entry `entry` in the fast path's root (lib.rs, `FAST_ROOT_MAP`):
/// for an entry that points at a node, the first arena word of the node's page (`page_first`,
/// by page), else 0.
fn root_page(entry: u32, page_first: &[u64]) -> u64 {
    node_page(entry)
        .and_then(|page| page_first.get(page).copied())
        .unwrap_or(0)
}

/// Generation `g`'s half of `all`.
fn half<T>(all: &mut [T], g: usize) -> &mut [T] {
    let n = all.len() / 2;
    &mut all[g * n..(g + 1) * n]
}

impl Arrays {
    fn map(ebpf: &Ebpf) -> Result<Arrays, FastError> {
        let one = |name: &'static str| -> Result<Mapped, FastError> {
            let map = ebpf.map(name).ok_or_else(|| missing(name))?;
            Mapped::new(map).map_err(|detail| FastError::Map { map: name, detail })
        };
        Ok(Arrays {
            label_index: one(names::FAST_LABEL_INDEX_MAP)?,
            labels: one(names::FAST_LABELS_MAP)?,
            attach: one(names::FAST_ATTACH_MAP)?,
            vrfs: one(names::FAST_VRFS_MAP)?,
            root: one(names::FAST_ROOT_MAP)?,
            arena: one(names::FAST_ARENA_MAP)?,
            fecs: one(names::FAST_FECS_MAP)?,
        })
    }

    /// Replaces generation `g`'s label entries `before` with `labels`: each label's word in
    /// the index names its entry (1-based, generation offset included), the entries packed
    /// from the start of the generation's half.
    fn write_labels(
        &mut self,
        g: usize,
        before: &BTreeMap<u32, FastLabel>,
        labels: &BTreeMap<u32, FastLabel>,
    ) {
        let index = half(self.label_index.words(), g);
        for label in before.keys() {
            if let Some(w) = index.get_mut(*label as usize) {
                *w = 0;
            }
        }
        let entries = half(self.labels.elements::<Value<FastLabel>>(), g);
        let first = g * entries.len();
        for (i, ((label, entry), slot)) in labels.iter().zip(entries.iter_mut()).enumerate() {
            *slot = Value(*entry);
            if let Some(w) = index.get_mut(*label as usize) {
                *w = (first + i) as u32 + 1;
            }
        }
    }

    /// Replaces generation `g`'s attachments `before` with `attach`.
    fn write_attachments(
        &mut self,
        g: usize,
        before: &BTreeMap<u32, u32>,
        attach: &BTreeMap<u32, u32>,
    ) {
        let words = half(self.attach.words(), g);
        for key in before.keys() {
            words[*key as usize] = 0;
        }
        for (key, vrf) in attach {
            words[*key as usize] = vrf + 1;
        }
    }

    /// Copies every VRF's IPv4 table into generation `g`: roots one after the other, each entry
    /// that points at a node with its page's place in the arena; pages one after the other. A
    /// small table marked [`VrfTable::wide`] gets its root 8 bits wider ([`wider_root`]). A VRF
    /// that does not fit is left out (its lookups go to the workers).
    fn write_routes(&mut self, g: usize, vrfs: &[Option<VrfTable>], uniform: bool) {
        // The IPv6 flags are written after this, whenever a generation is ([`Arrays::write_v6_flags`]).
        let descriptors = half(self.vrfs.elements::<Value<FastVrf>>(), g);
        descriptors.fill(Value(FastVrf::default()));
        let (root, arena) = (
            half(self.root.elements::<u64>(), g),
            half(self.arena.words(), g),
        );
        // Indices stored in the tables are absolute: the program adds no offset to them.
        let (root_first, arena_first) = (g * root.len(), g * arena.len());
        let (mut root_at, mut arena_at) = (0usize, 0usize);
        let mut page_first = Vec::new();
        for (id, table) in vrfs.iter().enumerate() {
            let Some(t) = table else {
                continue;
            };
            let words: usize = t.pages.iter().map(|p| p.len()).sum();
            if root_at + t.root.len() > root.len() || arena_at + words > arena.len() {
                continue;
            }
            // A small table's lookup walks one node fewer through the wider root.
            let wider = t
                .wide
                .then(|| wider_root(&t.root, t.root_shift, &t.pages))
                .flatten()
                .filter(|w| root_at + w.len() <= root.len());
            let (entries, shift) = match &wider {
                Some(w) => (&w[..], t.root_shift - 8),
                None => (&t.root[..], t.root_shift),
            };
            page_first.clear();
            for page in &t.pages {
                page_first.push((arena_first + arena_at) as u64);
                arena[arena_at..arena_at + page.len()].copy_from_slice(page);
                arena_at += page.len();
            }
            for (slot, &entry) in root[root_at..].iter_mut().zip(entries) {
                *slot = u64::from(entry) | root_page(entry, &page_first) << 32;
            }
            descriptors[id] = Value(FastVrf {
                present: 1,
                root_base: (root_first + root_at) as u32,
                root_shift: shift,
                counter: t.counter,
                uniform: u32::from(uniform),
                pad0: 0,
                v6: 0,
                pad: 0,
            });
            root_at += entries.len();
        }
        // Explicit null routes in the global table with its mode even when it is left out.
        if let Some(global) = descriptors.first_mut() {
            global.0.uniform = u32::from(uniform);
        }
    }

    /// Marks in generation `g`'s VRF descriptors which VRFs have their IPv6 routes in the trie
    /// (`v6`, by VRF id), with their counter slot and the TTL mode.
    fn write_v6_flags(&mut self, g: usize, v6: &[Option<Vrf6Table>], uniform: bool) {
        let descriptors = half(self.vrfs.elements::<Value<FastVrf>>(), g);
        for (id, d) in descriptors.iter_mut().enumerate() {
            match v6.get(id) {
                Some(Some(t)) => {
                    d.0.v6 = 1;
                    d.0.counter = t.counter;
                    d.0.uniform = u32::from(uniform);
                }
                _ => d.0.v6 = 0,
            }
        }
    }

    /// Writes `items` into generation `g`'s half of the array `mapped` from its start and
    /// clears what follows up to `before` (what the previous tables there used).
    fn write_all<T: Copy + Default>(mapped: &mut Mapped, g: usize, items: &[T], before: usize)
    where
        Value<T>: aya::Pod,
    {
        let all = half(mapped.elements::<Value<T>>(), g);
        let n = items.len().min(all.len());
        for (slot, item) in all.iter_mut().zip(&items[..n]) {
            *slot = Value(*item);
        }
        if before > n {
            let end = before.min(all.len());
            for slot in &mut all[n..end] {
                *slot = Value(T::default());
            }
        }
    }
}

impl std::fmt::Debug for FastPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastPath")
            .field("attached", &self.attached)
            .field("generation", &self.generation)
            .field("labels", &self.live_labels())
            .finish()
    }
}

impl FastPath {
    /// Loads the program's copy for `buffers` for the ports whose interface indices `ifindex`
    /// gives (by port slot), fills the port map and the DEVMAP, and installs `tables`.
    pub fn load(
        ifindex: Vec<u32>,
        tables: &FastTables,
        buffers: Buffers,
    ) -> Result<FastPath, FastError> {
        FastPath::load_sized(ifindex, tables, buffers, None)
    }

    /// [`FastPath::load`] with an IPv6 trie of `routes6` entries (`None`: its full size,
    /// [`names::FAST_MAX_ROUTES6`]): tests fill a small one.
    #[doc(hidden)]
    pub fn load_sized(
        ifindex: Vec<u32>,
        tables: &FastTables,
        buffers: Buffers,
        routes6: Option<u32>,
    ) -> Result<FastPath, FastError> {
        if ifindex.len() > names::FAST_MAX_PORTS as usize {
            return Err(FastError::TooManyPorts {
                ports: ifindex.len(),
                max: names::FAST_MAX_PORTS,
            });
        }
        if let Some(&big) = ifindex.iter().find(|&&i| i >= names::FAST_MAX_IFINDEX) {
            return Err(FastError::IfindexTooLarge {
                ifindex: big,
                max: names::FAST_MAX_IFINDEX,
            });
        }
        let mut ebpf = super::steer::load_object(true, routes6).map_err(FastError::Load)?;
        {
            let mut tx: DevMap<&mut MapData> = map_mut(&mut ebpf, names::FAST_TX_MAP)?;
            for (slot, &i) in ifindex.iter().enumerate() {
                tx.set(slot as u32, i, None, 0)
                    .map_err(map_err(names::FAST_TX_MAP))?;
            }
        }
        let program = buffers.program();
        loaded_program(&mut ebpf, program)?;
        let trie6 = {
            let name = names::FAST_ROUTES6_MAP;
            let max = match ebpf.map(name).ok_or_else(|| missing(name))? {
                aya::maps::Map::LpmTrie(data) => data.info().map_err(map_err(name))?.max_entries(),
                _ => return Err(missing(name)),
            };
            Trie6 {
                entries: 0,
                max: max as usize,
                dirty: [false; 2],
            }
        };
        let slots = ifindex.len();
        let arrays = Arrays::map(&ebpf)?;
        let mut fast = FastPath {
            ebpf,
            program,
            ifindex,
            wanted: FastTables::default(),
            egress_ok: vec![true; slots],
            check_egress: false,
            held: [FastTables::default(), FastTables::default()],
            arrays,
            ports: Vec::new(),
            generation: names::FAST_GEN_OFF,
            counted: (BTreeSet::new(), BTreeSet::new()),
            attached: Vec::new(),
            links: Vec::new(),
            failed: (0, None),
            trie6,
            left_out6: 0,
        };
        fast.set_generation(names::FAST_GEN_OFF)?;
        fast.apply(tables)?;
        Ok(fast)
    }

    /// Attaches the program to `ifname`; with [`Mode::Auto`], native first, then skb.
    pub fn attach(&mut self, ifname: &str, mode: Mode) -> Result<Mode, FastError> {
        let xdp: &mut aya::programs::Xdp = self
            .ebpf
            .program_mut(self.program)
            .ok_or_else(|| missing(self.program))?
            .try_into()
            .map_err(|source| SteerError::Program {
                program: self.program,
                source,
            })?;
        let (mode, link) = attach_loaded(xdp, ifname, mode)?;
        self.attached.push((ifname.to_string(), mode));
        self.links.push(link);
        self.check_egress |= mode == Mode::Native;
        Ok(mode)
    }

    /// Asks the kernel again which ports take redirected frames (a veth does only while its
    /// peer has an XDP program or GRO on), and reinstalls the tables if that changed: labels
    /// whose egress does not are left to the workers. Returns whether anything changed.
    pub fn refresh_egress(&mut self) -> Result<bool, FastError> {
        // A port whose features cannot be read is not sent to: the workers still are.
        let family = self.check_egress.then(NetdevFamily::open);
        let now: Vec<bool> = self
            .ifindex
            .iter()
            .map(|&i| match &family {
                None => true,
                Some(Ok(f)) => f.features(i).is_ok_and(|f| f & XDP_ACT_NDO_XMIT != 0),
                Some(Err(_)) => false,
            })
            .collect();
        if now == self.egress_ok {
            return Ok(false);
        }
        self.egress_ok = now;
        let wanted = self.wanted.clone();
        self.apply(&wanted)?;
        Ok(true)
    }

    /// Detaches the program from every interface (its maps and counters stay readable).
    pub fn detach(&mut self) {
        let Some(program) = self.ebpf.program_mut(self.program) else {
            return;
        };
        let Ok(xdp) = <&mut aya::programs::Xdp>::try_from(program) else {
            return;
        };
        for link in self.links.drain(..) {
            // An interface that went away took its attachment with it.
            let _gone = xdp.detach(link);
        }
    }

    /// The interfaces attached, with the mode that took on each.
    pub fn attached(&self) -> &[(String, Mode)] {
        &self.attached
    }

    /// Points RX queue `queue` of port `port` at the AF_XDP socket `fd`.
    pub fn bind_socket(&mut self, port: PortId, queue: u32, fd: RawFd) -> Result<(), FastError> {
        let mut xsks: XskMap<&mut MapData> = map_mut(&mut self.ebpf, names::FAST_XSK_MAP)?;
        xsks.set(u32::from(port.0) * names::MAX_QUEUES + queue, fd, 0)
            .map_err(|e| FastError::Map {
                map: names::FAST_XSK_MAP,
                detail: format!("queue {queue} of port {}: {e}", port.0),
            })
    }

    /// Whether the fast path forwards at all (not switched off by a failed update).
    pub fn is_live(&self) -> bool {
        self.generation != names::FAST_GEN_OFF
    }

    /// Its state and counters.
    pub fn status(&self) -> FastStatus {
        let (counters, read_error) = match self.counters() {
            Ok(c) => (c, None),
            Err(e) => (FastCounters::default(), Some(e.to_string())),
        };
        FastStatus {
            live: self.is_live(),
            labels: self.live_labels(),
            failed_updates: self.failed.0,
            last_error: read_error.or_else(|| self.failed.1.clone()),
            counters,
            egress_ok: self.egress_ok.clone(),
            vrfs6_left_out: self.left_out6,
        }
    }

    /// Labels in the live table.
    pub fn live_labels(&self) -> usize {
        self.held
            .get(self.generation as usize)
            .map_or(0, |h| h.labels.len())
    }

    /// Brings the maps in step with `next`: the port entries that changed, then the label map
    /// the program does not read, then the switch to it. Returns what changed against the live
    /// table. On a failure the fast path is switched off (every frame goes to the workers,
    /// which have the new tables) until an update succeeds.
    pub fn apply(&mut self, next: &FastTables) -> Result<FastDelta, FastError> {
        self.wanted = next.clone();
        let next = next.sending_only_to(&self.egress_ok);
        match self.try_apply(&next) {
            Ok(delta) => Ok(delta),
            Err(e) => {
                // Nothing is forwarded on stale tables; if even this fails the program keeps
                // the last complete tables, which the error reports.
                let _off = self.set_generation(names::FAST_GEN_OFF);
                self.failed = (self.failed.0 + 1, Some(e.to_string()));
                Err(e)
            }
        }
    }

    fn try_apply(&mut self, next: &FastTables) -> Result<FastDelta, FastError> {
        self.write_ports(&next.ports)?;
        let empty = FastTables::default();
        let live = self.held.get(self.generation as usize).unwrap_or(&empty);
        // Most publishes (a neighbour elsewhere, a route in the workers' tables only) change
        // nothing here: no switch, no grace period.
        if self.generation != names::FAST_GEN_OFF && live == next {
            return Ok(FastDelta {
                labels: next.labels.len(),
                ..FastDelta::default()
            });
        }
        let mut delta = FastDelta {
            written: next
                .labels
                .iter()
                .filter(|(l, e)| live.labels.get(l) != Some(e))
                .count(),
            removed: live
                .labels
                .keys()
                .filter(|l| !next.labels.contains_key(l))
                .count(),
            labels: next.labels.len(),
            ..FastDelta::default()
        };
        let spare = match self.generation {
            0 => 1,
            _ => 0,
        };
        let written = self.write_generation(spare, next)?;
        delta.routes_written = written.routes;
        delta.routes6_written = written.routes6;
        delta.vrfs6_left_out = written.left_out6;
        self.set_generation(spare as u32)?;
        self.left_out6 = written.left_out6;
        Ok(delta)
    }

    /// Brings generation `g` (not live) to `next`; returns what it wrote. What it holds is
    /// recorded as it is written, so a failure leaves `held` true.
    fn write_generation(&mut self, g: usize, next: &FastTables) -> Result<Written, FastError> {
        for e in next.labels.values() {
            self.counted.0.insert(e.counter);
        }
        for t in next.vrfs.iter().flatten() {
            self.counted.1.insert(t.counter);
        }
        for t in next.v6.iter().flatten() {
            self.counted.1.insert(t.counter);
        }
        let held = &mut self.held[g];
        let arrays = &mut self.arrays;
        if held.labels != next.labels {
            arrays.write_labels(g, &held.labels, &next.labels);
            held.labels = next.labels.clone();
        }
        if held.attach != next.attach {
            arrays.write_attachments(g, &held.attach, &next.attach);
            held.attach = next.attach.clone();
        }
        let routes = held.vrfs != next.vrfs || held.uniform != next.uniform;
        if routes {
            arrays.write_routes(g, &next.vrfs, next.uniform);
            held.vrfs = next.vrfs.clone();
            held.uniform = next.uniform;
        }
        if held.fecs != next.fecs || held.adjs != next.adjs {
            // Each FEC with a copy of its adjacency: a neighbour's change rewrites them all.
            let hops: Vec<FastNextHop> = next
                .fecs
                .iter()
                .map(|&fec| FastNextHop {
                    fec,
                    adj: next.adjs.get(fec.adj as usize).copied().unwrap_or_default(),
                })
                .collect();
            Arrays::write_all(&mut arrays.fecs, g, &hops, held.fecs.len());
            held.fecs = next.fecs.clone();
            held.adjs = next.adjs.clone();
        }
        held.ports = next.ports.clone();
        let (routes6, left_out6) = self.write_routes6(g, &next.v6)?;
        self.arrays
            .write_v6_flags(g, &self.held[g].v6, self.held[g].uniform);
        Ok(Written {
            routes,
            routes6,
            left_out6,
        })
    }

    /// Brings generation `g`'s IPv6 routes in the trie from what it holds (`held[g].v6`) to
    /// `next`, writing only the routes that differ: removals first, over every VRF, so that
    /// the room they free is there for what is added; then VRF by VRF, the routes added or
    /// changed. A VRF whose new routes would not fit is left out of the generation whole: its
    /// routes there are removed, and its IPv6 lookups go to the workers (its flag in the VRF
    /// descriptors is clear) until a later update finds room. The trie keeps one entry free,
    /// so that an update in place never meets a full trie (kernels before 6.13 refused those).
    /// Returns the routes written and the VRFs left out.
    ///
    /// On a failed map operation the generation is marked dirty: before it is written again,
    /// its entries are found by a walk of the whole trie and removed.
    fn write_routes6(
        &mut self,
        g: usize,
        next: &[Option<Vrf6Table>],
    ) -> Result<(usize, usize), FastError> {
        let name = names::FAST_ROUTES6_MAP;
        let mut trie: Routes6 = map_mut(&mut self.ebpf, name)?;
        let state = &mut self.trie6;
        let held = &mut self.held[g].v6;
        if state.dirty[g] {
            state.entries = purge_generation(&mut trie, g)?;
            state.dirty[g] = false;
            held.clear();
        }
        let n = held.len().max(next.len());
        held.resize(n, None);
        let empty = Ipv6Lpm::new();
        let lpm = |t: &Option<Vrf6Table>| t.as_ref().map_or(&empty, |t| &t.lpm).clone();
        let plans: Vec<(usize, Vec<crate::tables::Ipv6Change>)> = (0..n)
            .filter(|&id| held[id] != next.get(id).cloned().flatten())
            .map(|id| {
                let want = next.get(id).cloned().flatten();
                (id, lpm(&held[id]).changes_to(&lpm(&want)))
            })
            .collect();
        let failed = |state: &mut Trie6, e: aya::maps::MapError| {
            state.dirty[g] = true;
            FastError::Map {
                map: name,
                detail: e.to_string(),
            }
        };
        let mut written = 0;
        for (id, changes) in &plans {
            for c in changes.iter().filter(|c| c.after.is_none()) {
                trie.remove(&key6(g, *id, c.network, c.len))
                    .map_err(|e| failed(state, e))?;
                state.entries -= 1;
                written += 1;
            }
        }
        let mut left_out = 0;
        for (id, changes) in plans {
            let want = next.get(id).cloned().flatten();
            let added = changes
                .iter()
                .filter(|c| c.before.is_none() && c.after.is_some())
                .count();
            if state.entries + added >= state.max {
                // Removed already: what it had that is gone from the new table. Left: the rest.
                for c in lpm(&held[id]).routes() {
                    match trie.remove(&key6(g, id, c.network, c.len)) {
                        Ok(()) => state.entries -= 1,
                        Err(e) if is_enoent(&e) => {}
                        Err(e) => return Err(failed(state, e)),
                    }
                }
                held[id] = None;
                left_out += 1;
                continue;
            }
            for c in &changes {
                let Some(fec) = c.after else { continue };
                trie.insert(&key6(g, id, c.network, c.len), fec, 0)
                    .map_err(|e| failed(state, e))?;
                state.entries += usize::from(c.before.is_none());
                written += 1;
            }
            held[id] = want;
        }
        Ok((written, left_out))
    }

    /// Writes the port entries that differ from `ports`.
    fn write_ports(&mut self, ports: &[FastPort]) -> Result<(), FastError> {
        let name = names::FAST_PORTS_MAP;
        let mut map: Array<&mut MapData, Value<FastPort>> = map_mut(&mut self.ebpf, name)?;
        for (slot, (port, &ifindex)) in ports.iter().zip(&self.ifindex).enumerate() {
            if self.ports.get(slot) != Some(port) {
                map.set(ifindex, Value(*port), 0)
                    .map_err(|e| FastError::Map {
                        map: name,
                        detail: format!("port {slot}: {e}"),
                    })?;
            }
        }
        self.ports = ports.to_vec();
        Ok(())
    }

    /// Makes label map `generation` live (or none, with [`names::FAST_GEN_OFF`]), then waits
    /// until no program can still be reading the one before.
    fn set_generation(&mut self, generation: u32) -> Result<(), FastError> {
        let mut gen: Array<&mut MapData, u32> = map_mut(&mut self.ebpf, names::FAST_GEN_MAP)?;
        gen.set(0, generation, 0)
            .map_err(map_err(names::FAST_GEN_MAP))?;
        self.generation = generation;
        grace_period();
        Ok(())
    }

    /// The counters, summed over CPUs.
    pub fn counters(&self) -> Result<FastCounters, FastError> {
        let port_stats: PerCpuArray<&MapData, PortStats> =
            map_ref(&self.ebpf, names::FAST_PORT_STATS_MAP)?;
        let mut ports = Vec::with_capacity(self.ifindex.len());
        for slot in 0..self.ifindex.len() as u32 {
            let values = port_stats
                .get(&slot, 0)
                .map_err(map_err(names::FAST_PORT_STATS_MAP))?;
            let at = |k: u32| values.iter().map(|v| v[k as usize]).sum::<u64>();
            ports.push(FastPortCounters {
                rx_packets: at(names::FAST_PORT_RX_PACKETS),
                rx_bytes: at(names::FAST_PORT_RX_BYTES),
                tx_packets: at(names::FAST_PORT_TX_PACKETS),
                tx_bytes: at(names::FAST_PORT_TX_BYTES),
                redirected: at(names::FAST_PORT_REDIRECTED),
                passed: at(names::FAST_PORT_PASSED),
            });
        }
        let by_slot = |name: &'static str, slots: &BTreeSet<u32>| {
            let stats: PerCpuArray<&MapData, u64> = map_ref(&self.ebpf, name)?;
            let mut out = Vec::with_capacity(slots.len());
            for &slot in slots {
                let values = stats.get(&slot, 0).map_err(map_err(name))?;
                out.push((slot, values.iter().sum()));
            }
            Ok::<_, FastError>(out)
        };
        Ok(FastCounters {
            ports,
            labels: by_slot(names::FAST_LABEL_STATS_MAP, &self.counted.0)?,
            vrfs: by_slot(names::FAST_VRF_STATS_MAP, &self.counted.1)?,
        })
    }

    /// Runs the program once on `frame` as if it arrived on interface `ingress` (queue 0),
    /// with BPF_PROG_TEST_RUN: returns the XDP action and the frame as the program left it.
    pub fn test_run(&self, frame: &[u8], ingress: u32) -> Result<(u32, Vec<u8>), FastError> {
        let (action, out, _) = self.run_once(frame, ingress)?;
        Ok((action, out))
    }

    /// As [`FastPath::test_run`], but returns the XDP action and how long the program ran by
    /// the kernel's clock (`benches/src/bin/xpe-fast-cost.rs`). One run per call: with a
    /// repeat count the kernel would run the program again on the frame it already rewrote.
    pub fn timed_run(
        &self,
        frame: &[u8],
        ingress: u32,
    ) -> Result<(u32, std::time::Duration), FastError> {
        let (action, _, took) = self.run_once(frame, ingress)?;
        Ok((action, took))
    }

    fn run_once(
        &self,
        frame: &[u8],
        ingress: u32,
    ) -> Result<(u32, Vec<u8>, std::time::Duration), FastError> {
        use aya::programs::{TestRun, TestRunOptions};
        let program_err = |source| SteerError::Program {
            program: self.program,
            source,
        };
        let xdp: &aya::programs::Xdp = self
            .ebpf
            .program(self.program)
            .ok_or_else(|| missing(self.program))?
            .try_into()
            .map_err(program_err)?;
        // struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index,
        // egress_ifindex (linux/bpf.h); the kernel wants data 0 and data_end the length.
        let md: [u32; 6] = [0, frame.len() as u32, 0, ingress, 0, 0];
        let ctx: Vec<u8> = md.iter().flat_map(|w| w.to_ne_bytes()).collect();
        let mut out = vec![0u8; frame.len() + 256];
        let result = xdp
            .test_run(TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                ctx_in: Some(&ctx),
                ..TestRunOptions::default()
            })
            .map_err(program_err)?;
        out.truncate(result.data_size_out as usize);
        Ok((result.return_value, out, result.duration))
    }
}

/// What [`FastPath::write_generation`] wrote.
struct Written {
    /// Whether the IPv4 tables were copied.
    routes: bool,
    /// IPv6 routes written to the trie (inserted, changed or removed).
    routes6: usize,
    /// VRFs whose IPv6 routes did not fit.
    left_out6: usize,
}

/// Removes every entry of generation `g` from the IPv6 trie, found by walking all of it;
/// returns the entries left (the other generation's).
fn purge_generation(trie: &mut Routes6<'_>, g: usize) -> Result<usize, FastError> {
    let name = names::FAST_ROUTES6_MAP;
    let keys = trie
        .keys()
        .collect::<Result<Vec<_>, _>>()
        .map_err(map_err(name))?;
    let mut kept = 0;
    for key in keys {
        let data = key.data();
        if usize::from(u16::from_be_bytes([data[0], data[1]])) == g {
            trie.remove(&key).map_err(map_err(name))?;
        } else {
            kept += 1;
        }
    }
    Ok(kept)
}

/// Whether a map operation failed because the key was not there.
fn is_enoent(e: &aya::maps::MapError) -> bool {
    match e {
        aya::maps::MapError::KeyNotFound => true,
        aya::maps::MapError::SyscallError(s) => s.io_error.raw_os_error() == Some(libc::ENOENT),
        _ => false,
    }
}

/// Waits for an RCU grace period: when it returns, no XDP program that started before it is
/// still running. `membarrier(MEMBARRIER_CMD_GLOBAL)` is the kernel's `synchronize_rcu()`
/// (kernel/sched/membarrier.c), and XDP programs run inside RCU read-side sections. Where the
/// kernel refuses it (nohz_full CPUs), a pause far longer than any one program run stands in.
fn grace_period() {
    const MEMBARRIER_CMD_GLOBAL: libc::c_long = 1;
    // SAFETY: membarrier takes no pointers; an unsupported command only returns an error.
    let done = unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) } == 0;
    if !done {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn missing(map: &'static str) -> FastError {
    FastError::Map {
        map,
        detail: "missing from the embedded object".into(),
    }
}

fn map_err<E: std::fmt::Display>(map: &'static str) -> impl Fn(E) -> FastError {
    move |e| FastError::Map {
        map,
        detail: e.to_string(),
    }
}

/// Map `name` of `ebpf` as the typed read-only map `M`.
fn map_ref<'a, M>(ebpf: &'a Ebpf, name: &'static str) -> Result<M, FastError>
where
    M: TryFrom<&'a aya::maps::Map, Error = aya::maps::MapError>,
{
    let found = ebpf.map(name).ok_or_else(|| missing(name))?;
    M::try_from(found).map_err(map_err(name))
}

/// Map `name` of `ebpf` as the typed map `M`.
fn map_mut<'a, M>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<M, FastError>
where
    M: TryFrom<&'a mut aya::maps::Map, Error = aya::maps::MapError>,
{
    let found = ebpf.map_mut(name).ok_or_else(|| missing(name))?;
    M::try_from(found).map_err(map_err(name))
}

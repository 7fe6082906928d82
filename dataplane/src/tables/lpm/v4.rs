//! IPv4 longest-prefix match: a compressed multibit trie with one arena and no popcount.
//!
//! # Layout
//!
//! The top `R` bits of the address index a flat *root* array: `R` = 16 (65536 entries,
//! 256 KiB) from `LARGE_ROOT_MIN_ROUTES` (4096) routes on, `R` = 8 (1 KiB) below, so an empty or
//! small VRF costs about a kilobyte. Every further 8 bits are resolved by a *node*: 16-8-8 or
//! 8-8-8-8. Every entry is either a leaf (the value of the longest prefix covering the entry's
//! whole range: "leaf pushing", so a lookup stops at the first leaf) or a child node, told
//! apart by the top bit.
//!
//! The brief's starting point stored a node as 256 u32 entries (1 KiB). With the BGP-like
//! 1M table of `xpe_benches::routes` that takes 82,871 nodes, 81 MiB (85 bytes per prefix,
//! over the 64 budget; 24-bit entries would still need 62 MiB), far beyond the 32 MiB L3, so
//! most lookups would pay a DRAM miss plus a TLB miss (no huge pages without `madvise`).
//!
//! A node here stores its 256 entries compressed: consecutive equal leaves share one stored
//! entry (a *run*), as in poptrie (Asai and Ohara, SIGCOMM 2015). A node is a 64-byte header
//! followed directly by its stored entries in one `u32` arena:
//!
//! ```text
//! header: 32 x u16, one per group of 8 entries: runs started before the group (high byte)
//!                                               | which of its 8 entries start a run (low byte)
//! then:   stored entries, in entry order: leaf value, or NODE_BIT | arena offset of a child
//! ```
//!
//! Entry `i`'s stored entry is number `before(i / 8) + popcount(starts(i / 8) up to i) - 1`;
//! the popcount of one byte is a lookup in a 256-byte table. A child always starts a run of its
//! own, so the arena offset of a child is read from the parent's entries and nodes may have any
//! size. At 1M prefixes this is 12.4 MiB (13.0 B/prefix): 5.3 MiB of headers, 7.4 MiB of
//! stored entries, the 256 KiB root.
//!
//! Why this shape, measured on the shared 2-core EPYC VM (4096 random hitting probes, median
//! ns per lookup at 1k / 100k / 1M prefixes):
//! - poptrie proper (separate node and leaf arrays, 64-bit `children` and `leaves` bitmaps,
//!   fixed 96-byte nodes): 9.1 / 9.5 / 16.5 ns, 16.0 B/prefix at 1M. The default x86-64 target
//!   has no POPCNT, so `count_ones` is a dozen ALU operations per level; with
//!   `-C target-cpu=native` the same code ran 5.4 / 6.1 / 10.9 ns.
//! - one arena, header followed by its entries, child offsets stored as entries (one
//!   bitmap, no branch on child/leaf, node and leaf in the same page): 9.1 / 7.3 / 11.2 ns,
//!   11.2 B/prefix; with native POPCNT 5.2 / 4.4 / 6.4 ns.
//! - this layout, popcount replaced by per-byte counts plus a byte table: 6.0 / 4.7 / 7.3 ns
//!   (best 6.4 ns) on the baseline target, i.e. the native-POPCNT speed without relying on the
//!   build's target CPU; 13.0 B/prefix.
//!
//! Tables spread uniformly at random are the hard case: every /24 lands in its own /16 node.
//! Mid-sized spread tables pay the 64-byte header per sparse node (1k routes: 97 B/prefix;
//! 10k: 95; 100k: 43), real VRFs cluster under few /16s and cost less.
//!
//! # Building
//!
//! Routes are validated, sorted by (network, length) and deduplicated (last one wins). In that
//! order a covering prefix always comes before the prefixes it covers, so painting a node's
//! entries in order lets longer prefixes overwrite shorter ones without per-entry depth, and
//! the routes below one entry form one contiguous slice that is handed to the child's build.
//! Nodes are laid out depth first, so a subtree is contiguous in the arena. A full build of
//! the 1M table takes about 150 ms.
//!
//! # Updates
//!
//! The routing daemon changes single routes at BGP rates in tables of a million, so a change
//! must not rebuild the table. [`Ipv4Table`] is the editable side: it keeps the routes
//! (grouped by root entry, see `v4_routes`) and the trie's mutable parts, and each [`Ipv4Table::apply`] of a batch of
//! changes produces a new immutable [`Ipv4Lpm`] that shares everything untouched with the
//! previous one.
//!
//! - Below the root, each populated root entry owns a *subtree*, laid out depth first and
//!   addressed only through that entry. A route longer than the root's `R` bits touches the
//!   subtree of one entry; a route of at most `R` bits repaints a range of root entries, and
//!   the subtrees below them are rebuilt with the new pushed leaf. Nested ranges of one batch
//!   are merged, so every entry is rebuilt once per batch. The subtree of one /16 in a
//!   BGP-like table holds about 15 routes and builds in microseconds; a change of a very short
//!   prefix (the default route) rebuilds every subtree below it, as a full build does.
//! - The node arena is split into *pages* of at most `2^PAGE_SHIFT` words, each an
//!   `Arc<[u32]>`. A subtree never spans two pages, so a lookup reads its page once, at the
//!   root. Every batch writes its new subtrees into fresh pages (exactly sized), and a new
//!   table shares every older page with its predecessor: the cost of a publish is the copy of
//!   the root (256 KiB at most) and of the page list, not of the arena.
//! - A replaced subtree leaves garbage in its old page. The table counts the live words of
//!   each page, drops a page when none are left, and compacts a little on every batch: while
//!   garbage exceeds half the live words, it rebuilds the subtrees of the page with the
//!   largest share of garbage into the batch's page, within a budget of twice the words the
//!   batch wrote. So memory stays within about 1.5 times a full build and no batch pays for a
//!   whole compaction. (A quarter and four times kept memory at 1.25x but made the compaction
//!   two thirds of a churn batch's work: `cargo run --release -p xpe-benches --example
//!   lpm_churn`, 1M routes, batches of 2,000 changes, p50 14.1 ms against 10.0 ms.)
//! - A batch of changes about as large as the table is merged with the routes and built
//!   whole, as a full build.
//! - The root widens (8 to 16 bits) when a table reaches `LARGE_ROOT_MIN_ROUTES` routes and
//!   narrows below half that: a full build, once per crossing.
//!
//! Readers finish their batch on the table they loaded (RCU style): nothing they can reach
//! is ever written again.

use core::fmt;
use core::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use super::v4_routes::{Route, RouteSet};
use super::{LpmError, MAX_VALUE};

/// Bits resolved by each node below the root.
const STRIDE: u8 = 8;
/// Tag bit of an entry (in the root or a node) holding a child's arena offset, not a leaf.
pub(crate) const NODE_BIT: u32 = 1 << 31;
/// Leaf value meaning "no route covers this range".
const NO_ROUTE: u32 = NODE_BIT - 1;
/// Root width of small tables: 256 entries, 1 KiB, so an idle VRF costs about a kilobyte.
const SMALL_ROOT_BITS: u8 = 8;
/// Root width of large tables: 65536 entries, 256 KiB, saving one node level per lookup.
const LARGE_ROOT_BITS: u8 = 16;
/// From this many routes on, the 256 KiB root (at most 64 B/prefix) replaces the /8-level
/// nodes, which in a spread table cost about one 64-byte header per route, and saves one level
/// on every lookup. A table narrows again below half of it, so a table that hovers around the
/// threshold is not rebuilt on every change.
const LARGE_ROOT_MIN_ROUTES: usize = 4096;
/// Words of a node header: 32 u16 groups, one per 8 entries, two per word. A group holds the
/// number of runs that start before its first entry (high byte, at most 248) and which of
/// its 8 entries start a run (low byte), so the rank of an entry is one add and one lookup
/// in [`POPCOUNT8`], with no 64-bit popcount (see the module doc).
pub(crate) const HEADER_WORDS: usize = 16;
/// An arena offset is `page << PAGE_SHIFT | word in page`. A subtree never spans pages, so a
/// page holds the largest one: below a /16 root entry at most 257 nodes of 272 words (69,904);
/// below a /8 entry of a small table (under 4096 routes) at most about 242,000 words (three
/// nodes per route, 17 words each plus two entries per route). 2^22 words (16 MiB) leave room
/// for both, and for the whole arena of a full build of a few million routes, which a lookup
/// then reads through `first` (measured: the page list's dependent load cost 10-40% of a
/// cache-resident lookup at 1M routes; through `first`, within noise of the single arena).
pub(crate) const PAGE_SHIFT: u32 = 22;
/// The arena page of `entry` (a root or node entry) when it points at a node.
pub(crate) fn node_page(entry: u32) -> Option<usize> {
    (entry & NODE_BIT != 0).then_some(((entry & !NODE_BIT) >> PAGE_SHIFT) as usize)
}

/// For a table with the small root (8 bits) in raw parts ([`Ipv4Lpm::raw_parts`]), the root 8
/// bits wider, for the shift `root_shift - 8`: each entry is the one a lookup reaches from the
/// root through one node, a leaf or a node in the same page, as a root entry holds it. A
/// lookup through it walks one node fewer. The XDP fast path copies it in place of the root
/// while it has room (docs/runtime.md). `None` for a table with the large root.
pub fn wider_root(root: &[u32], root_shift: u32, pages: &[Arc<[u32]>]) -> Option<Vec<u32>> {
    if root_shift != 32 - u32::from(SMALL_ROOT_BITS) {
        return None;
    }
    let fan = 1usize << STRIDE;
    let mut wide = Vec::with_capacity(root.len() * fan);
    for &entry in root {
        match node_page(entry) {
            None => wide.extend(std::iter::repeat_n(entry, fan)),
            Some(n) => wide.extend((0..fan as u32).map(|s| child(&pages[n], entry, s))),
        }
    }
    Some(wide)
}

/// Entry `slot` (0..=255) of the node that `entry` points at, in its page `page`.
#[inline(always)]
fn child(page: &[u32], entry: u32, slot: u32) -> u32 {
    let node = (entry as usize) & (PAGE_WORDS - 1);
    let group = page[node + (slot >> 4) as usize] >> ((slot & 8) << 1);
    let starts_up_to_slot = group & (0xff >> (7 - (slot & 7)));
    // rank >= 1: entry 0 always starts a run, so every later group counts it.
    let rank = ((group >> 8) & 0xff) + u32::from(POPCOUNT8[starts_up_to_slot as usize]);
    page[node + HEADER_WORDS - 1 + rank as usize]
}

/// Largest page, in words.
const PAGE_WORDS: usize = 1 << PAGE_SHIFT;
/// Pages an offset can name (the tag bit takes the 32nd bit).
const MAX_PAGES: usize = 1 << (31 - PAGE_SHIFT);
/// A batch appends to the last page (a copy of it: readers may hold the old one) until it
/// reaches this many words, 256 KiB: a batch copies at most that much, and pages stay big
/// enough to be few.
const TAIL_WORDS: usize = 1 << 16;
/// Words a batch may rebuild for compaction at least, whatever it wrote itself, so batches
/// that write nothing still make progress.
const MIN_COMPACT_WORDS: usize = 64;
/// A batch of more changes than this and than a quarter of the table is merged and built
/// whole ([`Ipv4Table::apply_bulk`]): cheaper than that many single edits, and it keeps a
/// small root's per-entry lists from growing one insertion at a time.
const BULK_MIN_CHANGES: usize = 4096;

/// Number of set bits of every byte value: an L1-resident table standing in for the POPCNT
/// instruction, which the baseline x86-64 target lacks.
static POPCOUNT8: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut byte = 0;
    while byte < 256 {
        table[byte] = (byte as u8).count_ones() as u8;
        byte += 1;
    }
    table
};

const _: () = assert!(MAX_VALUE < NO_ROUTE);

/// [`Ipv4Lpm::raw_parts`]: the root, its shift, and the arena pages.
pub type RawParts<'a> = (&'a Arc<[u32]>, u32, &'a [Arc<[u32]>]);

/// IPv4 longest-prefix-match table of one VRF: destination address to FEC index.
///
/// Immutable once built; share it between workers behind an `Arc` in the VRF snapshot.
/// Cloning it shares the root and the pages. [`Ipv4Table`] makes new versions of it.
#[derive(Clone, PartialEq, Eq)]
pub struct Ipv4Lpm {
    /// Entry per value of the top `32 - root_shift` address bits.
    root: Arc<[u32]>,
    root_shift: u32,
    /// The node arena in pages: each node is a header followed by its entries (module doc).
    pages: Box<[Arc<[u32]>]>,
    /// Page 0 again, read without going through `pages`: a full build of up to a few
    /// million routes puts every subtree there, so most lookups skip one dependent load.
    first: Arc<[u32]>,
    len: usize,
    /// At least the largest value of any route (it never falls while the table is edited).
    max_value: Option<u32>,
}

impl Ipv4Lpm {
    /// Largest value a route may carry ([`MAX_VALUE`], 2^31 - 2).
    pub const MAX_VALUE: u32 = MAX_VALUE;

    /// An empty table: a 1 KiB root and nothing else.
    pub fn new() -> Self {
        Ipv4Table::new().lpm().clone()
    }

    /// Builds a table from `(network, prefix length 0..=32, value)`; for a duplicate prefix the
    /// last one wins.
    pub fn from_routes<I: IntoIterator<Item = (Ipv4Addr, u8, u32)>>(
        routes: I,
    ) -> Result<Self, LpmError> {
        Ok(Ipv4Table::from_routes(routes)?.lpm().clone())
    }

    /// The value of the longest prefix containing `addr` (host order, `u32::from(Ipv4Addr)`).
    #[inline]
    pub fn lookup(&self, addr: u32) -> Option<u32> {
        let mut shift = self.root_shift;
        let mut entry = self.root[(addr >> shift) as usize];
        if entry & NODE_BIT != 0 {
            // The whole subtree below a root entry lies in one page.
            let page = match (entry & !NODE_BIT) >> PAGE_SHIFT {
                0 => &*self.first,
                n => &*self.pages[n as usize],
            };
            while entry & NODE_BIT != 0 {
                // A node exists only above /32, so `shift` is at least STRIDE here.
                shift -= u32::from(STRIDE);
                entry = child(page, entry, (addr >> shift) & 0xff);
            }
        }
        (entry != NO_ROUTE).then_some(entry)
    }

    /// Number of distinct prefixes in the table.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The lookup structure as it is: the root, the shift that indexes it (`addr >> shift`)
    /// and the arena pages (page `n` of an entry's offset is `pages[n]`). The XDP fast path
    /// copies these into array maps and walks them as [`Ipv4Lpm::lookup`] does.
    pub fn raw_parts(&self) -> RawParts<'_> {
        (&self.root, self.root_shift, &self.pages)
    }

    /// True when the table holds no prefix.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// No lookup returns more than this (`None`: no route ever had a value), so the holder of
    /// the values (the FEC table) can check they all exist without reading every route.
    pub fn max_value(&self) -> Option<u32> {
        self.max_value
    }

    /// Heap bytes of the lookup structure (root, page list and pages), counting pages shared
    /// with other versions of the table too.
    pub fn memory_bytes(&self) -> usize {
        core::mem::size_of_val(&*self.root)
            + self
                .pages
                .iter()
                .map(|p| core::mem::size_of_val(&**p))
                .sum::<usize>()
    }
}

impl Default for Ipv4Lpm {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Ipv4Lpm {
    // The arena runs to megabytes; print its shape, not its contents.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ipv4Lpm")
            .field("prefixes", &self.len)
            .field("root_entries", &self.root.len())
            .field(
                "pages",
                &self.pages.iter().filter(|p| !p.is_empty()).count(),
            )
            .field("memory_bytes", &self.memory_bytes())
            .finish()
    }
}

/// What one [`Ipv4Table::apply`] did, for benches and `show`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyStats {
    /// Routes added, replaced or removed.
    pub changed: usize,
    /// Subtrees rebuilt because of the changes.
    pub rebuilt: usize,
    /// Subtrees rebuilt to compact the arena.
    pub compacted: usize,
    /// Arena words written.
    pub words: usize,
    /// Whether the whole table was rebuilt (the root changed width).
    pub full: bool,
}

/// The editable side of an IPv4 table: its routes and the trie's mutable parts, from which
/// every [`Ipv4Table::apply`] makes a new [`Ipv4Lpm`] sharing what did not change.
///
/// Owned by one writer (the control side); readers only ever see [`Ipv4Lpm`]s.
#[derive(Clone)]
pub struct Ipv4Table {
    /// The routes, grouped by root entry as the builders read them.
    routes: RouteSet,
    root_bits: u8,
    /// Per root entry: the value of the longest route of at most `root_bits` covering it.
    leaf: Vec<u32>,
    /// Per root entry: `leaf`, or `NODE_BIT | offset` of its subtree.
    root: Vec<u32>,
    /// Per root entry: words of its subtree (0: none).
    subtree_words: Vec<u32>,
    /// The pages; a freed page is empty and its index is in `free`.
    pages: Vec<Arc<[u32]>>,
    /// Words of each page still reachable from `root`.
    live: Vec<usize>,
    free: Vec<usize>,
    /// The page batches append to, if any: never freed or compacted while it is the tail.
    tail: Option<usize>,
    /// The page being compacted and its root entries still to move, last first.
    victim: Option<(usize, Vec<usize>)>,
    /// Keep `root_bits` whatever the number of routes (tests of both shapes).
    pinned: bool,
    /// The largest value any route had since the last full build.
    max_value: Option<u32>,
    /// The table as of the last change.
    lpm: Ipv4Lpm,
}

impl Default for Ipv4Table {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Ipv4Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ipv4Table")
            .field("lpm", &self.lpm)
            .field("live_words", &self.live.iter().sum::<usize>())
            .finish()
    }
}

impl Ipv4Table {
    /// An empty table.
    pub fn new() -> Self {
        Self::with_root_bits(Vec::new(), SMALL_ROOT_BITS)
            .unwrap_or_else(|_| unreachable!("an empty table fits"))
    }

    /// A table of `(network, prefix length 0..=32, value)`; for a duplicate prefix the last one
    /// wins.
    pub fn from_routes<I: IntoIterator<Item = (Ipv4Addr, u8, u32)>>(
        routes: I,
    ) -> Result<Self, LpmError> {
        let routes = routes
            .into_iter()
            .map(|(network, len, value)| checked(network, len, Some(value)))
            .collect::<Result<Vec<_>, _>>()?;
        let routes = RouteSet::sort_dedup(routes);
        let bits = root_bits_for(routes.len(), SMALL_ROOT_BITS);
        Self::with_root_bits(routes, bits)
    }

    /// The table as of the last change, ready to publish (clone it: that shares it).
    pub fn lpm(&self) -> &Ipv4Lpm {
        &self.lpm
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// True when there is no route.
    pub fn is_empty(&self) -> bool {
        self.routes.len() == 0
    }

    /// The value of exactly this prefix, if it has a route.
    pub fn get(&self, network: Ipv4Addr, len: u8) -> Option<u32> {
        self.routes.get(u32::from(network), len)
    }

    /// Every route, sorted by (network, length).
    pub fn routes(&self) -> impl Iterator<Item = (Ipv4Addr, u8, u32)> + '_ {
        self.routes
            .sorted()
            .into_iter()
            .map(|r| (Ipv4Addr::from(r.network), r.len, r.value))
    }

    /// Applies a batch of changes, `(network, length, Some(value))` to add or replace a route
    /// and `None` to remove it (removing an absent route is no change), then rebuilds only
    /// what they touch ([`Ipv4Table::lpm`] has the result). Every change is checked first:
    /// on an error nothing is applied.
    pub fn apply<I: IntoIterator<Item = (Ipv4Addr, u8, Option<u32>)>>(
        &mut self,
        changes: I,
    ) -> Result<ApplyStats, LpmError> {
        let mut checked_changes = Vec::new();
        for (network, len, value) in changes {
            checked_changes.push((checked(network, len, value)?, value.is_some()));
        }
        if checked_changes.len() > BULK_MIN_CHANGES.max(self.routes.len() / 4) {
            return self.apply_bulk(checked_changes);
        }
        let mut stats = ApplyStats::default();
        // Root ranges to rebuild: (first entry, entries, whether their leaves change), aligned
        // blocks of a power of two.
        let mut ranges = Vec::with_capacity(checked_changes.len());
        let shift = 32 - u32::from(self.root_bits);
        for (r, add) in checked_changes {
            let unchanged = if add {
                self.routes.insert(r) == Some(r.value)
            } else {
                self.routes.remove(r.network, r.len).is_none()
            };
            if unchanged {
                continue;
            }
            stats.changed += 1;
            if add {
                self.max_value = self.max_value.max(Some(r.value));
            }
            let first = (r.network >> shift) as usize;
            let count = 1usize << u32::from(self.root_bits).saturating_sub(u32::from(r.len));
            // Only a route of at most `root_bits` changes root leaves; a longer one changes
            // the subtree below one entry and nothing above it.
            ranges.push((first, count, r.len <= self.root_bits));
        }
        let bits = root_bits_for(self.routes.len(), self.root_bits);
        if bits != self.root_bits && !self.pinned {
            *self = Self::with_root_bits(self.routes.sorted(), bits)?;
            stats.full = true;
            stats.words = self.live.iter().sum();
            return Ok(stats);
        }
        if ranges.is_empty() {
            return Ok(stats);
        }
        // Aligned blocks either nest or are disjoint: sorted by start, then largest first,
        // a block inside the previous kept one is dropped.
        ranges.sort_unstable_by_key(|&(first, count, _)| (first, usize::MAX - count));
        let mut merged: Vec<(usize, usize, bool)> = Vec::with_capacity(ranges.len());
        for (first, count, short) in ranges {
            match merged.last_mut() {
                Some((f, c, repaint)) if first < *f + *c => *repaint |= short,
                _ => merged.push((first, count, short)),
            }
        }
        let mut writer = self.open_tail()?;
        for &(first, count, repaint) in &merged {
            if repaint {
                self.repaint(first, count);
            }
            for slot in first..first + count {
                if self.rebuild_subtree(slot, &mut writer)? {
                    stats.rebuilt += 1;
                }
            }
        }
        stats.compacted = self.compact(&mut writer)?;
        stats.words = writer.written;
        self.finish_page(writer);
        if let Some(tail) = self.tail.filter(|&t| self.live[t] == 0) {
            self.free_page(tail);
            self.tail = None;
        }
        self.publish();
        Ok(stats)
    }

    /// A batch about as large as the table (a route file loaded into an empty VRF, say):
    /// merged with the routes in one sorted pass and built whole, as [`Ipv4Table::from_routes`]
    /// would, rather than inserted one by one into lists that a smaller root makes long.
    fn apply_bulk(&mut self, changes: Vec<(Route, bool)>) -> Result<ApplyStats, LpmError> {
        // Removals carry NO_ROUTE as their value (see `checked`); the last change of a prefix
        // wins, as it would one by one.
        let changes = RouteSet::sort_dedup(changes.into_iter().map(|(r, _)| r).collect());
        let current = self.routes.sorted();
        let mut merged = Vec::with_capacity(current.len() + changes.len());
        let mut changed = 0;
        let mut old = current.into_iter().peekable();
        for c in changes {
            while let Some(r) = old.next_if(|r| (r.network, r.len) < (c.network, c.len)) {
                merged.push(r);
            }
            let before = old.next_if(|r| (r.network, r.len) == (c.network, c.len));
            let after = (c.value != NO_ROUTE).then_some(c);
            if before.map(|r| r.value) != after.map(|r| r.value) {
                changed += 1;
            }
            merged.extend(after);
        }
        merged.extend(old);
        let bits = if self.pinned {
            self.root_bits
        } else {
            root_bits_for(merged.len(), self.root_bits)
        };
        let pinned = self.pinned;
        *self = Self::with_root_bits(merged, bits)?;
        self.pinned = pinned;
        Ok(ApplyStats {
            changed,
            full: true,
            words: self.live.iter().sum(),
            ..ApplyStats::default()
        })
    }

    /// Builds the whole table with a root of `root_bits` from validated routes, sorted by
    /// (network, length) without duplicates.
    fn with_root_bits(all: Vec<Route>, root_bits: u8) -> Result<Self, LpmError> {
        let entries = 1usize << root_bits;
        let mut table = Ipv4Table {
            routes: RouteSet::from_sorted(&all, root_bits),
            root_bits,
            leaf: vec![NO_ROUTE; entries],
            root: vec![NO_ROUTE; entries],
            subtree_words: vec![0; entries],
            pages: Vec::new(),
            live: Vec::new(),
            free: Vec::new(),
            tail: None,
            victim: None,
            pinned: false,
            max_value: None,
            lpm: Ipv4Lpm {
                root: Arc::from(Vec::new()),
                root_shift: 0,
                pages: Box::default(),
                first: Arc::from(Vec::new()),
                len: 0,
                max_value: None,
            },
        };
        table.max_value = all.iter().map(|r| r.value).max();
        let shift = 32 - u32::from(root_bits);
        paint(&mut table.leaf, &all, root_bits, shift);
        table.root.copy_from_slice(&table.leaf);
        let mut writer = table.open_tail()?;
        for (slot, below) in Deeper::new(&all, root_bits, shift, entries) {
            table.place_subtree(slot, below, &mut writer)?;
        }
        table.finish_page(writer);
        table.publish();
        Ok(table)
    }

    /// Recomputes the leaves of root entries `first..first + count` (an aligned block).
    fn repaint(&mut self, first: usize, count: usize) {
        let shift = 32 - u32::from(self.root_bits);
        let block_len = self.root_bits - count.trailing_zeros() as u8;
        let network = (first as u32).checked_shl(shift).unwrap_or(0);
        // The longest route shorter than the block that covers it.
        let inherited = (0..block_len)
            .rev()
            .find_map(|len| self.routes.get(network & netmask(len), len))
            .unwrap_or(NO_ROUTE);
        let last = network | !netmask(block_len);
        // Shorter routes starting at the block's first address sort into the range too; they
        // are in `inherited` already.
        let within: Vec<Route> = self
            .routes
            .short_in(network, last)
            .filter(|r| (block_len..=self.root_bits).contains(&r.len))
            .collect();
        let leaves = &mut self.leaf[first..first + count];
        leaves.fill(inherited);
        let index_mask = count - 1;
        for route in within {
            let at = (route.network >> shift) as usize & index_mask;
            let n = 1usize << (self.root_bits - route.len);
            leaves[at..at + n].fill(route.value);
        }
    }

    /// Replaces the subtree of root entry `slot` with one built from the current routes
    /// (or none); true when there was or is a subtree.
    fn rebuild_subtree(&mut self, slot: usize, writer: &mut PageWriter) -> Result<bool, LpmError> {
        let had = self.drop_subtree(slot);
        self.root[slot] = self.leaf[slot];
        if self.routes.below(slot).is_empty() {
            return Ok(had);
        }
        // Lent out while the subtree is built (which needs `self` mutably), then put back.
        let below = self.routes.take_below(slot);
        let placed = self.place_subtree(slot, &below, writer);
        self.routes.put_below(slot, below);
        placed?;
        Ok(true)
    }

    /// Builds the subtree of `slot` from `below` (its routes longer than the root) into the
    /// writer's page, starting another page when it does not fit.
    fn place_subtree(
        &mut self,
        slot: usize,
        below: &[Route],
        writer: &mut PageWriter,
    ) -> Result<(), LpmError> {
        let inherited = self.leaf[slot];
        let mut start = writer.words.len();
        let mut offset = writer.build(below, self.root_bits, inherited)?;
        if writer.words.len() > PAGE_WORDS {
            writer.words.truncate(start);
            let next = PageWriter::new(self.take_page_index()?, Vec::new());
            let full = std::mem::replace(writer, next);
            writer.written = full.written;
            self.finish_page(full);
            self.tail = Some(writer.page);
            start = 0;
            offset = writer.build(below, self.root_bits, inherited)?;
            if writer.words.len() > PAGE_WORDS {
                return Err(LpmError::Full {
                    what: "words in one subtree",
                    limit: PAGE_WORDS,
                });
            }
        }
        let words = writer.words.len() - start;
        self.root[slot] = NODE_BIT | offset;
        self.subtree_words[slot] = words as u32;
        self.live[writer.page] += words;
        writer.written += words;
        Ok(())
    }

    /// Forgets the subtree of `slot`, if any, counting its words as garbage; true if there
    /// was one. A page left with no live words is freed.
    fn drop_subtree(&mut self, slot: usize) -> bool {
        if self.root[slot] & NODE_BIT == 0 {
            return false;
        }
        let page = ((self.root[slot] & !NODE_BIT) >> PAGE_SHIFT) as usize;
        self.live[page] -= self.subtree_words[slot] as usize;
        self.subtree_words[slot] = 0;
        self.root[slot] = self.leaf[slot];
        // The tail (the page being written) stays, even empty of live words.
        if self.live[page] == 0 && self.tail != Some(page) {
            self.free_page(page);
        }
        true
    }

    /// Gives a page's index back; readers of older tables keep their copy of it.
    fn free_page(&mut self, page: usize) {
        self.pages[page] = Arc::from(Vec::new());
        self.free.push(page);
    }

    /// Moves the subtrees of the page with the largest share of garbage into the writer's page
    /// while garbage or the number of pages is too high, within a budget of words; returns the
    /// number of subtrees moved.
    fn compact(&mut self, writer: &mut PageWriter) -> Result<usize, LpmError> {
        let budget = (writer.written * 2).max(MIN_COMPACT_WORDS);
        let mut moved_words = 0;
        let mut moved = 0;
        while moved_words < budget {
            let live: usize = self.live.iter().sum();
            let stored = self
                .pages
                .iter()
                .enumerate()
                .filter(|&(p, _)| p != writer.page)
                .map(|(_, words)| words.len())
                .sum::<usize>()
                + writer.words.len();
            if stored - live <= live / 2 + TAIL_WORDS {
                break;
            }
            // A big victim moves over several batches: the root entries still to move are kept
            // between batches (the root is only scanned once per victim), and an entry whose
            // subtree has moved meanwhile is skipped.
            let current = self
                .victim
                .as_ref()
                .map(|(v, _)| *v)
                .filter(|&v| v != writer.page && !self.pages[v].is_empty());
            let victim = match current {
                Some(v) => v,
                None => {
                    // The page with the largest share of garbage: moving its live words
                    // frees the most per word rebuilt. (The page with the fewest live words
                    // is usually a young one, nearly all live, and moving it frees little.)
                    let Some(v) = (0..self.pages.len())
                        .filter(|&p| p != writer.page && !self.pages[p].is_empty())
                        .min_by_key(|&p| (self.live[p] as u64 * 1024) / self.pages[p].len() as u64)
                    else {
                        break;
                    };
                    let mut slots: Vec<usize> = (0..self.root.len())
                        .filter(|&s| node_page(self.root[s]) == Some(v))
                        .collect();
                    slots.reverse();
                    self.victim = Some((v, slots));
                    v
                }
            };
            let Some(slot) = self.victim.as_mut().and_then(|(_, slots)| slots.pop()) else {
                // Every entry moved; a page left with only garbage is freed here (one with a
                // subtree left cannot be, as every such entry was listed).
                if !self.pages[victim].is_empty() && self.live[victim] == 0 {
                    self.free_page(victim);
                }
                self.victim = None;
                continue;
            };
            if node_page(self.root[slot]) != Some(victim) {
                continue;
            }
            moved_words += self.subtree_words[slot] as usize;
            self.rebuild_subtree(slot, writer)?;
            moved += 1;
        }
        Ok(moved)
    }

    /// A page index for a new page: a freed one, or the next.
    fn take_page_index(&mut self) -> Result<usize, LpmError> {
        if let Some(page) = self.free.pop() {
            return Ok(page);
        }
        if self.pages.len() == MAX_PAGES {
            return Err(LpmError::Full {
                what: "arena pages",
                limit: MAX_PAGES,
            });
        }
        self.pages.push(Arc::from(Vec::new()));
        self.live.push(0);
        Ok(self.pages.len() - 1)
    }

    /// The page a batch writes to: a copy of the tail while it has room, else a new page,
    /// which becomes the tail.
    fn open_tail(&mut self) -> Result<PageWriter, LpmError> {
        if let Some(tail) = self.tail.filter(|&t| self.pages[t].len() < TAIL_WORDS) {
            return Ok(PageWriter::new(tail, self.pages[tail].to_vec()));
        }
        let page = self.take_page_index()?;
        self.tail = Some(page);
        Ok(PageWriter::new(page, Vec::new()))
    }

    /// Freezes a written page; an unchanged one keeps its `Arc`, and an empty new one gives
    /// its index back.
    fn finish_page(&mut self, writer: PageWriter) {
        if writer.words.len() == self.pages[writer.page].len() {
            if writer.words.is_empty() {
                self.free.push(writer.page);
                if self.tail == Some(writer.page) {
                    self.tail = None;
                }
            }
        } else {
            self.pages[writer.page] = Arc::from(writer.words);
        }
    }

    /// Makes the current state the published [`Ipv4Lpm`].
    fn publish(&mut self) {
        self.lpm = Ipv4Lpm {
            root: Arc::from(&self.root[..]),
            root_shift: 32 - u32::from(self.root_bits),
            pages: self.pages.clone().into_boxed_slice(),
            first: self
                .pages
                .first()
                .cloned()
                .unwrap_or_else(|| Arc::from(Vec::new())),
            len: self.routes.len(),
            max_value: self.max_value,
        };
    }
}

/// The root width for a table of `routes` routes that has `current` now.
fn root_bits_for(routes: usize, current: u8) -> u8 {
    if routes >= LARGE_ROOT_MIN_ROUTES {
        LARGE_ROOT_BITS
    } else if routes < LARGE_ROOT_MIN_ROUTES / 2 {
        SMALL_ROOT_BITS
    } else {
        current
    }
}

/// A page being written: nodes are built straight into it at their final offsets.
struct PageWriter {
    page: usize,
    words: Vec<u32>,
    /// Words of subtrees placed (what a batch wrote).
    written: usize,
}

impl PageWriter {
    /// Writes page `page`, which holds `words` so far.
    fn new(page: usize, words: Vec<u32>) -> Self {
        PageWriter {
            page,
            words,
            written: 0,
        }
    }

    /// Builds the subtree below a root entry and returns the arena offset of its top node.
    fn build(&mut self, routes: &[Route], root_bits: u8, inherited: u32) -> Result<u32, LpmError> {
        let local = self.build_node(routes, root_bits, inherited)?;
        Ok(((self.page as u32) << PAGE_SHIFT) | local)
    }

    /// Appends the node that resolves the 8 bits after the first `level_start` to the page,
    /// followed by its descendants, and returns its offset in the page (at most `PAGE_WORDS`
    /// words are addressed; the caller checks the page did not overflow).
    ///
    /// `routes` are the routes strictly longer than `level_start` inside the node's range;
    /// `inherited` is the leaf of the longest shorter prefix covering the whole node.
    fn build_node(
        &mut self,
        routes: &[Route],
        level_start: u8,
        inherited: u32,
    ) -> Result<u32, LpmError> {
        let level_end = level_start + STRIDE;
        let shift = 32 - u32::from(level_end);
        let mut slots = [inherited; 1 << STRIDE];
        paint(&mut slots, routes, level_end, shift);
        let mut is_child = [false; 1 << STRIDE];
        for (slot, _) in Deeper::new(routes, level_end, shift, slots.len()) {
            is_child[slot] = true;
        }

        let page_bits = (self.page as u32) << PAGE_SHIFT;
        let words = &mut self.words;
        let node = words.len();
        words.resize(node + HEADER_WORDS, 0);
        // Where each child's entry sits, in slot order, to be patched once the child is built.
        let mut child_entries = Vec::new();
        let mut runs_before = 0u32;
        let mut previous = None;
        for (group, entries) in slots.chunks_exact(8).enumerate() {
            let mut starts = 0u32;
            for (bit, &leaf) in entries.iter().enumerate() {
                // A child entry always starts a run of its own and ends the leaf run before it,
                // so the last run start at or before a leaf entry always holds that entry's value.
                let slot = group * 8 + bit;
                if is_child[slot] {
                    child_entries.push(words.len());
                    words.push(NODE_BIT);
                    previous = None;
                } else if previous != Some(leaf) {
                    words.push(leaf);
                    previous = Some(leaf);
                } else {
                    continue;
                }
                starts |= 1 << bit;
            }
            words[node + group / 2] |= (runs_before << 8 | starts) << (16 * (group % 2));
            runs_before += starts.count_ones();
        }

        for (entry, (slot, below)) in
            child_entries
                .into_iter()
                .zip(Deeper::new(routes, level_end, shift, slots.len()))
        {
            let child = self.build_node(below, level_end, slots[slot])?;
            self.words[entry] = NODE_BIT | page_bits | child;
        }
        if self.words.len() > 2 * PAGE_WORDS {
            // Far past a page: stop early, the caller refuses the subtree anyway.
            return Err(LpmError::Full {
                what: "words in one subtree",
                limit: PAGE_WORDS,
            });
        }
        Ok((node & (PAGE_WORDS - 1)) as u32)
    }
}

/// Writes the value of every route of at most `level_end` bits into the entries it covers.
///
/// `entries` resolves the address bits `[level_end - log2(entries.len()), level_end)`, and
/// `shift` is `32 - level_end`. Routes come sorted by (network, len), so a prefix is painted after every
/// prefix that covers it and the longest match wins without tracking depths.
fn paint(entries: &mut [u32], routes: &[Route], level_end: u8, shift: u32) {
    let index_mask = entries.len() - 1;
    for route in routes.iter().filter(|r| r.len <= level_end) {
        let first = (route.network >> shift) as usize & index_mask;
        let count = 1usize << (level_end - route.len);
        entries[first..first + count].fill(route.value);
    }
}

/// Iterator over the routes longer than a level, grouped by the entry they fall into:
/// yields `(entry index, routes)` with the routes as one contiguous slice.
///
/// Sorted by (network, len), the longer routes of one entry are contiguous: a route of at
/// most `level_end` bits inside that entry's range would have to start at the entry's first
/// address and so sorts before all of them.
struct Deeper<'r> {
    routes: &'r [Route],
    level_end: u8,
    shift: u32,
    index_mask: u32,
}

impl<'r> Deeper<'r> {
    /// `entries` is the number of entries of the level (a power of two).
    fn new(routes: &'r [Route], level_end: u8, shift: u32, entries: usize) -> Self {
        Self {
            routes,
            level_end,
            shift,
            index_mask: (entries - 1) as u32,
        }
    }

    fn entry_of(&self, route: &Route) -> usize {
        ((route.network >> self.shift) & self.index_mask) as usize
    }
}

impl<'r> Iterator for Deeper<'r> {
    type Item = (usize, &'r [Route]);

    fn next(&mut self) -> Option<Self::Item> {
        let Some(start) = self.routes.iter().position(|r| r.len > self.level_end) else {
            self.routes = &[];
            return None;
        };
        let entry = self.entry_of(&self.routes[start]);
        let end = self.routes[start..]
            .iter()
            .position(|r| r.len <= self.level_end || self.entry_of(r) != entry)
            .map_or(self.routes.len(), |n| start + n);
        let group = &self.routes[start..end];
        self.routes = &self.routes[end..];
        Some((entry, group))
    }
}

/// Network mask of a prefix length (0..=32).
fn netmask(len: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

/// Checks one route (a removal has no value to check).
fn checked(network: Ipv4Addr, len: u8, value: Option<u32>) -> Result<Route, LpmError> {
    if len > 32 {
        return Err(LpmError::PrefixLength {
            network: IpAddr::V4(network),
            len,
            max: 32,
        });
    }
    let bits = u32::from(network);
    let masked = bits & netmask(len);
    if masked != bits {
        return Err(LpmError::HostBitsSet {
            network: IpAddr::V4(network),
            len,
            masked: IpAddr::V4(Ipv4Addr::from(masked)),
        });
    }
    if let Some(value) = value.filter(|&v| v > MAX_VALUE) {
        return Err(LpmError::ValueTooLarge {
            network: IpAddr::V4(network),
            len,
            value,
            max: MAX_VALUE,
        });
    }
    Ok(Route {
        network: bits,
        len,
        value: value.unwrap_or(NO_ROUTE),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn net(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn addr(s: &str) -> u32 {
        u32::from(net(s))
    }

    /// The same routes built with both root widths, so the 16-8-8 shape is tested on small sets.
    fn both_shapes(routes: &[(Ipv4Addr, u8, u32)]) -> [Ipv4Lpm; 2] {
        let table = Ipv4Table::from_routes(routes.iter().copied()).unwrap();
        [SMALL_ROOT_BITS, LARGE_ROOT_BITS].map(|bits| {
            Ipv4Table::with_root_bits(table.routes.sorted(), bits)
                .unwrap()
                .lpm
        })
    }

    /// Empty tables of both root widths that keep their width while edited.
    fn both_editable() -> [Ipv4Table; 2] {
        [SMALL_ROOT_BITS, LARGE_ROOT_BITS].map(|bits| {
            let mut t = Ipv4Table::with_root_bits(Vec::new(), bits).unwrap();
            t.pinned = true;
            t
        })
    }

    /// Longest match by linear scan; among equal prefixes the last given wins.
    fn reference(routes: &[(Ipv4Addr, u8, u32)], addr: u32) -> Option<u32> {
        let mut best: Option<(u8, u32)> = None;
        for &(network, len, value) in routes {
            let matches = addr & netmask(len) == u32::from(network);
            if matches && best.is_none_or(|(best_len, _)| len >= best_len) {
                best = Some((len, value));
            }
        }
        best.map(|(_, value)| value)
    }

    #[test]
    fn empty_table_matches_nothing_and_costs_a_kilobyte() {
        let table = Ipv4Lpm::new();
        assert!(table.is_empty());
        assert_eq!(table.len(), 0);
        assert_eq!(table.memory_bytes(), 1024);
        for a in [0, 1, 0x0a00_0001, 0x7fff_ffff, 0x8000_0000, u32::MAX] {
            assert_eq!(table.lookup(a), None);
        }
        assert_eq!(Ipv4Lpm::from_routes([]).unwrap(), table);
        assert_eq!(Ipv4Lpm::default(), table);
    }

    #[test]
    fn default_route_matches_everything() {
        for table in both_shapes(&[(net("0.0.0.0"), 0, 7)]) {
            for a in [0, 1, 0x0a01_0203, 0x8000_0000, u32::MAX] {
                assert_eq!(table.lookup(a), Some(7));
            }
        }
    }

    #[test]
    fn host_route_matches_one_address() {
        for table in both_shapes(&[(net("192.0.2.77"), 32, 3)]) {
            assert_eq!(table.lookup(addr("192.0.2.77")), Some(3));
            assert_eq!(table.lookup(addr("192.0.2.76")), None);
            assert_eq!(table.lookup(addr("192.0.2.78")), None);
            assert_eq!(table.len(), 1);
        }
    }

    #[test]
    fn overlapping_prefixes_pick_the_longest() {
        let routes = [
            (net("0.0.0.0"), 0, 0),
            (net("10.0.0.0"), 8, 8),
            (net("10.1.0.0"), 16, 16),
            (net("10.1.2.0"), 24, 24),
            (net("10.1.2.128"), 25, 25),
            (net("10.1.2.129"), 32, 32),
        ];
        let cases = [
            // (address, expected): first, last and one past each prefix.
            ("9.255.255.255", 0),
            ("10.0.0.0", 8),
            ("10.0.255.255", 8),
            ("10.1.0.0", 16),
            ("10.1.1.255", 16),
            ("10.1.2.0", 24),
            ("10.1.2.127", 24),
            ("10.1.2.128", 25),
            ("10.1.2.129", 32),
            ("10.1.2.130", 25),
            ("10.1.2.255", 25),
            ("10.1.3.0", 16),
            ("10.1.255.255", 16),
            ("10.2.0.0", 8),
            ("10.255.255.255", 8),
            ("11.0.0.0", 0),
            ("255.255.255.255", 0),
        ];
        for table in both_shapes(&routes) {
            for (a, expected) in cases {
                assert_eq!(table.lookup(addr(a)), Some(expected), "lookup {a}");
            }
        }
        // The same routes given in reverse order build the same table.
        let mut reversed = routes;
        reversed.reverse();
        assert_eq!(
            Ipv4Lpm::from_routes(reversed).unwrap(),
            Ipv4Lpm::from_routes(routes).unwrap()
        );
    }

    #[test]
    fn prefix_boundaries_at_every_length() {
        for len in 1..=32u8 {
            let network = 0xc000_0000u32 >> (32 - len) << (32 - len);
            let last = network | !netmask(len);
            for table in both_shapes(&[(Ipv4Addr::from(network), len, 5)]) {
                assert_eq!(table.lookup(network), Some(5), "/{len} first");
                assert_eq!(table.lookup(last), Some(5), "/{len} last");
                assert_eq!(table.lookup(network.wrapping_sub(1)), None, "/{len} before");
                assert_eq!(table.lookup(last.wrapping_add(1)), None, "/{len} after");
            }
        }
    }

    #[test]
    fn duplicate_prefix_last_one_wins() {
        let routes = [
            (net("10.0.0.0"), 8, 1),
            (net("10.1.0.0"), 16, 2),
            (net("10.0.0.0"), 8, 3),
        ];
        for table in both_shapes(&routes) {
            assert_eq!(table.len(), 2);
            assert_eq!(table.lookup(addr("10.9.9.9")), Some(3));
            assert_eq!(table.lookup(addr("10.1.9.9")), Some(2));
        }
    }

    #[test]
    fn invalid_routes_are_refused_with_context() {
        assert_eq!(
            Ipv4Lpm::from_routes([(net("10.0.0.0"), 33, 1)]),
            Err(LpmError::PrefixLength {
                network: IpAddr::V4(net("10.0.0.0")),
                len: 33,
                max: 32
            })
        );
        assert_eq!(
            Ipv4Lpm::from_routes([(net("10.1.2.3"), 24, 1)]),
            Err(LpmError::HostBitsSet {
                network: IpAddr::V4(net("10.1.2.3")),
                len: 24,
                masked: IpAddr::V4(net("10.1.2.0")),
            })
        );
        assert_eq!(
            Ipv4Lpm::from_routes([(net("10.0.0.0"), 8, MAX_VALUE + 1)]),
            Err(LpmError::ValueTooLarge {
                network: IpAddr::V4(net("10.0.0.0")),
                len: 8,
                value: MAX_VALUE + 1,
                max: MAX_VALUE
            })
        );
        let err = Ipv4Lpm::from_routes([(net("10.1.2.3"), 24, 1)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "10.1.2.3/24 has host bits set; the prefix is 10.1.2.0/24"
        );
        let max = Ipv4Lpm::from_routes([(net("10.0.0.0"), 8, MAX_VALUE)]).unwrap();
        assert_eq!(max.lookup(addr("10.0.0.1")), Some(MAX_VALUE));
    }

    #[test]
    fn small_tables_cost_kilobytes() {
        let routes: Vec<_> = (0..10u32)
            .map(|i| (Ipv4Addr::from(0x0a00_0000 | i << 8), 24, i))
            .collect();
        let table = Ipv4Lpm::from_routes(routes).unwrap();
        assert!(table.memory_bytes() < 4096, "{table:?}");
    }

    #[test]
    fn dense_nodes_with_every_entry_distinct() {
        // 256 host routes: one node whose every entry is its own run.
        let hosts: Vec<_> = (0..256u32)
            .map(|i| (Ipv4Addr::from(0xc000_0200 | i), 32, 1000 + i))
            .collect();
        // 256 /25s under one /16: one node whose every entry is a child.
        let halves: Vec<_> = (0..256u32)
            .map(|i| (Ipv4Addr::from(0x0a00_0000 | i << 8 | 0x80), 25, i))
            .collect();
        for table in both_shapes(&[hosts.as_slice(), halves.as_slice()].concat()) {
            for i in 0..256u32 {
                assert_eq!(table.lookup(0xc000_0200 | i), Some(1000 + i));
                assert_eq!(table.lookup(0x0a00_0080 | i << 8), Some(i));
                assert_eq!(table.lookup(0x0a00_007f | i << 8), None);
            }
        }
    }

    /// `n` routes spread like a BGP table: /24s and some /16s and /32s under random /16s.
    fn spread(n: u32, seed: u32) -> Vec<(Ipv4Addr, u8, u32)> {
        let mut x = seed | 1;
        (0..n)
            .map(|i| {
                // xorshift32: deterministic and enough for spreading.
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let len = [24, 24, 24, 16, 32, 20][(x % 6) as usize];
                (Ipv4Addr::from(x & netmask(len)), len, i % 1000)
            })
            .collect()
    }

    #[test]
    fn a_change_rebuilds_one_subtree_and_shares_the_rest() {
        let mut table = Ipv4Table::from_routes(spread(20_000, 7)).unwrap();
        let before = table.lpm().clone();
        let stats = table.apply([(net("198.18.7.0"), 24, Some(42))]).unwrap();
        assert_eq!((stats.changed, stats.rebuilt, stats.full), (1, 1, false));
        let after = table.lpm();
        assert_eq!(after.lookup(addr("198.18.7.9")), Some(42));
        assert_eq!(after.len(), before.len() + 1);
        let shared = before
            .pages
            .iter()
            .zip(after.pages.iter())
            .filter(|(a, b)| !a.is_empty() && Arc::ptr_eq(a, b))
            .count();
        let old_pages = before.pages.iter().filter(|p| !p.is_empty()).count();
        assert_eq!(shared, old_pages, "every old page is shared");
        // Removing it again brings the old answer back; removing an absent route is no change.
        table.apply([(net("198.18.7.0"), 24, None)]).unwrap();
        assert_eq!(
            table.lpm().lookup(addr("198.18.7.9")),
            before.lookup(addr("198.18.7.9"))
        );
        let stats = table.apply([(net("198.18.7.0"), 24, None)]).unwrap();
        assert_eq!(stats, ApplyStats::default());
    }

    #[test]
    fn a_bulk_batch_is_merged_as_single_changes_would_be() {
        let routes = spread(6_000, 5);
        let more = spread(6_000, 6);
        for pinned in [false, true] {
            let mut table = Ipv4Table::from_routes(routes.iter().copied()).unwrap();
            table.pinned = pinned;
            // Remove every other route, add new ones, and change one prefix twice (the last
            // change wins): more than BULK_MIN_CHANGES changes, so one merge.
            let changes: Vec<(Ipv4Addr, u8, Option<u32>)> = routes
                .iter()
                .step_by(2)
                .map(|&(n, len, _)| (n, len, None))
                .chain(more.iter().map(|&(n, len, v)| (n, len, Some(v))))
                .chain([
                    (net("198.18.7.0"), 24, Some(1)),
                    (net("198.18.7.0"), 24, Some(2)),
                ])
                .collect();
            let mut reference = std::collections::BTreeMap::new();
            for &(n, len, v) in &routes {
                reference.insert((n, len), v);
            }
            for &(n, len, v) in &changes {
                match v {
                    Some(v) => reference.insert((n, len), v),
                    None => reference.remove(&(n, len)),
                };
            }
            let stats = table.apply(changes.iter().copied()).unwrap();
            assert!(stats.full && changes.len() > BULK_MIN_CHANGES);
            let expected: Vec<_> = reference.iter().map(|(&(n, l), &v)| (n, l, v)).collect();
            assert_eq!(table.routes().collect::<Vec<_>>(), expected);
            let fresh = Ipv4Lpm::from_routes(expected.iter().copied()).unwrap();
            for (network, _, _) in routes.iter().chain(&more) {
                let a = u32::from(*network) | 1;
                assert_eq!(table.lpm().lookup(a), fresh.lookup(a));
            }
            assert_eq!(table.lpm().lookup(addr("198.18.7.9")), Some(2));
        }
    }

    #[test]
    fn churn_keeps_memory_near_a_fresh_build() {
        let routes = spread(20_000, 11);
        let mut table = Ipv4Table::from_routes(routes.iter().copied()).unwrap();
        let extra = spread(4_000, 12);
        for (i, chunk) in extra.chunks(8).enumerate() {
            // Add eight routes, then take back eight added earlier.
            let adds = chunk.iter().map(|&(n, len, v)| (n, len, Some(v)));
            let dels = extra[..i * 8]
                .iter()
                .rev()
                .take(if i % 2 == 0 { 8 } else { 0 })
                .map(|&(n, len, _)| (n, len, None));
            table.apply(adds.chain(dels)).unwrap();
        }
        let fresh = Ipv4Lpm::from_routes(table.routes()).unwrap();
        let (edited, built) = (table.lpm().memory_bytes(), fresh.memory_bytes());
        assert!(
            edited <= built + built / 2 + PAGE_WORDS * 4,
            "edited {edited} B against {built} B built fresh: {:?}",
            table
        );
        let in_use = table.pages.iter().filter(|p| !p.is_empty()).count();
        assert!(in_use <= 12, "{in_use} pages in use");
        for (network, _, _) in routes.iter().chain(&extra) {
            let a = u32::from(*network);
            assert_eq!(table.lpm().lookup(a), fresh.lookup(a));
        }
    }

    #[test]
    fn the_root_widens_and_narrows_with_the_table() {
        let routes = spread(5_000, 3);
        let mut table = Ipv4Table::new();
        let stats = table
            .apply(routes.iter().map(|&(n, len, v)| (n, len, Some(v))))
            .unwrap();
        assert!(stats.full);
        assert_eq!(table.lpm().root.len(), 1 << LARGE_ROOT_BITS);
        // Down to 3,000 routes: still wide (no rebuild around the threshold); below 2,048: narrow.
        let remove =
            |from: usize, to: usize| routes[from..to].iter().map(|&(n, len, _)| (n, len, None));
        table.apply(remove(0, 2_000)).unwrap();
        assert_eq!(table.lpm().root.len(), 1 << LARGE_ROOT_BITS);
        table.apply(remove(2_000, 3_500)).unwrap();
        assert_eq!(table.lpm().root.len(), 1 << SMALL_ROOT_BITS);
        let fresh = Ipv4Lpm::from_routes(table.routes()).unwrap();
        for &(n, _, _) in &routes {
            assert_eq!(table.lpm().lookup(u32::from(n)), fresh.lookup(u32::from(n)));
        }
    }

    #[test]
    fn a_bad_change_applies_nothing() {
        let mut table = Ipv4Table::from_routes([(net("10.0.0.0"), 8, 1)]).unwrap();
        let err = table
            .apply([
                (net("10.1.0.0"), 16, Some(2)),
                (net("10.1.2.3"), 24, Some(3)),
            ])
            .unwrap_err();
        assert!(matches!(err, LpmError::HostBitsSet { len: 24, .. }));
        assert_eq!(table.len(), 1);
        assert_eq!(table.lpm().lookup(addr("10.1.0.1")), Some(1));
    }

    #[test]
    fn table_is_send_sync_clone() {
        fn shareable<T: Send + Sync + Clone + 'static>() {}
        shareable::<Ipv4Lpm>();
    }

    /// Addresses whose bytes mostly come from a small alphabet (0, 1, 0x7f, 0x80, 0xff), so
    /// random prefixes nest and share boundaries, or that crowd into 192.0.2.0/24.
    fn address() -> impl Strategy<Value = u32> {
        prop_oneof![
            (any::<u32>(), any::<u16>()).prop_map(|(random, choice)| {
                let mut bytes = random.to_be_bytes();
                for (i, byte) in bytes.iter_mut().enumerate() {
                    if let Some(&pick) =
                        [0u8, 1, 0x7f, 0x80, 0xff].get(usize::from(choice >> (3 * i)) & 7)
                    {
                        *byte = pick;
                    }
                }
                u32::from_be_bytes(bytes)
            }),
            any::<u32>(),
            // Many routes in one /24 fill a node with distinct entries.
            any::<u8>().prop_map(|low| 0xc000_0200 | u32::from(low)),
        ]
    }

    /// Lengths over 0..=32 with extra weight on the stride boundaries and their neighbours.
    fn prefix_len() -> impl Strategy<Value = u8> {
        prop_oneof![
            0..=32u8,
            prop::sample::select(vec![0u8, 1, 7, 8, 9, 15, 16, 17, 23, 24, 25, 31, 32]),
        ]
    }

    /// `table`'s lookup with `root` (indexed by `addr >> shift`) in place of its own.
    fn lookup_through(table: &Ipv4Lpm, root: &[u32], shift: u32, addr: u32) -> Option<u32> {
        let mut shift = shift;
        let mut entry = root[(addr >> shift) as usize];
        while let Some(page) = node_page(entry) {
            shift -= u32::from(STRIDE);
            entry = child(&table.pages[page], entry, (addr >> shift) & 0xff);
        }
        (entry != NO_ROUTE).then_some(entry)
    }

    fn route() -> impl Strategy<Value = (Ipv4Addr, u8, u32)> {
        (address(), prefix_len(), 0..=MAX_VALUE)
            .prop_map(|(a, len, value)| (Ipv4Addr::from(a & netmask(len)), len, value))
    }

    proptest! {
        // XorShift: the default ChaCha RNG dominated the run time in debug builds.
        #![proptest_config(ProptestConfig {
            cases: 256,
            rng_algorithm: prop::test_runner::RngAlgorithm::XorShift,
            ..ProptestConfig::default()
        })]

        #[test]
        fn matches_linear_scan(
            routes in prop::collection::vec(route(), 0..300),
            probes in prop::collection::vec(address(), 0..64),
            value_pool in 1u32..4,
        ) {
            // A tiny value pool makes equal neighbouring leaves, which merge into runs.
            let routes: Vec<_> = routes
                .into_iter()
                .enumerate()
                .map(|(i, (n, len, v))| (n, len, if value_pool == 1 { v } else { i as u32 % value_pool }))
                .collect();
            let mut addrs = probes;
            for &(network, len, _) in &routes {
                let first = u32::from(network);
                let last = first | !netmask(len);
                addrs.extend([first, last, first.wrapping_sub(1), last.wrapping_add(1)]);
            }
            let expected: Vec<_> = addrs.iter().map(|&a| reference(&routes, a)).collect();
            for table in both_shapes(&routes) {
                let wide = wider_root(&table.root, table.root_shift, &table.pages);
                prop_assert_eq!(wide.is_some(), table.root.len() == 1 << SMALL_ROOT_BITS);
                for (&a, &want) in addrs.iter().zip(&expected) {
                    prop_assert_eq!(table.lookup(a), want, "address {}", Ipv4Addr::from(a));
                    if let Some(wide) = &wide {
                        prop_assert_eq!(
                            lookup_through(&table, wide, table.root_shift - u32::from(STRIDE), a),
                            want,
                            "address {} through the wider root",
                            Ipv4Addr::from(a)
                        );
                    }
                }
            }
        }

    }

    proptest! {
        // Every case edits a table of each shape a dozen times; in debug builds a case of the
        // 16-bit root costs milliseconds, so fewer cases than the build test.
        #![proptest_config(ProptestConfig {
            cases: 48,
            rng_algorithm: prop::test_runner::RngAlgorithm::XorShift,
            ..ProptestConfig::default()
        })]

        #[test]
        fn updates_match_a_linear_scan(
            batches in prop::collection::vec(
                prop::collection::vec((route(), any::<bool>()), 1..40),
                1..12,
            ),
            probes in prop::collection::vec(address(), 0..32),
        ) {
            // Each batch adds or removes routes (a removal names a route that may be absent);
            // after each one, every edited table answers as a linear scan of the routes now
            // present.
            let mut tables = both_editable();
            let mut present: std::collections::BTreeMap<(u32, u8), u32> =
                std::collections::BTreeMap::new();
            for batch in &batches {
                let changes: Vec<_> = batch
                    .iter()
                    .map(|&((n, len, v), add)| (n, len, add.then_some(v)))
                    .collect();
                for &(n, len, v) in &changes {
                    match v {
                        Some(v) => present.insert((u32::from(n), len), v),
                        None => present.remove(&(u32::from(n), len)),
                    };
                }
                for t in &mut tables {
                    t.apply(changes.iter().copied()).unwrap();
                }
                let routes: Vec<_> = present
                    .iter()
                    .map(|(&(n, len), &v)| (Ipv4Addr::from(n), len, v))
                    .collect();
                let mut addrs = probes.clone();
                for &((network, len, _), _) in batch {
                    let first = u32::from(network);
                    let last = first | !netmask(len);
                    addrs.extend([first, last, first.wrapping_sub(1), last.wrapping_add(1)]);
                }
                for &a in &addrs {
                    let want = reference(&routes, a);
                    for t in &tables {
                        prop_assert_eq!(t.lpm().lookup(a), want, "address {}", Ipv4Addr::from(a));
                        prop_assert_eq!(t.len(), routes.len());
                    }
                }
            }
        }
    }
}

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
//! # Updates (not built yet)
//!
//! A later issue needs single-route add/delete published as a new snapshot within 1 ms.
//! A change of a route longer than `R` bits only touches the subtree below one root entry; a
//! shorter route touches a range of root entries and the leaves pushed into their subtrees.
//! Because each subtree is already contiguous and addressed only through its root entry,
//! the arena can be split into one `Arc<[u32]>` per populated root entry: an update rebuilds
//! the affected subtrees from the control side's RIB (below one /16 at most 65536 + 256
//! routes; a typical subtree is a few hundred bytes and microseconds to build), copies the
//! root (256 KiB, about 20 µs) and publishes a new `Ipv4Lpm` that shares every untouched
//! subtree. The lookup gains one indirection (root entry to subtree slice), which stays
//! cache resident. Readers finish their batch on the old snapshot (RCU style).

use core::fmt;
use core::net::{IpAddr, Ipv4Addr};

use super::{LpmError, MAX_VALUE};

/// Bits resolved by each node below the root.
const STRIDE: u8 = 8;
/// Tag bit of an entry (in the root or a node) holding a child's arena offset, not a leaf.
const NODE_BIT: u32 = 1 << 31;
/// Leaf value meaning "no route covers this range".
const NO_ROUTE: u32 = NODE_BIT - 1;
/// Arena offsets must leave the tag bit free.
const MAX_WORDS: usize = NODE_BIT as usize;
/// Root width of small tables: 256 entries, 1 KiB, so an idle VRF costs about a kilobyte.
const SMALL_ROOT_BITS: u8 = 8;
/// Root width of large tables: 65536 entries, 256 KiB, saving one node level per lookup.
const LARGE_ROOT_BITS: u8 = 16;
/// From this many routes on, the 256 KiB root (at most 64 B/prefix) replaces the /8-level
/// nodes, which in a spread table cost about one 64-byte header per route, and saves one level
/// on every lookup.
const LARGE_ROOT_MIN_ROUTES: usize = 4096;
/// Words of a node header: 32 u16 groups, one per 8 entries, two per word. A group holds the
/// number of runs that start before its first entry (high byte, at most 248) and which of
/// its 8 entries start a run (low byte), so the rank of an entry is one add and one lookup
/// in [`POPCOUNT8`], with no 64-bit popcount (see the module doc).
const HEADER_WORDS: usize = 16;

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

/// IPv4 longest-prefix-match table of one VRF: destination address to FEC index.
///
/// Immutable once built; share it between workers behind an `Arc` in the VRF snapshot.
#[derive(Clone, PartialEq, Eq)]
pub struct Ipv4Lpm {
    /// Entry per value of the top `32 - root_shift` address bits.
    root: Box<[u32]>,
    root_shift: u32,
    /// Node arena: each node is a header followed by its entries (see the module doc).
    words: Box<[u32]>,
    /// Number of nodes in `words`, for `Debug`.
    nodes: usize,
    len: usize,
}

/// A validated route: canonical network, prefix length, value.
#[derive(Clone, Copy, Debug)]
struct Route {
    network: u32,
    len: u8,
    value: u32,
}

impl Ipv4Lpm {
    /// Largest value a route may carry ([`MAX_VALUE`], 2^31 - 2).
    pub const MAX_VALUE: u32 = MAX_VALUE;

    /// An empty table: a 1 KiB root and nothing else.
    pub fn new() -> Self {
        Self::build(&[], SMALL_ROOT_BITS).unwrap_or_else(|_| unreachable!("an empty table fits"))
    }

    /// Builds a table from `(network, prefix length 0..=32, value)`; for a duplicate prefix the
    /// last one wins.
    pub fn from_routes<I: IntoIterator<Item = (Ipv4Addr, u8, u32)>>(
        routes: I,
    ) -> Result<Self, LpmError> {
        let routes = canonical_routes(routes)?;
        let root_bits = if routes.len() >= LARGE_ROOT_MIN_ROUTES {
            LARGE_ROOT_BITS
        } else {
            SMALL_ROOT_BITS
        };
        Self::build(&routes, root_bits)
    }

    /// The value of the longest prefix containing `addr` (host order, `u32::from(Ipv4Addr)`).
    #[inline]
    pub fn lookup(&self, addr: u32) -> Option<u32> {
        let mut shift = self.root_shift;
        let mut entry = self.root[(addr >> shift) as usize];
        while entry & NODE_BIT != 0 {
            // A node exists only above /32, so `shift` is at least STRIDE here.
            shift -= u32::from(STRIDE);
            let node = (entry & !NODE_BIT) as usize;
            let slot = (addr >> shift) & 0xff;
            let group = self.words[node + (slot >> 4) as usize] >> ((slot & 8) << 1);
            let starts_up_to_slot = group & (0xff >> (7 - (slot & 7)));
            // rank >= 1: entry 0 always starts a run, so every later group counts it.
            let rank = ((group >> 8) & 0xff) + u32::from(POPCOUNT8[starts_up_to_slot as usize]);
            entry = self.words[node + HEADER_WORDS - 1 + rank as usize];
        }
        (entry != NO_ROUTE).then_some(entry)
    }

    /// Number of distinct prefixes in the table.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the table holds no prefix.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Heap bytes of the lookup structure (root and node arena).
    pub fn memory_bytes(&self) -> usize {
        core::mem::size_of_val(&*self.root) + core::mem::size_of_val(&*self.words)
    }

    /// Builds the trie from validated routes sorted by (network, len) without duplicates.
    fn build(routes: &[Route], root_bits: u8) -> Result<Self, LpmError> {
        let root_shift = 32 - u32::from(root_bits);
        let mut root = vec![NO_ROUTE; 1 << root_bits];
        paint(&mut root, routes, root_bits, root_shift);
        let mut arena = Arena::default();
        for (slot, below) in Deeper::new(routes, root_bits, root_shift, root.len()) {
            root[slot] = NODE_BIT | arena.build_node(below, root_bits, root[slot])?;
        }
        Ok(Self {
            root: root.into_boxed_slice(),
            root_shift,
            words: arena.words.into_boxed_slice(),
            nodes: arena.nodes,
            len: routes.len(),
        })
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
            .field("nodes", &self.nodes)
            .field("arena_words", &self.words.len())
            .field("memory_bytes", &self.memory_bytes())
            .finish()
    }
}

/// The node arena while building.
#[derive(Default)]
struct Arena {
    words: Vec<u32>,
    nodes: usize,
}

impl Arena {
    /// Appends the node that resolves the 8 bits after the first `level_start` to the arena,
    /// followed by its descendants, and returns its offset.
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

        self.nodes += 1;
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
            self.words[entry] = NODE_BIT | child;
        }
        if self.words.len() > MAX_WORDS {
            return Err(LpmError::Full {
                what: "trie arena words",
                limit: MAX_WORDS,
            });
        }
        Ok(node as u32)
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

/// Validates the routes, sorts them by (network, len) and keeps the last of each duplicate.
fn canonical_routes<I: IntoIterator<Item = (Ipv4Addr, u8, u32)>>(
    routes: I,
) -> Result<Vec<Route>, LpmError> {
    let mut checked = Vec::new();
    for (network, len, value) in routes {
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
        if value > MAX_VALUE {
            return Err(LpmError::ValueTooLarge {
                network: IpAddr::V4(network),
                len,
                value,
                max: MAX_VALUE,
            });
        }
        checked.push(Route {
            network: bits,
            len,
            value,
        });
    }
    // The sort is stable, so among duplicates the last given is the last in each run.
    checked.sort_by_key(|r| (r.network, r.len));
    let mut unique: Vec<Route> = Vec::with_capacity(checked.len());
    for route in checked {
        match unique.last_mut() {
            Some(last) if (last.network, last.len) == (route.network, route.len) => *last = route,
            _ => unique.push(route),
        }
    }
    Ok(unique)
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
        let canonical = canonical_routes(routes.iter().copied()).unwrap();
        [SMALL_ROOT_BITS, LARGE_ROOT_BITS].map(|bits| Ipv4Lpm::build(&canonical, bits).unwrap())
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
                for (&a, &want) in addrs.iter().zip(&expected) {
                    prop_assert_eq!(table.lookup(a), want, "address {}", Ipv4Addr::from(a));
                }
            }
        }
    }
}

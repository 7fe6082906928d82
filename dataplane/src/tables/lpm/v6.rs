//! IPv6 longest-prefix match: one hash table per present prefix length, with a length filter.
//!
//! As in FD.io VPP's ip6 FIB, the routes of each prefix length live in their own hash table
//! keyed by the masked network (`hashbrown` with a seeded multiply hash, see
//! `PrefixHasher`), and a lookup probes lengths from the longest down until one hits. IPv6
//! tables are sparse (a /48 here, a /32 there, across 2^125 addresses), where a trie would need
//! a chain of nodes per prefix; a hash table costs one bucket per prefix.
//!
//! Probing every present length is what costs: the BGP-like 100k table has 28 lengths and a
//! lookup took 48-53 ns. So the table adds a *length filter*: for each value of the top `F`
//! address bits (about one route per slot, `F` <= 16, 1 MiB at most), a 128-bit map of the
//! prefix lengths that have a route overlapping that slice of the address space. A lookup
//! reads its slot and probes only those lengths, longest first: 24.6 ns at 100k, for 10 B per
//! prefix more. (A binary search on lengths with markers, Waldvogel et al. SIGCOMM 1997, was
//! slower here, 62 ns, and took 2.5 times the memory: its five probes land in big tables and
//! its branches do not predict, while the linear probes mostly miss in small, cached tables.)
//!
//! The default route ::/0 is kept aside, so the filter's 128 bits cover lengths 1..=128.
//!
//! # Updates
//!
//! A length's routes are split by hash into shards of about 512 routes, and the filter
//! into chunks of 256 slots, each behind its own `Arc`: a change copies one shard and the
//! filter chunks it touches and shares the rest with the published table. With one table per
//! length and one flat filter, a change inside a 100k-route table copied about 2 MB (185 us
//! per removal and re-addition in `cargo bench --bench lpm -- lpm_ipv6_update`, 1.7 ms per
//! change in the daemon); sharded, 15 us. The price is on lookups: two more pointers to follow
//! (the shard, the filter chunk), +14% instructions and +2 L1 misses per lookup under
//! cachegrind (317 against 277 instructions, 100k-route table, 4096 probes), while the L2
//! misses stay the same.

use core::fmt;
use core::hash::{BuildHasher, Hasher};
use core::net::{IpAddr, Ipv6Addr};
use std::collections::BTreeMap;
use std::sync::Arc;

use hashbrown::hash_table::Entry;
use hashbrown::{HashMap, HashTable};

use super::{LpmError, MAX_VALUE};

/// Builds [`PrefixHasher`]s with one random seed per table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SeededState {
    seed: [u64; 2],
}

impl SeededState {
    /// A seed drawn from std's per-process random keys.
    fn random() -> Self {
        let keys = std::collections::hash_map::RandomState::new();
        // `| 1` keeps the multiplicands of `fold` away from zero for all-zero key halves.
        Self {
            seed: [keys.hash_one(0u64) | 1, keys.hash_one(1u64) | 1],
        }
    }
}

impl BuildHasher for SeededState {
    type Hasher = PrefixHasher;

    fn build_hasher(&self) -> PrefixHasher {
        PrefixHasher {
            seed: self.seed,
            hash: 0,
        }
    }
}

/// Hasher for masked IPv6 prefixes: one folded 64x64->128-bit multiply of the two key halves.
///
/// A lookup hashes one key per probed length. std's SipHash-1-3 took 16 ns per u128 key on
/// the dev VM, this folded multiply (as in foldhash and wyhash) 0.8 ns, and it still mixes
/// every key bit into both ends of the hash (hashbrown takes the bucket from the low bits and
/// the 7-bit tag from the top). HashDoS resistance comes from the per-table random seed: routes are learned
/// from BGP peers, who must not be able to pile prefixes into one probe chain.
struct PrefixHasher {
    seed: [u64; 2],
    hash: u64,
}

impl Hasher for PrefixHasher {
    fn write_u128(&mut self, key: u128) {
        // Chaining `hash` in keeps repeated writes order-dependent; a key is one write.
        let low = (key as u64) ^ self.seed[0] ^ self.hash;
        let high = ((key >> 64) as u64) ^ self.seed[1];
        let product = u128::from(low) * u128::from(high);
        self.hash = (product as u64) ^ ((product >> 64) as u64);
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u128 keys are hashed here; stay correct for anything else anyway.
        for chunk in bytes.chunks(16) {
            let mut buf = [0u8; 16];
            buf[..chunk.len()].copy_from_slice(chunk);
            self.write_u128(u128::from_le_bytes(buf));
        }
    }

    fn finish(&self) -> u64 {
        self.hash
    }
}

/// The routes of one shard of a prefix length: (masked network address, value), found by the
/// hash of the address. A raw table, so that a lookup hashes its key once, for the shard and
/// the bucket both.
type Table = HashTable<(u128, u32)>;

/// Routes per hash shard that a length aims at: a change copies its shard (about this many
/// entries, tens of kilobytes) rather than the length's whole table. One table per length
/// made a change inside the 50,000 /64s of a 100k-route VRF copy a megabyte (1.7 ms a change
/// in the daemon, `scripts/bench-route-churn.sh`).
const SHARD_ROUTES: usize = 512;
/// Most shards of one length: 256.
const MAX_SHARD_BITS: u32 = 8;

/// The routes of one prefix length, split by hash into `2^bits` shards, each shared with
/// older tables until it changes.
#[derive(Clone)]
struct Shards {
    bits: u32,
    tables: Arc<[Arc<Table>]>,
    /// Routes in all shards.
    len: usize,
}

impl Shards {
    /// `routes` of one length in shards sized for their number.
    fn new(state: SeededState, routes: impl Iterator<Item = (u128, u32)>, len: usize) -> Self {
        let bits = shard_bits_for(len);
        let mut tables: Vec<Table> = (0..1usize << bits).map(|_| HashTable::new()).collect();
        let rehash = |e: &(u128, u32)| state.hash_one(e.0);
        for (key, value) in routes {
            let hash = state.hash_one(key);
            tables[shard_of(hash, bits)].insert_unique(hash, (key, value), rehash);
        }
        Shards {
            bits,
            tables: tables
                .into_iter()
                .map(|mut t| {
                    t.shrink_to_fit(rehash);
                    Arc::new(t)
                })
                .collect(),
            len,
        }
    }

    /// The value of `key`, whose hash is `hash`.
    #[inline]
    fn get(&self, hash: u64, key: u128) -> Option<u32> {
        self.tables[shard_of(hash, self.bits)]
            .find(hash, |e| e.0 == key)
            .map(|e| e.1)
    }

    /// The shard of `hash`, copied first if an older table shares it.
    fn shard_mut(&mut self, hash: u64) -> &mut Table {
        let i = shard_of(hash, self.bits);
        Arc::make_mut(&mut Arc::make_mut(&mut self.tables)[i])
    }

    /// Sets `key` (hash `hash`) to `value`; true when it is new.
    fn insert(&mut self, state: SeededState, hash: u64, key: u128, value: u32) -> bool {
        let rehash = |e: &(u128, u32)| state.hash_one(e.0);
        let added = match self.shard_mut(hash).entry(hash, |e| e.0 == key, rehash) {
            Entry::Occupied(mut e) => {
                e.get_mut().1 = value;
                false
            }
            Entry::Vacant(e) => {
                e.insert((key, value));
                true
            }
        };
        self.len += usize::from(added);
        added
    }

    /// Removes `key` (hash `hash`); true when it was there.
    fn remove(&mut self, hash: u64, key: u128) -> bool {
        let removed = self
            .shard_mut(hash)
            .find_entry(hash, |e| e.0 == key)
            .map(|e| e.remove())
            .is_ok();
        self.len -= usize::from(removed);
        removed
    }

    fn entries(&self) -> impl Iterator<Item = (u128, u32)> + '_ {
        self.tables.iter().flat_map(|t| t.iter().copied())
    }
}

/// Shard bits for `routes` routes of one length: about [`SHARD_ROUTES`] per shard.
fn shard_bits_for(routes: usize) -> u32 {
    (usize::BITS - (routes / SHARD_ROUTES).leading_zeros()).min(MAX_SHARD_BITS)
}

/// The shard of a key hash: bits the tables do not use for buckets (they take the low bits,
/// and the top seven as the tag), so each shard's table spreads as well as one big one.
#[inline]
fn shard_of(hash: u64, bits: u32) -> usize {
    ((hash >> 32) as usize) & ((1usize << bits) - 1)
}

/// Filter slots per chunk: 256 slots, 4 KiB. A change copies the chunks its routes touch,
/// not the whole filter (a megabyte at 16 bits).
const CHUNK_BITS: u32 = 8;
const CHUNK_MASK: usize = (1 << CHUNK_BITS) - 1;

/// Value of the default route slot when there is no ::/0.
const NO_ROUTE: u32 = u32::MAX;

const _: () = assert!(MAX_VALUE < NO_ROUTE);

/// Widest length filter: 65536 slots of 16 bytes, 1 MiB, from 32k routes on.
const MAX_FILTER_BITS: u32 = 16;

/// IPv6 longest-prefix-match table of one VRF: destination address to FEC index.
///
/// Immutable once built; share it between workers behind an `Arc` in the VRF snapshot.
/// Cloning it shares every hash table and the filter. [`Ipv6Table`] makes new versions of it.
#[derive(Clone)]
pub struct Ipv6Lpm {
    /// The routes of each present prefix length 1..=128, in `table_of` order.
    tables: Arc<[Shards]>,
    /// The hash of every table (a shard is chosen by the same hash).
    state: SeededState,
    /// Index into `tables` of each prefix length (read only for lengths in the filter).
    table_of: [u8; 129],
    /// Bit `len - 1` set for each length 1..=128 that has a table.
    lengths: u128,
    /// Per value of the top `128 - filter_shift` address bits: bit `len - 1` is set when a
    /// route of length `len` overlaps that slice of the address space; in chunks of
    /// `2^CHUNK_BITS` slots.
    filter: Arc<[Arc<[u128]>]>,
    filter_shift: u32,
    /// Value of ::/0, or `NO_ROUTE`.
    default: u32,
    len: usize,
    /// At least the largest value of any route (it never falls while the table is edited).
    max_value: Option<u32>,
}

impl Ipv6Lpm {
    /// Largest value a route may carry ([`MAX_VALUE`], 2^31 - 2).
    pub const MAX_VALUE: u32 = MAX_VALUE;

    /// An empty table: a two-slot length filter (32 bytes, in one chunk) and nothing else.
    pub fn new() -> Self {
        Ipv6Table::new().lpm().clone()
    }

    /// Builds a table from `(network, prefix length 0..=128, value)`; for a duplicate prefix
    /// the last one wins.
    pub fn from_routes<I: IntoIterator<Item = (Ipv6Addr, u8, u32)>>(
        routes: I,
    ) -> Result<Self, LpmError> {
        Ok(Ipv6Table::from_routes(routes)?.lpm().clone())
    }

    /// The value of the longest prefix containing `addr` (`u128::from(Ipv6Addr)`).
    #[inline]
    pub fn lookup(&self, addr: u128) -> Option<u32> {
        // Probe, longest first, only the lengths that have a route near `addr`.
        let slot = (addr >> self.filter_shift) as usize;
        let mut lengths = self.filter[slot >> CHUNK_BITS][slot & CHUNK_MASK];
        while lengths != 0 {
            let len = 128 - lengths.leading_zeros();
            lengths &= !(1 << (len - 1));
            let shards = &self.tables[usize::from(self.table_of[len as usize])];
            let key = addr & netmask(len as u8);
            if let Some(value) = shards.get(self.state.hash_one(key), key) {
                return Some(value);
            }
        }
        (self.default != NO_ROUTE).then_some(self.default)
    }

    /// Number of distinct prefixes in the table.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the table holds no prefix.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// No lookup returns more than this (`None`: no route ever had a value).
    pub fn max_value(&self) -> Option<u32> {
        self.max_value
    }

    /// Whether this table and `other` are known to hold the same routes: they share their
    /// hash tables (a clone, or a publish that changed nothing). `false` says nothing.
    pub fn shares_routes_with(&self, other: &Ipv6Lpm) -> bool {
        Arc::ptr_eq(&self.tables, &other.tables) && self.default == other.default
    }

    /// The changes that make this table's routes `next`'s, in no particular order. The hash
    /// shards both share (an edit copies only the shards it touches, so two versions of one
    /// table share all the others) are skipped unread: the work follows the change, not the
    /// size of the table.
    pub fn changes_to(&self, next: &Ipv6Lpm) -> Vec<Ipv6Change> {
        let mut out = Vec::new();
        if self.default != next.default {
            let value = |v: u32| (v != NO_ROUTE).then_some(v);
            out.push(Ipv6Change {
                network: 0,
                len: 0,
                before: value(self.default),
                after: value(next.default),
            });
        }
        for len in 1..=128u8 {
            match (self.shards_of(len), next.shards_of(len)) {
                (None, None) => {}
                (Some(a), Some(b)) if Arc::ptr_eq(&a.tables, &b.tables) => {}
                // The same hash and shard count: a key lies in the same shard in both.
                (Some(a), Some(b)) if a.bits == b.bits && self.state == next.state => {
                    for (x, y) in a.tables.iter().zip(b.tables.iter()) {
                        if !Arc::ptr_eq(x, y) {
                            diff_routes(len, x.iter().copied(), y.iter().copied(), &mut out);
                        }
                    }
                }
                (a, b) => diff_routes(
                    len,
                    a.into_iter().flat_map(Shards::entries),
                    b.into_iter().flat_map(Shards::entries),
                    &mut out,
                ),
            }
        }
        out
    }

    /// Every route, as the changes that make an empty table this one.
    pub fn routes(&self) -> Vec<Ipv6Change> {
        Ipv6Lpm::new().changes_to(self)
    }

    /// The routes of prefix length `len` (1..=128), if it has any.
    fn shards_of(&self, len: u8) -> Option<&Shards> {
        (self.lengths >> (len - 1) & 1 != 0)
            .then(|| &self.tables[usize::from(self.table_of[usize::from(len)])])
    }

    /// Heap bytes of the lookup structure (length filter, table list and every hash table).
    pub fn memory_bytes(&self) -> usize {
        core::mem::size_of_val(&*self.filter)
            + self
                .filter
                .iter()
                .map(|c| core::mem::size_of_val(&**c))
                .sum::<usize>()
            + core::mem::size_of_val(&*self.tables)
            + self
                .tables
                .iter()
                .map(|s| {
                    core::mem::size_of_val(&*s.tables)
                        + s.tables.iter().map(|t| t.allocation_size()).sum::<usize>()
                })
                .sum::<usize>()
    }
}

impl Default for Ipv6Lpm {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Ipv6Lpm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ipv6Lpm")
            .field("prefixes", &self.len)
            .field("lengths", &self.tables.len())
            .field(
                "filter_slots",
                &self.filter.iter().map(|c| c.len()).sum::<usize>(),
            )
            .field("memory_bytes", &self.memory_bytes())
            .finish()
    }
}

/// The editable side of an IPv6 table: its routes, one hash table per length and the length
/// filter, from which every [`Ipv6Table::apply`] makes a new [`Ipv6Lpm`].
///
/// A batch copies the hash shards it changes (each one shared until then with the published
/// table) and the filter chunks of the slots its routes overlap, and recomputes only those
/// slots: tens of kilobytes whatever the table's size. Owned by one writer (the control side).
#[derive(Clone)]
pub struct Ipv6Table {
    /// (network, length) -> value, sorted: the filter slots' routes are a range.
    routes: BTreeMap<(u128, u8), u32>,
    /// The routes of each length 1..=128 that has some (index 0 unused).
    by_len: Vec<Option<Shards>>,
    state: SeededState,
    /// The length filter in chunks of `2^CHUNK_BITS` slots, each shared until it changes.
    filter: Vec<Arc<[u128]>>,
    /// Routes longer than the filter's width per (filter slot, length), so that a removal
    /// knows whether its length's bit stays without rescanning the slot's routes (all of
    /// them, when a VRF's routes share the filter's top bits, as a VPC's inside one /32 do:
    /// that rescan was 2 ms per change at 100k routes).
    deep: HashMap<(u32, u8), u32>,
    filter_bits: u32,
    /// A filter width that stays whatever the number of routes (tests of every width).
    pinned_filter: Option<u32>,
    /// The largest value any route had since the table was built.
    max_value: Option<u32>,
    lpm: Ipv6Lpm,
}

impl Default for Ipv6Table {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Ipv6Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ipv6Table").field("lpm", &self.lpm).finish()
    }
}

impl Ipv6Table {
    /// An empty table.
    pub fn new() -> Self {
        Self::build(BTreeMap::new(), None)
    }

    /// A table of `(network, prefix length 0..=128, value)`; for a duplicate prefix the last
    /// one wins.
    pub fn from_routes<I: IntoIterator<Item = (Ipv6Addr, u8, u32)>>(
        routes: I,
    ) -> Result<Self, LpmError> {
        let mut map = BTreeMap::new();
        for (network, len, value) in routes {
            map.insert((check(network, len, Some(value))?, len), value);
        }
        Ok(Self::build(map, None))
    }

    /// The table as of the last change, ready to publish (clone it: that shares it).
    pub fn lpm(&self) -> &Ipv6Lpm {
        &self.lpm
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// True when there is no route.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The value of exactly this prefix, if it has a route.
    pub fn get(&self, network: Ipv6Addr, len: u8) -> Option<u32> {
        self.routes.get(&(u128::from(network), len)).copied()
    }

    /// Every route, sorted by (network, length).
    pub fn routes(&self) -> impl Iterator<Item = (Ipv6Addr, u8, u32)> + '_ {
        self.routes
            .iter()
            .map(|(&(network, len), &value)| (Ipv6Addr::from(network), len, value))
    }

    /// Applies a batch of changes, `(network, length, Some(value))` to add or replace a route
    /// and `None` to remove it (removing an absent route is no change). Every change is
    /// checked first: on an error nothing is applied. Returns the number of routes changed.
    pub fn apply<I: IntoIterator<Item = (Ipv6Addr, u8, Option<u32>)>>(
        &mut self,
        changes: I,
    ) -> Result<usize, LpmError> {
        let mut checked = Vec::new();
        for (network, len, value) in changes {
            checked.push((check(network, len, value)?, len, value));
        }
        let mut changed = 0;
        for (key, len, value) in checked {
            let before = match value {
                Some(v) => {
                    self.max_value = self.max_value.max(Some(v));
                    self.routes.insert((key, len), v)
                }
                None => self.routes.remove(&(key, len)),
            };
            if before == value {
                continue;
            }
            changed += 1;
            if len == 0 {
                continue;
            }
            let slot = &mut self.by_len[usize::from(len)];
            let hash = self.state.hash_one(key);
            match value {
                Some(v) => {
                    slot.get_or_insert_with(|| Shards::new(self.state, std::iter::empty(), 0))
                        .insert(self.state, hash, key, v);
                    if before.is_none() {
                        self.filter_add(key, len);
                    }
                }
                None => {
                    if let Some(shards) = slot {
                        shards.remove(hash, key);
                        if shards.len == 0 {
                            *slot = None;
                        }
                    }
                    self.filter_remove(key, len);
                }
            }
        }
        if changed == 0 {
            return Ok(0);
        }
        // A length whose routes grew or shrank fourfold past its shards is split anew.
        for slot in self.by_len.iter_mut() {
            let Some(shards) = slot else { continue };
            if shard_bits_for(shards.len).abs_diff(shards.bits) > 1 {
                let all: Vec<(u128, u32)> = shards.entries().collect();
                *shards = Shards::new(self.state, all.into_iter(), shards.len);
            }
        }
        let bits = self.pinned_filter.unwrap_or_else(|| {
            let wanted = filter_bits_for(self.routes.len());
            // Within a factor of four of the ideal width, keep the filter: no rebuild when a
            // table hovers around a power of two.
            if wanted.abs_diff(self.filter_bits) <= 1 {
                self.filter_bits
            } else {
                wanted
            }
        });
        if bits != self.filter_bits {
            self.filter_bits = bits;
            self.rebuild_filter();
        }
        self.publish();
        Ok(changed)
    }

    /// A table of validated routes, with a filter of `pinned_filter` bits or a width chosen
    /// from the number of routes.
    fn build(routes: BTreeMap<(u128, u8), u32>, pinned_filter: Option<u32>) -> Self {
        let state = SeededState::random();
        let mut by_len: Vec<Vec<(u128, u32)>> = vec![Vec::new(); 129];
        for (&(key, len), &value) in routes.iter().filter(|((_, len), _)| *len > 0) {
            by_len[usize::from(len)].push((key, value));
        }
        let filter_bits = pinned_filter.unwrap_or_else(|| filter_bits_for(routes.len()));
        let mut table = Ipv6Table {
            routes,
            by_len: by_len
                .into_iter()
                .map(|r| (!r.is_empty()).then(|| Shards::new(state, r.iter().copied(), r.len())))
                .collect(),
            state,
            filter: Vec::new(),
            deep: HashMap::new(),
            filter_bits,
            pinned_filter,
            max_value: None,
            lpm: Ipv6Lpm {
                tables: Arc::from(Vec::new()),
                state,
                table_of: [0; 129],
                lengths: 0,
                filter: Arc::from(Vec::new()),
                filter_shift: 0,
                default: NO_ROUTE,
                len: 0,
                max_value: None,
            },
        };
        table.max_value = table.routes.values().copied().max();
        table.rebuild_filter();
        table.publish();
        table
    }

    /// Counts a new route of length `len` (1..=128) into the filter.
    fn filter_add(&mut self, key: u128, len: u8) {
        let (first, count) = slots_of(key, len, self.filter_bits);
        if u32::from(len) > self.filter_bits {
            *self.deep.entry((first as u32, len)).or_default() += 1;
        }
        for s in first..first + count {
            Arc::make_mut(&mut self.filter[s >> CHUNK_BITS])[s & CHUNK_MASK] |= 1 << (len - 1);
        }
    }

    /// Takes a removed route of length `len` (1..=128) out of the filter: its length's bit
    /// goes from the slots it overlapped when no other route of that length overlaps them.
    /// A route at most as long as the filter's width is the only one of its length over its
    /// slots; a longer one shares its slot with the others counted in `deep`.
    fn filter_remove(&mut self, key: u128, len: u8) {
        let (first, count) = slots_of(key, len, self.filter_bits);
        if u32::from(len) > self.filter_bits {
            let k = (first as u32, len);
            match self.deep.get_mut(&k) {
                Some(n) if *n > 1 => {
                    *n -= 1;
                    return;
                }
                _ => {
                    self.deep.remove(&k);
                }
            }
        }
        for s in first..first + count {
            Arc::make_mut(&mut self.filter[s >> CHUNK_BITS])[s & CHUNK_MASK] &= !(1 << (len - 1));
        }
    }

    /// Recomputes the whole length filter at the current width.
    fn rebuild_filter(&mut self) {
        let mut filter = vec![0u128; 1 << self.filter_bits];
        let mut deep = HashMap::new();
        for (prefix_len, shards) in self.by_len.iter().enumerate() {
            let Some(shards) = shards else { continue };
            for (network, _) in shards.entries() {
                // A route shorter than the filter's width overlaps several slots.
                let (first, count) = slots_of(network, prefix_len as u8, self.filter_bits);
                for slot in &mut filter[first..first + count] {
                    *slot |= 1 << (prefix_len - 1);
                }
                if prefix_len as u32 > self.filter_bits {
                    *deep.entry((first as u32, prefix_len as u8)).or_default() += 1;
                }
            }
        }
        self.filter = filter.chunks(1 << CHUNK_BITS).map(Arc::from).collect();
        self.deep = deep;
    }

    /// The lengths of the routes that overlap filter slot `slot`, from the routes (what the
    /// filter kept up change by change must equal).
    #[cfg(test)]
    fn slot_lengths(&self, slot: usize) -> u128 {
        let shift = 128 - self.filter_bits;
        let first = (slot as u128) << shift;
        let last = first | !netmask(self.filter_bits as u8);
        let mut lengths = 0u128;
        // Routes at most as long as the slot that cover it: one probe per length.
        for len in 1..=self.filter_bits as u8 {
            if self.routes.contains_key(&(first & netmask(len), len)) {
                lengths |= 1 << (len - 1);
            }
        }
        // Longer routes inside the slot.
        for &(_, len) in self.routes.range((first, 0)..=(last, 128)).map(|(k, _)| k) {
            if u32::from(len) > self.filter_bits {
                lengths |= 1 << (len - 1);
            }
        }
        lengths
    }

    /// Makes the current state the published [`Ipv6Lpm`].
    fn publish(&mut self) {
        let mut table_of = [0u8; 129];
        let mut lengths = 0u128;
        let mut tables = Vec::new();
        for (len, shards) in self.by_len.iter().enumerate() {
            if let Some(shards) = shards {
                table_of[len] = tables.len() as u8;
                lengths |= 1 << (len - 1);
                tables.push(shards.clone());
            }
        }
        self.lpm = Ipv6Lpm {
            tables: Arc::from(tables),
            state: self.state,
            table_of,
            lengths,
            filter: Arc::from(&self.filter[..]),
            filter_shift: 128 - self.filter_bits,
            default: self.routes.get(&(0, 0)).copied().unwrap_or(NO_ROUTE),
            len: self.routes.len(),
            max_value: self.max_value,
        };
    }
}

/// A route that differs between two tables ([`Ipv6Lpm::changes_to`]): added (`before` is
/// `None`), removed (`after` is `None`) or given another value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ipv6Change {
    /// The network address (`u128::from(Ipv6Addr)`), masked to the length.
    pub network: u128,
    /// The prefix length.
    pub len: u8,
    /// Its value before.
    pub before: Option<u32>,
    /// Its value after.
    pub after: Option<u32>,
}

/// Adds to `out` the differences between the routes `before` and `after` of length `len`.
fn diff_routes(
    len: u8,
    before: impl Iterator<Item = (u128, u32)>,
    after: impl Iterator<Item = (u128, u32)>,
    out: &mut Vec<Ipv6Change>,
) {
    let mut before: Vec<(u128, u32)> = before.collect();
    let mut after: Vec<(u128, u32)> = after.collect();
    before.sort_unstable();
    after.sort_unstable();
    let (mut i, mut j) = (0, 0);
    loop {
        let (b, a) = (before.get(i), after.get(j));
        let (network, was, now) = match (b, a) {
            (None, None) => break,
            (Some(&(k, v)), Some(&(l, _))) if k < l => {
                i += 1;
                (k, Some(v), None)
            }
            (Some(&(k, v)), None) => {
                i += 1;
                (k, Some(v), None)
            }
            (Some(&(k, v)), Some(&(l, w))) if k == l => {
                (i, j) = (i + 1, j + 1);
                (k, Some(v), Some(w))
            }
            (_, Some(&(l, w))) => {
                j += 1;
                (l, None, Some(w))
            }
        };
        if was != now {
            out.push(Ipv6Change {
                network,
                len,
                before: was,
                after: now,
            });
        }
    }
}

/// About one route per filter slot: selective where it matters, small when small.
fn filter_bits_for(routes: usize) -> u32 {
    (usize::BITS - routes.leading_zeros()).clamp(1, MAX_FILTER_BITS)
}

/// The filter slots a route of length `len` (1..=128) overlaps: (first, count).
fn slots_of(network: u128, len: u8, filter_bits: u32) -> (usize, usize) {
    let first = (network >> (128 - filter_bits)) as usize;
    (first, 1usize << filter_bits.saturating_sub(u32::from(len)))
}

/// Network mask of a prefix length (0..=128).
fn netmask(len: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
}

/// Validates one route (a removal has no value to check) and returns its network as a key.
fn check(network: Ipv6Addr, len: u8, value: Option<u32>) -> Result<u128, LpmError> {
    if len > 128 {
        return Err(LpmError::PrefixLength {
            network: IpAddr::V6(network),
            len,
            max: 128,
        });
    }
    let bits = u128::from(network);
    let masked = bits & netmask(len);
    if masked != bits {
        return Err(LpmError::HostBitsSet {
            network: IpAddr::V6(network),
            len,
            masked: IpAddr::V6(Ipv6Addr::from(masked)),
        });
    }
    if let Some(value) = value.filter(|&v| v > MAX_VALUE) {
        return Err(LpmError::ValueTooLarge {
            network: IpAddr::V6(network),
            len,
            value,
            max: MAX_VALUE,
        });
    }
    Ok(bits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn net(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn addr(s: &str) -> u128 {
        u128::from(net(s))
    }

    /// The same routes with the narrowest, the automatic and the widest length filter.
    fn all_filters(routes: &[(Ipv6Addr, u8, u32)]) -> [Ipv6Lpm; 3] {
        let table = Ipv6Table::from_routes(routes.iter().copied()).unwrap();
        [Some(1), None, Some(MAX_FILTER_BITS)]
            .map(|bits| Ipv6Table::build(table.routes.clone(), bits).lpm)
    }

    /// Longest match by linear scan; among equal prefixes the last given wins.
    fn reference(routes: &[(Ipv6Addr, u8, u32)], addr: u128) -> Option<u32> {
        let mut best: Option<(u8, u32)> = None;
        for &(network, len, value) in routes {
            let matches = addr & netmask(len) == u128::from(network);
            if matches && best.is_none_or(|(best_len, _)| len >= best_len) {
                best = Some((len, value));
            }
        }
        best.map(|(_, value)| value)
    }

    #[test]
    fn empty_table_matches_nothing_and_costs_bytes() {
        let table = Ipv6Lpm::new();
        assert!(table.is_empty());
        // Two filter slots and the pointer to their chunk.
        assert_eq!(table.memory_bytes(), 48);
        for a in [0, 1, addr("2001:db8::1"), u128::MAX] {
            assert_eq!(table.lookup(a), None);
        }
        assert!(Ipv6Lpm::default().is_empty());
    }

    #[test]
    fn big_lengths_are_sharded_and_changes_copy_one_shard() {
        // 5,000 /64s and a few /48s: the /64s split into shards.
        let mut routes: Vec<(Ipv6Addr, u8, u32)> = (0..5000u32)
            .map(|i| {
                let a = (0x2001_0db8u128 << 96) | (u128::from(i.wrapping_mul(2_654_435_761)) << 64);
                (Ipv6Addr::from(a), 64, i % 100)
            })
            .collect();
        routes.extend((0..8u32).map(|i| (net(&format!("2001:db8:{i:x}::")), 48, 200 + i)));
        let mut table = Ipv6Table::from_routes(routes.iter().copied()).unwrap();
        let bits = table.by_len[64].as_ref().unwrap().bits;
        assert_eq!(bits, shard_bits_for(5000));
        assert!(bits >= 3);
        let before = table.lpm().clone();
        let (n, len, _) = routes[17];
        table.apply([(n, len, Some(999))]).unwrap();
        let (old, new) = (
            &before.tables[usize::from(before.table_of[64])],
            &table.lpm().tables[usize::from(table.lpm().table_of[64])],
        );
        let shared = old
            .tables
            .iter()
            .zip(new.tables.iter())
            .filter(|(a, b)| Arc::ptr_eq(a, b))
            .count();
        assert_eq!(shared, old.tables.len() - 1, "one shard copied");
        assert_eq!(table.lpm().lookup(u128::from(n) | 5), Some(999));
        assert_eq!(before.lookup(u128::from(n) | 5), Some(17));
        // Removing most of them narrows the shards; lookups agree with a scan throughout.
        table
            .apply(routes[..4900].iter().map(|&(n, len, _)| (n, len, None)))
            .unwrap();
        assert!(table.by_len[64].as_ref().unwrap().bits < bits);
        let left = &routes[4900..];
        for &(n, _, _) in routes.iter().step_by(7) {
            let a = u128::from(n) | 9;
            assert_eq!(table.lpm().lookup(a), reference(left, a));
        }
    }

    #[test]
    fn default_route_matches_everything() {
        for table in all_filters(&[(net("::"), 0, 9)]) {
            assert_eq!(table.len(), 1);
            for a in [0, addr("2001:db8::1"), addr("fe80::1"), u128::MAX] {
                assert_eq!(table.lookup(a), Some(9));
            }
        }
    }

    #[test]
    fn host_route_matches_one_address() {
        for table in all_filters(&[(net("2001:db8::77"), 128, 3)]) {
            assert_eq!(table.lookup(addr("2001:db8::77")), Some(3));
            assert_eq!(table.lookup(addr("2001:db8::76")), None);
            assert_eq!(table.lookup(addr("2001:db8::78")), None);
        }
    }

    #[test]
    fn overlapping_prefixes_pick_the_longest() {
        let routes = [
            (net("::"), 0, 0),
            (net("2001:db8::"), 32, 32),
            (net("2001:db8:1::"), 48, 48),
            (net("2001:db8:1:2::"), 64, 64),
            (net("2001:db8:1:2::80"), 121, 121),
            (net("2001:db8:1:2::81"), 128, 128),
        ];
        let cases = [
            ("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", 0),
            ("2001:db8::", 32),
            ("2001:db8:0:ffff:ffff:ffff:ffff:ffff", 32),
            ("2001:db8:1::", 48),
            ("2001:db8:1:1:ffff:ffff:ffff:ffff", 48),
            ("2001:db8:1:2::", 64),
            ("2001:db8:1:2::7f", 64),
            ("2001:db8:1:2::80", 121),
            ("2001:db8:1:2::81", 128),
            ("2001:db8:1:2::82", 121),
            ("2001:db8:1:2::ff", 121),
            ("2001:db8:1:2::100", 64),
            ("2001:db8:1:3::", 48),
            ("2001:db8:2::", 32),
            ("2001:db9::", 0),
            ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 0),
        ];
        for table in all_filters(&routes) {
            for (a, expected) in cases {
                assert_eq!(table.lookup(addr(a)), Some(expected), "lookup {a}");
            }
        }
    }

    #[test]
    fn prefix_boundaries_at_every_length() {
        for len in 1..=128u8 {
            let network = (3u128 << 126) & netmask(len);
            let last = network | !netmask(len);
            for table in all_filters(&[(Ipv6Addr::from(network), len, 5)]) {
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
            (net("2001:db8::"), 32, 1),
            (net("2001:db8:1::"), 48, 2),
            (net("2001:db8::"), 32, 3),
            (net("::"), 0, 4),
            (net("::"), 0, 5),
        ];
        for table in all_filters(&routes) {
            assert_eq!(table.len(), 3);
            assert_eq!(table.lookup(addr("2001:db8:9::")), Some(3));
            assert_eq!(table.lookup(addr("2001:db8:1::9")), Some(2));
            assert_eq!(table.lookup(addr("3fff::")), Some(5));
        }
    }

    #[test]
    fn invalid_routes_are_refused_with_context() {
        assert_eq!(
            Ipv6Lpm::from_routes([(net("2001:db8::"), 129, 1)]).unwrap_err(),
            LpmError::PrefixLength {
                network: IpAddr::V6(net("2001:db8::")),
                len: 129,
                max: 128
            }
        );
        assert_eq!(
            Ipv6Lpm::from_routes([(net("2001:db8::1"), 64, 1)]).unwrap_err(),
            LpmError::HostBitsSet {
                network: IpAddr::V6(net("2001:db8::1")),
                len: 64,
                masked: IpAddr::V6(net("2001:db8::")),
            }
        );
        assert_eq!(
            Ipv6Lpm::from_routes([(net("2001:db8::"), 32, MAX_VALUE + 1)]).unwrap_err(),
            LpmError::ValueTooLarge {
                network: IpAddr::V6(net("2001:db8::")),
                len: 32,
                value: MAX_VALUE + 1,
                max: MAX_VALUE
            }
        );
        let max = Ipv6Lpm::from_routes([(net("2001:db8::"), 32, MAX_VALUE)]).unwrap();
        assert_eq!(max.lookup(addr("2001:db8::1")), Some(MAX_VALUE));
    }

    #[test]
    fn small_tables_cost_kilobytes() {
        let routes: Vec<_> = (0..10u128)
            .map(|i| {
                (
                    Ipv6Addr::from(0x2001_0db8_u128 << 96 | i << 80),
                    48,
                    i as u32,
                )
            })
            .collect();
        let table = Ipv6Lpm::from_routes(routes).unwrap();
        assert!(table.memory_bytes() < 4096, "{table:?}");
    }

    #[test]
    fn table_is_send_sync_clone() {
        fn shareable<T: Send + Sync + Clone + 'static>() {}
        shareable::<Ipv6Lpm>();
        let table = Ipv6Lpm::from_routes([(net("2001:db8::"), 32, 1)]).unwrap();
        assert_eq!(table.clone().lookup(addr("2001:db8::1")), Some(1));
    }

    /// Addresses whose bytes mostly come from a small alphabet (0, 1, 0x7f, 0x80, 0xff), so
    /// random prefixes nest and share boundaries, or that crowd into 2001:db8::/120; built from
    /// two integers because per-byte
    /// strategies made proptest's value trees dominate the debug-mode run time.
    fn address() -> impl Strategy<Value = u128> {
        prop_oneof![
            (any::<u128>(), any::<u64>()).prop_map(|(random, choice)| {
                let mut bytes = random.to_be_bytes();
                for (i, byte) in bytes.iter_mut().enumerate() {
                    if let Some(&pick) =
                        [0u8, 1, 0x7f, 0x80, 0xff].get((choice >> (3 * i)) as usize & 7)
                    {
                        *byte = pick;
                    }
                }
                u128::from_be_bytes(bytes)
            }),
            any::<u128>(),
            // Many routes in one /120 crowd the longest lengths.
            any::<u8>().prop_map(|low| 0x2001_0db8_u128 << 96 | u128::from(low)),
        ]
    }

    /// Lengths over 0..=128, weighted towards /32../64 and /128 as in real tables.
    fn prefix_len() -> impl Strategy<Value = u8> {
        prop_oneof![
            2 => 0..=128u8,
            3 => 32..=64u8,
            1 => prop::sample::select(vec![0u8, 1, 15, 16, 17, 48, 63, 64, 65, 127, 128]),
        ]
    }

    fn route() -> impl Strategy<Value = (Ipv6Addr, u8, u32)> {
        (address(), prefix_len(), 0..=MAX_VALUE)
            .prop_map(|(a, len, value)| (Ipv6Addr::from(a & netmask(len)), len, value))
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
        ) {
            let mut addrs = probes;
            for &(network, len, _) in &routes {
                let first = u128::from(network);
                let last = first | !netmask(len);
                addrs.extend([first, last, first.wrapping_sub(1), last.wrapping_add(1)]);
            }
            let expected: Vec<_> = addrs.iter().map(|&a| reference(&routes, a)).collect();
            for table in all_filters(&routes) {
                for (&a, &want) in addrs.iter().zip(&expected) {
                    prop_assert_eq!(table.lookup(a), want, "address {}", Ipv6Addr::from(a));
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
                1..10,
            ),
            probes in prop::collection::vec(address(), 0..32),
        ) {
            // Tables with the narrowest, the automatic and the widest filter, edited batch by
            // batch; after each batch they answer as a linear scan of the routes present.
            let mut tables = [Some(1), None, Some(MAX_FILTER_BITS)]
                .map(|bits| Ipv6Table::build(BTreeMap::new(), bits));
            let mut present: BTreeMap<(u128, u8), u32> = BTreeMap::new();
            for batch in &batches {
                let changes: Vec<_> = batch
                    .iter()
                    .map(|&((n, len, v), add)| (n, len, add.then_some(v)))
                    .collect();
                for &(n, len, v) in &changes {
                    match v {
                        Some(v) => present.insert((u128::from(n), len), v),
                        None => present.remove(&(u128::from(n), len)),
                    };
                }
                for t in &mut tables {
                    t.apply(changes.iter().copied()).unwrap();
                }
                let routes: Vec<_> = present
                    .iter()
                    .map(|(&(n, len), &v)| (Ipv6Addr::from(n), len, v))
                    .collect();
                let mut addrs = probes.clone();
                for &((network, len, _), _) in batch {
                    let first = u128::from(network);
                    let last = first | !netmask(len);
                    addrs.extend([first, last, first.wrapping_sub(1), last.wrapping_add(1)]);
                }
                for &a in &addrs {
                    let want = reference(&routes, a);
                    for t in &tables {
                        prop_assert_eq!(t.lpm().lookup(a), want, "address {}", Ipv6Addr::from(a));
                        prop_assert_eq!(t.lpm().len(), routes.len());
                    }
                }
                // The filter kept up change by change is the one its routes make.
                for t in &tables {
                    for slot in 0..1usize << t.filter_bits {
                        let kept = t.filter[slot >> CHUNK_BITS][slot & CHUNK_MASK];
                        prop_assert_eq!(kept, t.slot_lengths(slot), "slot {}", slot);
                    }
                }
            }
        }
    }

    /// The changes from `before` to `after` by a walk of both route maps, sorted.
    fn naive_changes(
        before: &BTreeMap<(u128, u8), u32>,
        after: &BTreeMap<(u128, u8), u32>,
    ) -> Vec<Ipv6Change> {
        let mut keys: Vec<&(u128, u8)> = before.keys().chain(after.keys()).collect();
        keys.sort();
        keys.dedup();
        keys.into_iter()
            .filter(|k| before.get(k) != after.get(k))
            .map(|&(network, len)| Ipv6Change {
                network,
                len,
                before: before.get(&(network, len)).copied(),
                after: after.get(&(network, len)).copied(),
            })
            .collect()
    }

    fn sorted(mut changes: Vec<Ipv6Change>) -> Vec<Ipv6Change> {
        changes.sort();
        changes
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 64,
            rng_algorithm: prop::test_runner::RngAlgorithm::XorShift,
            ..ProptestConfig::default()
        })]

        #[test]
        fn changes_to_is_the_difference_of_the_routes(
            routes in prop::collection::vec(route(), 0..400),
            batch in prop::collection::vec((route(), any::<bool>()), 0..20),
        ) {
            let mut table = Ipv6Table::from_routes(routes.iter().copied()).unwrap();
            let (before, before_routes) = (table.lpm().clone(), table.routes.clone());
            table
                .apply(batch.iter().map(|&((n, len, v), add)| (n, len, add.then_some(v))))
                .unwrap();
            let want = naive_changes(&before_routes, &table.routes);
            // An edit of the same table (shards shared) and a table built anew (another hash).
            prop_assert_eq!(&sorted(before.changes_to(table.lpm())), &want);
            let rebuilt = Ipv6Table::from_routes(table.routes()).unwrap();
            prop_assert_eq!(&sorted(before.changes_to(rebuilt.lpm())), &want);
            prop_assert_eq!(
                sorted(table.lpm().routes()),
                naive_changes(&BTreeMap::new(), &table.routes)
            );
            prop_assert!(table.lpm().changes_to(&rebuilt.lpm().clone()).is_empty());
        }
    }

    #[test]
    fn a_change_in_a_large_table_reads_one_shard() {
        let routes =
            (0..4000u128).map(|i| (Ipv6Addr::from(0x2001_0db8_u128 << 96 | i << 64), 64, 1));
        let mut table = Ipv6Table::from_routes(routes).unwrap();
        let before = table.lpm().clone();
        let change = Ipv6Addr::from(0x2001_0db8_u128 << 96 | 7 << 64);
        table.apply([(change, 64, Some(2))]).unwrap();
        let after = table.lpm();
        let (a, b) = (before.shards_of(64).unwrap(), after.shards_of(64).unwrap());
        let copied = a
            .tables
            .iter()
            .zip(b.tables.iter())
            .filter(|(x, y)| !Arc::ptr_eq(x, y))
            .count();
        assert!(a.tables.len() > 1, "the length is split into shards");
        assert_eq!(copied, 1, "one shard copied, the others shared");
        assert_eq!(
            before.changes_to(after),
            [Ipv6Change {
                network: u128::from(change),
                len: 64,
                before: Some(1),
                after: Some(2),
            }]
        );
        assert!(!before.shares_routes_with(after));
        assert!(after.shares_routes_with(&after.clone()));
    }
}

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

use core::fmt;
use core::hash::{BuildHasher, Hasher};
use core::net::{IpAddr, Ipv6Addr};

use hashbrown::HashMap;

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

/// The routes of one prefix length, keyed by masked network address.
type Table = HashMap<u128, u32, SeededState>;

/// Value of the default route slot when there is no ::/0.
const NO_ROUTE: u32 = u32::MAX;

const _: () = assert!(MAX_VALUE < NO_ROUTE);

/// Widest length filter: 65536 slots of 16 bytes, 1 MiB, from 32k routes on.
const MAX_FILTER_BITS: u32 = 16;

/// IPv6 longest-prefix-match table of one VRF: destination address to FEC index.
///
/// Immutable once built; share it between workers behind an `Arc` in the VRF snapshot.
#[derive(Clone)]
pub struct Ipv6Lpm {
    /// One table per present prefix length 1..=128, in `table_of` order.
    tables: Box<[Table]>,
    /// Index into `tables` of each prefix length (read only for lengths in the filter).
    table_of: [u8; 129],
    /// Per value of the top `128 - filter_shift` address bits: bit `len - 1` is set when a
    /// route of length `len` overlaps that slice of the address space.
    filter: Box<[u128]>,
    filter_shift: u32,
    /// Value of ::/0, or `NO_ROUTE`.
    default: u32,
    len: usize,
}

impl Ipv6Lpm {
    /// Largest value a route may carry ([`MAX_VALUE`], 2^31 - 2).
    pub const MAX_VALUE: u32 = MAX_VALUE;

    /// An empty table: a two-slot length filter (32 bytes) and nothing else.
    pub fn new() -> Self {
        Self::from_routes([]).unwrap_or_else(|_| unreachable!("an empty table is valid"))
    }

    /// Builds a table from `(network, prefix length 0..=128, value)`; for a duplicate prefix
    /// the last one wins.
    pub fn from_routes<I: IntoIterator<Item = (Ipv6Addr, u8, u32)>>(
        routes: I,
    ) -> Result<Self, LpmError> {
        Self::build(routes, None)
    }

    /// Builds the table with a length filter of `filter_bits` bits (1..=16), or a width
    /// chosen from the number of routes.
    fn build<I: IntoIterator<Item = (Ipv6Addr, u8, u32)>>(
        routes: I,
        filter_bits: Option<u32>,
    ) -> Result<Self, LpmError> {
        let state = SeededState::random();
        let mut by_len: Vec<Option<Table>> = vec![None; 129];
        for (network, len, value) in routes {
            let key = check(network, len, value)?;
            by_len[usize::from(len)]
                .get_or_insert_with(|| HashMap::with_hasher(state))
                .insert(key, value);
        }
        let default = by_len[0]
            .take()
            .and_then(|table| table.get(&0).copied())
            .unwrap_or(NO_ROUTE);
        let len = by_len.iter().flatten().map(HashMap::len).sum::<usize>()
            + usize::from(default != NO_ROUTE);

        // About one route per filter slot: selective where it matters, small when small.
        let filter_bits = filter_bits
            .unwrap_or(usize::BITS - len.leading_zeros())
            .clamp(1, MAX_FILTER_BITS);
        let filter_shift = 128 - filter_bits;
        let mut filter = vec![0u128; 1 << filter_bits];
        let mut table_of = [0u8; 129];
        let mut tables = Vec::new();
        for (prefix_len, table) in (0u32..).zip(by_len) {
            let Some(mut table) = table else { continue };
            for &network in table.keys() {
                // A route shorter than the filter's width overlaps several slots.
                let first = (network >> filter_shift) as usize;
                let count = 1usize << filter_bits.saturating_sub(prefix_len);
                for slot in &mut filter[first..first + count] {
                    *slot |= 1 << (prefix_len - 1);
                }
            }
            table.shrink_to_fit();
            table_of[prefix_len as usize] = tables.len() as u8;
            tables.push(table);
        }
        Ok(Self {
            tables: tables.into_boxed_slice(),
            table_of,
            filter: filter.into_boxed_slice(),
            filter_shift,
            default,
            len,
        })
    }

    /// The value of the longest prefix containing `addr` (`u128::from(Ipv6Addr)`).
    #[inline]
    pub fn lookup(&self, addr: u128) -> Option<u32> {
        // Probe, longest first, only the lengths that have a route near `addr`.
        let mut lengths = self.filter[(addr >> self.filter_shift) as usize];
        while lengths != 0 {
            let len = 128 - lengths.leading_zeros();
            lengths &= !(1 << (len - 1));
            let table = &self.tables[usize::from(self.table_of[len as usize])];
            if let Some(&value) = table.get(&(addr & netmask(len as u8))) {
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

    /// Heap bytes of the lookup structure (length filter, table list and every hash table).
    pub fn memory_bytes(&self) -> usize {
        core::mem::size_of_val(&*self.filter)
            + core::mem::size_of_val(&*self.tables)
            + self
                .tables
                .iter()
                .map(HashMap::allocation_size)
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
            .field("filter_slots", &self.filter.len())
            .field("memory_bytes", &self.memory_bytes())
            .finish()
    }
}

/// Network mask of a prefix length (0..=128).
fn netmask(len: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
}

/// Validates one route and returns its network as a key.
fn check(network: Ipv6Addr, len: u8, value: u32) -> Result<u128, LpmError> {
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
    if value > MAX_VALUE {
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
        [Some(1), None, Some(MAX_FILTER_BITS)]
            .map(|bits| Ipv6Lpm::build(routes.iter().copied(), bits).unwrap())
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
        assert_eq!(table.memory_bytes(), 32);
        for a in [0, 1, addr("2001:db8::1"), u128::MAX] {
            assert_eq!(table.lookup(a), None);
        }
        assert!(Ipv6Lpm::default().is_empty());
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
}

//! Synthetic, deterministic route tables and probe addresses for the LPM benches.
//!
//! The tables imitate the shape of a BGP full table (prefix-length mix of the public IPv4 and
//! IPv6 tables) but spread prefixes uniformly at random, which is harsher on a trie than the
//! clustered real tables: more distinct /16s and /24s get populated. The same `(n, seed)`
//! gives the same table on every machine, so numbers are comparable across runs.

use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr};

/// xorshift64* (Vigna 2016): a few lines, deterministic, plenty for fixtures (not for crypto).
#[derive(Clone, Debug)]
pub struct XorShift64 {
    state: u64,
}

impl XorShift64 {
    /// A generator for `seed`; every seed (0 too) gives a distinct, non-zero state.
    pub fn new(seed: u64) -> Self {
        // One splitmix64 step spreads nearby seeds apart and never yields the stuck state 0
        // for the seeds a bench uses.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Self {
            state: (z ^ (z >> 31)) | 1,
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// The next 128 random bits.
    pub fn next_u128(&mut self) -> u128 {
        u128::from(self.next_u64()) << 64 | u128::from(self.next_u64())
    }

    /// A number in `0..n` (`n > 0`); the multiply-shift bias is far below what a bench can see.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// IPv4 prefix lengths and their weights in ten-thousandths, shaped like the public table:
/// about 57% /24, 10% /22, 8% /23, 22.5% over /8../21 (growing towards /21) and 2.5% /25../32.
const IPV4_LENGTH_MIX: [(u8, u32); 25] = [
    (8, 2),
    (9, 4),
    (10, 8),
    (11, 15),
    (12, 30),
    (13, 55),
    (14, 85),
    (15, 110),
    (16, 180),
    (17, 120),
    (18, 200),
    (19, 340),
    (20, 520),
    (21, 580),
    (22, 1000),
    (23, 800),
    (24, 5700),
    (25, 60),
    (26, 50),
    (27, 30),
    (28, 30),
    (29, 30),
    (30, 20),
    (31, 5),
    (32, 25),
];

/// IPv6 prefix lengths and their relative weights: about 45% /48, most of the rest over
/// /28../47 as in the public table, a few /52../64 and a sprinkle of /128 host routes.
const IPV6_LENGTH_MIX: [(u8, u32); 28] = [
    (20, 20),
    (24, 30),
    (28, 100),
    (29, 400),
    (30, 80),
    (31, 60),
    (32, 1200),
    (33, 150),
    (34, 150),
    (35, 100),
    (36, 350),
    (37, 80),
    (38, 100),
    (39, 80),
    (40, 600),
    (41, 100),
    (42, 200),
    (43, 100),
    (44, 800),
    (45, 200),
    (46, 350),
    (47, 300),
    (48, 4500),
    (52, 40),
    (56, 200),
    (60, 30),
    (64, 100),
    (128, 50),
];

/// Draws a prefix length from a weighted mix.
fn pick_len(rng: &mut XorShift64, mix: &[(u8, u32)]) -> u8 {
    let total: u32 = mix.iter().map(|&(_, w)| w).sum();
    let mut ticket = rng.below(u64::from(total)) as u32;
    for &(len, weight) in mix {
        if ticket < weight {
            return len;
        }
        ticket -= weight;
    }
    unreachable!("ticket below the total weight")
}

/// `n` distinct IPv4 prefixes `(network, length)` with a BGP-like length mix, networks drawn
/// uniformly from 1.0.0.0..=223.255.255.255 (unicast space) with host bits cleared.
///
/// A draw that repeats an existing prefix is redrawn, so short lengths with few possible
/// networks (223 /8s) saturate and come out a little under their weight at 1M.
pub fn ipv4_table(n: usize, seed: u64) -> Vec<(Ipv4Addr, u8)> {
    let mut rng = XorShift64::new(seed);
    let mut seen = HashSet::with_capacity(n);
    let mut table = Vec::with_capacity(n);
    while table.len() < n {
        let len = pick_len(&mut rng, &IPV4_LENGTH_MIX);
        let addr = 0x0100_0000 + rng.below(223 << 24) as u32;
        let network = addr & (u32::MAX << (32 - len));
        if seen.insert((network, len)) {
            table.push((Ipv4Addr::from(network), len));
        }
    }
    table
}

/// `count` addresses, each inside a prefix of `table` picked uniformly at random (host bits
/// random too), so every lookup hits; `u32::from` form, ready for `Ipv4Lpm::lookup`.
pub fn ipv4_probe_addrs(table: &[(Ipv4Addr, u8)], count: usize, seed: u64) -> Vec<u32> {
    assert!(!table.is_empty(), "probes need a non-empty table");
    let mut rng = XorShift64::new(seed);
    (0..count)
        .map(|_| {
            let (network, len) = table[rng.below(table.len() as u64) as usize];
            let host_mask = u32::MAX.checked_shr(u32::from(len)).unwrap_or(0);
            u32::from(network) | (rng.next_u64() as u32 & host_mask)
        })
        .collect()
}

/// `n` distinct IPv6 prefixes `(network, length)` under 2000::/3 with a length mix like the
/// public table (mostly /48 and /32../47), networks uniform with host bits cleared.
pub fn ipv6_table(n: usize, seed: u64) -> Vec<(Ipv6Addr, u8)> {
    let mut rng = XorShift64::new(seed);
    let mut seen = HashSet::with_capacity(n);
    let mut table = Vec::with_capacity(n);
    while table.len() < n {
        let len = pick_len(&mut rng, &IPV6_LENGTH_MIX);
        let addr = (1u128 << 125) | (rng.next_u128() >> 3);
        let network = addr & u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
        if seen.insert((network, len)) {
            table.push((Ipv6Addr::from(network), len));
        }
    }
    table
}

/// `count` addresses, each inside a prefix of `table` picked uniformly at random (host bits
/// random too), so every lookup hits; `u128::from` form, ready for `Ipv6Lpm::lookup`.
pub fn ipv6_probe_addrs(table: &[(Ipv6Addr, u8)], count: usize, seed: u64) -> Vec<u128> {
    assert!(!table.is_empty(), "probes need a non-empty table");
    let mut rng = XorShift64::new(seed);
    (0..count)
        .map(|_| {
            let (network, len) = table[rng.below(table.len() as u64) as usize];
            let host_mask = u128::MAX.checked_shr(u32::from(len)).unwrap_or(0);
            u128::from(network) | (rng.next_u128() & host_mask)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_deterministic_unique_and_canonical() {
        let a = ipv4_table(20_000, 7);
        assert_eq!(a, ipv4_table(20_000, 7));
        assert_ne!(a, ipv4_table(20_000, 8));
        assert_eq!(a.iter().collect::<HashSet<_>>().len(), a.len());
        for &(network, len) in &a {
            let bits = u32::from(network);
            assert_eq!(bits & !(u32::MAX << (32 - len)), 0);
            assert!((0x0100_0000..0xe000_0000).contains(&bits));
        }
        let slash24 = a.iter().filter(|&&(_, len)| len == 24).count();
        assert!((0.54..0.60).contains(&(slash24 as f64 / a.len() as f64)));

        let b = ipv6_table(20_000, 7);
        assert_eq!(b, ipv6_table(20_000, 7));
        assert_eq!(b.iter().collect::<HashSet<_>>().len(), b.len());
        for &(network, _) in &b {
            assert_eq!(u128::from(network) >> 125, 1, "{network} under 2000::/3");
        }
    }

    #[test]
    fn probes_fall_inside_their_table() {
        let table = ipv4_table(1000, 1);
        for addr in ipv4_probe_addrs(&table, 1000, 2) {
            assert!(table
                .iter()
                .any(|&(network, len)| { addr & (u32::MAX << (32 - len)) == u32::from(network) }));
        }
        let table = ipv6_table(1000, 1);
        for addr in ipv6_probe_addrs(&table, 1000, 2) {
            assert!(table.iter().any(|&(network, len)| {
                addr & u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
                    == u128::from(network)
            }));
        }
    }
}

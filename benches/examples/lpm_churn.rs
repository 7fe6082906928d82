//! Sustained churn on one IPv4 FIB table, without the RIB or the daemon: what the
//! compaction costs and what memory it keeps. `cargo run --release -p xpe-benches --example
//! lpm_churn -- [ROUTES] [BATCH] [BATCHES]`.
//!
//! Builds ROUTES (1,000,000) routes of the BGP-like table of `xpe_benches::routes`, then
//! applies BATCHES (500) batches of BATCH (2000) changes, alternately removing BATCH routes
//! picked at random and putting them back. Prints the per-batch time (p50, p99), the subtrees
//! rebuilt for the changes and for the compaction, and the trie's memory against a fresh
//! build of the same routes.

use std::net::Ipv4Addr;
use std::time::Instant;

use xpe_benches::routes::{ipv4_table, XorShift64};
use xpe_dataplane::tables::lpm::Ipv4Table;

fn arg(i: usize, default: usize) -> usize {
    std::env::args()
        .nth(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let (n, batch, batches) = (arg(1, 1_000_000), arg(2, 2000), arg(3, 500));
    let routes: Vec<(Ipv4Addr, u8)> = ipv4_table(n, 1);
    let value = |i: usize| i as u32 % 256;
    let mut table = Ipv4Table::from_routes(
        routes
            .iter()
            .enumerate()
            .map(|(i, &(a, len))| (a, len, value(i))),
    )
    .expect("build");
    let fresh = table.lpm().memory_bytes();
    let mut rng = XorShift64::new(7);
    let mut times = Vec::with_capacity(batches);
    let (mut rebuilt, mut compacted, mut words) = (0, 0, 0);
    let mut peak = fresh;
    for b in 0..batches {
        if b % 2 == 0 {
            // A new pick every other batch: remove them, then put them back.
            let picks: Vec<usize> = (0..batch).map(|_| rng.below(n as u64) as usize).collect();
            let t0 = Instant::now();
            let s = table
                .apply(picks.iter().map(|&i| (routes[i].0, routes[i].1, None)))
                .expect("remove");
            times.push(t0.elapsed());
            let t0 = Instant::now();
            let s2 = table
                .apply(
                    picks
                        .iter()
                        .map(|&i| (routes[i].0, routes[i].1, Some(value(i)))),
                )
                .expect("add");
            times.push(t0.elapsed());
            for s in [s, s2] {
                rebuilt += s.rebuilt;
                compacted += s.compacted;
                words += s.words;
            }
            peak = peak.max(table.lpm().memory_bytes());
        }
    }
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3;
    let now = table.lpm().memory_bytes();
    println!(
        "{n} routes, {} batches of {batch}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms per batch",
        times.len(),
        at(0.5),
        at(0.99),
        at(1.0)
    );
    println!(
        "per batch: {:.0} subtrees rebuilt for the changes, {:.0} for the compaction, {:.0} words written",
        rebuilt as f64 / times.len() as f64,
        compacted as f64 / times.len() as f64,
        words as f64 / times.len() as f64
    );
    println!(
        "trie memory: fresh build {:.1} MB, now {:.1} MB ({:.2}x), peak {:.1} MB ({:.2}x)",
        fresh as f64 / 1e6,
        now as f64 / 1e6,
        now as f64 / fresh as f64,
        peak as f64 / 1e6,
        peak as f64 / fresh as f64
    );
}

//! Criterion benches of the per-VRF LPM tables: time per lookup of addresses that hit.
//!
//! Each iteration looks up a fixed array of 4096 probe addresses, each inside a random
//! prefix of the table, and criterion reports time per lookup (`Throughput::Elements`). The
//! lookups are independent, as in a packet batch, so the CPU overlaps their cache misses,
//! which is what DPDK's DIR-24-8 figures measure too. 4096 probes touch a few hundred KiB of a
//! table, which then stays in L2/L3; `lpm_ipv4_many_flows` repeats the 1M case with 1M probes
//! so that most lookups miss the caches. Setup prints each table's size, bytes per prefix and
//! build time once, plus the size of an empty and a 10-route table (the idle-VRF cost).
//! `lpm_*_update` times one route removed and put back (two batches of one, each published),
//! and setup prints the p50/p99/max of single changes and the memory after them.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_main, BenchmarkId, Criterion, Throughput};
use xpe_benches::routes::{ipv4_probe_addrs, ipv4_table, ipv6_probe_addrs, ipv6_table};
use xpe_dataplane::tables::lpm::{Ipv4Lpm, Ipv4Table, Ipv6Lpm, Ipv6Table};

/// Probe addresses per iteration: far more than a batch, so the loop measures steady state,
/// small enough (16-64 KiB) that reading the probes themselves stays in L1/L2.
const PROBES: usize = 4096;
const TABLE_SEED: u64 = 1;
const PROBE_SEED: u64 = 2;

/// Routes with distinct values (FEC index = position): with per-prefix labels every route
/// can have its own FEC, and it is the worst case for merging equal leaves.
fn with_values<A: Copy>(table: &[(A, u8)]) -> impl Iterator<Item = (A, u8, u32)> + '_ {
    table
        .iter()
        .zip(0u32..)
        .map(|(&(a, len), value)| (a, len, value))
}

/// Prints a table's size once per run, next to the criterion figures.
fn report(what: &str, prefixes: usize, bytes: usize, build: Option<Duration>) {
    let per_prefix = if prefixes == 0 {
        String::new()
    } else {
        format!(", {:.1} B/prefix", bytes as f64 / prefixes as f64)
    };
    let built = build.map_or(String::new(), |d| format!(", built in {d:.2?}"));
    eprintln!("{what}: {prefixes} prefixes, {bytes} bytes{per_prefix}{built}");
}

/// Sum of the looked-up values, so the lookups cannot be optimised away.
fn lookup_all<A: Copy>(probes: &[A], lookup: impl Fn(A) -> Option<u32>) -> u32 {
    black_box(probes).iter().fold(0u32, |sum, &addr| {
        sum.wrapping_add(lookup(addr).unwrap_or(0))
    })
}

fn ipv4_lookup(c: &mut Criterion) {
    report("ipv4 empty", 0, Ipv4Lpm::new().memory_bytes(), None);
    let ten = Ipv4Lpm::from_routes(with_values(&ipv4_table(10, TABLE_SEED))).unwrap();
    report("ipv4 10 routes", ten.len(), ten.memory_bytes(), None);

    let mut group = c.benchmark_group("lpm_ipv4_lookup");
    group.throughput(Throughput::Elements(PROBES as u64));
    group.measurement_time(Duration::from_secs(3));
    let mut full = None;
    for n in [1_000, 100_000, 1_000_000] {
        let routes = ipv4_table(n, TABLE_SEED);
        let started = Instant::now();
        let table = Ipv4Lpm::from_routes(with_values(&routes)).unwrap();
        let built = started.elapsed();
        report("ipv4", table.len(), table.memory_bytes(), Some(built));
        let probes = ipv4_probe_addrs(&routes, PROBES, PROBE_SEED);
        group.bench_with_input(BenchmarkId::from_parameter(n), &probes, |b, probes| {
            b.iter(|| lookup_all(probes, |addr| table.lookup(addr)));
        });
        full = Some((routes, table));
    }
    group.finish();

    let Some((routes, table)) = full else { return };
    let flows = routes.len();
    let probes = ipv4_probe_addrs(&routes, flows, PROBE_SEED);
    let mut group = c.benchmark_group("lpm_ipv4_many_flows");
    group.throughput(Throughput::Elements(flows as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(3));
    group.bench_with_input(BenchmarkId::from_parameter(flows), &probes, |b, probes| {
        b.iter(|| lookup_all(probes, |addr| table.lookup(addr)));
    });
    group.finish();
}

fn ipv6_lookup(c: &mut Criterion) {
    report("ipv6 empty", 0, Ipv6Lpm::new().memory_bytes(), None);
    let ten = Ipv6Lpm::from_routes(with_values(&ipv6_table(10, TABLE_SEED))).unwrap();
    report("ipv6 10 routes", ten.len(), ten.memory_bytes(), None);

    let n = 100_000;
    let routes = ipv6_table(n, TABLE_SEED);
    let started = Instant::now();
    let table = Ipv6Lpm::from_routes(with_values(&routes)).unwrap();
    let built = started.elapsed();
    report("ipv6", table.len(), table.memory_bytes(), Some(built));
    let probes = ipv6_probe_addrs(&routes, PROBES, PROBE_SEED);

    let mut group = c.benchmark_group("lpm_ipv6_lookup");
    group.throughput(Throughput::Elements(PROBES as u64));
    group.measurement_time(Duration::from_secs(3));
    group.bench_with_input(BenchmarkId::from_parameter(n), &probes, |b, probes| {
        b.iter(|| lookup_all(probes, |addr| table.lookup(addr)));
    });
    group.finish();
}

/// Single-route changes timed one by one: the p50, p99 and largest of `times`.
fn percentiles(what: &str, mut times: Vec<Duration>) {
    times.sort_unstable();
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    eprintln!(
        "{what}: {} changes, p50 {:.1?}, p99 {:.1?}, max {:.1?}",
        times.len(),
        at(0.5),
        at(0.99),
        at(1.0)
    );
}

/// Changes to pick from a table: every `step`-th route, so they spread over the table.
const CHANGES: usize = 4000;

/// Times single changes to an editable table: each of `picks` removed and put back, each a
/// batch of one published as a new table (what one BGP withdraw and one update cost the FIB).
/// Prints the percentiles of single changes, then criterion times the pair.
fn updates<A: Copy>(
    c: &mut Criterion,
    group: &str,
    what: &str,
    picks: &[(A, u8, u32)],
    mut change: impl FnMut(A, u8, Option<u32>),
) {
    let mut times = Vec::with_capacity(2 * picks.len());
    for &(network, len, value) in picks {
        for next in [None, Some(value)] {
            let t0 = Instant::now();
            change(network, len, next);
            times.push(t0.elapsed());
        }
    }
    percentiles(what, times);
    let mut g = c.benchmark_group(group);
    g.measurement_time(Duration::from_secs(3));
    let mut next = picks.iter().cycle();
    g.bench_function(what.split(':').next().unwrap_or(what), |b| {
        b.iter(|| {
            let &(network, len, value) = next.next().unwrap();
            change(network, len, None);
            change(network, len, Some(value));
        });
    });
    g.finish();
}

fn ipv4_update(c: &mut Criterion) {
    let routes = ipv4_table(1_000_000, TABLE_SEED);
    let mut table = Ipv4Table::from_routes(with_values(&routes)).unwrap();
    let built = table.lpm().memory_bytes();
    let picks: Vec<_> = with_values(&routes)
        .step_by(routes.len() / CHANGES)
        .collect();
    updates(
        c,
        "lpm_ipv4_update",
        "ipv4 1M: one route removed or added, published",
        &picks,
        |network, len, value| {
            table.apply([(network, len, value)]).unwrap();
            black_box(table.lpm().clone());
        },
    );
    eprintln!(
        "ipv4 1M: {} bytes after the changes, {} built fresh",
        table.lpm().memory_bytes(),
        built
    );
}

fn ipv6_update(c: &mut Criterion) {
    let routes = ipv6_table(100_000, TABLE_SEED);
    let mut table = Ipv6Table::from_routes(with_values(&routes)).unwrap();
    let picks: Vec<_> = with_values(&routes)
        .step_by(routes.len() / CHANGES)
        .collect();
    updates(
        c,
        "lpm_ipv6_update",
        "ipv6 100k: one route removed or added, published",
        &picks,
        |network, len, value| {
            table.apply([(network, len, value)]).unwrap();
            black_box(table.lpm().clone());
        },
    );
}

// criterion_group! defines a public function without docs; a private module keeps it out of
// the missing_docs lint without allowing that lint for the whole file.
mod group {
    criterion::criterion_group!(
        benches,
        super::ipv4_lookup,
        super::ipv6_lookup,
        super::ipv4_update,
        super::ipv6_update
    );
}
criterion_main!(group::benches);

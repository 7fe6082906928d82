//! Heap bytes per route of the RIB and its FIB tables, counted by the allocator rather than
//! read off RSS (which also holds UMEM frames, allocator caches and whatever a request left):
//! `cargo run --release -p xpe-benches --example rib_memory -- [ROUTES]`.
//!
//! Loads ROUTES (1,000,000 by default) routes of the BGP-like table of `xpe_benches::routes`
//! into one VRF of a `Rib` as static routes, commits them into the FIB tables, and prints the
//! bytes held after each step and per route; then the same after 100,000 single changes
//! (routes removed and put back, each committed), which leave garbage for the compaction.

use std::alloc::System;
use std::time::Instant;

use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};
use xpe_benches::routes::ipv4_table;
use xpe_control::rib::{Rib, Source};
use xpe_dataplane::tables::{FecId, IpPrefix, Ipv4Prefix, VrfId};

// The system allocator, counting what it has handed out (stats_alloc: the workspace keeps
// unsafe code to the AF_XDP and eBPF modules, and a GlobalAlloc needs it).
#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes allocated and not yet freed (a reallocation counts into both sides already).
fn held() -> usize {
    let s = ALLOCATOR.stats();
    s.bytes_allocated.saturating_sub(s.bytes_deallocated)
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let routes: Vec<IpPrefix> = ipv4_table(n, 1)
        .into_iter()
        .filter_map(|(a, len)| Ipv4Prefix::new(a, len).map(IpPrefix::V4))
        .collect();
    let vrf = VrfId(1);
    let base = held();
    let mut rib = Rib::new(2);
    let t0 = Instant::now();
    for (i, p) in routes.iter().enumerate() {
        // A few hundred FECs, as routes from a few PEs with per-VRF or per-CE labels.
        rib.set(vrf, *p, Source::Static, Some(FecId(i as u32 % 256)));
    }
    let rib_only = held() - base;
    rib.commit().expect("commit");
    let took = t0.elapsed();
    let all = held() - base;
    let per = |bytes: usize| bytes as f64 / routes.len() as f64;
    println!(
        "{} routes: RIB {:.1} MB ({:.0} B/route), RIB and FIB {:.1} MB ({:.0} B/route); set and commit in {:.0} ms",
        routes.len(),
        rib_only as f64 / 1e6,
        per(rib_only),
        all as f64 / 1e6,
        per(all),
        took.as_secs_f64() * 1e3
    );
    let (v4, _) = rib.tables(vrf);
    println!(
        "  of which the published IPv4 trie: {:.1} MB ({:.1} B/route)",
        v4.memory_bytes() as f64 / 1e6,
        per(v4.memory_bytes())
    );
    drop(v4);
    let t0 = Instant::now();
    for (i, p) in routes.iter().step_by(20).take(50_000).enumerate() {
        rib.set(vrf, *p, Source::Static, None);
        rib.commit().expect("commit");
        rib.set(vrf, *p, Source::Static, Some(FecId(i as u32 % 256)));
        rib.commit().expect("commit");
    }
    let took = t0.elapsed();
    let after = held() - base;
    println!(
        "after 100000 single changes ({:.1} us each, with the counting allocator): RIB and FIB {:.1} MB ({:.0} B/route)",
        took.as_secs_f64() * 1e6 / 100_000.0,
        after as f64 / 1e6,
        per(after)
    );
}

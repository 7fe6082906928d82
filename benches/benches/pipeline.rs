//! ns/packet of the pipeline's label operations on batches of 64 frames: LSR swap, PHP pop,
//! pop-and-lookup to a VLAN, and PE imposition (VLAN -> VRF LPM -> 2 labels) with a 10-route
//! and a 1M-route VRF.
//!
//! Only `process_batch` is timed: restoring the frames between rounds (the pipeline rewrites
//! them in place) happens outside the measured interval. Destinations cycle through 4096
//! frames so a large VRF is probed at random places, not at one cached entry.

// criterion_group! and criterion_main! generate undocumented functions.
#![allow(missing_docs)]

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use xpe_benches::{core_frame, edge_frame, pe_snapshot, routes};
use xpe_dataplane::pipeline::{process_batch, Counters, Frame, Verdict};
use xpe_dataplane::tables::{PortId, Snapshot};

const BATCH: usize = 64;
const HEADROOM: usize = 256;
const FRAME_LEN: usize = 64;

/// Runs rounds of 64 frames taken in turn from `templates`, timing only the pipeline.
fn bench_batches(
    c: &mut Criterion,
    name: &str,
    snap: &Snapshot,
    port: PortId,
    templates: &[Vec<u8>],
) {
    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(BATCH as u64));
    let mut counters = Counters::new(snap.ports().len());
    // One buffer per frame of a batch, each with headroom for pushed headers.
    let mut bufs = vec![vec![0u8; HEADROOM + 2048]; BATCH];
    let mut verdicts = [Verdict::Drop(xpe_dataplane::pipeline::DropReason::Truncated); BATCH];
    let mut next = 0usize;
    group.bench_function(name, |b| {
        b.iter_custom(|rounds| {
            let mut spent = Duration::ZERO;
            for _ in 0..rounds {
                let mut lens = [0usize; BATCH];
                for (i, buf) in bufs.iter_mut().enumerate() {
                    let t = &templates[(next + i) % templates.len()];
                    buf[HEADROOM..HEADROOM + t.len()].copy_from_slice(t);
                    lens[i] = t.len();
                }
                next = (next + BATCH) % templates.len();
                let mut frames: Vec<Frame<'_>> = bufs
                    .iter_mut()
                    .zip(lens)
                    .filter_map(|(buf, len)| Frame::new(buf, HEADROOM, len))
                    .collect();
                let start = Instant::now();
                process_batch(
                    snap,
                    port,
                    black_box(&mut frames),
                    &mut verdicts,
                    &mut counters,
                );
                spent += start.elapsed();
                black_box(&verdicts);
            }
            spent
        })
    });
    group.finish();
    let forwarded = counters.forwarded;
    let total = forwarded + counters.total_drops() + counters.total_punts();
    assert_eq!(
        forwarded, total,
        "{name}: every bench frame must be forwarded: {counters:?}"
    );
}

fn label_ops(c: &mut Criterion) {
    let snap = pe_snapshot(&[]);
    let core = snap.port_by_name("core0").expect("core0");
    let vpc = Ipv4Addr::new(198, 18, 10, 5);
    let swap: Vec<Vec<u8>> = vec![core_frame(&[16002, 3001], vpc, FRAME_LEN)];
    bench_batches(c, "swap", &snap, core, &swap);
    let php = vec![core_frame(&[16004], vpc, FRAME_LEN)];
    bench_batches(c, "php-pop", &snap, core, &php);
    let dispose = vec![core_frame(&[1001], vpc, FRAME_LEN)];
    bench_batches(c, "pop-lookup-to-vlan", &snap, core, &dispose);
}

fn imposition(c: &mut Criterion) {
    let remote = Ipv4Addr::new(198, 19, 20, 5);
    let small = pe_snapshot(&[]);
    let edge = small.port_by_name("dx0").expect("dx0");
    bench_batches(
        c,
        "impose-10-routes",
        &small,
        edge,
        &[edge_frame(remote, FRAME_LEN)],
    );

    // Keep the synthetic prefixes out of the example's own space (198.18.0.0/15 holds the
    // VPC, the core link and the remote site; 169.254.0.0/16 the VIF subnets), so every
    // probe is a remote route and the assertion below can demand that all are forwarded.
    let mut table = routes::ipv4_table(1_000_000, 1);
    table.retain(|(a, len)| {
        let a = u32::from(*a);
        let outside = |net: u32, plen: u8| {
            let m = u32::MAX << (32 - plen.min(*len).max(1));
            a & m != net & m
        };
        outside(0xc612_0000, 15) && outside(0xa9fe_0000, 16)
    });
    let big = pe_snapshot(&table);
    let probes = routes::ipv4_probe_addrs(&table, 4096, 2);
    let frames: Vec<Vec<u8>> = probes
        .iter()
        .map(|a| edge_frame(Ipv4Addr::from(*a), FRAME_LEN))
        .collect();
    let vrf = big.vrf(big.vrf_by_name("vpc-a").expect("vpc-a"));
    eprintln!(
        "impose-1m-routes: vrf vpc-a holds {} routes, IPv4 LPM {} bytes",
        vrf.v4.len() + vrf.v6.len(),
        vrf.v4.memory_bytes()
    );
    bench_batches(c, "impose-1m-routes", &big, edge, &frames);
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = label_ops, imposition
}
criterion_main!(benches);

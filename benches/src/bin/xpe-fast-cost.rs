//! `xpe-fast-cost [RUNS] [CASE]`: what the XDP fast path's program (`ebpf/src/fast.rs`) costs per
//! frame, case by case, by the kernel's own clock. Needs root.
//!
//! The example PE's tables (examples/dx-pe.toml) are loaded into the program as
//! `xpe run --fast-path xdp` would, and each case's frame is run RUNS times (20,000 by default)
//! with BPF_PROG_TEST_RUN, one run per call so that every run sees the frame as sent (with a
//! repeat count the kernel would run the program again on the frame it had rewritten). The
//! kernel times each run; the figure includes its timer's own cost, the same for every case,
//! so read differences between cases and builds, not absolutes. Printed: the median and the
//! 10th percentile in nanoseconds, and the XDP action (4: forwarded in the kernel). With CASE
//! (swap, php, dispose, impose, impose6) only that case runs: a profiler then samples one path.
//!
//! Unlike the pps harness, nothing here crosses CPUs or touches a device: it isolates the
//! program's own work from the host's moods (benches/README.md, issue 17).

use std::net::Ipv4Addr;
use std::process::ExitCode;

use xpe_benches::{core_frame, edge_frame, pe_snapshot, EDGE_MAC, VGW_MAC};
use xpe_dataplane::xsk::fast::{Buffers, ByIngress};

/// The loopback interface: the ingress of every test run (`ByIngress`).
const LO: u32 = 1;
/// Frame length without the FCS, as the pps harness's 64-byte frames.
const FRAME_LEN: usize = 60;
/// How many turns the cases take (`main`).
const ROUNDS: usize = 10;

/// A UDP/IPv6 frame from the VLAN 101 neighbour to the example's remote 2001:db8:20::/48, the
/// shortest such frame (66 bytes).
fn edge_frame6() -> Vec<u8> {
    let mut dst = [0u8; 16];
    dst[..6].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0x20]);
    dst[15] = 5;
    let mut src = [0u8; 16];
    src[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    src[15] = 1;
    let builder = etherparse::PacketBuilder::ethernet2(VGW_MAC, EDGE_MAC)
        .single_vlan(101.try_into().expect("valid VLAN"))
        .ipv6(src, dst, 64)
        .udp(40000, 5001);
    let mut out = Vec::new();
    builder.write(&mut out, &[]).expect("write to a Vec");
    out
}

fn main() -> ExitCode {
    const USAGE: &str = "usage: xpe-fast-cost [RUNS] [CASE] (RUNS a number above 0; CASE one of \
                         swap, php, dispose, impose, impose6)";
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runs = match args.first().map(|a| a.parse::<usize>()) {
        None => 20_000,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let only = args.get(1).map(String::as_str);
    if args.len() > 2 {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    let snap = pe_snapshot(&[]);
    let programs = match ByIngress::load(&snap, Buffers::One) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("xpe-fast-cost: {e}");
            return ExitCode::FAILURE;
        }
    };
    let port = |name: &str| snap.port_by_name(name).expect("a port of the example");
    let vpc = Ipv4Addr::new(198, 18, 10, 5);
    let cases = [
        (
            "swap",
            port("core0"),
            core_frame(&[16002, 3001], vpc, FRAME_LEN),
        ),
        ("php", port("core0"), core_frame(&[16004], vpc, FRAME_LEN)),
        (
            "dispose",
            port("core0"),
            core_frame(&[1001], vpc, FRAME_LEN),
        ),
        (
            "impose",
            port("dx0"),
            edge_frame(Ipv4Addr::new(198, 19, 20, 5), FRAME_LEN),
        ),
        ("impose6", port("dx0"), edge_frame6()),
    ];
    if only.is_some_and(|o| !cases.iter().any(|(name, ..)| *name == o)) {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    let cases: Vec<_> = cases
        .into_iter()
        .filter(|(name, ..)| only.is_none_or(|o| o == *name))
        .collect();
    // The cases take turns, a tenth of the runs at a time, so that a drift of the machine's
    // speed during the run falls on all of them alike.
    let mut took: Vec<Vec<u64>> = vec![Vec::with_capacity(runs); cases.len()];
    let mut actions = vec![0; cases.len()];
    for round in 0..ROUNDS {
        let share = runs / ROUNDS + usize::from(round < runs % ROUNDS);
        for (i, (name, ingress, frame)) in cases.iter().enumerate() {
            let Some(program) = programs.program(*ingress) else {
                eprintln!("xpe-fast-cost: no program for port {}", ingress.0);
                return ExitCode::FAILURE;
            };
            for _ in 0..share {
                match program.timed_run(frame, LO) {
                    Ok((a, t)) => {
                        actions[i] = a;
                        took[i].push(t.as_nanos() as u64);
                    }
                    Err(e) => {
                        eprintln!("xpe-fast-cost: {name}: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            }
        }
    }
    println!(
        "case      action  median ns  p10 ns  mean p10-p90 ns   ({runs} runs each; action 4: forwarded)"
    );
    for (i, (name, ..)) in cases.iter().enumerate() {
        let t = &mut took[i];
        t.sort_unstable();
        let n = t.len();
        let middle = &t[n / 10..n - n / 10];
        let mean = middle.iter().sum::<u64>() as f64 / middle.len() as f64;
        println!(
            "{name:<9} {:>6}  {:>9}  {:>6}  {mean:>15.1}",
            actions[i],
            t[n / 2],
            t[n / 10]
        );
    }
    ExitCode::SUCCESS
}

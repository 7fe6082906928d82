//! Runs one pipeline scenario for a fixed number of batches, for profilers that count
//! (callgrind: instructions per packet) rather than time: `valgrind --tool=callgrind
//! target/release/examples/pipeline_profile impose 2000`.

use std::net::Ipv4Addr;

use xpe_benches::{core_frame, edge_frame, pe_snapshot};
use xpe_dataplane::pipeline::{process_batch, Counters, DropReason, Frame, Verdict};

fn main() {
    let mut args = std::env::args().skip(1);
    let scenario = args.next().unwrap_or_else(|| "impose".into());
    let rounds: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(1000);
    let snap = pe_snapshot(&[]);
    let vpc = Ipv4Addr::new(198, 18, 10, 5);
    let (port, template) = match scenario.as_str() {
        "swap" => ("core0", core_frame(&[16002, 3001], vpc, 64)),
        "php" => ("core0", core_frame(&[16004], vpc, 64)),
        "dispose" => ("core0", core_frame(&[1001], vpc, 64)),
        "impose" => ("dx0", edge_frame(Ipv4Addr::new(198, 19, 20, 5), 64)),
        other => {
            eprintln!("unknown scenario {other}: swap, php, dispose or impose");
            std::process::exit(2);
        }
    };
    let port = snap.port_by_name(port).expect("port in the example");
    let mut counters = Counters::new(snap.ports().len());
    let mut bufs = vec![vec![0u8; 256 + 2048]; 64];
    let mut verdicts = [Verdict::Drop(DropReason::Truncated); 64];
    for _ in 0..rounds {
        for buf in &mut bufs {
            buf[256..256 + template.len()].copy_from_slice(&template);
        }
        let mut frames: Vec<Frame<'_>> = bufs
            .iter_mut()
            .filter_map(|b| Frame::new(b, 256, template.len()))
            .collect();
        process_batch(&snap, port, &mut frames, &mut verdicts, &mut counters);
    }
    println!(
        "{scenario}: {} forwarded of {}",
        counters.forwarded,
        rounds * 64
    );
}

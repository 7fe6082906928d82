//! `xpe-fwd`: the trivial AF_XDP forwarder, our own I/O ceiling (issue 3).
//!
//! It runs xpe's worker loop (the same UMEM, rings, batching, kicks and fill refills as
//! `xpe run`) with a stage that only rewrites the Ethernet addresses: frames that arrive on
//! IN leave on OUT with the destination MAC given and OUT's own MAC as source. Whatever
//! `xpe run` spends per packet above this is the pipeline's cost.
//!
//! ```sh
//! ip netns exec DUT xpe-fwd in0 out0 --dst-mac 02:00:00:00:00:02 --cores 1 --duration 10
//! ```
//! On exit (SIGINT, SIGTERM or `--duration`) it prints the worker's figures, as one JSON
//! object with `--json`.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use xpe_dataplane::pipeline::{Counters, DropReason, Frame, Verdict};
use xpe_dataplane::tables::PortId;
use xpe_dataplane::wire::ethernet::MacAddr;
use xpe_dataplane::xsk::netdev::Netdev;
use xpe_dataplane::xsk::runtime::{Plan, Runtime};
use xpe_dataplane::xsk::steer::Mode;
use xpe_dataplane::xsk::worker::{Stage, WorkerStats};

/// Rewrites the MACs of frames from port 0 and sends them out of port 1.
struct MacRewrite {
    header: [u8; 12],
}

impl Stage for MacRewrite {
    #[inline]
    fn batch(
        &mut self,
        ingress: PortId,
        frames: &mut [Frame<'_>],
        verdicts: &mut [Verdict],
        counters: &mut Counters,
    ) {
        for (frame, verdict) in frames.iter_mut().zip(verdicts.iter_mut()) {
            *verdict = match frame.data_mut().get_mut(..12) {
                Some(macs) if ingress == PortId(0) => {
                    macs.copy_from_slice(&self.header);
                    counters.forwarded += 1;
                    Verdict::Forward(PortId(1))
                }
                Some(_) => Verdict::Drop(DropReason::UnknownPort),
                None => Verdict::Drop(DropReason::Truncated),
            };
        }
    }
}

struct Args {
    input: String,
    output: String,
    dst: MacAddr,
    cores: Option<Vec<usize>>,
    mode: Mode,
    duration: Option<Duration>,
    json: bool,
}

const USAGE: &str = "usage: xpe-fwd IN OUT --dst-mac MAC [--cores N[,N..]] [--xdp-mode native|skb|auto] [--duration SECS] [--json]";

fn parse() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mut pos = Vec::new();
    let (mut dst, mut cores, mut mode, mut duration, mut json) =
        (None, None, Mode::Auto, None, false);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--dst-mac" => {
                dst = Some(
                    value("--dst-mac")?
                        .parse::<MacAddr>()
                        .map_err(|_| "--dst-mac: not a MAC address".to_string())?,
                )
            }
            "--cores" => {
                cores = Some(
                    value("--cores")?
                        .split(',')
                        .map(|c| {
                            c.trim()
                                .parse::<usize>()
                                .map_err(|_| format!("--cores: \"{c}\" is not a core number"))
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                )
            }
            "--xdp-mode" => {
                mode = match value("--xdp-mode")?.as_str() {
                    "native" => Mode::Native,
                    "skb" => Mode::Skb,
                    "auto" => Mode::Auto,
                    other => {
                        return Err(format!(
                            "--xdp-mode: \"{other}\" is not native, skb or auto"
                        ))
                    }
                }
            }
            "--duration" => {
                let secs: f64 = value("--duration")?
                    .parse()
                    .map_err(|_| "--duration: not a number of seconds".to_string())?;
                duration = Some(Duration::from_secs_f64(secs));
            }
            "--json" => json = true,
            "-h" | "--help" => return Err(USAGE.into()),
            other if other.starts_with('-') => {
                return Err(format!("unknown option {other}\n{USAGE}"))
            }
            other => pos.push(other.to_string()),
        }
    }
    let [input, output]: [String; 2] = pos.try_into().map_err(|_| USAGE.to_string())?;
    Ok(Args {
        input,
        output,
        dst: dst.ok_or(format!("--dst-mac is required\n{USAGE}"))?,
        cores,
        mode,
        duration,
        json,
    })
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("xpe-fwd: {e}");
            return ExitCode::from(2);
        }
    };
    let mut ports = Vec::new();
    for name in [&args.input, &args.output] {
        match Netdev::read(name) {
            Some(d) if d.up => ports.push(d),
            Some(_) => {
                eprintln!("xpe-fwd: interface {name} is down (ip link set {name} up)");
                return ExitCode::FAILURE;
            }
            None => {
                eprintln!("xpe-fwd: interface {name} does not exist in this network namespace");
                return ExitCode::FAILURE;
            }
        }
    }
    let Some(src) = ports[1].mac else {
        eprintln!("xpe-fwd: cannot read the MAC of {}", args.output);
        return ExitCode::FAILURE;
    };
    let mut header = [0u8; 12];
    header[..6].copy_from_slice(&args.dst.0);
    header[6..].copy_from_slice(&src.0);
    let plan = Plan {
        interfaces: ports
            .iter()
            .enumerate()
            .map(|(i, d)| (d.name.clone(), PortId(i as u16), d.rx_queues))
            .collect(),
        cores: args.cores.clone(),
        mode: args.mode,
        jumbo: false,
        policer: Default::default(),
        fast_path: false,
    };
    let runtime = match Runtime::start_with(&plan, |_| MacRewrite { header }) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("xpe-fwd: {e}");
            return ExitCode::FAILURE;
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(sig, stop.clone()) {
            eprintln!("xpe-fwd: cannot install a signal handler: {e}");
            return ExitCode::FAILURE;
        }
    }
    eprintln!("xpe-fwd: {} -> {} running", args.input, args.output);
    let t0 = Instant::now();
    while !stop.load(Ordering::Relaxed) && args.duration.is_none_or(|d| t0.elapsed() < d) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let stats = runtime.stop();
    report(&stats, t0.elapsed(), args.json);
    ExitCode::SUCCESS
}

fn report(stats: &[WorkerStats], took: Duration, json: bool) {
    for (i, w) in stats.iter().enumerate() {
        let l = &w.loop_stats;
        let (cpp, avg) = (l.busy_cycles_per_packet(), l.average_batch());
        if json {
            println!(
                "{{\"worker\":{i},\"core\":{},\"packets\":{},\"forwarded\":{},\"batches\":{},\"average_batch\":{avg:.2},\"busy_cycles\":{},\"busy_cycles_per_packet\":{cpp:.1},\"tx_ring_full\":{},\"frames\":{},\"frames_accounted\":{},\"seconds\":{:.3}}}",
                w.core.map_or("null".into(), |c| c.to_string()),
                l.packets,
                w.counters.forwarded,
                l.batches,
                l.busy_cycles,
                l.tx_ring_full,
                w.frames,
                w.ledger.total(),
                took.as_secs_f64()
            );
        } else {
            println!(
                "worker {i}: {} packets in {} batches (avg {avg:.1}), {cpp:.0} busy cycles/packet, {} forwarded, {} tx-ring-full; frames {} of {} accounted",
                l.packets,
                l.batches,
                w.counters.forwarded,
                l.tx_ring_full,
                w.ledger.total(),
                w.frames
            );
        }
    }
}

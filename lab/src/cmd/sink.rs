//! `xpe sink`: the receiving end of a measurement. Attaches the counting XDP drop program
//! ([`crate::bpf::sink`]) to an interface, prints the received rate every second and a
//! summary (frames, bytes, rate) when the duration ends or on SIGINT/SIGTERM, then detaches.
//! On a veth it is also what lets the peer's `xpe gen` frames in at all (docs/gen.md).
//!
//! ```sh
//! ip netns exec sink xpe sink --dev veth1 --duration 10
//! ```

use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;
use xpe_dataplane::xsk::netdev::Netdev;
use xpe_dataplane::xsk::steer::SteerError;

use super::gen::{parse_duration, rate, wait_until_stopped, StopOnSignals, Ticker};
use super::{Failure, XdpModeArg};
use crate::bpf::sink::{Sink, SinkCounters};

/// Arguments of `xpe sink`.
#[derive(Debug, Clone, Args)]
pub struct SinkArgs {
    /// The interface to count and drop on (in this network namespace).
    #[arg(long, value_name = "IFACE")]
    pub dev: String,
    /// Stop after this many seconds (fractions allowed) [default: at SIGINT or SIGTERM].
    #[arg(long, value_name = "SECS")]
    pub duration: Option<String>,
    /// How the program attaches: native (driver), skb (generic), or auto (native, else skb).
    #[arg(long, value_enum, default_value = "auto")]
    pub xdp_mode: XdpModeArg,
    /// Print the summary as one JSON object (the per-second lines still go to stderr).
    #[arg(long)]
    pub json: bool,
}

/// `xpe sink`: attaches, counts until the duration ends or a signal arrives, detaches, prints
/// the summary on `out` and the per-second lines on `err`.
pub fn run(out: &mut dyn Write, err: &mut dyn Write, args: &SinkArgs) -> Result<(), Failure> {
    let duration = args.duration.as_deref().map(parse_duration).transpose()?;
    if !xpe_dataplane::xsk::netdev::is_root() {
        return Err(
            Failure::new("xpe sink needs root (it attaches an XDP program)")
                .hint("run it with sudo"),
        );
    }
    if Netdev::read(&args.dev).is_none() {
        return Err(Failure::new(format!(
            "interface {} does not exist in this network namespace",
            args.dev
        ))
        .hint("run xpe in the namespace that has it (ip netns exec NS xpe sink ...)"));
    }
    let mode = args.xdp_mode.into();
    let sink = Sink::attach(&args.dev, mode).map_err(attach_failure)?;

    let stop = StopOnSignals::install()?;
    let (seconds, total) = count(&sink, duration, stop.flag(), err)?;
    drop(stop);
    let mode = sink.mode();
    drop(sink);
    let pps = if seconds > 0.0 {
        total.frames as f64 / seconds
    } else {
        0.0
    };
    let text = if args.json {
        json!({
            "dev": args.dev,
            "mode": mode.to_string(),
            "seconds": seconds,
            "frames": total.frames,
            "bytes": total.bytes,
            "pps": pps,
        })
        .to_string()
    } else {
        format!(
            "xpe sink on {}: {} frames, {} bytes in {seconds:.3} s ({})",
            args.dev,
            total.frames,
            total.bytes,
            rate(pps)
        )
    };
    writeln!(out, "{text}").map_err(|e| Failure::new(format!("cannot write the summary: {e}")))
}

/// Counts until the duration ends or `stop` is set; returns the seconds and the counts.
fn count(
    sink: &Sink,
    duration: Option<Duration>,
    stop: &AtomicBool,
    err: &mut dyn Write,
) -> Result<(f64, SinkCounters), Failure> {
    let read = || sink.counters().map_err(|e| Failure::new(e.to_string()));
    let first = read()?;
    let start = Instant::now();
    let mut ticker = Ticker::new(err, start);
    let mut last = first;
    wait_until_stopped(start, duration, stop, || {
        if let Some((at, dt)) = ticker.due() {
            let c = read()?;
            ticker.line(&format!(
                "{at:7.1} s  {:>10} received  {:>14} frames",
                rate(c.frames.saturating_sub(last.frames) as f64 / dt),
                c.frames.saturating_sub(first.frames)
            ));
            last = c;
        }
        Ok(())
    })?;
    let seconds = start.elapsed().as_secs_f64();
    let end = read()?;
    ticker.finish();
    Ok((
        seconds,
        SinkCounters {
            frames: end.frames.saturating_sub(first.frames),
            bytes: end.bytes.saturating_sub(first.bytes),
        },
    ))
}

/// One sentence and a hint for a program that would not load or attach.
pub(crate) fn attach_failure(e: SteerError) -> Failure {
    let text = e.to_string();
    match e {
        SteerError::Attach { ifname, .. } => Failure::new(text).hint(format!(
            "another XDP program may be attached to {ifname} (`ip link show {ifname}`); try --xdp-mode skb"
        )),
        SteerError::Load(_) => Failure::new(text).hint("run as root (CAP_BPF and CAP_NET_ADMIN)"),
        _ => Failure::new(text),
    }
}

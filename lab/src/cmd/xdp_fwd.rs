//! `xpe xdp-fwd`: the pps harness's in-kernel forwarder, "the kernel's own ceiling". Attaches
//! the XDP redirect program ([`crate::bpf::redirect`]) to an ingress interface: every
//! frame arriving there gets the given Ethernet addresses and goes out of the egress interface
//! through a DEVMAP, never leaving the kernel. Prints the rate every second and a summary
//! (frames redirected, dropped, what the egress veth took) at the end of the duration or on
//! SIGINT/SIGTERM, then detaches. A bench tool, hidden from `xpe --help` (docs/gen.md).
//!
//! ```sh
//! ip netns exec dut xpe xdp-fwd in0 out0 --dst-mac 02:00:00:00:00:02 --duration 5 --json
//! ```

use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;
use xpe_dataplane::wire::ethernet::MacAddr;
use xpe_dataplane::xsk::netdev::Netdev;
use xpe_dataplane::xsk::steer::Mode;

use super::gen::{parse_duration, rate, wait_until_stopped, StopOnSignals, Ticker};
use super::{Failure, XdpModeArg};
use crate::bpf::gen::{xmit_counters, XmitCounters};
use crate::bpf::redirect::{Redirect, RedirectCounters};

/// Arguments of `xpe xdp-fwd`.
#[derive(Debug, Clone, Args)]
pub struct XdpFwdArgs {
    /// The ingress interface: every frame arriving on it is forwarded (in this namespace).
    #[arg(value_name = "IN")]
    pub input: String,
    /// The egress interface frames are redirected to (in this namespace).
    #[arg(value_name = "OUT")]
    pub output: String,
    /// Ethernet destination written into every frame (the next hop's MAC).
    #[arg(long, value_name = "MAC")]
    pub dst_mac: String,
    /// Ethernet source written into every frame [default: OUT's MAC].
    #[arg(long, value_name = "MAC")]
    pub src_mac: Option<String>,
    /// Stop after this many seconds (fractions allowed) [default: at SIGINT or SIGTERM].
    #[arg(long, value_name = "SECS")]
    pub duration: Option<String>,
    /// Read every frame's Ethernet destination first and drop the frames not addressed to IN,
    /// as a forwarder must (the default writes without reading the frame).
    #[arg(long)]
    pub check_dst: bool,
    /// How the program attaches to IN: native (driver), skb (generic), or auto (native, else skb).
    #[arg(long, value_enum, default_value = "native")]
    pub xdp_mode: XdpModeArg,
    /// Print the summary as one JSON object (the per-second lines still go to stderr).
    #[arg(long)]
    pub json: bool,
}

/// What a run did (deltas over the run).
#[derive(Debug, Clone, Copy)]
struct Totals {
    seconds: f64,
    stopped_by: &'static str,
    program: RedirectCounters,
    /// OUT's XDP transmit counters, when it has them (a veth does).
    out: Option<XmitCounters>,
}

impl Totals {
    /// Frames the program redirected that OUT neither took nor refused: frames the kernel
    /// dropped in the redirect (OUT cannot transmit XDP frames, or is down).
    fn lost(&self) -> Option<u64> {
        self.out.map(|o| {
            self.program
                .redirected
                .saturating_sub(o.xmit.saturating_add(o.errors))
        })
    }

    fn per_second(&self, n: u64) -> f64 {
        if self.seconds > 0.0 {
            n as f64 / self.seconds
        } else {
            0.0
        }
    }
}

fn parse_mac(option: &str, s: &str) -> Result<MacAddr, Failure> {
    s.trim().parse().map_err(|_| {
        Failure::new(format!(
            "{option} must be a MAC address like 02:00:00:00:01:01, not '{s}'"
        ))
    })
}

/// The interface `name`, which must exist here and be up.
fn interface(name: &str, role: &str) -> Result<Netdev, Failure> {
    let dev = Netdev::read(name).ok_or_else(|| {
        Failure::new(format!(
            "interface {name} ({role}) does not exist in this network namespace"
        ))
        .hint("run xpe in the namespace that has it (ip netns exec NS xpe xdp-fwd ...)")
    })?;
    if !dev.up {
        return Err(Failure::new(format!("interface {name} ({role}) is down"))
            .hint(format!("bring it up: ip link set {name} up")));
    }
    Ok(dev)
}

/// `xpe xdp-fwd`: checks, attaches, forwards until the duration ends or a signal arrives,
/// detaches, prints the summary on `out` and the per-second lines on `err`.
pub fn run(out: &mut dyn Write, err: &mut dyn Write, args: &XdpFwdArgs) -> Result<(), Failure> {
    let dst_mac = parse_mac("--dst-mac", &args.dst_mac)?;
    let src_mac = args
        .src_mac
        .as_deref()
        .map(|s| parse_mac("--src-mac", s))
        .transpose()?;
    let duration = args.duration.as_deref().map(parse_duration).transpose()?;
    if !xpe_dataplane::xsk::netdev::is_root() {
        return Err(
            Failure::new("xpe xdp-fwd needs root (it attaches an XDP program)")
                .hint("run it with sudo"),
        );
    }
    let input = interface(&args.input, "IN")?;
    let output = interface(&args.output, "OUT")?;
    if !output.carrier {
        return Err(Failure::new(format!(
            "interface {} (OUT) has no carrier: the other end of the link (its veth peer) is down",
            output.name
        ))
        .hint("bring the peer up: ip link set PEER up (in its namespace)"));
    }
    let src_mac = match (src_mac, output.mac) {
        (Some(m), _) | (None, Some(m)) => m,
        (None, None) => {
            return Err(Failure::new(format!(
                "interface {} (OUT) has no MAC address to send from: give --src-mac",
                output.name
            )))
        }
    };
    let check_for = match (args.check_dst, input.mac) {
        (false, _) => None,
        (true, Some(mac)) => Some(mac),
        (true, None) => {
            return Err(Failure::new(format!(
                "interface {} (IN) has no MAC address for --check-dst to check frames against",
                input.name
            )))
        }
    };
    let mode = args.xdp_mode.into();
    let redirect = Redirect::attach(&input, &output, dst_mac, src_mac, check_for, mode)
        .map_err(super::sink::attach_failure)?;
    // What OUT took: its XDP transmit counters, which a veth has and which count the native
    // redirect only (in skb mode the frames go through OUT's queue as skbs).
    let out_before = match redirect.mode() {
        Mode::Native => xmit_counters(&output.name).ok(),
        _ => None,
    };

    let stop = StopOnSignals::install()?;
    let totals = forward(&redirect, duration, out_before, stop.flag(), err)?;
    drop(stop);
    let mode = redirect.mode();
    drop(redirect);
    summary(out, args, dst_mac, src_mac, &mode.to_string(), &totals)
        .map_err(|e| Failure::new(format!("cannot write the summary: {e}")))
}

/// Forwards until the duration ends or `stop` is set; returns the totals.
fn forward(
    redirect: &Redirect,
    duration: Option<Duration>,
    out_before: Option<XmitCounters>,
    stop: &AtomicBool,
    err: &mut dyn Write,
) -> Result<Totals, Failure> {
    let read = || redirect.counters().map_err(|e| Failure::new(e.to_string()));
    let read_out = || out_before.and_then(|_| xmit_counters(redirect.output()).ok());
    let first = read()?;
    let start = Instant::now();
    let mut ticker = Ticker::new(err, start);
    let mut last = first;
    let mut last_out = out_before;
    let mut warned = false;
    let by_duration = wait_until_stopped(start, duration, stop, || {
        let Some((at, dt)) = ticker.due() else {
            return Ok(());
        };
        let c = read()?;
        let now_out = read_out();
        let redirected = c.redirected.saturating_sub(first.redirected);
        let mut line = format!(
            "{at:7.1} s  {:>10} redirected",
            rate(c.redirected.saturating_sub(last.redirected) as f64 / dt)
        );
        if let (Some(now), Some(then), Some(before)) = (now_out, last_out, out_before) {
            line.push_str(&format!(
                "  {:>10} sent by {}",
                rate(now.xmit.saturating_sub(then.xmit) as f64 / dt),
                redirect.output()
            ));
            let offered = (now.xmit + now.errors).saturating_sub(before.xmit + before.errors);
            if redirected > 0 && offered == 0 && !warned {
                warned = true;
                ticker.line(&format!(
                    "note: {out} took none of the {redirected} frames redirected to it: a veth transmits XDP frames only when its peer has an XDP program or GRO on (`xpe sink --dev PEER` or `ethtool -K PEER gro on` in the peer's namespace)",
                    out = redirect.output()
                ));
            }
        }
        line.push_str(&format!("  {redirected:>14} frames redirected"));
        ticker.line(&line);
        last = c;
        last_out = now_out;
        Ok(())
    })?;
    let seconds = start.elapsed().as_secs_f64();
    let end = read()?;
    let end_out = read_out();
    ticker.finish();
    Ok(Totals {
        seconds,
        stopped_by: if by_duration { "duration" } else { "signal" },
        program: RedirectCounters {
            redirected: end.redirected.saturating_sub(first.redirected),
            too_short: end.too_short.saturating_sub(first.too_short),
            no_target: end.no_target.saturating_sub(first.no_target),
            not_for_in: end.not_for_in.saturating_sub(first.not_for_in),
        },
        out: out_before.zip(end_out).map(|(b, e)| XmitCounters {
            xmit: e.xmit.saturating_sub(b.xmit),
            errors: e.errors.saturating_sub(b.errors),
        }),
    })
}

/// The summary: text, or one JSON object with the fields docs/gen.md lists.
fn summary(
    out: &mut dyn Write,
    args: &XdpFwdArgs,
    dst_mac: MacAddr,
    src_mac: MacAddr,
    mode: &str,
    t: &Totals,
) -> std::io::Result<()> {
    let p = t.program;
    let pps = t.per_second(p.redirected);
    if args.json {
        let v = json!({
            "in": args.input,
            "out": args.output,
            "mode": mode,
            "dst_mac": dst_mac.to_string(),
            "src_mac": src_mac.to_string(),
            "seconds": t.seconds,
            "stopped_by": t.stopped_by,
            "redirected": p.redirected,
            "too_short": p.too_short,
            "no_target": p.no_target,
            "not_for_in": p.not_for_in,
            "check_dst": args.check_dst,
            "sent": t.out.map(|o| o.xmit),
            "refused": t.out.map(|o| o.errors),
            "lost": t.lost(),
            "pps": pps,
            "sent_pps": t.out.map(|o| t.per_second(o.xmit)),
        });
        return writeln!(out, "{v}");
    }
    let dev = &args.output;
    writeln!(
        out,
        "xpe xdp-fwd {} -> {dev} ({mode}): {:.3} s, stopped by {}",
        args.input, t.seconds, t.stopped_by
    )?;
    writeln!(
        out,
        "  redirected {:>14}  (Ethernet set to {dst_mac} from {src_mac}, redirected to {dev})",
        p.redirected
    )?;
    writeln!(
        out,
        "  too short  {:>14}  (dropped: shorter than an Ethernet header)",
        p.too_short
    )?;
    if args.check_dst {
        writeln!(
            out,
            "  not for IN {:>14}  (dropped: Ethernet destination not {}'s)",
            p.not_for_in, args.input
        )?;
    }
    if p.no_target > 0 {
        writeln!(
            out,
            "  no target  {:>14}  (dropped: the DEVMAP slot was empty)",
            p.no_target
        )?;
    }
    if let Some(o) = t.out {
        writeln!(
            out,
            "  sent       {:>14}  (xdp_xmit of {dev}: its peer took them)",
            o.xmit
        )?;
        writeln!(
            out,
            "  refused    {:>14}  (xdp_xmit_errors of {dev}: its peer's ring was full)",
            o.errors
        )?;
        writeln!(
            out,
            "  lost       {:>14}  (redirected but in neither counter of {dev})",
            t.lost().unwrap_or(0)
        )?;
    }
    write!(out, "  rate       {} redirected", rate(pps))?;
    if let Some(o) = t.out {
        write!(out, ", {} sent", rate(t.per_second(o.xmit)))?;
    }
    writeln!(out)
}

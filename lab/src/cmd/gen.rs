//! `xpe gen`: a packet generator for labs and measurements, on the XDP live-frames mode of
//! BPF_PROG_TEST_RUN ([`crate::bpf::gen`]). It sends one template (Ethernet, VLAN tags,
//! an MPLS label stack, IPv4 or IPv6, UDP; [`crate::template`]) in any number of flows out of
//! a veth, paced to a rate or as fast as one core goes, prints the rate every second and a
//! summary that counts from the device's own XDP transmit counters (docs/gen.md).
//!
//! ```sh
//! xpe gen --dev veth0 --src 198.18.0.1 --dst 198.19.0.1 --labels 16001/5/64,2001 --size 64 \
//!         --flows 16 --duration 5 --rate 1000000
//! ```
//!
//! Every argument is checked before anything is loaded; a bad one is one sentence naming the
//! argument and its allowed range, exit status 1.

use std::io::{IsTerminal, Write};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;
use xpe_dataplane::wire::ethernet::MacAddr;
use xpe_dataplane::wire::mpls::{Label, Tc};
use xpe_dataplane::wire::vlan::{Pcp, VlanId};
use xpe_dataplane::xsk::netdev::Netdev;

use super::Failure;
use crate::bpf::gen::{
    xmit_counters, GenCounters, GenError, Generator, XmitCounters, MAX_BATCH, MAX_LIVE_FRAME,
};
use crate::template::{
    LabelSpec, Spec, Tag, Template, TemplateError, Vary, MAX_FLOWS, MAX_FRAME, MAX_LABELS,
    MAX_TAGS, MIN_FRAME,
};

/// Ethernet header plus one VLAN tag: what a veth adds to the receiver's MTU for the longest
/// frame it takes from `ndo_xdp_xmit`.
const L2_OVERHEAD: usize = 18;
/// The highest rate `--rate` takes (frames per second); far above what one core reaches.
const MAX_RATE: u64 = 100_000_000;
/// The longest `--duration` (seconds): a year.
const MAX_DURATION: f64 = 365.0 * 86400.0;
/// A paced run sends in chunks of this share of a second's frames (1 ms): bursts stay well
/// below a veth ring (256) or an AF_XDP ring (2048) at rates a DUT can take.
const PACED_CHUNKS_PER_SECOND: u64 = 1000;
/// An unpaced run sizes each BPF_PROG_TEST_RUN call to take about this long: long enough
/// that the call's fixed cost does not show, short enough that the clock and the per-second
/// line are looked at often (a signal interrupts a call at once).
const RUN_SLICE: Duration = Duration::from_millis(200);

/// Arguments of `xpe gen`. Values are taken as text and checked by [`parse`], so that every
/// bad value gets the same kind of sentence (and exit status 1).
#[derive(Debug, Clone, Default, Args)]
pub struct GenArgs {
    /// The interface to send on (a veth in this network namespace).
    #[arg(long, value_name = "IFACE")]
    pub dev: String,
    /// Source address of flow 0 (IPv4 or IPv6; flow f adds f if --vary has src).
    #[arg(long, value_name = "IP")]
    pub src: String,
    /// Destination address of flow 0 (same IP version as --src; flow f adds f if --vary has dst).
    #[arg(long, value_name = "IP")]
    pub dst: String,
    /// Ethernet source [default: the interface's MAC].
    #[arg(long, value_name = "MAC")]
    pub src_mac: Option<String>,
    /// Ethernet destination [default: the veth peer's MAC, if the peer is in this namespace].
    #[arg(long, value_name = "MAC")]
    pub dst_mac: Option<String>,
    /// A VLAN tag, VID 1-4094 and PCP 0-7 (default 0); given twice: 802.1ad S-tag, then 802.1Q C-tag.
    #[arg(long, value_name = "VID[:PCP]")]
    pub vlan: Vec<String>,
    /// MPLS label stack, outermost first: LABEL[/TC[/TTL]] per entry, comma separated (TC 0, TTL 64 by default).
    #[arg(long, value_name = "LABEL[/TC[/TTL]],..")]
    pub labels: Option<String>,
    /// IPv4 TTL or IPv6 hop limit (0-255).
    #[arg(long, value_name = "N", default_value = "64")]
    pub ttl: String,
    /// UDP source port of flow 0 (flow f adds f if --vary has ports).
    #[arg(long, value_name = "PORT", default_value = "1024")]
    pub sport: String,
    /// UDP destination port of flow 0 (flow f adds f if --vary has ports).
    #[arg(long, value_name = "PORT", default_value = "9")]
    pub dport: String,
    /// Frame length in bytes without the FCS (60-9000; live frames take at most 3408).
    #[arg(long, value_name = "BYTES", default_value = "60")]
    pub size: String,
    /// Number of flows (1-65536).
    #[arg(long, value_name = "N", default_value = "1")]
    pub flows: String,
    /// Which fields flow f adds f to: a comma list of src, dst and ports.
    #[arg(long, value_name = "FIELD,..", default_value = "src,ports")]
    pub vary: String,
    /// Stop after this many frames.
    #[arg(long, value_name = "N")]
    pub count: Option<String>,
    /// Stop after this many seconds (fractions allowed).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<String>,
    /// Frames per second to pace to [default: as fast as one core goes].
    #[arg(long, value_name = "PPS")]
    pub rate: Option<String>,
    /// Frames the kernel runs through the program between two flushes to the device (1-256).
    #[arg(long, value_name = "N", default_value = "64")]
    pub batch: String,
    /// Print the summary as one JSON object (the per-second lines still go to stderr).
    #[arg(long)]
    pub json: bool,
}

/// When a run ends (besides SIGINT or SIGTERM, which always end it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stop {
    /// After this many frames.
    Count(u64),
    /// After this long.
    Duration(Duration),
    /// Only on a signal.
    Signal,
}

/// `xpe gen`'s arguments, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Interface.
    pub dev: String,
    /// Ethernet source, if given.
    pub src_mac: Option<MacAddr>,
    /// Ethernet destination, if given.
    pub dst_mac: Option<MacAddr>,
    /// The frame: everything but the MACs, which come from `src_mac`/`dst_mac` or the
    /// interface once it is looked up (its `src_mac`/`dst_mac` are unset until then).
    pub spec: Spec,
    /// When to stop.
    pub stop: Stop,
    /// Frames per second, if paced.
    pub rate: Option<u64>,
    /// Batch size.
    pub batch: u32,
    /// JSON summary.
    pub json: bool,
}

/// Checks every argument; the first bad one is the error.
pub fn parse(a: &GenArgs) -> Result<Plan, Failure> {
    let src = parse_ip("--src", &a.src)?;
    let dst = parse_ip("--dst", &a.dst)?;
    if src.is_ipv4() != dst.is_ipv4() {
        return Err(Failure::new(format!(
            "--src {src} and --dst {dst} must both be IPv4 or both be IPv6"
        )));
    }
    let mac = |name: &str, v: &Option<String>| -> Result<Option<MacAddr>, Failure> {
        v.as_deref()
            .map(|s| {
                s.parse::<MacAddr>().map_err(|_| {
                    Failure::new(format!(
                        "{name} must be a MAC address like 02:00:00:00:01:01, not '{s}'"
                    ))
                })
            })
            .transpose()
    };
    if a.vlan.len() > MAX_TAGS {
        return Err(Failure::new(format!(
            "--vlan is given {} times: a frame carries at most {MAX_TAGS} tags (802.1ad S-tag, then 802.1Q C-tag)",
            a.vlan.len()
        )));
    }
    let tags = a
        .vlan
        .iter()
        .map(|v| parse_vlan(v))
        .collect::<Result<Vec<_>, _>>()?;
    let labels = match &a.labels {
        Some(s) => parse_labels(s)?,
        None => Vec::new(),
    };
    let count = a
        .count
        .as_deref()
        .map(|s| number("--count", s, 1, u64::MAX, "a number of frames"))
        .transpose()?;
    let duration = a.duration.as_deref().map(parse_duration).transpose()?;
    let stop =
        match (count, duration) {
            (Some(_), Some(_)) => return Err(Failure::new(
                "--count and --duration cannot both be given: the generator stops at one of them",
            )),
            (Some(n), None) => Stop::Count(n),
            (None, Some(d)) => Stop::Duration(d),
            (None, None) => Stop::Signal,
        };
    Ok(Plan {
        dev: a.dev.clone(),
        src_mac: mac("--src-mac", &a.src_mac)?,
        dst_mac: mac("--dst-mac", &a.dst_mac)?,
        spec: Spec {
            src_mac: MacAddr::default(),
            dst_mac: MacAddr::default(),
            tags,
            labels,
            src,
            dst,
            ttl: number("--ttl", &a.ttl, 0, 255, "a TTL")? as u8,
            sport: number("--sport", &a.sport, 0, 65535, "a UDP port")? as u16,
            dport: number("--dport", &a.dport, 0, 65535, "a UDP port")? as u16,
            size: number(
                "--size",
                &a.size,
                MIN_FRAME as u64,
                MAX_FRAME as u64,
                "a frame length in bytes (without the FCS)",
            )? as usize,
            flows: number("--flows", &a.flows, 1, u64::from(MAX_FLOWS), "a flow count")? as u32,
            vary: parse_vary(&a.vary)?,
        },
        stop,
        rate: a
            .rate
            .as_deref()
            .map(|s| number("--rate", s, 1, MAX_RATE, "frames per second"))
            .transpose()?,
        batch: number("--batch", &a.batch, 1, u64::from(MAX_BATCH), "a batch size")? as u32,
        json: a.json,
    })
}

/// An integer in `min..=max`, or the sentence saying so.
fn number(name: &str, s: &str, min: u64, max: u64, what: &str) -> Result<u64, Failure> {
    match s.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(Failure::new(if max == u64::MAX {
            format!("{name} must be {what}, {min} or more, not '{s}'")
        } else {
            format!("{name} must be {what} from {min} to {max}, not '{s}'")
        })),
    }
}

fn parse_ip(name: &str, s: &str) -> Result<IpAddr, Failure> {
    s.trim().parse().map_err(|_| {
        Failure::new(format!(
            "{name} must be an IPv4 or IPv6 address (like 198.18.0.1 or 2001:db8::1), not '{s}'"
        ))
    })
}

/// `--duration SECS`: above 0, at most a year, fractions allowed.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, Failure> {
    match s.trim().parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs <= MAX_DURATION => Ok(Duration::from_secs_f64(secs)),
        _ => Err(Failure::new(format!(
            "--duration must be a number of seconds above 0 and at most {MAX_DURATION} (like 5 or 0.5), not '{s}'"
        ))),
    }
}

/// `FIELD,..` with FIELD one of `src`, `dst`, `ports`; at least one.
fn parse_vary(s: &str) -> Result<Vary, Failure> {
    let mut vary = Vary {
        src: false,
        dst: false,
        ports: false,
    };
    for field in s.split(',') {
        let slot = match field.trim() {
            "src" => &mut vary.src,
            "dst" => &mut vary.dst,
            "ports" => &mut vary.ports,
            _ => {
                return Err(Failure::new(format!(
                    "--vary must be a comma list of src, dst and ports (like src,ports or dst), not '{s}'"
                )))
            }
        };
        *slot = true;
    }
    Ok(vary)
}

/// `VID[:PCP]`.
fn parse_vlan(s: &str) -> Result<Tag, Failure> {
    let bad = || {
        Failure::new(format!(
            "--vlan must be VID[:PCP] with VID from 1 to 4094 and PCP from 0 to 7, not '{s}'"
        ))
    };
    let (vid, pcp) = match s.split_once(':') {
        Some((v, p)) => (v, Some(p)),
        None => (s, None),
    };
    let vid = vid
        .trim()
        .parse::<u16>()
        .ok()
        .and_then(VlanId::new)
        .ok_or_else(bad)?;
    let pcp = match pcp {
        Some(p) => p
            .trim()
            .parse::<u8>()
            .ok()
            .and_then(Pcp::new)
            .ok_or_else(bad)?,
        None => Pcp::default(),
    };
    Ok(Tag { vid, pcp })
}

/// `LABEL[/TC[/TTL]],...`, outermost first.
fn parse_labels(s: &str) -> Result<Vec<LabelSpec>, Failure> {
    let entries: Vec<&str> = s.split(',').collect();
    if entries.len() > MAX_LABELS {
        return Err(Failure::new(format!(
            "--labels has {} entries: a stack has at most {MAX_LABELS}",
            entries.len()
        )));
    }
    entries
        .into_iter()
        .map(|e| {
            let bad = || {
                Failure::new(format!(
                    "--labels entry '{e}' must be LABEL[/TC[/TTL]] with LABEL from 0 to 1048575, TC from 0 to 7 and TTL from 0 to 255"
                ))
            };
            let mut parts = e.split('/');
            let label = parts
                .next()
                .and_then(|l| l.trim().parse::<u32>().ok())
                .and_then(Label::new)
                .ok_or_else(bad)?;
            let tc = match parts.next() {
                Some(t) => t.trim().parse::<u8>().ok().and_then(Tc::new).ok_or_else(bad)?,
                None => Tc::default(),
            };
            let ttl = match parts.next() {
                Some(t) => t.trim().parse::<u8>().map_err(|_| bad())?,
                None => 64,
            };
            if parts.next().is_some() {
                return Err(bad());
            }
            Ok(LabelSpec { label, tc, ttl })
        })
        .collect()
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoppedBy {
    Count,
    Duration,
    Signal,
}

impl StoppedBy {
    fn name(self) -> &'static str {
        match self {
            StoppedBy::Count => "count",
            StoppedBy::Duration => "duration",
            StoppedBy::Signal => "signal",
        }
    }
}

/// What a run did, from the program's and the device's counters (deltas over the run).
#[derive(Debug, Clone, Copy)]
struct Totals {
    seconds: f64,
    generator: GenCounters,
    device: XmitCounters,
    stopped_by: StoppedBy,
}

impl Totals {
    fn offered(&self) -> u64 {
        self.device.xmit + self.device.errors
    }

    /// Frames the program redirected that neither device counter saw.
    fn lost(&self) -> u64 {
        self.redirected().saturating_sub(self.offered())
    }

    /// Frames the program wrote and redirected.
    fn redirected(&self) -> u64 {
        self.generator
            .frames
            .saturating_sub(self.generator.unwritten)
    }

    fn per_second(&self, n: u64) -> f64 {
        if self.seconds > 0.0 {
            n as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// `xpe gen`: checks, loads, sends, prints the summary on `out` and the per-second lines on
/// `err`.
pub fn run(out: &mut dyn Write, err: &mut dyn Write, args: &GenArgs) -> Result<(), Failure> {
    let plan = parse(args)?;
    if !xpe_dataplane::xsk::netdev::is_root() {
        return Err(Failure::new(
            "xpe gen needs root (it loads an XDP program and runs it with BPF_PROG_TEST_RUN)",
        )
        .hint("run it with sudo"));
    }
    let dev = Netdev::read(&plan.dev).ok_or_else(|| {
        Failure::new(format!(
            "interface {} does not exist in this network namespace",
            plan.dev
        ))
        .hint("create it, or run xpe in the namespace that has it (ip netns exec NS xpe gen ...)")
    })?;
    let template = build_template(&plan, &dev)?;
    let name = &dev.name;
    if !dev.up {
        return Err(Failure::new(format!("interface {name} is down"))
            .hint(format!("bring it up: ip link set {name} up")));
    }
    if !dev.carrier {
        return Err(Failure::new(format!(
            "interface {name} has no carrier: the other end of the link (its veth peer) is down"
        ))
        .hint("bring the peer up: ip link set PEER up (in its namespace)"));
    }
    let before = device_counters(name)?;
    let generator = Generator::load(&dev, &template).map_err(gen_failure)?;
    if let Err(why) = generator.resident() {
        let _note_is_best_effort = writeln!(
            err,
            "note: cannot attach the generator's program to {name} in skb mode ({why}): every BPF_PROG_TEST_RUN call now waits for RCU grace periods (about 20 ms), so runs are slower and --rate is coarse"
        );
    }

    let stop = StopOnSignals::install()?;
    let totals = send(&plan, &generator, name, before, stop.flag(), err)?;
    drop(stop);
    summary(out, &plan, &template, &totals).map_err(write_failure)
}

/// SIGINT and SIGTERM set a flag instead of ending the process (and interrupt a test run in
/// the kernel, which returns EINTR) until this is dropped.
pub(crate) struct StopOnSignals {
    flag: Arc<AtomicBool>,
    ids: Vec<signal_hook::SigId>,
}

impl StopOnSignals {
    /// Installs the handlers.
    pub(crate) fn install() -> Result<StopOnSignals, Failure> {
        let mut stop = StopOnSignals {
            flag: Arc::new(AtomicBool::new(false)),
            ids: Vec::new(),
        };
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            let id = signal_hook::flag::register(sig, Arc::clone(&stop.flag))
                .map_err(|e| Failure::new(format!("cannot install signal handlers: {e}")))?;
            stop.ids.push(id);
        }
        Ok(stop)
    }

    /// Set once a signal has arrived.
    pub(crate) fn flag(&self) -> &AtomicBool {
        &self.flag
    }
}

impl Drop for StopOnSignals {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}

/// The template, with the MACs filled in from the interface and its peer.
fn build_template(plan: &Plan, dev: &Netdev) -> Result<Template, Failure> {
    let name = &dev.name;
    let src_mac = match (plan.src_mac, dev.mac) {
        (Some(m), _) | (None, Some(m)) => m,
        (None, None) => {
            return Err(Failure::new(format!(
                "interface {name} has no MAC address to send from: give --src-mac"
            )))
        }
    };
    let dst_mac = match plan.dst_mac {
        Some(m) => m,
        None => dev.veth_peer().and_then(|p| p.mac).ok_or_else(|| {
            Failure::new(format!(
                "--dst-mac is needed: the other end of {name} is not a veth in this network namespace, so its MAC is unknown"
            ))
            .hint("give the receiver's MAC, e.g. --dst-mac $(ip -n NS -br link show PEER | awk '{print $3}')")
        })?,
    };
    let spec = Spec {
        src_mac,
        dst_mac,
        ..plan.spec.clone()
    };
    let template = Template::build(&spec).map_err(|e| match e {
        TemplateError::TooSmall { min, layout, .. } => Failure::new(format!(
            "--size {} is too short for this frame: {layout} need at least {min} bytes (allowed: {min} to {MAX_FRAME})",
            plan.spec.size
        )),
        other => Failure::new(other.to_string()),
    })?;
    if plan.spec.size > MAX_LIVE_FRAME {
        return Err(Failure::new(format!(
            "--size {} is above {MAX_LIVE_FRAME}, the longest frame BPF_PROG_TEST_RUN's live-frames mode sends (one page, less the kernel's headroom and tailroom)",
            plan.spec.size
        ))
        .hint(format!(
            "use --size {} to {MAX_LIVE_FRAME}; jumbo frames need another generator",
            template.header_len().max(MIN_FRAME)
        )));
    }
    let mtu = dev.mtu as usize;
    if plan.spec.size > mtu + L2_OVERHEAD {
        return Err(Failure::new(format!(
            "--size {} does not fit {name}'s MTU of {mtu}: a veth takes XDP frames of at most MTU + {L2_OVERHEAD} bytes",
            plan.spec.size
        ))
        .hint(format!(
            "raise the MTU on both ends: ip link set {name} mtu {} (and the same on the peer)",
            plan.spec.size - L2_OVERHEAD
        )));
    }
    Ok(template)
}

/// Reads the device's XDP transmit counters, or says what is wrong with the device.
fn device_counters(name: &str) -> Result<XmitCounters, Failure> {
    xmit_counters(name).map_err(|e| {
        Failure::new(e.to_string()).hint("xpe gen sends through a veth (ethtool must be installed)")
    })
}

fn gen_failure(e: GenError) -> Failure {
    let privileges = matches!(e, GenError::Load(_))
        || matches!(e.errno(), Some(errno) if errno == EPERM || errno == EACCES);
    let failure = Failure::new(e.to_string());
    if privileges {
        failure.hint("run as root (CAP_BPF and CAP_NET_ADMIN)")
    } else {
        failure
    }
}

// errno values the failures are told apart by (Linux, every architecture xpe builds for).
const EPERM: i32 = 1;
const EACCES: i32 = 13;
const EINVAL: i32 = 22;

/// The send loop: a first batch that proves the frames reach the device, then paced or
/// unpaced runs until the count, the duration or a signal; returns the totals.
fn send(
    plan: &Plan,
    generator: &Generator,
    dev: &str,
    before: XmitCounters,
    stop_flag: &AtomicBool,
    err: &mut dyn Write,
) -> Result<Totals, Failure> {
    let gen_before = generator.counters().map_err(gen_failure)?;
    let start = Instant::now();
    let mut progress = Progress::new(err, start, before);
    let total = match plan.stop {
        Stop::Count(n) => n,
        _ => u64::MAX,
    };
    let mut done: u64 = 0;
    let mut stopped_by = StoppedBy::Signal;
    // Frames a paced run sends at a time, and the size of an unpaced run's next call.
    let paced_chunk = plan.rate.map(|r| (r / PACED_CHUNKS_PER_SECOND).max(1));
    let mut chunk = u64::from(plan.batch);
    let mut probed = false;
    loop {
        if stop_flag.load(Ordering::Relaxed) {
            break;
        }
        let elapsed = start.elapsed();
        if done >= total {
            stopped_by = StoppedBy::Count;
            break;
        }
        if let Stop::Duration(d) = plan.stop {
            if elapsed >= d {
                stopped_by = StoppedBy::Duration;
                break;
            }
        }
        let mut n = match (plan.rate, paced_chunk) {
            (Some(rate), Some(paced)) => {
                let due = (rate as f64 * elapsed.as_secs_f64()) as u64;
                let ahead = done + paced.min(total - done);
                if due < ahead {
                    // Wait until the next chunk is due (or the run ends).
                    let at = Duration::from_secs_f64(ahead as f64 / rate as f64);
                    let mut wait = at.saturating_sub(elapsed);
                    if let Stop::Duration(d) = plan.stop {
                        wait = wait.min(d.saturating_sub(elapsed));
                    }
                    std::thread::sleep(wait.min(Duration::from_millis(100)));
                    progress.tick(dev)?;
                    continue;
                }
                // A generator that fell behind catches up at most 10 chunks at a time.
                (due - done).min(paced * 10)
            }
            _ => chunk,
        };
        n = n.min(total - done).min(u64::from(u32::MAX));
        if !probed {
            n = n.min(u64::from(plan.batch));
        }
        let t0 = Instant::now();
        match generator.run(n as u32, plan.batch) {
            Ok(()) => done += n,
            Err(e) if e.interrupted() => break,
            Err(e) => return Err(run_failure(e, plan)),
        }
        if plan.rate.is_none() {
            chunk = next_chunk(n, t0.elapsed(), plan, start.elapsed());
        }
        if !probed {
            probed = true;
            check_delivery(dev, generator, gen_before, before)?;
        }
        progress.tick(dev)?;
    }
    let seconds = start.elapsed().as_secs_f64();
    let after = device_counters(dev)?;
    let gen_after = generator.counters().map_err(gen_failure)?;
    progress.finish();
    Ok(Totals {
        seconds,
        generator: GenCounters {
            frames: gen_after.frames.saturating_sub(gen_before.frames),
            unwritten: gen_after.unwritten.saturating_sub(gen_before.unwritten),
        },
        device: XmitCounters {
            xmit: after.xmit.saturating_sub(before.xmit),
            errors: after.errors.saturating_sub(before.errors),
        },
        stopped_by,
    })
}

/// The size of an unpaced run's next call after one of `n` frames took `took`: four times
/// larger while calls are short, then what the last call's rate sends in [`RUN_SLICE`] (never
/// below a batch); in a timed run, no more than the rest of the time takes.
fn next_chunk(n: u64, took: Duration, plan: &Plan, elapsed: Duration) -> u64 {
    let took = took.as_secs_f64().max(1e-6);
    let per_second = n as f64 / took;
    let mut next = if took < RUN_SLICE.as_secs_f64() / 2.0 {
        n.saturating_mul(4)
    } else {
        (per_second * RUN_SLICE.as_secs_f64()) as u64
    };
    if let Stop::Duration(d) = plan.stop {
        let rest = d.saturating_sub(elapsed).as_secs_f64();
        next = next.min((per_second * rest) as u64 + 1);
    }
    next.max(u64::from(plan.batch))
}

/// After the first batch: frames the program redirected must show up in the device's
/// counters, sent or refused. A veth whose peer has neither an XDP program nor GRO on has no
/// NAPI context to take them, and the kernel frees them without an error or a count.
fn check_delivery(
    dev: &str,
    generator: &Generator,
    gen_before: GenCounters,
    before: XmitCounters,
) -> Result<(), Failure> {
    let now = device_counters(dev)?;
    let g = generator.counters().map_err(gen_failure)?;
    let redirected = g
        .frames
        .saturating_sub(g.unwritten)
        .saturating_sub(gen_before.frames.saturating_sub(gen_before.unwritten));
    let offered = (now.xmit + now.errors).saturating_sub(before.xmit + before.errors);
    if redirected > 0 && offered == 0 {
        let peer = Netdev::read(dev)
            .and_then(|d| d.veth_peer())
            .map(|p| p.name);
        let (who, name) = match &peer {
            Some(p) => (format!("the receiving end of {dev}, {p},"), p.as_str()),
            None => (
                format!("the receiving end of {dev} (its veth peer, in another network namespace)"),
                "PEER",
            ),
        };
        return Err(Failure::new(format!(
            "{who} takes no XDP frames: it has neither an XDP program nor GRO on, so the kernel dropped the {redirected} frames of the first batch without counting them"
        ))
        .hint(format!(
            "attach an XDP program to the peer (e.g. `xpe sink --dev {name}` in its namespace) or run `ethtool -K {name} gro on`"
        )));
    }
    Ok(())
}

/// One sentence for a failed BPF_PROG_TEST_RUN.
fn run_failure(e: GenError, plan: &Plan) -> Failure {
    let text = e.to_string();
    match e.errno() {
        Some(errno) if errno == EINVAL => Failure::new(format!(
            "{text}: the kernel refused a frame of {} bytes or a batch of {} (live frames need kernel 5.18 or later)",
            plan.spec.size, plan.batch
        )),
        _ => gen_failure(e),
    }
}

/// The per-second line: rewritten in place on a terminal, one line a second otherwise.
pub(crate) struct Ticker<'w> {
    err: &'w mut dyn Write,
    tty: bool,
    start: Instant,
    last_at: Instant,
    printed: bool,
}

impl<'w> Ticker<'w> {
    /// A ticker whose first line is due a second after `start`.
    pub(crate) fn new(err: &'w mut dyn Write, start: Instant) -> Self {
        Ticker {
            err,
            tty: std::io::stderr().is_terminal(),
            start,
            last_at: start,
            printed: false,
        }
    }

    /// If a second has passed since the last line: (seconds since start, seconds since the
    /// last line), and the next line is due a second from now.
    pub(crate) fn due(&mut self) -> Option<(f64, f64)> {
        let now = Instant::now();
        let dt = (now - self.last_at).as_secs_f64();
        if dt < 1.0 {
            return None;
        }
        self.last_at = now;
        Some(((now - self.start).as_secs_f64(), dt))
    }

    /// Prints one progress line.
    pub(crate) fn line(&mut self, line: &str) {
        let text = if self.tty {
            format!("\r{line}\x1b[K")
        } else {
            format!("{line}\n")
        };
        // A closed stderr only loses the progress lines; the summary still goes out.
        let _progress_is_best_effort = self
            .err
            .write_all(text.as_bytes())
            .and_then(|()| self.err.flush());
        self.printed = true;
    }

    /// Ends the rewritten line on a terminal.
    pub(crate) fn finish(&mut self) {
        if self.tty && self.printed {
            let _progress_is_best_effort = self.err.write_all(b"\n");
        }
    }
}

/// How long [`wait_until_stopped`] sleeps at a time: how late a signal or the end of a
/// duration is noticed.
const NAP: Duration = Duration::from_millis(100);

/// Sleeps in naps of at most [`NAP`] until `duration` has passed since `start` or `stop` is
/// set, calling `tick` after every nap; returns whether the duration ended the wait (else a
/// signal did).
pub(crate) fn wait_until_stopped(
    start: Instant,
    duration: Option<Duration>,
    stop: &AtomicBool,
    mut tick: impl FnMut() -> Result<(), Failure>,
) -> Result<bool, Failure> {
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(false);
        }
        let elapsed = start.elapsed();
        if duration.is_some_and(|d| elapsed >= d) {
            return Ok(true);
        }
        std::thread::sleep(duration.map_or(NAP, |d| d.saturating_sub(elapsed).min(NAP)));
        tick()?;
    }
}

/// The generator's per-second line, from the device's counters.
struct Progress<'w> {
    ticker: Ticker<'w>,
    first: XmitCounters,
    last: XmitCounters,
}

impl<'w> Progress<'w> {
    fn new(err: &'w mut dyn Write, start: Instant, first: XmitCounters) -> Self {
        Progress {
            ticker: Ticker::new(err, start),
            first,
            last: first,
        }
    }

    /// Prints a line if a second has passed since the last.
    fn tick(&mut self, dev: &str) -> Result<(), Failure> {
        let Some((at, dt)) = self.ticker.due() else {
            return Ok(());
        };
        let c = device_counters(dev)?;
        let sent = c.xmit.saturating_sub(self.last.xmit);
        let refused = c.errors.saturating_sub(self.last.errors);
        let line = format!(
            "{at:7.1} s  {:>10} sent  {:>10} refused  {:>14} frames sent",
            rate(sent as f64 / dt),
            rate(refused as f64 / dt),
            c.xmit.saturating_sub(self.first.xmit)
        );
        self.ticker.line(&line);
        self.last = c;
        Ok(())
    }

    fn finish(&mut self) {
        self.ticker.finish();
    }
}

/// A rate with its unit: "5.80 Mpps", "812.0 kpps", "7 pps".
pub(crate) fn rate(pps: f64) -> String {
    if pps >= 1e6 {
        format!("{:.2} Mpps", pps / 1e6)
    } else if pps >= 1e3 {
        format!("{:.1} kpps", pps / 1e3)
    } else {
        format!("{pps:.0} pps")
    }
}

fn write_failure(e: std::io::Error) -> Failure {
    Failure::new(format!("cannot write the summary: {e}"))
}

/// The summary: text, or one JSON object with the fields docs/gen.md lists.
fn summary(
    out: &mut dyn Write,
    plan: &Plan,
    template: &Template,
    t: &Totals,
) -> std::io::Result<()> {
    let offered = t.offered();
    if plan.json {
        let v = json!({
            "dev": plan.dev,
            "template": template.describe(),
            "frame_size": plan.spec.size,
            "flows": plan.spec.flows,
            "vary": plan.spec.vary.to_string(),
            "batch": plan.batch,
            "target_pps": plan.rate,
            "seconds": t.seconds,
            "stopped_by": t.stopped_by.name(),
            "frames_run": t.generator.frames,
            "unwritten": t.generator.unwritten,
            "offered": offered,
            "sent": t.device.xmit,
            "refused": t.device.errors,
            "lost": t.lost(),
            "offered_pps": t.per_second(offered),
            "sent_pps": t.per_second(t.device.xmit),
        });
        return writeln!(out, "{v}");
    }
    let target = plan
        .rate
        .map_or_else(String::new, |r| format!(" (target {})", rate(r as f64)));
    writeln!(
        out,
        "xpe gen on {}: {} flow(s){} of {} bytes ({}), {:.3} s, stopped by {}",
        plan.dev,
        plan.spec.flows,
        if plan.spec.flows > 1 {
            format!(" varying {}", plan.spec.vary)
        } else {
            String::new()
        },
        plan.spec.size,
        template.describe(),
        t.seconds,
        t.stopped_by.name()
    )?;
    writeln!(
        out,
        "  offered   {offered:>14}  (xdp_xmit + xdp_xmit_errors of {})",
        plan.dev
    )?;
    writeln!(
        out,
        "  sent      {:>14}  (xdp_xmit: the peer took them)",
        t.device.xmit
    )?;
    writeln!(
        out,
        "  refused   {:>14}  (xdp_xmit_errors: the peer's ring was full)",
        t.device.errors
    )?;
    writeln!(
        out,
        "  run       {:>14}  (frames the generator's XDP program wrote and redirected)",
        t.redirected()
    )?;
    if t.lost() > 0 || t.generator.unwritten > 0 {
        writeln!(
            out,
            "  lost      {:>14}  (redirected but in neither device counter)",
            t.lost()
        )?;
        writeln!(
            out,
            "  unwritten {:>14}  (dropped: the head could not be written)",
            t.generator.unwritten
        )?;
    }
    writeln!(
        out,
        "  rate      {} offered, {} sent{target}",
        rate(t.per_second(offered)),
        rate(t.per_second(t.device.xmit))
    )
}

#[cfg(test)]
mod tests;

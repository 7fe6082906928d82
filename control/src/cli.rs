//! The `xpe` command line (clap): argument parsing and dispatch.
//!
//! [`run`] takes the arguments and two writers and returns the exit code, so the integration
//! tests drive exactly what a user types without spawning a process.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

pub use crate::args::XdpModeArg;

/// `xpe run --fast-path`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FastPathArg {
    /// Every frame to the AF_XDP workers.
    Off,
    /// The simple label cases forwarded by the XDP program in the kernel.
    Xdp,
}
use crate::compile::{compile, Compiled, SysfsMacs};
use crate::config::Config;
use crate::ctl::{call, find_socket, Request, What};
pub use crate::error::Failure;

/// xpe: an MPLS/VRF provider-edge router data plane.
#[derive(Debug, Parser)]
#[command(name = "xpe", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a config and print a summary; exit non-zero on any error.
    Check {
        /// The config file.
        config: PathBuf,
    },
    /// Show tables and counters of the running instance, or with --config a config's tables.
    Show {
        /// What to show.
        #[arg(value_enum, default_value = "all")]
        what: What,
        /// The VRF, for `show vrf NAME` (`global` for the core table).
        name: Option<String>,
        /// Show this config's compiled tables offline instead of asking a running instance.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The running instance's control socket (default: the only one in /run/xpe).
        #[arg(long, conflicts_with = "config")]
        socket: Option<PathBuf>,
        /// JSON instead of text (running instance only).
        #[arg(long, conflicts_with = "config")]
        json: bool,
    },
    /// Run one frame through the pipeline and explain every stage.
    ///
    /// With --live, the next frames a running instance receives that match the filters are
    /// traced by its workers instead, and printed the same way as they arrive.
    Trace {
        /// The config file.
        #[arg(required_unless_present = "live")]
        config: Option<PathBuf>,
        /// The interface the frame arrives on (with --live: only frames received on it).
        #[arg(long, short, required_unless_present = "live")]
        interface: Option<String>,
        /// The frame as hex (spaces, colons and a 0x prefix are ignored).
        #[arg(long, short, required_unless_present = "live", conflicts_with = "live")]
        frame: Option<String>,
        /// Trace frames as a running instance receives them.
        #[arg(long, conflicts_with = "config")]
        live: bool,
        /// Only frames whose outer 802.1Q tag carries this VLAN id (--live).
        #[arg(long, requires = "live")]
        vlan: Option<u16>,
        /// Only labelled frames whose top label is this one (--live).
        #[arg(long, requires = "live")]
        label: Option<u32>,
        /// Only IP packets to this prefix, under any labels (--live).
        #[arg(long, requires = "live")]
        prefix: Option<String>,
        /// How many frames to trace (--live).
        #[arg(long, short, default_value_t = 1, requires = "live")]
        count: u64,
        /// Seconds to wait for them (--live).
        #[arg(long, default_value_t = 10.0, requires = "live")]
        timeout: f64,
        /// Each frame as a line of JSON (--live).
        #[arg(long, requires = "live")]
        json: bool,
        /// The running instance's control socket (--live; default: the only one in /run/xpe).
        #[arg(long, requires = "live")]
        socket: Option<PathBuf>,
    },
    /// Run every frame of a capture through the pipeline and write what comes out.
    Replay {
        /// The config file.
        config: PathBuf,
        /// Input capture (pcapng, or classic pcap with --interface).
        #[arg(long = "in")]
        input: PathBuf,
        /// Output pcapng: one interface block per egress interface.
        #[arg(long = "out")]
        output: PathBuf,
        /// Dropped and punted frames, with the reason as the packet comment.
        #[arg(long)]
        drops: Option<PathBuf>,
        /// Ingress interface for every frame (for captures without interface names).
        #[arg(long, short)]
        interface: Option<String>,
    },
    /// Capture frames as a running instance's workers receive, send and drop them, into a
    /// pcapng file (one interface block per interface and direction; drops carry their
    /// reason as the packet comment). With no --rx, --tx or --drops, all three.
    #[command(group(clap::ArgGroup::new("bound").required(true).multiple(true).args(["count", "duration"])))]
    Capture {
        /// Only frames received on or sent out of this interface.
        #[arg(long, short)]
        interface: Option<String>,
        /// Only frames whose outer 802.1Q tag carries this VLAN id.
        #[arg(long)]
        vlan: Option<u16>,
        /// Frames as received.
        #[arg(long)]
        rx: bool,
        /// Frames as sent, with the labels and tags pushed.
        #[arg(long)]
        tx: bool,
        /// Frames dropped (as received), with the reason.
        #[arg(long)]
        drops: bool,
        /// Stop after this many frames.
        #[arg(long, short)]
        count: Option<u64>,
        /// Stop after this many seconds.
        #[arg(long, short)]
        duration: Option<f64>,
        /// The pcapng file to write (`-`: standard output, e.g. `-w - | tshark -r -`).
        #[arg(short = 'w', long = "write", value_name = "FILE.pcapng")]
        file: PathBuf,
        /// The running instance's control socket (default: the only one in /run/xpe).
        #[arg(long)]
        socket: Option<PathBuf>,
    },
    /// Run the data plane on the config's interfaces until SIGINT or SIGTERM.
    Run {
        /// The config file.
        config: PathBuf,
        /// Worker cores: one worker pinned to each (e.g. `1` or `0,1`); default one unpinned worker.
        #[arg(long, value_delimiter = ',')]
        cores: Option<Vec<usize>>,
        /// How the XDP program attaches: native (driver), skb (generic), or auto (native, else skb).
        #[arg(long, value_enum, default_value = "auto")]
        xdp_mode: XdpModeArg,
        /// Where frames are forwarded: `off`, everything by the workers (the default); `xdp`,
        /// the simple label cases by the kernel's XDP program, the rest by the workers
        /// (docs/runtime.md, "The XDP fast path").
        #[arg(long, value_enum, default_value = "off")]
        fast_path: FastPathArg,
        /// Control socket path (default /run/xpe/ROUTER-NAME.sock).
        #[arg(long)]
        socket: Option<PathBuf>,
        /// A route file (docs/routes.md) applied over the config's routes before forwarding
        /// starts; any bad line stops the start.
        #[arg(long)]
        routes: Option<PathBuf>,
        /// Make no mirror devices: frames for the router that the pipeline does not answer
        /// itself are counted and dropped, as with no kernel behind it.
        #[arg(long)]
        no_mirrors: bool,
        /// Prefix every mirror namespace xpe names by default or from the config with this
        /// (several copies of one config side by side, as the lab's tests run).
        #[arg(long, default_value = "")]
        netns_prefix: String,
        /// Serve Prometheus metrics on `http://ADDR:PORT/metrics` (e.g. `127.0.0.1:9464`),
        /// in the router's network namespace (docs/runtime.md, "Metrics").
        #[arg(long, value_name = "ADDR:PORT")]
        metrics: Option<std::net::SocketAddr>,
    },
    /// Replace the running instance's config: validated whole, swapped in without a stop.
    Apply {
        /// The new config file (its interfaces must be those running).
        config: PathBuf,
        /// The running instance's control socket.
        #[arg(long)]
        socket: Option<PathBuf>,
    },
    /// Add or remove static routes in the running instance: one, or a route file.
    Route {
        /// add or del.
        #[command(subcommand)]
        op: RouteOp,
    },
    /// Add or remove one incoming label entry in the running instance.
    Label {
        /// add or del.
        #[command(subcommand)]
        op: LabelOp,
    },
    /// Lab/test helper: a Linux host tags and untags one 802.1Q VLAN on DEV (tc eBPF).
    ///
    /// Run it in the host's namespace: `ip netns exec NS xpe host-vlan veth0 101`.
    HostVlan(xpe_lab::cmd::hostvlan::HostVlanArgs),
    /// Send UDP frames (optionally VLAN-tagged, MPLS-labelled) out of a veth at up to millions
    /// per second (XDP live frames), and count what the device took and refused.
    ///
    /// See docs/gen.md: `xpe gen --dev veth0 --src 198.18.0.1 --dst 198.19.0.1 --duration 5`.
    Gen(Box<xpe_lab::cmd::gen::GenArgs>),
    /// Count and drop every frame arriving on an interface (XDP), printing the rate each second.
    Sink(xpe_lab::cmd::sink::SinkArgs),
    /// Bench DUT: forward every frame from IN to OUT inside the kernel (XDP redirect), new MACs.
    ///
    /// The pps harness's "kernel's own ceiling"; see docs/gen.md.
    #[command(hide = true)]
    XdpFwd(xpe_lab::cmd::xdp_fwd::XdpFwdArgs),
}

/// `xpe route add|del`.
#[derive(Debug, Subcommand)]
pub enum RouteOp {
    /// Add a static route, or replace the one with the same prefix.
    Add {
        /// The prefix, e.g. 198.18.7.0/24.
        prefix: String,
        /// The next hop.
        #[arg(long)]
        via: String,
        /// Labels to push, outermost first (comma separated).
        #[arg(long, value_delimiter = ',')]
        labels: Vec<i64>,
        /// The VRF (default: the global table).
        #[arg(long)]
        vrf: Option<String>,
        /// The running instance's control socket.
        #[arg(long)]
        socket: Option<PathBuf>,
    },
    /// Remove a static route.
    Del {
        /// The prefix as configured.
        prefix: String,
        /// The VRF (default: the global table).
        #[arg(long)]
        vrf: Option<String>,
        /// The running instance's control socket.
        #[arg(long)]
        socket: Option<PathBuf>,
    },
    /// Apply a route file (one route per line, docs/routes.md): all of it or, on any
    /// error, none. With --stream, lines are applied as they arrive, in chunks, up to the
    /// first bad line.
    Load {
        /// The route file (`-`: standard input, with --stream).
        file: PathBuf,
        /// Stream the lines: each chunk is published as soon as it arrives, coalesced with
        /// other changes (a feed: `tail -f FILE | xpe route load --stream -`).
        #[arg(long)]
        stream: bool,
        /// With --stream, print each published chunk's acknowledgement.
        #[arg(long, requires = "stream")]
        progress: bool,
        /// The running instance's control socket.
        #[arg(long)]
        socket: Option<PathBuf>,
    },
}

/// `xpe label add|del`.
#[derive(Debug, Subcommand)]
pub enum LabelOp {
    /// Add an incoming label entry, or replace the one for the same label.
    Add {
        /// The incoming label.
        in_label: i64,
        /// swap or pop.
        action: String,
        /// The next hop.
        #[arg(long)]
        via: String,
        /// Labels to swap in, outermost first (comma separated; swap only).
        #[arg(long, value_delimiter = ',')]
        out: Vec<i64>,
        /// The running instance's control socket.
        #[arg(long)]
        socket: Option<PathBuf>,
    },
    /// Remove an incoming label entry.
    Del {
        /// The incoming label.
        in_label: i64,
        /// The running instance's control socket.
        #[arg(long)]
        socket: Option<PathBuf>,
    },
}

/// Parses `args` (the first is the program name) and runs the command; returns the exit code.
pub fn run<I, T>(args: I, out: &mut dyn Write, err: &mut dyn Write) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let text = e.render().to_string();
            let w: &mut dyn Write = if e.use_stderr() { err } else { out };
            // A closed pipe while printing help is not worth a second error.
            if w.write_all(text.as_bytes()).is_err() {
                return code.max(1);
            }
            return code;
        }
    };
    match dispatch(cli.command, out, err) {
        Ok(()) => 0,
        Err(f) if f.message == READER_GONE => 0,
        Err(f) => {
            let mut text = format!("xpe: {}\n", f.message);
            if let Some(h) = f.hint {
                text.push_str(&format!("hint: {h}\n"));
            }
            if err.write_all(text.as_bytes()).is_err() {
                return 1;
            }
            1
        }
    }
}

/// A reader that went away (`xpe show ... | head`) is not an error worth a message.
const READER_GONE: &str = "";

fn io_failure(e: std::io::Error) -> Failure {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        return Failure::new(READER_GONE);
    }
    Failure::new(format!("cannot write output: {e}"))
}

/// Loads and compiles a config, turning every problem into one failure listing them all.
pub fn load(path: &Path) -> Result<(Config, Compiled), Failure> {
    let config = Config::load(path)
        .map_err(|e| Failure::new(e.to_string()).hint("see docs/config.md for every field"))?;
    let compiled = compile(&config, &SysfsMacs).map_err(|errors| {
        let n = errors.0.len();
        let mut message = format!(
            "{} has {n} error{}; nothing was applied:",
            path.display(),
            if n == 1 { "" } else { "s" }
        );
        for e in &errors.0 {
            message.push_str(&format!("\n  - {e}"));
        }
        Failure::new(message).hint("fix the objects named above; see docs/config.md")
    })?;
    Ok((config, compiled))
}

/// Sends a request to the running instance and prints its answer.
fn remote(out: &mut dyn Write, socket: Option<&Path>, request: &Request) -> Result<(), Failure> {
    let socket = find_socket(socket)?;
    let response = call(&socket, request)?;
    if !response.ok {
        return Err(Failure::new(response.text));
    }
    let mut text = response.text;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    out.write_all(text.as_bytes()).map_err(io_failure)
}

/// `xpe show --config FILE`: the compiled tables of a config, no instance needed.
fn show_offline(
    out: &mut dyn Write,
    config: &Path,
    what: What,
    name: Option<&str>,
) -> Result<(), Failure> {
    let (_, compiled) = load(config)?;
    let snap = &compiled.snapshot;
    match what {
        What::All => crate::show::all(out, snap, &compiled.rib).map_err(io_failure),
        What::Labels => crate::show::labels(out, snap).map_err(io_failure),
        What::Neighbors => crate::show::neighbors(out, snap).map_err(io_failure),
        What::Interfaces => crate::show::interfaces(out, snap).map_err(io_failure),
        What::Vrf => {
            let names: Vec<&str> = snap.vrfs().iter().map(|v| v.name.as_str()).collect();
            let Some(name) = name else {
                return Err(Failure::new("show vrf needs a VRF name")
                    .hint(format!("the config has: {}", names.join(", "))));
            };
            let Some(id) = snap.vrf_by_name(name) else {
                return Err(Failure::new(format!("no vrf named \"{name}\""))
                    .hint(format!("the config has: {}", names.join(", "))));
            };
            crate::show::vrf(out, snap, &compiled.rib, id).map_err(io_failure)
        }
        What::Counters | What::Runtime | What::Bgp => Err(Failure::new(format!(
            "a config has no {}: they come from a running instance",
            match what {
                What::Counters => "counters",
                What::Bgp => "BGP sessions or BGP routes",
                _ => "runtime figures",
            }
        ))
        .hint("drop --config to ask the running xpe")),
    }
}

fn dispatch(command: Command, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), Failure> {
    match command {
        Command::Check { config } => {
            let (cfg, compiled) = load(&config)?;
            crate::show::summary(out, &config, &cfg, &compiled).map_err(io_failure)
        }
        Command::Show {
            what,
            name,
            config: Some(config),
            ..
        } => show_offline(out, &config, what, name.as_deref()),
        Command::Show {
            what,
            name,
            config: None,
            socket,
            json,
        } => remote(out, socket.as_deref(), &Request::Show { what, name, json }),
        Command::Run {
            config,
            cores,
            no_mirrors,
            netns_prefix,
            xdp_mode,
            fast_path,
            socket,
            routes,
            metrics,
        } => {
            let opts = crate::daemon::RunOptions {
                config,
                cores,
                mode: xdp_mode.into(),
                fast_path: fast_path == FastPathArg::Xdp,
                socket,
                routes,
                mirrors: !no_mirrors,
                netns_prefix,
                metrics,
            };
            crate::daemon::run(&opts, out)
        }
        Command::Apply { config, socket } => {
            let text = std::fs::read_to_string(&config)
                .map_err(|e| Failure::new(format!("cannot read {}: {e}", config.display())))?;
            let origin = config.display().to_string();
            remote(
                out,
                socket.as_deref(),
                &Request::Apply {
                    config: text,
                    origin,
                },
            )
        }
        Command::Route { op } => match op {
            RouteOp::Add {
                prefix,
                via,
                labels,
                vrf,
                socket,
            } => remote(
                out,
                socket.as_deref(),
                &Request::RouteAdd {
                    vrf,
                    prefix,
                    via,
                    labels,
                },
            ),
            RouteOp::Del {
                prefix,
                vrf,
                socket,
            } => remote(out, socket.as_deref(), &Request::RouteDel { vrf, prefix }),
            RouteOp::Load {
                file,
                stream: true,
                progress,
                socket,
            } => {
                let input: Box<dyn std::io::Read + Send> = if file.as_os_str() == "-" {
                    Box::new(std::io::stdin())
                } else {
                    Box::new(std::fs::File::open(&file).map_err(|e| {
                        Failure::new(format!("cannot read {}: {e}", file.display()))
                    })?)
                };
                let origin = match file.as_os_str() == "-" {
                    true => "stdin".to_string(),
                    false => file.display().to_string(),
                };
                let socket = find_socket(socket.as_deref())?;
                let mut acked = Ok(());
                let response = crate::ctl::stream(&socket, &origin, input, &mut |a| {
                    if progress && acked.is_ok() {
                        acked = writeln!(
                            out,
                            "through line {}: {} added, {} removed; published in {:.3} ms",
                            a.through, a.added, a.removed, a.latency_ms
                        );
                    }
                })?;
                acked.map_err(io_failure)?;
                if !response.ok {
                    return Err(Failure::new(response.text));
                }
                writeln!(out, "{}", response.text.trim_end()).map_err(io_failure)
            }
            RouteOp::Load { file, socket, .. } => {
                if file.as_os_str() == "-" {
                    return Err(Failure::new("`-` (standard input) is for --stream")
                        .hint("xpe route load --stream - reads routes from standard input"));
                }
                let routes = std::fs::read_to_string(&file)
                    .map_err(|e| Failure::new(format!("cannot read {}: {e}", file.display())))?;
                let origin = file.display().to_string();
                remote(
                    out,
                    socket.as_deref(),
                    &Request::RouteLoad { routes, origin },
                )
            }
        },
        Command::Label { op } => match op {
            LabelOp::Add {
                in_label,
                action,
                via,
                out: labels,
                socket,
            } => remote(
                out,
                socket.as_deref(),
                &Request::LabelAdd {
                    in_label,
                    action,
                    out: labels,
                    via,
                },
            ),
            LabelOp::Del { in_label, socket } => {
                remote(out, socket.as_deref(), &Request::LabelDel { in_label })
            }
        },
        Command::Trace {
            interface,
            live: true,
            vlan,
            label,
            prefix,
            count,
            timeout,
            json,
            socket,
            ..
        } => {
            let timeout_ms = millis("--timeout", timeout)?;
            let req = crate::ctl::TraceRequest {
                interface,
                vlan,
                label,
                prefix,
                count,
                timeout_ms,
                json,
            };
            let socket = crate::ctl::find_socket(socket.as_deref())?;
            crate::trace::live(&socket, req, out)
        }
        Command::Trace {
            config: Some(config),
            interface: Some(interface),
            frame: Some(frame),
            ..
        } => {
            let (_, compiled) = load(&config)?;
            crate::trace::run(out, &compiled.snapshot, &compiled.rib, &interface, &frame)
        }
        Command::Trace { .. } => Err(Failure::new(
            "xpe trace needs CONFIG, --interface and --frame, or --live",
        )),
        Command::Capture {
            interface,
            vlan,
            rx,
            tx,
            drops,
            count,
            duration,
            file,
            socket,
        } => {
            let duration_ms = duration.map(|d| millis("--duration", d)).transpose()?;
            let req = crate::ctl::CaptureRequest {
                interface,
                vlan,
                rx,
                tx,
                drops,
                count,
                duration_ms,
            };
            let socket = crate::ctl::find_socket(socket.as_deref())?;
            crate::capture::run(&socket, req, &file, out)
        }
        Command::Replay {
            config,
            input,
            output,
            drops,
            interface,
        } => {
            let (_, compiled) = load(&config)?;
            let opts = crate::replay::Options {
                input: &input,
                output: &output,
                drops: drops.as_deref(),
                interface: interface.as_deref(),
                policer: compiled.policer,
            };
            let report = crate::replay::run(&compiled.snapshot, &opts)?;
            crate::replay::print_report(out, &compiled.snapshot, &report).map_err(io_failure)
        }
        Command::HostVlan(args) => Ok(xpe_lab::cmd::hostvlan::run(out, &args)?),
        Command::Gen(args) => Ok(xpe_lab::cmd::gen::run(out, err, &args)?),
        Command::Sink(args) => Ok(xpe_lab::cmd::sink::run(out, err, &args)?),
        Command::XdpFwd(args) => Ok(xpe_lab::cmd::xdp_fwd::run(out, err, &args)?),
    }
}

/// A flag's seconds (more than 0, an hour at most) in whole milliseconds.
fn millis(flag: &str, seconds: f64) -> Result<u64, Failure> {
    if seconds > 0.0 && seconds <= 3600.0 {
        Ok((seconds * 1e3).ceil() as u64)
    } else {
        Err(Failure::new(format!(
            "{flag} {seconds} is not a number of seconds from 0 to 3600"
        )))
    }
}

//! The `xpe` command line (clap): argument parsing and dispatch.
//!
//! [`run`] takes the arguments and two writers and returns the exit code, so the integration
//! tests drive exactly what a user types without spawning a process.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use crate::compile::{compile, Compiled, Offline};
use crate::config::Config;

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
    /// Print the compiled tables (interfaces, neighbours, MPLS forwarding table, VRF routes).
    Show {
        /// The config file.
        config: PathBuf,
        /// Only this VRF's routing table (`global` for the core table).
        #[arg(long)]
        vrf: Option<String>,
        /// Only the MPLS forwarding table.
        #[arg(long, conflicts_with = "vrf")]
        labels: bool,
    },
    /// Run one frame through the pipeline and explain every stage.
    Trace {
        /// The config file.
        config: PathBuf,
        /// The interface the frame arrives on.
        #[arg(long, short)]
        interface: String,
        /// The frame as hex (spaces, colons and a 0x prefix are ignored).
        #[arg(long, short)]
        frame: String,
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
}

/// A failure the CLI reports as one sentence and a hint.
#[derive(Debug)]
pub struct Failure {
    /// What went wrong.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl Failure {
    /// A failure with no hint.
    pub fn new(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            hint: None,
        }
    }
    /// Adds a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
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
    match dispatch(cli.command, out) {
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
    let compiled = compile(&config, &Offline).map_err(|errors| {
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

fn dispatch(command: Command, out: &mut dyn Write) -> Result<(), Failure> {
    match command {
        Command::Check { config } => {
            let (cfg, compiled) = load(&config)?;
            crate::show::summary(out, &config, &cfg, &compiled).map_err(io_failure)
        }
        Command::Show {
            config,
            vrf,
            labels,
        } => {
            let (_, compiled) = load(&config)?;
            let snap = &compiled.snapshot;
            if labels {
                crate::show::labels(out, snap).map_err(io_failure)
            } else if let Some(name) = vrf {
                let Some(id) = snap.vrf_by_name(&name) else {
                    let names: Vec<&str> = snap.vrfs().iter().map(|v| v.name.as_str()).collect();
                    return Err(Failure::new(format!("no vrf named \"{name}\""))
                        .hint(format!("the config has: {}", names.join(", "))));
                };
                crate::show::vrf(out, snap, id).map_err(io_failure)
            } else {
                crate::show::all(out, snap).map_err(io_failure)
            }
        }
        Command::Trace {
            config,
            interface,
            frame,
        } => {
            let (_, compiled) = load(&config)?;
            crate::trace::run(out, &compiled.snapshot, &interface, &frame)
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
            };
            let report = crate::replay::run(&compiled.snapshot, &opts)?;
            crate::replay::print_report(out, &compiled.snapshot, &report).map_err(io_failure)
        }
    }
}

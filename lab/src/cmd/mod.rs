//! The lab commands as the `xpe` CLI runs them: `xpe gen` ([`gen`]), `xpe sink` ([`sink`]),
//! `xpe xdp-fwd` ([`xdp_fwd`]) and `xpe host-vlan` ([`hostvlan`]). Each takes its clap
//! arguments and two writers and returns a [`Failure`]; `xpe-control`'s CLI parses, dispatches
//! and prints, so users keep typing `xpe gen ...`.

pub mod gen;
pub mod hostvlan;
pub mod sink;
pub mod xdp_fwd;

use xpe_dataplane::xsk::steer::Mode;

/// A failure the CLI reports as one sentence and a hint: the lab's side of the CLI's own
/// failure (`xpe_control::error::Failure`, which converts from it), kept here because the lab
/// sits below the CLI and cannot import from it.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
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

/// `--xdp-mode` of `xpe run`, `xpe sink` and `xpe xdp-fwd` (control's CLI uses this one too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum XdpModeArg {
    /// Driver mode.
    Native,
    /// Generic mode.
    Skb,
    /// Native, falling back to skb.
    Auto,
}

impl From<XdpModeArg> for Mode {
    fn from(arg: XdpModeArg) -> Mode {
        match arg {
            XdpModeArg::Native => Mode::Native,
            XdpModeArg::Skb => Mode::Skb,
            XdpModeArg::Auto => Mode::Auto,
        }
    }
}

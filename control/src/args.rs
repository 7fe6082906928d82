//! Argument types that several subcommands share (`xpe run`, `xpe sink`, `xpe xdp-fwd`), kept
//! below the CLI so the modules that take them do not import from it.

use xpe_dataplane::xsk::steer::Mode;

/// `--xdp-mode`.
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

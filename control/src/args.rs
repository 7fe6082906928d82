//! Argument types of the subcommands (`xpe run`), kept below the CLI so the modules that take
//! them do not import from it. (`xpe sink` and `xpe xdp-fwd` take the same `--xdp-mode` words
//! through `xpe_lab::cmd::XdpModeArg`.)

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

//! Argument types of the subcommands, kept below the CLI so the modules that take them do not
//! import from it. `--xdp-mode` has the same words for `xpe run`, `sink` and `xdp-fwd`, so
//! there is one type, the lab crate's (control depends on it; it cannot depend on control).

pub use xpe_lab::cmd::XdpModeArg;

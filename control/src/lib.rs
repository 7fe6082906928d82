//! The control side of xpe: the config model, its validation and compilation into dataplane
//! tables, and the `xpe` command line.
//!
//! Control knows people: every error names the object at fault and says what to do, and
//! every table can be shown in the words of `show mpls forwarding-table`.

pub mod api;
pub mod args;
pub mod bgp;
pub mod capture;
pub mod cli;
pub mod compile;
pub mod config;
pub mod ctl;
pub mod daemon;
pub mod error;
pub mod metrics;
pub mod mirrors;
pub mod replay;
pub mod resolve;
pub mod rib;
pub mod routefile;
pub mod show;
pub mod trace;

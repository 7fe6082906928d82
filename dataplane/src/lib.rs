//! The xpe forwarding engine.
//!
//! Four layers, each knowing one thing (see `shared/STYLE.md`):
//! - [`wire`] knows bytes: zero-copy views over Ethernet, 802.1Q, MPLS, IPv4/IPv6, ARP, ICMP,
//!   ICMPv6 and neighbour discovery;
//! - [`tables`] knows routes: the immutable [`tables::Snapshot`] the control side publishes
//!   (ports, VLAN attachments, VRFs with their LPM tables, the incoming label map, adjacencies);
//! - [`pipeline`] knows decisions: classify -> label or IP lookup -> rewrite, with a counted
//!   reason for every drop and punt, and an optional trace of every stage;
//! - [`xsk`] knows the kernel side: the XDP steering program (and, next, AF_XDP rings and
//!   workers that reuse the pipeline unchanged).
//!
//! The lab and bench tools (packet generator, sink, in-kernel forwarder, host VLAN tagging)
//! are not here: they are the `xpe-lab` crate (`lab/`), which builds on `wire` and `xsk`.

pub mod pipeline;
pub mod tables;
pub mod wire;
#[allow(unsafe_code)]
pub mod xsk;

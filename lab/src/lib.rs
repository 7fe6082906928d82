//! The xpe lab and bench tools: not the router, what a lab or a measurement puts around it.
//!
//! Three layers, as in the data plane (see `shared/STYLE.md`):
//! - [`template`] knows bytes: the packet generator's frame templates and per-flow heads
//!   (Ethernet, VLAN tags, an MPLS label stack, IPv4/IPv6, UDP), built with the product's
//!   `wire` views; no I/O, no unsafe;
//! - [`bpf`] knows the kernel: it loads the lab's own eBPF object (`lab/ebpf/`, apart from the
//!   router's steering program) and runs or attaches its programs: the generator
//!   (BPF_PROG_TEST_RUN live frames), the counting sink, the in-kernel forwarder and the host
//!   VLAN tagging classifiers. The one module of the crate where `unsafe` is allowed;
//! - [`cmd`] knows people: the `xpe gen`, `xpe sink`, `xpe xdp-fwd` and `xpe host-vlan`
//!   commands (arguments, checks, pacing, per-second lines, summaries), which the `xpe` CLI
//!   in `xpe-control` dispatches to.
//!
//! The lab depends on the data plane (wire views, interfaces, the XDP attach helper), never the
//! other way round; the router neither loads nor links its programs.

#[allow(unsafe_code)]
pub mod bpf;
pub mod cmd;
pub mod template;

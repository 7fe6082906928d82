//! The lab tools' kernel side: the eBPF object built by `build.rs` from `lab/ebpf/` and the
//! loaders of its programs. This is the one module of the crate where `unsafe` is allowed
//! (STYLE.md), as `xsk` is in the data plane; today it needs none, aya making the bpf() calls
//! (BPF_PROG_TEST_RUN included), and anything raw the tools come to need goes here, with a
//! `// SAFETY:` comment.
//!
//! - [`gen`]: the packet generator, BPF_PROG_TEST_RUN in live-frames mode;
//! - [`sink`]: the counting XDP drop;
//! - [`redirect`]: the in-kernel forwarder (XDP redirect through a DEVMAP);
//! - [`hostvlan`]: 802.1Q tagging for lab hosts (tc classifiers).
//!
//! XDP attachment and per-CPU counter sums are the data plane's
//! (`xpe_dataplane::xsk::steer::Attached`), so the sink and the forwarder attach exactly as
//! the steering program does.

pub mod gen;
pub mod hostvlan;
pub mod redirect;
pub mod sink;

/// The lab's eBPF object built by `build.rs` (the generator's, the sink's and the in-kernel
/// forwarder's XDP programs, the host VLAN tagging classifiers), embedded once.
pub(crate) static EBPF_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/xpe-lab-ebpf"));

//! What the XDP steering program and userspace agree on: program and map names, sizes and
//! counter indices. The program itself is `src/main.rs`, built for the bpf target by
//! `dataplane/build.rs` (aya-build) and embedded in the xpe binary. The lab tools' programs
//! (generator, sink, in-kernel forwarder, host VLAN tagging) are a separate object, `lab/ebpf/`.
#![no_std]

/// Name of the XDP program in the object file.
pub const PROGRAM: &str = "xpe_steer";
/// Name of the XSKMAP: RX queue index -> AF_XDP socket.
pub const XSK_MAP: &str = "XPE_XSKS";
/// Name of the per-CPU counter array.
pub const STATS_MAP: &str = "XPE_STATS";
/// Slots of the XSKMAP: the most RX queues an interface may have for xpe.
pub const MAX_QUEUES: u32 = 64;
/// Counter index: frames redirected to an AF_XDP socket.
pub const STAT_REDIRECTED: u32 = 0;
/// Counter index: frames passed to the kernel (no socket bound on their queue).
pub const STAT_PASSED: u32 = 1;
/// Number of counters.
pub const STATS_LEN: u32 = 2;

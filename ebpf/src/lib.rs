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

/// Name of the fast-path XDP program (`--fast-path xdp`): forwards the simple label cases in
/// the kernel and steers everything else as [`PROGRAM`] does.
pub const FAST_PROGRAM: &str = "xpe_fast";
/// Name of the fast path's label map: incoming label -> [`FastSwap`].
pub const FAST_LABELS_MAP: &str = "XPE_FAST_LABELS";
/// Name of the fast path's port map: ingress ifindex -> [`FastPort`] (core ports only).
pub const FAST_PORTS_MAP: &str = "XPE_FAST_PORTS";
/// Name of the fast path's DEVMAP: TX slot -> egress ifindex.
pub const FAST_TX_MAP: &str = "XPE_FAST_TX";
/// Name of the fast path's per-CPU counters.
pub const FAST_STATS_MAP: &str = "XPE_FAST_STATS";
/// Most labels the fast path's label map holds.
pub const FAST_MAX_LABELS: u32 = 65_536;
/// Most ports (DEVMAP slots, port map entries).
pub const FAST_MAX_PORTS: u32 = 256;
/// Deepest label stack the fast path walks to find the bottom (the pipeline's limit).
pub const FAST_MAX_DEPTH: usize = 16;
/// Fast-path counter: frames forwarded in the kernel.
pub const FAST_STAT_FORWARDED: u32 = 0;
/// Fast-path counter: frames handed to the AF_XDP path.
pub const FAST_STAT_FALLBACK: u32 = 1;
/// Number of fast-path counters.
pub const FAST_STATS_LEN: u32 = 2;

/// A label the fast path swaps: one outgoing label, TTL - 1, TC and S kept, to a resolved
/// untagged next hop. Compiled from the userspace tables' swap entries.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FastSwap {
    /// The outgoing label, shifted into place (label << 12).
    pub out: u32,
    /// The egress port's DEVMAP slot.
    pub tx_slot: u32,
    /// The Ethernet destination and source to write.
    pub macs: [u8; 12],
    /// The egress port's MTU (what follows the Ethernet header may not exceed it).
    pub mtu: u16,
    /// Padding (zero).
    pub pad: u16,
}

/// A core port the fast path takes frames on.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FastPort {
    /// The port's MAC: frames to any other address go to user space.
    pub mac: [u8; 6],
    /// Padding (zero).
    pub pad: [u8; 2],
}

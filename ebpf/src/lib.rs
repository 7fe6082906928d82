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
/// the kernel and steers everything else to the AF_XDP sockets. Unlike [`PROGRAM`], one loaded
/// copy serves every interface, so its maps are keyed by port.
pub const FAST_PROGRAM: &str = "xpe_fast";
/// Names of the fast path's two label maps (incoming label -> [`FastLabel`]): the program reads
/// the one [`FAST_GEN_MAP`] names while userspace brings the other up to date.
pub const FAST_LABELS_MAPS: [&str; 2] = ["XPE_FAST_LABELS0", "XPE_FAST_LABELS1"];
/// Name of the one-slot array that says which label map is live: 0 or 1, or
/// [`FAST_GEN_OFF`].
pub const FAST_GEN_MAP: &str = "XPE_FAST_GEN";
/// Generation value with no live label map: every frame is steered to user space (before the
/// first tables, and after a failed update).
pub const FAST_GEN_OFF: u32 = 2;
/// Name of the fast path's port map: ingress ifindex -> [`FastPort`] (every interface xpe runs
/// on; a frame from any other is passed to the kernel). Written once per port, except for the
/// one-byte `core` flag, so a reader never sees half an entry.
pub const FAST_PORTS_MAP: &str = "XPE_FAST_PORTS";
/// Name of the fast path's DEVMAP: port slot -> egress ifindex.
pub const FAST_TX_MAP: &str = "XPE_FAST_TX";
/// Name of the fast path's XSKMAP: port slot * [`MAX_QUEUES`] + RX queue -> AF_XDP socket.
pub const FAST_XSK_MAP: &str = "XPE_FAST_XSKS";
/// Name of the fast path's per-CPU port counters: port slot * [`FAST_PORT_STATS_LEN`] + index.
pub const FAST_PORT_STATS_MAP: &str = "XPE_FAST_PORT_STATS";
/// Name of the fast path's per-CPU label counters, by the label's counter slot.
pub const FAST_LABEL_STATS_MAP: &str = "XPE_FAST_LABEL_STATS";
/// Most labels the fast path's label map holds, and label counter slots it counts in.
pub const FAST_MAX_LABELS: u32 = 65_536;
/// Most ports (port slots).
pub const FAST_MAX_PORTS: u32 = 64;
/// Deepest label stack the fast path walks to find the bottom (the pipeline's limit).
pub const FAST_MAX_DEPTH: usize = 16;
/// Port counter: frames received on the port and forwarded in the kernel.
pub const FAST_PORT_RX_PACKETS: u32 = 0;
/// Port counter: their bytes.
pub const FAST_PORT_RX_BYTES: u32 = 1;
/// Port counter: frames the kernel forwarded out of the port.
pub const FAST_PORT_TX_PACKETS: u32 = 2;
/// Port counter: their bytes.
pub const FAST_PORT_TX_BYTES: u32 = 3;
/// Port counter: frames received on the port and redirected to its queue's AF_XDP socket.
pub const FAST_PORT_REDIRECTED: u32 = 4;
/// Port counter: frames received on the port and passed to the kernel (no socket bound).
pub const FAST_PORT_PASSED: u32 = 5;
/// Counters per port.
pub const FAST_PORT_STATS_LEN: u32 = 6;

/// [`FastLabel::op`]: swap the top label for [`FastLabel::out`], TTL - 1, TC and S kept.
pub const FAST_OP_SWAP: u8 = 0;
/// [`FastLabel::op`]: penultimate-hop pop. Above another label, that label's TTL becomes this
/// one's - 1 in uniform mode; at the bottom of the stack, the IPv4 TTL or IPv6 hop limit does
/// (checksum updated), and the frame loses any Ethernet padding.
pub const FAST_OP_POP: u8 = 1;

/// An incoming label the fast path handles, to a resolved untagged next hop. Compiled from the
/// userspace tables' swap and pop entries.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FastLabel {
    /// For a swap, the outgoing label, shifted into place (label << 12).
    pub out: u32,
    /// The egress port's slot (DEVMAP, counters).
    pub tx_slot: u32,
    /// The entry's counter slot in the label counters.
    pub counter: u32,
    /// The Ethernet destination and source to write.
    pub macs: [u8; 12],
    /// The egress port's MTU (what follows the Ethernet header may not exceed it).
    pub mtu: u16,
    /// [`FAST_OP_SWAP`] or [`FAST_OP_POP`].
    pub op: u8,
    /// 1 in uniform TTL mode (RFC 3443), 0 in pipe mode.
    pub uniform: u8,
}

/// A port the fast path takes frames on.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FastPort {
    /// The port's MAC: frames to any other address go to user space.
    pub mac: [u8; 6],
    /// 1 on a core port that takes untagged labelled frames (where swaps are done), else 0.
    pub core: u8,
    /// Padding (zero).
    pub pad: u8,
    /// The port's slot: its index in the tables (DEVMAP, XSKMAP base, counters).
    pub slot: u32,
}

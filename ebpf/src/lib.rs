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
/// Name of the fast path's copy for interfaces whose frames come in one buffer each (no
/// multi-buffer XDP): the same, without the check for frames in pieces.
pub const FAST_LINEAR_PROGRAM: &str = "xpe_fast_linear";
/// Every table of the fast path holds two generations, one after the other: the program reads
/// the one [`FAST_GEN_MAP`] names while userspace brings the other up to date. The program adds
/// the generation's offset where it enters a table (label index, attachments, VRFs, FECs);
/// every index stored inside the tables already includes it. One copy of the program's code
/// serves both generations.
///
/// Name of the label index: word `g * FAST_LABEL_SPACE + label` is 1 + the label's place in
/// [`FAST_LABELS_MAP`] (generation offset included), or 0. Arrays, not hash maps: a lookup is one
/// load the verifier inlines.
pub const FAST_LABEL_INDEX_MAP: &str = "XPE_FAST_LABEL_INDEX";
/// Name of the label entries ([`FastLabel`]), [`FAST_MAX_LABELS`] a generation.
pub const FAST_LABELS_MAP: &str = "XPE_FAST_LABELS";
/// Name of the one-slot array that says which label map is live: 0 or 1, or
/// [`FAST_GEN_OFF`].
pub const FAST_GEN_MAP: &str = "XPE_FAST_GEN";
/// Generation value with no live label map: every frame is steered to user space (before the
/// first tables, and after a failed update).
pub const FAST_GEN_OFF: u32 = 2;
/// Name of the fast path's port array: ifindex -> [`FastPort`], with [`FastPort::ours`] 0 for an
/// interface that is not one of xpe's (its frames are passed to the kernel). Indexed by the
/// interface, not the port, so a frame finds its port in one lookup. Interfaces with an index
/// of [`FAST_MAX_IFINDEX`] or more cannot take the fast path. Written once per port, except
/// for the one-byte `core` flag, so a reader never sees half an entry.
pub const FAST_PORTS_MAP: &str = "XPE_FAST_PORTS";
/// Interface indices the fast path's port array covers.
pub const FAST_MAX_IFINDEX: u32 = 65_536;
/// Name of the fast path's DEVMAP: port slot -> egress ifindex.
pub const FAST_TX_MAP: &str = "XPE_FAST_TX";
/// Name of the fast path's XSKMAP: port slot * [`MAX_QUEUES`] + RX queue -> AF_XDP socket.
pub const FAST_XSK_MAP: &str = "XPE_FAST_XSKS";
/// Name of the fast path's per-CPU port counters: port slot -> [`FAST_PORT_STATS_LEN`] counters
/// (`[u64; FAST_PORT_STATS_LEN]`, indexed by the `FAST_PORT_*` counter constants).
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

/// [`FastLabel::op`]: pop a VPN (table) label at the bottom of the stack and route the IPv4 or
/// IPv6 packet below in VRF [`FastLabel::vrf`] (disposition).
pub const FAST_OP_POP_LOOKUP: u8 = 2;

/// An incoming label the fast path handles: a swap or PHP to a resolved untagged next hop, or
/// a VPN label. Compiled from the userspace tables' label entries.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FastLabel {
    /// For a swap, the outgoing label, shifted into place (label << 12).
    pub out: u32,
    /// For a VPN label, the VRF.
    pub vrf: u32,
    /// The egress port's slot (DEVMAP, counters).
    pub tx_slot: u32,
    /// The entry's counter slot in the label counters.
    pub counter: u32,
    /// The Ethernet destination and source to write.
    pub macs: [u8; 12],
    /// The egress port's MTU (what follows the Ethernet header may not exceed it).
    pub mtu: u16,
    /// [`FAST_OP_SWAP`], [`FAST_OP_POP`] or [`FAST_OP_POP_LOOKUP`].
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
    /// 1 for one of xpe's interfaces; 0 in every other entry.
    pub ours: u8,
    /// The port's slot: its index in the tables (DEVMAP, XSKMAP base, counters).
    pub slot: u32,
}

/// Name of the attachment array: word `g * FAST_ATTACH_WORDS + port slot * 4096 + VLAN id` (0
/// untagged) is 1 + the VRF id, or 0.
pub const FAST_ATTACH_MAP: &str = "XPE_FAST_ATTACH";
/// Words of the attachment array a generation: a VLAN id's word per port.
pub const FAST_ATTACH_WORDS: u32 = FAST_MAX_PORTS * 4096;
/// Label values: the label index has a word for each.
pub const FAST_LABEL_SPACE: u32 = 1 << 20;
/// Name of the per-VRF table descriptors (IPv4 table, IPv6 flag, counter, TTL mode) ([`FastVrf`], `g * FAST_MAX_VRFS + VRF id`).
pub const FAST_VRFS_MAP: &str = "XPE_FAST_VRFS";
/// Name of the IPv4 LPM roots (every VRF's root one after the other, [`FAST_ROOT_ENTRIES`] a
/// generation), one u64 a root entry: the userspace table's entry in the lower word; in the
/// upper word, for an entry that points at a node, the first arena word of the node's page
/// (the subtree below a root entry lies in one page). So the root entry is all a lookup needs
/// to find its way into the arena: one read, where a page table would be a second one that
/// depends on the first.
pub const FAST_ROOT_MAP: &str = "XPE_FAST_ROOT";
/// Name of the IPv4 LPM arena (u32 words: every VRF's pages one after the other,
/// [`FAST_ARENA_WORDS`] a generation). An array of u64, each holding two words (the lower one
/// first): an mmapable array's elements are 8 bytes apart, so this way userspace sees the
/// words back to back through the mapping.
pub const FAST_ARENA_MAP: &str = "XPE_FAST_ARENA";
/// Name of the FECs with their adjacencies ([`FastNextHop`], `g * FAST_MAX_FECS + FEC id`).
pub const FAST_FECS_MAP: &str = "XPE_FAST_FECS";
/// Name of the fast path's per-CPU VRF counters (IP lookups), by the VRF's counter slot.
pub const FAST_VRF_STATS_MAP: &str = "XPE_FAST_VRF_STATS";

/// VRFs the fast path routes in (by VRF id); and VRF counter slots it counts in.
pub const FAST_MAX_VRFS: u32 = 1024;
/// Root entries of the IPv4 LPM roots a generation, all VRFs together (16 MiB: 32 roots of
/// a table of 2^16 entries, which VRFs with many routes have, or 8,192 of 2^8).
pub const FAST_ROOT_ENTRIES: u32 = 1 << 21;
/// Words of the IPv4 LPM arena, all VRFs together (32 MiB: a 1M-route table takes 12.4).
pub const FAST_ARENA_WORDS: u32 = 1 << 23;
/// FECs the fast path holds.
pub const FAST_MAX_FECS: u32 = 1 << 16;
/// Labels a FEC of the fast path pushes at most.
pub const FAST_MAX_PUSH: usize = 4;
/// Words the userspace arena's page offsets keep below the page number (its `PAGE_SHIFT`).
pub const FAST_PAGE_SHIFT: u32 = 22;
/// Levels below the root a lookup walks at most (8-8-8-8 below a /8 root).
pub const FAST_MAX_LEVELS: usize = 3;
/// `BPF_F_MMAPABLE`: userspace writes the arrays with this flag through a mapping.
pub const BPF_F_MMAPABLE: u32 = 1 << 10;

/// One VRF in the fast path: its IPv4 table in the arrays, whether its IPv6 routes are in
/// the trie, its counter and TTL mode.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FastVrf {
    /// 1 when the VRF's table is in the arrays (else its lookups go to the workers).
    pub present: u32,
    /// Where its root starts in the root array (generation offset included).
    pub root_base: u32,
    /// Its root's shift: the root entry of address `a` is `root[root_base + (a >> shift)]`.
    pub root_shift: u32,
    /// Its counter slot.
    pub counter: u32,
    /// 1 in uniform TTL mode (RFC 3443), 0 in pipe mode (the same in every VRF).
    pub uniform: u32,
    /// Padding (zero).
    pub pad0: u32,
    /// 1 when every IPv6 route of the VRF is in [`FAST_ROUTES6_MAP`] under this generation
    /// (else its IPv6 lookups go to the workers).
    pub v6: u32,
    /// Padding (zero): elements of an mmapable array are 8-byte aligned.
    pub pad: u32,
}

/// Name of the IPv6 routes of every VRF, both generations in the one map: a
/// `BPF_MAP_TYPE_LPM_TRIE` keyed by [`fast_route6_key`] with the route's length + 32 as the
/// prefix length, whose value is the FEC id. A trie, not a copy of the userspace table (one
/// hash table per prefix length, `dataplane/src/tables/lpm/v6.rs`), which arrays cannot hold.
pub const FAST_ROUTES6_MAP: &str = "XPE_FAST_ROUTES6";
/// Entries of [`FAST_ROUTES6_MAP`], both generations together (each holds its own copy of a
/// route, so about half as many IPv6 routes over all VRFs). Nodes are allocated as routes
/// come (`BPF_F_NO_PREALLOC`): an empty trie costs nothing.
pub const FAST_MAX_ROUTES6: u32 = 1 << 20;
/// Bytes of a [`FAST_ROUTES6_MAP`] key after its prefix length.
pub const FAST_ROUTE6_KEY_LEN: usize = 20;
/// Bits of a [`FAST_ROUTES6_MAP`] key before the address: the generation and the VRF.
pub const FAST_ROUTE6_KEY_BITS: u32 = 32;

/// The data of a [`FAST_ROUTES6_MAP`] key: generation `g` and VRF `vrf` as one big-endian
/// word (`g << 16 | vrf`), then the IPv6 address. Every route's prefix length covers the word,
/// so a lookup never matches a route of another generation or VRF.
#[inline(always)]
pub fn fast_route6_key(g: u32, vrf: u32, addr: [u8; 16]) -> [u8; FAST_ROUTE6_KEY_LEN] {
    let mut key = [0u8; FAST_ROUTE6_KEY_LEN];
    key[..4].copy_from_slice(&(g << 16 | vrf).to_be_bytes());
    key[4..].copy_from_slice(&addr);
    key
}

/// [`FastFec::kind`]: forward to [`FastFec::adj`], pushing the labels.
pub const FAST_FEC_FORWARD: u32 = 1;

/// A FEC: where an IP lookup's hit sends the packet. Anything else (ours, glean, more labels
/// than [`FAST_MAX_PUSH`]) has kind 0 and goes to the workers.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FastFec {
    /// [`FAST_FEC_FORWARD`], or 0.
    pub kind: u32,
    /// The adjacency's id (the program reads the copy in [`FastNextHop`]).
    pub adj: u32,
    /// Labels pushed.
    pub push: u32,
    /// The labels, outermost first, shifted into place (label << 12).
    pub labels: [u32; FAST_MAX_PUSH],
    /// Padding (zero): elements of an mmapable array are 8-byte aligned.
    pub pad: u32,
}

/// An element of [`FAST_FECS_MAP`]: a FEC with a copy of its adjacency, so that a route's hit
/// is one read, not a FEC and then the adjacency it names. 64 bytes: one cache line. A
/// neighbour that changes rewrites every FEC through it, in the generation not live.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FastNextHop {
    /// The FEC.
    pub fec: FastFec,
    /// Its adjacency ([`FastFec::adj`]); not ok when there is none.
    pub adj: FastAdj,
}

/// An adjacency: the egress port and the header to write.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FastAdj {
    /// 1 when resolved and its port takes redirected frames; else 0 (to the workers).
    pub ok: u32,
    /// The egress port's slot.
    pub tx_slot: u32,
    /// Destination, source, and (tagged) 0x8100 and the VLAN id.
    pub header: [u8; 16],
    /// 1 when the header carries a VLAN tag.
    pub tagged: u16,
    /// The egress port's MTU.
    pub mtu: u16,
    /// Padding (zero): elements of an mmapable array are 8-byte aligned.
    pub pad: u32,
}

/// Every map of the fast path, for the steering program, which shares the object and loads it
/// with each of these shrunk to one entry.
pub const FAST_MAPS: [&str; 15] = [
    FAST_GEN_MAP,
    FAST_PORTS_MAP,
    FAST_TX_MAP,
    FAST_XSK_MAP,
    FAST_PORT_STATS_MAP,
    FAST_LABEL_STATS_MAP,
    FAST_VRF_STATS_MAP,
    FAST_LABEL_INDEX_MAP,
    FAST_LABELS_MAP,
    FAST_ATTACH_MAP,
    FAST_VRFS_MAP,
    FAST_ROOT_MAP,
    FAST_ARENA_MAP,
    FAST_FECS_MAP,
    FAST_ROUTES6_MAP,
];

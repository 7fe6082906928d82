//! What the lab tools' eBPF programs and their loaders in `xpe-lab` agree on: program, map and
//! global names, sizes and counter indices. The programs are in `src/hostvlan.rs`,
//! `src/gen.rs`, `src/sink.rs` and `src/redirect.rs`, built into one object for the bpf target
//! by `lab/build.rs` (aya-build) and embedded in the xpe binary through `xpe_lab::bpf`, apart
//! from the router's steering program (`ebpf/`).
#![no_std]

/// Name of the tc classifier that tags a lab host's egress frames (`src/hostvlan.rs`).
pub const HOST_VLAN_PUSH_PROGRAM: &str = "xpe_vlan_push";
/// Name of the tc classifier that removes the tag from a lab host's ingress frames.
pub const HOST_VLAN_POP_PROGRAM: &str = "xpe_vlan_pop";
/// Name of the global (u16) holding the tag control information both programs use:
/// PCP in bits 15-13, VID in bits 11-0; set by the loader before the programs are loaded.
pub const HOST_VLAN_TCI_GLOBAL: &str = "XPE_HOST_VLAN_TCI";
/// The 802.1Q TPID (C-tag).
pub const ETHERTYPE_8021Q: u16 = 0x8100;
/// The 802.1ad TPID (S-tag).
pub const ETHERTYPE_8021AD: u16 = 0x88a8;
/// The VLAN id bits of a tag control information field.
pub const VID_MASK: u16 = 0x0fff;

/// Name of the generator's XDP program (`src/gen.rs`), run by BPF_PROG_TEST_RUN in live-frames
/// mode: it writes a flow's header over the frame and redirects it to the generator interface.
pub const GEN_PROGRAM: &str = "xpe_gen";
/// Name of the array of per-flow frame heads (flow index -> [`GEN_HEAD_MAX`] bytes); the loader
/// sizes it to the flow count.
pub const GEN_HEADS_MAP: &str = "XPE_GEN_HEADS";
/// Name of the generator's counter array (one copy, not per CPU: see `src/gen.rs`).
pub const GEN_STATS_MAP: &str = "XPE_GEN_STATS";
/// Name of the global (u32) holding the interface index frames are redirected to.
pub const GEN_IFINDEX_GLOBAL: &str = "XPE_GEN_IFINDEX";
/// Name of the global (u32) holding the flow count (at least 1).
pub const GEN_FLOWS_GLOBAL: &str = "XPE_GEN_FLOWS";
/// Name of the global (u32) holding how many bytes of a head are written over each frame
/// (1..=[`GEN_HEAD_MAX`]).
pub const GEN_HEAD_LEN_GLOBAL: &str = "XPE_GEN_HEAD_LEN";
/// Bytes of a flow's head: room for Ethernet, two VLAN tags, 16 labels, IPv6 and UDP (134).
pub const GEN_HEAD_MAX: usize = 136;
/// Counter index: frames the program ran on (the next frame's sequence number).
pub const GEN_STAT_FRAMES: u32 = 0;
/// Counter index: frames dropped because their head could not be written (never expected).
pub const GEN_STAT_UNWRITTEN: u32 = 1;
/// Number of generator counters.
pub const GEN_STATS_LEN: u32 = 2;

/// Name of the sink's XDP program (`src/sink.rs`): counts and drops every frame.
pub const SINK_PROGRAM: &str = "xpe_drop";
/// Name of the sink's per-CPU counter array.
pub const SINK_STATS_MAP: &str = "XPE_DROP_STATS";
/// Counter index: frames dropped.
pub const SINK_STAT_FRAMES: u32 = 0;
/// Counter index: bytes of the frames dropped (whole frames, all fragments).
pub const SINK_STAT_BYTES: u32 = 1;
/// Number of sink counters.
pub const SINK_STATS_LEN: u32 = 2;

/// Name of the in-kernel forwarder's XDP program (`src/redirect.rs`): rewrites the Ethernet
/// addresses of every frame and redirects it to one egress device through a DEVMAP.
pub const REDIRECT_PROGRAM: &str = "xpe_redirect";
/// Name of the one-slot DEVMAP holding the egress device.
pub const REDIRECT_TX_MAP: &str = "XPE_REDIRECT_TX";
/// The DEVMAP slot the program redirects to.
pub const REDIRECT_TX_SLOT: u32 = 0;
/// Name of the forwarder's per-CPU counter array.
pub const REDIRECT_STATS_MAP: &str = "XPE_REDIRECT_STATS";
/// Name of the global (`[u8; 12]`) holding the Ethernet destination then source address
/// written over every frame; set by the loader.
pub const REDIRECT_MACS_GLOBAL: &str = "XPE_REDIRECT_MACS";
/// Name of the global (`[u8; 8]`) that turns on the check of the Ethernet destination: the
/// ingress device's MAC, then 1 to check (0: every frame is forwarded unread); set by the loader.
pub const REDIRECT_CHECK_GLOBAL: &str = "XPE_REDIRECT_CHECK";
/// Counter index: frames rewritten and handed to `bpf_redirect_map`.
pub const REDIRECT_STAT_REDIRECTED: u32 = 0;
/// Counter index: frames dropped because they were shorter than an Ethernet header.
pub const REDIRECT_STAT_TOO_SHORT: u32 = 1;
/// Counter index: frames dropped because the DEVMAP slot was empty (never expected: the
/// loader fills it before attaching).
pub const REDIRECT_STAT_NO_TARGET: u32 = 2;
/// Counter index: frames dropped because their Ethernet destination was not the ingress
/// device's (only with the check on).
pub const REDIRECT_STAT_NOT_FOR_IN: u32 = 3;
/// Number of forwarder counters.
pub const REDIRECT_STATS_LEN: u32 = 4;

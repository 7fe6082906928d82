//! What the XDP steering program, the host VLAN tagging programs and userspace agree on:
//! program, map and global names, sizes and counter indices. The programs themselves are in
//! `src/main.rs` and `src/hostvlan.rs`, built into one object for the bpf target by
//! `dataplane/build.rs` (aya-build) and embedded in the xpe binary.
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

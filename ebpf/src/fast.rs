//! The fast path (`xpe_fast`, `xpe run --fast-path xdp`): one program on every interface that
//! forwards the common cases in the kernel exactly as the userspace pipeline would, and steers
//! every other frame, untouched, to the AF_XDP socket of its port and queue.
//!
//! What it forwards (everything else goes to the workers):
//! - on a core port, untagged MPLS: swap to one label, PHP (to a label, IPv4 or IPv6), a VPN
//!   label at the bottom of the stack (disposition: the IPv4 or IPv6 packet below routed in
//!   the label's VRF), and IPv4 under IPv4 explicit null or IPv6 under IPv6 explicit null
//!   (routed in the global table);
//! - on any port, untagged, 802.1Q- or priority-tagged IPv4 or IPv6 routed in its
//!   attachment's VRF (imposition: the FEC's labels pushed, VLAN tag with PCP where the
//!   adjacency has one).
//!
//! Every table lives twice, one copy per generation; [`FAST_GEN`] names the live one. Userspace
//! writes only the other, switches, and waits for an RCU grace period before it writes the old
//! one again, so a frame sees one whole table or the next.
//!
//! The IPv4 lookup is the userspace table's own (`dataplane/src/tables/lpm/v4.rs`): its root and
//! node arena are copied into array maps as they are, and walked the same way. The IPv6 table
//! (`lpm/v6.rs`, a hash table per prefix length) has no such copy: its routes are entries of an
//! LPM trie keyed by generation, VRF and address, and a VRF's IPv6 frames are forwarded here
//! only while its descriptor says all its routes are in the live generation. IPv4 frames never
//! reach the trie.

// An eBPF crate is a place where unsafe is allowed (STYLE.md): map slots are raw pointers
// handed out by the kernel, packet bytes are read and written through checked pointers.
#![allow(unsafe_code)]

use aya_ebpf::bindings::xdp_action;
use aya_ebpf::helpers::{bpf_xdp_adjust_head, bpf_xdp_adjust_tail, bpf_xdp_get_buff_len};
use aya_ebpf::macros::{map, xdp};
use aya_ebpf::maps::lpm_trie::Key;
use aya_ebpf::maps::{Array, DevMap, LpmTrie, PerCpuArray, XskMap};
use aya_ebpf::programs::XdpContext;
use xpe_ebpf::{
    fast_route6_key, FastLabel, FastNextHop, FastPort, FastVrf, BPF_F_MMAPABLE, FAST_ARENA_WORDS,
    FAST_ATTACH_WORDS, FAST_FEC_FORWARD, FAST_LABEL_SPACE, FAST_MAX_DEPTH, FAST_MAX_FECS,
    FAST_MAX_IFINDEX, FAST_MAX_LABELS, FAST_MAX_LEVELS, FAST_MAX_PORTS, FAST_MAX_PUSH,
    FAST_MAX_ROUTES6, FAST_MAX_VRFS, FAST_OP_POP, FAST_OP_POP_LOOKUP, FAST_OP_SWAP,
    FAST_PAGE_SHIFT, FAST_PORT_PASSED, FAST_PORT_REDIRECTED, FAST_PORT_RX_BYTES,
    FAST_PORT_RX_PACKETS, FAST_PORT_STATS_LEN, FAST_PORT_TX_BYTES, FAST_PORT_TX_PACKETS,
    FAST_ROOT_ENTRIES, FAST_ROUTE6_KEY_BITS, FAST_ROUTE6_KEY_LEN, MAX_QUEUES,
};

// The steering program shares this object, and userspace loads it with every fast-path map
// shrunk to one entry (`steer::load_object`), so they cost it nothing. Every table is an array:
// the verifier inlines an array lookup into a bounds check and a load, where a hash lookup
// measured tens of nanoseconds a frame.

#[map(name = "XPE_FAST_GEN")]
static FAST_GEN: Array<u32> = Array::with_max_entries(1, 0);

#[map(name = "XPE_FAST_PORTS")]
static FAST_PORTS: Array<FastPort> = Array::with_max_entries(FAST_MAX_IFINDEX, 0);

#[map(name = "XPE_FAST_TX")]
static FAST_TX: DevMap = DevMap::with_max_entries(FAST_MAX_PORTS, 0);

#[map(name = "XPE_FAST_XSKS")]
static FAST_XSKS: XskMap = XskMap::with_max_entries(FAST_MAX_PORTS * MAX_QUEUES, 0);

#[map(name = "XPE_FAST_PORT_STATS")]
static FAST_PORT_STATS: PerCpuArray<[u64; FAST_PORT_STATS_LEN as usize]> =
    PerCpuArray::with_max_entries(FAST_MAX_PORTS, 0);

#[map(name = "XPE_FAST_LABEL_STATS")]
static FAST_LABEL_STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(FAST_MAX_LABELS, 0);

#[map(name = "XPE_FAST_VRF_STATS")]
static FAST_VRF_STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(FAST_MAX_VRFS, 0);

// The tables, both generations one after the other (lib.rs, `FAST_LABEL_INDEX_MAP`). The u64
// arrays other than the root hold two u32 words each; their sizes below are in elements.
#[map(name = "XPE_FAST_LABEL_INDEX")]
static LABEL_INDEX: Array<u64> = Array::with_max_entries(FAST_LABEL_SPACE, BPF_F_MMAPABLE);
#[map(name = "XPE_FAST_LABELS")]
static LABELS: Array<FastLabel> = Array::with_max_entries(2 * FAST_MAX_LABELS, BPF_F_MMAPABLE);
#[map(name = "XPE_FAST_ATTACH")]
static ATTACH: Array<u64> = Array::with_max_entries(FAST_ATTACH_WORDS, BPF_F_MMAPABLE);
#[map(name = "XPE_FAST_VRFS")]
static VRFS: Array<FastVrf> = Array::with_max_entries(2 * FAST_MAX_VRFS, BPF_F_MMAPABLE);
#[map(name = "XPE_FAST_ROOT")]
static ROOT: Array<u64> = Array::with_max_entries(2 * FAST_ROOT_ENTRIES, BPF_F_MMAPABLE);
#[map(name = "XPE_FAST_ARENA")]
static ARENA: Array<u64> = Array::with_max_entries(FAST_ARENA_WORDS, BPF_F_MMAPABLE);
#[map(name = "XPE_FAST_FECS")]
static FECS: Array<FastNextHop> = Array::with_max_entries(2 * FAST_MAX_FECS, BPF_F_MMAPABLE);
// The IPv6 routes of both generations (lib.rs, `FAST_ROUTES6_MAP`): a trie, the one table that
// is not an array, and the one lookup only IPv6 frames make.
#[map(name = "XPE_FAST_ROUTES6")]
static ROUTES6: LpmTrie<[u8; FAST_ROUTE6_KEY_LEN], u32> =
    LpmTrie::with_max_entries(FAST_MAX_ROUTES6, 0);

/// The live generation: where each table's entries of it start.
#[derive(Clone, Copy)]
struct Gen(u32);

impl Gen {
    fn label(self, label: u32) -> Option<FastLabel> {
        let i = word(&LABEL_INDEX, self.0 * FAST_LABEL_SPACE + label)?.checked_sub(1)?;
        LABELS.get(i).copied()
    }

    fn attachment(self, slot: u32, vid: u16) -> Option<u32> {
        word(
            &ATTACH,
            self.0 * FAST_ATTACH_WORDS + slot * 4096 + u32::from(vid),
        )?
        .checked_sub(1)
    }

    fn vrf(self, vrf: u32) -> Option<FastVrf> {
        if vrf >= FAST_MAX_VRFS {
            return None;
        }
        VRFS.get(self.0 * FAST_MAX_VRFS + vrf).copied()
    }

    /// The FEC of the longest IPv6 prefix of VRF `vrf` covering `dst`.
    fn route6(self, vrf: u32, dst: [u8; 16]) -> Option<u32> {
        let key = Key::new(
            FAST_ROUTE6_KEY_BITS + 128,
            fast_route6_key(self.0, vrf, dst),
        );
        ROUTES6.get(&key).copied()
    }

    /// FEC `fec` with its adjacency, copied: read through a reference, LLVM copies the
    /// header to the frame with a `memmove` subprogram, a BPF-to-BPF call per frame.
    fn fec(self, fec: u32) -> Option<FastNextHop> {
        if fec >= FAST_MAX_FECS {
            return None;
        }
        FECS.get(self.0 * FAST_MAX_FECS + fec).copied()
    }
}

const ETH_LEN: usize = 14;
const VLAN_LEN: usize = 4;
const LABEL_LEN: usize = 4;
const IPV4_LEN: usize = 20;
const IPV6_LEN: usize = 40;
const ETH_MPLS: u16 = 0x8847;
const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;
const TPID_8021Q: u16 = 0x8100;
/// VLAN id 4095: reserved, the pipeline drops it.
const VID_RESERVED: u16 = 0xfff;
/// The userspace IPv4 table's constants (`lpm/v4.rs`): an entry with this bit is a child's
/// arena offset; this leaf means no route; a node's header words.
const NODE_BIT: u32 = 1 << 31;
const NO_ROUTE: u32 = NODE_BIT - 1;
const HEADER_WORDS: u32 = 16;
const PAGE_MASK: u32 = (1 << FAST_PAGE_SHIFT) - 1;

/// The fast path where a frame may come in several buffers (multi-buffer XDP: `xpe run` with
/// an MTU beyond a chunk). Frames from an interface that is not one of xpe's go to the kernel.
#[xdp(frags)]
pub fn xpe_fast(ctx: XdpContext) -> u32 {
    fast(ctx, true)
}

/// The fast path where every frame comes in one buffer. Loaded without multi-buffer support,
/// so the kernel never hands it a frame in pieces: it refuses to attach it where one could
/// come (an MTU beyond a page), and to raise the MTU while it is attached; in skb mode it
/// linearizes the frame first. (A veth with GRO on does not keep this promise: xpe turns GRO
/// off on its veths, docs/runtime.md.) So this copy skips the check for pieces, a helper
/// call: about 10 ns a frame measured on this project's machine (whose kernel runs the SRSO
/// mitigation, which makes every return dearer; how much of the 10 ns that is, unmeasured).
#[xdp]
pub fn xpe_fast_linear(ctx: XdpContext) -> u32 {
    fast(ctx, false)
}

/// Both programs: `frags` when a frame may come in several buffers.
#[inline(always)]
fn fast(ctx: XdpContext, frags: bool) -> u32 {
    // SAFETY: xdp_md is the context the kernel passed; reading a field is always valid.
    let ifindex = unsafe { (*ctx.ctx).ingress_ifindex };
    let Some(port) = FAST_PORTS.get(ifindex).filter(|p| p.ours != 0).copied() else {
        return xdp_action::XDP_PASS;
    };
    let forwarded = match FAST_GEN.get(0).copied() {
        Some(g @ (0 | 1)) => forward(&ctx, &port, Gen(g), frags),
        _ => None,
    };
    if let Some(action) = forwarded {
        return action;
    }
    let queue = port.slot * MAX_QUEUES + ctx.rx_queue_index();
    match FAST_XSKS.redirect(queue, u64::from(xdp_action::XDP_PASS)) {
        Ok(action) => {
            port_count(port.slot, FAST_PORT_REDIRECTED, 1);
            action
        }
        Err(action) => {
            port_count(port.slot, FAST_PORT_PASSED, 1);
            action
        }
    }
}

/// A frame forwarded: where to and how long it left, for the counters.
struct Sent {
    tx_slot: u32,
    len: usize,
}

/// Forwards the frame if the fast path handles it, and counts it; `None` with the frame
/// untouched for anything else. `frags`: the frame may be in several buffers.
#[inline(always)]
fn forward(ctx: &XdpContext, port: &FastPort, t: Gen, frags: bool) -> Option<u32> {
    let (start, end) = (ctx.data(), ctx.data_end());
    if start + ETH_LEN + VLAN_LEN > end {
        return None;
    }
    let len = end - start;
    // A frame in several buffers (jumbo, multi-buffer XDP) is left to the workers.
    // SAFETY: the helper only reads the context the kernel passed.
    if frags && unsafe { bpf_xdp_get_buff_len(ctx.ctx) } != len as u64 {
        return None;
    }
    // SAFETY: the check above proves the first ETH_LEN + VLAN_LEN bytes are in the frame.
    let (dst, ethertype, tci, inner) = unsafe {
        (
            core::ptr::read_unaligned(start as *const [u8; 6]),
            u16::from_be(core::ptr::read_unaligned((start + 12) as *const u16)),
            u16::from_be(core::ptr::read_unaligned((start + 14) as *const u16)),
            u16::from_be(core::ptr::read_unaligned((start + 16) as *const u16)),
        )
    };
    if dst != port.mac {
        return None;
    }
    let sent = match ethertype {
        ETH_MPLS if port.core != 0 => mpls(ctx, port, t, len)?,
        // One call for every shape of imposition, so the routing code is inlined once.
        ETH_IPV4 | ETH_IPV6 | TPID_8021Q => {
            let (ip, vid, l3) = if ethertype == TPID_8021Q {
                (inner, tci & 0xfff, ETH_LEN + VLAN_LEN)
            } else {
                (ethertype, 0, ETH_LEN)
            };
            if vid == VID_RESERVED || (ip != ETH_IPV4 && ip != ETH_IPV6) {
                return None;
            }
            impose(ctx, port, t, ip, vid, l3)?
        }
        _ => return None,
    };
    port_count_frame(
        port.slot,
        FAST_PORT_RX_PACKETS,
        FAST_PORT_RX_BYTES,
        len as u64,
    );
    port_count_frame(
        sent.tx_slot,
        FAST_PORT_TX_PACKETS,
        FAST_PORT_TX_BYTES,
        sent.len as u64,
    );
    Some(xdp_action::XDP_REDIRECT)
}

/// IPv4 or IPv6 (EtherType `ip`) in the VRF of the attachment (port, `vid`): imposition.
#[inline(always)]
fn impose(ctx: &XdpContext, port: &FastPort, t: Gen, ip: u16, vid: u16, l3: usize) -> Option<Sent> {
    let vrf = t.attachment(port.slot, vid)?;
    route(ctx, t, l3, vrf, Some(ip == ETH_IPV6), None, None)
}

/// Untagged MPLS on a core port.
#[inline(always)]
fn mpls(ctx: &XdpContext, _port: &FastPort, t: Gen, len: usize) -> Option<Sent> {
    let (start, end) = (ctx.data(), ctx.data_end());
    if start + ETH_LEN + LABEL_LEN > end {
        return None;
    }
    // SAFETY: checked just above.
    let entry = u32::from_be(unsafe { core::ptr::read_unaligned((start + ETH_LEN) as *const u32) });
    let (label, tc, bos, ttl) = (
        entry >> 12,
        (entry >> 9) & 7,
        entry & 0x100 != 0,
        entry & 0xff,
    );
    // The pipeline drops a stack without a bottom within its depth, or cut short: such a
    // frame is left to it.
    let mut off = ETH_LEN;
    let mut bottom = false;
    for _ in 0..FAST_MAX_DEPTH {
        if start + off + LABEL_LEN > end {
            return None;
        }
        // SAFETY: checked just above: the entry's four bytes are in the frame.
        let s = unsafe { *((start + off + 2) as *const u8) };
        off += LABEL_LEN;
        if s & 1 != 0 {
            bottom = true;
            break;
        }
    }
    if !bottom {
        return None;
    }
    // Disposition: the VRF below the label, whether its TTL counts (uniform mode), its counter.
    let (vrf, uniform, counter) = match label {
        // Explicit null at the bottom (IPv4: 0, IPv6: 2): routed in the global table, the
        // label's TC as the class, its TTL as the hop in uniform mode (the pipeline keeps the
        // mode in every VRF).
        0 | 2 if bos => (0, t.vrf(0)?.uniform != 0, None),
        ..16 => return None,
        _ => {
            let op = t.label(label)?;
            if op.op == FAST_OP_POP_LOOKUP && bos {
                (op.vrf, op.uniform != 0, Some(op.counter))
            } else {
                let sent = match op.op {
                    FAST_OP_SWAP if ttl > 1 => swap(ctx, &op, entry, ttl, len)?,
                    FAST_OP_POP if ttl > 1 => pop(ctx, &op, bos, ttl as u8, len)?,
                    _ => return None,
                };
                label_count(op.counter);
                return Some(sent);
            }
        }
    };
    let hop = uniform.then_some(ttl as u8);
    // Explicit null 0 carries IPv4, 2 IPv6; below a VPN label, either.
    let six = match label {
        0 => Some(false),
        2 => Some(true),
        _ => None,
    };
    let sent = route(ctx, t, ETH_LEN + LABEL_LEN, vrf, six, hop, Some(tc as u8))?;
    if let Some(c) = counter {
        label_count(c);
    }
    Some(sent)
}

/// Counts a packet in label counter slot `counter`.
#[inline(always)]
fn label_count(counter: u32) {
    if let Some(slot) = FAST_LABEL_STATS.get_ptr_mut(counter) {
        // SAFETY: this CPU's own slot of a per-CPU array (see `port_count`).
        unsafe { *slot += 1 };
    }
}

/// The swap: new label, TC and S kept, TTL - 1, new MACs.
#[inline(always)]
fn swap(ctx: &XdpContext, op: &FastLabel, entry: u32, ttl: u32, len: usize) -> Option<Sent> {
    if len - ETH_LEN > usize::from(op.mtu) {
        return None;
    }
    // Redirect first: with the slot empty the frame goes to user space unchanged.
    FAST_TX.redirect(op.tx_slot, 0).ok()?;
    let start = ctx.data();
    if start + ETH_LEN + LABEL_LEN > ctx.data_end() {
        return None;
    }
    let out = op.out | (entry & 0xf00) | (ttl - 1);
    // SAFETY: checked just above: these 12 + 4 bytes are inside the frame; unaligned, since
    // nothing promises where the frame starts.
    unsafe {
        core::ptr::write_unaligned(start as *mut [u8; 12], op.macs);
        core::ptr::write_unaligned((start + ETH_LEN) as *mut u32, out.to_be());
    }
    Some(Sent {
        tx_slot: op.tx_slot,
        len,
    })
}

/// Penultimate-hop pop, as the pipeline's `php`.
#[inline(always)]
fn pop(ctx: &XdpContext, op: &FastLabel, bos: bool, ttl: u8, len: usize) -> Option<Sent> {
    let (start, end) = (ctx.data(), ctx.data_end());
    let below = ETH_LEN + LABEL_LEN;
    let uniform = op.uniform != 0;
    // What is below the label, and how long it is (the frame's Ethernet padding is not).
    let (ethertype, keep) = if !bos {
        (ETH_MPLS, len - below)
    } else {
        match ip_below(start + below, end)? {
            IpBelow::V4 { total } => (ETH_IPV4, total),
            IpBelow::V6 { total } => (ETH_IPV6, total),
        }
    };
    if keep > usize::from(op.mtu) {
        return None;
    }
    FAST_TX.redirect(op.tx_slot, 0).ok()?;
    // Nothing is written before this point: from here on every step succeeds, as the checks
    // above hold.
    trim(ctx, len - below - keep)?;
    if uniform {
        let (start, end) = (ctx.data(), ctx.data_end());
        let at = start + below;
        if ethertype == ETH_MPLS {
            if at + LABEL_LEN > end {
                return None;
            }
            // SAFETY: checked just above: the label below is in the frame.
            unsafe { *((at + 3) as *mut u8) = ttl - 1 };
        } else if ethertype == ETH_IPV4 {
            if at + IPV4_LEN > end {
                return None;
            }
            // SAFETY: checked just above: the fixed IPv4 header is in the frame.
            unsafe { set_ipv4_ttl(at, ttl - 1) };
        } else {
            if at + IPV6_LEN > end {
                return None;
            }
            // SAFETY: checked just above: the fixed IPv6 header is in the frame.
            unsafe { *((at + 7) as *mut u8) = ttl - 1 };
        }
    }
    // The label goes: the new Ethernet header ends where it ended.
    // SAFETY: the helper checks its arguments against the frame it is given.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, LABEL_LEN as i32) } != 0 {
        return None;
    }
    let (start, end) = (ctx.data(), ctx.data_end());
    if start + ETH_LEN > end {
        return None;
    }
    // SAFETY: checked just above: the Ethernet header is in the frame.
    unsafe {
        core::ptr::write_unaligned(start as *mut [u8; 12], op.macs);
        core::ptr::write_unaligned((start + 12) as *mut u16, ethertype.to_be());
    }
    Some(Sent {
        tx_slot: op.tx_slot,
        len: end - start,
    })
}

/// Routes the IP packet at `l3` in VRF `vrf` and rewrites the frame for the FEC it hits, as
/// the pipeline's `route_ipv4` / `route_ipv6` and `emit`. `six`: the IP version the headers
/// above promise (`None`: either, as below a VPN label; a packet of the other one goes to the
/// workers). `hop` is the label TTL that counts as the hop (its - 1 becomes the IP TTL or hop
/// limit; `None`: the packet's own counts), `qos` the class of service (`None`: the IP
/// precedence or the IPv6 class selector). The pipeline treats no IPv6 extension header
/// apart: neither does this.
#[inline(always)]
fn route(
    ctx: &XdpContext,
    t: Gen,
    l3: usize,
    vrf: u32,
    six: Option<bool>,
    hop: Option<u8>,
    qos: Option<u8>,
) -> Option<Sent> {
    let (start, end) = (ctx.data(), ctx.data_end());
    let at = start + l3;
    let (is6, total) = match ip_below(at, end)? {
        IpBelow::V4 { total } => (false, total),
        IpBelow::V6 { total } => (true, total),
    };
    if six.is_some_and(|want| want != is6) {
        return None;
    }
    let info = t.vrf(vrf)?;
    let (ttl, class, fec) = if is6 {
        if at + IPV6_LEN > end {
            return None;
        }
        // SAFETY: checked just above: the fixed IPv6 header is in the frame.
        let (first, hop_limit, dst) = unsafe {
            (
                *(at as *const u8),
                *((at + 7) as *const u8),
                core::ptr::read_unaligned((at + 24) as *const [u8; 16]),
            )
        };
        // Multicast (ff00::/8) and link-local (fe80::/10) destinations are the workers': the
        // tables hold neither, and ours among them are answered there.
        if dst[0] == 0xff || (dst[0] == 0xfe && dst[1] & 0xc0 == 0x80) || info.v6 == 0 {
            return None;
        }
        // The class selector, the top 3 bits of the traffic class (the low nibble of the
        // first byte holds its top half).
        (hop_limit, (first & 0xf) >> 1, t.route6(vrf, dst)?)
    } else {
        if at + IPV4_LEN > end {
            return None;
        }
        // SAFETY: checked just above: the fixed IPv4 header is in the frame.
        let (tos, ip_ttl, dst) = unsafe {
            (
                *((at + 1) as *const u8),
                *((at + 8) as *const u8),
                u32::from_be(core::ptr::read_unaligned((at + 16) as *const u32)),
            )
        };
        // Multicast and broadcast go to the kernel; so does everything the tables do not
        // forward.
        if dst >> 28 == 0xe || dst == u32::MAX || info.present == 0 {
            return None;
        }
        (ip_ttl, tos >> 5, lookup4(&info, dst)?)
    };
    let packet = Packet {
        at,
        end,
        l3,
        total,
        ttl,
        hop: hop.unwrap_or(ttl),
        qos: qos.unwrap_or(class),
        six: is6,
    };
    send(ctx, t, &info, fec, &packet)
}

/// An IP packet [`route`] found a route for.
struct Packet {
    /// Where it starts, and where the frame ends.
    at: usize,
    end: usize,
    /// Its offset in the frame.
    l3: usize,
    /// Its length by its header.
    total: usize,
    /// Its TTL or hop limit.
    ttl: u8,
    /// The TTL that counts as the hop: its own, or the label's in uniform mode.
    hop: u8,
    /// The class of service.
    qos: u8,
    /// IPv6, not IPv4.
    six: bool,
}

/// Sends `p` by FEC `fec` of VRF `info`, as the pipeline after its lookup: TTL check, MTU
/// check, TTL or hop limit written, padding cut, the adjacency's header and the FEC's labels
/// pushed.
#[inline(always)]
fn send(ctx: &XdpContext, t: Gen, info: &FastVrf, fec: u32, p: &Packet) -> Option<Sent> {
    let (at, end, l3, total) = (p.at, p.end, p.l3, p.total);
    let FastNextHop { fec, adj } = t.fec(fec)?;
    if fec.kind != FAST_FEC_FORWARD {
        return None;
    }
    if adj.ok == 0 {
        return None;
    }
    if p.hop <= 1 {
        return None;
    }
    let new_ttl = p.hop - 1;
    let qos = p.qos & 7;
    let label_ttl = if info.uniform != 0 { new_ttl } else { 255 };
    let push = fec.push as usize;
    if push > FAST_MAX_PUSH || total + push * LABEL_LEN > usize::from(adj.mtu) {
        return None;
    }
    let l2 = if adj.tagged != 0 {
        ETH_LEN + VLAN_LEN
    } else {
        ETH_LEN
    };
    FAST_TX.redirect(adj.tx_slot, 0).ok()?;
    // Nothing is written before this point: from here on every step succeeds.
    if new_ttl != p.ttl {
        if p.six {
            if at + IPV6_LEN > end {
                return None;
            }
            // SAFETY: checked just above: the fixed IPv6 header is in the frame.
            unsafe { *((at + 7) as *mut u8) = new_ttl };
        } else {
            if at + IPV4_LEN > end {
                return None;
            }
            // SAFETY: checked just above: the fixed IPv4 header is in the frame.
            unsafe { set_ipv4_ttl(at, new_ttl) };
        }
    }
    trim(ctx, end - at - total)?;
    // The headers before the packet: from `l3` bytes to `l2` plus the labels.
    let grow = (l2 + push * LABEL_LEN) as i32 - l3 as i32;
    // SAFETY: the helper checks its arguments against the frame it is given.
    if grow != 0 && unsafe { bpf_xdp_adjust_head(ctx.ctx, -grow) } != 0 {
        return None;
    }
    let (start, end) = (ctx.data(), ctx.data_end());
    // The longest header (tag and four labels) is in the frame: the IP header follows it.
    if start + ETH_LEN + VLAN_LEN + FAST_MAX_PUSH * LABEL_LEN > end {
        return None;
    }
    let ethertype = match (push > 0, p.six) {
        (true, _) => ETH_MPLS,
        (false, false) => ETH_IPV4,
        (false, true) => ETH_IPV6,
    };
    // SAFETY: checked just above: every byte written below is in the frame.
    unsafe {
        if adj.tagged != 0 {
            let mut head = adj.header;
            head[14] |= qos << 5;
            core::ptr::write_unaligned(start as *mut [u8; 16], head);
            core::ptr::write_unaligned((start + 16) as *mut u16, ethertype.to_be());
        } else {
            let mut macs = [0u8; 12];
            macs.copy_from_slice(&adj.header[..12]);
            core::ptr::write_unaligned(start as *mut [u8; 12], macs);
            core::ptr::write_unaligned((start + 12) as *mut u16, ethertype.to_be());
        }
        let tc_ttl = u32::from(qos) << 9 | u32::from(label_ttl);
        let mut i = 0;
        while i < FAST_MAX_PUSH {
            if i < push {
                let mut word = fec.labels[i] | tc_ttl;
                if i + 1 == push {
                    word |= 0x100;
                }
                core::ptr::write_unaligned((start + l2 + i * LABEL_LEN) as *mut u32, word.to_be());
            }
            i += 1;
        }
    }
    if let Some(c) = FAST_VRF_STATS.get_ptr_mut(info.counter) {
        // SAFETY: this CPU's own slot of a per-CPU array (see `port_count`).
        unsafe { *c += 1 };
    }
    Some(Sent {
        tx_slot: adj.tx_slot,
        len: end - start,
    })
}

/// The userspace IPv4 table's lookup (`Ipv4Lpm::lookup`) over its copy in the arrays: the FEC
/// of the longest prefix covering `addr`.
#[inline(always)]
fn lookup4(info: &FastVrf, addr: u32) -> Option<u32> {
    let mut shift = info.root_shift;
    if shift > 31 {
        return None;
    }
    let root = *ROOT.get(info.root_base + (addr >> shift))?;
    let mut entry = root as u32;
    if entry & NODE_BIT != 0 {
        // The whole subtree below a root entry lies in one page, whose first arena word the
        // root entry's upper half holds.
        let base = (root >> 32) as u32;
        for _ in 0..FAST_MAX_LEVELS {
            if entry & NODE_BIT == 0 {
                break;
            }
            if shift < 8 {
                return None;
            }
            shift -= 8;
            let node = base + (entry & PAGE_MASK);
            let slot = (addr >> shift) & 0xff;
            let group = word(&ARENA, node + (slot >> 4))? >> ((slot & 8) << 1);
            let starts = group & (0xff >> (7 - (slot & 7)));
            let rank = ((group >> 8) & 0xff) + popcount8(starts & 0xff);
            entry = word(&ARENA, node + HEADER_WORDS - 1 + rank)?;
        }
        if entry & NODE_BIT != 0 {
            return None;
        }
    }
    (entry != NO_ROUTE).then_some(entry)
}

/// Word `w` of an array of word pairs.
#[inline(always)]
fn word(map: &Array<u64>, w: u32) -> Option<u32> {
    let pair = *map.get(w >> 1)?;
    Some((pair >> ((w & 1) << 5)) as u32)
}

#[inline(always)]
fn popcount8(x: u32) -> u32 {
    let x = x - ((x >> 1) & 0x55);
    let x = (x & 0x33) + ((x >> 2) & 0x33);
    (x + (x >> 4)) & 0x0f
}

/// Cuts `cut` bytes (Ethernet padding) off the end of the frame.
#[inline(always)]
fn trim(ctx: &XdpContext, cut: usize) -> Option<()> {
    if cut > 0 {
        // SAFETY: the helper checks its arguments against the frame it is given.
        if unsafe { bpf_xdp_adjust_tail(ctx.ctx, -(cut as i32)) } != 0 {
            return None;
        }
    }
    Some(())
}

/// Writes TTL `ttl` into the IPv4 header at `at`, updating its checksum as the pipeline's
/// `set_ttl_and_update_checksum` does.
///
/// # Safety
/// The 20 bytes of the fixed header at `at` must be in the frame.
#[inline(always)]
unsafe fn set_ipv4_ttl(at: usize, ttl: u8) {
    // SAFETY: the caller proved the fixed header is in the frame.
    unsafe {
        let old = u16::from_be(core::ptr::read_unaligned((at + 8) as *const u16));
        let new = (u16::from(ttl) << 8) | (old & 0xff);
        let sum = u16::from_be(core::ptr::read_unaligned((at + 10) as *const u16));
        let sum = checksum_update(sum, old, new);
        core::ptr::write_unaligned((at + 8) as *mut u16, new.to_be());
        core::ptr::write_unaligned((at + 10) as *mut u16, sum.to_be());
    }
}

/// An IP packet below the headers, checked as the pipeline checks it before it forwards:
/// `total` is its length by its own header (at most what the frame holds).
enum IpBelow {
    V4 { total: usize },
    V6 { total: usize },
}

/// Reads and checks the IP header at `at`; `None` for anything the pipeline would drop (bad
/// version, short, bad IPv4 header checksum) and for IPv4 options, left to the workers.
#[inline(always)]
fn ip_below(at: usize, end: usize) -> Option<IpBelow> {
    if at + 1 > end {
        return None;
    }
    // SAFETY: checked just above.
    let first = unsafe { *(at as *const u8) };
    let avail = end - at;
    match first >> 4 {
        4 => {
            // The fixed header is summed as ten words the verifier can see are in the frame.
            if first & 0xf != 5 || at + IPV4_LEN > end {
                return None;
            }
            // SAFETY: checked just above: the fixed header is in the frame.
            let words: [u32; 5] = unsafe { core::ptr::read_unaligned(at as *const [u32; 5]) };
            // SAFETY: as above.
            let total = usize::from(u16::from_be(unsafe {
                core::ptr::read_unaligned((at + 2) as *const u16)
            }));
            if total < IPV4_LEN || total > avail {
                return None;
            }
            // The header checksum: the one's complement sum of the header is all ones. The
            // sum is taken over 32-bit words as they lie in memory: a one's complement sum
            // comes out the same, byte-swapped, in either byte order (RFC 1071), and all
            // ones swapped is all ones, so no word needs swapping first.
            let mut sum: u64 = 0;
            for w in words {
                sum += u64::from(w);
            }
            if fold64(sum) != 0 {
                return None;
            }
            Some(IpBelow::V4 { total })
        }
        6 => {
            if at + 40 > end {
                return None;
            }
            // SAFETY: the fixed header is in the frame (checked above).
            let payload = usize::from(u16::from_be(unsafe {
                core::ptr::read_unaligned((at + 4) as *const u16)
            }));
            let total = 40 + payload;
            if total > avail {
                return None;
            }
            Some(IpBelow::V6 { total })
        }
        _ => None,
    }
}

/// The one's complement sum folded to 16 bits and inverted (the pipeline's `checksum::fold`).
#[inline(always)]
fn fold(sum: u32) -> u16 {
    let s = (sum & 0xffff) + (sum >> 16);
    let s = (s & 0xffff) + (s >> 16);
    !(s as u16)
}

/// A one's complement sum of 32-bit words folded to 16 bits and inverted.
#[inline(always)]
fn fold64(sum: u64) -> u16 {
    let s = (sum & 0xffff_ffff) + (sum >> 32);
    let s = (s & 0xffff_ffff) + (s >> 32);
    fold(s as u32)
}

/// RFC 1624 incremental update, as the pipeline's `checksum::update`.
#[inline(always)]
fn checksum_update(old_checksum: u16, old_word: u16, new_word: u16) -> u16 {
    fold(u32::from(!old_checksum) + u32::from(!old_word) + u32::from(new_word))
}

/// Adds `n` to counter `index` of port `slot`.
#[inline(always)]
fn port_count(slot: u32, index: u32, n: u64) {
    if let Some(c) = FAST_PORT_STATS.get_ptr_mut(slot) {
        // SAFETY: the pointer comes from a successful lookup in a per-CPU array, so it is
        // valid and this CPU's own; an XDP program runs to completion on its CPU, so no other
        // writer can race this increment.
        unsafe { (*c)[index as usize] += n };
    }
}

/// Adds a packet to counter `packets` and `bytes` to counter `octets` of port `slot`: one
/// lookup, as a port's counters share one value.
#[inline(always)]
fn port_count_frame(slot: u32, packets: u32, octets: u32, bytes: u64) {
    if let Some(c) = FAST_PORT_STATS.get_ptr_mut(slot) {
        // SAFETY: as in `port_count`.
        unsafe {
            (*c)[packets as usize] += 1;
            (*c)[octets as usize] += bytes;
        }
    }
}

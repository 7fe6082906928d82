//! The XDP steering program: every frame goes to the AF_XDP socket of its RX queue through
//! the XSKMAP, or to the kernel (XDP_PASS) when no socket is bound on that queue, so the
//! kernel keeps working before xpe starts and after it stops. Per-CPU counters record both.
//!
//! The same object holds the fast path (`xpe_fast`, `xpe run --fast-path xdp`), which forwards
//! the simple label cases in the kernel and steers the rest. The lab tools' programs are built
//! apart, from `lab/ebpf/`.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]
// The program is only meaningful for the bpf target; the host build (cargo build --workspace)
// sees an empty main.
#![cfg_attr(not(target_arch = "bpf"), allow(unused))]

#[cfg(target_arch = "bpf")]
mod program {
    // An eBPF crate is a place where unsafe is allowed (STYLE.md): map slots are raw
    // pointers handed out by the kernel.
    #![allow(unsafe_code)]

    use aya_ebpf::bindings::xdp_action;
    use aya_ebpf::helpers::{bpf_xdp_adjust_head, bpf_xdp_adjust_tail};
    use aya_ebpf::macros::{map, xdp};
    use aya_ebpf::maps::{Array, DevMap, HashMap, PerCpuArray, XskMap};
    use aya_ebpf::programs::XdpContext;
    use xpe_ebpf::{
        FastLabel, FastPort, FAST_MAX_DEPTH, FAST_MAX_LABELS, FAST_MAX_PORTS, FAST_OP_POP,
        FAST_OP_SWAP, FAST_PORT_PASSED, FAST_PORT_REDIRECTED, FAST_PORT_RX_BYTES,
        FAST_PORT_RX_PACKETS, FAST_PORT_STATS_LEN, FAST_PORT_TX_BYTES, FAST_PORT_TX_PACKETS,
        MAX_QUEUES, STATS_LEN, STAT_PASSED, STAT_REDIRECTED,
    };

    #[map(name = "XPE_XSKS")]
    static XSKS: XskMap = XskMap::with_max_entries(MAX_QUEUES, 0);

    #[map(name = "XPE_STATS")]
    static STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(STATS_LEN, 0);

    // The fast path's maps. The steering program shares this object, and userspace loads it
    // with these shrunk to one entry each (`steer::load_object`), so they cost it nothing.
    // The hash maps also allocate per entry inserted (BPF_F_NO_PREALLOC).
    const NO_PREALLOC: u32 = 1;

    #[map(name = "XPE_FAST_LABELS0")]
    static FAST_LABELS0: HashMap<u32, FastLabel> =
        HashMap::with_max_entries(FAST_MAX_LABELS, NO_PREALLOC);

    #[map(name = "XPE_FAST_LABELS1")]
    static FAST_LABELS1: HashMap<u32, FastLabel> =
        HashMap::with_max_entries(FAST_MAX_LABELS, NO_PREALLOC);

    #[map(name = "XPE_FAST_GEN")]
    static FAST_GEN: Array<u32> = Array::with_max_entries(1, 0);

    #[map(name = "XPE_FAST_PORTS")]
    static FAST_PORTS: HashMap<u32, FastPort> =
        HashMap::with_max_entries(FAST_MAX_PORTS, NO_PREALLOC);

    #[map(name = "XPE_FAST_TX")]
    static FAST_TX: DevMap = DevMap::with_max_entries(FAST_MAX_PORTS, 0);

    #[map(name = "XPE_FAST_XSKS")]
    static FAST_XSKS: XskMap = XskMap::with_max_entries(FAST_MAX_PORTS * MAX_QUEUES, 0);

    #[map(name = "XPE_FAST_PORT_STATS")]
    static FAST_PORT_STATS: PerCpuArray<u64> =
        PerCpuArray::with_max_entries(FAST_MAX_PORTS * FAST_PORT_STATS_LEN, 0);

    #[map(name = "XPE_FAST_LABEL_STATS")]
    static FAST_LABEL_STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(FAST_MAX_LABELS, 0);

    const ETH_LEN: usize = 14;
    const LABEL_LEN: usize = 4;
    const ETH_MPLS: u16 = 0x8847;
    const ETH_IPV4: u16 = 0x0800;
    const ETH_IPV6: u16 = 0x86dd;

    /// The fast path: an LSR swap or PHP forwarded in the kernel, exactly as the userspace
    /// pipeline would forward it; every other frame is steered to its port and queue's socket
    /// untouched. Frames from an interface that is not one of xpe's go to the kernel.
    #[xdp(frags)]
    pub fn xpe_fast(ctx: XdpContext) -> u32 {
        // SAFETY: xdp_md is the context the kernel passed; reading a field is always valid.
        let ifindex = unsafe { (*ctx.ctx).ingress_ifindex };
        // SAFETY: a map value pointer from a successful lookup, copied out at once.
        let Some(port) = (unsafe { FAST_PORTS.get(&ifindex) }).copied() else {
            return xdp_action::XDP_PASS;
        };
        if port.core != 0 {
            if let Some(action) = mpls(&ctx, &port) {
                return action;
            }
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

    /// Forwards a labelled frame whose top label the fast path holds (swap or PHP) exactly as
    /// the pipeline would, and counts it; `None` (the frame untouched) for anything else.
    #[inline(always)]
    fn mpls(ctx: &XdpContext, port: &FastPort) -> Option<u32> {
        let (start, end) = (ctx.data(), ctx.data_end());
        if start + ETH_LEN + LABEL_LEN > end {
            return None;
        }
        // SAFETY: the check above proves the first ETH_LEN + LABEL_LEN bytes are in the frame.
        let (dst, ethertype, entry) = unsafe {
            (
                core::ptr::read_unaligned(start as *const [u8; 6]),
                u16::from_be(core::ptr::read_unaligned((start + 12) as *const u16)),
                u32::from_be(core::ptr::read_unaligned((start + ETH_LEN) as *const u32)),
            )
        };
        if dst != port.mac || ethertype != ETH_MPLS {
            return None;
        }
        let (label, ttl) = (entry >> 12, entry & 0xff);
        if label < 16 || ttl <= 1 {
            return None;
        }
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
        // The live label map: userspace writes only the other one, and waits for an RCU grace
        // period after switching before it writes this one again.
        let op = match FAST_GEN.get(0).copied() {
            // SAFETY: a map value pointer from a successful lookup, copied out at once.
            Some(0) => unsafe { *FAST_LABELS0.get(&label)? },
            // SAFETY: as above.
            Some(1) => unsafe { *FAST_LABELS1.get(&label)? },
            _ => return None,
        };
        // SAFETY: the helper only reads the context the kernel passed.
        let whole = unsafe { aya_ebpf::helpers::bpf_xdp_get_buff_len(ctx.ctx) };
        let len = end - start;
        // A frame in several buffers (jumbo, multi-buffer XDP) is left to the workers.
        if whole != len as u64 {
            return None;
        }
        let rx_len = len as u64;
        let tx_len = match op.op {
            FAST_OP_SWAP => swap(ctx, &op, entry, ttl, len)?,
            FAST_OP_POP => pop(ctx, &op, entry & 0x100 != 0, ttl as u8, len)?,
            _ => return None,
        };
        port_count(port.slot, FAST_PORT_RX_PACKETS, 1);
        port_count(port.slot, FAST_PORT_RX_BYTES, rx_len);
        port_count(op.tx_slot, FAST_PORT_TX_PACKETS, 1);
        port_count(op.tx_slot, FAST_PORT_TX_BYTES, tx_len);
        if let Some(slot) = FAST_LABEL_STATS.get_ptr_mut(op.counter) {
            // SAFETY: as in `count`: this CPU's own slot of a per-CPU array.
            unsafe { *slot += 1 };
        }
        Some(xdp_action::XDP_REDIRECT)
    }

    /// The swap: new label, TC and S kept, TTL - 1, new MACs. Returns the length sent.
    #[inline(always)]
    fn swap(ctx: &XdpContext, op: &FastLabel, entry: u32, ttl: u32, len: usize) -> Option<u64> {
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
        // SAFETY: checked just above: these 12 + 4 bytes are inside the frame; unaligned,
        // since nothing promises where the frame starts.
        unsafe {
            core::ptr::write_unaligned(start as *mut [u8; 12], op.macs);
            core::ptr::write_unaligned((start + ETH_LEN) as *mut u32, out.to_be());
        }
        Some(len as u64)
    }

    /// Penultimate-hop pop, as the pipeline's `php`: returns the length sent.
    #[inline(always)]
    fn pop(ctx: &XdpContext, op: &FastLabel, bos: bool, ttl: u8, len: usize) -> Option<u64> {
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
        // Nothing is written before this point: from here on every step succeeds, as the
        // checks above hold.
        let cut = len - below - keep;
        if cut > 0 {
            // SAFETY: the helper checks its arguments against the frame it is given.
            if unsafe { bpf_xdp_adjust_tail(ctx.ctx, -(cut as i32)) } != 0 {
                return None;
            }
        }
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
                if at + 20 > end {
                    return None;
                }
                // SAFETY: checked just above: the fixed IPv4 header is in the frame.
                unsafe {
                    let old = u16::from_be(core::ptr::read_unaligned((at + 8) as *const u16));
                    let new = (u16::from(ttl - 1) << 8) | (old & 0xff);
                    let sum = u16::from_be(core::ptr::read_unaligned((at + 10) as *const u16));
                    let sum = checksum_update(sum, old, new);
                    core::ptr::write_unaligned((at + 8) as *mut u16, new.to_be());
                    core::ptr::write_unaligned((at + 10) as *mut u16, sum.to_be());
                }
            } else {
                if at + 40 > end {
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
        Some((end - start) as u64)
    }

    /// An IP packet below the labels, checked as the pipeline checks it before it forwards:
    /// `total` is its length by its own header (at most what the frame holds).
    enum IpBelow {
        V4 { total: usize },
        V6 { total: usize },
    }

    /// Reads and checks the IP header at `at`; `None` for anything the pipeline would drop
    /// (bad version, short, bad IPv4 header checksum).
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
                // Options (IHL > 5) are left to the workers: the fixed header is summed as
                // ten words the verifier can see are in the frame.
                if first & 0xf != 5 || at + 20 > end {
                    return None;
                }
                // SAFETY: checked just above: the fixed header is in the frame.
                let words: [u16; 10] = unsafe { core::ptr::read_unaligned(at as *const [u16; 10]) };
                let total = usize::from(u16::from_be(words[1]));
                if total < 20 || total > avail {
                    return None;
                }
                // The header checksum: the one's complement sum of the header is all ones.
                let mut sum: u32 = 0;
                for w in words {
                    sum += u32::from(u16::from_be(w));
                }
                if fold(sum) != 0 {
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

    /// The one's complement sum folded to 16 bits and inverted (the pipeline's
    /// `checksum::fold`).
    #[inline(always)]
    fn fold(sum: u32) -> u16 {
        let s = (sum & 0xffff) + (sum >> 16);
        let s = (s & 0xffff) + (s >> 16);
        !(s as u16)
    }

    /// RFC 1624 incremental update, as the pipeline's `checksum::update`.
    #[inline(always)]
    fn checksum_update(old_checksum: u16, old_word: u16, new_word: u16) -> u16 {
        fold(u32::from(!old_checksum) + u32::from(!old_word) + u32::from(new_word))
    }

    /// Adds `n` to counter `index` of port `slot`.
    #[inline(always)]
    fn port_count(slot: u32, index: u32, n: u64) {
        if let Some(c) = FAST_PORT_STATS.get_ptr_mut(slot * FAST_PORT_STATS_LEN + index) {
            // SAFETY: as in `count`: this CPU's own slot of a per-CPU array.
            unsafe { *c += n };
        }
    }

    /// Redirects to the queue's socket; the low bits of the flags make the helper return
    /// XDP_PASS when the slot is empty (bpf_redirect_map's default action). Declared
    /// multi-buffer capable (`xdp.frags`): it never reads packet data, and without the flag
    /// veth refuses native XDP above about 3.5 KB of MTU.
    #[xdp(frags)]
    pub fn xpe_steer(ctx: XdpContext) -> u32 {
        steer(&ctx)
    }

    #[inline(always)]
    fn steer(ctx: &XdpContext) -> u32 {
        match XSKS.redirect(ctx.rx_queue_index(), u64::from(xdp_action::XDP_PASS)) {
            Ok(action) => {
                count(STAT_REDIRECTED);
                action
            }
            Err(action) => {
                count(STAT_PASSED);
                action
            }
        }
    }

    #[inline(always)]
    fn count(index: u32) {
        if let Some(slot) = STATS.get_ptr_mut(index) {
            // SAFETY: the pointer comes from a successful lookup in a per-CPU array, so it is
            // valid and this CPU's own; an XDP program runs to completion on its CPU, so no
            // other writer can race this increment.
            unsafe { *slot += 1 };
        }
    }

    #[panic_handler]
    fn panic(_info: &core::panic::PanicInfo) -> ! {
        // The verifier rejects any reachable path here; a loop is the conventional body.
        loop {}
    }
}

#[cfg(not(target_arch = "bpf"))]
fn main() {}

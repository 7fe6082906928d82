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
    use aya_ebpf::macros::{map, xdp};
    use aya_ebpf::maps::{Array, DevMap, HashMap, PerCpuArray, XskMap};
    use aya_ebpf::programs::XdpContext;
    use xpe_ebpf::{
        FastPort, FastSwap, FAST_MAX_DEPTH, FAST_MAX_LABELS, FAST_MAX_PORTS, FAST_PORT_PASSED,
        FAST_PORT_REDIRECTED, FAST_PORT_RX_BYTES, FAST_PORT_RX_PACKETS, FAST_PORT_STATS_LEN,
        FAST_PORT_TX_BYTES, FAST_PORT_TX_PACKETS, MAX_QUEUES, STATS_LEN, STAT_PASSED,
        STAT_REDIRECTED,
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
    static FAST_LABELS0: HashMap<u32, FastSwap> =
        HashMap::with_max_entries(FAST_MAX_LABELS, NO_PREALLOC);

    #[map(name = "XPE_FAST_LABELS1")]
    static FAST_LABELS1: HashMap<u32, FastSwap> =
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

    /// The fast path: an LSR swap forwarded in the kernel, exactly as the userspace pipeline
    /// would forward it; every other frame is steered to its port and queue's socket
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
            if let Some(action) = swap(&ctx, &port) {
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

    /// Swaps the top label of a frame the pipeline would swap, redirects it and counts it;
    /// `None` (the frame untouched) for anything else.
    #[inline(always)]
    fn swap(ctx: &XdpContext, port: &FastPort) -> Option<u32> {
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
        let swap = match FAST_GEN.get(0).copied() {
            // SAFETY: a map value pointer from a successful lookup, copied out at once.
            Some(0) => unsafe { *FAST_LABELS0.get(&label)? },
            // SAFETY: as above.
            Some(1) => unsafe { *FAST_LABELS1.get(&label)? },
            _ => return None,
        };
        let len = end - start;
        // SAFETY: the helper only reads the context the kernel passed.
        let whole = unsafe { aya_ebpf::helpers::bpf_xdp_get_buff_len(ctx.ctx) };
        // A frame in several buffers (jumbo, multi-buffer XDP) is left to the workers; so is
        // one over the egress MTU.
        if whole != len as u64 || len - ETH_LEN > usize::from(swap.mtu) {
            return None;
        }
        // Redirect first: with the slot empty the frame goes to user space unchanged.
        let action = FAST_TX.redirect(swap.tx_slot, 0).ok()?;
        // TC and S kept, TTL - 1 (the pipeline's swap).
        let out = swap.out | (entry & 0xf00) | (ttl - 1);
        // SAFETY: the first check proves these 12 + 4 bytes are inside the frame; the writes
        // are unaligned because nothing promises where the frame starts.
        unsafe {
            core::ptr::write_unaligned(start as *mut [u8; 12], swap.macs);
            core::ptr::write_unaligned((start + ETH_LEN) as *mut u32, out.to_be());
        }
        let len = len as u64;
        port_count(port.slot, FAST_PORT_RX_PACKETS, 1);
        port_count(port.slot, FAST_PORT_RX_BYTES, len);
        port_count(swap.tx_slot, FAST_PORT_TX_PACKETS, 1);
        port_count(swap.tx_slot, FAST_PORT_TX_BYTES, len);
        if let Some(slot) = FAST_LABEL_STATS.get_ptr_mut(swap.counter) {
            // SAFETY: as in `count`: this CPU's own slot of a per-CPU array.
            unsafe { *slot += 1 };
        }
        Some(action)
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

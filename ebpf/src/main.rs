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
mod fast;

#[cfg(target_arch = "bpf")]
mod program {
    // An eBPF crate is a place where unsafe is allowed (STYLE.md): map slots are raw
    // pointers handed out by the kernel.
    #![allow(unsafe_code)]

    use aya_ebpf::bindings::xdp_action;
    use aya_ebpf::macros::{map, xdp};
    use aya_ebpf::maps::{PerCpuArray, XskMap};
    use aya_ebpf::programs::XdpContext;
    use xpe_ebpf::{MAX_QUEUES, STATS_LEN, STAT_PASSED, STAT_REDIRECTED};

    #[map(name = "XPE_XSKS")]
    static XSKS: XskMap = XskMap::with_max_entries(MAX_QUEUES, 0);

    #[map(name = "XPE_STATS")]
    static STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(STATS_LEN, 0);

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

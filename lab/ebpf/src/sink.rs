//! The sink's XDP program: counts every frame and its length in per-CPU counters and drops
//! it. Attached natively to the receiving end of a veth, it is the cheapest receiver there is,
//! so a generator's rate into it measures the generator (and a DUT's rate into it measures the
//! DUT). Declared multi-buffer capable (`xdp.frags`) so it attaches at any MTU; lengths count
//! every fragment.

// An eBPF crate is a place where unsafe is allowed (STYLE.md): map slots are raw
// pointers and the helper is a raw kernel call.
#![allow(unsafe_code)]

use aya_ebpf::bindings::xdp_action;
use aya_ebpf::helpers::generated::bpf_xdp_get_buff_len;
use aya_ebpf::macros::{map, xdp};
use aya_ebpf::maps::PerCpuArray;
use aya_ebpf::programs::XdpContext;
use xpe_lab_ebpf::{SINK_STATS_LEN, SINK_STAT_BYTES, SINK_STAT_FRAMES};

#[map(name = "XPE_DROP_STATS")]
static STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(SINK_STATS_LEN, 0);

/// Counts and drops.
#[xdp(frags)]
pub fn xpe_drop(ctx: XdpContext) -> u32 {
    // SAFETY: the helper takes the context pointer the kernel passed in.
    let len = unsafe { bpf_xdp_get_buff_len(ctx.ctx) };
    add(SINK_STAT_FRAMES, 1);
    add(SINK_STAT_BYTES, len);
    xdp_action::XDP_DROP
}

#[inline(always)]
fn add(index: u32, value: u64) {
    if let Some(slot) = STATS.get_ptr_mut(index) {
        // SAFETY: the pointer comes from a successful lookup in a per-CPU array, so it is
        // valid and this CPU's own; an XDP program runs to completion on its CPU.
        unsafe { *slot += value };
    }
}

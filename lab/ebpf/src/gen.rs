//! The packet generator's XDP program. Userspace runs it with BPF_PROG_TEST_RUN in live-frames
//! mode (BPF_F_TEST_XDP_LIVE_FRAMES): the kernel hands it frames from a page pool initialised
//! once with the template, and everything it redirects goes out through the target device's
//! `ndo_xdp_xmit` (for a veth, straight into the peer's receive ring).
//!
//! The page pool recycles its pages without copying the template in again, so a receiver that
//! edits frames in place (a router decrementing TTLs, pushing labels) would change what is sent
//! next. Every run therefore writes the head of the frame (all headers, up to
//! [`GEN_HEAD_MAX`] bytes) from the per-flow heads userspace precomputed, checksums included;
//! the flow is the frame's sequence number modulo the flow count, so flows take turns. The payload after the
//! head is the template's and is never rewritten.

// An eBPF crate is a place where unsafe is allowed (STYLE.md): map slots are raw
// pointers and the helpers are raw kernel calls; the globals need unmangled names.
#![allow(unsafe_code)]

use core::ffi::c_void;

use aya_ebpf::bindings::xdp_action;
use aya_ebpf::helpers::generated::{bpf_redirect, bpf_xdp_store_bytes};
use aya_ebpf::macros::{map, xdp};
use aya_ebpf::maps::Array;
use aya_ebpf::programs::XdpContext;
use aya_ebpf::Global;
use xpe_lab_ebpf::{GEN_HEAD_MAX, GEN_STATS_LEN, GEN_STAT_FRAMES, GEN_STAT_UNWRITTEN};

/// Per-flow heads; one entry in the object, sized to the flow count by the loader.
#[map(name = "XPE_GEN_HEADS")]
static HEADS: Array<[u8; GEN_HEAD_MAX]> = Array::with_max_entries(1, 0);

/// The frame sequence and the counters: one plain array, not per CPU, so that the flows take
/// turns exactly however the kernel spreads successive test runs over CPUs. Safe without
/// atomics because one generator runs one test run at a time (its own copy of the program and
/// maps), and a test run runs on one CPU (migration is off for its duration); frames the
/// device really receives return before touching it.
#[map(name = "XPE_GEN_STATS")]
static STATS: Array<u64> = Array::with_max_entries(GEN_STATS_LEN, 0);

/// The interface frames are redirected to; set by the loader.
#[no_mangle]
static XPE_GEN_IFINDEX: Global<u32> = Global::new(0);

/// The number of flows (entries of [`HEADS`] in use); set by the loader.
#[no_mangle]
static XPE_GEN_FLOWS: Global<u32> = Global::new(1);

/// Bytes of each head written over the frame; set by the loader.
#[no_mangle]
static XPE_GEN_HEAD_LEN: Global<u32> = Global::new(0);

/// The loopback device's index in every network namespace: a test run without a context
/// runs the program on loopback's RX queue 0. The loader also attaches the program to the
/// generator's device in skb mode (only to keep it in the kernel's XDP dispatcher, which makes
/// test runs cheap, see `bpf::gen` in xpe-lab): frames that device really receives pass untouched.
const LOOPBACK_IFINDEX: usize = 1;

/// Writes the next flow's head over the frame and redirects it; a frame whose head cannot be
/// written is dropped and counted, never sent with whatever a receiver left in it.
#[xdp]
pub fn xpe_gen(ctx: XdpContext) -> u32 {
    if ctx.ingress_ifindex() != LOOPBACK_IFINDEX {
        return xdp_action::XDP_PASS;
    }
    let Some(seq) = STATS.get_ptr_mut(GEN_STAT_FRAMES) else {
        return xdp_action::XDP_ABORTED;
    };
    // SAFETY: the pointer comes from a successful lookup in an array map, so it is valid for
    // the program's run; the only writer is this program in one test run at a time (see
    // STATS), so nothing races this read-modify-write.
    let n = unsafe {
        let n = *seq;
        *seq = n + 1;
        n
    };
    let flows = XPE_GEN_FLOWS.load();
    let flow = if flows > 1 {
        (n % u64::from(flows)) as u32
    } else {
        0
    };
    // The verifier needs the length bounded by the map value's size before the helper call:
    // masking keeps it in 0..=255 whatever the compiler does with the comparisons below.
    let len = XPE_GEN_HEAD_LEN.load() & 0xff;
    let written = match HEADS.get_ptr(flow) {
        Some(head) if len != 0 && len as usize <= GEN_HEAD_MAX => {
            // SAFETY: `head` points at a map value of GEN_HEAD_MAX bytes and `len` is at most
            // that; the helper checks the frame is at least `len` bytes long and fails
            // otherwise; the context pointer is the one the kernel passed in.
            unsafe { bpf_xdp_store_bytes(ctx.ctx, 0, head as *mut c_void, len) == 0 }
        }
        _ => false,
    };
    if !written {
        count(GEN_STAT_UNWRITTEN);
        return xdp_action::XDP_DROP;
    }
    // SAFETY: a plain helper call; with no flags it returns XDP_REDIRECT (or XDP_ABORTED for
    // flags it does not know, which none are).
    unsafe { bpf_redirect(XPE_GEN_IFINDEX.load(), 0) as u32 }
}

#[inline(always)]
fn count(index: u32) {
    if let Some(slot) = STATS.get_ptr_mut(index) {
        // SAFETY: as in `xpe_gen`: a valid slot, no concurrent writer.
        unsafe { *slot += 1 };
    }
}

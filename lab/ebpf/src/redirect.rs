//! The in-kernel forwarder (`xpe xdp-fwd`): the ceiling a userspace data plane on the same
//! links is measured against, like xdp-bench's redirect-map mode. Attached to the ingress
//! device, it writes the configured Ethernet destination and source over every frame and
//! redirects it to the egress device through a one-slot DEVMAP (`bpf_redirect_map`, which
//! queues frames per CPU and flushes them to the device's `ndo_xdp_xmit` in bulk at the end of
//! the NAPI poll, the kernel's fastest redirect path). No label or IP work: an I/O ceiling.
//! Per-CPU counters record the frames redirected and the frames dropped.

// An eBPF crate is a place where unsafe is allowed (STYLE.md): map slots and packet
// data are raw pointers; the globals need unmangled names.
#![allow(unsafe_code)]

use aya_ebpf::bindings::xdp_action;
use aya_ebpf::macros::{map, xdp};
use aya_ebpf::maps::{DevMap, PerCpuArray};
use aya_ebpf::programs::XdpContext;
use aya_ebpf::Global;
use xpe_lab_ebpf::{
    REDIRECT_STATS_LEN, REDIRECT_STAT_NO_TARGET, REDIRECT_STAT_REDIRECTED, REDIRECT_STAT_TOO_SHORT,
    REDIRECT_TX_SLOT,
};

/// An Ethernet header: destination, source, EtherType.
const ETH_HEADER_LEN: usize = 14;
/// The two addresses the program writes.
const ETH_ADDRS_LEN: usize = 12;

/// The egress device, in slot [`REDIRECT_TX_SLOT`]; filled by the loader before it attaches.
#[map(name = "XPE_REDIRECT_TX")]
static TX: DevMap = DevMap::with_max_entries(1, 0);

#[map(name = "XPE_REDIRECT_STATS")]
static STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(REDIRECT_STATS_LEN, 0);

/// Ethernet destination then source, as they go on the wire; set by the loader. A read-only
/// global: the verifier sees its value, and reading it costs no map lookup.
#[no_mangle]
static XPE_REDIRECT_MACS: Global<[u8; ETH_ADDRS_LEN]> = Global::new([0; ETH_ADDRS_LEN]);

/// Rewrites the Ethernet addresses and redirects to the egress device; frames shorter than an
/// Ethernet header are dropped and counted.
#[xdp]
pub fn xpe_redirect(ctx: XdpContext) -> u32 {
    let start = ctx.data();
    if start + ETH_HEADER_LEN > ctx.data_end() {
        count(REDIRECT_STAT_TOO_SHORT);
        return xdp_action::XDP_DROP;
    }
    let macs = XPE_REDIRECT_MACS.load();
    // SAFETY: the check above proves the frame's first ETH_HEADER_LEN bytes lie between
    // data and data_end, so the ETH_ADDRS_LEN bytes written are inside the frame; the
    // write is unaligned because nothing promises where the frame starts.
    unsafe { core::ptr::write_unaligned(start as *mut [u8; ETH_ADDRS_LEN], macs) };
    // The low bits of the flags are what the helper returns for an empty slot: drop.
    match TX.redirect(REDIRECT_TX_SLOT, u64::from(xdp_action::XDP_DROP)) {
        Ok(action) => {
            count(REDIRECT_STAT_REDIRECTED);
            action
        }
        Err(action) => {
            count(REDIRECT_STAT_NO_TARGET);
            action
        }
    }
}

#[inline(always)]
fn count(index: u32) {
    if let Some(slot) = STATS.get_ptr_mut(index) {
        // SAFETY: the pointer comes from a successful lookup in a per-CPU array, so it is
        // valid and this CPU's own; an XDP program runs to completion on its CPU.
        unsafe { *slot += 1 };
    }
}

//! The in-kernel forwarder (`xpe xdp-fwd`): the ceiling a userspace data plane on the same
//! links is measured against, like xdp-bench's redirect-map mode. Attached to the ingress
//! device, it writes the configured Ethernet destination and source over every frame and
//! redirects it to the egress device through a one-slot DEVMAP (`bpf_redirect_map`, which
//! queues frames per CPU and flushes them to the device's `ndo_xdp_xmit` in bulk at the end of
//! the NAPI poll, the kernel's fastest redirect path). No label or IP work: an I/O ceiling.
//! Per-CPU counters record the frames redirected and the frames dropped.
//!
//! By default it writes without reading the frame. With the check on (`xpe xdp-fwd
//! --check-dst`) it first reads the Ethernet destination and drops frames not addressed to the
//! ingress device, as every forwarder must, and as xdp-bench's redirect-map mode reads the
//! addresses it swaps. On veth the frame was last written on the sender's CPU, and a read waits
//! for its cache line where a write need not; measured, the read cost 0-5% of the rate
//! (benches/README.md, issue 17).

// An eBPF crate is a place where unsafe is allowed (STYLE.md): map slots and packet
// data are raw pointers; the globals need unmangled names.
#![allow(unsafe_code)]

use aya_ebpf::bindings::xdp_action;
use aya_ebpf::macros::{map, xdp};
use aya_ebpf::maps::{DevMap, PerCpuArray};
use aya_ebpf::programs::XdpContext;
use aya_ebpf::Global;
use xpe_lab_ebpf::{
    REDIRECT_STATS_LEN, REDIRECT_STAT_NOT_FOR_IN, REDIRECT_STAT_NO_TARGET,
    REDIRECT_STAT_REDIRECTED, REDIRECT_STAT_TOO_SHORT, REDIRECT_TX_SLOT,
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

/// The ingress device's MAC, then 1 to check every frame's destination against it (0: no
/// check; the global is read-only, so the verifier knows the value and can prune the branch);
/// set by the loader.
#[no_mangle]
static XPE_REDIRECT_CHECK: Global<[u8; 8]> = Global::new([0; 8]);

/// Rewrites the Ethernet addresses and redirects to the egress device; frames shorter than an
/// Ethernet header are dropped and counted.
#[xdp]
pub fn xpe_redirect(ctx: XdpContext) -> u32 {
    let start = ctx.data();
    if start + ETH_HEADER_LEN > ctx.data_end() {
        count(REDIRECT_STAT_TOO_SHORT);
        return xdp_action::XDP_DROP;
    }
    let check = XPE_REDIRECT_CHECK.load();
    if check[6] != 0 {
        // SAFETY: as for the write below: the first ETH_HEADER_LEN bytes are in the frame.
        let dst = unsafe { core::ptr::read_unaligned(start as *const [u8; 6]) };
        if dst[..] != check[..6] {
            count(REDIRECT_STAT_NOT_FOR_IN);
            return xdp_action::XDP_DROP;
        }
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

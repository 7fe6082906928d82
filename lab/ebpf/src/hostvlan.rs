//! The host-side 802.1Q tagging programs (tc classifiers), for lab and test hosts on a kernel
//! without 802.1Q devices (CONFIG_VLAN_8021Q off) or tc's act_vlan: `xpe_vlan_push` on egress
//! tags every untagged frame with the configured VLAN, `xpe_vlan_pop` on ingress removes that
//! VLAN's tag so the host's IP stack sees plain Ethernet. Frames with another tag, or untagged
//! frames on ingress, pass unchanged (TC_ACT_OK). The loader (`bpf::hostvlan` in xpe-lab)
//! sets the tag in [`XPE_HOST_VLAN_TCI`] before loading.

// An eBPF crate is a place where unsafe is allowed (STYLE.md): the context is a raw
// __sk_buff pointer and the helpers are raw kernel calls; the global needs an unmangled name.
#![allow(unsafe_code)]

use aya_ebpf::bindings::{TC_ACT_OK, TC_ACT_SHOT};
use aya_ebpf::helpers::generated::{bpf_skb_vlan_pop, bpf_skb_vlan_push};
use aya_ebpf::macros::classifier;
use aya_ebpf::programs::TcContext;
use aya_ebpf::Global;
use xpe_lab_ebpf::{ETHERTYPE_8021AD, ETHERTYPE_8021Q, VID_MASK};

/// The tag control information to push and to pop (PCP in the top 3 bits, VID in the low 12),
/// overridden by the loader; 0 only in the object file.
#[no_mangle]
static XPE_HOST_VLAN_TCI: Global<u16> = Global::new(0);

/// Offset of the EtherType (or TPID) in an Ethernet header.
const ETHERTYPE_OFFSET: usize = 12;

/// Egress: tag untagged frames with the configured VLAN.
#[classifier]
pub fn xpe_vlan_push(ctx: TcContext) -> i32 {
    // Already tagged (by the stack or in the data): leave it, a second tag would make Q-in-Q.
    // SAFETY: the pointer is the kernel's __sk_buff for this run of the program; the verifier
    // allows reading its vlan_present field.
    if unsafe { (*ctx.skb.skb).vlan_present } != 0 || outer_ethertype(&ctx).is_some_and(is_tpid) {
        return TC_ACT_OK as i32;
    }
    let tci = XPE_HOST_VLAN_TCI.load();
    // SAFETY: the helper takes the context pointer the kernel passed in; the TPID is in
    // network byte order as the helper's __be16 argument wants.
    let pushed = unsafe { bpf_skb_vlan_push(ctx.skb.skb, ETHERTYPE_8021Q.to_be(), tci) };
    // A frame that could not be tagged (no memory) is dropped rather than sent untagged onto
    // a link where untagged frames mean something else.
    if pushed == 0 {
        TC_ACT_OK as i32
    } else {
        TC_ACT_SHOT as i32
    }
}

/// Ingress: remove the configured VLAN's tag, leave everything else alone.
#[classifier]
pub fn xpe_vlan_pop(ctx: TcContext) -> i32 {
    let vid = XPE_HOST_VLAN_TCI.load() & VID_MASK;
    // The receive path moves an outer 802.1Q tag out of the data into the skb (skb_vlan_untag)
    // before the tc ingress hook, so the tag is usually in vlan_tci; a tag still in the data
    // is checked too.
    // SAFETY: the pointer is the kernel's __sk_buff for this run of the program; the verifier
    // allows reading its vlan_* fields.
    let (present, tci, proto) = unsafe {
        let skb = &*ctx.skb.skb;
        (skb.vlan_present, skb.vlan_tci, skb.vlan_proto)
    };
    let ours = if present != 0 {
        // vlan_proto is __be16 in the kernel, handed over unconverted.
        proto == u32::from(ETHERTYPE_8021Q.to_be()) && (tci as u16) & VID_MASK == vid
    } else if outer_ethertype(&ctx) == Some(ETHERTYPE_8021Q) {
        matches!(ctx.load::<u16>(ETHERTYPE_OFFSET + 2), Ok(t) if u16::from_be(t) & VID_MASK == vid)
    } else {
        false
    };
    if !ours {
        return TC_ACT_OK as i32;
    }
    // SAFETY: the helper takes the context pointer the kernel passed in.
    let popped = unsafe { bpf_skb_vlan_pop(ctx.skb.skb) };
    // A tag that could not be removed: drop the frame here, as the stack would anyway.
    if popped == 0 {
        TC_ACT_OK as i32
    } else {
        TC_ACT_SHOT as i32
    }
}

/// The EtherType field of the frame's data in host order, if the frame is long enough.
#[inline(always)]
fn outer_ethertype(ctx: &TcContext) -> Option<u16> {
    ctx.load::<u16>(ETHERTYPE_OFFSET).ok().map(u16::from_be)
}

#[inline(always)]
fn is_tpid(ethertype: u16) -> bool {
    ethertype == ETHERTYPE_8021Q || ethertype == ETHERTYPE_8021AD
}

//! Classify -> lookup -> rewrite: what happens to one frame, and to a batch of them.
//!
//! [`process`] takes a frame that arrived on a port and returns a [`Verdict`]. It never
//! panics and never allocates: bad bytes are a counted [`DropReason`], traffic for the kernel a
//! counted [`Punt`]. Rewrites happen in place; labels and VLAN tags are pushed by moving the
//! frame start into the buffer's headroom ([`Frame::resize_head`]).
//!
//! The forwarding semantics (RFC 3031/3032 label operations, RFC 3443 TTL modes, RFC 1812 IP
//! forwarding) are described in `docs/forwarding.md`.

mod counters;
mod fragment;
mod frame;
mod icmp_error;
pub mod learn;
mod local6;
pub mod punt;
#[cfg(test)]
mod tests;
mod trace;

pub use counters::{
    Counters, DropReason, GleanLog, IcmpAllowance, IcmpError, PolicedCounters, PortCounters, Punt,
    PuntClass, Verdict,
};
pub use fragment::fragment;
pub use frame::Frame;
pub use trace::{NoTrace, Step, Tracer};

use crate::tables::{
    AdjacencyId, AttachmentId, Fec, FecId, IlmAction, LabelStack, Port, PortId, PortKind, Snapshot,
    TtlMode, VrfId,
};
use crate::wire::ethernet::{self, EtherType, MacAddr};
use crate::wire::{arp, icmp, ipv4, ipv6, mpls, vlan, Error as WireError, IpVersion};
use local6::{ipv6_group_in, local_ipv6};

/// Deepest label stack we walk looking for the bottom; deeper stacks are `bad-label-stack`.
pub const MAX_LABEL_DEPTH: usize = 16;

/// TTL of packets we originate (echo replies), as Linux uses by default.
const ORIGINATED_TTL: u8 = 64;

const ETH_LEN: usize = ethernet::HEADER_LEN;
const VLAN_LEN: usize = vlan::HEADER_LEN;
const LABEL_LEN: usize = mpls::HEADER_LEN;
// Ethertypes as wire integers: the views' `ethertype_raw` is compared with them directly,
// without `EtherType::from_u16`'s mapping, and `emit` copies them into the header.
const TPID_8021Q: u16 = EtherType::Vlan.to_u16();
const TPID_8021AD: u16 = EtherType::QinQ.to_u16();
const ETH_IPV4: u16 = EtherType::Ipv4.to_u16();
const ETH_IPV6: u16 = EtherType::Ipv6.to_u16();
const ETH_ARP: u16 = EtherType::Arp.to_u16();
const ETH_MPLS: u16 = EtherType::Mpls.to_u16();
/// The VID 802.1Q reserves (0xfff, Table 9-2): never an attachment.
const VID_RESERVED: u16 = 0x0fff;

/// A MAC address in the low 48 bits of an integer, first octet lowest (as it lies in
/// memory), so a destination check is one compare and no byte swap.
#[inline]
fn mac_word(mac: MacAddr) -> u64 {
    let mut word = [0u8; 8];
    word[..6].copy_from_slice(&mac.0);
    u64::from_le_bytes(word)
}
const BROADCAST_WORD: u64 = 0xffff_ffff_ffff;
/// The I/G bit: the lowest bit of the first octet (IEEE 802 §8.2), so of a [`mac_word`].
const GROUP_BIT: u64 = 1;
/// The first two octets of every IPv6 multicast MAC, 33:33 (RFC 2464 §7), as the low 16 bits
/// of a [`mac_word`].
const IPV6_GROUP_WORD: u64 = 0x3333;

/// The port frames arrived on, resolved once per call of [`process`] or [`process_batch`].
#[derive(Clone, Copy)]
struct IngressPort<'a> {
    id: PortId,
    port: &'a Port,
    /// The port's MAC as a [`mac_word`]. The tables keep it big-endian (first octet
    /// highest); swapped here, once per batch rather than per frame.
    mac: u64,
}

impl<'a> IngressPort<'a> {
    #[inline]
    fn new(id: PortId, port: &'a Port) -> Self {
        IngressPort {
            id,
            port,
            mac: port.mac_key.swap_bytes() >> 16,
        }
    }
}

/// Per-frame state that flows from one stage to the next.
struct Ctx {
    ingress: PortId,
    attachment: AttachmentId,
    /// The IPv4 lookup done for this frame by the batch's first pass, if any.
    hint: Option<LookupHint>,
}

/// An IPv4 LPM result computed ahead of the per-frame pass ([`process_batch`]).
///
/// It is used only when the per-frame pass looks up exactly this destination in exactly this
/// VRF, so a hint can save a lookup but never change a decision.
#[derive(Clone, Copy)]
struct LookupHint {
    vrf: VrfId,
    dst: u32,
    fec: Option<u32>,
}

/// Frames per first pass of [`process_batch`]: the hints live in a stack array this long.
const HINT_BATCH: usize = 64;

/// How the IP TTL of a packet about to be forwarded is derived.
#[derive(Clone, Copy)]
enum Hop {
    /// Forwarded IP: decrement its TTL.
    Ip,
    /// Disposition in uniform mode: the IP TTL becomes the popped label's TTL - 1.
    Label(u8),
    /// We built it: send as is.
    Originated,
}

/// What a step of the pipeline returns: the value the next step goes on with, or the
/// frame's final verdict (`?` ends the frame there). Not named `Stage`: that is the
/// worker's per-batch trait (`xsk::worker::Stage`).
type OrVerdict<T> = Result<T, Verdict>;

/// Ends the frame as a counted drop. Not named `drop`, which would shadow `core::mem::drop`.
#[inline]
fn dropped<T>(reason: DropReason) -> OrVerdict<T> {
    Err(Verdict::Drop(reason))
}

/// Ends the frame as a counted punt to the kernel.
#[inline]
fn punted<T>(reason: Punt) -> OrVerdict<T> {
    Err(Verdict::Punt(reason))
}

/// The 3-bit class of service of a routed packet, or where to read it: it becomes the TC of
/// imposed labels and the PCP of an egress VLAN tag.
// Passed by value down to `emit` rather than kept in `Ctx`: a field of the context, which
// lives in memory across the out-of-line stages, cost a store per frame (callgrind).
#[derive(Clone, Copy)]
enum Qos {
    /// IP ingress: the precedence bits of the IP header (IPv4 TOS, IPv6 traffic class).
    FromIp,
    /// The TC of the label popped at MPLS ingress, or 0 for what we originate.
    Given(u8),
}

/// Runs one frame that arrived on `ingress` through the pipeline, rewriting it in place.
///
/// On [`Verdict::Forward`] the frame holds the bytes to transmit. On [`Verdict::Punt`] the
/// frame is exactly as it arrived, so the kernel sees what the wire carried. On
/// [`Verdict::Drop`] its content is unspecified.
#[inline]
pub fn process<T: Tracer>(
    snap: &Snapshot,
    ingress: PortId,
    frame: &mut Frame<'_>,
    counters: &mut Counters,
    trace: &mut T,
) -> Verdict {
    counters.ensure_for(snap);
    count_rx(counters, ingress, frame.len());
    trace.step(Step::Ingress {
        port: ingress,
        len: frame.len(),
    });
    let verdict = match snap.ports().get(usize::from(ingress.0)) {
        Some(port) => decide(
            snap,
            IngressPort::new(ingress, port),
            frame,
            counters,
            trace,
            None,
        ),
        None => Verdict::Drop(DropReason::UnknownPort),
    };
    count_verdict(counters, ingress, verdict, frame.len());
    verdict
}

/// Routes a frame the kernel sent on the mirror of `attachment` to the router's own MAC: an
/// IP packet the kernel hands to the data plane (its routes in mirror namespaces point at
/// xpe). It is looked up in the attachment's VRF, so it can never leave that VRF, and is
/// sent as we send what we originate: TTL unchanged, labels imposed by the route, the class
/// of service from the IP header.
///
/// A packet for one of our own addresses, or anything that is not IP, is dropped: the
/// kernel already has it, and nothing may loop between the kernel and the pipeline.
pub fn route_from_kernel(
    snap: &Snapshot,
    attachment: AttachmentId,
    frame: &mut Frame<'_>,
    counters: &mut Counters,
) -> Verdict {
    counters.ensure_for(snap);
    let verdict = match kernel_route(snap, attachment, frame, counters) {
        Ok(port) => Verdict::Forward(port),
        Err(Verdict::Punt(_)) => Verdict::Drop(DropReason::FromKernelNotRouted),
        // The kernel sizes what it sends by the mirror's MTU; only labels make it too big,
        // and the kernel's own path MTU discovery (or TCP's MSS) is the cure, not fragments.
        Err(Verdict::Fragment(_)) => Verdict::Drop(DropReason::MtuExceeded),
        Err(v) => v,
    };
    match verdict {
        Verdict::Forward(port) => {
            counters.forwarded += 1;
            if let Some(p) = counters.ports.get_mut(usize::from(port.0)) {
                p.tx_packets += 1;
                p.tx_bytes += frame.len() as u64;
            }
        }
        Verdict::Drop(r) => counters.drops[r as usize] += 1,
        Verdict::Punt(r) => counters.punts[r as usize] += 1,
        Verdict::Fragment(_) => {}
    }
    verdict
}

/// [`route_from_kernel`]'s decision, every way out a verdict the caller counts once.
fn kernel_route(
    snap: &Snapshot,
    attachment: AttachmentId,
    frame: &mut Frame<'_>,
    counters: &mut Counters,
) -> OrVerdict<PortId> {
    let Some(att) = snap.attachments().get(usize::from(attachment.0)) else {
        return dropped(DropReason::NoAttachment);
    };
    let Ok(eth) = ethernet::Frame::new_checked(frame.data()) else {
        return dropped(DropReason::Truncated);
    };
    let ethertype = eth.ethertype_raw();
    let mut ctx = Ctx {
        ingress: att.port,
        attachment,
        hint: None,
    };
    let (vrf, hop, qos, trace) = (att.vrf, Hop::Originated, Qos::FromIp, &mut NoTrace);
    match ethertype {
        ETH_IPV4 => route_ipv4(
            snap, frame, ETH_LEN, vrf, hop, qos, &mut ctx, counters, trace,
        ),
        ETH_IPV6 => route_ipv6(snap, frame, ETH_LEN, vrf, hop, qos, &ctx, counters, trace),
        _ => punted(Punt::OtherProtocol),
    }
}

#[inline]
fn count_rx(counters: &mut Counters, ingress: PortId, len: usize) {
    if let Some(p) = counters.ports.get_mut(usize::from(ingress.0)) {
        p.rx_packets += 1;
        p.rx_bytes += len as u64;
    }
}

#[inline]
fn count_verdict(counters: &mut Counters, ingress: PortId, verdict: Verdict, len: usize) {
    match verdict {
        Verdict::Forward(port) => {
            counters.forwarded += 1;
            if let Some(p) = counters.ports.get_mut(usize::from(port.0)) {
                p.tx_packets += 1;
                p.tx_bytes += len as u64;
            }
        }
        Verdict::Drop(r) => {
            counters.drops[r as usize] += 1;
            if let Some(p) = counters.ports.get_mut(usize::from(ingress.0)) {
                p.rx_drops += 1;
            }
        }
        Verdict::Punt(r) => counters.punts[r as usize] += 1,
        // The packet and its fragments are counted as they are made (`fragment`).
        Verdict::Fragment(_) => counters.forwarded += 1,
    }
}

/// One frame's decision on a port already resolved (once per batch by [`process_batch`]).
// Forced inline: `process_batch` calls it from two loops, and in the small-table loop the
// constant `None` hint must compile the hint handling away (measured with callgrind).
#[inline(always)]
fn decide<T: Tracer>(
    snap: &Snapshot,
    rx: IngressPort<'_>,
    frame: &mut Frame<'_>,
    counters: &mut Counters,
    trace: &mut T,
    hint: Option<LookupHint>,
) -> Verdict {
    match classify(snap, rx, frame, counters, trace, hint) {
        Ok(port) => Verdict::Forward(port),
        // A drop path: the frame's headers are as they arrived (every TTL and MTU check comes
        // before a rewrite), so the error is built from them without a cost to the frames
        // that are forwarded.
        Err(Verdict::Drop(r @ (DropReason::TtlExpired | DropReason::MtuExceeded))) => {
            icmp_error::answer(snap, rx.id, frame, r, counters, trace)
        }
        Err(v) => v,
    }
}

/// Runs a batch of frames that arrived on one port; `verdicts[i]` is the verdict of `frames[i]`.
///
/// The snapshot is loaded once by the caller for the whole batch, and the ingress port is
/// resolved once. When a VRF is large enough for its lookups to miss the cache, the IPv4
/// lookups of up to 64 frames run first, back to back, so their misses overlap (memory-level
/// parallelism) instead of each stalling the full per-frame path; the per-frame pass then
/// uses each result once.
pub fn process_batch(
    snap: &Snapshot,
    ingress: PortId,
    frames: &mut [Frame<'_>],
    verdicts: &mut [Verdict],
    counters: &mut Counters,
) {
    counters.ensure_for(snap);
    let n = frames.len().min(verdicts.len());
    let (frames, verdicts) = (&mut frames[..n], &mut verdicts[..n]);
    if let Some(p) = counters.ports.get_mut(usize::from(ingress.0)) {
        p.rx_packets += n as u64;
        p.rx_bytes += frames.iter().map(|f| f.len() as u64).sum::<u64>();
    }
    let Some(port) = snap.ports().get(usize::from(ingress.0)) else {
        for verdict in verdicts.iter_mut() {
            *verdict = Verdict::Drop(DropReason::UnknownPort);
        }
        counters.drops[DropReason::UnknownPort as usize] += n as u64;
        if let Some(p) = counters.ports.get_mut(usize::from(ingress.0)) {
            p.rx_drops += n as u64;
        }
        return;
    };
    let rx = IngressPort::new(ingress, port);
    if !snap.has_large_vrf() {
        for (frame, verdict) in frames.iter_mut().zip(verdicts.iter_mut()) {
            let v = decide(snap, rx, frame, counters, &mut NoTrace, None);
            *verdict = v;
            count_verdict(counters, ingress, v, frame.len());
        }
        return;
    }
    for (frames, verdicts) in frames
        .chunks_mut(HINT_BATCH)
        .zip(verdicts.chunks_mut(HINT_BATCH))
    {
        let mut hints = [None; HINT_BATCH];
        for (hint, frame) in hints.iter_mut().zip(frames.iter()) {
            *hint = lookup_ahead(snap, port, frame.data());
        }
        for ((frame, verdict), hint) in frames.iter_mut().zip(verdicts.iter_mut()).zip(hints) {
            let v = decide(snap, rx, frame, counters, &mut NoTrace, hint);
            *verdict = v;
            count_verdict(counters, ingress, v, frame.len());
        }
    }
}

/// The first pass of [`process_batch`]: finds the VRF and IPv4 destination of the common
/// shapes (IPv4 after at most one 802.1Q tag; IPv4 under one table label) and looks it up.
/// Little is validated here: `process` validates first and uses the result only if the
/// (VRF, destination) it looks up is the same.
#[inline]
fn lookup_ahead(snap: &Snapshot, port: &Port, d: &[u8]) -> Option<LookupHint> {
    let eth = ethernet::Frame::new_checked(d).ok()?;
    let (mut vid, mut off, mut ethertype) = (0, ETH_LEN, eth.ethertype_raw());
    if ethertype == TPID_8021Q {
        let tag = vlan::Tag::new_checked(eth.payload()).ok()?;
        (vid, ethertype) = (tag.vlan_id_raw(), tag.inner_ethertype_raw());
        off += VLAN_LEN;
    }
    let mut vrf = snap.attachment(port.attachment(vid)?).vrf;
    if ethertype == ETH_MPLS {
        let top = mpls::Entry::new_checked(d.get(off..)?).ok()?.label_entry();
        match snap.ilm().lookup(top.label.get())?.action {
            IlmAction::PopLookup { vrf: v } if top.bos => vrf = v,
            _ => return None,
        }
        off += LABEL_LEN;
        if IpVersion::of_packet(d.get(off..)?) != Ok(IpVersion::Ipv4) {
            return None;
        }
    } else if ethertype != ETH_IPV4 {
        return None;
    }
    // The IPv4 view is sized by hand to the fixed header, where the destination lies, rather
    // than made with `new_checked`: the per-frame pass runs the full check (and the checksum)
    // on this header anyway, and running it here too cost ~20 instructions per frame
    // (callgrind, 1M-route VRF).
    let l3 = d.get(off..).filter(|l3| l3.len() >= ipv4::HEADER_LEN)?;
    let dst = u32::from(ipv4::Packet::new_unchecked(l3).dst_addr());
    Some(LookupHint {
        vrf,
        dst,
        fec: snap.vrf(vrf).v4.lookup(dst),
    })
}

/// Ethernet and 802.1Q: which attachment (and VRF) the frame belongs to, then dispatch.
#[inline(always)]
fn classify<T: Tracer>(
    snap: &Snapshot,
    rx: IngressPort<'_>,
    frame: &mut Frame<'_>,
    counters: &mut Counters,
    trace: &mut T,
    hint: Option<LookupHint>,
) -> OrVerdict<PortId> {
    let Ok(eth) = ethernet::Frame::new_checked(frame.data()) else {
        return dropped(DropReason::Truncated);
    };
    let dst_mac = eth.dst_addr();
    let dst = mac_word(dst_mac);
    let mut ethertype = eth.ethertype_raw();
    trace.step(Step::Ethernet {
        dst: dst_mac,
        src: eth.src_addr(),
        ethertype,
    });
    let broadcast = dst == BROADCAST_WORD;
    if dst != rx.mac {
        if dst & GROUP_BIT == 0 {
            return dropped(DropReason::OtherMac);
        }
        // IPv6 multicast MACs go on: solicitations for our addresses come to their
        // solicited-node group (RFC 4861 §7.2.2).
        if !broadcast && dst & 0xffff != IPV6_GROUP_WORD {
            return punted(Punt::Multicast);
        }
    }
    let mut l3 = ETH_LEN;
    let mut vid = 0u16;
    match ethertype {
        TPID_8021Q => {
            let Ok(tag) = vlan::Tag::new_checked(eth.payload()) else {
                return dropped(DropReason::Truncated);
            };
            let inner = tag.inner_ethertype_raw();
            if inner == TPID_8021Q || inner == TPID_8021AD {
                return dropped(DropReason::StackedVlan);
            }
            vid = tag.vlan_id_raw();
            trace.step(Step::Vlan {
                vid,
                pcp: tag.pcp().get(),
            });
            if vid == VID_RESERVED {
                return dropped(DropReason::UnknownVlan);
            }
            ethertype = inner;
            l3 += VLAN_LEN;
        }
        TPID_8021AD => return dropped(DropReason::StackedVlan),
        _ => {}
    }
    // VID 0 is a priority tag: the frame belongs to the untagged attachment (802.1Q §9.6).
    let Some(att_id) = rx.port.attachment(vid) else {
        return dropped(if vid == 0 {
            DropReason::NoAttachment
        } else {
            DropReason::UnknownVlan
        });
    };
    let att = snap.attachment(att_id);
    trace.step(Step::Attachment {
        attachment: att_id,
        vrf: att.vrf,
    });
    let mut ctx = Ctx {
        ingress: rx.id,
        attachment: att_id,
        hint,
    };
    match ethertype {
        ETH_ARP if broadcast || dst == rx.mac => arp_in(snap, frame, l3, &ctx, counters, trace),
        // One compare for unicast frames, as the broadcast check alone was.
        _ if dst != rx.mac => {
            if broadcast {
                punted(Punt::Broadcast)
            } else if ethertype == ETH_IPV6 {
                ipv6_group_in(snap, frame, l3, att.vrf, &ctx, counters, trace)
            } else {
                punted(Punt::Multicast)
            }
        }
        ETH_MPLS => {
            if rx.port.kind == PortKind::Edge {
                return dropped(DropReason::MplsOnEdge);
            }
            mpls_in(snap, frame, l3, &mut ctx, counters, trace)
        }
        ETH_IPV4 => route_ipv4(
            snap,
            frame,
            l3,
            att.vrf,
            Hop::Ip,
            Qos::FromIp,
            &mut ctx,
            counters,
            trace,
        ),
        ETH_IPV6 => route_ipv6(
            snap,
            frame,
            l3,
            att.vrf,
            Hop::Ip,
            Qos::FromIp,
            &ctx,
            counters,
            trace,
        ),
        _ => punted(Punt::OtherProtocol),
    }
}

/// ARP: answer requests for the attachment's address in place; punt replies for learning.
fn arp_in<T: Tracer>(
    snap: &Snapshot,
    frame: &mut Frame<'_>,
    l3: usize,
    ctx: &Ctx,
    counters: &mut Counters,
    trace: &mut T,
) -> OrVerdict<PortId> {
    let port_mac = snap.port(ctx.ingress).mac;
    let ours = snap.attachment(ctx.attachment).address.map(|a| a.addr());
    let data = frame.data_mut();
    let Some(body) = data.get_mut(l3..) else {
        return dropped(DropReason::Truncated);
    };
    let mut pkt = match arp::Packet::new_checked(body) {
        Ok(p) => p,
        Err(_) => return dropped(DropReason::BadArp),
    };
    let sender_ip = pkt.sender_protocol_addr();
    let target_ip = pkt.target_protocol_addr();
    match pkt.operation() {
        arp::Operation::Request if Some(target_ip) == ours && sender_ip != target_ip => {
            let requester = pkt.sender_hardware_addr();
            pkt.set_operation(arp::Operation::Reply);
            pkt.set_target_hardware_addr(requester);
            pkt.set_target_protocol_addr(sender_ip);
            pkt.set_sender_hardware_addr(port_mac);
            pkt.set_sender_protocol_addr(target_ip);
            data[..6].copy_from_slice(&requester.0);
            data[6..12].copy_from_slice(&port_mac.0);
            counters.arp_replies += 1;
            trace.step(Step::ArpReply { to: sender_ip });
            Ok(ctx.ingress)
        }
        // Gratuitous ARP (sender == target) and replies teach us neighbours: the kernel side sees them.
        arp::Operation::Request if sender_ip == target_ip => punted(Punt::Arp),
        arp::Operation::Request => dropped(DropReason::ArpNotForUs),
        _ => punted(Punt::Arp),
    }
}

/// MPLS: look the top label up and swap, pop, or pop into a VRF.
// Forced inline, as `emit`: as a call it costs ~25 instructions of prologue, argument
// moves and epilogue per frame (callgrind).
#[inline(always)]
fn mpls_in<T: Tracer>(
    snap: &Snapshot,
    frame: &mut Frame<'_>,
    l3: usize,
    ctx: &mut Ctx,
    counters: &mut Counters,
    trace: &mut T,
) -> OrVerdict<PortId> {
    // One view of the frame for the walk: every branch that rewrites the frame returns.
    let data = frame.data();
    let depth = match mpls::stack_depth(data.get(l3..).unwrap_or_default(), MAX_LABEL_DEPTH) {
        Ok(depth) => depth,
        Err(WireError::Truncated) => return dropped(DropReason::Truncated),
        Err(WireError::Malformed) => return dropped(DropReason::BadLabelStack),
    };
    let uniform = snap.ttl_mode() == TtlMode::Uniform;
    let mut off = l3;
    // Uniform mode carries an explicit null's TTL down to the label below (one hop); it is
    // held here rather than written, so a frame that is then punted stays as it arrived.
    let mut carried_ttl: Option<u8> = None;
    for d in 0..depth {
        // The view over this entry alone: one bounds check (`off + 4 <= len`) that makes the
        // view's own length check constant; a view to the end of the frame costs a second.
        let entry_bytes = data.get(off..off + LABEL_LEN).unwrap_or_default();
        let Ok(lse) = mpls::Entry::new_checked(entry_bytes) else {
            return dropped(DropReason::Truncated);
        };
        let e = lse.label_entry();
        let (label, tc, bos) = (e.label.get(), e.tc.get(), e.bos);
        let ttl = carried_ttl.take().unwrap_or(e.ttl);
        trace.step(Step::Label {
            depth: d,
            label,
            tc,
            bos,
            ttl,
        });
        let next = off + LABEL_LEN;
        match label {
            16.. => {
                let Some(entry) = snap.ilm().lookup(label) else {
                    return dropped(DropReason::UnknownLabel);
                };
                if let Some(c) = counters.labels.get_mut(entry.counter as usize) {
                    *c += 1;
                }
                trace.step(Step::Ilm(*entry));
                return match entry.action {
                    IlmAction::Swap { adj, ref out } => {
                        if ttl <= 1 {
                            return dropped(DropReason::TtlExpired);
                        }
                        trace.step(Step::LabelTtl {
                            before: ttl,
                            after: ttl - 1,
                        });
                        emit(
                            snap,
                            frame,
                            tc,
                            adj,
                            out,
                            next,
                            Payload::Mpls,
                            ttl - 1,
                            bos,
                            trace,
                        )
                    }
                    IlmAction::Pop { adj } => {
                        if ttl <= 1 {
                            return dropped(DropReason::TtlExpired);
                        }
                        php(snap, frame, tc, adj, next, bos, ttl, uniform, trace)
                    }
                    IlmAction::PopLookup { vrf } => {
                        if !bos {
                            return dropped(DropReason::VpnLabelNotBottom);
                        }
                        // As for explicit null: the TTL is checked when the packet is forwarded
                        // (uniform: label TTL - 1; pipe: the LSP ends here and the IP TTL counts).
                        let hop = if uniform { Hop::Label(ttl) } else { Hop::Ip };
                        match IpVersion::of_packet(frame.data().get(next..).unwrap_or_default()) {
                            Ok(IpVersion::Ipv4) => route_ipv4(
                                snap,
                                frame,
                                next,
                                vrf,
                                hop,
                                Qos::Given(tc),
                                ctx,
                                counters,
                                trace,
                            ),
                            Ok(IpVersion::Ipv6) => route_ipv6(
                                snap,
                                frame,
                                next,
                                vrf,
                                hop,
                                Qos::Given(tc),
                                ctx,
                                counters,
                                trace,
                            ),
                            Ok(IpVersion::Other(_)) => dropped(DropReason::BadIpv4Header),
                            Err(_) => dropped(DropReason::Truncated),
                        }
                    }
                };
            }
            0 | 2 => {
                // Explicit null: pop and go on with what is below, in the global table
                // (RFC 3032 §2.1; RFC 4182 allows it above other labels).
                trace.step(Step::ExplicitNull { label });
                if bos {
                    // No TTL check here: a packet for one of our addresses is delivered
                    // whatever its TTL; a forwarded one is checked by `forwarded_ttl`.
                    let hop = if uniform { Hop::Label(ttl) } else { Hop::Ip };
                    let (vrf, qos) = (VrfId::GLOBAL, Qos::Given(tc));
                    return if label == 0 {
                        route_ipv4(snap, frame, next, vrf, hop, qos, ctx, counters, trace)
                    } else {
                        route_ipv6(snap, frame, next, vrf, hop, qos, ctx, counters, trace)
                    };
                }
                // The pop and the lookup below are one hop: carry the TTL down unchanged.
                if uniform {
                    carried_ttl = Some(ttl);
                }
                off = next;
            }
            1 => return punted(Punt::RouterAlert),
            _ => return dropped(DropReason::ReservedLabel),
        }
    }
    // Every entry was an explicit null above the bottom: mpls::stack_depth saw a bottom, so the loop
    // returned on it. Reaching here means the stack changed under us, which cannot happen.
    dropped(DropReason::BadLabelStack)
}

/// Writes `ttl` into the label entry at `off` (uniform-mode propagation).
fn set_label_ttl<T: Tracer>(frame: &mut Frame<'_>, off: usize, ttl: u8, trace: &mut T) {
    if let Some(b) = frame.data_mut().get_mut(off + 3) {
        trace.step(Step::LabelTtl {
            before: *b,
            after: ttl,
        });
        *b = ttl;
    }
}

/// Penultimate-hop pop: remove the top label, fix the TTL below in uniform mode, forward.
#[allow(clippy::too_many_arguments)]
fn php<T: Tracer>(
    snap: &Snapshot,
    frame: &mut Frame<'_>,
    tc: u8,
    adj: AdjacencyId,
    next: usize,
    bos: bool,
    ttl: u8,
    uniform: bool,
    trace: &mut T,
) -> OrVerdict<PortId> {
    if !bos {
        if uniform {
            set_label_ttl(frame, next, ttl - 1, trace);
        }
        return emit(
            snap,
            frame,
            tc,
            adj,
            &LabelStack::EMPTY,
            next,
            Payload::Mpls,
            0,
            false,
            trace,
        );
    }
    let below = IpVersion::of_packet(frame.data().get(next..).unwrap_or_default());
    let payload = match below {
        Ok(IpVersion::Ipv4) => {
            let total = {
                let Some(body) = frame.data_mut().get_mut(next..) else {
                    return dropped(DropReason::Truncated);
                };
                let mut ip = ipv4_checked(body)?;
                if uniform {
                    trace.step(Step::IpTtl {
                        before: ip.ttl(),
                        after: ttl - 1,
                    });
                    ip.set_ttl_and_update_checksum(ttl - 1);
                }
                usize::from(ip.total_len())
            };
            frame.truncate(next + total);
            Payload::Ipv4
        }
        Ok(IpVersion::Ipv6) => {
            let total = {
                let Some(body) = frame.data_mut().get_mut(next..) else {
                    return dropped(DropReason::Truncated);
                };
                let mut ip = ipv6_checked(body)?;
                if uniform {
                    trace.step(Step::IpTtl {
                        before: ip.hop_limit(),
                        after: ttl - 1,
                    });
                    ip.set_hop_limit(ttl - 1);
                }
                ipv6::Packet::<&[u8]>::HEADER_LEN + usize::from(ip.payload_len())
            };
            frame.truncate(next + total);
            Payload::Ipv6
        }
        Ok(IpVersion::Other(_)) => return dropped(DropReason::BadIpv4Header),
        Err(_) => return dropped(DropReason::Truncated),
    };
    emit(
        snap,
        frame,
        tc,
        adj,
        &LabelStack::EMPTY,
        next,
        payload,
        0,
        false,
        trace,
    )
}

#[inline(always)]
fn ipv4_checked(body: &mut [u8]) -> OrVerdict<ipv4::Packet<&mut [u8]>> {
    match ipv4::Packet::new_checked(body) {
        Ok(ip) if ip.verify_checksum() => Ok(ip),
        Ok(_) | Err(WireError::Malformed) => dropped(DropReason::BadIpv4Header),
        Err(WireError::Truncated) => dropped(DropReason::Truncated),
    }
}

fn ipv6_checked(body: &mut [u8]) -> OrVerdict<ipv6::Packet<&mut [u8]>> {
    match ipv6::Packet::new_checked(body) {
        Ok(ip) => Ok(ip),
        Err(WireError::Malformed) => dropped(DropReason::BadIpv6Header),
        Err(WireError::Truncated) => dropped(DropReason::Truncated),
    }
}

/// The new IP TTL for a forwarded packet, or `ttl-expired`.
#[inline]
fn forwarded_ttl(current: u8, hop: Hop) -> OrVerdict<u8> {
    let from = match hop {
        Hop::Originated => return Ok(current),
        Hop::Ip => current,
        Hop::Label(label_ttl) => label_ttl,
    };
    if from <= 1 {
        return dropped(DropReason::TtlExpired);
    }
    Ok(from - 1)
}

/// IPv4 in a VRF: lookup, local delivery, TTL, then out by the FEC.
// Forced inline into its callers (as a call it costs ~30 instructions per frame, callgrind);
// the recursion of an echo reply goes through `local_ipv4`, which stays a call.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn route_ipv4<T: Tracer>(
    snap: &Snapshot,
    frame: &mut Frame<'_>,
    l3: usize,
    vrf: VrfId,
    hop: Hop,
    qos: Qos,
    ctx: &mut Ctx,
    counters: &mut Counters,
    trace: &mut T,
) -> OrVerdict<PortId> {
    // One checked view serves the class of service, the lookup and, on the forward path,
    // the TTL rewrite.
    let Some(body) = frame.data_mut().get_mut(l3..) else {
        return dropped(DropReason::Truncated);
    };
    let mut ip = ipv4_checked(body)?;
    let qos = match qos {
        // IP precedence: the top 3 bits of the TOS octet (RFC 791).
        Qos::FromIp => ip.tos() >> 5,
        Qos::Given(qos) => qos,
    };
    let (dst, total) = (ip.dst_addr(), usize::from(ip.total_len()));
    if dst.is_multicast() {
        return punted(Punt::Multicast);
    }
    if dst.is_broadcast() {
        return punted(Punt::Broadcast);
    }
    let key = u32::from(dst);
    let fec_id = match ctx.hint.take() {
        Some(h) if h.vrf == vrf && h.dst == key => h.fec,
        _ => snap.vrf(vrf).v4.lookup(key),
    }
    .map(FecId);
    if let Some(c) = counters.vrfs.get_mut(snap.vrf_slot(vrf)) {
        *c += 1;
    }
    trace.step(Step::Lookup4 {
        vrf,
        dst,
        fec: fec_id,
    });
    let Some(fec) = fec_id.and_then(|f| snap.fecs().get(f.0 as usize)) else {
        return dropped(DropReason::NoRoute);
    };
    match *fec {
        Fec::Local => {
            if matches!(hop, Hop::Originated) {
                // A reply to ourselves (a spoofed source): hand it to the kernel, never loop.
                return punted(Punt::ForUs);
            }
            local_ipv4(snap, frame, l3, total, vrf, ctx, counters, trace)
        }
        Fec::Glean { attachment } => {
            // A host on a connected subnet with no MAC yet: the run loop asks the control
            // side to resolve it (ARP). A drop path, so the extra store costs nothing here.
            counters.glean.push(attachment, core::net::IpAddr::V4(dst));
            dropped(DropReason::NoNeighbor)
        }
        Fec::Forward { adj, ref push } => {
            let before = ip.ttl();
            let ttl = forwarded_ttl(before, hop)?;
            if ttl != before {
                trace.step(Step::IpTtl { before, after: ttl });
                ip.set_ttl_and_update_checksum(ttl);
            }
            // Ethernet padding after the IP packet is not forwarded.
            frame.truncate(l3 + total);
            let label_ttl = label_ttl_for(snap, ttl);
            emit(
                snap,
                frame,
                qos,
                adj,
                push,
                l3,
                Payload::Ipv4,
                label_ttl,
                true,
                trace,
            )
        }
    }
}

/// An IPv4 packet for one of our addresses that is not a reply we sent: answer an echo
/// request (routed back like any packet), punt the rest untouched.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn local_ipv4<T: Tracer>(
    snap: &Snapshot,
    frame: &mut Frame<'_>,
    l3: usize,
    total: usize,
    vrf: VrfId,
    ctx: &mut Ctx,
    counters: &mut Counters,
    trace: &mut T,
) -> OrVerdict<PortId> {
    if !answers_echo(snap, frame, l3, vrf) {
        return punted(Punt::ForUs);
    }
    frame.truncate(l3 + total);
    echo_reply(frame, l3, trace)?;
    let port = route_ipv4(
        snap,
        frame,
        l3,
        vrf,
        Hop::Originated,
        Qos::Given(0),
        ctx,
        counters,
        trace,
    )?;
    // Counted once the reply is on its way: one that cannot be routed is counted
    // under its drop reason only.
    counters.echo_replies += 1;
    Ok(port)
}

/// TTL of imposed labels: the IP TTL in uniform mode, 255 in pipe mode (RFC 3443 §3).
#[inline]
fn label_ttl_for(snap: &Snapshot, ip_ttl: u8) -> u8 {
    match snap.ttl_mode() {
        TtlMode::Uniform => ip_ttl,
        TtlMode::Pipe => 255,
    }
}

/// Whether an IPv4 packet for us is an echo request we answer: unfragmented ICMP echo with a
/// valid checksum, from a unicast source that is not one of our own addresses (RFC 1122
/// §3.2.2.6: no replies to broadcast or multicast sources). Checked before the reply is
/// written, so everything else is punted untouched.
fn answers_echo(snap: &Snapshot, frame: &Frame<'_>, l3: usize, vrf: VrfId) -> bool {
    let Some(body) = frame.data().get(l3..) else {
        return false;
    };
    let Ok(ip) = ipv4::Packet::new_checked(body) else {
        return false;
    };
    let src = ip.src_addr();
    if ip.next_header() != ipv4::protocol::ICMP
        || ip.more_frags()
        || ip.frag_offset() != 0
        || src.is_multicast()
        || src.is_broadcast()
        || src.is_unspecified()
    {
        return false;
    }
    if snap.route(vrf, src.into()) == Some(&Fec::Local) {
        return false;
    }
    let Ok(icmp) = icmp::Packet::new_checked(ip.payload()) else {
        return false;
    };
    icmp.msg_type() == icmp::ECHO_REQUEST && icmp.code() == 0 && icmp.verify_checksum()
}

/// Turns an ICMP echo request that [`answers_echo`] accepted into the reply, in place.
fn echo_reply<T: Tracer>(frame: &mut Frame<'_>, l3: usize, trace: &mut T) -> OrVerdict<()> {
    let data = frame.data_mut();
    let mut ip = ipv4::Packet::new_unchecked(&mut data[l3..]);
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    {
        let Ok(mut icmp) = icmp::Packet::new_checked(ip.payload_mut()) else {
            return punted(Punt::ForUs);
        };
        icmp.set_msg_type(icmp::ECHO_REPLY);
        icmp.fill_checksum();
    }
    ip.set_src_addr(dst);
    ip.set_dst_addr(src);
    ip.set_ttl(ORIGINATED_TTL);
    ip.fill_checksum();
    trace.step(Step::EchoReply { to: src });
    Ok(())
}

/// IPv6 in a VRF: lookup, local delivery, hop limit, then out by the FEC.
// The stage's state travels as arguments, as in `route_ipv4`, so it stays in registers.
#[allow(clippy::too_many_arguments)]
fn route_ipv6<T: Tracer>(
    snap: &Snapshot,
    frame: &mut Frame<'_>,
    l3: usize,
    vrf: VrfId,
    hop: Hop,
    qos: Qos,
    ctx: &Ctx,
    counters: &mut Counters,
    trace: &mut T,
) -> OrVerdict<PortId> {
    let (dst, total, qos) = {
        let Some(body) = frame.data_mut().get_mut(l3..) else {
            return dropped(DropReason::Truncated);
        };
        let ip = ipv6_checked(body)?;
        let qos = match qos {
            // The class selector: the top 3 bits of the traffic class (RFC 2474 §4.2.2).
            Qos::FromIp => ip.traffic_class() >> 5,
            Qos::Given(qos) => qos,
        };
        (
            ip.dst_addr(),
            ipv6::Packet::<&[u8]>::HEADER_LEN + usize::from(ip.payload_len()),
            qos,
        )
    };
    if dst.is_multicast() {
        return local_ipv6(snap, frame, l3, vrf, ctx, counters, trace, Punt::Multicast);
    }
    if dst.is_unicast_link_local() {
        // Link-local addresses are not in the tables: ours is the ingress port's.
        if dst == snap.port(ctx.ingress).link_local() && !matches!(hop, Hop::Originated) {
            return local_ipv6(snap, frame, l3, vrf, ctx, counters, trace, Punt::ForUs);
        }
        return punted(Punt::ForUs);
    }
    let fec_id = snap.vrf(vrf).v6.lookup(u128::from(dst)).map(FecId);
    if let Some(c) = counters.vrfs.get_mut(snap.vrf_slot(vrf)) {
        *c += 1;
    }
    trace.step(Step::Lookup6 {
        vrf,
        dst,
        fec: fec_id,
    });
    let Some(fec) = fec_id.and_then(|f| snap.fecs().get(f.0 as usize)) else {
        return dropped(DropReason::NoRoute);
    };
    match *fec {
        // A reply to ourselves (a spoofed source): hand it to the kernel, never loop.
        Fec::Local if matches!(hop, Hop::Originated) => punted(Punt::ForUs),
        Fec::Local => local_ipv6(snap, frame, l3, vrf, ctx, counters, trace, Punt::ForUs),
        Fec::Glean { attachment } => {
            // As for IPv4: the run loop asks the control side to resolve the host (ND).
            counters.glean.push(attachment, core::net::IpAddr::V6(dst));
            dropped(DropReason::NoNeighbor)
        }
        Fec::Forward { adj, ref push } => {
            frame.truncate(l3 + total);
            let hl = {
                let data = frame.data_mut();
                let mut ip = ipv6::Packet::new_unchecked(&mut data[l3..]);
                let before = ip.hop_limit();
                let hl = forwarded_ttl(before, hop)?;
                if hl != before {
                    trace.step(Step::IpTtl { before, after: hl });
                    ip.set_hop_limit(hl);
                }
                hl
            };
            let label_ttl = label_ttl_for(snap, hl);
            emit(
                snap,
                frame,
                qos,
                adj,
                push,
                l3,
                Payload::Ipv6,
                label_ttl,
                true,
                trace,
            )
        }
    }
}

/// A frame [`emit`] found too big for its egress port (labels + IP over the MTU), given the
/// same arguments again from the drop path: an IPv4 packet without DF, alone or under labels,
/// is sent on as [`Verdict::Fragment`] with its headers written as for any frame, for the
/// caller to cut into fragments (RFC 791 §3.2; RFC 3032 §3 at an LSR); anything else stays
/// `mtu-exceeded` with the frame as it was (an ICMP error may follow).
#[allow(clippy::too_many_arguments)]
fn fragment_instead<T: Tracer>(
    snap: &Snapshot,
    frame: &mut Frame<'_>,
    qos: u8,
    adj_id: AdjacencyId,
    push: &LabelStack,
    payload_off: usize,
    payload: Payload,
    ttl: u8,
    bos: bool,
    trace: &mut T,
) -> OrVerdict<PortId> {
    let data = frame.data();
    let below = match payload {
        Payload::Ipv4 => 0,
        Payload::Ipv6 => return dropped(DropReason::MtuExceeded),
        // A swap of the bottom label: the packet is right below it.
        Payload::Mpls if bos => 0,
        Payload::Mpls => {
            match mpls::stack_depth(data.get(payload_off..).unwrap_or_default(), MAX_LABEL_DEPTH) {
                Ok(depth) => depth * LABEL_LEN,
                Err(_) => return dropped(DropReason::MtuExceeded),
            }
        }
    };
    let packet = data.get(payload_off + below..).unwrap_or_default();
    if IpVersion::of_packet(packet) != Ok(IpVersion::Ipv4) {
        return dropped(DropReason::MtuExceeded);
    }
    let Ok(ip) = ipv4::Packet::new_checked(packet) else {
        return dropped(DropReason::MtuExceeded);
    };
    let labels = push.words().len() * LABEL_LEN + below;
    let mtu = usize::from(snap.adjacency(adj_id).mtu).saturating_sub(labels);
    // Each fragment carries its header and at least 8 bytes of data.
    if ip.dont_frag() || mtu < ip.header_len() + 8 {
        return dropped(DropReason::MtuExceeded);
    }
    let port = write_headers::<false, T>(
        snap,
        frame,
        qos,
        adj_id,
        push,
        payload_off,
        payload,
        ttl,
        bos,
        trace,
    )?;
    trace.step(Step::Fragment { mtu });
    Err(Verdict::Fragment(port))
}

/// What sits below the headers `emit` writes.
#[derive(Clone, Copy)]
enum Payload {
    Ipv4,
    Ipv6,
    /// More labels (the rest of the incoming stack).
    Mpls,
}

/// Rewrites everything before `payload_off` into the adjacency's L2 header plus `push`.
///
/// The pushed labels get TC `qos` and `ttl`, the innermost S = `bos`; an egress VLAN tag gets
/// PCP `qos`.
// Forced inline: ten arguments and the register saves of a call cost ~40 instructions
// per frame on the swap path (callgrind).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn emit<T: Tracer>(
    snap: &Snapshot,
    frame: &mut Frame<'_>,
    qos: u8,
    adj_id: AdjacencyId,
    push: &LabelStack,
    payload_off: usize,
    payload: Payload,
    ttl: u8,
    bos: bool,
    trace: &mut T,
) -> OrVerdict<PortId> {
    write_headers::<true, T>(
        snap,
        frame,
        qos,
        adj_id,
        push,
        payload_off,
        payload,
        ttl,
        bos,
        trace,
    )
}

/// [`emit`]'s work; with `CHECK_MTU` false it writes the headers of a frame too big for the
/// port, for [`fragment_instead`] to have it fragmented.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn write_headers<const CHECK_MTU: bool, T: Tracer>(
    snap: &Snapshot,
    frame: &mut Frame<'_>,
    qos: u8,
    adj_id: AdjacencyId,
    push: &LabelStack,
    payload_off: usize,
    payload: Payload,
    ttl: u8,
    bos: bool,
    trace: &mut T,
) -> OrVerdict<PortId> {
    let adj = snap.adjacency(adj_id);
    if adj.mac.is_none() {
        return dropped(DropReason::NoNeighbor);
    }
    let words = push.words();
    let labels_len = words.len() * LABEL_LEN;
    let l3_len = frame.len().saturating_sub(payload_off) + labels_len;
    if CHECK_MTU && l3_len > usize::from(adj.mtu) {
        // The frame is as it was: the drop path may send it as fragments or answer it with
        // an ICMP error (`icmp_error::answer`).
        return dropped(DropReason::MtuExceeded);
    }
    let tagged = adj.vlan.is_some();
    let l2_len = if tagged { ETH_LEN + VLAN_LEN } else { ETH_LEN };
    if !frame.resize_head(payload_off, l2_len + labels_len) {
        return dropped(DropReason::NoHeadroom);
    }
    let ethertype = match payload {
        _ if !words.is_empty() => ETH_MPLS,
        Payload::Ipv4 => ETH_IPV4,
        Payload::Ipv6 => ETH_IPV6,
        Payload::Mpls => ETH_MPLS,
    }
    .to_be_bytes();
    let qos = qos & 7;
    // Fixed-size copies of the adjacency's precomputed header: a few moves, no memcpy call.
    let data = frame.data_mut();
    let labels = if tagged {
        let Some((head, rest)) = data.split_first_chunk_mut::<{ ETH_LEN + VLAN_LEN }>() else {
            return dropped(DropReason::NoHeadroom);
        };
        head[..16].copy_from_slice(&adj.header);
        head[14] |= qos << 5;
        head[16..].copy_from_slice(&ethertype);
        rest
    } else {
        let Some((head, rest)) = data.split_first_chunk_mut::<ETH_LEN>() else {
            return dropped(DropReason::NoHeadroom);
        };
        head[..12].copy_from_slice(&adj.header[..12]);
        head[12..].copy_from_slice(&ethertype);
        rest
    };
    let tc_ttl = u32::from(qos) << 9 | u32::from(ttl);
    for (entry, w) in labels.chunks_exact_mut(LABEL_LEN).zip(words) {
        entry.copy_from_slice(&(w | tc_ttl).to_be_bytes());
    }
    if bos && !words.is_empty() {
        // S is bit 8 of the innermost entry: the low bit of its third byte.
        if let Some(b) = labels.get_mut(labels_len - 2) {
            *b |= 1;
        }
    }
    if !words.is_empty() {
        trace.step(Step::Impose {
            labels: *push,
            tc: qos,
            ttl,
        });
    }
    trace.step(Step::Egress {
        adj: adj_id,
        port: adj.port,
    });
    Ok(adj.port)
}

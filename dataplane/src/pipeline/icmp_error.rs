//! ICMP errors from the router: time exceeded when an IP TTL, a hop limit or a label TTL
//! runs out (RFC 792, RFC 4443 §3.3, RFC 1812 §5.3.1).
//!
//! - **IP TTL or hop limit** at a lookup (at the edge, at disposition, in the global table):
//!   the error goes to the packet's source, looked up in the same VRF, from our address on
//!   the ingress attachment (or, at disposition, the VRF's first address).
//! - **A label TTL** at an LSR (swap or penultimate-hop pop): the error comes from our address
//!   on the ingress core interface and carries the label stack as received in an RFC 4950
//!   object of an RFC 4884 extension. It is sent on along the packet's own LSP, with the labels
//!   a swap would have sent and fresh TTLs (RFC 3032 §2.3.2), so the egress PE routes it back
//!   to the source in the right VRF. A payload that is not IP is dropped.
//! - **A packet that arrived labelled** and expires at its IP lookup (disposition in uniform
//!   mode, an explicit null) quotes its received labels the same way.
//!
//! Never an error about an ICMP error, a non-first fragment, or a packet whose source is not
//! a unicast address (RFC 1812 §4.3.2.7, RFC 4443 §2.4 (e)); multicast and broadcast
//! destinations never get this far (they are punted). What the worker's rate allows
//! ([`IcmpAllowance`]) is all that is sent; the rest is counted (`icmp_rate_limited`).
//!
//! Every path here is a drop path of the forwarding code: the forwarding fast path pays
//! nothing but the TTL branch it already had. The error is written in place into the frame's
//! buffer (growing into the headroom), so nothing is allocated.
//!
//! [`IcmpAllowance`]: super::counters::IcmpAllowance

use core::net::{IpAddr, Ipv4Addr};

use super::counters::IcmpError;
use super::{
    dropped, emit, fragment_instead, label_ttl_for, route_ipv4, route_ipv6, Ctx, DropReason, Frame,
    Hop, OrVerdict, Payload, Qos, Step, Tracer, Verdict, ETH_LEN, ETH_MPLS, LABEL_LEN,
    MAX_LABEL_DEPTH, ORIGINATED_TTL, TPID_8021Q,
};
use crate::pipeline::Counters;
use crate::tables::{
    AdjacencyId, AttachmentId, Fec, IlmAction, LabelStack, PortId, Snapshot, VrfId,
};
use crate::wire::{checksum, ethernet, icmp, icmpv6, ipv4, ipv6, mpls, vlan, IpVersion};

/// Longest ICMP error for IPv4: 576 bytes in all (RFC 1812 §4.3.2.3).
const MAX_ERROR4: usize = 576;
/// Longest ICMPv6 error: the IPv6 minimum MTU (RFC 4443 §2.4 (c)).
const MAX_ERROR6: usize = 1280;
/// The original datagram field when an RFC 4884 extension follows: 128 bytes, zero-padded.
const QUOTE_WITH_EXTENSION: usize = 128;
/// Most bytes ever quoted: an ICMPv6 error's.
const MAX_QUOTE: usize = MAX_ERROR6 - ipv6::HEADER_LEN - icmpv6::HEADER_LEN;
/// RFC 4884 extension header: version 2, then reserved bits and the checksum.
const EXTENSION_VERSION: u8 = 2 << 4;
/// RFC 4950: the MPLS label stack class, incoming label stack c-type.
const MPLS_STACK_CLASS: u8 = 1;
const MPLS_INCOMING_STACK: u8 = 1;
/// ICMPv4 destination unreachable code: fragmentation needed and DF set (RFC 792).
const FRAG_NEEDED: u8 = 4;
/// Precedence of what the router sends about the network (RFC 1812 §4.3.2.5): internetwork
/// control; also the TC of labels it pushes on them.
const INTERNETWORK_CONTROL: u8 = 6;
/// ICMPv4 error types (RFC 792, RFC 1812 §4.3.2.7): never answered with another error.
const ICMP4_ERRORS: [u8; 5] = [3, 4, 5, 11, 12];
/// Highest ICMPv4 type Linux knows; unknown ones are treated as errors, as Linux does.
const ICMP4_LAST_KNOWN: u8 = 18;
/// Below this, an ICMPv6 type is an error message (RFC 4443 §2.1).
const ICMP6_FIRST_INFO: u8 = 128;

/// A label stack as received, outermost first (wire words).
struct Received {
    words: [u32; MAX_LABEL_DEPTH],
    len: usize,
}

impl Received {
    /// The entries in `bytes` (whole entries only, at most [`MAX_LABEL_DEPTH`]).
    fn read(bytes: &[u8]) -> Received {
        let mut r = Received {
            words: [0; MAX_LABEL_DEPTH],
            len: 0,
        };
        for (w, e) in r.words.iter_mut().zip(bytes.chunks_exact(LABEL_LEN)) {
            *w = u32::from_be_bytes([e[0], e[1], e[2], e[3]]);
            r.len += 1;
        }
        r
    }

    fn words(&self) -> &[u32] {
        &self.words[..self.len]
    }
}

/// How a packet whose label TTL ran out would have gone on: what its ICMP error follows.
enum Lsp<'a> {
    /// A swap: these labels in place of the top one, out by this adjacency.
    Swap {
        adj: AdjacencyId,
        out: &'a LabelStack,
    },
    /// A penultimate-hop pop, out by this adjacency.
    Pop { adj: AdjacencyId },
}

/// A frame the pipeline dropped as `reason` (`ttl-expired` or `mtu-exceeded`), as it arrived
/// on `ingress`: finds again where (a label at a swap or PHP, or the IP lookup at the edge, at
/// disposition or in the global table) and answers with the ICMP error, or leaves it dropped.
///
/// Called on the drop path only, so the forwarding path pays nothing for it: every TTL and
/// MTU check comes before the frame's headers are rewritten (a forwarded IP packet's own TTL
/// may have been decremented already, and is quoted so).
#[cold]
#[inline(never)]
pub(super) fn answer<T: Tracer>(
    snap: &Snapshot,
    ingress: PortId,
    frame: &mut Frame<'_>,
    reason: DropReason,
    counters: &mut Counters,
    trace: &mut T,
) -> Verdict {
    match walk(snap, ingress, frame, reason, counters, trace) {
        Ok(port) => Verdict::Forward(port),
        Err(v) => v,
    }
}

/// [`answer`]'s walk: the classification again, as far as the check that failed.
fn walk<T: Tracer>(
    snap: &Snapshot,
    ingress: PortId,
    frame: &mut Frame<'_>,
    reason: DropReason,
    counters: &mut Counters,
    trace: &mut T,
) -> OrVerdict<PortId> {
    let data = frame.data();
    let (Some(port), Ok(eth)) = (
        snap.ports().get(usize::from(ingress.0)),
        ethernet::Frame::new_checked(data),
    ) else {
        return dropped(reason);
    };
    let (mut ethertype, mut l3, mut vid) = (eth.ethertype_raw(), ETH_LEN, 0);
    if ethertype == TPID_8021Q {
        let Ok(tag) = vlan::Tag::new_checked(eth.payload()) else {
            return dropped(reason);
        };
        (vid, ethertype) = (tag.vlan_id_raw(), tag.inner_ethertype_raw());
        l3 += vlan::HEADER_LEN;
    }
    let Some(attachment) = port.attachment(vid) else {
        return dropped(reason);
    };
    let ctx = Ctx {
        ingress,
        attachment,
        hint: None,
    };
    let vrf = snap.attachment(attachment).vrf;
    if ethertype != ETH_MPLS {
        return ip_error(snap, frame, l3, vrf, reason, &ctx, counters, trace);
    }
    let stack = l3;
    let Ok(depth) = mpls::stack_depth(&data[stack..], MAX_LABEL_DEPTH) else {
        return dropped(reason);
    };
    for d in 0..depth {
        let off = stack + d * LABEL_LEN;
        let Ok(entry) = mpls::Entry::new_checked(&data[off..]) else {
            break;
        };
        let e = entry.label_entry();
        let (label, bos, next) = (e.label.get(), e.bos, off + LABEL_LEN);
        match label {
            16.. => {
                let Some(entry) = snap.ilm().lookup(label) else {
                    break;
                };
                let lsp = match entry.action {
                    IlmAction::Swap { adj, ref out } => Lsp::Swap { adj, out },
                    IlmAction::Pop { adj } => Lsp::Pop { adj },
                    IlmAction::PopLookup { vrf } => {
                        return ip_error(snap, frame, next, vrf, reason, &ctx, counters, trace);
                    }
                };
                let at = Stack { stack, next, depth };
                return label_error(snap, frame, at, lsp, reason, &ctx, counters, trace);
            }
            // Explicit null at the bottom: the lookup in the global table.
            0 | 2 if bos => {
                let global = VrfId::GLOBAL;
                return ip_error(snap, frame, next, global, reason, &ctx, counters, trace);
            }
            0 | 2 => {}
            _ => break,
        }
    }
    dropped(reason)
}

/// An IP packet at `l3` dropped as `reason` at its lookup in `vrf` (its TTL or hop limit ran
/// out, or it is too big for the route's next hop): turned into the error to its source and
/// routed in `vrf`; else dropped.
#[allow(clippy::too_many_arguments)]
fn ip_error<T: Tracer>(
    snap: &Snapshot,
    frame: &mut Frame<'_>,
    l3: usize,
    vrf: VrfId,
    reason: DropReason,
    ctx: &Ctx,
    counters: &mut Counters,
    trace: &mut T,
) -> OrVerdict<PortId> {
    let data = frame.data();
    // A packet that came in labelled (disposition, explicit null) lies right after them.
    let labelled = data.get(12..14) == Some(&ETH_MPLS.to_be_bytes()[..])
        && l3 > ETH_LEN
        && (l3 - ETH_LEN).is_multiple_of(LABEL_LEN);
    let received = Received::read(if labelled { &data[ETH_LEN..l3] } else { &[] });
    let Some(packet) = data.get(l3..) else {
        return dropped(reason);
    };
    if reason == DropReason::MtuExceeded && fragmentable(packet) {
        return ip_fragments(snap, frame, l3, vrf, &received, trace);
    }
    let Some(original) = answerable(packet, trace) else {
        return dropped(reason);
    };
    let Some(kind) = kind_of(reason, &original, packet, trace) else {
        return dropped(reason);
    };
    let mtu = match kind {
        IcmpError::FragNeeded | IcmpError::PacketTooBig => {
            let Some(mtu) = route_mtu(snap, vrf, original.dst) else {
                return dropped(reason);
            };
            mtu
        }
        _ => 0,
    };
    if is_ours(snap, vrf, original.to) {
        // Our own packet (an echo reply too big for its way back): no error to ourselves.
        trace.step(Step::IcmpNotSent {
            why: "the packet is our own",
        });
        return dropped(reason);
    }
    let Some(from) = sender(snap, ctx.attachment, vrf, original.to, counters, trace) else {
        return dropped(reason);
    };
    let error = Error {
        kind,
        mtu,
        from,
        below: &[],
        received: received.words(),
        tunnelled: false,
    };
    build(frame, l3, &original, &error, trace)?;
    let mut ctx = Ctx {
        ingress: ctx.ingress,
        attachment: ctx.attachment,
        hint: None,
    };
    let (hop, qos) = (Hop::Originated, Qos::Given(INTERNETWORK_CONTROL));
    let routed = match original.to {
        IpAddr::V4(_) => route_ipv4(snap, frame, 0, vrf, hop, qos, &mut ctx, counters, trace),
        IpAddr::V6(_) => route_ipv6(snap, frame, 0, vrf, hop, qos, &ctx, counters, trace),
    };
    sent(routed, kind, counters, trace)
}

/// Where a label stack lies in a frame: from `stack`, `depth` entries; the top one (the one
/// that was switched) ends at `next`.
#[derive(Clone, Copy)]
struct Stack {
    stack: usize,
    next: usize,
    depth: usize,
}

/// A labelled packet dropped as `reason` at this LSR (its top label's TTL ran out, or it is
/// too big for `lsp`'s next hop): turned into the error with the stack as received, sent on
/// along `lsp`; else dropped (also when the payload is not IP).
#[allow(clippy::too_many_arguments)]
fn label_error<T: Tracer>(
    snap: &Snapshot,
    frame: &mut Frame<'_>,
    at: Stack,
    lsp: Lsp<'_>,
    reason: DropReason,
    ctx: &Ctx,
    counters: &mut Counters,
    trace: &mut T,
) -> OrVerdict<PortId> {
    let Stack { stack, next, depth } = at;
    let data = frame.data();
    let l3 = stack + depth * LABEL_LEN;
    let (Some(labels), Some(below), Some(packet)) =
        (data.get(stack..l3), data.get(next..l3), data.get(l3..))
    else {
        return dropped(reason);
    };
    if !matches!(
        IpVersion::of_packet(packet),
        Ok(IpVersion::Ipv4 | IpVersion::Ipv6)
    ) {
        trace.step(Step::IcmpNotSent {
            why: "what the labels carry is not IP",
        });
        return dropped(reason);
    }
    let (received, below) = (Received::read(labels), Received::read(below));
    if reason == DropReason::MtuExceeded && fragmentable(packet) {
        // The switched label as it came: its TC, TTL and S go to what `emit` writes.
        let top = received
            .words
            .get(depth_of(stack, next) - 1)
            .copied()
            .unwrap_or(0);
        let (tc, ttl, bos) = (((top >> 9) & 7) as u8, top as u8, top & 0x100 != 0);
        return match lsp {
            Lsp::Swap { adj, out } => {
                let ttl = ttl.saturating_sub(1);
                fragment_instead(
                    snap,
                    frame,
                    tc,
                    adj,
                    out,
                    next,
                    Payload::Mpls,
                    ttl,
                    bos,
                    trace,
                )
            }
            Lsp::Pop { adj } => {
                let payload = if below.len == 0 {
                    Payload::Ipv4
                } else {
                    Payload::Mpls
                };
                let empty = &LabelStack::EMPTY;
                fragment_instead(snap, frame, tc, adj, empty, next, payload, 0, false, trace)
            }
        };
    }
    let Some(original) = answerable(packet, trace) else {
        return dropped(reason);
    };
    let Some(kind) = kind_of(reason, &original, packet, trace) else {
        return dropped(reason);
    };
    let (adj, push) = match lsp {
        Lsp::Swap { adj, out } => (adj, out),
        Lsp::Pop { adj } => (adj, &LabelStack::EMPTY),
    };
    // What the IP packet may be: the next hop's MTU less every label it would carry.
    let labels = (push.len() + below.len) * LABEL_LEN;
    let mtu = usize::from(snap.adjacency(adj).mtu).saturating_sub(labels);
    let vrf = snap.attachment(ctx.attachment).vrf;
    let Some(from) = sender(snap, ctx.attachment, vrf, original.to, counters, trace) else {
        return dropped(reason);
    };
    let error = Error {
        kind,
        mtu,
        from,
        below: below.words(),
        received: received.words(),
        tunnelled: true,
    };
    build(frame, l3, &original, &error, trace)?;
    let payload = match (below.len, original.to) {
        (1.., _) => Payload::Mpls,
        (0, IpAddr::V4(_)) => Payload::Ipv4,
        (0, IpAddr::V6(_)) => Payload::Ipv6,
    };
    let routed = emit(
        snap,
        frame,
        INTERNETWORK_CONTROL,
        adj,
        push,
        // The rest of the stack is part of what `emit` writes its headers in front of.
        0,
        payload,
        u8::MAX,
        below.len == 0,
        trace,
    );
    sent(routed, kind, counters, trace)
}

/// Whether a packet too big for its next hop is to be fragmented rather than answered:
/// IPv4 with DF clear.
fn fragmentable(packet: &[u8]) -> bool {
    IpVersion::of_packet(packet) == Ok(IpVersion::Ipv4)
        && ipv4::Packet::new_checked(packet).is_ok_and(|ip| !ip.dont_frag())
}

/// How many label entries lie before `next` from `stack`.
fn depth_of(stack: usize, next: usize) -> usize {
    (next - stack) / LABEL_LEN
}

/// An IPv4 packet without DF too big for its route in `vrf` at `l3`: its headers written as
/// `route_ipv4` would have (the route's labels, the class of service from the label it came
/// under or from its TOS, the label TTL from its own, already decremented), and sent on as
/// fragments.
fn ip_fragments<T: Tracer>(
    snap: &Snapshot,
    frame: &mut Frame<'_>,
    l3: usize,
    vrf: VrfId,
    received: &Received,
    trace: &mut T,
) -> OrVerdict<PortId> {
    let packet = frame.data().get(l3..).unwrap_or_default();
    let Ok(ip) = ipv4::Packet::new_checked(packet) else {
        return dropped(DropReason::MtuExceeded);
    };
    let (dst, tos, ttl) = (ip.dst_addr(), ip.tos(), ip.ttl());
    let Some(&Fec::Forward { adj, push }) = snap.route(vrf, dst.into()) else {
        return dropped(DropReason::MtuExceeded);
    };
    let qos = match received.words().last() {
        Some(w) => ((w >> 9) & 7) as u8,
        None => tos >> 5,
    };
    let label_ttl = label_ttl_for(snap, ttl);
    fragment_instead(
        snap,
        frame,
        qos,
        adj,
        &push,
        l3,
        Payload::Ipv4,
        label_ttl,
        true,
        trace,
    )
}

/// Counts an error that was routed; one that could not be is the packet's own drop.
fn sent<T: Tracer>(
    routed: OrVerdict<PortId>,
    kind: IcmpError,
    counters: &mut Counters,
    trace: &mut T,
) -> OrVerdict<PortId> {
    match routed {
        Ok(port) => {
            // The frame leaves as the error, counted as forwarded (as an echo reply is): a
            // frame has one verdict. What the error is about is `IcmpError::reason`.
            counters.icmp_sent[kind as usize] += 1;
            Ok(port)
        }
        Err(_) => {
            trace.step(Step::IcmpNotSent {
                why: "the error itself cannot be routed back (the steps above say why)",
            });
            dropped(kind.reason())
        }
    }
}

/// The address an error to `to` goes out from ([`source`]), once one ICMP error is taken from
/// the worker's allowance; `None` (said in the trace) when there is no such address, or the
/// rate is spent (counted as rate-limited).
fn sender<T: Tracer>(
    snap: &Snapshot,
    attachment: AttachmentId,
    vrf: VrfId,
    to: IpAddr,
    counters: &mut Counters,
    trace: &mut T,
) -> Option<IpAddr> {
    let Some(from) = source(snap, attachment, vrf, to) else {
        trace.step(Step::IcmpNotSent {
            why: "no address of ours in the VRF to send it from",
        });
        return None;
    };
    if counters.icmp_allowance.0 == 0 {
        counters.icmp_rate_limited += 1;
        trace.step(Step::IcmpNotSent {
            why: "the worker's ICMP rate is spent",
        });
        return None;
    }
    counters.icmp_allowance.0 -= 1;
    Some(from)
}

/// The packet an error is about: its source (where the error goes) and its length (without
/// link padding).
struct Original {
    to: IpAddr,
    /// Its destination.
    dst: IpAddr,
    len: usize,
}

/// The packet, if RFC 1812 §4.3.2.7 and RFC 4443 §2.4 (e) allow an error about it.
fn answerable<T: Tracer>(packet: &[u8], trace: &mut T) -> Option<Original> {
    let refused = |trace: &mut T, why| {
        trace.step(Step::IcmpNotSent { why });
        None
    };
    match IpVersion::of_packet(packet) {
        Ok(IpVersion::Ipv4) => {
            let ip = ipv4::Packet::new_checked(packet).ok()?;
            let src = ip.src_addr();
            if !unicast4(src) {
                return refused(trace, "its source is not a unicast address");
            }
            if ip.frag_offset() != 0 {
                return refused(trace, "it is not the first fragment");
            }
            if ip.next_header() == ipv4::protocol::ICMP {
                let t = ip.payload().first().copied();
                if t.is_none_or(|t| ICMP4_ERRORS.contains(&t) || t > ICMP4_LAST_KNOWN) {
                    return refused(trace, "it is an ICMP error itself");
                }
            }
            Some(Original {
                to: IpAddr::V4(src),
                dst: IpAddr::V4(ip.dst_addr()),
                len: usize::from(ip.total_len()).min(packet.len()),
            })
        }
        Ok(IpVersion::Ipv6) => {
            let ip = ipv6::Packet::new_checked(packet).ok()?;
            let src = ip.src_addr();
            if src.is_unspecified() || src.is_multicast() || src.is_loopback() {
                return refused(trace, "its source is not a unicast address");
            }
            if ip.next_header() == ipv4::protocol::ICMPV6
                && ip.payload().first().is_none_or(|&t| t < ICMP6_FIRST_INFO)
            {
                return refused(trace, "it is an ICMPv6 error itself");
            }
            Some(Original {
                to: IpAddr::V6(src),
                dst: IpAddr::V6(ip.dst_addr()),
                len: ip.total_len().min(packet.len()),
            })
        }
        _ => None,
    }
}

/// The error for a packet dropped as `reason`: time exceeded, or too big (IPv4 only with DF
/// set: xpe does not fragment). `None`: no error.
fn kind_of<T: Tracer>(
    reason: DropReason,
    original: &Original,
    packet: &[u8],
    trace: &mut T,
) -> Option<IcmpError> {
    match (reason, original.to) {
        (DropReason::TtlExpired, IpAddr::V4(_)) => Some(IcmpError::TimeExceeded),
        (DropReason::TtlExpired, IpAddr::V6(_)) => Some(IcmpError::TimeExceeded6),
        (DropReason::MtuExceeded, IpAddr::V4(_)) => {
            if ipv4::Packet::new_unchecked(packet).dont_frag() {
                Some(IcmpError::FragNeeded)
            } else {
                trace.step(Step::IcmpNotSent {
                    why: "DF is not set, but the MTU leaves no room for a fragment",
                });
                None
            }
        }
        (DropReason::MtuExceeded, IpAddr::V6(_)) => Some(IcmpError::PacketTooBig),
        _ => None,
    }
}

/// Whether `addr` is one of our addresses in `vrf`.
fn is_ours(snap: &Snapshot, vrf: VrfId, addr: IpAddr) -> bool {
    snap.route(vrf, addr) == Some(&Fec::Local)
}

/// The largest IP packet the route to `dst` in `vrf` takes: its next hop's MTU less the
/// labels it pushes.
fn route_mtu(snap: &Snapshot, vrf: VrfId, dst: IpAddr) -> Option<usize> {
    match *snap.route(vrf, dst)? {
        Fec::Forward { adj, ref push } => {
            let mtu = usize::from(snap.adjacency(adj).mtu);
            Some(mtu.saturating_sub(push.len() * LABEL_LEN))
        }
        _ => None,
    }
}

/// Whether an IPv4 source is one an error may go to: not 0/8, loopback, multicast, class E
/// or the limited broadcast (RFC 1812 §4.3.2.7, §5.3.7).
fn unicast4(a: Ipv4Addr) -> bool {
    let first = a.octets()[0];
    first != 0 && !a.is_loopback() && !a.is_multicast() && first < 240
}

/// Our address to send an error about a packet from `to` from: the attachment's when it is
/// in `vrf`, else the first address of ours in `vrf` (disposition: the packet came in on a
/// core interface). Of `to`'s family.
fn source(snap: &Snapshot, attachment: AttachmentId, vrf: VrfId, to: IpAddr) -> Option<IpAddr> {
    let of = |a: &crate::tables::Attachment| match to {
        IpAddr::V4(_) => a.address.map(|p| IpAddr::V4(p.addr())),
        IpAddr::V6(_) => a.address6.map(|p| IpAddr::V6(p.addr())),
    };
    let ingress = snap.attachment(attachment);
    if ingress.vrf == vrf {
        if let Some(a) = of(ingress) {
            return Some(a);
        }
    }
    snap.attachments()
        .iter()
        .filter(|a| a.vrf == vrf)
        .find_map(of)
}

/// What [`build`] writes besides the quote.
struct Error<'a> {
    kind: IcmpError,
    /// The next-hop MTU of a too-big error.
    mtu: usize,
    from: IpAddr,
    /// Label entries in front of the IP header (their TTLs refreshed): the rest of the
    /// stack of a tunnelled error.
    below: &'a [u32],
    /// The stack as received, for the RFC 4950 extension (none when empty).
    received: &'a [u32],
    tunnelled: bool,
}

/// Rewrites the frame into the error's labels followed by time exceeded about `original`
/// (which lies at `l3` in the frame). The frame is then exactly that, starting at offset 0.
fn build<T: Tracer>(
    frame: &mut Frame<'_>,
    l3: usize,
    original: &Original,
    e: &Error<'_>,
    trace: &mut T,
) -> OrVerdict<()> {
    let Error {
        kind,
        mtu,
        from,
        below,
        received,
        tunnelled,
    } = *e;
    let (ip_len, limit) = match original.to {
        IpAddr::V4(_) => (ipv4::HEADER_LEN, MAX_ERROR4),
        IpAddr::V6(_) => (ipv6::HEADER_LEN, MAX_ERROR6),
    };
    // RFC 4884 defines no length field for packet too big (the MTU fills its word).
    let received = if kind == IcmpError::PacketTooBig {
        &[]
    } else {
        received
    };
    let ext_len = if received.is_empty() {
        0
    } else {
        8 + received.len() * LABEL_LEN
    };
    // The quote first, copied out: the new headers overwrite what lies before it.
    let quoted = if received.is_empty() {
        original.len.min(limit - ip_len - icmp::HEADER_LEN)
    } else {
        original.len.min(QUOTE_WITH_EXTENSION)
    };
    let mut quote = [0u8; MAX_QUOTE];
    let Some(bytes) = frame.data().get(l3..l3 + quoted) else {
        return dropped(DropReason::Truncated);
    };
    quote[..quoted].copy_from_slice(bytes);
    let field = if received.is_empty() {
        quoted
    } else {
        QUOTE_WITH_EXTENSION
    };
    let message = icmp::HEADER_LEN + field + ext_len;
    let below_len = below.len() * LABEL_LEN;
    let len = below_len + ip_len + message;
    // In place: cut the frame's tail, or grow it into the headroom.
    if len <= frame.len() {
        frame.truncate(len);
    } else if !frame.resize_head(0, len - frame.len()) {
        return dropped(DropReason::NoHeadroom);
    }
    let data = frame.data_mut();
    for (entry, w) in data[..below_len].chunks_exact_mut(LABEL_LEN).zip(below) {
        // A fresh TTL: the error must outlive the hops the packet had left.
        entry.copy_from_slice(&(w | u32::from(u8::MAX)).to_be_bytes());
    }
    let (header, msg) = data[below_len..].split_at_mut(ip_len);
    msg.fill(0);
    let mtu16 = u16::try_from(mtu).unwrap_or(u16::MAX).to_be_bytes();
    match kind {
        IcmpError::TimeExceeded => msg[0] = icmp::TIME_EXCEEDED,
        IcmpError::TimeExceeded6 => msg[0] = icmpv6::TIME_EXCEEDED,
        IcmpError::FragNeeded => {
            // RFC 792 and RFC 1191: code 4, the next-hop MTU in the low half of the word.
            (msg[0], msg[1]) = (icmp::DEST_UNREACHABLE, FRAG_NEEDED);
            msg[6..8].copy_from_slice(&mtu16);
        }
        IcmpError::PacketTooBig => {
            msg[0] = icmpv6::PACKET_TOO_BIG;
            msg[4..8].copy_from_slice(&(mtu as u32).to_be_bytes());
        }
    }
    msg[icmp::HEADER_LEN..icmp::HEADER_LEN + quoted].copy_from_slice(&quote[..quoted]);
    if !received.is_empty() {
        // RFC 4884 §4.1/§4.2: the original datagram's length, in 32-bit words for ICMPv4
        // (octet 5), in 64-bit words for ICMPv6 (octet 4).
        match original.to {
            IpAddr::V4(_) => msg[5] = (QUOTE_WITH_EXTENSION / 4) as u8,
            IpAddr::V6(_) => msg[4] = (QUOTE_WITH_EXTENSION / 8) as u8,
        }
        let ext = &mut msg[icmp::HEADER_LEN + field..];
        ext[0] = EXTENSION_VERSION;
        let object_len = (4 + received.len() * LABEL_LEN) as u16;
        ext[4..6].copy_from_slice(&object_len.to_be_bytes());
        ext[6] = MPLS_STACK_CLASS;
        ext[7] = MPLS_INCOMING_STACK;
        for (entry, w) in ext[8..].chunks_exact_mut(LABEL_LEN).zip(received) {
            entry.copy_from_slice(&w.to_be_bytes());
        }
        let sum = checksum::fold(checksum::sum(ext));
        ext[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    match (from, original.to) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let sum = checksum::fold(checksum::sum(msg));
            msg[2..4].copy_from_slice(&sum.to_be_bytes());
            let mut ip = ipv4::Packet::new_unchecked(header);
            ip.set_version(4);
            ip.set_header_len(ipv4::HEADER_LEN);
            ip.set_tos(INTERNETWORK_CONTROL << 5);
            ip.set_total_len((ip_len + message) as u16);
            ip.set_ident(0);
            ip.set_dont_frag(false);
            ip.set_more_frags(false);
            ip.set_frag_offset(0);
            ip.set_ttl(ORIGINATED_TTL);
            ip.set_next_header(ipv4::protocol::ICMP);
            ip.set_src_addr(src);
            ip.set_dst_addr(dst);
            ip.fill_checksum();
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            icmpv6::Packet::new_unchecked(&mut *msg).fill_checksum(&src, &dst);
            let mut ip = ipv6::Packet::new_unchecked(header);
            ip.set_version(6);
            ip.set_traffic_class(INTERNETWORK_CONTROL << 5);
            ip.set_flow_label(0);
            ip.set_payload_len(message as u16);
            ip.set_next_header(ipv4::protocol::ICMPV6);
            ip.set_hop_limit(ORIGINATED_TTL);
            ip.set_src_addr(src);
            ip.set_dst_addr(dst);
        }
        _ => return dropped(DropReason::TtlExpired),
    }
    trace.step(Step::Icmp {
        kind,
        from,
        to: original.to,
        quoted,
        labels: received.len(),
        tunnelled,
    });
    Ok(())
}

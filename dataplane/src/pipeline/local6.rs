//! IPv6 for the router itself: neighbour discovery (RFC 4861) and ICMPv6 echo (RFC 4443)
//! for our addresses, answered in place as ARP and ICMP echo are; what else is addressed to
//! us, or to a multicast group, is punted untouched.
//!
//! Our IPv6 addresses are each attachment's `address6` (a local route in its VRF's table)
//! and each port's link-local address (from its MAC; never in the tables: link-local
//! addresses are compared with the ingress port's). Only [`ipv6_group_in`] and
//! [`local_ipv6`] are entered from the forwarding path, and only for packets it would have
//! punted before: forwarded IPv6 pays nothing for them.

use core::net::Ipv6Addr;

use super::{
    dropped, punted, route_ipv6, Counters, Ctx, DropReason, Frame, Hop, OrVerdict, Punt, Qos, Step,
    Tracer, ETH_IPV6, ETH_LEN, ORIGINATED_TTL, TPID_8021Q, VLAN_LEN,
};
use crate::tables::{Fec, PortId, Snapshot, VrfId};
use crate::wire::ethernet::{self, MacAddr};
use crate::wire::{icmpv6, ipv4, ipv6, ndisc};

/// IPv6 that arrived in a frame to an IPv6 multicast MAC: never routed (a link-layer
/// multicast is not for forwarding, RFC 1812 §5.3.4), only neighbour discovery for our
/// addresses is answered; the rest is punted (`multicast`).
#[inline(never)]
pub(super) fn ipv6_group_in<T: Tracer>(
    snap: &Snapshot,
    frame: &mut Frame<'_>,
    l3: usize,
    vrf: VrfId,
    ctx: &Ctx,
    counters: &mut Counters,
    trace: &mut T,
) -> OrVerdict<PortId> {
    let Some(body) = frame.data_mut().get_mut(l3..) else {
        return dropped(DropReason::Truncated);
    };
    if !super::ipv6_checked(body)?.dst_addr().is_multicast() {
        return punted(Punt::Multicast);
    }
    local_ipv6(snap, frame, l3, vrf, ctx, counters, trace, Punt::Multicast)
}

/// Whether the IP packet at `l3` arrived as the frame's own payload (Ethernet, maybe one
/// 802.1Q tag) rather than under labels: only then is it from the ingress link itself, the
/// only place neighbour discovery and link-local traffic can come from.
#[inline]
fn native(frame: &Frame<'_>, l3: usize) -> bool {
    let tagged = frame.data().get(12..14) == Some(&TPID_8021Q.to_be_bytes()[..]);
    l3 == if tagged { ETH_LEN + VLAN_LEN } else { ETH_LEN }
}

/// An IPv6 packet for us (one of our addresses, our link-local address, or a multicast
/// group): neighbour discovery and echo requests are answered, the rest is punted under
/// `otherwise` untouched. A well-formed IPv6 header at `l3` was checked by the caller.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
pub(super) fn local_ipv6<T: Tracer>(
    snap: &Snapshot,
    frame: &mut Frame<'_>,
    l3: usize,
    vrf: VrfId,
    ctx: &Ctx,
    counters: &mut Counters,
    trace: &mut T,
    otherwise: Punt,
) -> OrVerdict<PortId> {
    let msg_type = {
        let ip = ipv6::Packet::new_unchecked(frame.data().get(l3..).unwrap_or_default());
        if ip.next_header() != ipv4::protocol::ICMPV6 {
            return punted(otherwise);
        }
        match ip.payload().first() {
            Some(&t) => t,
            None => return punted(otherwise),
        }
    };
    match msg_type {
        icmpv6::NEIGHBOR_SOLICIT | icmpv6::NEIGHBOR_ADVERT if native(frame, l3) => {
            nd_in(snap, frame, l3, ctx, counters, trace, otherwise)
        }
        icmpv6::ECHO_REQUEST if otherwise == Punt::ForUs => {
            echo6_in(snap, frame, l3, vrf, ctx, counters, trace)
        }
        _ => punted(otherwise),
    }
}

/// A neighbour solicitation or advertisement that came in on the attachment: checked as
/// RFC 4861 §7.1 says (else `bad-nd`); a solicitation for one of the attachment's addresses
/// is answered in place (§7.2.4); advertisements, and solicitations for others, that carry a
/// link-layer address are punted as `nd` so the neighbour resolver can learn from them.
fn nd_in<T: Tracer>(
    snap: &Snapshot,
    frame: &mut Frame<'_>,
    l3: usize,
    ctx: &Ctx,
    counters: &mut Counters,
    trace: &mut T,
    otherwise: Punt,
) -> OrVerdict<PortId> {
    let data = frame.data();
    let ip = ipv6::Packet::new_unchecked(data.get(l3..).unwrap_or_default());
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    let Ok(msg) = ndisc::Message::new_checked(ip.payload()) else {
        return dropped(DropReason::BadNd);
    };
    let target = msg.target_addr();
    // §7.1.1 and §7.1.2: hop limit 255 proves the message was not forwarded.
    if ip.hop_limit() != 255
        || msg.code() != 0
        || target.is_multicast()
        || !icmpv6::Packet::new_unchecked(ip.payload()).verify_checksum(&src, &dst)
    {
        return dropped(DropReason::BadNd);
    }
    if !msg.is_solicit() {
        // §7.1.2: an advertisement to a multicast group is never solicited.
        if dst.is_multicast() && msg.solicited_flag() {
            return dropped(DropReason::BadNd);
        }
        return match msg.link_layer_addr(ndisc::TARGET_LINK_LAYER) {
            Some(_) => punted(Punt::Nd),
            None => punted(otherwise),
        };
    }
    let source_ll = msg.link_layer_addr(ndisc::SOURCE_LINK_LAYER);
    // §7.1.1: duplicate address detection (an unspecified source) goes to the target's
    // solicited-node group and carries no source link-layer address.
    let dad = src.is_unspecified();
    if dad && (!ipv6::is_solicited_node(dst) || source_ll.is_some()) {
        return dropped(DropReason::BadNd);
    }
    let ours = snap
        .attachment(ctx.attachment)
        .address6
        .is_some_and(|p| p.addr() == target)
        || snap.port(ctx.ingress).link_local() == target;
    if !ours {
        return match source_ll {
            Some(_) if !dad => punted(Punt::Nd),
            _ => punted(otherwise),
        };
    }
    // The advertisement goes to the solicitor's link-layer address: its option, else the
    // frame's source (a unicast solicitation may omit the option, §4.3).
    let requester = source_ll.unwrap_or_else(|| ethernet::Frame::new_unchecked(data).src_addr());
    nd_advert(
        snap, frame, l3, ctx, src, target, requester, counters, trace,
    )
}

/// Rewrites the solicitation at `l3` into our advertisement for `target`, in place, out of the
/// ingress port and VLAN (RFC 4861 §7.2.4): Router, Solicited and Override set, our MAC in a
/// target link-layer address option; to the solicitor, or (duplicate address detection, an
/// unspecified `solicitor`) to all nodes with Solicited clear.
#[allow(clippy::too_many_arguments)]
fn nd_advert<T: Tracer>(
    snap: &Snapshot,
    frame: &mut Frame<'_>,
    l3: usize,
    ctx: &Ctx,
    solicitor: Ipv6Addr,
    target: Ipv6Addr,
    requester: MacAddr,
    counters: &mut Counters,
    trace: &mut T,
) -> OrVerdict<PortId> {
    let port_mac = snap.port(ctx.ingress).mac;
    let (to, to_mac, flags) = if solicitor.is_unspecified() {
        let flags = ndisc::FLAG_ROUTER | ndisc::FLAG_OVERRIDE;
        (ipv6::ALL_NODES, ipv6::multicast_mac(ipv6::ALL_NODES), flags)
    } else {
        let flags = ndisc::FLAG_ROUTER | ndisc::FLAG_SOLICITED | ndisc::FLAG_OVERRIDE;
        (solicitor, requester, flags)
    };
    // The tag (if any) stays; everything after it is written anew, so the frame takes the
    // advertisement's length whatever the solicitation's was (a solicitation without an
    // option is 8 bytes shorter: the start moves back into the headroom).
    let mut tag = [0u8; VLAN_LEN];
    let tagged = l3 == ETH_LEN + VLAN_LEN;
    if tagged {
        tag.copy_from_slice(
            frame
                .data()
                .get(ETH_LEN - 2..l3 - 2)
                .unwrap_or(&[0; VLAN_LEN]),
        );
    }
    let msg_len = ndisc::HEADER_LEN + ndisc::LINK_LAYER_OPTION_LEN;
    let len = l3 + ipv6::HEADER_LEN + msg_len;
    frame.truncate(len);
    if !frame.resize_head(frame.len(), len) {
        return dropped(DropReason::NoHeadroom);
    }
    let Some((l2, rest)) = frame.data_mut().split_at_mut_checked(l3) else {
        return dropped(DropReason::NoHeadroom);
    };
    {
        let mut eth = ethernet::Frame::new_unchecked(&mut *l2);
        eth.set_dst_addr(to_mac);
        eth.set_src_addr(port_mac);
    }
    if tagged {
        l2[ETH_LEN - 2..l3 - 2].copy_from_slice(&tag);
    }
    l2[l3 - 2..].copy_from_slice(&ETH_IPV6.to_be_bytes());
    let mut ip = ipv6::Packet::new_unchecked(&mut *rest);
    ip.set_version(6);
    ip.set_traffic_class(0);
    ip.set_flow_label(0);
    ip.set_payload_len(msg_len as u16);
    ip.set_next_header(ipv4::protocol::ICMPV6);
    ip.set_hop_limit(255);
    ip.set_src_addr(target);
    ip.set_dst_addr(to);
    let body = &mut rest[ipv6::HEADER_LEN..];
    let mut na = ndisc::Message::new_unchecked(&mut *body);
    na.set_msg_type(icmpv6::NEIGHBOR_ADVERT);
    na.set_code(0);
    na.set_flags(flags);
    na.set_target_addr(target);
    ndisc::NdOption::new_unchecked(na.options_mut())
        .set_link_layer_addr(ndisc::TARGET_LINK_LAYER, port_mac);
    icmpv6::Packet::new_unchecked(body).fill_checksum(&target, &to);
    counters.nd_replies += 1;
    trace.step(Step::NdAdvert { target, to });
    Ok(ctx.ingress)
}

/// An ICMPv6 echo request to one of our addresses: answered (RFC 4443 §4.2) unless it is
/// malformed, from a multicast, unspecified or own source, or of a link-local party that did
/// not come from the link itself; those are punted (`for-us`) untouched. A reply to a
/// link-local address (or from ours) goes straight back out of the ingress attachment; any
/// other is routed back in the VRF like the IPv4 reply.
#[allow(clippy::too_many_arguments)]
fn echo6_in<T: Tracer>(
    snap: &Snapshot,
    frame: &mut Frame<'_>,
    l3: usize,
    vrf: VrfId,
    ctx: &Ctx,
    counters: &mut Counters,
    trace: &mut T,
) -> OrVerdict<PortId> {
    let (src, dst, total) = {
        let ip = ipv6::Packet::new_unchecked(frame.data().get(l3..).unwrap_or_default());
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        let Ok(icmp) = icmpv6::Packet::new_checked(ip.payload()) else {
            return punted(Punt::ForUs);
        };
        if icmp.code() != 0 || !icmp.verify_checksum(&src, &dst) {
            return punted(Punt::ForUs);
        }
        (src, dst, ip.total_len())
    };
    let src_is_ours = src == snap.port(ctx.ingress).link_local()
        || snap
            .vrf(vrf)
            .v6
            .lookup(u128::from(src))
            .and_then(|f| snap.fecs().get(f as usize))
            == Some(&Fec::Local);
    let on_link = src.is_unicast_link_local() || dst.is_unicast_link_local();
    if src.is_multicast() || src.is_unspecified() || src_is_ours || (on_link && !native(frame, l3))
    {
        return punted(Punt::ForUs);
    }
    // A reply in place skips `emit` and its MTU check: a request larger than the port's
    // MTU (the link may carry more than we send) gets no reply larger than it.
    if on_link && total > usize::from(snap.port(ctx.ingress).mtu) {
        return dropped(DropReason::MtuExceeded);
    }
    frame.truncate(l3 + total);
    let requester = {
        let data = frame.data_mut();
        let requester = ethernet::Frame::new_unchecked(&*data).src_addr();
        let mut ip = ipv6::Packet::new_unchecked(&mut data[l3..]);
        ip.set_src_addr(dst);
        ip.set_dst_addr(src);
        ip.set_hop_limit(ORIGINATED_TTL);
        let mut icmp = icmpv6::Packet::new_unchecked(ip.payload_mut());
        icmp.set_msg_type(icmpv6::ECHO_REPLY);
        icmp.fill_checksum(&dst, &src);
        requester
    };
    trace.step(Step::Echo6Reply { to: src });
    let port = if on_link {
        let port_mac = snap.port(ctx.ingress).mac;
        let mut eth = ethernet::Frame::new_unchecked(frame.data_mut());
        eth.set_dst_addr(requester);
        eth.set_src_addr(port_mac);
        ctx.ingress
    } else {
        route_ipv6(
            snap,
            frame,
            l3,
            vrf,
            Hop::Originated,
            Qos::Given(0),
            ctx,
            counters,
            trace,
        )?
    };
    // Counted once the reply is on its way, as for IPv4.
    counters.echo6_replies += 1;
    Ok(port)
}

//! Neighbours taught by ARP and neighbour discovery, for the runtime's neighbour table.
//!
//! The pipeline answers ARP requests and neighbour solicitations for our addresses in place
//! and punts ARP replies, gratuitous ARP (`Punt::Arp`) and advertisements (`Punt::Nd`); the
//! run loop then asks this module who the frame tells about ([`neighbor`]) and hands that to
//! the control side, which resolves adjacencies with it. Pure bytes in, an answer out: no
//! state here.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::wire::ethernet::{self, EtherType, MacAddr};
use crate::wire::ipv4::protocol;
use crate::wire::{arp, icmpv6, ipv6, ndisc, vlan};

/// A neighbour seen in an ARP or neighbour discovery packet: where it was (VLAN id, 0 when
/// untagged) and who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Neighbor {
    /// The 802.1Q VLAN id the frame carried, or 0 for an untagged frame.
    pub vid: u16,
    /// Its IPv4 or IPv6 address.
    pub ip: IpAddr,
    /// Its MAC address.
    pub mac: MacAddr,
}

/// The VLAN id (0 when untagged), ethertype and payload of an Ethernet frame.
fn l2(frame: &[u8]) -> Option<(u16, EtherType, &[u8])> {
    let eth = ethernet::Frame::new_checked(frame).ok()?;
    match eth.ethertype() {
        EtherType::Vlan => {
            let tag = vlan::Tag::new_checked(&frame[ethernet::HEADER_LEN..]).ok()?;
            let (vid, ethertype) = (tag.vlan_id_raw(), tag.inner_ethertype());
            let payload = frame.get(ethernet::HEADER_LEN + vlan::HEADER_LEN..)?;
            Some((vid, ethertype, payload))
        }
        other => Some((0, other, frame.get(ethernet::HEADER_LEN..)?)),
    }
}

/// A neighbour worth knowing: not unspecified or multicast, with a unicast MAC.
fn usable(vid: u16, ip: IpAddr, mac: MacAddr) -> Option<Neighbor> {
    let group = mac.0[0] & 1 == 1;
    if ip.is_unspecified() || ip.is_multicast() || group || mac.0 == [0; 6] {
        return None;
    }
    Some(Neighbor { vid, ip, mac })
}

/// Who an ARP or neighbour discovery frame tells about ([`arp_neighbor`], [`nd_neighbor`]);
/// `None` for any other frame.
pub fn neighbor(frame: &[u8], built_by_us: bool) -> Option<Neighbor> {
    match l2(frame)?.1 {
        EtherType::Arp => arp_neighbor(frame, built_by_us),
        EtherType::Ipv6 => nd_neighbor(frame, built_by_us),
        _ => None,
    }
}

/// Who an ARP frame tells about: the sender of a frame as it arrived (a reply, a gratuitous
/// ARP or a request), or, for a reply the pipeline built in place from a request
/// (`built_by_us`), its target, which is the requester (RFC 826 lets a receiver of a request
/// learn the requester). `None` for anything else, for ARP probes (sender 0.0.0.0) and for
/// group MACs.
pub fn arp_neighbor(frame: &[u8], built_by_us: bool) -> Option<Neighbor> {
    let (vid, ethertype, body) = l2(frame)?;
    if ethertype != EtherType::Arp {
        return None;
    }
    let pkt = arp::Packet::new_checked(body).ok()?;
    let (ip, mac) = match (built_by_us, pkt.operation()) {
        (false, _) => (pkt.sender_protocol_addr(), pkt.sender_hardware_addr()),
        (true, arp::Operation::Reply) => (pkt.target_protocol_addr(), pkt.target_hardware_addr()),
        (true, _) => return None,
    };
    usable(vid, IpAddr::V4(ip), mac)
}

/// Who a neighbour discovery frame tells about (RFC 4861 §7.2.3, §7.2.5): an advertisement's
/// target at its target link-layer address, a solicitation's source at its source
/// link-layer address; for an advertisement the pipeline built in place from a solicitation
/// (`built_by_us`: solicited, to a unicast address), its destination, which is the solicitor,
/// at the frame's destination MAC. `None` for anything else, for messages without the
/// option, and for messages not sent with hop limit 255 (never ND). The pipeline checked the
/// rest (checksum, options) before it punted or answered.
pub fn nd_neighbor(frame: &[u8], built_by_us: bool) -> Option<Neighbor> {
    let (vid, ethertype, body) = l2(frame)?;
    if ethertype != EtherType::Ipv6 {
        return None;
    }
    let ip = ipv6::Packet::new_checked(body).ok()?;
    if ip.next_header() != protocol::ICMPV6 || ip.hop_limit() != 255 {
        return None;
    }
    let msg = ndisc::Message::new_checked(ip.payload()).ok()?;
    let (addr, mac) = match (built_by_us, msg.is_solicit()) {
        (true, false) if msg.solicited_flag() => (
            ip.dst_addr(),
            ethernet::Frame::new_unchecked(frame).dst_addr(),
        ),
        (true, _) => return None,
        (false, true) => (
            ip.src_addr(),
            msg.link_layer_addr(ndisc::SOURCE_LINK_LAYER)?,
        ),
        (false, false) => (
            msg.target_addr(),
            msg.link_layer_addr(ndisc::TARGET_LINK_LAYER)?,
        ),
    };
    usable(vid, IpAddr::V6(addr), mac)
}

/// An ARP request (RFC 826) from `sender` for `target`, broadcast, 802.1Q-tagged with
/// `vid` when given, padded to the 60-byte Ethernet minimum.
pub fn arp_request(src: MacAddr, vid: Option<u16>, sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::with_capacity(64);
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&src.0);
    if let Some(vid) = vid {
        f.extend_from_slice(&EtherType::Vlan.to_u16().to_be_bytes());
        f.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
    }
    f.extend_from_slice(&EtherType::Arp.to_u16().to_be_bytes());
    let l3 = f.len();
    f.resize(l3 + arp::HEADER_LEN, 0);
    let mut pkt = arp::Packet::new_unchecked(&mut f[l3..]);
    pkt.set_ethernet_ipv4();
    pkt.set_operation(arp::Operation::Request);
    pkt.set_sender_hardware_addr(src);
    pkt.set_sender_protocol_addr(sender);
    pkt.set_target_hardware_addr(MacAddr([0; 6]));
    pkt.set_target_protocol_addr(target);
    f.resize(f.len().max(60), 0);
    f
}

/// A neighbour solicitation (RFC 4861 §4.3, §7.2.2) from `sender`, whose MAC is `src`, for
/// `target`: to the target's solicited-node group, hop limit 255, with a source link-layer
/// address option, 802.1Q-tagged with `vid` when given.
pub fn nd_solicit(src: MacAddr, vid: Option<u16>, sender: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let group = ipv6::solicited_node(target);
    let msg_len = ndisc::HEADER_LEN + ndisc::LINK_LAYER_OPTION_LEN;
    let mut f = Vec::with_capacity(90);
    f.extend_from_slice(&ipv6::multicast_mac(group).0);
    f.extend_from_slice(&src.0);
    if let Some(vid) = vid {
        f.extend_from_slice(&EtherType::Vlan.to_u16().to_be_bytes());
        f.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
    }
    f.extend_from_slice(&EtherType::Ipv6.to_u16().to_be_bytes());
    let l3 = f.len();
    f.resize(l3 + ipv6::HEADER_LEN + msg_len, 0);
    let mut ip = ipv6::Packet::new_unchecked(&mut f[l3..]);
    ip.set_version(6);
    ip.set_payload_len(msg_len as u16);
    ip.set_next_header(protocol::ICMPV6);
    ip.set_hop_limit(255);
    ip.set_src_addr(sender);
    ip.set_dst_addr(group);
    let body = &mut f[l3 + ipv6::HEADER_LEN..];
    let mut ns = ndisc::Message::new_unchecked(&mut *body);
    ns.set_msg_type(icmpv6::NEIGHBOR_SOLICIT);
    ns.set_target_addr(target);
    ndisc::NdOption::new_unchecked(ns.options_mut())
        .set_link_layer_addr(ndisc::SOURCE_LINK_LAYER, src);
    icmpv6::Packet::new_unchecked(body).fill_checksum(&sender, &group);
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ARP frame: Ethernet (optionally tagged with VID 101), op, sender and target.
    fn arp_frame(
        tagged: bool,
        op: u16,
        sha: [u8; 6],
        spa: [u8; 4],
        tha: [u8; 6],
        tpa: [u8; 4],
    ) -> Vec<u8> {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&[0x02, 0, 0, 0, 0xaa, 1]);
        if tagged {
            f.extend_from_slice(&[0x81, 0x00, 0x00, 101]);
        }
        f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4]);
        f.extend_from_slice(&op.to_be_bytes());
        f.extend_from_slice(&sha);
        f.extend_from_slice(&spa);
        f.extend_from_slice(&tha);
        f.extend_from_slice(&tpa);
        f
    }

    const A: [u8; 6] = [0x02, 0, 0, 0, 0xaa, 1];
    const US: [u8; 6] = [0x02, 0, 0, 0, 1, 2];

    #[test]
    fn arp_request_matches_a_handmade_one() {
        let f = arp_request(
            MacAddr(US),
            Some(101),
            Ipv4Addr::new(198, 18, 1, 1),
            Ipv4Addr::new(198, 18, 1, 2),
        );
        let mut want = arp_frame(true, 1, US, [198, 18, 1, 1], [0; 6], [198, 18, 1, 2]);
        want[6..12].copy_from_slice(&US);
        want.resize(60, 0);
        assert_eq!(f, want);
        // The pipeline's own reader sees the sender.
        let n = arp_neighbor(&f, false).unwrap();
        assert_eq!(
            (n.vid, n.ip, n.mac),
            (101, IpAddr::V4(Ipv4Addr::new(198, 18, 1, 1)), MacAddr(US))
        );
        let untagged = arp_request(
            MacAddr(US),
            None,
            Ipv4Addr::new(198, 18, 1, 1),
            Ipv4Addr::new(198, 18, 1, 2),
        );
        assert_eq!(untagged.len(), 60);
        assert_eq!(&untagged[12..14], &[0x08, 0x06]);
    }

    #[test]
    fn sender_of_a_tagged_reply() {
        let f = arp_frame(true, 2, A, [198, 18, 1, 2], US, [198, 18, 1, 1]);
        assert_eq!(
            arp_neighbor(&f, false),
            Some(Neighbor {
                vid: 101,
                ip: IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2)),
                mac: MacAddr(A)
            })
        );
    }

    #[test]
    fn target_of_our_reply_is_the_requester() {
        let f = arp_frame(false, 2, US, [198, 18, 1, 1], A, [198, 18, 1, 2]);
        let n = arp_neighbor(&f, true).unwrap();
        assert_eq!(
            (n.vid, n.ip, n.mac),
            (0, IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2)), MacAddr(A))
        );
        // A request is never "built by us".
        let req = arp_frame(false, 1, A, [198, 18, 1, 2], [0; 6], [198, 18, 1, 1]);
        assert_eq!(arp_neighbor(&req, true), None);
    }

    fn v6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    /// A neighbour advertisement on VLAN 101 with `flags`, `target` and maybe a target
    /// link-layer address option, from `mac` to `dst`.
    fn advert(mac: [u8; 6], dst: &str, flags: u8, target: &str, option: bool) -> Vec<u8> {
        let mut f = vec![0x33, 0x33, 0, 0, 0, 1];
        f.extend_from_slice(&mac);
        f.extend_from_slice(&[0x81, 0x00, 0x00, 101, 0x86, 0xdd]);
        let msg_len = if option { 32 } else { 24 };
        f.resize(18 + 40 + msg_len, 0);
        let (src, dst) = (v6(target), v6(dst));
        let mut ip = ipv6::Packet::new_unchecked(&mut f[18..]);
        ip.set_version(6);
        ip.set_payload_len(msg_len as u16);
        ip.set_next_header(protocol::ICMPV6);
        ip.set_hop_limit(255);
        ip.set_src_addr(src);
        ip.set_dst_addr(dst);
        let mut na = ndisc::Message::new_unchecked(&mut f[58..]);
        na.set_msg_type(icmpv6::NEIGHBOR_ADVERT);
        na.set_flags(flags);
        na.set_target_addr(src);
        if option {
            ndisc::NdOption::new_unchecked(na.options_mut())
                .set_link_layer_addr(ndisc::TARGET_LINK_LAYER, MacAddr(mac));
        }
        icmpv6::Packet::new_unchecked(&mut f[58..]).fill_checksum(&src, &dst);
        f
    }

    #[test]
    fn nd_solicit_is_what_a_decoder_we_did_not_write_reads() {
        let (sender, target) = (v6("2001:db8:c::1"), v6("2001:db8:c::1:2"));
        let f = nd_solicit(MacAddr(US), Some(101), sender, target);
        assert_eq!(f.len(), 18 + 40 + 32);
        assert_eq!(f[..6], [0x33, 0x33, 0xff, 0x01, 0x00, 0x02]);
        let theirs = etherparse::SlicedPacket::from_ethernet(&f).unwrap();
        let Some(etherparse::NetSlice::Ipv6(ip)) = &theirs.net else {
            panic!("etherparse did not see IPv6");
        };
        let h = ip.header();
        assert_eq!((h.hop_limit(), h.payload_length()), (255, 32));
        assert_eq!(h.source_addr(), sender);
        assert_eq!(h.destination_addr(), v6("ff02::1:ff01:2"));
        let Some(etherparse::TransportSlice::Icmpv6(icmp)) = &theirs.transport else {
            panic!("etherparse did not see ICMPv6");
        };
        assert_eq!((icmp.type_u8(), icmp.code_u8()), (135, 0));
        assert!(icmp.is_checksum_valid(h.source(), h.destination()));
        assert_eq!(icmp.bytes5to8(), [0; 4]);
        assert_eq!(icmp.payload()[..16], target.octets());
        assert_eq!(icmp.payload()[16..], [1, 1, 2, 0, 0, 0, 1, 2]);
        // The pipeline's own reader sees the sender; untagged frames are 4 bytes shorter.
        let n = nd_neighbor(&f, false).unwrap();
        assert_eq!((n.vid, n.ip, n.mac), (101, IpAddr::V6(sender), MacAddr(US)));
        let untagged = nd_solicit(MacAddr(US), None, sender, target);
        assert_eq!(untagged[..], [&f[..12], &f[16..]].concat()[..]);
        assert_eq!(neighbor(&untagged, false).map(|n| n.vid), Some(0));
    }

    #[test]
    fn advertisements_teach_their_target() {
        let f = advert(A, "2001:db8:c::1", 0x60, "2001:db8:c::2", true);
        assert_eq!(
            neighbor(&f, false),
            Some(Neighbor {
                vid: 101,
                ip: IpAddr::V6(v6("2001:db8:c::2")),
                mac: MacAddr(A)
            })
        );
        // Without the option there is no MAC to learn.
        assert_eq!(
            nd_neighbor(
                &advert(A, "2001:db8:c::1", 0x60, "2001:db8:c::2", false),
                false
            ),
            None
        );
        // A hop limit below 255 was forwarded: never neighbour discovery.
        let mut forwarded = f.clone();
        forwarded[18 + 7] = 254;
        assert_eq!(nd_neighbor(&forwarded, false), None);
        for cut in 0..f.len() {
            assert_eq!(neighbor(&f[..cut], false), None, "cut at {cut}");
        }
    }

    #[test]
    fn our_solicited_advertisement_teaches_the_solicitor() {
        // What the pipeline builds from a solicitation: from us to the solicitor's MAC.
        let mut ours = advert(US, "2001:db8:a::2", 0xe0, "2001:db8:a::1", true);
        ours[..6].copy_from_slice(&A);
        let n = neighbor(&ours, true).unwrap();
        assert_eq!((n.ip, n.mac), (IpAddr::V6(v6("2001:db8:a::2")), MacAddr(A)));
        // An answer to duplicate address detection goes to all nodes, unsolicited: no one
        // to learn. A solicitation is never built by us in place.
        let dad = advert(US, "ff02::1", 0xa0, "2001:db8:a::1", true);
        assert_eq!(neighbor(&dad, true), None);
        let ns = nd_solicit(MacAddr(A), None, v6("2001:db8:a::2"), v6("2001:db8:a::1"));
        assert_eq!(neighbor(&ns, true), None);
    }

    #[test]
    fn probes_group_macs_and_other_frames_teach_nothing() {
        let probe = arp_frame(false, 1, A, [0, 0, 0, 0], [0; 6], [198, 18, 1, 1]);
        assert_eq!(arp_neighbor(&probe, false), None);
        let group = arp_frame(
            false,
            2,
            [0x03, 0, 0, 0, 0, 1],
            [198, 18, 1, 2],
            US,
            [198, 18, 1, 1],
        );
        assert_eq!(arp_neighbor(&group, false), None);
        let mut ipv4 = arp_frame(false, 2, A, [198, 18, 1, 2], US, [198, 18, 1, 1]);
        ipv4[12..14].copy_from_slice(&[0x08, 0x00]);
        assert_eq!(arp_neighbor(&ipv4, false), None);
        let f = arp_frame(true, 2, A, [198, 18, 1, 2], US, [198, 18, 1, 1]);
        for cut in 0..f.len() {
            assert_eq!(arp_neighbor(&f[..cut], false), None, "cut at {cut}");
        }
    }
}

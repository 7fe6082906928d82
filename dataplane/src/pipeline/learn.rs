//! Neighbours taught by ARP, for the runtime's neighbour table.
//!
//! The pipeline answers ARP requests for our addresses in place and punts replies and
//! gratuitous ARP (`Punt::Arp`); the run loop then asks this module who the frame tells about
//! and hands that to the control side, which resolves adjacencies with it. Pure bytes in,
//! an answer out: no state here.

use core::net::Ipv4Addr;

use crate::wire::ethernet::{self, EtherType, MacAddr};
use crate::wire::{arp, vlan};

/// A neighbour seen in an ARP packet: where it was (VLAN id, 0 when untagged) and who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Neighbor {
    /// The 802.1Q VLAN id the frame carried, or 0 for an untagged frame.
    pub vid: u16,
    /// Its IPv4 address.
    pub ip: Ipv4Addr,
    /// Its MAC address.
    pub mac: MacAddr,
}

/// Who an ARP frame tells about: the sender of a frame as it arrived (a reply, a gratuitous
/// ARP or a request), or, for a reply the pipeline built in place from a request
/// (`built_by_us`), its target, which is the requester (RFC 826 lets a receiver of a request
/// learn the requester). `None` for anything else, for ARP probes (sender 0.0.0.0) and for
/// group MACs.
pub fn arp_neighbor(frame: &[u8], built_by_us: bool) -> Option<Neighbor> {
    let eth = ethernet::Frame::new_checked(frame).ok()?;
    let tag;
    let (vid, ethertype, body) = match eth.ethertype() {
        EtherType::Vlan => {
            tag = vlan::Tag::new_checked(eth.payload()).ok()?;
            (tag.vlan_id_raw(), tag.inner_ethertype(), tag.payload())
        }
        other => (0, other, eth.payload()),
    };
    if ethertype != EtherType::Arp {
        return None;
    }
    let pkt = arp::Packet::new_checked(body).ok()?;
    let (ip, mac) = match (built_by_us, pkt.operation()) {
        (false, _) => (pkt.sender_protocol_addr(), pkt.sender_hardware_addr()),
        (true, arp::Operation::Reply) => (pkt.target_protocol_addr(), pkt.target_hardware_addr()),
        (true, _) => return None,
    };
    let group = mac.0[0] & 1 == 1;
    if ip.is_unspecified() || group || mac.0 == [0; 6] {
        return None;
    }
    Some(Neighbor { vid, ip, mac })
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
            (101, Ipv4Addr::new(198, 18, 1, 1), MacAddr(US))
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
                ip: Ipv4Addr::new(198, 18, 1, 2),
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
            (0, Ipv4Addr::new(198, 18, 1, 2), MacAddr(A))
        );
        // A request is never "built by us".
        let req = arp_frame(false, 1, A, [198, 18, 1, 2], [0; 6], [198, 18, 1, 1]);
        assert_eq!(arp_neighbor(&req, true), None);
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

//! IPv6 packets (RFC 8200 §3): a view over the fixed 40-byte header and the payload it bounds.
//!
//! Extension headers are part of the payload here; the data plane forwards on the fixed
//! header alone. The payload is bounded by Payload Length, not by the buffer, so
//! Ethernet padding is never mistaken for data. Jumbograms (RFC 2675, Payload Length 0
//! with a Hop-by-Hop option) are not interpreted: their payload reads as empty.

use core::net::Ipv6Addr;

use super::ethernet::MacAddr;
use super::{read_array, read_u16, read_u32, write_u16, write_u32, Error, Result};

mod field {
    use core::ops::Range;

    pub const VER_TC_FLOW: Range<usize> = 0..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const NXT_HDR: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC_ADDR: Range<usize> = 8..24;
    pub const DST_ADDR: Range<usize> = 24..40;
}

/// Length of the fixed IPv6 header (also `Packet::HEADER_LEN`).
pub const HEADER_LEN: usize = field::DST_ADDR.end;

const VERSION_SHIFT: u32 = 28;
const TRAFFIC_CLASS_SHIFT: u32 = 20;
const FLOW_LABEL_MASK: u32 = 0x000f_ffff;

/// The all-nodes multicast address, ff02::1 (RFC 4291 §2.7.1).
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// The link-local address a port with `mac` forms by itself: fe80::/64 with the modified
/// EUI-64 interface identifier (RFC 4291 §2.5.1 and App. A: ff:fe in the middle of the MAC,
/// the universal/local bit inverted).
pub const fn link_local(mac: MacAddr) -> Ipv6Addr {
    let m = mac.0;
    Ipv6Addr::from_octets([
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        m[0] ^ 0x02,
        m[1],
        m[2],
        0xff,
        0xfe,
        m[3],
        m[4],
        m[5],
    ])
}

/// The solicited-node multicast address of `addr`, ff02::1:ffXX:XXXX with its low 24 bits
/// (RFC 4291 §2.7.1): where neighbour solicitations for `addr` are sent (RFC 4861 §7.2.2).
pub const fn solicited_node(addr: Ipv6Addr) -> Ipv6Addr {
    let a = addr.octets();
    Ipv6Addr::from_octets([
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, a[13], a[14], a[15],
    ])
}

/// Whether `addr` is a solicited-node multicast address (ff02::1:ff00:0/104).
pub const fn is_solicited_node(addr: Ipv6Addr) -> bool {
    let a = addr.octets();
    let s = solicited_node(addr).octets();
    let mut i = 0;
    while i < 13 {
        if a[i] != s[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The Ethernet group address an IPv6 multicast address maps to: 33:33 and its low 32 bits
/// (RFC 2464 §7).
pub const fn multicast_mac(addr: Ipv6Addr) -> MacAddr {
    let a = addr.octets();
    MacAddr([0x33, 0x33, a[12], a[13], a[14], a[15]])
}

/// A view over an IPv6 packet: the fixed header and payload, in a buffer that may be longer.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Length of the fixed IPv6 header.
    pub const HEADER_LEN: usize = HEADER_LEN;

    /// Wraps a buffer without any check; accessors panic if it is shorter than `HEADER_LEN`.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer after checking that it holds the packet its header describes.
    ///
    /// `Error::Truncated` if the buffer is shorter than 40 bytes or than 40 + Payload
    /// Length; `Error::Malformed` if the version is not 6. Longer buffers are fine.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let len = buffer.as_ref().len();
        if len < Self::HEADER_LEN {
            return Err(Error::Truncated);
        }
        let packet = Packet { buffer };
        if packet.version() != 6 {
            return Err(Error::Malformed);
        }
        if packet.total_len() > len {
            return Err(Error::Truncated);
        }
        Ok(packet)
    }

    /// Returns the wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn first_word(&self) -> u32 {
        read_u32(&self.buffer.as_ref()[field::VER_TC_FLOW])
    }

    /// IP version (6 once `new_checked` succeeded).
    pub fn version(&self) -> u8 {
        (self.first_word() >> VERSION_SHIFT) as u8
    }

    /// Traffic Class: DSCP in the upper 6 bits, ECN in the lower 2 (RFC 2474, RFC 3168).
    pub fn traffic_class(&self) -> u8 {
        (self.first_word() >> TRAFFIC_CLASS_SHIFT) as u8
    }

    /// Flow Label (20 bits, RFC 6437).
    pub fn flow_label(&self) -> u32 {
        self.first_word() & FLOW_LABEL_MASK
    }

    /// Payload Length: bytes after the fixed header, extension headers included.
    #[inline]
    pub fn payload_len(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::LENGTH])
    }

    /// Header length plus Payload Length: the packet's extent in the buffer.
    pub fn total_len(&self) -> usize {
        Self::HEADER_LEN + usize::from(self.payload_len())
    }

    /// Next Header: the protocol number of the first extension header or of the payload.
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NXT_HDR]
    }

    /// Hop Limit.
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(read_array::<16>(&self.buffer.as_ref()[field::SRC_ADDR]))
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(read_array::<16>(&self.buffer.as_ref()[field::DST_ADDR]))
    }

    // End of the payload, clamped to the buffer so that the slice accessors stay in
    // bounds even after `set_payload_len` wrote a value the buffer cannot hold.
    fn payload_end(&self) -> usize {
        self.total_len().min(self.buffer.as_ref().len())
    }

    /// The payload: the Payload Length bytes after the fixed header, excluding link-layer padding.
    pub fn payload(&self) -> &[u8] {
        let end = self.payload_end();
        &self.buffer.as_ref()[Self::HEADER_LEN..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn set_first_word(&mut self, mask: u32, value: u32) {
        let word = (self.first_word() & !mask) | (value & mask);
        write_u32(&mut self.buffer.as_mut()[field::VER_TC_FLOW], word);
    }

    /// Sets the version nibble (use 6).
    pub fn set_version(&mut self, version: u8) {
        self.set_first_word(0xf << VERSION_SHIFT, u32::from(version) << VERSION_SHIFT);
    }

    /// Sets Traffic Class, keeping version and flow label.
    pub fn set_traffic_class(&mut self, traffic_class: u8) {
        self.set_first_word(
            0xff << TRAFFIC_CLASS_SHIFT,
            u32::from(traffic_class) << TRAFFIC_CLASS_SHIFT,
        );
    }

    /// Sets Flow Label (masked to 20 bits), keeping version and traffic class.
    pub fn set_flow_label(&mut self, flow_label: u32) {
        self.set_first_word(FLOW_LABEL_MASK, flow_label);
    }

    /// Sets Payload Length (the caller keeps it within the buffer; `payload()` clamps if not).
    pub fn set_payload_len(&mut self, len: u16) {
        write_u16(&mut self.buffer.as_mut()[field::LENGTH], len);
    }

    /// Sets Next Header.
    pub fn set_next_header(&mut self, next_header: u8) {
        self.buffer.as_mut()[field::NXT_HDR] = next_header;
    }

    /// Sets Hop Limit (IPv6 has no header checksum to patch).
    #[inline]
    pub fn set_hop_limit(&mut self, hop_limit: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = hop_limit;
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, addr: Ipv6Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&addr.octets());
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, addr: Ipv6Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&addr.octets());
    }

    /// The payload up to Payload Length, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = self.payload_end();
        &mut self.buffer.as_mut()[Self::HEADER_LEN..end]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ipv4::protocol;
    use proptest::prelude::*;

    /// The IPv6 packet of gopacket's `testPacketICMPv6` (a tcpdump capture): neighbor
    /// advertisement 2620:0:1005:0:26be:5ff:fe27:b17 -> fe80::21f:caff:feb3:7640, hop
    /// limit 255, Payload Length 24; followed here by 2 bytes standing in for padding.
    static NEIGHBOR_ADVERT: [u8; 66] = [
        0x60, 0x00, 0x00, 0x00, 0x00, 0x18, 0x3a, 0xff, 0x26, 0x20, 0x00, 0x00, 0x10, 0x05, 0x00,
        0x00, 0x26, 0xbe, 0x05, 0xff, 0xfe, 0x27, 0x0b, 0x17, 0xfe, 0x80, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x02, 0x1f, 0xca, 0xff, 0xfe, 0xb3, 0x76, 0x40, 0x88, 0x00, 0x1e, 0xd6, 0x40,
        0x00, 0x00, 0x00, 0x26, 0x20, 0x00, 0x00, 0x10, 0x05, 0x00, 0x00, 0x26, 0xbe, 0x05, 0xff,
        0xfe, 0x27, 0x0b, 0x17, 0x00, 0x00,
    ];

    fn src() -> Ipv6Addr {
        "2620:0:1005:0:26be:5ff:fe27:b17".parse().unwrap()
    }

    fn dst() -> Ipv6Addr {
        "fe80::21f:caff:feb3:7640".parse().unwrap()
    }

    #[test]
    fn addresses_derived_from_a_mac_and_an_address() {
        // RFC 4291 App. A: 34-56-78-9A-BC-DE -> 3656:78ff:fe9a:bcde (the U/L bit flipped).
        let mac = MacAddr([0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde]);
        assert_eq!(
            link_local(mac),
            "fe80::3656:78ff:fe9a:bcde".parse::<Ipv6Addr>().unwrap()
        );
        // A locally administered MAC loses its 0x02 bit.
        assert_eq!(
            link_local(MacAddr([0x02, 0, 0, 0, 0x01, 0x02])),
            "fe80::ff:fe00:102".parse::<Ipv6Addr>().unwrap()
        );
        let target: Ipv6Addr = "2001:db8:a::1:2345:6789".parse().unwrap();
        let group = solicited_node(target);
        assert_eq!(group, "ff02::1:ff45:6789".parse::<Ipv6Addr>().unwrap());
        assert!(is_solicited_node(group));
        assert!(!is_solicited_node(ALL_NODES));
        assert!(!is_solicited_node(target));
        assert_eq!(
            multicast_mac(group),
            MacAddr([0x33, 0x33, 0xff, 0x45, 0x67, 0x89])
        );
        assert_eq!(multicast_mac(ALL_NODES), MacAddr([0x33, 0x33, 0, 0, 0, 1]));
    }

    #[test]
    fn reads_captured_packet() {
        let packet = Packet::new_checked(&NEIGHBOR_ADVERT[..]).unwrap();
        assert_eq!(packet.version(), 6);
        assert_eq!(packet.traffic_class(), 0);
        assert_eq!(packet.flow_label(), 0);
        assert_eq!(packet.payload_len(), 24);
        assert_eq!(packet.total_len(), 64);
        assert_eq!(packet.next_header(), protocol::ICMPV6);
        assert_eq!(packet.hop_limit(), 255);
        assert_eq!(packet.src_addr(), src());
        assert_eq!(packet.dst_addr(), dst());
        assert_eq!(packet.payload(), &NEIGHBOR_ADVERT[40..64]);
    }

    #[test]
    fn builds_captured_packet() {
        let mut buf = [0xa5u8; 66];
        let mut packet = Packet::new_unchecked(&mut buf[..]);
        packet.set_version(6);
        packet.set_traffic_class(0);
        packet.set_flow_label(0);
        packet.set_payload_len(24);
        packet.set_next_header(protocol::ICMPV6);
        packet.set_hop_limit(255);
        packet.set_src_addr(src());
        packet.set_dst_addr(dst());
        packet
            .payload_mut()
            .copy_from_slice(&NEIGHBOR_ADVERT[40..64]);
        assert_eq!(buf[..64], NEIGHBOR_ADVERT[..64]);
        assert_eq!(buf[64..], [0xa5; 2]);
    }

    #[test]
    fn first_word_fields_do_not_overlap() {
        let mut buf = [0u8; 40];
        let mut packet = Packet::new_unchecked(&mut buf[..]);
        packet.set_version(6);
        packet.set_traffic_class(0xb8); // DSCP EF, ECN 0
        packet.set_flow_label(0xf_ffff);
        assert_eq!(buf[..4], [0x6b, 0x8f, 0xff, 0xff]);
        let mut packet = Packet::new_unchecked(&mut buf[..]);
        packet.set_flow_label(0x1_2345 | 0xfff0_0000);
        assert_eq!(packet.flow_label(), 0x1_2345);
        assert_eq!(packet.traffic_class(), 0xb8);
        assert_eq!(packet.version(), 6);
        packet.set_traffic_class(0);
        assert_eq!(buf[..4], [0x60, 0x01, 0x23, 0x45]);
    }

    #[test]
    fn rejects_short_and_malformed_buffers() {
        for len in 0..Packet::<&[u8]>::HEADER_LEN {
            assert_eq!(
                Packet::new_checked(&NEIGHBOR_ADVERT[..len]).unwrap_err(),
                Error::Truncated
            );
        }
        for len in 40..64 {
            assert_eq!(
                Packet::new_checked(&NEIGHBOR_ADVERT[..len]).unwrap_err(),
                Error::Truncated
            );
        }
        assert!(Packet::new_checked(&NEIGHBOR_ADVERT[..64]).is_ok());
        let mut v4 = NEIGHBOR_ADVERT;
        v4[0] = 0x45;
        assert_eq!(Packet::new_checked(&v4[..]).unwrap_err(), Error::Malformed);
        let mut long = NEIGHBOR_ADVERT;
        long[4..6].copy_from_slice(&27u16.to_be_bytes());
        assert_eq!(
            Packet::new_checked(&long[..]).unwrap_err(),
            Error::Truncated
        );
        long[4..6].copy_from_slice(&26u16.to_be_bytes());
        assert!(Packet::new_checked(&long[..]).is_ok());
    }

    #[test]
    fn etherparse_agrees() {
        let theirs = etherparse::Ipv6HeaderSlice::from_slice(&NEIGHBOR_ADVERT).unwrap();
        let ours = Packet::new_checked(&NEIGHBOR_ADVERT[..]).unwrap();
        assert_eq!(ours.version(), theirs.version());
        assert_eq!(ours.traffic_class(), theirs.traffic_class());
        assert_eq!(ours.flow_label(), theirs.flow_label().value());
        assert_eq!(ours.payload_len(), theirs.payload_length());
        assert_eq!(ours.next_header(), theirs.next_header().0);
        assert_eq!(ours.hop_limit(), theirs.hop_limit());
        assert_eq!(ours.src_addr(), theirs.source_addr());
        assert_eq!(ours.dst_addr(), theirs.destination_addr());
    }

    proptest! {
        #[test]
        fn getters_never_panic(
            mut data in prop::collection::vec(any::<u8>(), 0..96),
            force_version in any::<bool>(),
            payload_len in 0u16..64,
        ) {
            if force_version && data.len() >= 6 {
                data[0] = 0x60 | (data[0] & 0x0f);
                data[4..6].copy_from_slice(&payload_len.to_be_bytes());
            }
            if let Ok(packet) = Packet::new_checked(&data[..]) {
                let _ = (packet.version(), packet.traffic_class(), packet.flow_label());
                let _ = (packet.next_header(), packet.hop_limit(), packet.src_addr(), packet.dst_addr());
                prop_assert_eq!(packet.payload().len(), usize::from(packet.payload_len()));
                let theirs = etherparse::Ipv6HeaderSlice::from_slice(&data).unwrap();
                prop_assert_eq!(packet.traffic_class(), theirs.traffic_class());
                prop_assert_eq!(packet.flow_label(), theirs.flow_label().value());
                prop_assert_eq!(packet.dst_addr(), theirs.destination_addr());
            }
        }

        #[test]
        fn payload_stays_in_bounds_after_bad_setter(len in any::<u16>()) {
            let mut bytes = NEIGHBOR_ADVERT;
            let mut packet = Packet::new_unchecked(&mut bytes[..]);
            packet.set_payload_len(len);
            prop_assert!(packet.payload().len() <= 26);
            prop_assert!(packet.payload_mut().len() <= 26);
        }
    }
}

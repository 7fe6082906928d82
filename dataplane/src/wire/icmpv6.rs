//! ICMP for IPv6 (RFC 4443): a view over a message, enough for the router to answer echo
//! requests to its own addresses and to read and write neighbour discovery ([`super::ndisc`]).
//!
//! Unlike ICMPv4, the checksum covers an IPv6 pseudo-header (source, destination, length and
//! next header 58, RFC 4443 §2.3) as well as the message, so checking or filling it takes the
//! two addresses. The view should wrap exactly the IPv6 payload (`ipv6::Packet::payload`,
//! which excludes Ethernet padding) of a packet without extension headers.

use core::net::Ipv6Addr;

use super::checksum;
use super::ipv4::protocol;
use super::{read_u16, write_u16, Error, Result};

/// Type of a Destination Unreachable message.
pub const DEST_UNREACHABLE: u8 = 1;
/// Type of a Packet Too Big message.
pub const PACKET_TOO_BIG: u8 = 2;
/// Type of a Time Exceeded message.
pub const TIME_EXCEEDED: u8 = 3;
/// Type of an Echo Request message.
pub const ECHO_REQUEST: u8 = 128;
/// Type of an Echo Reply message.
pub const ECHO_REPLY: u8 = 129;
/// Type of a Router Solicitation (RFC 4861 §4.1).
pub const ROUTER_SOLICIT: u8 = 133;
/// Type of a Router Advertisement (RFC 4861 §4.2).
pub const ROUTER_ADVERT: u8 = 134;
/// Type of a Neighbor Solicitation (RFC 4861 §4.3).
pub const NEIGHBOR_SOLICIT: u8 = 135;
/// Type of a Neighbor Advertisement (RFC 4861 §4.4).
pub const NEIGHBOR_ADVERT: u8 = 136;
/// Type of a Redirect (RFC 4861 §4.5).
pub const REDIRECT: u8 = 137;

mod field {
    use core::ops::{Range, RangeFrom};

    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const ECHO_IDENT: Range<usize> = 4..6;
    pub const ECHO_SEQNO: Range<usize> = 6..8;
    pub const PAYLOAD: RangeFrom<usize> = 8..;
}

/// Length of the ICMPv6 header: type, code, checksum and the 4 bytes every message type has
/// after them (also `Packet::HEADER_LEN`).
pub const HEADER_LEN: usize = field::PAYLOAD.start;

/// A view over one ICMPv6 message: the 8-byte header and the data after it.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Length of the ICMPv6 header.
    pub const HEADER_LEN: usize = HEADER_LEN;

    /// Wraps a buffer without checking its length; accessors panic if it is shorter than `HEADER_LEN`.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer after checking it holds the 8-byte header (`Error::Truncated` otherwise).
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        if buffer.as_ref().len() < Self::HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(Packet { buffer })
    }

    /// Returns the wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Message type (see the constants of this module).
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    /// Message code, whose meaning depends on the type.
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// Checksum as stored.
    pub fn checksum(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    /// Echo identifier (bytes 4-5; meaningful for echo request and reply only).
    pub fn ident(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::ECHO_IDENT])
    }

    /// Echo sequence number (bytes 6-7; meaningful for echo request and reply only).
    pub fn seq_no(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::ECHO_SEQNO])
    }

    /// Whether the checksum over the pseudo-header of `src` -> `dst` and the whole buffer is
    /// correct.
    pub fn verify_checksum(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
        let data = self.buffer.as_ref();
        let pseudo = checksum::ipv6_pseudo_header(src, dst, protocol::ICMPV6, data.len() as u32);
        checksum::fold(pseudo + checksum::sum(data)) == 0
    }

    /// The bytes after the 8-byte header: echo data, or the body of the message.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the message type.
    pub fn set_msg_type(&mut self, msg_type: u8) {
        self.buffer.as_mut()[field::TYPE] = msg_type;
    }

    /// Sets the message code.
    pub fn set_code(&mut self, code: u8) {
        self.buffer.as_mut()[field::CODE] = code;
    }

    /// Sets the checksum as stored.
    pub fn set_checksum(&mut self, checksum: u16) {
        write_u16(&mut self.buffer.as_mut()[field::CHECKSUM], checksum);
    }

    /// Sets the echo identifier.
    pub fn set_ident(&mut self, ident: u16) {
        write_u16(&mut self.buffer.as_mut()[field::ECHO_IDENT], ident);
    }

    /// Sets the echo sequence number.
    pub fn set_seq_no(&mut self, seq_no: u16) {
        write_u16(&mut self.buffer.as_mut()[field::ECHO_SEQNO], seq_no);
    }

    /// Recomputes the checksum over the pseudo-header of `src` -> `dst` and the whole buffer.
    pub fn fill_checksum(&mut self, src: &Ipv6Addr, dst: &Ipv6Addr) {
        self.set_checksum(0);
        let data = self.buffer.as_ref();
        let pseudo = checksum::ipv6_pseudo_header(src, dst, protocol::ICMPV6, data.len() as u32);
        let checksum = checksum::fold(pseudo + checksum::sum(data));
        self.set_checksum(checksum);
    }

    /// The bytes after the 8-byte header, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ethernet::{EtherType, Frame};
    use crate::wire::ipv6;
    use proptest::prelude::*;

    /// A captured ping6 between two link-local addresses (PcapPlusPlus's test resource
    /// `IcmpV6_EchoRequest.dat`, whose test asserts type 128, code 0, checksum 0x7a4c,
    /// identifier 0x0018, sequence 20 and 56 bytes of data): 00:15:5d:a5:c4:c5 ->
    /// 00:15:5d:70:fc:2e, fe80::215:5dff:fea5:c4c5 -> fe80::dd05:dae0:74bc:7341, hop limit 64.
    #[rustfmt::skip]
    pub(crate) static PING6_FRAME: [u8; 118] = [
        // Ethernet II
        0x00, 0x15, 0x5d, 0x70, 0xfc, 0x2e, 0x00, 0x15, 0x5d, 0xa5, 0xc4, 0xc5, 0x86, 0xdd,
        // IPv6: traffic class 0, flow label 0xd2ce3, payload 64, next header 58, hop limit 64
        0x60, 0x0d, 0x2c, 0xe3, 0x00, 0x40, 0x3a, 0x40,
        0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x15, 0x5d, 0xff, 0xfe, 0xa5, 0xc4, 0xc5,
        0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xdd, 0x05, 0xda, 0xe0, 0x74, 0xbc, 0x73, 0x41,
        // ICMPv6: type, code, checksum, identifier, sequence number
        0x80, 0x00, 0x7a, 0x4c, 0x00, 0x18, 0x00, 0x14,
        // echo data: ping's timeval, then 0x10..=0x37
        0xbd, 0xce, 0xcb, 0x62, 0x00, 0x00, 0x00, 0x00, 0xf3, 0xa1, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
        0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f,
        0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37,
    ];

    fn addrs() -> (Ipv6Addr, Ipv6Addr) {
        (
            "fe80::215:5dff:fea5:c4c5".parse().unwrap(),
            "fe80::dd05:dae0:74bc:7341".parse().unwrap(),
        )
    }

    fn echo_message() -> &'static [u8] {
        &PING6_FRAME[54..]
    }

    #[test]
    fn reads_captured_echo_request() {
        let frame = Frame::new_checked(&PING6_FRAME[..]).unwrap();
        assert_eq!(frame.ethertype(), EtherType::Ipv6);
        let ip = ipv6::Packet::new_checked(frame.payload()).unwrap();
        assert_eq!(ip.next_header(), protocol::ICMPV6);
        assert_eq!((ip.src_addr(), ip.dst_addr()), addrs());
        let icmp = Packet::new_checked(ip.payload()).unwrap();
        assert_eq!(icmp.msg_type(), ECHO_REQUEST);
        assert_eq!(icmp.code(), 0);
        assert_eq!(icmp.checksum(), 0x7a4c);
        assert_eq!((icmp.ident(), icmp.seq_no()), (0x18, 20));
        assert_eq!(icmp.payload().len(), 56);
        assert_eq!(icmp.payload()[..4], [0xbd, 0xce, 0xcb, 0x62]);
        let (src, dst) = addrs();
        assert!(icmp.verify_checksum(&src, &dst));
        // The pseudo-header counts: the same message between other addresses fails.
        assert!(!icmp.verify_checksum(&dst, &"fe80::1".parse().unwrap()));
    }

    #[test]
    fn builds_captured_echo_request() {
        let mut buf = [0xa5u8; 64];
        let mut packet = Packet::new_unchecked(&mut buf[..]);
        packet.set_msg_type(ECHO_REQUEST);
        packet.set_code(0);
        packet.set_ident(0x18);
        packet.set_seq_no(20);
        packet.payload_mut().copy_from_slice(&echo_message()[8..]);
        let (src, dst) = addrs();
        packet.fill_checksum(&src, &dst);
        assert_eq!(buf[..], *echo_message());
    }

    #[test]
    fn turning_a_request_into_a_reply() {
        let mut buf = [0u8; 64];
        buf.copy_from_slice(echo_message());
        let (src, dst) = addrs();
        let mut packet = Packet::new_checked(&mut buf[..]).unwrap();
        packet.set_msg_type(ECHO_REPLY);
        // The addresses swap places in the pseudo-header, which leaves its sum unchanged.
        packet.fill_checksum(&dst, &src);
        assert!(packet.verify_checksum(&dst, &src));
        // Only the type changed, by 0x0100 in the first word.
        assert_eq!(packet.checksum(), 0x794c);
    }

    #[test]
    fn rejects_short_buffers() {
        for len in 0..HEADER_LEN {
            assert_eq!(
                Packet::new_checked(&echo_message()[..len]).unwrap_err(),
                Error::Truncated
            );
        }
    }

    #[test]
    fn etherparse_agrees() {
        let theirs = etherparse::SlicedPacket::from_ethernet(&PING6_FRAME).unwrap();
        let Some(etherparse::TransportSlice::Icmpv6(icmp)) = theirs.transport else {
            panic!("etherparse did not see ICMPv6");
        };
        let ours = Packet::new_checked(echo_message()).unwrap();
        assert_eq!(ours.msg_type(), icmp.type_u8());
        assert_eq!(ours.code(), icmp.code_u8());
        assert_eq!(ours.checksum(), icmp.checksum());
        let (src, dst) = addrs();
        assert!(icmp.is_checksum_valid(src.octets(), dst.octets()));
        let etherparse::Icmpv6Type::EchoRequest(echo) = icmp.icmp_type() else {
            panic!("etherparse did not see an echo request");
        };
        assert_eq!((ours.ident(), ours.seq_no()), (echo.id, echo.seq));
        assert_eq!(ours.payload(), icmp.payload());
    }

    proptest! {
        #[test]
        fn getters_never_panic(data in prop::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(packet) = Packet::new_checked(&data[..]) {
                let (src, dst) = addrs();
                let _ = (packet.msg_type(), packet.code(), packet.checksum(), packet.ident());
                let _ = (packet.seq_no(), packet.verify_checksum(&src, &dst), packet.payload());
            } else {
                prop_assert!(data.len() < HEADER_LEN);
            }
        }

        #[test]
        fn filled_checksum_verifies_and_matches_etherparse(
            data in prop::collection::vec(any::<u8>(), 8..80),
            src in any::<[u8; 16]>(),
            dst in any::<[u8; 16]>(),
        ) {
            let mut data = data;
            let (src, dst) = (Ipv6Addr::from(src), Ipv6Addr::from(dst));
            let mut packet = Packet::new_checked(&mut data[..]).unwrap();
            packet.fill_checksum(&src, &dst);
            prop_assert!(packet.verify_checksum(&src, &dst));
            let theirs = etherparse::Icmpv6Slice::from_slice(&data).unwrap();
            prop_assert!(theirs.is_checksum_valid(src.octets(), dst.octets()));
        }
    }
}

//! ICMP for IPv4 (RFC 792): a view over a message, enough for the router to answer
//! echo requests to its own addresses and to originate Time Exceeded and Destination
//! Unreachable.
//!
//! The checksum covers the whole message, so the view should wrap exactly the IPv4
//! payload (`ipv4::Packet::payload`, which already excludes Ethernet padding).

use super::checksum;
use super::{read_u16, write_u16, Error, Result};

/// Type of an Echo Reply message.
pub const ECHO_REPLY: u8 = 0;
/// Type of a Destination Unreachable message.
pub const DEST_UNREACHABLE: u8 = 3;
/// Type of an Echo (request) message.
pub const ECHO_REQUEST: u8 = 8;
/// Type of a Time Exceeded message (code 0: TTL exceeded in transit).
pub const TIME_EXCEEDED: u8 = 11;

mod field {
    use core::ops::{Range, RangeFrom};

    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const ECHO_IDENT: Range<usize> = 4..6;
    pub const ECHO_SEQNO: Range<usize> = 6..8;
    pub const PAYLOAD: RangeFrom<usize> = 8..;
}

/// Length of the ICMP header (also `Packet::HEADER_LEN`).
pub const HEADER_LEN: usize = field::PAYLOAD.start;

/// A view over one ICMPv4 message: the 8-byte header and the data after it.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Length of the ICMP header: type, code, checksum and the 4-byte rest of header.
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

    /// Whether the checksum over the whole buffer is correct.
    pub fn verify_checksum(&self) -> bool {
        checksum::fold(checksum::sum(self.buffer.as_ref())) == 0
    }

    /// The bytes after the 8-byte header: echo data, or the quoted datagram of an error message.
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

    /// Recomputes the checksum over the whole buffer.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let checksum = checksum::fold(checksum::sum(self.buffer.as_ref()));
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
    use crate::wire::ipv4;
    use core::net::Ipv4Addr;
    use proptest::prelude::*;

    /// A captured Linux ping (Wireshark dissection in juraj-juraj/IPK_projekt_2,
    /// `testovanie/ipv4/icmp/icmp1.res`, frame 153): 5c:87:9c:f2:71:f5 -> 00:1a:1e:06:87:10,
    /// 100.64.199.51 -> 104.22.12.230, echo request id 8 seq 8, checksum 0x9b00. The
    /// dissection elides the echo data; it is ping's 16-byte timeval (tv_sec 1650646330
    /// as shown, tv_usec 0x3dcfd per the bytes shown) and the bytes 0x10..=0x37, and both
    /// stored checksums (IPv4 0xfdde, ICMP 0x9b00) verify over what is written here.
    #[rustfmt::skip]
    static PING_FRAME: [u8; 98] = [
        // Ethernet II
        0x00, 0x1a, 0x1e, 0x06, 0x87, 0x10, 0x5c, 0x87, 0x9c, 0xf2, 0x71, 0xf5, 0x08, 0x00,
        // IPv4
        0x45, 0x00, 0x00, 0x54, 0x9c, 0x5a, 0x40, 0x00, 0x40, 0x01, 0xfd, 0xde,
        0x64, 0x40, 0xc7, 0x33, 0x68, 0x16, 0x0c, 0xe6,
        // ICMP: type, code, checksum, identifier, sequence number
        0x08, 0x00, 0x9b, 0x00, 0x00, 0x08, 0x00, 0x08,
        // echo data: struct timeval (little-endian tv_sec, tv_usec), then 0x10..=0x37
        0x3a, 0xdd, 0x62, 0x62, 0x00, 0x00, 0x00, 0x00, 0xfd, 0xdc, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
        0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f,
        0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37,
    ];

    fn echo_message() -> &'static [u8] {
        &PING_FRAME[34..]
    }

    #[test]
    fn reads_captured_echo_request() {
        let packet = Packet::new_checked(echo_message()).unwrap();
        assert_eq!(packet.msg_type(), ECHO_REQUEST);
        assert_eq!(packet.code(), 0);
        assert_eq!(packet.checksum(), 0x9b00);
        assert_eq!(packet.ident(), 8);
        assert_eq!(packet.seq_no(), 8);
        assert!(packet.verify_checksum());
        assert_eq!(packet.payload().len(), 56);
        assert_eq!(
            packet.payload()[16..],
            (0x10..=0x37).collect::<Vec<u8>>()[..]
        );
    }

    #[test]
    fn reads_captured_frame_layer_by_layer() {
        let frame = Frame::new_checked(&PING_FRAME[..]).unwrap();
        assert_eq!(frame.ethertype(), EtherType::Ipv4);
        let ip = ipv4::Packet::new_checked(frame.payload()).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(ip.next_header(), ipv4::protocol::ICMP);
        assert_eq!(ip.src_addr(), Ipv4Addr::new(100, 64, 199, 51));
        let icmp = Packet::new_checked(ip.payload()).unwrap();
        assert_eq!(icmp.msg_type(), ECHO_REQUEST);
        assert!(icmp.verify_checksum());
    }

    #[test]
    fn builds_captured_echo_request() {
        let mut buf = [0xa5u8; 64];
        let mut packet = Packet::new_unchecked(&mut buf[..]);
        packet.set_msg_type(ECHO_REQUEST);
        packet.set_code(0);
        packet.set_ident(8);
        packet.set_seq_no(8);
        packet.payload_mut().copy_from_slice(&echo_message()[8..]);
        packet.fill_checksum();
        assert_eq!(buf[..], *echo_message());
    }

    #[test]
    fn turning_a_request_into_a_reply() {
        let mut buf = [0u8; 64];
        buf.copy_from_slice(echo_message());
        let mut packet = Packet::new_checked(&mut buf[..]).unwrap();
        packet.set_msg_type(ECHO_REPLY);
        // The type byte shares a word with the code: patch the checksum for that word.
        let checksum = checksum::update(packet.checksum(), 0x0800, 0x0000);
        packet.set_checksum(checksum);
        assert!(packet.verify_checksum());
        let patched = packet.checksum();
        packet.fill_checksum();
        assert_eq!(packet.checksum(), patched);
        assert_eq!(patched, 0xa300);
    }

    #[test]
    fn detects_corruption() {
        let mut buf = [0u8; 64];
        buf.copy_from_slice(echo_message());
        buf[40] ^= 0x01;
        assert!(!Packet::new_checked(&buf[..]).unwrap().verify_checksum());
    }

    #[test]
    fn rejects_short_buffers() {
        for len in 0..Packet::<&[u8]>::HEADER_LEN {
            assert_eq!(
                Packet::new_checked(&echo_message()[..len]).unwrap_err(),
                Error::Truncated
            );
        }
        let header_only = Packet::new_checked(&echo_message()[..8]).unwrap();
        assert!(header_only.payload().is_empty());
    }

    #[test]
    fn type_constants() {
        assert_eq!(
            (ECHO_REPLY, DEST_UNREACHABLE, ECHO_REQUEST, TIME_EXCEEDED),
            (0, 3, 8, 11)
        );
    }

    #[test]
    fn etherparse_agrees() {
        let theirs = etherparse::SlicedPacket::from_ethernet(&PING_FRAME).unwrap();
        let Some(etherparse::TransportSlice::Icmpv4(icmp)) = theirs.transport else {
            panic!("etherparse did not see ICMPv4");
        };
        let ours = Packet::new_checked(echo_message()).unwrap();
        assert_eq!(ours.msg_type(), icmp.type_u8());
        assert_eq!(ours.code(), icmp.code_u8());
        assert_eq!(ours.checksum(), icmp.checksum());
        let etherparse::Icmpv4Type::EchoRequest(echo) = icmp.icmp_type() else {
            panic!("etherparse did not see an echo request");
        };
        assert_eq!((ours.ident(), ours.seq_no()), (echo.id, echo.seq));
        assert_eq!(ours.payload(), icmp.payload());
        assert_eq!(
            ours.checksum(),
            icmp.icmp_type().calc_checksum(icmp.payload())
        );
    }

    proptest! {
        #[test]
        fn getters_never_panic(data in prop::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(packet) = Packet::new_checked(&data[..]) {
                let _ = (packet.msg_type(), packet.code(), packet.checksum(), packet.ident());
                let _ = (packet.seq_no(), packet.verify_checksum(), packet.payload());
            } else {
                prop_assert!(data.len() < 8);
            }
        }

        #[test]
        fn filled_checksum_verifies(data in prop::collection::vec(any::<u8>(), 8..80)) {
            let mut data = data;
            let mut packet = Packet::new_checked(&mut data[..]).unwrap();
            packet.fill_checksum();
            prop_assert!(packet.verify_checksum());
        }
    }
}

//! ARP for IPv4 over Ethernet (RFC 826): a view over the 28-byte packet that the
//! neighbour code answers and learns from.
//!
//! Only hardware type Ethernet (1) with 6-byte addresses and protocol type IPv4
//! (0x0800) with 4-byte addresses is accepted; anything else is `Error::Malformed`,
//! which keeps every accessor at a fixed offset.

use core::net::Ipv4Addr;

use super::ethernet::MacAddr;
use super::{read_array, read_u16, write_u16, Error, Result};

/// The ARP opcode (RFC 826; IANA "ARP Operation Codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// ARP request, opcode 1.
    Request,
    /// ARP reply, opcode 2.
    Reply,
    /// Any other opcode (RARP, InARP, ...), kept as data.
    Other(u16),
}

impl From<u16> for Operation {
    fn from(value: u16) -> Self {
        match value {
            1 => Operation::Request,
            2 => Operation::Reply,
            other => Operation::Other(other),
        }
    }
}

impl From<Operation> for u16 {
    fn from(value: Operation) -> Self {
        match value {
            Operation::Request => 1,
            Operation::Reply => 2,
            Operation::Other(other) => other,
        }
    }
}

mod field {
    use core::ops::Range;

    pub const HTYPE: Range<usize> = 0..2;
    pub const PTYPE: Range<usize> = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Range<usize> = 6..8;
    pub const SHA: Range<usize> = 8..14;
    pub const SPA: Range<usize> = 14..18;
    pub const THA: Range<usize> = 18..24;
    pub const TPA: Range<usize> = 24..28;
}

/// Length of an Ethernet/IPv4 ARP packet (also `Packet::HEADER_LEN`).
pub const HEADER_LEN: usize = field::TPA.end;

const HTYPE_ETHERNET: u16 = 1;
const PTYPE_IPV4: u16 = 0x0800;
const HLEN_ETHERNET: u8 = 6;
const PLEN_IPV4: u8 = 4;

/// A view over an Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Length of an Ethernet/IPv4 ARP packet.
    pub const HEADER_LEN: usize = HEADER_LEN;

    /// Wraps a buffer without any check; accessors panic if it is shorter than `HEADER_LEN`.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer after checking it is a whole Ethernet/IPv4 ARP packet.
    ///
    /// `Error::Truncated` below 28 bytes; `Error::Malformed` unless hardware type is 1,
    /// protocol type 0x0800, hardware length 6 and protocol length 4. Trailing bytes
    /// (Ethernet padding) are ignored.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let data = buffer.as_ref();
        if data.len() < Self::HEADER_LEN {
            return Err(Error::Truncated);
        }
        if read_u16(&data[field::HTYPE]) != HTYPE_ETHERNET
            || read_u16(&data[field::PTYPE]) != PTYPE_IPV4
            || data[field::HLEN] != HLEN_ETHERNET
            || data[field::PLEN] != PLEN_IPV4
        {
            return Err(Error::Malformed);
        }
        Ok(Packet { buffer })
    }

    /// Returns the wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The opcode.
    pub fn operation(&self) -> Operation {
        Operation::from(read_u16(&self.buffer.as_ref()[field::OPER]))
    }

    /// Sender hardware address.
    pub fn sender_hardware_addr(&self) -> MacAddr {
        MacAddr(read_array(&self.buffer.as_ref()[field::SHA]))
    }

    /// Sender protocol address.
    pub fn sender_protocol_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(read_array::<4>(&self.buffer.as_ref()[field::SPA]))
    }

    /// Target hardware address (all zero in a request).
    pub fn target_hardware_addr(&self) -> MacAddr {
        MacAddr(read_array(&self.buffer.as_ref()[field::THA]))
    }

    /// Target protocol address.
    pub fn target_protocol_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(read_array::<4>(&self.buffer.as_ref()[field::TPA]))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Writes the fixed first 6 bytes: hardware type Ethernet, protocol type IPv4, lengths 6 and 4.
    pub fn set_ethernet_ipv4(&mut self) {
        let data = self.buffer.as_mut();
        write_u16(&mut data[field::HTYPE], HTYPE_ETHERNET);
        write_u16(&mut data[field::PTYPE], PTYPE_IPV4);
        data[field::HLEN] = HLEN_ETHERNET;
        data[field::PLEN] = PLEN_IPV4;
    }

    /// Sets the opcode.
    pub fn set_operation(&mut self, operation: Operation) {
        write_u16(&mut self.buffer.as_mut()[field::OPER], operation.into());
    }

    /// Sets the sender hardware address.
    pub fn set_sender_hardware_addr(&mut self, addr: MacAddr) {
        self.buffer.as_mut()[field::SHA].copy_from_slice(&addr.0);
    }

    /// Sets the sender protocol address.
    pub fn set_sender_protocol_addr(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::SPA].copy_from_slice(&addr.octets());
    }

    /// Sets the target hardware address.
    pub fn set_target_hardware_addr(&mut self, addr: MacAddr) {
        self.buffer.as_mut()[field::THA].copy_from_slice(&addr.0);
    }

    /// Sets the target protocol address.
    pub fn set_target_protocol_addr(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::TPA].copy_from_slice(&addr.octets());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ethernet::{EtherType, Frame};
    use proptest::prelude::*;

    /// A captured ARP request on a Docker bridge (a Go ARP responder's test
    /// `TestInputProcessorARP`, whose bytes are "taken from the packet dump"): broadcast from
    /// 02:42:ac:14:00:02, "who has 172.20.0.6? tell 172.20.0.2". Ethernet header included.
    static DOCKER_ARP_REQUEST: [u8; 42] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x42, 0xac, 0x14, 0x00, 0x02, 0x08, 0x06, 0x00,
        0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x02, 0x42, 0xac, 0x14, 0x00, 0x02, 0xac, 0x14,
        0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xac, 0x14, 0x00, 0x06,
    ];

    const SENDER_MAC: MacAddr = MacAddr([0x02, 0x42, 0xac, 0x14, 0x00, 0x02]);

    fn arp_bytes() -> &'static [u8] {
        &DOCKER_ARP_REQUEST[14..]
    }

    #[test]
    fn reads_captured_request() {
        let frame = Frame::new_checked(&DOCKER_ARP_REQUEST[..]).unwrap();
        assert_eq!(frame.ethertype(), EtherType::Arp);
        let packet = Packet::new_checked(frame.payload()).unwrap();
        assert_eq!(packet.operation(), Operation::Request);
        assert_eq!(packet.sender_hardware_addr(), SENDER_MAC);
        assert_eq!(packet.sender_protocol_addr(), Ipv4Addr::new(172, 20, 0, 2));
        assert_eq!(packet.target_hardware_addr(), MacAddr::UNSPECIFIED);
        assert_eq!(packet.target_protocol_addr(), Ipv4Addr::new(172, 20, 0, 6));
    }

    #[test]
    fn builds_captured_request() {
        let mut buf = [0xa5u8; 28];
        let mut packet = Packet::new_unchecked(&mut buf[..]);
        packet.set_ethernet_ipv4();
        packet.set_operation(Operation::Request);
        packet.set_sender_hardware_addr(SENDER_MAC);
        packet.set_sender_protocol_addr(Ipv4Addr::new(172, 20, 0, 2));
        packet.set_target_hardware_addr(MacAddr::UNSPECIFIED);
        packet.set_target_protocol_addr(Ipv4Addr::new(172, 20, 0, 6));
        assert_eq!(buf[..], *arp_bytes());
    }

    #[test]
    fn rejects_short_and_foreign_packets() {
        for len in 0..Packet::<&[u8]>::HEADER_LEN {
            assert_eq!(
                Packet::new_checked(&arp_bytes()[..len]).unwrap_err(),
                Error::Truncated
            );
        }
        for (index, value) in [(1, 6), (0, 1), (3, 0xdd), (2, 0x86), (4, 8), (5, 16)] {
            let mut bytes = [0u8; 28];
            bytes.copy_from_slice(arp_bytes());
            bytes[index] = value;
            assert_eq!(
                Packet::new_checked(&bytes[..]).unwrap_err(),
                Error::Malformed,
                "byte {index} = {value:#x}"
            );
        }
        // Padded to the Ethernet minimum: still fine.
        let mut padded = [0u8; 46];
        padded[..28].copy_from_slice(arp_bytes());
        assert!(Packet::new_checked(&padded[..]).is_ok());
    }

    #[test]
    fn operation_round_trips() {
        for raw in 0..=u16::MAX {
            assert_eq!(u16::from(Operation::from(raw)), raw);
        }
        assert_eq!(Operation::from(2), Operation::Reply);
        assert_eq!(Operation::from(3), Operation::Other(3));
    }

    // etherparse 0.16 has no ARP decoder (it arrived in 0.17), so the cross-check covers
    // the link layer only: etherparse sees an ARP frame whose payload is our packet.
    #[test]
    fn etherparse_agrees_on_the_frame() {
        let theirs = etherparse::SlicedPacket::from_ethernet(&DOCKER_ARP_REQUEST).unwrap();
        let Some(etherparse::LinkSlice::Ethernet2(eth)) = theirs.link else {
            panic!("etherparse did not see Ethernet II");
        };
        assert_eq!(eth.ether_type(), etherparse::EtherType::ARP);
        assert_eq!(eth.payload().payload, arp_bytes());
        assert!(Packet::new_checked(eth.payload().payload).is_ok());
    }

    proptest! {
        #[test]
        fn getters_never_panic(mut data in prop::collection::vec(any::<u8>(), 0..40), fix in any::<bool>()) {
            if fix && data.len() >= 6 {
                data[..6].copy_from_slice(&[0, 1, 8, 0, 6, 4]);
            }
            if let Ok(packet) = Packet::new_checked(&data[..]) {
                let _ = (packet.operation(), packet.sender_hardware_addr(), packet.sender_protocol_addr());
                let _ = (packet.target_hardware_addr(), packet.target_protocol_addr());
            } else {
                prop_assert!(data.len() < 28 || !fix);
            }
        }
    }
}

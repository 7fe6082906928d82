//! Ethernet II frames (IEEE 802.3 clause 3.2.6 type interpretation): MAC addresses,
//! EtherTypes and a view over the 14-byte header.
//!
//! Frames handed over by AF_XDP carry no preamble and no FCS, so the view starts at the
//! destination address and its payload runs to the end of the buffer, including any
//! padding up to the 60-byte minimum (the IP layer bounds its own length).

use core::fmt;
use core::str::FromStr;

use super::{read_array, read_u16, write_u16, Error, Result};

/// A 48-bit IEEE 802 MAC address, in wire order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// The broadcast address `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    /// The all-zero address, used as "unknown" (e.g. the ARP request target).
    pub const UNSPECIFIED: MacAddr = MacAddr([0; 6]);

    /// Returns the six octets in wire order.
    pub const fn octets(self) -> [u8; 6] {
        self.0
    }

    /// Whether this is `ff:ff:ff:ff:ff:ff`.
    pub const fn is_broadcast(self) -> bool {
        let o = self.0;
        o[0] & o[1] & o[2] & o[3] & o[4] & o[5] == 0xff
    }

    /// Whether the I/G bit (least significant bit of the first octet) is set; broadcast included.
    pub const fn is_multicast(self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// Whether the I/G bit is clear, i.e. the address names one station.
    pub const fn is_unicast(self) -> bool {
        !self.is_multicast()
    }
}

impl From<[u8; 6]> for MacAddr {
    fn from(octets: [u8; 6]) -> Self {
        MacAddr(octets)
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            o[0], o[1], o[2], o[3], o[4], o[5]
        )
    }
}

/// Why a string is not a MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseMacAddrError(());

impl fmt::Display for ParseMacAddrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "invalid MAC address: expected six colon-separated pairs of hex digits, like 02:00:00:00:01:01",
        )
    }
}

impl core::error::Error for ParseMacAddrError {}

impl FromStr for MacAddr {
    type Err = ParseMacAddrError;

    /// Parses `xx:xx:xx:xx:xx:xx`, each `x` a hex digit of either case; nothing else.
    fn from_str(s: &str) -> core::result::Result<Self, Self::Err> {
        let err = ParseMacAddrError(());
        let mut octets = [0u8; 6];
        let mut groups = s.split(':');
        for octet in &mut octets {
            let group = groups.next().ok_or(err)?.as_bytes();
            let [hi, lo] = group else { return Err(err) };
            *octet = (hex_digit(*hi).ok_or(err)? << 4) | hex_digit(*lo).ok_or(err)?;
        }
        if groups.next().is_some() {
            return Err(err);
        }
        Ok(MacAddr(octets))
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// The EtherType field: what the payload of a frame (or of a VLAN tag) is.
///
/// Build it with `From<u16>` so that known values always map to their named variant;
/// `Other(0x0800)` would compare unequal to `Ipv4`. Values below 0x0600 are 802.3
/// lengths, not types, and come out as `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EtherType {
    /// IPv4, 0x0800.
    Ipv4,
    /// ARP, 0x0806.
    Arp,
    /// IEEE 802.1Q customer VLAN tag (C-TAG TPID), 0x8100.
    Vlan,
    /// IEEE 802.1ad service VLAN tag (S-TAG TPID), 0x88a8.
    QinQ,
    /// IPv6, 0x86dd.
    Ipv6,
    /// MPLS unicast, 0x8847 (RFC 3032 §5).
    Mpls,
    /// MPLS multicast, 0x8848 (RFC 5332).
    MplsMulticast,
    /// Any other value, kept as data.
    Other(u16),
}

impl EtherType {
    /// Maps a wire value to its variant (`const` form of `From<u16>`).
    pub const fn from_u16(value: u16) -> EtherType {
        match value {
            0x0800 => EtherType::Ipv4,
            0x0806 => EtherType::Arp,
            0x8100 => EtherType::Vlan,
            0x88a8 => EtherType::QinQ,
            0x86dd => EtherType::Ipv6,
            0x8847 => EtherType::Mpls,
            0x8848 => EtherType::MplsMulticast,
            other => EtherType::Other(other),
        }
    }

    /// Returns the wire value (`const` form of `From<EtherType> for u16`).
    pub const fn to_u16(self) -> u16 {
        match self {
            EtherType::Ipv4 => 0x0800,
            EtherType::Arp => 0x0806,
            EtherType::Vlan => 0x8100,
            EtherType::QinQ => 0x88a8,
            EtherType::Ipv6 => 0x86dd,
            EtherType::Mpls => 0x8847,
            EtherType::MplsMulticast => 0x8848,
            EtherType::Other(other) => other,
        }
    }

    /// Whether this value announces a 4-byte VLAN tag (0x8100 or 0x88a8).
    pub const fn is_vlan_tpid(self) -> bool {
        matches!(self, EtherType::Vlan | EtherType::QinQ)
    }
}

impl From<u16> for EtherType {
    fn from(value: u16) -> Self {
        EtherType::from_u16(value)
    }
}

impl From<EtherType> for u16 {
    fn from(value: EtherType) -> Self {
        value.to_u16()
    }
}

mod field {
    use core::ops::{Range, RangeFrom};

    pub const DESTINATION: Range<usize> = 0..6;
    pub const SOURCE: Range<usize> = 6..12;
    pub const ETHERTYPE: Range<usize> = 12..14;
    pub const PAYLOAD: RangeFrom<usize> = 14..;
}

/// Length of the Ethernet II header (also `Frame::HEADER_LEN`).
pub const HEADER_LEN: usize = field::PAYLOAD.start;

/// A view over an Ethernet II frame: 14 header bytes, then the payload to the end of the buffer.
#[derive(Debug, Clone)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Length of the Ethernet II header: two addresses and the EtherType.
    pub const HEADER_LEN: usize = HEADER_LEN;

    /// Wraps a buffer without checking its length; accessors panic if it is shorter than `HEADER_LEN`.
    pub const fn new_unchecked(buffer: T) -> Frame<T> {
        Frame { buffer }
    }

    /// Wraps a buffer after checking it holds a whole header (`Error::Truncated` otherwise).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Frame<T>> {
        if buffer.as_ref().len() < Self::HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(Frame { buffer })
    }

    /// Returns the wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Destination MAC address.
    #[inline]
    pub fn dst_addr(&self) -> MacAddr {
        MacAddr(read_array(&self.buffer.as_ref()[field::DESTINATION]))
    }

    /// Source MAC address.
    #[inline]
    pub fn src_addr(&self) -> MacAddr {
        MacAddr(read_array(&self.buffer.as_ref()[field::SOURCE]))
    }

    /// EtherType of the payload (for a tagged frame, the TPID of the first tag).
    #[inline]
    pub fn ethertype(&self) -> EtherType {
        EtherType::from_u16(read_u16(&self.buffer.as_ref()[field::ETHERTYPE]))
    }

    /// The EtherType as the wire integer, for a hot path that compares it against a few
    /// `EtherType::*.to_u16()` constants: the mapping of [`ethertype`](Self::ethertype)
    /// costs about ten instructions per read that a compare does not (callgrind).
    #[inline]
    pub fn ethertype_raw(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::ETHERTYPE])
    }

    /// The bytes after the header, to the end of the buffer.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    /// Sets the destination MAC address.
    pub fn set_dst_addr(&mut self, addr: MacAddr) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&addr.0);
    }

    /// Sets the source MAC address.
    pub fn set_src_addr(&mut self, addr: MacAddr) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&addr.0);
    }

    /// Sets the EtherType.
    pub fn set_ethertype(&mut self, ethertype: EtherType) {
        write_u16(
            &mut self.buffer.as_mut()[field::ETHERTYPE],
            ethertype.to_u16(),
        );
    }

    /// The bytes after the header, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// First frame of Wireshark's sample capture `mpls-basic.cap` (as quoted in gopacket's
    /// MPLS test): Cisco_05:28:38 -> Cisco_e6:fc:39, MPLS label 29, IPv4/TCP 10.1.2.1 ->
    /// 10.34.0.1, 40-byte IP packet plus 4 bytes of Ethernet padding to the 60-byte minimum.
    static MPLS_BASIC_FRAME: [u8; 60] = [
        0x00, 0x30, 0x96, 0xe6, 0xfc, 0x39, 0x00, 0x30, 0x96, 0x05, 0x28, 0x38, 0x88, 0x47, 0x00,
        0x01, 0xdd, 0xff, 0x45, 0xc0, 0x00, 0x28, 0x00, 0x03, 0x00, 0x00, 0xff, 0x06, 0xa4, 0xe8,
        0x0a, 0x01, 0x02, 0x01, 0x0a, 0x22, 0x00, 0x01, 0x2a, 0xf9, 0x00, 0x17, 0x98, 0x32, 0x10,
        0x05, 0x8d, 0xd5, 0x8e, 0xa5, 0x50, 0x10, 0x10, 0x20, 0x99, 0xcd, 0x00, 0x00, 0x00, 0x00,
    ];

    #[test]
    fn reads_captured_frame() {
        let frame = Frame::new_checked(&MPLS_BASIC_FRAME[..]).unwrap();
        assert_eq!(
            frame.dst_addr(),
            MacAddr([0x00, 0x30, 0x96, 0xe6, 0xfc, 0x39])
        );
        assert_eq!(
            frame.src_addr(),
            MacAddr([0x00, 0x30, 0x96, 0x05, 0x28, 0x38])
        );
        assert_eq!(frame.ethertype(), EtherType::Mpls);
        assert_eq!(frame.ethertype_raw(), 0x8847);
        assert_eq!(frame.payload(), &MPLS_BASIC_FRAME[14..]);
        assert_eq!(frame.payload().len(), 46);
    }

    #[test]
    fn builds_captured_header() {
        let mut buf = [0xa5u8; 60];
        let mut frame = Frame::new_unchecked(&mut buf[..]);
        frame.set_dst_addr("00:30:96:e6:fc:39".parse().unwrap());
        frame.set_src_addr("00:30:96:05:28:38".parse().unwrap());
        frame.set_ethertype(EtherType::Mpls);
        frame.payload_mut().copy_from_slice(&MPLS_BASIC_FRAME[14..]);
        assert_eq!(buf, MPLS_BASIC_FRAME);
    }

    #[test]
    fn rejects_short_buffers() {
        for len in 0..Frame::<&[u8]>::HEADER_LEN {
            assert_eq!(
                Frame::new_checked(&MPLS_BASIC_FRAME[..len]).unwrap_err(),
                Error::Truncated
            );
        }
        let header_only = Frame::new_checked(&MPLS_BASIC_FRAME[..14]).unwrap();
        assert!(header_only.payload().is_empty());
    }

    #[test]
    fn etherparse_agrees() {
        let theirs = etherparse::Ethernet2HeaderSlice::from_slice(&MPLS_BASIC_FRAME).unwrap();
        let ours = Frame::new_checked(&MPLS_BASIC_FRAME[..]).unwrap();
        assert_eq!(ours.dst_addr().0, theirs.destination());
        assert_eq!(ours.src_addr().0, theirs.source());
        assert_eq!(u16::from(ours.ethertype()), theirs.ether_type().0);
    }

    #[test]
    fn ethertype_round_trips_and_names_known_values() {
        let named = [
            (0x0800, EtherType::Ipv4),
            (0x0806, EtherType::Arp),
            (0x8100, EtherType::Vlan),
            (0x88a8, EtherType::QinQ),
            (0x86dd, EtherType::Ipv6),
            (0x8847, EtherType::Mpls),
            (0x8848, EtherType::MplsMulticast),
        ];
        for (raw, ty) in named {
            assert_eq!(EtherType::from(raw), ty);
            assert_eq!(u16::from(ty), raw);
        }
        for raw in 0..=u16::MAX {
            assert_eq!(u16::from(EtherType::from(raw)), raw);
        }
        assert_eq!(EtherType::from(0x88cc), EtherType::Other(0x88cc));
        assert!(EtherType::Vlan.is_vlan_tpid() && EtherType::QinQ.is_vlan_tpid());
        assert!(!EtherType::Other(0x9100).is_vlan_tpid());
    }

    #[test]
    fn mac_display_and_parse() {
        let mac = MacAddr([0x02, 0x00, 0x00, 0x00, 0x01, 0x01]);
        assert_eq!(mac.to_string(), "02:00:00:00:01:01");
        assert_eq!("02:00:00:00:01:01".parse::<MacAddr>(), Ok(mac));
        assert_eq!(
            "AA:bb:Cc:0D:e0:FF".parse::<MacAddr>(),
            Ok(MacAddr([0xaa, 0xbb, 0xcc, 0x0d, 0xe0, 0xff]))
        );
        assert_eq!(MacAddr::BROADCAST.to_string(), "ff:ff:ff:ff:ff:ff");
        for bad in [
            "",
            "02:00:00:00:01",
            "02:00:00:00:01:01:",
            "02:00:00:00:01:01:02",
            "02-00-00-00-01-01",
            "2:00:00:00:01:01",
            "002:00:00:00:01:01",
            "02:00:00:00:01:0g",
            "+2:00:00:00:01:01",
            "02:00:00:00:01: 1",
            "02::00:00:00:01:01",
            "0200.0000.0101",
            "é2:00:00:00:01:01",
        ] {
            assert_eq!(
                bad.parse::<MacAddr>(),
                Err(ParseMacAddrError(())),
                "{bad:?}"
            );
        }
        let msg = "x".parse::<MacAddr>().unwrap_err().to_string();
        assert!(msg.contains("02:00:00:00:01:01"), "{msg}");
    }

    #[test]
    fn mac_classes() {
        assert!(MacAddr::BROADCAST.is_broadcast());
        assert!(MacAddr::BROADCAST.is_multicast());
        assert!(!MacAddr::BROADCAST.is_unicast());
        let ipv4_mcast = MacAddr([0x01, 0x00, 0x5e, 0x00, 0x00, 0x05]);
        assert!(ipv4_mcast.is_multicast() && !ipv4_mcast.is_broadcast());
        let host = MacAddr([0x02, 0x00, 0x00, 0x00, 0x01, 0x01]);
        assert!(host.is_unicast() && !host.is_multicast() && !host.is_broadcast());
        assert!(!MacAddr([0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]).is_broadcast());
    }

    proptest! {
        #[test]
        fn getters_never_panic(data in prop::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(frame) = Frame::new_checked(&data[..]) {
                let _ = (frame.dst_addr(), frame.src_addr(), frame.ethertype());
                prop_assert_eq!(frame.payload().len(), data.len() - 14);
            } else {
                prop_assert!(data.len() < 14);
            }
        }

        #[test]
        fn mac_display_parses_back(octets in any::<[u8; 6]>()) {
            let mac = MacAddr(octets);
            prop_assert_eq!(mac.to_string().parse::<MacAddr>(), Ok(mac));
            prop_assert_eq!(mac.to_string().to_uppercase().parse::<MacAddr>(), Ok(mac));
        }

        #[test]
        fn mac_parse_never_panics(s in "\\PC{0,24}") {
            let _ = s.parse::<MacAddr>();
        }
    }
}

//! Neighbour discovery (RFC 4861): views over a neighbour solicitation (§4.3) or
//! advertisement (§4.4) and over their options (§4.6), the IPv6 counterpart of ARP.
//!
//! Both messages share one layout after the ICMPv6 type, code and checksum: 4 bytes of flags
//! and reserved bits, the 16-byte target address, then options of `length` x 8 bytes. So one
//! view, [`Message`], serves both; [`Message::new_checked`] walks the options once, so that
//! neither the option iterator nor any accessor can fail afterwards. The ICMPv6 checksum is
//! [`super::icmpv6::Packet`]'s to check and fill; the IPv6 rules (hop limit 255, where an
//! unspecified source may send) are the pipeline's.

use core::net::Ipv6Addr;

use super::ethernet::MacAddr;
use super::icmpv6::{NEIGHBOR_ADVERT, NEIGHBOR_SOLICIT};
use super::{read_array, read_u16, Error, Result};

/// Option type of a Source Link-Layer Address option (§4.6.1).
pub const SOURCE_LINK_LAYER: u8 = 1;
/// Option type of a Target Link-Layer Address option (§4.6.1).
pub const TARGET_LINK_LAYER: u8 = 2;
/// Length of a link-layer address option on Ethernet, in bytes: type, length and a MAC
/// (RFC 2464 §6); its length field is 1.
pub const LINK_LAYER_OPTION_LEN: usize = 8;

/// The advertisement's Router flag: the sender is a router (§4.4).
pub const FLAG_ROUTER: u8 = 0x80;
/// The advertisement's Solicited flag: an answer to a solicitation (§4.4).
pub const FLAG_SOLICITED: u8 = 0x40;
/// The advertisement's Override flag: the link-layer address replaces a cached one (§4.4).
pub const FLAG_OVERRIDE: u8 = 0x20;

mod field {
    use core::ops::{Range, RangeFrom};

    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const FLAGS_RESERVED: Range<usize> = 4..8;
    pub const TARGET: Range<usize> = 8..24;
    pub const OPTIONS: RangeFrom<usize> = 24..;

    // Within an option.
    pub const OPT_TYPE: usize = 0;
    pub const OPT_LEN: usize = 1;
    pub const OPT_DATA: usize = 2;
}

/// Length of a solicitation or advertisement without options.
pub const HEADER_LEN: usize = field::OPTIONS.start;

/// A view over a neighbour solicitation or advertisement: the whole ICMPv6 message.
#[derive(Debug, Clone)]
pub struct Message<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Message<T> {
    /// Length of the message without options.
    pub const HEADER_LEN: usize = HEADER_LEN;

    /// Wraps a buffer without any check; accessors panic if it is shorter than `HEADER_LEN`
    /// and the option iterator stops at the first malformed option.
    pub const fn new_unchecked(buffer: T) -> Message<T> {
        Message { buffer }
    }

    /// Wraps a buffer after checking it is a well-formed solicitation or advertisement.
    ///
    /// `Error::Truncated` if it is shorter than 24 bytes; `Error::Malformed` if its type is
    /// neither, or if an option has length 0 (§4.6: such a packet must be discarded), runs past
    /// the end, or is a link-layer address option of another size than Ethernet's (8 bytes).
    pub fn new_checked(buffer: T) -> Result<Message<T>> {
        let bytes = buffer.as_ref();
        if bytes.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if !matches!(bytes[field::TYPE], NEIGHBOR_SOLICIT | NEIGHBOR_ADVERT) {
            return Err(Error::Malformed);
        }
        let mut rest = &bytes[field::OPTIONS];
        while !rest.is_empty() {
            // The message is all there: an option cut short is a malformed option area.
            let option = NdOption::new_checked(rest).map_err(|_| Error::Malformed)?;
            let len = option.total_len();
            if matches!(option.kind(), SOURCE_LINK_LAYER | TARGET_LINK_LAYER)
                && len != LINK_LAYER_OPTION_LEN
            {
                return Err(Error::Malformed);
            }
            rest = &rest[len..];
        }
        Ok(Message { buffer })
    }

    /// Returns the wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// ICMPv6 type: [`NEIGHBOR_SOLICIT`] or [`NEIGHBOR_ADVERT`].
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    /// Whether this is a solicitation (else an advertisement).
    pub fn is_solicit(&self) -> bool {
        self.msg_type() == NEIGHBOR_SOLICIT
    }

    /// ICMPv6 code (0 in a valid message).
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// ICMPv6 checksum as stored.
    pub fn checksum(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    /// The flags byte: [`FLAG_ROUTER`], [`FLAG_SOLICITED`], [`FLAG_OVERRIDE`] of an
    /// advertisement (reserved, 0, in a solicitation).
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS_RESERVED.start]
    }

    /// The advertisement's Router flag.
    pub fn router_flag(&self) -> bool {
        self.flags() & FLAG_ROUTER != 0
    }

    /// The advertisement's Solicited flag.
    pub fn solicited_flag(&self) -> bool {
        self.flags() & FLAG_SOLICITED != 0
    }

    /// The advertisement's Override flag.
    pub fn override_flag(&self) -> bool {
        self.flags() & FLAG_OVERRIDE != 0
    }

    /// The target: the address asked about (solicitation) or advertised (advertisement).
    pub fn target_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(read_array::<16>(&self.buffer.as_ref()[field::TARGET]))
    }

    /// The options, in order.
    pub fn options(&self) -> Options<'_> {
        Options {
            rest: &self.buffer.as_ref()[field::OPTIONS],
        }
    }

    /// The MAC of the first link-layer address option of type `kind` ([`SOURCE_LINK_LAYER`]
    /// or [`TARGET_LINK_LAYER`]), if any.
    pub fn link_layer_addr(&self, kind: u8) -> Option<MacAddr> {
        self.options()
            .find(|o| o.kind() == kind)
            .and_then(|o| o.link_layer_addr())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Message<T> {
    /// Sets the ICMPv6 type.
    pub fn set_msg_type(&mut self, msg_type: u8) {
        self.buffer.as_mut()[field::TYPE] = msg_type;
    }

    /// Sets the ICMPv6 code.
    pub fn set_code(&mut self, code: u8) {
        self.buffer.as_mut()[field::CODE] = code;
    }

    /// Sets the flags byte and clears the 29 reserved bits after the flags.
    pub fn set_flags(&mut self, flags: u8) {
        self.buffer.as_mut()[field::FLAGS_RESERVED].copy_from_slice(&[flags, 0, 0, 0]);
    }

    /// Sets the target address.
    pub fn set_target_addr(&mut self, addr: Ipv6Addr) {
        self.buffer.as_mut()[field::TARGET].copy_from_slice(&addr.octets());
    }

    /// The bytes after the target, where options go, writable.
    pub fn options_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::OPTIONS]
    }
}

/// The options of a [`Message`], each as an [`NdOption`] view.
#[derive(Debug, Clone)]
pub struct Options<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Options<'a> {
    type Item = NdOption<&'a [u8]>;

    fn next(&mut self) -> Option<Self::Item> {
        let option = NdOption::new_checked(self.rest).ok()?;
        let len = option.total_len();
        let (this, rest) = self.rest.split_at(len);
        self.rest = rest;
        Some(NdOption::new_unchecked(this))
    }
}

/// A view over one neighbour discovery option: type, length in units of 8 bytes, data.
#[derive(Debug, Clone)]
pub struct NdOption<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> NdOption<T> {
    /// Wraps a buffer without any check; accessors panic if it is shorter than the option.
    pub const fn new_unchecked(buffer: T) -> NdOption<T> {
        NdOption { buffer }
    }

    /// Wraps a buffer that starts with an option (and may go on past it).
    ///
    /// `Error::Truncated` if it cannot hold the type and length; `Error::Malformed` if the
    /// length is 0 or the option runs past the end of the buffer.
    pub fn new_checked(buffer: T) -> Result<NdOption<T>> {
        let bytes = buffer.as_ref();
        if bytes.len() < field::OPT_DATA {
            return Err(Error::Truncated);
        }
        let len = usize::from(bytes[field::OPT_LEN]) * 8;
        if len == 0 || len > bytes.len() {
            return Err(Error::Malformed);
        }
        Ok(NdOption { buffer })
    }

    /// Option type ([`SOURCE_LINK_LAYER`], [`TARGET_LINK_LAYER`], ...).
    pub fn kind(&self) -> u8 {
        self.buffer.as_ref()[field::OPT_TYPE]
    }

    /// The length field: the option's length in units of 8 bytes.
    pub fn len_units(&self) -> u8 {
        self.buffer.as_ref()[field::OPT_LEN]
    }

    /// The option's length in bytes, type and length included.
    pub fn total_len(&self) -> usize {
        usize::from(self.len_units()) * 8
    }

    /// The bytes after type and length, up to the option's end.
    pub fn data(&self) -> &[u8] {
        let end = self.total_len().min(self.buffer.as_ref().len());
        &self.buffer.as_ref()[field::OPT_DATA.min(end)..end]
    }

    /// The MAC a link-layer address option carries (its first 6 data bytes), if it has 6.
    pub fn link_layer_addr(&self) -> Option<MacAddr> {
        let data = self.data();
        (data.len() >= 6).then(|| MacAddr(read_array::<6>(data)))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> NdOption<T> {
    /// Writes a link-layer address option of type `kind` carrying `mac` (8 bytes: the
    /// buffer must hold [`LINK_LAYER_OPTION_LEN`]).
    pub fn set_link_layer_addr(&mut self, kind: u8, mac: MacAddr) {
        let b = &mut self.buffer.as_mut()[..LINK_LAYER_OPTION_LEN];
        b[field::OPT_TYPE] = kind;
        b[field::OPT_LEN] = 1;
        b[field::OPT_DATA..].copy_from_slice(&mac.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ethernet::{EtherType, Frame};
    use crate::wire::icmpv6;
    use crate::wire::ipv4::protocol;
    use crate::wire::ipv6;
    use crate::wire::vlan;
    use proptest::prelude::*;

    /// A captured neighbour solicitation on VLAN 2 (PcapPlusPlus's test resource
    /// `IcmpV6_NeighSoli.dat`, whose test asserts checksum 0xfe98, target
    /// fd53:7cb8:383:2::1:117 and a source link-layer option 00:54:af:e9:4d:80):
    /// 00:54:af:e9:4d:80 -> 00:54:af:e9:b7:00, fd53:7cb8:383:4::67 -> fd53:7cb8:383:2::1:117
    /// (a unicast solicitation: neighbour unreachability detection), hop limit 255. The
    /// capture ends with 4 more bytes (the Ethernet FCS), kept here.
    #[rustfmt::skip]
    static SOLICIT_FRAME: [u8; 94] = [
        // Ethernet II, 802.1Q VLAN 2
        0x00, 0x54, 0xaf, 0xe9, 0xb7, 0x00, 0x00, 0x54, 0xaf, 0xe9, 0x4d, 0x80, 0x81, 0x00,
        0x00, 0x02, 0x86, 0xdd,
        // IPv6: payload 32, next header 58, hop limit 255
        0x60, 0x00, 0x00, 0x00, 0x00, 0x20, 0x3a, 0xff,
        0xfd, 0x53, 0x7c, 0xb8, 0x03, 0x83, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x67,
        0xfd, 0x53, 0x7c, 0xb8, 0x03, 0x83, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x01, 0x17,
        // ICMPv6 neighbour solicitation: type, code, checksum, reserved, target
        0x87, 0x00, 0xfe, 0x98, 0x00, 0x00, 0x00, 0x00,
        0xfd, 0x53, 0x7c, 0xb8, 0x03, 0x83, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x01, 0x17,
        // source link-layer address option
        0x01, 0x01, 0x00, 0x54, 0xaf, 0xe9, 0x4d, 0x80,
        // FCS
        0x10, 0xf2, 0x52, 0xe1,
    ];

    /// A captured unsolicited neighbour advertisement to all nodes (PcapPlusPlus's test
    /// resource `IcmpV6_NeighAdv.dat`, whose test asserts checksum 0x9abb, Router and Override
    /// set, Solicited clear, target fe80::c000:54ff:fef5:0 and a target link-layer option
    /// c2:00:54:f5:00:00): c2:00:54:f5:00:00 -> 33:33:00:00:00:01, traffic class 0xe0.
    #[rustfmt::skip]
    static ADVERT_FRAME: [u8; 86] = [
        // Ethernet II
        0x33, 0x33, 0x00, 0x00, 0x00, 0x01, 0xc2, 0x00, 0x54, 0xf5, 0x00, 0x00, 0x86, 0xdd,
        // IPv6: traffic class 0xe0, payload 32, next header 58, hop limit 255
        0x6e, 0x00, 0x00, 0x00, 0x00, 0x20, 0x3a, 0xff,
        0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0x00, 0x54, 0xff, 0xfe, 0xf5, 0x00, 0x00,
        0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
        // ICMPv6 neighbour advertisement: type, code, checksum, flags R|O, target
        0x88, 0x00, 0x9a, 0xbb, 0xa0, 0x00, 0x00, 0x00,
        0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0x00, 0x54, 0xff, 0xfe, 0xf5, 0x00, 0x00,
        // target link-layer address option
        0x02, 0x01, 0xc2, 0x00, 0x54, 0xf5, 0x00, 0x00,
    ];

    fn addr(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn reads_captured_solicitation_layer_by_layer() {
        let eth = Frame::new_checked(&SOLICIT_FRAME[..]).unwrap();
        assert_eq!(eth.ethertype(), EtherType::Vlan);
        let tag = vlan::Tag::new_checked(eth.payload()).unwrap();
        assert_eq!(tag.vlan_id_raw(), 2);
        assert_eq!(tag.inner_ethertype(), EtherType::Ipv6);
        let ip = ipv6::Packet::new_checked(tag.payload()).unwrap();
        assert_eq!((ip.next_header(), ip.hop_limit()), (protocol::ICMPV6, 255));
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        assert_eq!(src, addr("fd53:7cb8:383:4::67"));
        assert_eq!(dst, addr("fd53:7cb8:383:2::1:117"));
        // The FCS after the packet is not part of it.
        assert_eq!(ip.payload().len(), 32);
        let icmp = icmpv6::Packet::new_checked(ip.payload()).unwrap();
        assert!(icmp.verify_checksum(&src, &dst));
        let ns = Message::new_checked(ip.payload()).unwrap();
        assert_eq!(ns.msg_type(), icmpv6::NEIGHBOR_SOLICIT);
        assert!(ns.is_solicit());
        assert_eq!((ns.code(), ns.checksum(), ns.flags()), (0, 0xfe98, 0));
        assert_eq!(ns.target_addr(), addr("fd53:7cb8:383:2::1:117"));
        let options: Vec<_> = ns.options().collect();
        assert_eq!(options.len(), 1);
        assert_eq!(
            (
                options[0].kind(),
                options[0].len_units(),
                options[0].total_len()
            ),
            (SOURCE_LINK_LAYER, 1, 8)
        );
        let mac = MacAddr([0x00, 0x54, 0xaf, 0xe9, 0x4d, 0x80]);
        assert_eq!(options[0].data(), &mac.0);
        assert_eq!(ns.link_layer_addr(SOURCE_LINK_LAYER), Some(mac));
        assert_eq!(ns.link_layer_addr(TARGET_LINK_LAYER), None);
    }

    #[test]
    fn builds_captured_solicitation() {
        let mut buf = [0xa5u8; 94];
        let (src, dst) = (addr("fd53:7cb8:383:4::67"), addr("fd53:7cb8:383:2::1:117"));
        {
            let mut eth = Frame::new_unchecked(&mut buf[..]);
            eth.set_dst_addr(MacAddr([0x00, 0x54, 0xaf, 0xe9, 0xb7, 0x00]));
            eth.set_src_addr(MacAddr([0x00, 0x54, 0xaf, 0xe9, 0x4d, 0x80]));
            eth.set_ethertype(EtherType::Vlan);
        }
        {
            let mut tag = vlan::Tag::new_unchecked(&mut buf[14..18]);
            tag.set_tci(2);
            tag.set_inner_ethertype(EtherType::Ipv6);
        }
        {
            let mut ip = ipv6::Packet::new_unchecked(&mut buf[18..90]);
            ip.set_version(6);
            ip.set_traffic_class(0);
            ip.set_flow_label(0);
            ip.set_payload_len(32);
            ip.set_next_header(protocol::ICMPV6);
            ip.set_hop_limit(255);
            ip.set_src_addr(src);
            ip.set_dst_addr(dst);
        }
        {
            let mut ns = Message::new_unchecked(&mut buf[58..90]);
            ns.set_msg_type(icmpv6::NEIGHBOR_SOLICIT);
            ns.set_code(0);
            ns.set_flags(0);
            ns.set_target_addr(dst);
            NdOption::new_unchecked(ns.options_mut()).set_link_layer_addr(
                SOURCE_LINK_LAYER,
                MacAddr([0x00, 0x54, 0xaf, 0xe9, 0x4d, 0x80]),
            );
        }
        icmpv6::Packet::new_unchecked(&mut buf[58..90]).fill_checksum(&src, &dst);
        assert_eq!(buf[..90], SOLICIT_FRAME[..90]);
        assert_eq!(buf[90..], [0xa5; 4], "nothing written past the packet");
    }

    #[test]
    fn reads_captured_advertisement() {
        let eth = Frame::new_checked(&ADVERT_FRAME[..]).unwrap();
        let ip = ipv6::Packet::new_checked(eth.payload()).unwrap();
        assert_eq!(ip.traffic_class(), 0xe0);
        assert_eq!(ip.dst_addr(), ipv6::ALL_NODES);
        assert_eq!(eth.dst_addr(), ipv6::multicast_mac(ipv6::ALL_NODES));
        let icmp = icmpv6::Packet::new_checked(ip.payload()).unwrap();
        assert!(icmp.verify_checksum(&ip.src_addr(), &ip.dst_addr()));
        let na = Message::new_checked(ip.payload()).unwrap();
        assert!(!na.is_solicit());
        assert_eq!((na.code(), na.checksum()), (0, 0x9abb));
        assert!(na.router_flag() && !na.solicited_flag() && na.override_flag());
        assert_eq!(na.target_addr(), addr("fe80::c000:54ff:fef5:0"));
        // The target's link-local address is its MAC's EUI-64 (RFC 4291 App. A).
        let mac = MacAddr([0xc2, 0x00, 0x54, 0xf5, 0x00, 0x00]);
        assert_eq!(ipv6::link_local(mac), na.target_addr());
        assert_eq!(na.link_layer_addr(TARGET_LINK_LAYER), Some(mac));
        assert_eq!(na.link_layer_addr(SOURCE_LINK_LAYER), None);
    }

    #[test]
    fn builds_captured_advertisement() {
        let mut buf = [0xa5u8; 86 + 2];
        let mac = MacAddr([0xc2, 0x00, 0x54, 0xf5, 0x00, 0x00]);
        let (src, dst) = (addr("fe80::c000:54ff:fef5:0"), ipv6::ALL_NODES);
        {
            let mut eth = Frame::new_unchecked(&mut buf[..]);
            eth.set_dst_addr(ipv6::multicast_mac(dst));
            eth.set_src_addr(mac);
            eth.set_ethertype(EtherType::Ipv6);
        }
        {
            let mut ip = ipv6::Packet::new_unchecked(&mut buf[14..86]);
            ip.set_version(6);
            ip.set_traffic_class(0xe0);
            ip.set_flow_label(0);
            ip.set_payload_len(32);
            ip.set_next_header(protocol::ICMPV6);
            ip.set_hop_limit(255);
            ip.set_src_addr(src);
            ip.set_dst_addr(dst);
        }
        {
            let mut na = Message::new_unchecked(&mut buf[54..86]);
            na.set_msg_type(icmpv6::NEIGHBOR_ADVERT);
            na.set_code(0);
            na.set_flags(FLAG_ROUTER | FLAG_OVERRIDE);
            na.set_target_addr(src);
            NdOption::new_unchecked(na.options_mut()).set_link_layer_addr(TARGET_LINK_LAYER, mac);
        }
        icmpv6::Packet::new_unchecked(&mut buf[54..86]).fill_checksum(&src, &dst);
        assert_eq!(buf[..86], ADVERT_FRAME[..]);
        assert_eq!(buf[86..], [0xa5; 2]);
    }

    /// The advertisement's ICMPv6 message with its option area replaced by `options`.
    fn advert_with(options: &[u8]) -> Vec<u8> {
        let mut m = ADVERT_FRAME[54..78].to_vec();
        m.extend_from_slice(options);
        m
    }

    #[test]
    fn rejects_malformed_messages_and_options() {
        for len in 0..HEADER_LEN {
            assert_eq!(
                Message::new_checked(&ADVERT_FRAME[54..54 + len]).unwrap_err(),
                Error::Truncated
            );
        }
        // No options at all is fine.
        assert_eq!(
            Message::new_checked(&advert_with(&[])[..])
                .unwrap()
                .options()
                .count(),
            0
        );
        for bad in [
            &[0x02, 0x00, 0xc2, 0, 0x54, 0xf5, 0, 0][..], // length 0 (§4.6)
            &[0x02, 0x02, 0xc2, 0, 0x54, 0xf5, 0, 0],     // 16 bytes claimed, 8 there
            &[0x02],                                      // half an option header
            &[0x02, 0x01, 0xc2, 0, 0x54],                 // cut short
            // A target link-layer option of 16 bytes: not an Ethernet address.
            &[
                0x02, 0x02, 0xc2, 0, 0x54, 0xf5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ],
            // A good option, then one of length 0.
            &[0x02, 0x01, 0xc2, 0, 0x54, 0xf5, 0, 0, 0x05, 0x00],
        ] {
            assert_eq!(
                Message::new_checked(&advert_with(bad)[..]).unwrap_err(),
                Error::Malformed,
                "{bad:02x?}"
            );
        }
        // Unknown options of any size are skipped (§4.6: ignored), and the link-layer
        // address found after them.
        let m = advert_with(&[
            0x0e, 0x02, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, // type 14, 16 bytes
            0x02, 0x01, 0xc2, 0, 0x54, 0xf5, 0, 1,
        ]);
        let na = Message::new_checked(&m[..]).unwrap();
        assert_eq!(na.options().map(|o| o.kind()).collect::<Vec<_>>(), [14, 2]);
        assert_eq!(
            na.link_layer_addr(TARGET_LINK_LAYER),
            Some(MacAddr([0xc2, 0, 0x54, 0xf5, 0, 1]))
        );
        // Not a solicitation or an advertisement.
        let mut echo = advert_with(&[]);
        echo[0] = icmpv6::ECHO_REQUEST;
        assert_eq!(
            Message::new_checked(&echo[..]).unwrap_err(),
            Error::Malformed
        );
    }

    #[test]
    fn etherparse_agrees() {
        for frame in [&SOLICIT_FRAME[..90], &ADVERT_FRAME[..]] {
            let theirs = etherparse::SlicedPacket::from_ethernet(frame).unwrap();
            let Some(etherparse::NetSlice::Ipv6(ip)) = theirs.net else {
                panic!("etherparse did not see IPv6");
            };
            let (src, dst) = (ip.header().source(), ip.header().destination());
            let Some(etherparse::TransportSlice::Icmpv6(icmp)) = theirs.transport else {
                panic!("etherparse did not see ICMPv6");
            };
            let ours = Message::new_checked(icmp.slice()).unwrap();
            assert_eq!(ours.msg_type(), icmp.type_u8());
            assert_eq!(ours.code(), icmp.code_u8());
            assert_eq!(ours.checksum(), icmp.checksum());
            assert!(icmp.is_checksum_valid(src, dst));
            assert_eq!(ours.flags(), icmp.bytes5to8()[0]);
            assert_eq!(ours.target_addr().octets()[..], icmp.payload()[..16]);
        }
    }

    proptest! {
        #[test]
        fn accessors_and_options_never_panic(
            mut data in prop::collection::vec(any::<u8>(), 0..64),
            solicit in any::<bool>(),
        ) {
            if let Some(t) = data.first_mut() {
                *t = if solicit { icmpv6::NEIGHBOR_SOLICIT } else { icmpv6::NEIGHBOR_ADVERT };
            }
            if let Ok(m) = Message::new_checked(&data[..]) {
                let _ = (m.msg_type(), m.code(), m.checksum(), m.flags(), m.target_addr());
                let mut covered = HEADER_LEN;
                for o in m.options() {
                    prop_assert!(o.len_units() > 0);
                    covered += o.total_len();
                    let _ = (o.kind(), o.data(), o.link_layer_addr());
                }
                // The iterator reaches the end: every byte belongs to an option.
                prop_assert_eq!(covered, data.len());
                let _ = m.link_layer_addr(SOURCE_LINK_LAYER);
            }
        }
    }
}

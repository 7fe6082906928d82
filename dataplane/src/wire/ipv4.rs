//! IPv4 packets (RFC 791): a view over the header, options included, and the payload
//! it bounds, with the header checksum and its incremental update for TTL rewrites.
//!
//! The buffer may run past the packet (Ethernet pads short frames to 60 bytes), so the
//! payload is bounded by the Total Length field, never by the buffer.

use core::net::Ipv4Addr;

use super::checksum;
use super::{read_array, read_u16, write_u16, Error, Result};

/// IP protocol numbers (IANA "Assigned Internet Protocol Numbers") that the data plane looks at.
pub mod protocol {
    /// ICMP for IPv4 (RFC 792).
    pub const ICMP: u8 = 1;
    /// TCP (RFC 9293).
    pub const TCP: u8 = 6;
    /// UDP (RFC 768).
    pub const UDP: u8 = 17;
    /// ICMP for IPv6 (RFC 4443).
    pub const ICMPV6: u8 = 58;
}

mod field {
    use core::ops::Range;

    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const FLG_OFF: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC_ADDR: Range<usize> = 12..16;
    pub const DST_ADDR: Range<usize> = 16..20;
}

/// Length of an IPv4 header without options (also `Packet::HEADER_LEN`).
pub const HEADER_LEN: usize = field::DST_ADDR.end;

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const FRAG_OFFSET_MASK: u16 = 0x1fff;

/// A view over an IPv4 packet: header (with options) and payload, in a buffer that may be longer.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Length of a header without options; `header_len()` can be up to 60.
    pub const HEADER_LEN: usize = HEADER_LEN;

    /// Wraps a buffer without any check; fixed-field accessors panic if it is shorter than `HEADER_LEN`.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer after checking that it holds the packet its header describes.
    ///
    /// `Error::Truncated` if the buffer is shorter than 20 bytes, than the header length
    /// (IHL) or than the Total Length; `Error::Malformed` if the version is not 4, IHL is
    /// below 5, or Total Length is smaller than the header. Longer buffers are fine.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let len = buffer.as_ref().len();
        if len < Self::HEADER_LEN {
            return Err(Error::Truncated);
        }
        let packet = Packet { buffer };
        if packet.version() != 4 {
            return Err(Error::Malformed);
        }
        let header_len = packet.header_len();
        if header_len < Self::HEADER_LEN {
            return Err(Error::Malformed);
        }
        if header_len > len {
            return Err(Error::Truncated);
        }
        let total_len = usize::from(packet.total_len());
        if total_len < header_len {
            return Err(Error::Malformed);
        }
        if total_len > len {
            return Err(Error::Truncated);
        }
        Ok(packet)
    }

    /// Returns the wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// IP version (4 once `new_checked` succeeded).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL x 4), options included: 20..=60.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// Differentiated Services Code Point (RFC 2474): the upper 6 bits of the TOS byte.
    pub fn dscp(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] >> 2
    }

    /// Explicit Congestion Notification (RFC 3168): the lower 2 bits of the TOS byte.
    pub fn ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] & 0x03
    }

    /// The whole second byte (former Type of Service): DSCP and ECN together.
    pub fn tos(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN]
    }

    /// Total Length: header plus payload, in bytes.
    #[inline]
    pub fn total_len(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::LENGTH])
    }

    /// Identification, for reassembly.
    pub fn ident(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::IDENT])
    }

    /// Don't Fragment flag.
    pub fn dont_frag(&self) -> bool {
        read_u16(&self.buffer.as_ref()[field::FLG_OFF]) & FLAG_DF != 0
    }

    /// More Fragments flag.
    pub fn more_frags(&self) -> bool {
        read_u16(&self.buffer.as_ref()[field::FLG_OFF]) & FLAG_MF != 0
    }

    /// Fragment Offset as on the wire, in units of 8 bytes (RFC 791 §3.1).
    pub fn frag_offset(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::FLG_OFF]) & FRAG_OFFSET_MASK
    }

    /// Whether this is a fragment (MF set or a non-zero offset), not a whole datagram.
    pub fn is_fragment(&self) -> bool {
        read_u16(&self.buffer.as_ref()[field::FLG_OFF]) & (FLAG_MF | FRAG_OFFSET_MASK) != 0
    }

    /// Time to Live.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// Protocol number of the payload (see [`protocol`]).
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    /// Header Checksum as stored.
    pub fn checksum(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(read_array::<4>(&self.buffer.as_ref()[field::SRC_ADDR]))
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(read_array::<4>(&self.buffer.as_ref()[field::DST_ADDR]))
    }

    // Where the header ends and the payload starts and ends, clamped to the buffer so
    // that the slice accessors stay in bounds even after a setter changed IHL or Total
    // Length to something the buffer cannot hold.
    #[inline]
    fn bounds(&self) -> (usize, usize) {
        let len = self.buffer.as_ref().len();
        let header_end = self.header_len().min(len);
        let total_end = usize::from(self.total_len()).clamp(header_end, len);
        (header_end, total_end)
    }

    /// Whether the header checksum is correct (the header, options included, sums to ones'-complement zero).
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::compute(self.header()) == 0
    }

    /// The header bytes, options included.
    #[inline]
    pub fn header(&self) -> &[u8] {
        let (header_end, _) = self.bounds();
        &self.buffer.as_ref()[..header_end]
    }

    /// The options (the header bytes past the first 20); empty for IHL 5.
    pub fn options(&self) -> &[u8] {
        let header = self.header();
        &header[Self::HEADER_LEN.min(header.len())..]
    }

    /// The payload: from the end of the header to Total Length, excluding any link-layer padding.
    pub fn payload(&self) -> &[u8] {
        let (start, end) = self.bounds();
        &self.buffer.as_ref()[start..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the version nibble (use 4).
    pub fn set_version(&mut self, version: u8) {
        let byte = &mut self.buffer.as_mut()[field::VER_IHL];
        *byte = (*byte & 0x0f) | (version << 4);
    }

    /// Sets IHL from a header length in bytes (a multiple of 4 in 20..=60; `len / 4` is stored, masked to 4 bits).
    pub fn set_header_len(&mut self, len: usize) {
        let byte = &mut self.buffer.as_mut()[field::VER_IHL];
        *byte = (*byte & 0xf0) | ((len / 4) as u8 & 0x0f);
    }

    /// Sets the DSCP (masked to 6 bits), keeping ECN.
    pub fn set_dscp(&mut self, dscp: u8) {
        let byte = &mut self.buffer.as_mut()[field::DSCP_ECN];
        *byte = (*byte & 0x03) | (dscp << 2);
    }

    /// Sets the ECN bits (masked to 2 bits), keeping DSCP.
    pub fn set_ecn(&mut self, ecn: u8) {
        let byte = &mut self.buffer.as_mut()[field::DSCP_ECN];
        *byte = (*byte & 0xfc) | (ecn & 0x03);
    }

    /// Sets the whole TOS byte.
    pub fn set_tos(&mut self, tos: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = tos;
    }

    /// Sets Total Length (the caller keeps it within the buffer; slice accessors clamp if not).
    pub fn set_total_len(&mut self, len: u16) {
        write_u16(&mut self.buffer.as_mut()[field::LENGTH], len);
    }

    /// Sets Identification.
    pub fn set_ident(&mut self, ident: u16) {
        write_u16(&mut self.buffer.as_mut()[field::IDENT], ident);
    }

    fn set_flg_off(&mut self, mask: u16, value: u16) {
        let word = read_u16(&self.buffer.as_ref()[field::FLG_OFF]);
        write_u16(
            &mut self.buffer.as_mut()[field::FLG_OFF],
            (word & !mask) | (value & mask),
        );
    }

    /// Sets or clears Don't Fragment.
    pub fn set_dont_frag(&mut self, df: bool) {
        self.set_flg_off(FLAG_DF, if df { FLAG_DF } else { 0 });
    }

    /// Sets or clears More Fragments.
    pub fn set_more_frags(&mut self, mf: bool) {
        self.set_flg_off(FLAG_MF, if mf { FLAG_MF } else { 0 });
    }

    /// Sets Fragment Offset in units of 8 bytes (masked to 13 bits); clears the reserved flag bit.
    pub fn set_frag_offset(&mut self, offset: u16) {
        self.set_flg_off(0x8000 | FRAG_OFFSET_MASK, offset);
    }

    /// Sets Time to Live without touching the checksum.
    pub fn set_ttl(&mut self, ttl: u8) {
        self.buffer.as_mut()[field::TTL] = ttl;
    }

    /// Sets the protocol number of the payload.
    pub fn set_next_header(&mut self, protocol: u8) {
        self.buffer.as_mut()[field::PROTOCOL] = protocol;
    }

    /// Sets the Header Checksum as stored.
    pub fn set_checksum(&mut self, checksum: u16) {
        write_u16(&mut self.buffer.as_mut()[field::CHECKSUM], checksum);
    }

    /// Recomputes the Header Checksum over the header, options included.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let checksum = checksum::compute(self.header());
        self.set_checksum(checksum);
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&addr.octets());
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&addr.octets());
    }

    /// Sets TTL and patches the checksum for that one change (RFC 1624 eqn. 3), as a forwarder does.
    ///
    /// TTL shares a 16-bit word with Protocol, so that word is the `m`/`m'` of the RFC.
    /// The result equals a full recomputation whenever the old checksum was correct.
    // Forced inline: it is a per-packet step of forwarding, and as a call it costs more than its body.
    #[inline(always)]
    pub fn set_ttl_and_update_checksum(&mut self, new_ttl: u8) {
        let data = self.buffer.as_mut();
        let protocol = data[field::PROTOCOL];
        let old_word = u16::from_be_bytes([data[field::TTL], protocol]);
        let new_word = u16::from_be_bytes([new_ttl, protocol]);
        let checksum = checksum::update(read_u16(&data[field::CHECKSUM]), old_word, new_word);
        data[field::TTL] = new_ttl;
        write_u16(&mut data[field::CHECKSUM], checksum);
    }

    /// The header bytes, options included, writable.
    pub fn header_mut(&mut self) -> &mut [u8] {
        let (header_end, _) = self.bounds();
        &mut self.buffer.as_mut()[..header_end]
    }

    /// The payload up to Total Length, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (start, end) = self.bounds();
        &mut self.buffer.as_mut()[start..end]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The IPv4 packet of the first frame of Wireshark's sample capture `mpls-basic.cap`
    /// (after its MPLS entry): DSCP CS6, TTL 255, TCP 10.1.2.1:10999 -> 10.34.0.1:23 ACK,
    /// Total Length 40, then the frame's 4 bytes of Ethernet padding.
    static MPLS_BASIC_IPV4: [u8; 44] = [
        0x45, 0xc0, 0x00, 0x28, 0x00, 0x03, 0x00, 0x00, 0xff, 0x06, 0xa4, 0xe8, 0x0a, 0x01, 0x02,
        0x01, 0x0a, 0x22, 0x00, 0x01, 0x2a, 0xf9, 0x00, 0x17, 0x98, 0x32, 0x10, 0x05, 0x8d, 0xd5,
        0x8e, 0xa5, 0x50, 0x10, 0x10, 0x20, 0x99, 0xcd, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    ];

    /// The IPv4 header of a captured ping (Wireshark dissection in juraj-juraj/IPK_projekt_2,
    /// `testovanie/ipv4/icmp/icmp1.res`): 100.64.199.51 -> 104.22.12.230, DF, TTL 64, ICMP,
    /// Total Length 84, checksum 0xfdde.
    static PING_IPV4_HEADER: [u8; 20] = [
        0x45, 0x00, 0x00, 0x54, 0x9c, 0x5a, 0x40, 0x00, 0x40, 0x01, 0xfd, 0xde, 0x64, 0x40, 0xc7,
        0x33, 0x68, 0x16, 0x0c, 0xe6,
    ];

    #[test]
    fn reads_captured_packet() {
        let packet = Packet::new_checked(&MPLS_BASIC_IPV4[..]).unwrap();
        assert_eq!(packet.version(), 4);
        assert_eq!(packet.header_len(), 20);
        assert_eq!(packet.tos(), 0xc0);
        assert_eq!(packet.dscp(), 48);
        assert_eq!(packet.ecn(), 0);
        assert_eq!(packet.total_len(), 40);
        assert_eq!(packet.ident(), 3);
        assert!(!packet.dont_frag());
        assert!(!packet.more_frags());
        assert_eq!(packet.frag_offset(), 0);
        assert!(!packet.is_fragment());
        assert_eq!(packet.ttl(), 255);
        assert_eq!(packet.next_header(), protocol::TCP);
        assert_eq!(packet.checksum(), 0xa4e8);
        assert!(packet.verify_checksum());
        assert_eq!(packet.src_addr(), Ipv4Addr::new(10, 1, 2, 1));
        assert_eq!(packet.dst_addr(), Ipv4Addr::new(10, 34, 0, 1));
        assert_eq!(packet.header(), &MPLS_BASIC_IPV4[..20]);
        assert!(packet.options().is_empty());
        // The payload stops at Total Length: the TCP header, not the Ethernet padding.
        assert_eq!(packet.payload(), &MPLS_BASIC_IPV4[20..40]);
    }

    #[test]
    fn reads_captured_ping_header() {
        // Only the header was captured here, so read it unchecked (Total Length is 84).
        let packet = Packet::new_unchecked(&PING_IPV4_HEADER[..]);
        assert_eq!(packet.header_len(), 20);
        assert_eq!(packet.tos(), 0);
        assert_eq!(packet.total_len(), 84);
        assert_eq!(packet.ident(), 0x9c5a);
        assert!(packet.dont_frag());
        assert!(!packet.more_frags());
        assert!(!packet.is_fragment());
        assert_eq!(packet.ttl(), 64);
        assert_eq!(packet.next_header(), protocol::ICMP);
        assert_eq!(packet.checksum(), 0xfdde);
        assert!(packet.verify_checksum());
        assert_eq!(packet.src_addr(), Ipv4Addr::new(100, 64, 199, 51));
        assert_eq!(packet.dst_addr(), Ipv4Addr::new(104, 22, 12, 230));
        assert!(packet.payload().is_empty());
        assert_eq!(
            Packet::new_checked(&PING_IPV4_HEADER[..]).unwrap_err(),
            Error::Truncated
        );
    }

    #[test]
    fn builds_captured_packet() {
        let mut buf = [0xa5u8; 44];
        let mut packet = Packet::new_unchecked(&mut buf[..]);
        packet.set_version(4);
        packet.set_header_len(20);
        packet.set_dscp(48);
        packet.set_ecn(0);
        packet.set_total_len(40);
        packet.set_ident(3);
        packet.set_dont_frag(false);
        packet.set_more_frags(false);
        packet.set_frag_offset(0);
        packet.set_ttl(255);
        packet.set_next_header(protocol::TCP);
        packet.set_src_addr(Ipv4Addr::new(10, 1, 2, 1));
        packet.set_dst_addr(Ipv4Addr::new(10, 34, 0, 1));
        packet.fill_checksum();
        packet
            .payload_mut()
            .copy_from_slice(&MPLS_BASIC_IPV4[20..40]);
        assert_eq!(buf[..40], MPLS_BASIC_IPV4[..40]);
        // Bytes past Total Length were not touched.
        assert_eq!(buf[40..], [0xa5; 4]);

        let mut buf = [0xa5u8; 20];
        let mut packet = Packet::new_unchecked(&mut buf[..]);
        packet.set_version(4);
        packet.set_header_len(20);
        packet.set_tos(0);
        packet.set_total_len(84);
        packet.set_ident(0x9c5a);
        packet.set_frag_offset(0);
        packet.set_more_frags(false);
        packet.set_dont_frag(true);
        packet.set_ttl(64);
        packet.set_next_header(protocol::ICMP);
        packet.set_src_addr(Ipv4Addr::new(100, 64, 199, 51));
        packet.set_dst_addr(Ipv4Addr::new(104, 22, 12, 230));
        packet.fill_checksum();
        assert_eq!(buf, PING_IPV4_HEADER);
    }

    #[test]
    fn rejects_short_buffers() {
        for len in 0..Packet::<&[u8]>::HEADER_LEN {
            assert_eq!(
                Packet::new_checked(&MPLS_BASIC_IPV4[..len]).unwrap_err(),
                Error::Truncated
            );
        }
        // Header present, but the buffer ends before Total Length.
        for len in 20..40 {
            assert_eq!(
                Packet::new_checked(&MPLS_BASIC_IPV4[..len]).unwrap_err(),
                Error::Truncated
            );
        }
        assert!(Packet::new_checked(&MPLS_BASIC_IPV4[..40]).is_ok());
    }

    #[test]
    fn rejects_malformed_headers() {
        let with = |f: fn(&mut [u8])| {
            let mut bytes = MPLS_BASIC_IPV4;
            f(&mut bytes);
            Packet::new_checked(bytes).map(|_| ())
        };
        assert_eq!(with(|b| b[0] = 0x65), Err(Error::Malformed)); // version 6
        assert_eq!(with(|b| b[0] = 0x05), Err(Error::Malformed)); // version 0
        assert_eq!(with(|b| b[0] = 0x44), Err(Error::Malformed)); // IHL 4
        assert_eq!(with(|b| b[0] = 0x40), Err(Error::Malformed)); // IHL 0
        assert_eq!(with(|b| b[0] = 0x4f), Err(Error::Truncated)); // IHL 15: 60 > 44 bytes
        assert_eq!(with(|b| b[3] = 19), Err(Error::Malformed)); // Total Length < header
        assert_eq!(with(|b| b[3] = 0), Err(Error::Malformed));
        assert_eq!(with(|b| b[3] = 45), Err(Error::Truncated)); // Total Length > buffer
        assert_eq!(with(|b| b[3] = 44), Ok(()));
        assert_eq!(with(|b| b[3] = 20), Ok(()));
        // IHL 6 with a 4-byte option (NOP x3, EOL) inside Total Length 40.
        let mut bytes = MPLS_BASIC_IPV4;
        bytes[0] = 0x46;
        bytes[20..24].copy_from_slice(&[1, 1, 1, 0]);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.header_len(), 24);
        assert_eq!(packet.options(), &[1, 1, 1, 0]);
        assert_eq!(packet.payload(), &bytes[24..40]);
    }

    #[test]
    fn fragment_fields() {
        let mut bytes = MPLS_BASIC_IPV4;
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.set_more_frags(true);
        packet.set_frag_offset(185); // 1480 bytes in
        assert!(packet.more_frags() && !packet.dont_frag() && packet.is_fragment());
        assert_eq!(packet.frag_offset(), 185);
        assert_eq!(bytes[6..8], [0x20, 0xb9]);
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.set_more_frags(false);
        assert!(packet.is_fragment()); // last fragment: offset only
        packet.set_frag_offset(0);
        packet.set_dont_frag(true);
        assert!(!packet.is_fragment());
        assert_eq!(bytes[6..8], [0x40, 0x00]);
    }

    #[test]
    fn etherparse_agrees() {
        for bytes in [&MPLS_BASIC_IPV4[..40], &PING_IPV4_HEADER[..]] {
            let theirs = etherparse::Ipv4HeaderSlice::from_slice(bytes).unwrap();
            let ours = Packet::new_unchecked(bytes);
            assert_eq!(ours.version(), theirs.version());
            assert_eq!(ours.header_len(), usize::from(theirs.ihl()) * 4);
            assert_eq!(ours.dscp(), theirs.dcp().value());
            assert_eq!(ours.ecn(), theirs.ecn().value());
            assert_eq!(ours.total_len(), theirs.total_len());
            assert_eq!(ours.ident(), theirs.identification());
            assert_eq!(ours.dont_frag(), theirs.dont_fragment());
            assert_eq!(ours.more_frags(), theirs.more_fragments());
            assert_eq!(ours.frag_offset(), theirs.fragments_offset().value());
            assert_eq!(ours.ttl(), theirs.ttl());
            assert_eq!(ours.next_header(), theirs.protocol().0);
            assert_eq!(ours.checksum(), theirs.header_checksum());
            assert_eq!(ours.src_addr(), theirs.source_addr());
            assert_eq!(ours.dst_addr(), theirs.destination_addr());
            assert_eq!(ours.checksum(), theirs.to_header().calc_header_checksum());
        }
    }

    /// Checks the incremental TTL update against a full recomputation for every (old, new) pair.
    fn check_all_ttl_rewrites(header: [u8; 20]) {
        for old_ttl in 0..=u8::MAX {
            let mut start = header;
            let mut packet = Packet::new_unchecked(&mut start[..]);
            packet.set_ttl(old_ttl);
            packet.fill_checksum();
            let stored = header[10..12] == [0xff, 0xff];
            if stored && old_ttl == header[8] {
                // Keep the 0xffff ("negative zero") spelling the header arrived with.
                packet.set_checksum(0xffff);
            }
            assert!(packet.verify_checksum());
            for new_ttl in 0..=u8::MAX {
                let mut incremental = start;
                Packet::new_unchecked(&mut incremental[..]).set_ttl_and_update_checksum(new_ttl);
                let mut full = start;
                let mut packet = Packet::new_unchecked(&mut full[..]);
                packet.set_ttl(new_ttl);
                packet.fill_checksum();
                assert_eq!(incremental, full, "ttl {old_ttl} -> {new_ttl}");
                assert!(Packet::new_unchecked(&incremental[..]).verify_checksum());
            }
        }
    }

    #[test]
    fn ttl_rewrite_matches_full_recomputation() {
        let mut header = [0u8; 20];
        header.copy_from_slice(&MPLS_BASIC_IPV4[..20]);
        check_all_ttl_rewrites(header);
        check_all_ttl_rewrites(PING_IPV4_HEADER);
    }

    /// The ping header with Identification chosen so that the correct checksum is 0x0000.
    fn header_with_zero_checksum() -> [u8; 20] {
        (0..=u16::MAX)
            .find_map(|ident| {
                let mut header = PING_IPV4_HEADER;
                let mut packet = Packet::new_unchecked(&mut header[..]);
                packet.set_ident(ident);
                packet.fill_checksum();
                (packet.checksum() == 0).then_some(header)
            })
            .unwrap()
    }

    #[test]
    fn ttl_rewrite_at_checksum_edges() {
        let zero = header_with_zero_checksum();
        assert_eq!(zero[10..12], [0, 0]);
        check_all_ttl_rewrites(zero);

        // 0xffff is the other spelling of zero: a sender may emit it, it verifies, and
        // the incremental update must still land on what a full recomputation gives.
        let mut minus_zero = zero;
        minus_zero[10..12].copy_from_slice(&[0xff, 0xff]);
        assert!(Packet::new_unchecked(&minus_zero[..]).verify_checksum());
        check_all_ttl_rewrites(minus_zero);

        // A rewrite whose correct result is 0x0000: from TTL+1 down to the zero header's TTL.
        let mut before = zero;
        let mut packet = Packet::new_unchecked(&mut before[..]);
        packet.set_ttl(zero[8] + 1);
        packet.fill_checksum();
        packet.set_ttl_and_update_checksum(zero[8]);
        assert_eq!(before, zero);
    }

    proptest! {
        #[test]
        fn getters_never_panic(
            mut data in prop::collection::vec(any::<u8>(), 0..96),
            force_version in any::<bool>(),
            total_len in any::<u8>(),
        ) {
            // Half the cases get a plausible first word so that they reach the length checks.
            if force_version && data.len() >= 4 {
                data[0] = 0x40 | (data[0] & 0x0f);
                data[2] = 0;
                data[3] = total_len;
            }
            if let Ok(packet) = Packet::new_checked(&data[..]) {
                let _ = (packet.version(), packet.header_len(), packet.dscp(), packet.ecn(), packet.tos());
                let _ = (packet.total_len(), packet.ident(), packet.dont_frag(), packet.more_frags());
                let _ = (packet.frag_offset(), packet.is_fragment(), packet.ttl(), packet.next_header());
                let _ = (packet.checksum(), packet.src_addr(), packet.dst_addr(), packet.verify_checksum());
                let _ = (packet.header(), packet.options());
                prop_assert_eq!(packet.header().len(), packet.header_len());
                prop_assert_eq!(
                    packet.payload().len(),
                    usize::from(packet.total_len()) - packet.header_len()
                );
                let theirs = etherparse::Ipv4HeaderSlice::from_slice(&data).unwrap();
                prop_assert_eq!(packet.src_addr(), theirs.source_addr());
                prop_assert_eq!(packet.options(), theirs.options());
            }
        }

        #[test]
        fn slices_stay_in_bounds_after_bad_setters(ihl in 0usize..64, total in any::<u16>()) {
            let mut bytes = MPLS_BASIC_IPV4;
            let mut packet = Packet::new_unchecked(&mut bytes[..]);
            packet.set_header_len(ihl);
            packet.set_total_len(total);
            let _ = (packet.header(), packet.options(), packet.payload(), packet.verify_checksum());
            let _ = (packet.header_mut().len(), packet.payload_mut().len());
            packet.fill_checksum();
        }
    }
}

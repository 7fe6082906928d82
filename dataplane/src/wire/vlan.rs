//! IEEE 802.1Q VLAN tags: the VLAN ID and priority newtypes and a view over the 4 bytes
//! (TCI, then the inner EtherType) that follow an 0x8100 or 0x88a8 TPID.
//!
//! The TPID itself is the `EtherType` of the enclosing [`Frame`](super::ethernet::Frame)
//! (or of the previous tag, for 802.1ad stacking), so a tag view starts at the TCI.

use core::fmt;

use super::ethernet::EtherType;
use super::{read_u16, write_u16, Error, Result};

/// A VLAN identifier that names a VLAN: 1..=4094.
///
/// IEEE 802.1Q Table 9-2 reserves 0 (priority-tagged frame, no VLAN) and 4095 (0xfff,
/// reserved); neither can be held here. [`Tag::vlan_id_raw`] still reads them off the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VlanId(u16);

impl VlanId {
    /// The lowest usable VLAN ID, 1.
    pub const MIN: VlanId = VlanId(1);
    /// The highest usable VLAN ID, 4094.
    pub const MAX: VlanId = VlanId(4094);

    /// Returns `Some` for 1..=4094, `None` for 0, 4095 and anything wider than 12 bits.
    pub const fn new(id: u16) -> Option<VlanId> {
        if id >= Self::MIN.0 && id <= Self::MAX.0 {
            Some(VlanId(id))
        } else {
            None
        }
    }

    /// Returns the ID as a number.
    pub const fn get(self) -> u16 {
        self.0
    }
}

impl fmt::Display for VlanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Priority Code Point: the 3-bit 802.1p priority of a tagged frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pcp(u8);

impl Pcp {
    /// Returns `Some` for 0..=7.
    pub const fn new(pcp: u8) -> Option<Pcp> {
        if pcp <= 7 {
            Some(Pcp(pcp))
        } else {
            None
        }
    }

    /// Returns the priority as a number.
    pub const fn get(self) -> u8 {
        self.0
    }
}

impl fmt::Display for Pcp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Packs a Tag Control Information word: PCP in bits 15-13, DEI in bit 12, VID in bits 11-0.
pub const fn tci(pcp: Pcp, dei: bool, id: VlanId) -> u16 {
    ((pcp.0 as u16) << 13) | ((dei as u16) << 12) | id.0
}

mod field {
    use core::ops::{Range, RangeFrom};

    pub const TCI: Range<usize> = 0..2;
    pub const ETHERTYPE: Range<usize> = 2..4;
    pub const PAYLOAD: RangeFrom<usize> = 4..;
}

/// Length of a VLAN tag after its TPID (also `Tag::HEADER_LEN`).
pub const HEADER_LEN: usize = field::PAYLOAD.start;

const VID_MASK: u16 = 0x0fff;
const DEI_BIT: u16 = 0x1000;
const PCP_SHIFT: u16 = 13;

/// A view over one VLAN tag (TCI and inner EtherType) and whatever follows it.
#[derive(Debug, Clone)]
pub struct Tag<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Tag<T> {
    /// Length of a tag after its TPID: TCI (2) and inner EtherType (2).
    pub const HEADER_LEN: usize = HEADER_LEN;

    /// Wraps a buffer without checking its length; accessors panic if it is shorter than `HEADER_LEN`.
    pub const fn new_unchecked(buffer: T) -> Tag<T> {
        Tag { buffer }
    }

    /// Wraps a buffer after checking it holds a whole tag (`Error::Truncated` otherwise).
    ///
    /// VLAN IDs 0 and 4095 are accepted here: whether a priority tag is welcome is the
    /// classifier's decision, and [`vlan_id`](Self::vlan_id) returns `None` for them.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Tag<T>> {
        if buffer.as_ref().len() < Self::HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(Tag { buffer })
    }

    /// Returns the wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The whole Tag Control Information word.
    #[inline]
    pub fn tci(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::TCI])
    }

    /// Priority Code Point.
    #[inline]
    pub fn pcp(&self) -> Pcp {
        Pcp((self.tci() >> PCP_SHIFT) as u8)
    }

    /// Drop Eligible Indicator (formerly CFI).
    pub fn dei(&self) -> bool {
        self.tci() & DEI_BIT != 0
    }

    /// The 12-bit VID exactly as on the wire, including the reserved 0 and 4095.
    #[inline]
    pub fn vlan_id_raw(&self) -> u16 {
        self.tci() & VID_MASK
    }

    /// The VID if it names a VLAN; `None` for a priority tag (0) or the reserved 4095.
    pub fn vlan_id(&self) -> Option<VlanId> {
        VlanId::new(self.vlan_id_raw())
    }

    /// EtherType of what follows the tag (another TPID for stacked tags).
    #[inline]
    pub fn inner_ethertype(&self) -> EtherType {
        EtherType::from_u16(read_u16(&self.buffer.as_ref()[field::ETHERTYPE]))
    }

    /// The inner EtherType as the wire integer (see `ethernet::Frame::ethertype_raw`).
    #[inline]
    pub fn inner_ethertype_raw(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::ETHERTYPE])
    }

    /// The bytes after the tag, to the end of the buffer.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Tag<T> {
    /// Writes the whole TCI word at once (see [`tci`] to build one).
    pub fn set_tci(&mut self, tci: u16) {
        write_u16(&mut self.buffer.as_mut()[field::TCI], tci);
    }

    /// Sets the Priority Code Point, keeping DEI and VID.
    pub fn set_pcp(&mut self, pcp: Pcp) {
        let tci = self.tci() & !(0x7 << PCP_SHIFT);
        self.set_tci(tci | (u16::from(pcp.0) << PCP_SHIFT));
    }

    /// Sets the Drop Eligible Indicator, keeping PCP and VID.
    pub fn set_dei(&mut self, dei: bool) {
        let tci = self.tci() & !DEI_BIT;
        self.set_tci(if dei { tci | DEI_BIT } else { tci });
    }

    /// Sets the VID, keeping PCP and DEI.
    pub fn set_vlan_id(&mut self, id: VlanId) {
        let tci = self.tci() & !VID_MASK;
        self.set_tci(tci | id.0);
    }

    /// Sets the EtherType of what follows the tag.
    pub fn set_inner_ethertype(&mut self, ethertype: EtherType) {
        write_u16(
            &mut self.buffer.as_mut()[field::ETHERTYPE],
            ethertype.to_u16(),
        );
    }

    /// The bytes after the tag, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The tag of gopacket's captured BGP NOTIFICATION frame (`testPacketBGPv4Notification`):
    /// `00:50:56:89:2e:9c -> 00:50:56:89:67:86`, TPID 0x8100, then these 4 bytes: PCP 0,
    /// DEI 0, VID 501, inner EtherType IPv4; followed here by the first bytes of its IPv4 header.
    static CAPTURED_TAG: [u8; 8] = [0x01, 0xf5, 0x08, 0x00, 0x45, 0xc0, 0x00, 0x9c];

    /// A tag with every TCI field non-zero, to pin the bit positions: PCP 5, DEI set,
    /// VID 4094, inner EtherType MPLS (hand-made; etherparse cross-checks it below).
    static PCP5_DEI_VID4094: [u8; 4] = [0xbf, 0xfe, 0x88, 0x47];

    #[test]
    fn reads_captured_tag() {
        let tag = Tag::new_checked(&CAPTURED_TAG[..]).unwrap();
        assert_eq!(tag.tci(), 0x01f5);
        assert_eq!(tag.pcp(), Pcp::new(0).unwrap());
        assert!(!tag.dei());
        assert_eq!(tag.vlan_id_raw(), 501);
        assert_eq!(tag.vlan_id(), VlanId::new(501));
        assert_eq!(tag.inner_ethertype(), EtherType::Ipv4);
        assert_eq!(tag.inner_ethertype_raw(), 0x0800);
        assert_eq!(tag.payload(), &CAPTURED_TAG[4..]);
    }

    #[test]
    fn reads_all_fields_set() {
        let tag = Tag::new_checked(&PCP5_DEI_VID4094[..]).unwrap();
        assert_eq!(tag.pcp().get(), 5);
        assert!(tag.dei());
        assert_eq!(tag.vlan_id().map(VlanId::get), Some(4094));
        assert_eq!(tag.inner_ethertype(), EtherType::Mpls);
        assert_eq!(tag.inner_ethertype_raw(), 0x8847);
        assert!(tag.payload().is_empty());
    }

    #[test]
    fn builds_captured_tag() {
        let mut buf = [0xa5u8; 8];
        let mut tag = Tag::new_unchecked(&mut buf[..]);
        tag.set_pcp(Pcp::new(0).unwrap());
        tag.set_dei(false);
        tag.set_vlan_id(VlanId::new(501).unwrap());
        tag.set_inner_ethertype(EtherType::Ipv4);
        tag.payload_mut().copy_from_slice(&CAPTURED_TAG[4..]);
        assert_eq!(buf, CAPTURED_TAG);

        let mut buf = [0xa5u8; 4];
        let mut tag = Tag::new_unchecked(&mut buf[..]);
        tag.set_tci(tci(Pcp::new(5).unwrap(), true, VlanId::new(4094).unwrap()));
        tag.set_inner_ethertype(EtherType::Mpls);
        assert_eq!(buf, PCP5_DEI_VID4094);
    }

    #[test]
    fn setters_touch_only_their_bits() {
        let mut buf = PCP5_DEI_VID4094;
        let mut tag = Tag::new_unchecked(&mut buf[..]);
        tag.set_vlan_id(VlanId::new(1).unwrap());
        assert_eq!(
            (tag.pcp().get(), tag.dei(), tag.vlan_id_raw()),
            (5, true, 1)
        );
        tag.set_dei(false);
        assert_eq!(
            (tag.pcp().get(), tag.dei(), tag.vlan_id_raw()),
            (5, false, 1)
        );
        tag.set_pcp(Pcp::new(7).unwrap());
        assert_eq!(
            (tag.pcp().get(), tag.dei(), tag.vlan_id_raw()),
            (7, false, 1)
        );
        tag.set_pcp(Pcp::new(0).unwrap());
        assert_eq!(tag.tci(), 0x0001);
    }

    #[test]
    fn rejects_short_buffers() {
        for len in 0..Tag::<&[u8]>::HEADER_LEN {
            assert_eq!(
                Tag::new_checked(&CAPTURED_TAG[..len]).unwrap_err(),
                Error::Truncated
            );
        }
    }

    #[test]
    fn reserved_ids_are_read_but_not_named() {
        let priority_tag = Tag::new_checked(&[0xa0, 0x00, 0x08, 0x00][..]).unwrap();
        assert_eq!(priority_tag.vlan_id_raw(), 0);
        assert_eq!(priority_tag.vlan_id(), None);
        assert_eq!(priority_tag.pcp().get(), 5);
        let reserved = Tag::new_checked(&[0x0f, 0xff, 0x08, 0x00][..]).unwrap();
        assert_eq!(reserved.vlan_id_raw(), 4095);
        assert_eq!(reserved.vlan_id(), None);
    }

    #[test]
    fn newtypes_hold_only_valid_values() {
        assert_eq!(VlanId::new(0), None);
        assert_eq!(VlanId::new(1).map(VlanId::get), Some(1));
        assert_eq!(VlanId::new(4094).map(VlanId::get), Some(4094));
        assert_eq!(VlanId::new(4095), None);
        assert_eq!(VlanId::new(u16::MAX), None);
        assert_eq!(VlanId::new(100).unwrap().to_string(), "100");
        assert_eq!(Pcp::new(7).map(Pcp::get), Some(7));
        assert_eq!(Pcp::new(8), None);
        assert_eq!(Pcp::new(3).unwrap().to_string(), "3");
    }

    #[test]
    fn etherparse_agrees_on_fixtures() {
        for bytes in [&CAPTURED_TAG[..], &PCP5_DEI_VID4094[..]] {
            let theirs = etherparse::SingleVlanHeaderSlice::from_slice(bytes).unwrap();
            let ours = Tag::new_checked(bytes).unwrap();
            assert_eq!(ours.pcp().get(), theirs.priority_code_point().value());
            assert_eq!(ours.dei(), theirs.drop_eligible_indicator());
            assert_eq!(ours.vlan_id_raw(), theirs.vlan_identifier().value());
            assert_eq!(u16::from(ours.inner_ethertype()), theirs.ether_type().0);
        }
    }

    proptest! {
        #[test]
        fn getters_never_panic(data in prop::collection::vec(any::<u8>(), 0..16)) {
            if let Ok(tag) = Tag::new_checked(&data[..]) {
                let _ = (tag.tci(), tag.pcp(), tag.dei(), tag.vlan_id_raw(), tag.vlan_id());
                let _ = (tag.inner_ethertype(), tag.payload());
                prop_assert!(tag.pcp().get() <= 7);
                prop_assert!(tag.vlan_id_raw() <= 4095);
            } else {
                prop_assert!(data.len() < 4);
            }
        }

        #[test]
        fn etherparse_agrees_on_any_tag(bytes in any::<[u8; 4]>()) {
            let theirs = etherparse::SingleVlanHeaderSlice::from_slice(&bytes).unwrap();
            let ours = Tag::new_checked(&bytes[..]).unwrap();
            prop_assert_eq!(ours.pcp().get(), theirs.priority_code_point().value());
            prop_assert_eq!(ours.dei(), theirs.drop_eligible_indicator());
            prop_assert_eq!(ours.vlan_id_raw(), theirs.vlan_identifier().value());
            prop_assert_eq!(u16::from(ours.inner_ethertype()), theirs.ether_type().0);
        }

        #[test]
        fn tci_packs_what_the_view_reads(pcp in 0u8..8, dei in any::<bool>(), id in 1u16..4095) {
            let word = tci(Pcp::new(pcp).unwrap(), dei, VlanId::new(id).unwrap());
            let mut buf = [0u8; 4];
            write_u16(&mut buf, word);
            let tag = Tag::new_checked(&buf[..]).unwrap();
            prop_assert_eq!((tag.pcp().get(), tag.dei(), tag.vlan_id_raw()), (pcp, dei, id));
        }
    }
}

//! Zero-copy views over frame bytes, in the style of smoltcp's `wire` module.
//!
//! Each header is a struct wrapping any `T: AsRef<[u8]>` (a borrowed slice, a UMEM
//! chunk, a `Vec`), with field offsets kept in a private `field` module, getters on
//! `AsRef<[u8]>` and setters on `AsMut<[u8]>`. Bytes that came off a wire go through
//! `new_checked`, which validates lengths (and the invariants each header documents)
//! once, so that no accessor can panic afterwards; `new_unchecked` is for buffers the
//! caller has just sized itself. Nothing here does I/O, allocates or uses `unsafe`,
//! and only `core` is needed.

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod icmp;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod mpls;
pub mod ndisc;
pub mod vlan;

use core::fmt;

/// Why bytes could not be read as a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The buffer ends before the header (or the length it declares) does.
    Truncated,
    /// The bytes are long enough but violate the header's format (wrong version, bad length field, ...).
    Malformed,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated => f.write_str("header truncated"),
            Error::Malformed => f.write_str("header malformed"),
        }
    }
}

impl core::error::Error for Error {}

/// Result of reading a header with `new_checked`.
pub type Result<T> = core::result::Result<T, Error>;

/// The IP version of a packet, from the first nibble of its header.
///
/// Below the bottom of an MPLS label stack nothing says what the payload is (RFC 3032 §2.2
/// leaves it to the label's binding); a router that pops to IP reads the version nibble,
/// as Linux's `mpls_egress` does for routes of unspecified payload, before choosing the IPv4 or IPv6 view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpVersion {
    /// Version 4.
    Ipv4,
    /// Version 6.
    Ipv6,
    /// Any other version number: data, not an error.
    Other(u8),
}

impl IpVersion {
    /// The version of the packet that starts `bytes`; `Error::Truncated` if `bytes` is empty.
    #[inline]
    pub fn of_packet(bytes: &[u8]) -> Result<IpVersion> {
        match bytes.first().map(|b| b >> 4) {
            Some(4) => Ok(IpVersion::Ipv4),
            Some(6) => Ok(IpVersion::Ipv6),
            Some(other) => Ok(IpVersion::Other(other)),
            None => Err(Error::Truncated),
        }
    }
}

// Byte-order helpers shared by the views. Callers pass a sub-slice taken with a `field`
// range of the right width, so the fixed indices below are always in bounds.

#[inline]
fn read_u16(bytes: &[u8]) -> u16 {
    u16::from_be_bytes([bytes[0], bytes[1]])
}

#[inline]
fn write_u16(bytes: &mut [u8], value: u16) {
    bytes[..2].copy_from_slice(&value.to_be_bytes());
}

#[inline]
fn read_u32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

#[inline]
fn write_u32(bytes: &mut [u8], value: u32) {
    bytes[..4].copy_from_slice(&value.to_be_bytes());
}

#[inline]
fn read_array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&bytes[..N]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_displays_a_sentence() {
        assert_eq!(Error::Truncated.to_string(), "header truncated");
        assert_eq!(Error::Malformed.to_string(), "header malformed");
    }

    #[test]
    fn ip_version_is_the_first_nibble() {
        // The first bytes of an IPv4 header (IHL 5), an IPv6 one (traffic class 0xb8) and junk.
        assert_eq!(IpVersion::of_packet(&[0x45, 0x00]), Ok(IpVersion::Ipv4));
        assert_eq!(IpVersion::of_packet(&[0x6b, 0x80]), Ok(IpVersion::Ipv6));
        assert_eq!(IpVersion::of_packet(&[0x00]), Ok(IpVersion::Other(0)));
        assert_eq!(IpVersion::of_packet(&[0xf4]), Ok(IpVersion::Other(15)));
        assert_eq!(IpVersion::of_packet(&[]), Err(Error::Truncated));
    }

    #[test]
    fn helpers_are_big_endian() {
        let mut buf = [0u8; 4];
        write_u16(&mut buf, 0x1234);
        assert_eq!(buf[..2], [0x12, 0x34]);
        assert_eq!(read_u16(&buf), 0x1234);
        write_u32(&mut buf, 0xdead_beef);
        assert_eq!(buf, [0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(read_u32(&buf), 0xdead_beef);
        assert_eq!(read_array::<3>(&buf), [0xde, 0xad, 0xbe]);
    }
}

//! Per-VRF longest-prefix-match tables: destination address in, FEC index out.
//!
//! A PE carries hundreds of VRFs. Most hold a handful of routes, a few hold a full table
//! (about 1M IPv4 prefixes), so every structure here has to be both small when small
//! (an empty or 10-route table costs a few kilobytes at most) and fast when big.
//!
//! - [`Ipv4Lpm`]: a compressed multibit trie (16-8-8 for large tables, 8-8-8-8 for small
//!   ones) with leaf pushing and run-compressed nodes; about 13 bytes per prefix at 1M
//!   prefixes and one cache-missing node per lookup. See the [`v4`] module doc.
//! - [`Ipv6Lpm`]: one hash table per present prefix length (as in VPP) plus a filter that tells,
//!   per slice of the address space, which lengths are worth probing. See the [`v6`] module doc.
//!
//! Both are immutable once built, and both return the route's value, a FEC index of at most
//! [`MAX_VALUE`]. Their editable sides, [`Ipv4Table`] and [`Ipv6Table`], take batches of route
//! changes and make a new table that shares every untouched part with the previous one; the
//! control side wraps it in the VRF's snapshot and publishes it with one pointer swap, so a
//! route change costs microseconds, not a rebuild of a million routes.

use core::net::IpAddr;

pub mod v4;
mod v4_routes;
pub mod v6;

pub use v4::{ApplyStats, Ipv4Lpm, Ipv4Table};
pub use v6::{Ipv6Change, Ipv6Lpm, Ipv6Table};

/// Largest value (FEC index) a route may carry: 2^31 - 2.
///
/// The IPv4 trie keeps one tag bit per entry to tell a child node from a leaf and reserves
/// one more value for "no route"; IPv6 uses the same limit so the table compiler has one rule.
pub const MAX_VALUE: u32 = (1 << 31) - 2;

/// Errors building a table; each names the route that was refused.
///
/// Host bits set below the prefix length are an error, not silently masked: the table
/// compiler is expected to hand over canonical prefixes, so a non-canonical one is a bug or a
/// typo worth reporting (as `ip route add 10.1.2.3/24` does).
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum LpmError {
    /// The prefix length exceeds the address width (32 for IPv4, 128 for IPv6).
    #[error("prefix length {len} of {network} is longer than {max} bits")]
    PrefixLength {
        /// Network address of the refused route.
        network: IpAddr,
        /// The prefix length given.
        len: u8,
        /// The address width.
        max: u8,
    },
    /// The network address has bits set beyond the prefix length.
    #[error("{network}/{len} has host bits set; the prefix is {masked}/{len}")]
    HostBitsSet {
        /// Network address as given.
        network: IpAddr,
        /// The prefix length given.
        len: u8,
        /// The network address with the host bits cleared, as a hint.
        masked: IpAddr,
    },
    /// The route's value does not fit the table's value range.
    #[error("value {value} of {network}/{len} exceeds the maximum FEC index {max}")]
    ValueTooLarge {
        /// Network address of the refused route.
        network: IpAddr,
        /// Prefix length of the refused route.
        len: u8,
        /// The value given.
        value: u32,
        /// [`MAX_VALUE`].
        max: u32,
    },
    /// An internal index space ran out (not reachable with real route tables).
    #[error("LPM table full: more than {limit} {what}")]
    Full {
        /// Which arena overflowed.
        what: &'static str,
        /// Its capacity.
        limit: usize,
    },
}

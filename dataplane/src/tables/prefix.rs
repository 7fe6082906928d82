//! IPv4 and IPv6 prefixes (CIDR blocks) as the tables and the config name them.

use core::fmt;
use core::net::{Ipv4Addr, Ipv6Addr};
use core::str::FromStr;

/// Why a string is not a prefix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    /// No `/len` part.
    #[error("`{0}` is not a prefix: expected ADDRESS/LENGTH")]
    MissingLength(String),
    /// The address part does not parse.
    #[error("`{0}` is not a valid address")]
    BadAddress(String),
    /// The length is not a number in range.
    #[error("`{text}`: prefix length must be 0..={max}")]
    BadLength {
        /// The whole text.
        text: String,
        /// The largest length of the family.
        max: u8,
    },
}

fn split(text: &str) -> Result<(&str, &str), PrefixError> {
    text.split_once('/')
        .ok_or_else(|| PrefixError::MissingLength(text.to_string()))
}

fn parse_len(text: &str, len: &str, max: u8) -> Result<u8, PrefixError> {
    match len.parse::<u8>() {
        Ok(l) if l <= max => Ok(l),
        _ => Err(PrefixError::BadLength {
            text: text.to_string(),
            max,
        }),
    }
}

/// An IPv4 address with a prefix length; the address may have host bits (an interface address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv4Prefix {
    addr: Ipv4Addr,
    len: u8,
}

impl Ipv4Prefix {
    /// A prefix; `None` when `len > 32`.
    pub fn new(addr: Ipv4Addr, len: u8) -> Option<Self> {
        (len <= 32).then_some(Self { addr, len })
    }
    /// The address as written (host bits kept).
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }
    /// The prefix length.
    #[allow(clippy::len_without_is_empty)] // a prefix length, not a container size
    pub fn len(&self) -> u8 {
        self.len
    }
    /// The netmask as a host-order integer.
    pub fn mask(&self) -> u32 {
        if self.len == 0 {
            0
        } else {
            u32::MAX << (32 - self.len)
        }
    }
    /// The network address (host bits cleared).
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }
    /// The same prefix with host bits cleared.
    pub fn trunc(&self) -> Self {
        Self {
            addr: self.network(),
            len: self.len,
        }
    }
    /// Whether host bits are set in the address.
    pub fn has_host_bits(&self) -> bool {
        self.network() != self.addr
    }
    /// Whether `ip` lies inside this prefix.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network())
    }
    /// The directed broadcast address of the subnet.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network()) | !self.mask())
    }
    /// Whether the two prefixes share any address.
    pub fn overlaps(&self, other: &Ipv4Prefix) -> bool {
        let shorter = if self.len <= other.len { self } else { other };
        let longer = if self.len <= other.len { other } else { self };
        shorter.contains(longer.addr)
    }
}

impl fmt::Display for Ipv4Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for Ipv4Prefix {
    type Err = PrefixError;
    fn from_str(text: &str) -> Result<Self, PrefixError> {
        let (a, l) = split(text)?;
        let addr = a
            .parse::<Ipv4Addr>()
            .map_err(|_| PrefixError::BadAddress(a.to_string()))?;
        Ok(Self {
            addr,
            len: parse_len(text, l, 32)?,
        })
    }
}

/// An IPv6 address with a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv6Prefix {
    addr: Ipv6Addr,
    len: u8,
}

impl Ipv6Prefix {
    /// A prefix; `None` when `len > 128`.
    pub fn new(addr: Ipv6Addr, len: u8) -> Option<Self> {
        (len <= 128).then_some(Self { addr, len })
    }
    /// The address as written.
    pub fn addr(&self) -> Ipv6Addr {
        self.addr
    }
    /// The prefix length.
    #[allow(clippy::len_without_is_empty)] // a prefix length, not a container size
    pub fn len(&self) -> u8 {
        self.len
    }
    /// The netmask as an integer.
    pub fn mask(&self) -> u128 {
        if self.len == 0 {
            0
        } else {
            u128::MAX << (128 - self.len)
        }
    }
    /// The network address (host bits cleared).
    pub fn network(&self) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(self.addr) & self.mask())
    }
    /// The same prefix with host bits cleared.
    pub fn trunc(&self) -> Self {
        Self {
            addr: self.network(),
            len: self.len,
        }
    }
    /// Whether host bits are set in the address.
    pub fn has_host_bits(&self) -> bool {
        self.network() != self.addr
    }
    /// Whether `ip` lies inside this prefix.
    pub fn contains(&self, ip: Ipv6Addr) -> bool {
        u128::from(ip) & self.mask() == u128::from(self.network())
    }
    /// Whether the two prefixes share any address.
    pub fn overlaps(&self, other: &Ipv6Prefix) -> bool {
        let shorter = if self.len <= other.len { self } else { other };
        let longer = if self.len <= other.len { other } else { self };
        shorter.contains(longer.addr)
    }
}

impl fmt::Display for Ipv6Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for Ipv6Prefix {
    type Err = PrefixError;
    fn from_str(text: &str) -> Result<Self, PrefixError> {
        let (a, l) = split(text)?;
        let addr = a
            .parse::<Ipv6Addr>()
            .map_err(|_| PrefixError::BadAddress(a.to_string()))?;
        Ok(Self {
            addr,
            len: parse_len(text, l, 128)?,
        })
    }
}

/// An IPv4 or IPv6 prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IpPrefix {
    /// IPv4.
    V4(Ipv4Prefix),
    /// IPv6.
    V6(Ipv6Prefix),
}

impl IpPrefix {
    /// Whether host bits are set in the address.
    pub fn has_host_bits(&self) -> bool {
        match self {
            IpPrefix::V4(p) => p.has_host_bits(),
            IpPrefix::V6(p) => p.has_host_bits(),
        }
    }
    /// The same prefix with host bits cleared.
    pub fn trunc(&self) -> Self {
        match self {
            IpPrefix::V4(p) => IpPrefix::V4(p.trunc()),
            IpPrefix::V6(p) => IpPrefix::V6(p.trunc()),
        }
    }
    /// The prefix length.
    #[allow(clippy::len_without_is_empty)] // a prefix length, not a container size
    pub fn len(&self) -> u8 {
        match self {
            IpPrefix::V4(p) => p.len(),
            IpPrefix::V6(p) => p.len(),
        }
    }
}

impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpPrefix::V4(p) => p.fmt(f),
            IpPrefix::V6(p) => p.fmt(f),
        }
    }
}

impl FromStr for IpPrefix {
    type Err = PrefixError;
    fn from_str(text: &str) -> Result<Self, PrefixError> {
        if text.contains(':') {
            text.parse().map(IpPrefix::V6)
        } else {
            text.parse().map(IpPrefix::V4)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_masks() {
        let p: Ipv4Prefix = "169.254.10.1/30".parse().unwrap();
        assert!(p.has_host_bits());
        assert_eq!(p.network(), Ipv4Addr::new(169, 254, 10, 0));
        assert_eq!(p.broadcast(), Ipv4Addr::new(169, 254, 10, 3));
        assert!(p.contains(Ipv4Addr::new(169, 254, 10, 2)));
        assert!(!p.contains(Ipv4Addr::new(169, 254, 10, 4)));
        let d: Ipv4Prefix = "0.0.0.0/0".parse().unwrap();
        assert!(d.contains(Ipv4Addr::new(1, 2, 3, 4)));
        assert!(d.overlaps(&p) && p.overlaps(&d));
        let v6: IpPrefix = "2001:db8:20::/48".parse().unwrap();
        assert_eq!(v6.to_string(), "2001:db8:20::/48");
        assert!(!v6.has_host_bits());
        let a: Ipv6Prefix = "2001:db8:20::1/64".parse().unwrap();
        let b: Ipv6Prefix = "2001:db8:20::/48".parse().unwrap();
        let c: Ipv6Prefix = "2001:db8:21::1/64".parse().unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!a.overlaps(&c) && !c.overlaps(&a) && !c.overlaps(&b));
    }

    #[test]
    fn rejects_bad_text() {
        assert!(matches!(
            "10.0.0.0".parse::<Ipv4Prefix>(),
            Err(PrefixError::MissingLength(_))
        ));
        assert!(matches!(
            "10.0.0.0/33".parse::<Ipv4Prefix>(),
            Err(PrefixError::BadLength { max: 32, .. })
        ));
        assert!(matches!(
            "10.0.0/8".parse::<Ipv4Prefix>(),
            Err(PrefixError::BadAddress(_))
        ));
        assert!("::/129".parse::<Ipv6Prefix>().is_err());
    }
}

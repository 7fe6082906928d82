//! What the runtime and the generator need to know about a Linux interface, read from sysfs.

use std::fs;
use std::path::PathBuf;

use crate::wire::ethernet::MacAddr;

/// IFF_UP (linux/if.h).
const IFF_UP: u32 = 0x1;

/// A Linux network interface as sysfs shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Netdev {
    /// Its name.
    pub name: String,
    /// Its MAC address.
    pub mac: Option<MacAddr>,
    /// Its MTU.
    pub mtu: u32,
    /// Whether it is administratively up.
    pub up: bool,
    /// Its RX queues (AF_XDP binds one socket per queue).
    pub rx_queues: u32,
    /// Its interface index.
    pub ifindex: u32,
    /// The index of the interface it is linked to (a veth's peer, possibly in another
    /// namespace); its own index for devices that are not linked.
    pub iflink: u32,
    /// Whether it has carrier (a veth has carrier while both ends are up).
    pub carrier: bool,
}

fn sys(name: &str) -> PathBuf {
    PathBuf::from("/sys/class/net").join(name)
}

fn read(name: &str, file: &str) -> Option<String> {
    fs::read_to_string(sys(name).join(file))
        .ok()
        .map(|s| s.trim().to_string())
}

/// Parses `aa:bb:cc:dd:ee:ff`.
fn parse_mac(s: &str) -> Option<MacAddr> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut mac {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(MacAddr(mac))
}

impl Netdev {
    /// Reads interface `name`; `None` if there is no such interface (in this namespace).
    pub fn read(name: &str) -> Option<Netdev> {
        if name.is_empty() || name.contains('/') || !sys(name).exists() {
            return None;
        }
        let flags = read(name, "flags")
            .and_then(|f| u32::from_str_radix(f.trim_start_matches("0x"), 16).ok())
            .unwrap_or(0);
        let rx_queues = fs::read_dir(sys(name).join("queues"))
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
                    .count() as u32
            })
            .unwrap_or(1)
            .max(1);
        let number = |file: &str| read(name, file).and_then(|v| v.parse().ok()).unwrap_or(0);
        Some(Netdev {
            name: name.to_string(),
            mac: read(name, "address").as_deref().and_then(parse_mac),
            mtu: number("mtu"),
            up: flags & IFF_UP != 0,
            rx_queues,
            ifindex: number("ifindex"),
            iflink: number("iflink"),
            // Reading `carrier` of a device that is down fails (EINVAL): no carrier.
            carrier: read(name, "carrier").as_deref() == Some("1"),
        })
    }

    /// The other end of this veth if it is in this network namespace: the interface whose
    /// index is our link and whose link is our index (checking both ways keeps an unrelated
    /// interface that happens to have the peer's index in another namespace from matching).
    pub fn veth_peer(&self) -> Option<Netdev> {
        if self.iflink == 0 || self.iflink == self.ifindex {
            return None;
        }
        fs::read_dir("/sys/class/net")
            .ok()?
            .filter_map(Result::ok)
            .filter_map(|e| Netdev::read(&e.file_name().to_string_lossy()))
            .find(|d| d.ifindex == self.iflink && d.iflink == self.ifindex)
    }
}

/// Whether this process runs as root (effective uid 0), read from /proc/self/status: the
/// daemon and the lab commands say so before they touch the kernel, and neither needs unsafe
/// for it.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_read_and_junk_names_are_not() {
        let lo = Netdev::read("lo").expect("every namespace has lo");
        assert_eq!(lo.mac, Some(MacAddr([0; 6])));
        assert!(lo.mtu >= 1500);
        assert!(lo.rx_queues >= 1);
        assert_eq!(
            lo.ifindex, 1,
            "lo is the first interface of every namespace"
        );
        assert_eq!(lo.iflink, 1);
        assert_eq!(lo.veth_peer(), None);
        assert_eq!(Netdev::read("xpe-no-such-if0"), None);
        assert_eq!(Netdev::read("../lo"), None);
        assert_eq!(Netdev::read(""), None);
    }

    #[test]
    fn macs_parse_strictly() {
        assert_eq!(
            parse_mac("02:00:00:00:01:0a"),
            Some(MacAddr([2, 0, 0, 0, 1, 10]))
        );
        assert_eq!(parse_mac("02:00:00:00:01"), None);
        assert_eq!(parse_mac("02:00:00:00:01:0a:00"), None);
        assert_eq!(parse_mac("zz:00:00:00:01:0a"), None);
    }
}

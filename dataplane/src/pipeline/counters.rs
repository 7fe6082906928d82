//! Why frames are dropped or punted, and the per-core counters of every outcome.
//!
//! Counters are plain arrays indexed by enums, owned by one worker and summed when someone
//! asks: no atomics or locks on the per-packet path.

use core::fmt;
use core::ops::AddAssign;

macro_rules! reasons {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident => $s:literal,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum $name { $($(#[$vm])* $v,)* }
        impl $name {
            /// Every value, in counter order.
            pub const ALL: &'static [$name] = &[$($name::$v,)*];
            /// Number of values.
            pub const COUNT: usize = $name::ALL.len();
            /// The counter name, as printed and as written in drop captures.
            pub fn name(self) -> &'static str {
                match self { $($name::$v => $s,)* }
            }
            /// The value with this counter name.
            pub fn from_name(name: &str) -> Option<$name> {
                $name::ALL.iter().copied().find(|r| r.name() == name)
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.name()) }
        }
    };
}

reasons! {
    /// Why a frame was dropped.
    DropReason {
        /// Shorter than the headers it claims to have.
        Truncated => "truncated",
        /// Unicast to a MAC that is not the port's.
        OtherMac => "other-mac",
        /// 802.1ad or a second 802.1Q tag: only single-tagged attachments exist.
        StackedVlan => "stacked-vlan",
        /// A VLAN id with no attachment on the port (also any tag on a core port, and VID 4095).
        UnknownVlan => "unknown-vlan",
        /// Untagged on a port without an untagged attachment.
        NoAttachment => "no-attachment",
        /// MPLS on an edge port: customers may not inject labels.
        MplsOnEdge => "mpls-on-edge",
        /// A label stack with no bottom-of-stack entry, or deeper than we walk.
        BadLabelStack => "bad-label-stack",
        /// Implicit null (3) or another reserved label 4..15 on the wire.
        ReservedLabel => "reserved-label",
        /// A label with no incoming entry.
        UnknownLabel => "unknown-label",
        /// A VPN (table) label that is not the bottom of the stack.
        VpnLabelNotBottom => "vpn-label-not-bottom",
        /// An IPv4 header that is malformed or fails its checksum (RFC 1812 §5.2.2).
        BadIpv4Header => "bad-ipv4-header",
        /// An IPv6 header that is malformed.
        BadIpv6Header => "bad-ipv6-header",
        /// An ARP packet that is not Ethernet/IPv4 or is cut short.
        BadArp => "bad-arp",
        /// An ARP request for an address that is not ours.
        ArpNotForUs => "arp-not-for-us",
        /// A neighbour solicitation or advertisement that fails RFC 4861's validity checks
        /// (§7.1: hop limit 255, checksum, code 0, length, well-formed options, target not
        /// multicast, the rules for unspecified sources and multicast destinations).
        BadNd => "bad-nd",
        /// IP TTL/hop limit or label TTL would reach 0.
        TtlExpired => "ttl-expired",
        /// No route in the VRF.
        NoRoute => "no-route",
        /// The next hop's MAC is not known.
        NoNeighbor => "no-neighbor",
        /// Labels + IP exceed the egress MTU.
        MtuExceeded => "mtu-exceeded",
        /// Not enough headroom in the buffer to push the new headers.
        NoHeadroom => "no-headroom",
        /// The ingress port is not in the current tables.
        UnknownPort => "unknown-port",
        /// A frame the kernel sent to the router's MAC on a mirror that xpe does not route:
        /// not IP, or for one of our own addresses.
        FromKernelNotRouted => "from-kernel-not-routed",
    }
}

reasons! {
    /// Why a frame was handed to the kernel instead of forwarded.
    Punt {
        /// An IP packet for one of our addresses other than an echo request.
        ForUs => "for-us",
        /// The router-alert label (1).
        RouterAlert => "router-alert",
        /// ARP replies and gratuitous ARP (neighbour learning).
        Arp => "arp",
        /// Neighbour advertisements, and solicitations not for our addresses, that carry a
        /// link-layer address option (neighbour learning).
        Nd => "nd",
        /// A multicast destination (MAC or IP).
        Multicast => "multicast",
        /// A broadcast destination that is not ARP.
        Broadcast => "broadcast",
        /// An ethertype we do not forward (LLDP, STP, MPLS multicast, ...).
        OtherProtocol => "other-protocol",
    }
}

reasons! {
    /// The ICMP errors the router sends (`pipeline::icmp_error`), counted per kind.
    IcmpError {
        /// IPv4 time exceeded in transit (type 11, code 0): an IP or label TTL ran out.
        TimeExceeded => "time-exceeded",
        /// ICMPv6 time exceeded, hop limit exceeded in transit (type 3, code 0).
        TimeExceeded6 => "time-exceeded-v6",
        /// IPv4 destination unreachable, fragmentation needed and DF set (type 3, code 4),
        /// with the next-hop MTU (RFC 1191).
        FragNeeded => "frag-needed",
        /// ICMPv6 packet too big (type 2), with the MTU (RFC 4443 §3.2, RFC 8201).
        PacketTooBig => "packet-too-big",
    }
}

impl IcmpError {
    /// The drop reason of a packet that gets this error (counted there when none is sent).
    pub fn reason(self) -> DropReason {
        match self {
            IcmpError::TimeExceeded | IcmpError::TimeExceeded6 => DropReason::TtlExpired,
            IcmpError::FragNeeded | IcmpError::PacketTooBig => DropReason::MtuExceeded,
        }
    }
}

/// How many more ICMP errors a worker may send before its run loop looks at the clock again.
/// The run loop refills it before each batch from its token bucket (rate limiting, as Linux's
/// `icmp_msgs_per_sec`), so the pipeline itself needs no clock; offline tools leave it
/// unlimited, the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpAllowance(pub u32);

impl Default for IcmpAllowance {
    fn default() -> Self {
        IcmpAllowance(u32::MAX)
    }
}

reasons! {
    /// The control-plane policing class of a punted frame ([`punt_class`]): each has its own
    /// token bucket per worker, so a flood in one cannot starve another.
    ///
    /// [`punt_class`]: super::punt::punt_class
    PuntClass {
        /// Routing and label protocols: BGP, BFD, LDP, OSPF, IS-IS, RIP, PIM, VRRP.
        Routing => "routing",
        /// Address resolution: ARP and IPv6 neighbour discovery.
        Resolution => "arp-nd",
        /// ICMP and ICMPv6 other than neighbour discovery.
        Icmp => "icmp",
        /// Everything else for the router: SSH, SNMP, other TCP and UDP, multicast.
        Other => "other",
    }
}

/// What control-plane policing did with one class's frames.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PolicedCounters {
    /// Frames within the class's rate, handed to the kernel.
    pub passed: u64,
    /// Frames over the rate, dropped.
    pub dropped: u64,
}

/// What the pipeline decided for one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Transmit the (rewritten) frame on this port.
    Forward(crate::tables::PortId),
    /// Drop it, counted under this reason.
    Drop(DropReason),
    /// Hand it to the kernel, counted under this reason.
    Punt(Punt),
    /// Transmit the (rewritten) frame on this port cut into IPv4 fragments that fit its MTU
    /// ([`fragment`](super::fragment)). The cut finds the IPv4 header and the labels again:
    /// a verdict larger than a port id cost the forwarding loop instructions per frame.
    Fragment(crate::tables::PortId),
}

/// Packets and bytes in one direction of a port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortCounters {
    /// Frames received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Frames transmitted.
    pub tx_packets: u64,
    /// Bytes transmitted.
    pub tx_bytes: u64,
    /// Frames received here and dropped (any reason).
    pub rx_drops: u64,
}

/// One worker's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Drops by reason.
    pub drops: [u64; DropReason::COUNT],
    /// Punts by reason.
    pub punts: [u64; Punt::COUNT],
    /// Frames forwarded (including our ARP, ND and echo replies).
    pub forwarded: u64,
    /// ARP replies we sent.
    pub arp_replies: u64,
    /// ICMP echo replies we sent.
    pub echo_replies: u64,
    /// Neighbour advertisements we sent in answer to solicitations for our IPv6 addresses.
    pub nd_replies: u64,
    /// ICMPv6 echo replies we sent.
    pub echo6_replies: u64,
    /// Per-port counters, indexed by port id.
    pub ports: Vec<PortCounters>,
    /// Connected hosts that had no MAC (glean), for the run loop to resolve.
    pub glean: GleanLog,
    /// Packets per incoming label entry, by counter slot ([`Snapshot::label_slot`]).
    ///
    /// [`Snapshot::label_slot`]: crate::tables::Snapshot::label_slot
    pub labels: Vec<u64>,
    /// IP lookups per VRF, by counter slot ([`Snapshot::vrf_slot`]).
    ///
    /// [`Snapshot::vrf_slot`]: crate::tables::Snapshot::vrf_slot
    pub vrfs: Vec<u64>,
    /// Control-plane policing of punted frames, by [`PuntClass`] (counted only while
    /// punted frames have a kernel to go to: mirrors are on).
    pub policed: [PolicedCounters; PuntClass::COUNT],
    /// ICMP errors sent, by kind. Each took the place of its packet, so the frame counts as
    /// forwarded (as an echo reply does), not under the drop reason the error is about.
    pub icmp_sent: [u64; IcmpError::COUNT],
    /// ICMP errors not sent because the worker's rate was spent.
    pub icmp_rate_limited: u64,
    /// IPv4 packets sent on as fragments (each counted once in `forwarded`).
    pub fragmented: u64,
    /// The fragments made of them (each counted on its egress port).
    pub fragments: u64,
    /// Fragments not sent: no buffer for them.
    pub fragments_dropped: u64,
    /// ICMP errors the worker may still send: state, not a counter (never summed or copied).
    pub icmp_allowance: IcmpAllowance,
}

/// Connected hosts (IPv4 or IPv6) the pipeline found no MAC for, newest kept: a small fixed
/// ring the run loop drains after each batch (no allocation; entries past its size overwrite
/// the oldest, and the next frame to the host logs it again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GleanLog {
    entries: [(u16, core::net::IpAddr); GleanLog::SIZE],
    len: u8,
    next: u8,
}

impl Default for GleanLog {
    fn default() -> Self {
        GleanLog {
            entries: [(0, core::net::IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED)); Self::SIZE],
            len: 0,
            next: 0,
        }
    }
}

impl GleanLog {
    /// Entries kept between two drains.
    pub const SIZE: usize = 8;

    /// Logs a host on an attachment.
    #[inline]
    pub fn push(&mut self, attachment: crate::tables::AttachmentId, ip: core::net::IpAddr) {
        self.entries[usize::from(self.next) % Self::SIZE] = (attachment.0, ip);
        self.next = ((usize::from(self.next) + 1) % Self::SIZE) as u8;
        self.len = (usize::from(self.len) + 1).min(Self::SIZE) as u8;
    }

    /// Whether nothing is logged.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Takes every logged (attachment, host) out.
    pub fn drain(
        &mut self,
    ) -> impl Iterator<Item = (crate::tables::AttachmentId, core::net::IpAddr)> {
        let taken = core::mem::take(self);
        (0..usize::from(taken.len)).map(move |i| {
            let (a, ip) = taken.entries[i];
            (crate::tables::AttachmentId(a), ip)
        })
    }
}

impl Counters {
    /// Counters for `ports` ports.
    pub fn new(ports: usize) -> Self {
        Counters {
            ports: vec![PortCounters::default(); ports],
            ..Default::default()
        }
    }
    /// Grows the per-port counters when a snapshot with more ports is published.
    pub fn ensure_ports(&mut self, ports: usize) {
        if self.ports.len() < ports {
            self.ports.resize(ports, PortCounters::default());
        }
    }
    /// Grows every per-object array to what `snap` counts into (a no-op but for the first
    /// batch after a table change that added objects).
    #[inline]
    pub fn ensure_for(&mut self, snap: &crate::tables::Snapshot) {
        self.ensure_ports(snap.ports().len());
        let (labels, vrfs) = snap.slot_counts();
        if self.labels.len() < labels {
            self.labels.resize(labels, 0);
        }
        if self.vrfs.len() < vrfs {
            self.vrfs.resize(vrfs, 0);
        }
    }
    /// Drops counted under `reason`.
    pub fn drop_count(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize]
    }
    /// Punts counted under `reason`.
    pub fn punt_count(&self, reason: Punt) -> u64 {
        self.punts[reason as usize]
    }
    /// All drops.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }
    /// All punts.
    pub fn total_punts(&self) -> u64 {
        self.punts.iter().sum()
    }
    /// All ICMP errors sent.
    pub fn total_icmp_sent(&self) -> u64 {
        self.icmp_sent.iter().sum()
    }
    /// Makes `self` equal to `o`, reusing the per-port storage: a worker publishes its
    /// counters this way without allocating.
    pub fn copy_from(&mut self, o: &Counters) {
        self.drops = o.drops;
        self.punts = o.punts;
        self.forwarded = o.forwarded;
        self.arp_replies = o.arp_replies;
        self.echo_replies = o.echo_replies;
        self.policed = o.policed;
        self.nd_replies = o.nd_replies;
        self.echo6_replies = o.echo6_replies;
        self.icmp_sent = o.icmp_sent;
        self.icmp_rate_limited = o.icmp_rate_limited;
        self.fragmented = o.fragmented;
        self.fragments = o.fragments;
        self.fragments_dropped = o.fragments_dropped;
        self.ports.clear();
        self.ports.extend_from_slice(&o.ports);
        self.labels.clear();
        self.labels.extend_from_slice(&o.labels);
        self.vrfs.clear();
        self.vrfs.extend_from_slice(&o.vrfs);
    }
}

impl AddAssign<&Counters> for Counters {
    fn add_assign(&mut self, o: &Counters) {
        for (a, b) in self.drops.iter_mut().zip(&o.drops) {
            *a += b;
        }
        for (a, b) in self.punts.iter_mut().zip(&o.punts) {
            *a += b;
        }
        self.forwarded += o.forwarded;
        self.arp_replies += o.arp_replies;
        self.echo_replies += o.echo_replies;
        for (a, b) in self.policed.iter_mut().zip(&o.policed) {
            a.passed += b.passed;
            a.dropped += b.dropped;
        }
        self.nd_replies += o.nd_replies;
        self.echo6_replies += o.echo6_replies;
        for (a, b) in self.icmp_sent.iter_mut().zip(&o.icmp_sent) {
            *a += b;
        }
        self.icmp_rate_limited += o.icmp_rate_limited;
        self.fragmented += o.fragmented;
        self.fragments += o.fragments;
        self.fragments_dropped += o.fragments_dropped;
        self.ensure_ports(o.ports.len());
        for (a, b) in self.ports.iter_mut().zip(&o.ports) {
            a.rx_packets += b.rx_packets;
            a.rx_bytes += b.rx_bytes;
            a.tx_packets += b.tx_packets;
            a.tx_bytes += b.tx_bytes;
            a.rx_drops += b.rx_drops;
        }
        for (mine, theirs) in [(&mut self.labels, &o.labels), (&mut self.vrfs, &o.vrfs)] {
            if mine.len() < theirs.len() {
                mine.resize(theirs.len(), 0);
            }
            for (a, b) in mine.iter_mut().zip(theirs) {
                *a += b;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        for d in DropReason::ALL {
            assert_eq!(DropReason::from_name(d.name()), Some(*d));
        }
        for p in Punt::ALL {
            assert_eq!(Punt::from_name(p.name()), Some(*p));
        }
        assert_eq!(DropReason::COUNT, 22);
    }

    #[test]
    fn sums() {
        let mut a = Counters::new(1);
        let mut b = Counters::new(2);
        b.drops[DropReason::NoRoute as usize] = 3;
        b.ports[1].tx_packets = 5;
        a += &b;
        a += &b;
        assert_eq!(a.drop_count(DropReason::NoRoute), 6);
        assert_eq!(a.ports[1].tx_packets, 10);
        assert_eq!(a.total_drops(), 6);
    }
}

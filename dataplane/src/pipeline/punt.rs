//! Frames for the kernel: the policing class of a punted frame, the per-worker token buckets
//! that police each class (control-plane policing), and the frame as the kernel's mirror
//! interface receives it: 802.1Q tag and MPLS labels removed, so the kernel sees plain
//! Ethernet with IP or ARP, as it would on a port of its own.
//!
//! Pure bytes and arithmetic: the run loop calls [`punt_class`] and [`Policer::allow`] for
//! each punted frame (never for a forwarded one), and the mirror thread calls [`for_kernel`].

use super::counters::{IcmpAllowance, PuntClass};
use super::MAX_LABEL_DEPTH;
use crate::tables::{AttachmentId, IlmAction, PortId, Snapshot, VrfId};
use crate::wire::ethernet::{self, EtherType};
use crate::wire::{ipv4, ipv6, mpls, vlan, IpVersion};

const ETH_LEN: usize = ethernet::HEADER_LEN;
const TPID_8021Q: u16 = EtherType::Vlan.to_u16();
const ETH_IPV4: u16 = EtherType::Ipv4.to_u16();
const ETH_IPV6: u16 = EtherType::Ipv6.to_u16();
const ETH_ARP: u16 = EtherType::Arp.to_u16();
const ETH_MPLS: u16 = EtherType::Mpls.to_u16();

/// TCP ports of routing and label distribution protocols: BGP (RFC 4271), LDP (RFC 5036).
const ROUTING_TCP_PORTS: [u16; 2] = [179, 646];
/// UDP ports of routing protocols: single-hop BFD control and echo, multihop BFD (RFC 5881,
/// 5883), LDP discovery (RFC 5036), RIP (RFC 2453) and RIPng (RFC 2080).
const ROUTING_UDP_PORTS: [u16; 6] = [3784, 3785, 4784, 646, 520, 521];
/// IP protocols that are routing protocols: OSPF (89), PIM (103), VRRP (112).
const ROUTING_PROTOCOLS: [u8; 3] = [89, 103, 112];
/// IS-IS runs over LLC to these group addresses (ISO 10589: all L1 and all L2 ISes).
const ISIS_MACS: [[u8; 6]; 2] = [
    [0x01, 0x80, 0xc2, 0x00, 0x00, 0x14],
    [0x01, 0x80, 0xc2, 0x00, 0x00, 0x15],
];
/// ICMPv6 types of neighbour discovery (RFC 4861): router solicitation and advertisement,
/// neighbour solicitation and advertisement, redirect.
const ND_TYPES: core::ops::RangeInclusive<u8> = 133..=137;

/// The policing class of a frame the pipeline punted. Routing protocols first, so that a
/// flood of anything else cannot starve a BGP session or BFD.
pub fn punt_class(frame: &[u8]) -> PuntClass {
    let Ok(eth) = ethernet::Frame::new_checked(frame) else {
        return PuntClass::Other;
    };
    if ISIS_MACS.contains(&eth.dst_addr().0) {
        return PuntClass::Routing;
    }
    let (mut ethertype, mut off) = (eth.ethertype_raw(), ETH_LEN);
    if ethertype == TPID_8021Q {
        let Ok(tag) = vlan::Tag::new_checked(eth.payload()) else {
            return PuntClass::Other;
        };
        ethertype = tag.inner_ethertype_raw();
        off += vlan::HEADER_LEN;
    }
    let l3 = match ethertype {
        ETH_ARP => return PuntClass::Resolution,
        ETH_IPV4 | ETH_IPV6 => frame.get(off..).unwrap_or_default(),
        ETH_MPLS => match below_labels(frame.get(off..).unwrap_or_default()) {
            Some(l3) => l3,
            None => return PuntClass::Other,
        },
        _ => return PuntClass::Other,
    };
    match IpVersion::of_packet(l3) {
        Ok(IpVersion::Ipv4) => ipv4_class(l3),
        Ok(IpVersion::Ipv6) => ipv6_class(l3),
        _ => PuntClass::Other,
    }
}

/// What lies below a label stack, if it ends within [`MAX_LABEL_DEPTH`] entries.
fn below_labels(bytes: &[u8]) -> Option<&[u8]> {
    let depth = mpls::stack_depth(bytes, MAX_LABEL_DEPTH).ok()?;
    bytes.get(depth * mpls::HEADER_LEN..)
}

fn ipv4_class(l3: &[u8]) -> PuntClass {
    let Ok(ip) = ipv4::Packet::new_checked(l3) else {
        return PuntClass::Other;
    };
    let proto = ip.next_header();
    if proto == ipv4::protocol::ICMP {
        return PuntClass::Icmp;
    }
    // Only a first fragment carries the ports.
    let ports = if ip.frag_offset() == 0 {
        ip.payload()
    } else {
        &[]
    };
    transport_class(proto, ports)
}

fn ipv6_class(l3: &[u8]) -> PuntClass {
    let Ok(ip) = ipv6::Packet::new_checked(l3) else {
        return PuntClass::Other;
    };
    let proto = ip.next_header();
    if proto == ipv4::protocol::ICMPV6 {
        return match ip.payload().first() {
            Some(t) if ND_TYPES.contains(t) => PuntClass::Resolution,
            _ => PuntClass::Icmp,
        };
    }
    // Extension headers are not walked: a packet with one is policed as `other`.
    transport_class(proto, ip.payload())
}

/// The class of a TCP or UDP segment by its ports (either side, so both the session we
/// opened and the one a peer opened count), or of an IP protocol.
fn transport_class(proto: u8, l4: &[u8]) -> PuntClass {
    let port = |at: usize| l4.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let (src, dst) = (port(0), port(2));
    let known = |list: &[u16]| {
        src.is_some_and(|p| list.contains(&p)) || dst.is_some_and(|p| list.contains(&p))
    };
    let routing = match proto {
        ipv4::protocol::TCP => known(&ROUTING_TCP_PORTS),
        ipv4::protocol::UDP => known(&ROUTING_UDP_PORTS),
        p => ROUTING_PROTOCOLS.contains(&p),
    };
    if routing {
        PuntClass::Routing
    } else {
        PuntClass::Other
    }
}

/// A token bucket's setting: packets per second, and how many may come at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Sustained packets per second (0: the class never reaches the kernel).
    pub per_second: u32,
    /// Bucket depth in packets: a burst this long passes at once.
    pub burst: u32,
}

/// Control-plane policing for one worker: a [`Rate`] per [`PuntClass`], indexed by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicerConfig {
    /// The rate of each class, in [`PuntClass::ALL`] order.
    pub rates: [Rate; PuntClass::COUNT],
    /// The ICMP errors the worker may send (time exceeded, ...): not a punt class, but the
    /// same protection of the router's own work against a flood.
    pub icmp_errors: Rate,
}

impl PolicerConfig {
    /// The defaults, per worker. Routing gets the most: one bulk TCP transfer through the
    /// punt path reached 619 Mbit/s here at ~53k segments per second (1500-byte MTU), so
    /// 100,000/s leaves a BGP session bringing a full table unpoliced, while a flood on the
    /// routing ports still costs the kernel at most that. Resolution (ARP, ND) and ICMP get
    /// what a busy LAN needs; ICMP matches Linux's own 1000/s limit.
    pub const DEFAULT: PolicerConfig = PolicerConfig {
        rates: [
            Rate {
                per_second: 100_000,
                burst: 20_000,
            },
            Rate {
                per_second: 2_000,
                burst: 500,
            },
            Rate {
                per_second: 1_000,
                burst: 200,
            },
            Rate {
                per_second: 10_000,
                burst: 2_000,
            },
        ],
        // Linux's defaults: net.ipv4.icmp_msgs_per_sec 1000, icmp_msgs_burst 50.
        icmp_errors: Rate {
            per_second: 1_000,
            burst: 50,
        },
    };

    /// The rate of `class`.
    pub fn rate(&self, class: PuntClass) -> Rate {
        self.rates[class as usize]
    }
}

impl Default for PolicerConfig {
    fn default() -> Self {
        PolicerConfig::DEFAULT
    }
}

/// One token in the buckets' unit: tokens are kept in nanotokens so that refilling from a
/// nanosecond clock is exact integer arithmetic.
const TOKEN: u64 = 1_000_000_000;
/// Longest gap refilled at once; any longer idle time fills a bucket anyway.
const MAX_GAP_NS: u64 = 10 * TOKEN;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    per_second: u64,
    depth: u64,
    tokens: u64,
    last_ns: u64,
}

impl Bucket {
    fn full(r: Rate) -> Bucket {
        Bucket {
            per_second: u64::from(r.per_second),
            depth: u64::from(r.burst).max(1) * TOKEN,
            tokens: u64::from(r.burst).max(1) * TOKEN,
            last_ns: 0,
        }
    }

    fn refill(&mut self, now_ns: u64) {
        let gap = now_ns.saturating_sub(self.last_ns).min(MAX_GAP_NS);
        self.last_ns = self.last_ns.max(now_ns);
        self.tokens = (self.tokens + gap * self.per_second).min(self.depth);
    }
}

/// Token buckets, one per class, owned by one worker (no sharing, no atomics); and one for
/// the ICMP errors the worker sends.
#[derive(Debug, Clone)]
pub struct Policer {
    buckets: [Bucket; PuntClass::COUNT],
    icmp_errors: Bucket,
    /// The allowance [`Policer::settle_icmp`] handed out last.
    icmp_given: u32,
}

impl Policer {
    /// Full buckets with the given rates.
    pub fn new(config: &PolicerConfig) -> Policer {
        Policer {
            buckets: config.rates.map(Bucket::full),
            icmp_errors: Bucket::full(config.icmp_errors),
            icmp_given: u32::MAX,
        }
    }

    /// Before a batch: takes the ICMP errors the pipeline sent out of `allowance` from the
    /// bucket, refills it (reading the clock through `now_ns` only when the bucket is not
    /// full, so a worker that sends none never does) and sets `allowance` to the whole
    /// tokens left: what the next batch may send.
    #[inline]
    pub fn settle_icmp(&mut self, allowance: &mut IcmpAllowance, now_ns: impl FnOnce() -> u64) {
        let b = &mut self.icmp_errors;
        if b.per_second == 0 {
            // Rate 0: the router sends none.
            self.icmp_given = 0;
            allowance.0 = 0;
            return;
        }
        let used = self.icmp_given.saturating_sub(allowance.0);
        let was_full = b.tokens >= b.depth;
        b.tokens = b.tokens.saturating_sub(u64::from(used) * TOKEN);
        if b.tokens < b.depth {
            let now = now_ns();
            if was_full {
                // Full until the batch that just used it: no credit for the time before.
                b.last_ns = b.last_ns.max(now);
            }
            b.refill(now);
        }
        self.icmp_given = (b.tokens / TOKEN).min(u64::from(u32::MAX)) as u32;
        allowance.0 = self.icmp_given;
    }

    /// Whether a frame of `class` may pass at `now_ns` (a monotonic clock in nanoseconds);
    /// takes its token if so.
    #[inline]
    pub fn allow(&mut self, class: PuntClass, now_ns: u64) -> bool {
        let b = &mut self.buckets[class as usize];
        if b.per_second == 0 {
            return false;
        }
        b.refill(now_ns);
        if b.tokens >= TOKEN {
            b.tokens -= TOKEN;
            true
        } else {
            false
        }
    }
}

/// Where a punted frame goes in the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelPath {
    /// The mirror of the attachment (or core port) it arrived on.
    Attachment(AttachmentId),
    /// A VRF reached through its VPN label from the core: any of the VRF's mirrors (they
    /// share the VRF's namespace, whose kernel owns all its addresses).
    Vrf(VrfId),
}

/// The frame the kernel should receive for `frame`, punted on `port`: written into `out`
/// (cleared first) as untagged Ethernet, with the labels above an IP packet removed. `None`
/// for what has no place in the kernel: a frame that does not parse, a VLAN without an
/// attachment, labels that do not end in IP, or a label that is not ours to pop.
pub fn for_kernel(
    snap: &Snapshot,
    port: PortId,
    frame: &[u8],
    out: &mut Vec<u8>,
) -> Option<KernelPath> {
    out.clear();
    let eth = ethernet::Frame::new_checked(frame).ok()?;
    let (mut ethertype, mut off, mut vid) = (eth.ethertype_raw(), ETH_LEN, 0);
    if ethertype == TPID_8021Q {
        let tag = vlan::Tag::new_checked(eth.payload()).ok()?;
        (vid, ethertype) = (tag.vlan_id_raw(), tag.inner_ethertype_raw());
        off += vlan::HEADER_LEN;
    }
    let attachment = snap.ports().get(usize::from(port.0))?.attachment(vid)?;
    let mut path = KernelPath::Attachment(attachment);
    if ethertype == ETH_MPLS {
        let depth = mpls::stack_depth(frame.get(off..)?, MAX_LABEL_DEPTH).ok()?;
        for _ in 0..depth {
            let entry = mpls::Entry::new_checked(frame.get(off..)?).ok()?;
            match entry.label().get() {
                // Explicit null pops into the global table: the core port's own mirror.
                0 | 2 => {}
                // Router alert: what is below says where the packet is going.
                1 => {}
                label => match snap.ilm().lookup(label)?.action {
                    IlmAction::PopLookup { vrf } => path = KernelPath::Vrf(vrf),
                    IlmAction::Swap { .. } | IlmAction::Pop { .. } => return None,
                },
            }
            off += mpls::HEADER_LEN;
        }
        ethertype = match IpVersion::of_packet(frame.get(off..)?).ok()? {
            IpVersion::Ipv4 => ETH_IPV4,
            IpVersion::Ipv6 => ETH_IPV6,
            IpVersion::Other(_) => return None,
        };
    }
    out.extend_from_slice(frame.get(..12)?);
    out.extend_from_slice(&ethertype.to_be_bytes());
    out.extend_from_slice(frame.get(off..)?);
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icmp_allowance_follows_the_bucket_and_reads_the_clock_only_once_used() {
        let mut config = PolicerConfig::DEFAULT;
        config.icmp_errors = Rate {
            per_second: 1_000,
            burst: 3,
        };
        let mut p = Policer::new(&config);
        let mut a = IcmpAllowance::default();
        p.settle_icmp(&mut a, || panic!("a full bucket needs no clock"));
        assert_eq!(a.0, 3);
        a.0 = 0; // the pipeline sent three
        p.settle_icmp(&mut a, || 1_000_000_000);
        assert_eq!(a.0, 0, "no credit for the time the bucket sat full");
        p.settle_icmp(&mut a, || 1_000_999_999);
        assert_eq!(a.0, 0);
        p.settle_icmp(&mut a, || 1_001_000_000);
        assert_eq!(a.0, 1, "one a millisecond");
        p.settle_icmp(&mut a, || 2_000_000_000);
        assert_eq!(a.0, 3, "never more than the burst");
        config.icmp_errors.per_second = 0;
        let mut off = Policer::new(&config);
        let mut a = IcmpAllowance::default();
        off.settle_icmp(&mut a, || 5_000_000_000);
        assert_eq!(a.0, 0, "rate 0: none at all");
    }

    fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0x02, 0, 0, 0, 1, 2, 0x02, 0, 0, 0, 0xaa, 1];
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    fn ipv4(proto: u8, l4: &[u8]) -> Vec<u8> {
        let total = (20 + l4.len()) as u16;
        let mut p = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, proto, 0, 0];
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&[198, 18, 10, 10, 198, 18, 10, 1]);
        let mut ip = ipv4::Packet::new_unchecked(&mut p[..]);
        ip.fill_checksum();
        p.extend_from_slice(l4);
        p
    }

    fn ports(src: u16, dst: u16) -> Vec<u8> {
        let mut l4 = src.to_be_bytes().to_vec();
        l4.extend_from_slice(&dst.to_be_bytes());
        l4.extend_from_slice(&[0; 16]);
        l4
    }

    #[test]
    fn classes() {
        let bgp_in = eth(ETH_IPV4, &ipv4(6, &ports(40000, 179)));
        let bgp_out = eth(ETH_IPV4, &ipv4(6, &ports(179, 40000)));
        let bfd = eth(ETH_IPV4, &ipv4(17, &ports(49152, 3784)));
        let ssh = eth(ETH_IPV4, &ipv4(6, &ports(40000, 22)));
        let ping = eth(ETH_IPV4, &ipv4(1, &[8, 0, 0, 0]));
        let ospf = eth(ETH_IPV4, &ipv4(89, &[2, 1]));
        let arp = eth(ETH_ARP, &[0; 28]);
        assert_eq!(punt_class(&bgp_in), PuntClass::Routing);
        assert_eq!(punt_class(&bgp_out), PuntClass::Routing);
        assert_eq!(punt_class(&bfd), PuntClass::Routing);
        assert_eq!(punt_class(&ospf), PuntClass::Routing);
        assert_eq!(punt_class(&ssh), PuntClass::Other);
        assert_eq!(punt_class(&ping), PuntClass::Icmp);
        assert_eq!(punt_class(&arp), PuntClass::Resolution);
        assert_eq!(punt_class(&[1, 2, 3]), PuntClass::Other);
    }

    #[test]
    fn classes_under_a_tag_and_labels() {
        let bgp = ipv4(6, &ports(40000, 179));
        let mut tagged = vec![0x00, 0x65];
        tagged.extend_from_slice(&ETH_IPV4.to_be_bytes());
        tagged.extend_from_slice(&bgp);
        assert_eq!(punt_class(&eth(TPID_8021Q, &tagged)), PuntClass::Routing);
        let mut labelled = mpls::encode(0, 0, true, 64).to_be_bytes().to_vec();
        labelled.extend_from_slice(&bgp);
        assert_eq!(punt_class(&eth(ETH_MPLS, &labelled)), PuntClass::Routing);
    }

    #[test]
    fn ipv6_nd_and_echo() {
        let mut ns = vec![0x60, 0, 0, 0, 0, 24, 58, 255];
        ns.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        ns.extend_from_slice(&[0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 1]);
        let mut echo = ns.clone();
        ns.extend_from_slice(&[135, 0, 0, 0, 0, 0, 0, 0]);
        ns.extend_from_slice(&[0; 16]);
        echo.extend_from_slice(&[128, 0, 0, 0, 0, 0, 0, 0]);
        echo.extend_from_slice(&[0; 16]);
        assert_eq!(punt_class(&eth(ETH_IPV6, &ns)), PuntClass::Resolution);
        assert_eq!(punt_class(&eth(ETH_IPV6, &echo)), PuntClass::Icmp);
    }

    #[test]
    fn a_non_first_fragment_is_other() {
        let mut p = ipv4(6, &ports(40000, 179));
        p[6] = 0x00;
        p[7] = 0x10;
        let mut ip = ipv4::Packet::new_unchecked(&mut p[..]);
        ip.fill_checksum();
        assert_eq!(punt_class(&eth(ETH_IPV4, &p)), PuntClass::Other);
    }

    #[test]
    fn buckets_pass_a_burst_then_the_rate() {
        let mut rates = PolicerConfig::DEFAULT;
        rates.rates[PuntClass::Other as usize] = Rate {
            per_second: 1000,
            burst: 10,
        };
        rates.rates[PuntClass::Icmp as usize] = Rate {
            per_second: 0,
            burst: 10,
        };
        let mut p = Policer::new(&rates);
        let t0 = 5 * TOKEN;
        let passed = (0..100).filter(|_| p.allow(PuntClass::Other, t0)).count();
        assert_eq!(passed, 10, "the burst, then nothing at the same instant");
        // 1000/s: one token per millisecond.
        assert!(!p.allow(PuntClass::Other, t0 + 999_999));
        assert!(p.allow(PuntClass::Other, t0 + 1_000_000));
        // Over one second at most the rate passes (plus what the bucket held).
        let mut n = 0;
        for i in 0..100_000u64 {
            if p.allow(PuntClass::Other, t0 + 1_000_000 + i * 10_000) {
                n += 1;
            }
        }
        assert!((999..=1001).contains(&n), "{n} passed in one second");
        // Classes are independent, and a rate of 0 passes nothing.
        assert!(p.allow(PuntClass::Routing, t0));
        assert!(!p.allow(PuntClass::Icmp, t0));
        // A clock that goes back does not mint tokens.
        let mut q = Policer::new(&rates);
        for _ in 0..10 {
            q.allow(PuntClass::Other, t0);
        }
        assert!(!q.allow(PuntClass::Other, t0 - TOKEN));
        assert!(!q.allow(PuntClass::Other, t0));
    }
}

//! Frame templates for the packet generator (`xpe gen`): Ethernet, up to two VLAN tags, an
//! optional MPLS label stack, IPv4 or IPv6, UDP and a payload padded to the asked size, plus
//! the per-flow variants the generator's XDP program writes over every frame.
//!
//! Flow `f` (0-based) adds `f` to the fields its template's [`Vary`] names: the source
//! address, the destination address (IPv4: the whole address, IPv6: its low 32 bits, both
//! wrapping), the UDP source and destination ports (wrapping). By default the source and the
//! ports, so ECMP hashes and RSS spread the flows; varying the destination spreads them over a
//! route table instead (an LPM lookup that is not one cached result). Each flow's head (every
//! header, up to the end of UDP) is computed here once, with its IPv4 header checksum and its
//! UDP checksum, which covers the payload: the payload is the same in every flow, so its sum
//! is taken once.
//!
//! Pure bytes: no I/O, no unsafe. The XDP side is `lab/ebpf/src/gen.rs`, the loader
//! [`crate::bpf::gen`].

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use xpe_dataplane::wire::checksum;
use xpe_dataplane::wire::ethernet::{self, EtherType, MacAddr};
use xpe_dataplane::wire::ipv4::{self, protocol};
use xpe_dataplane::wire::ipv6;
use xpe_dataplane::wire::mpls::{self, Label, LabelEntry, Tc};
use xpe_dataplane::wire::vlan::{self, tci, Pcp, VlanId};

pub use xpe_lab_ebpf::GEN_HEAD_MAX as HEAD_MAX;

/// The smallest frame (bytes, without the FCS): Ethernet's minimum.
pub const MIN_FRAME: usize = 60;
/// The largest frame (bytes, without the FCS) a template may have.
pub const MAX_FRAME: usize = 9000;
/// VLAN tags a template may carry (one 802.1Q tag, or an 802.1ad S-tag and a C-tag).
pub const MAX_TAGS: usize = 2;
/// Labels a template's MPLS stack may carry.
pub const MAX_LABELS: usize = 16;
/// Flows a template may have.
pub const MAX_FLOWS: u32 = 65536;
/// Length of a UDP header.
pub const UDP_HEADER_LEN: usize = 8;

// The longest header stack must fit in a head.
const _: () = assert!(
    ethernet::HEADER_LEN
        + MAX_TAGS * vlan::HEADER_LEN
        + MAX_LABELS * mpls::HEADER_LEN
        + ipv6::HEADER_LEN
        + UDP_HEADER_LEN
        <= HEAD_MAX
);

/// One VLAN tag of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag {
    /// VLAN id.
    pub vid: VlanId,
    /// 802.1p priority.
    pub pcp: Pcp,
}

/// One entry of a template's label stack (the bottom-of-stack bit is set on the last).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabelSpec {
    /// The label.
    pub label: Label,
    /// Traffic class.
    pub tc: Tc,
    /// Label TTL.
    pub ttl: u8,
}

/// Which fields flow `f` adds `f` to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vary {
    /// The source address.
    pub src: bool,
    /// The destination address.
    pub dst: bool,
    /// Both UDP ports.
    pub ports: bool,
}

impl Default for Vary {
    /// The source address and the ports.
    fn default() -> Self {
        Vary {
            src: true,
            dst: false,
            ports: true,
        }
    }
}

impl fmt::Display for Vary {
    /// The fields varied, comma separated, in the order `src,dst,ports` (`none` for none).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = [(self.src, "src"), (self.dst, "dst"), (self.ports, "ports")]
            .into_iter()
            .filter_map(|(on, name)| on.then_some(name))
            .collect();
        if names.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&names.join(","))
        }
    }
}

/// What a template is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// Ethernet source.
    pub src_mac: MacAddr,
    /// Ethernet destination.
    pub dst_mac: MacAddr,
    /// VLAN tags, outermost first: one is 802.1Q (TPID 0x8100); with two, the outer is an
    /// 802.1ad S-tag (TPID 0x88a8).
    pub tags: Vec<Tag>,
    /// MPLS label stack, outermost first; empty for plain IP.
    pub labels: Vec<LabelSpec>,
    /// Source address of flow 0 (its family decides IPv4 or IPv6).
    pub src: IpAddr,
    /// Destination address of flow 0 (same family as `src`).
    pub dst: IpAddr,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// UDP source port of flow 0.
    pub sport: u16,
    /// UDP destination port of flow 0.
    pub dport: u16,
    /// Frame length in bytes without the FCS.
    pub size: usize,
    /// Number of flows, 1..=[`MAX_FLOWS`].
    pub flows: u32,
    /// Which fields the flows vary.
    pub vary: Vary,
}

/// Why a [`Spec`] cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The frame is shorter than its headers or than Ethernet's minimum.
    #[error("a frame of {size} bytes is too short: {layout} need at least {min} bytes")]
    TooSmall {
        /// The size asked for.
        size: usize,
        /// The smallest size that works.
        min: usize,
        /// The headers, e.g. "Ethernet 14 + MPLS 8 + IPv6 40 + UDP 8".
        layout: String,
    },
    /// The frame is longer than [`MAX_FRAME`].
    #[error("a frame of {size} bytes is too long: the largest is {MAX_FRAME}")]
    TooLarge {
        /// The size asked for.
        size: usize,
    },
    /// More than [`MAX_TAGS`] VLAN tags.
    #[error("{0} VLAN tags: a template has at most {MAX_TAGS}")]
    TooManyTags(usize),
    /// More than [`MAX_LABELS`] labels.
    #[error("{0} labels: a template has at most {MAX_LABELS}")]
    TooManyLabels(usize),
    /// Source and destination of different families.
    #[error("the source {src} and destination {dst} are not of the same IP version")]
    MixedFamilies {
        /// Source.
        src: IpAddr,
        /// Destination.
        dst: IpAddr,
    },
    /// A flow count of 0 or above [`MAX_FLOWS`].
    #[error("{0} flows: a template has 1 to {MAX_FLOWS}")]
    Flows(u32),
}

/// Where the headers of a template start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    /// Offset of the IP header.
    l3: usize,
    /// Offset of the UDP header.
    l4: usize,
    /// Offset of the payload: the length of every header together.
    payload: usize,
}

/// A built template: flow 0's whole frame and what is needed to derive every other flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    spec: Spec,
    frame: Vec<u8>,
    layout: Layout,
    /// The payload's unfolded checksum sum, the same in every flow.
    payload_sum: u32,
}

impl Template {
    /// Builds the template; every limit of [`Spec`] is checked here.
    pub fn build(spec: &Spec) -> Result<Template, TemplateError> {
        if spec.tags.len() > MAX_TAGS {
            return Err(TemplateError::TooManyTags(spec.tags.len()));
        }
        if spec.labels.len() > MAX_LABELS {
            return Err(TemplateError::TooManyLabels(spec.labels.len()));
        }
        if spec.flows == 0 || spec.flows > MAX_FLOWS {
            return Err(TemplateError::Flows(spec.flows));
        }
        let v6 = match (spec.src, spec.dst) {
            (IpAddr::V4(_), IpAddr::V4(_)) => false,
            (IpAddr::V6(_), IpAddr::V6(_)) => true,
            (src, dst) => return Err(TemplateError::MixedFamilies { src, dst }),
        };
        let l3 = ethernet::HEADER_LEN
            + spec.tags.len() * vlan::HEADER_LEN
            + spec.labels.len() * mpls::HEADER_LEN;
        let l4 = l3
            + if v6 {
                ipv6::HEADER_LEN
            } else {
                ipv4::HEADER_LEN
            };
        let layout = Layout {
            l3,
            l4,
            payload: l4 + UDP_HEADER_LEN,
        };
        let min = layout.payload.max(MIN_FRAME);
        if spec.size < min {
            return Err(TemplateError::TooSmall {
                size: spec.size,
                min,
                layout: describe_headers(spec, v6),
            });
        }
        if spec.size > MAX_FRAME {
            return Err(TemplateError::TooLarge { size: spec.size });
        }

        let mut frame = vec![0u8; spec.size];
        write_l2(spec, v6, &mut frame);
        // A recognisable payload (its offset, modulo 256) rather than zeros: a receiver can
        // tell a frame that arrived whole from one a device truncated or overwrote.
        for (i, b) in frame[layout.payload..].iter_mut().enumerate() {
            *b = i as u8;
        }
        let payload_sum = checksum::sum(&frame[layout.payload..]);
        let l3_len = spec.size - layout.l3;
        if v6 {
            let mut ip = ipv6::Packet::new_unchecked(&mut frame[layout.l3..layout.l4]);
            ip.set_version(6);
            ip.set_traffic_class(0);
            ip.set_flow_label(0);
            // At most 9000 - 54: fits.
            ip.set_payload_len((l3_len - ipv6::HEADER_LEN) as u16);
            ip.set_next_header(protocol::UDP);
            ip.set_hop_limit(spec.ttl);
        } else {
            let mut ip = ipv4::Packet::new_unchecked(&mut frame[layout.l3..layout.l4]);
            ip.set_version(4);
            ip.set_header_len(ipv4::HEADER_LEN);
            ip.set_tos(0);
            ip.set_total_len(l3_len as u16);
            ip.set_ident(0);
            ip.set_ttl(spec.ttl);
            ip.set_next_header(protocol::UDP);
        }
        let udp_len = (spec.size - layout.l4) as u16;
        frame[layout.l4 + 4..layout.l4 + 6].copy_from_slice(&udp_len.to_be_bytes());
        let mut template = Template {
            spec: spec.clone(),
            frame,
            layout,
            payload_sum,
        };
        let mut head = [0u8; HEAD_MAX];
        template.write_head(0, &mut head);
        let n = template.layout.payload;
        template.frame[..n].copy_from_slice(&head[..n]);
        Ok(template)
    }

    /// Flow 0's whole frame: the data the generator's page pool starts from.
    pub fn frame(&self) -> &[u8] {
        &self.frame
    }

    /// What the template was built from.
    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// Bytes of headers (Ethernet up to the end of UDP): how much of a head is written over
    /// every frame.
    pub fn header_len(&self) -> usize {
        self.layout.payload
    }

    /// Offset of the IP header.
    pub fn l3_offset(&self) -> usize {
        self.layout.l3
    }

    /// Offset of the UDP header.
    pub fn l4_offset(&self) -> usize {
        self.layout.l4
    }

    /// Whether the template is IPv6.
    pub fn is_ipv6(&self) -> bool {
        self.spec.src.is_ipv6()
    }

    /// The headers and payload with their lengths, e.g.
    /// "Ethernet 14 + 802.1Q 4 + IPv4 20 + UDP 8 + payload 18".
    pub fn describe(&self) -> String {
        format!(
            "{} + payload {}",
            describe_headers(&self.spec, self.is_ipv6()),
            self.spec.size - self.layout.payload
        )
    }

    /// The source address of flow `flow`.
    pub fn flow_src(&self, flow: u32) -> IpAddr {
        add_to_address(self.spec.src, if self.spec.vary.src { flow } else { 0 })
    }

    /// The destination address of flow `flow`.
    pub fn flow_dst(&self, flow: u32) -> IpAddr {
        add_to_address(self.spec.dst, if self.spec.vary.dst { flow } else { 0 })
    }

    /// The UDP (source, destination) ports of flow `flow`.
    pub fn flow_ports(&self, flow: u32) -> (u16, u16) {
        // Flows wrap the 16-bit ports; truncating the flow number is that wrap.
        let f = if self.spec.vary.ports { flow as u16 } else { 0 };
        (
            self.spec.sport.wrapping_add(f),
            self.spec.dport.wrapping_add(f),
        )
    }

    /// Writes flow `flow`'s head into `head`: the first [`Template::header_len`] bytes of its
    /// frame, checksums included; the rest of `head` is zeroed.
    pub fn write_head(&self, flow: u32, head: &mut [u8; HEAD_MAX]) {
        let Layout { l3, l4, payload } = self.layout;
        head.fill(0);
        head[..payload].copy_from_slice(&self.frame[..payload]);
        let (sport, dport) = self.flow_ports(flow);
        let udp = &mut head[l4..payload];
        udp[0..2].copy_from_slice(&sport.to_be_bytes());
        udp[2..4].copy_from_slice(&dport.to_be_bytes());
        udp[6..8].copy_from_slice(&[0, 0]);
        let udp_len = u32::from(u16::from_be_bytes([udp[4], udp[5]]));
        // The pseudo-header (RFC 768; RFC 8200 §8.1 for IPv6) sums the same words in either
        // order; a u32 holds every sum here (at most a few thousand 16-bit words).
        let pseudo = match (self.flow_src(flow), self.flow_dst(flow)) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                let mut ip = ipv4::Packet::new_unchecked(&mut head[l3..l4]);
                ip.set_src_addr(src);
                ip.set_dst_addr(dst);
                ip.fill_checksum();
                checksum::sum(&src.octets())
                    + checksum::sum(&dst.octets())
                    + u32::from(protocol::UDP)
                    + udp_len
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                let mut ip = ipv6::Packet::new_unchecked(&mut head[l3..l4]);
                ip.set_src_addr(src);
                ip.set_dst_addr(dst);
                checksum::sum(&src.octets())
                    + checksum::sum(&dst.octets())
                    + u32::from(protocol::UDP)
                    + udp_len
            }
            // `build` refused mixed families.
            _ => 0,
        };
        let sum = pseudo + checksum::sum(&head[l4..payload]) + self.payload_sum;
        // A computed checksum of zero goes out as all ones: zero means "no checksum" in IPv4
        // and is invalid in IPv6 (RFC 768, RFC 8200 §8.1).
        let ck = match checksum::fold(sum) {
            0 => 0xffff,
            ck => ck,
        };
        head[l4 + 6..payload].copy_from_slice(&ck.to_be_bytes());
    }

    /// Flow `flow`'s whole frame (its head over the template's payload).
    pub fn flow_frame(&self, flow: u32) -> Vec<u8> {
        let mut head = [0u8; HEAD_MAX];
        self.write_head(flow, &mut head);
        let mut frame = self.frame.clone();
        let n = self.layout.payload;
        frame[..n].copy_from_slice(&head[..n]);
        frame
    }
}

/// `addr` + `n`: IPv4 as one 32-bit number, IPv6 in its low 32 bits only (the prefix stays),
/// both wrapping.
fn add_to_address(addr: IpAddr, n: u32) -> IpAddr {
    match addr {
        IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a).wrapping_add(n))),
        IpAddr::V6(a) => {
            let mut o = a.octets();
            let low = u32::from_be_bytes([o[12], o[13], o[14], o[15]]).wrapping_add(n);
            o[12..].copy_from_slice(&low.to_be_bytes());
            IpAddr::V6(Ipv6Addr::from(o))
        }
    }
}

/// Ethernet, the tags and the label stack.
fn write_l2(spec: &Spec, v6: bool, frame: &mut [u8]) {
    let mut eth = ethernet::Frame::new_unchecked(&mut *frame);
    eth.set_dst_addr(spec.dst_mac);
    eth.set_src_addr(spec.src_mac);
    let payload_type = match (spec.labels.is_empty(), v6) {
        (false, _) => EtherType::Mpls,
        (true, false) => EtherType::Ipv4,
        (true, true) => EtherType::Ipv6,
    };
    // Each type field names what follows it: the first tag's TPID is the frame's EtherType.
    let tpids: &[EtherType] = match spec.tags.len() {
        0 => &[],
        1 => &[EtherType::Vlan],
        _ => &[EtherType::QinQ, EtherType::Vlan],
    };
    eth.set_ethertype(tpids.first().copied().unwrap_or(payload_type));
    let mut at = ethernet::HEADER_LEN;
    for (i, t) in spec.tags.iter().enumerate() {
        let mut tag = vlan::Tag::new_unchecked(&mut frame[at..at + vlan::HEADER_LEN]);
        tag.set_tci(tci(t.pcp, false, t.vid));
        tag.set_inner_ethertype(tpids.get(i + 1).copied().unwrap_or(payload_type));
        at += vlan::HEADER_LEN;
    }
    let last = spec.labels.len().saturating_sub(1);
    for (i, l) in spec.labels.iter().enumerate() {
        let entry = LabelEntry {
            label: l.label,
            tc: l.tc,
            bos: i == last,
            ttl: l.ttl,
        };
        frame[at..at + mpls::HEADER_LEN].copy_from_slice(&entry.to_be_bytes());
        at += mpls::HEADER_LEN;
    }
}

/// "Ethernet 14 + 802.1ad 4 + 802.1Q 4 + MPLS 8 + IPv6 40 + UDP 8".
fn describe_headers(spec: &Spec, v6: bool) -> String {
    let mut parts = vec![format!("Ethernet {}", ethernet::HEADER_LEN)];
    match spec.tags.len() {
        0 => {}
        1 => parts.push(format!("802.1Q {}", vlan::HEADER_LEN)),
        n => {
            parts.push(format!("802.1ad {}", vlan::HEADER_LEN));
            parts.push(format!("802.1Q {}", (n - 1) * vlan::HEADER_LEN));
        }
    }
    if !spec.labels.is_empty() {
        parts.push(format!("MPLS {}", spec.labels.len() * mpls::HEADER_LEN));
    }
    parts.push(if v6 {
        format!("IPv6 {}", ipv6::HEADER_LEN)
    } else {
        format!("IPv4 {}", ipv4::HEADER_LEN)
    });
    parts.push(format!("UDP {UDP_HEADER_LEN}"));
    parts.join(" + ")
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.vid, self.pcp)
    }
}

impl fmt::Display for LabelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.label, self.tc, self.ttl)
    }
}

#[cfg(test)]
mod tests;

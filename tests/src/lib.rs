//! Helpers for the integration tests: frame builders, capture writers, tshark decoding.
//!
//! A test builds frames (etherparse for Ethernet/802.1Q/IP/UDP/ICMP, hand-encoded MPLS label
//! entries and ARP), writes them into a pcapng whose interface blocks name the ingress ports,
//! runs `xpe replay` in-process through [`xpe_control::cli::run`], then decodes what came out
//! with tshark, a decoder we did not write, and compares exact field values. The counters
//! `replay` prints are parsed into a [`Report`] so tests can assert them exactly too.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use etherparse::{
    IpHeaders, IpNumber, Ipv4Dscp, Ipv4Header, Ipv6FlowLabel, Ipv6Header, PacketBuilder,
    PacketBuilderStep, SingleVlanHeader, VlanHeader, VlanId, VlanPcp,
};
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::{Block, PcapNgReader, PcapNgWriter};
use pcap_file::DataLink;

/// core0's MAC in examples/dx-pe.toml.
pub const CORE0_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x01, 0x01];
/// dx0's MAC in examples/dx-pe.toml.
pub const DX0_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x01, 0x02];
/// The core neighbour 198.18.0.2 behind core0.
pub const CORE_PEER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x02, 0x01];
/// The vpc-a neighbour 169.254.10.2 on dx0 VLAN 101.
pub const VPC_A_PEER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xaa, 0x01];
/// The vpc-b neighbour 169.254.10.2 on dx0 VLAN 102.
pub const VPC_B_PEER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xbb, 0x01];
/// A MAC that belongs to nobody in the configs.
pub const STRANGER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xee, 0xee];
/// The Ethernet broadcast address.
pub const BROADCAST: [u8; 6] = [0xff; 6];

/// EtherType of 802.1Q tags.
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// EtherType of 802.1ad (QinQ) service tags.
pub const ETHERTYPE_QINQ: u16 = 0x88a8;
/// EtherType of MPLS unicast.
pub const ETHERTYPE_MPLS: u16 = 0x8847;
/// EtherType of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;

/// The path of examples/dx-pe.toml.
pub fn example_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/dx-pe.toml")
}

/// The path of tests/configs/`name`.toml.
pub fn test_config(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("configs")
        .join(format!("{name}.toml"));
    assert!(p.exists(), "missing test config {}", p.display());
    p
}

/// A directory under the system temp dir, removed with everything in it on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new, empty, uniquely named directory.
    pub fn new() -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let name = format!(
            "xpe-tests-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let p = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
    /// Writes `text` to a file in the directory and returns its path.
    pub fn write(&self, name: &str, text: impl AsRef<[u8]>) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).expect("write temp file");
        p
    }
}

impl Default for TempDir {
    fn default() -> Self {
        TempDir::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Best effort: a leftover temp dir must not turn a passing test into a failure.
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            eprintln!("cannot remove {}: {e}", self.0.display());
        }
    }
}

// ---------------------------------------------------------------------------------------
// Frames
// ---------------------------------------------------------------------------------------

/// The Ethernet (and optional 802.1Q) header of a test frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Eth {
    /// Source MAC.
    pub src: [u8; 6],
    /// Destination MAC.
    pub dst: [u8; 6],
    /// VLAN id and PCP of a single 802.1Q tag.
    pub vlan: Option<(u16, u8)>,
}

impl Eth {
    /// From the VLAN's customer neighbour to dx0 (VLAN 101: vpc-a, 102: vpc-b), PCP 0.
    pub fn dx0(vlan: u16) -> Eth {
        let src = match vlan {
            101 => VPC_A_PEER_MAC,
            102 => VPC_B_PEER_MAC,
            _ => STRANGER_MAC,
        };
        Eth {
            src,
            dst: DX0_MAC,
            vlan: Some((vlan, 0)),
        }
    }
    /// From the core neighbour to core0, untagged.
    pub fn core0() -> Eth {
        Eth {
            src: CORE_PEER_MAC,
            dst: CORE0_MAC,
            vlan: None,
        }
    }
    /// What xpe sends to the core neighbour: core0 -> 02:00:00:00:02:01, untagged.
    pub fn core0_out() -> Eth {
        Eth {
            src: CORE0_MAC,
            dst: CORE_PEER_MAC,
            vlan: None,
        }
    }
    /// What xpe sends to the VLAN's customer neighbour: dx0 -> neighbour, tagged with `pcp`.
    pub fn dx0_out(vlan: u16, pcp: u8) -> Eth {
        Eth {
            src: DX0_MAC,
            dst: Eth::dx0(vlan).src,
            vlan: Some((vlan, pcp)),
        }
    }
    /// The same header with another destination MAC.
    pub fn to(self, dst: [u8; 6]) -> Eth {
        Eth { dst, ..self }
    }
    /// The same header untagged.
    pub fn untagged(self) -> Eth {
        Eth { vlan: None, ..self }
    }
    /// The Ethernet header bytes (with the tag, if any) ending in `ethertype`.
    pub fn header(&self, ethertype: u16) -> Vec<u8> {
        let mut h = Vec::with_capacity(18);
        h.extend_from_slice(&self.dst);
        h.extend_from_slice(&self.src);
        if let Some((vid, pcp)) = self.vlan {
            h.extend_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
            h.extend_from_slice(&(u16::from(pcp) << 13 | vid).to_be_bytes());
        }
        h.extend_from_slice(&ethertype.to_be_bytes());
        h
    }
    /// A whole frame: this header, `ethertype`, then `payload` as is.
    pub fn frame(&self, ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = self.header(ethertype);
        f.extend_from_slice(payload);
        f
    }
    /// etherparse's builder with this link header.
    fn builder(&self) -> Builder {
        let step = PacketBuilder::ethernet2(self.src, self.dst);
        match self.vlan {
            None => Builder::Untagged(step),
            Some((vid, pcp)) => Builder::Tagged(step.vlan(VlanHeader::Single(SingleVlanHeader {
                pcp: VlanPcp::try_new(pcp).expect("PCP is 3 bits"),
                drop_eligible_indicator: false,
                vlan_id: VlanId::try_new(vid).expect("VLAN id is 12 bits"),
                ether_type: etherparse::EtherType(0),
            }))),
        }
    }
}

/// etherparse's builder after the link layer, tagged or not (they are different types).
enum Builder {
    Untagged(PacketBuilderStep<etherparse::Ethernet2Header>),
    Tagged(PacketBuilderStep<VlanHeader>),
}

impl Builder {
    /// Adds the IP header.
    fn ip(self, ip: IpHeaders) -> PacketBuilderStep<IpHeaders> {
        match self {
            Builder::Untagged(b) => b.ip(ip),
            Builder::Tagged(b) => b.ip(ip),
        }
    }
}

/// A payload of `len` bytes counting up from 0 (easy to spot in a hex dump).
pub fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| i as u8).collect()
}

/// An IPv4 packet to build: addresses, TTL, DSCP and the transport payload length.
#[derive(Debug, Clone, Copy)]
pub struct V4 {
    /// The link header.
    pub eth: Eth,
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Time to live.
    pub ttl: u8,
    /// DSCP (6 bits); the IP precedence is `dscp >> 3`.
    pub dscp: u8,
    /// Bytes after the UDP or ICMP header.
    pub payload: usize,
}

impl V4 {
    /// An IPv4 packet from `src` to `dst` with TTL 64, DSCP 0 and 18 payload bytes.
    pub fn new(eth: Eth, src: &str, dst: &str) -> V4 {
        V4 {
            eth,
            src: src.parse().expect("IPv4 source"),
            dst: dst.parse().expect("IPv4 destination"),
            ttl: 64,
            dscp: 0,
            payload: 18,
        }
    }
    /// With this TTL.
    pub fn ttl(self, ttl: u8) -> V4 {
        V4 { ttl, ..self }
    }
    /// With this DSCP.
    pub fn dscp(self, dscp: u8) -> V4 {
        V4 { dscp, ..self }
    }
    /// With this many payload bytes after the transport header.
    pub fn payload(self, payload: usize) -> V4 {
        V4 { payload, ..self }
    }
    /// With the payload sized so the IPv4 total length is `len` (>= 28; UDP and ICMP echo
    /// headers are both 8 bytes).
    pub fn total_len(self, len: usize) -> V4 {
        V4 {
            payload: len - 28,
            ..self
        }
    }
    /// The IPv4 header (lengths, protocol and checksum are filled in by the builder).
    fn header(&self) -> IpHeaders {
        let mut h = Ipv4Header::new(
            0,
            self.ttl,
            IpNumber::UDP,
            self.src.octets(),
            self.dst.octets(),
        )
        .expect("IPv4 header");
        h.dscp = Ipv4Dscp::try_new(self.dscp).expect("DSCP is 6 bits");
        IpHeaders::Ipv4(h, Default::default())
    }
    /// Ethernet + IPv4 + UDP 49152 -> 4789.
    pub fn udp(&self) -> Vec<u8> {
        let b = self.eth.builder().ip(self.header()).udp(49152, 4789);
        let mut out = Vec::new();
        b.write(&mut out, &payload(self.payload))
            .expect("build UDP frame");
        out
    }
    /// Ethernet + IPv4 + ICMP echo request, id 0x1234, seq 1.
    pub fn echo_request(&self) -> Vec<u8> {
        let b = self
            .eth
            .builder()
            .ip(self.header())
            .icmpv4_echo_request(0x1234, 1);
        let mut out = Vec::new();
        b.write(&mut out, &payload(self.payload))
            .expect("build ICMP frame");
        out
    }
    /// Ethernet + IPv4 + ICMP echo reply, id 0x1234, seq 1 (what a request above answers).
    pub fn echo_reply(&self) -> Vec<u8> {
        let b = self
            .eth
            .builder()
            .ip(self.header())
            .icmpv4_echo_reply(0x1234, 1);
        let mut out = Vec::new();
        b.write(&mut out, &payload(self.payload))
            .expect("build ICMP frame");
        out
    }
}

/// An IPv6 packet to build.
#[derive(Debug, Clone, Copy)]
pub struct V6 {
    /// The link header.
    pub eth: Eth,
    /// Source address.
    pub src: Ipv6Addr,
    /// Destination address.
    pub dst: Ipv6Addr,
    /// Hop limit.
    pub hop_limit: u8,
    /// Traffic class (8 bits); its top 3 bits are the precedence.
    pub traffic_class: u8,
}

impl V6 {
    /// An IPv6 packet with hop limit 64 and traffic class 0.
    pub fn new(eth: Eth, src: &str, dst: &str) -> V6 {
        V6 {
            eth,
            src: src.parse().expect("IPv6 source"),
            dst: dst.parse().expect("IPv6 destination"),
            hop_limit: 64,
            traffic_class: 0,
        }
    }
    /// With this hop limit.
    pub fn hop_limit(self, hop_limit: u8) -> V6 {
        V6 { hop_limit, ..self }
    }
    /// With this traffic class.
    pub fn traffic_class(self, traffic_class: u8) -> V6 {
        V6 {
            traffic_class,
            ..self
        }
    }
    /// The IPv6 header etherparse builds from, with `next_header`.
    fn ipv6_header(&self, next_header: IpNumber) -> Ipv6Header {
        Ipv6Header {
            traffic_class: self.traffic_class,
            flow_label: Ipv6FlowLabel::ZERO,
            payload_length: 0,
            next_header,
            hop_limit: self.hop_limit,
            source: self.src.octets(),
            destination: self.dst.octets(),
        }
    }
    /// Ethernet + IPv6 + an ICMPv6 message: `msg_type`, `code`, the 4 bytes after the
    /// checksum, then `body`; etherparse fills in the checksum.
    pub fn icmp6(&self, msg_type: u8, code: u8, bytes5to8: [u8; 4], body: &[u8]) -> Vec<u8> {
        let h = self.ipv6_header(IpNumber::IPV6_ICMP);
        let b = self
            .eth
            .builder()
            .ip(IpHeaders::Ipv6(h, Default::default()))
            .icmpv6(etherparse::Icmpv6Type::Unknown {
                type_u8: msg_type,
                code_u8: code,
                bytes5to8,
            });
        let mut out = Vec::new();
        b.write(&mut out, body).expect("build ICMPv6 frame");
        out
    }
    /// A neighbour solicitation (RFC 4861 §4.3) for `target`, with a source link-layer
    /// address option carrying `option` if given.
    pub fn solicitation(&self, target: &str, option: Option<[u8; 6]>) -> Vec<u8> {
        let target: Ipv6Addr = target.parse().expect("IPv6 target");
        let mut body = target.octets().to_vec();
        if let Some(mac) = option {
            body.extend_from_slice(&[1, 1]);
            body.extend_from_slice(&mac);
        }
        self.icmp6(135, 0, [0; 4], &body)
    }
    /// A neighbour advertisement (RFC 4861 §4.4) for `target` with `flags` (R 0x80, S 0x40,
    /// O 0x20), with a target link-layer address option carrying `option` if given.
    pub fn advertisement(&self, target: &str, flags: u8, option: Option<[u8; 6]>) -> Vec<u8> {
        let target: Ipv6Addr = target.parse().expect("IPv6 target");
        let mut body = target.octets().to_vec();
        if let Some(mac) = option {
            body.extend_from_slice(&[2, 1]);
            body.extend_from_slice(&mac);
        }
        self.icmp6(136, 0, [flags, 0, 0, 0], &body)
    }
    /// Ethernet + IPv6 + ICMPv6 echo request, identifier 0x0b0b, sequence `seq`, 32 bytes.
    pub fn echo_request(&self, seq: u16) -> Vec<u8> {
        self.icmp6(
            128,
            0,
            [0x0b, 0x0b, (seq >> 8) as u8, seq as u8],
            &payload(32),
        )
    }
    /// Ethernet + IPv6 + UDP 49152 -> 4789 with 18 payload bytes.
    pub fn udp(&self) -> Vec<u8> {
        let h = Ipv6Header {
            traffic_class: self.traffic_class,
            flow_label: Ipv6FlowLabel::ZERO,
            payload_length: 0,
            next_header: IpNumber::UDP,
            hop_limit: self.hop_limit,
            source: self.src.octets(),
            destination: self.dst.octets(),
        };
        let b = self
            .eth
            .builder()
            .ip(IpHeaders::Ipv6(h, Default::default()))
            .udp(49152, 4789);
        let mut out = Vec::new();
        b.write(&mut out, &payload(18)).expect("build IPv6 frame");
        out
    }
}

/// One MPLS label stack entry: label (20 bits), TC (3), bottom of stack, TTL (RFC 3032 §2.1).
pub fn lse(label: u32, tc: u8, bos: bool, ttl: u8) -> u32 {
    assert!(
        label < 1 << 20 && tc < 8,
        "label {label} / tc {tc} out of range"
    );
    label << 12 | u32::from(tc) << 9 | u32::from(bos) << 8 | u32::from(ttl)
}

/// Offset of the ethertype field (after any one 802.1Q tag).
fn ethertype_at(frame: &[u8]) -> usize {
    if u16::from_be_bytes([frame[12], frame[13]]) == ETHERTYPE_VLAN {
        16
    } else {
        12
    }
}

/// Inserts label stack entries (outermost first) between the L2 header and its payload and
/// sets the ethertype to MPLS unicast.
pub fn with_labels(frame: &[u8], entries: &[u32]) -> Vec<u8> {
    let at = ethertype_at(frame);
    let mut out = frame[..at].to_vec();
    out.extend_from_slice(&ETHERTYPE_MPLS.to_be_bytes());
    for e in entries {
        out.extend_from_slice(&e.to_be_bytes());
    }
    out.extend_from_slice(&frame[at + 2..]);
    out
}

/// The IP packet of a frame: everything after the Ethernet (and one 802.1Q) header.
pub fn l3_of(frame: &[u8]) -> &[u8] {
    &frame[ethertype_at(frame) + 2..]
}

/// The 28-byte Ethernet/IPv4 ARP body (RFC 826).
pub fn arp_body(op: u16, sha: [u8; 6], spa: &str, tha: [u8; 6], tpa: &str) -> Vec<u8> {
    let spa: Ipv4Addr = spa.parse().expect("ARP sender IP");
    let tpa: Ipv4Addr = tpa.parse().expect("ARP target IP");
    let mut b = vec![0, 1, 0x08, 0x00, 6, 4];
    b.extend_from_slice(&op.to_be_bytes());
    b.extend_from_slice(&sha);
    b.extend_from_slice(&spa.octets());
    b.extend_from_slice(&tha);
    b.extend_from_slice(&tpa.octets());
    b
}

/// A broadcast ARP request from `eth.src` (at `sender_ip`) for `target_ip`.
pub fn arp_request(eth: Eth, sender_ip: &str, target_ip: &str) -> Vec<u8> {
    let body = arp_body(1, eth.src, sender_ip, [0; 6], target_ip);
    eth.to(BROADCAST).frame(ETHERTYPE_ARP, &body)
}

/// Adds IPv4 header options (a multiple of 4 bytes) to the IPv4 packet of an Ethernet frame,
/// fixing IHL, total length and the header checksum.
pub fn with_ipv4_options(frame: &[u8], options: &[u8]) -> Vec<u8> {
    assert_eq!(options.len() % 4, 0, "options pad to 32-bit words");
    let l3 = ethertype_at(frame) + 2;
    let ihl = usize::from(frame[l3] & 0x0f) * 4;
    let mut out = frame[..l3 + ihl].to_vec();
    out.extend_from_slice(options);
    out.extend_from_slice(&frame[l3 + ihl..]);
    out[l3] = 0x40 | ((ihl + options.len()) / 4) as u8;
    let total = u16::from_be_bytes([out[l3 + 2], out[l3 + 3]]) + options.len() as u16;
    out[l3 + 2..l3 + 4].copy_from_slice(&total.to_be_bytes());
    fix_ipv4_checksum(&mut out[l3..]);
    out
}

/// The Internet checksum of `bytes` (RFC 1071; an odd last byte padded with zero), written
/// here so that no test checks xpe with xpe's own: 0 over bytes whose checksum is right.
pub fn internet_checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Recomputes the IPv4 header checksum of the packet at the start of `ip`.
pub fn fix_ipv4_checksum(ip: &mut [u8]) {
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    ip[10] = 0;
    ip[11] = 0;
    let sum = internet_checksum(&ip[..ihl]);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
}

// ---------------------------------------------------------------------------------------
// Captures
// ---------------------------------------------------------------------------------------

/// A pcapng holding `frames` (ingress interface name, bytes) in order, with one Ethernet
/// interface block per distinct name; timestamps are 1 ms apart.
pub fn pcapng(frames: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut w = PcapNgWriter::new(Vec::new()).expect("pcapng section header");
    let mut names: Vec<&str> = Vec::new();
    for (name, _) in frames {
        if !names.contains(name) {
            names.push(name);
            w.write_pcapng_block(InterfaceDescriptionBlock {
                linktype: DataLink::ETHERNET,
                snaplen: 0,
                options: vec![
                    InterfaceDescriptionOption::IfName(Cow::Owned(name.to_string())),
                    // pcap-file 2.0 writes the Duration as raw units: make the unit 1 ns.
                    InterfaceDescriptionOption::IfTsResol(9),
                ],
            })
            .expect("pcapng interface block");
        }
    }
    for (i, (name, data)) in frames.iter().enumerate() {
        let id = names.iter().position(|n| n == name).expect("named above");
        w.write_pcapng_block(EnhancedPacketBlock {
            interface_id: id as u32,
            timestamp: Duration::from_millis(1_700_000_000_000 + i as u64),
            original_len: data.len() as u32,
            data: Cow::Borrowed(data),
            options: vec![],
        })
        .expect("pcapng packet block");
    }
    w.into_inner()
}

/// A classic pcap (no interface names) holding `frames` in order.
pub fn classic_pcap(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut w = pcap_file::pcap::PcapWriter::new(Vec::new()).expect("pcap header");
    for (i, data) in frames.iter().enumerate() {
        let p = pcap_file::pcap::PcapPacket::new(
            Duration::from_millis(1_700_000_000_000 + i as u64),
            data.len() as u32,
            data,
        );
        w.write_packet(&p).expect("pcap packet");
    }
    w.into_writer()
}

/// One packet of a pcapng read back: its interface name, bytes and comments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedFrame {
    /// `if_name` of its interface block.
    pub interface: String,
    /// The bytes.
    pub data: Vec<u8>,
    /// Packet comments, in order.
    pub comments: Vec<String>,
}

/// Reads every enhanced packet of a pcapng written by `xpe replay`.
pub fn read_pcapng(path: &Path) -> Vec<CapturedFrame> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut r = PcapNgReader::new(std::io::BufReader::new(file)).expect("pcapng header");
    let mut names = Vec::new();
    let mut frames = Vec::new();
    while let Some(block) = r.next_block() {
        match block.expect("pcapng block") {
            Block::InterfaceDescription(idb) => {
                let name = idb.options.iter().find_map(|o| match o {
                    InterfaceDescriptionOption::IfName(n) => Some(n.to_string()),
                    _ => None,
                });
                names.push(name.unwrap_or_default());
            }
            Block::EnhancedPacket(p) => frames.push(CapturedFrame {
                interface: names[p.interface_id as usize].clone(),
                data: p.data.into_owned(),
                comments: p
                    .options
                    .iter()
                    .filter_map(|o| match o {
                        EnhancedPacketOption::Comment(c) => Some(c.to_string()),
                        _ => None,
                    })
                    .collect(),
            }),
            _ => {}
        }
    }
    frames
}

// ---------------------------------------------------------------------------------------
// Running xpe
// ---------------------------------------------------------------------------------------

/// What one `xpe` invocation returned.
#[derive(Debug)]
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// Everything written to stdout.
    pub stdout: String,
    /// Everything written to stderr.
    pub stderr: String,
}

/// Runs the `xpe` CLI in-process with these arguments (without the program name).
pub fn xpe<S: Into<OsString> + Clone>(args: impl IntoIterator<Item = S>) -> Run {
    let mut argv: Vec<OsString> = vec!["xpe".into()];
    argv.extend(args.into_iter().map(Into::into));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = xpe_control::cli::run(argv, &mut out, &mut err);
    Run {
        code,
        stdout: String::from_utf8(out).expect("stdout is UTF-8"),
        stderr: String::from_utf8(err).expect("stderr is UTF-8"),
    }
}

/// The result of a successful `xpe replay`, with its files in a temp dir kept alive here.
#[derive(Debug)]
pub struct Replayed {
    /// What replay printed.
    pub stdout: String,
    /// The printed counters, parsed.
    pub report: Report,
    /// The output capture (forwarded frames, by egress interface).
    pub out_pcap: PathBuf,
    /// The drops capture (dropped and punted frames, as they arrived, with comments).
    pub drops_pcap: PathBuf,
    /// Owns the files above.
    pub dir: TempDir,
}

impl Replayed {
    /// The forwarded frames, read back.
    pub fn out(&self) -> Vec<CapturedFrame> {
        read_pcapng(&self.out_pcap)
    }
    /// The dropped and punted frames, read back.
    pub fn drops(&self) -> Vec<CapturedFrame> {
        read_pcapng(&self.drops_pcap)
    }
    /// The comments of every frame in the drops capture, in order, joined with '/'
    /// (`"no-route"`, `"punt/for-us"`).
    pub fn comments(&self) -> Vec<String> {
        self.drops().iter().map(|d| d.comments.join("/")).collect()
    }
    /// tshark's view of the output capture.
    pub fn out_fields(&self, fields: &[&str]) -> Vec<Row> {
        tshark_fields(&self.out_pcap, fields)
    }
    /// tshark's view of the output capture without the ICMP errors xpe sent (the frames with a
    /// comment).
    pub fn forwarded_fields(&self, fields: &[&str]) -> Vec<Row> {
        let mut with = fields.to_vec();
        with.push("frame.comment");
        tshark_fields(&self.out_pcap, &with)
            .into_iter()
            .filter(|row| row.get("frame.comment").is_none_or(|c| c.is_empty()))
            .collect()
    }
    /// tshark's view of the drops capture.
    pub fn drops_fields(&self, fields: &[&str]) -> Vec<Row> {
        tshark_fields(&self.drops_pcap, fields)
    }
}

/// Replays `frames` (ingress interface, bytes) through `config` with `--drops`; panics unless
/// replay exits 0.
pub fn replay(config: &Path, frames: &[(&str, Vec<u8>)]) -> Replayed {
    let dir = TempDir::new();
    let input = dir.write("in.pcapng", pcapng(frames));
    let out_pcap = dir.path().join("out.pcapng");
    let drops_pcap = dir.path().join("drops.pcapng");
    let run = xpe([
        OsString::from("replay"),
        config.into(),
        "--in".into(),
        input.into(),
        "--out".into(),
        out_pcap.clone().into(),
        "--drops".into(),
        drops_pcap.clone().into(),
    ]);
    assert_eq!(
        run.code, 0,
        "xpe replay failed\nstdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    fast_path_agrees(config, frames);
    let report = Report::parse(&run.stdout);
    Replayed {
        stdout: run.stdout,
        report,
        out_pcap,
        drops_pcap,
        dir,
    }
}

/// Every replayed frame also goes through the XDP fast path (`xpe run --fast-path xdp`),
/// checked against the pipeline by [`ByIngress::agree`]: where the kernel would forward it,
/// it does so byte for byte as `process` does; elsewhere it hands it on untouched. So every
/// replay case of these tests is a case of the fast path's differential test (issue 17).
/// Needs root, as the program is loaded into the kernel; the programs are kept per test
/// thread for the config last replayed.
///
/// [`ByIngress::agree`]: xpe_dataplane::xsk::fast::ByIngress::agree
fn fast_path_agrees(config: &Path, frames: &[(&str, Vec<u8>)]) {
    use std::cell::RefCell;
    use xpe_dataplane::tables::Snapshot;
    use xpe_dataplane::xsk::fast::{Buffers, ByIngress};
    thread_local! {
        static LOADED: RefCell<Option<(PathBuf, Snapshot, ByIngress)>> = const { RefCell::new(None) };
    }
    LOADED.with(|loaded| {
        let mut loaded = loaded.borrow_mut();
        if loaded.as_ref().is_none_or(|(path, _, _)| path != config) {
            // Drop the old programs before the namespace they send to goes.
            *loaded = None;
            let parsed = xpe_control::config::Config::load(config)
                .unwrap_or_else(|e| panic!("{}: {e}", config.display()));
            let snap = xpe_control::compile::compile(&parsed, &xpe_control::compile::Offline)
                .unwrap_or_else(|e| panic!("{}: {e}", config.display()))
                .snapshot;
            let programs = ByIngress::load(&snap, Buffers::One)
                .unwrap_or_else(|e| panic!("the fast path's check needs root: {e}"));
            *loaded = Some((config.to_path_buf(), snap, programs));
        }
        let Some((_, snap, programs)) = loaded.as_ref() else {
            return;
        };
        for (i, (interface, bytes)) in frames.iter().enumerate() {
            let Some(ingress) = snap.port_by_name(interface) else {
                continue;
            };
            if let Err(e) = programs.agree(snap, ingress, bytes) {
                panic!(
                    "frame {} in on {interface}: the XDP fast path and the pipeline disagree: {e}",
                    i + 1
                );
            }
        }
    });
}

/// Per-interface counters from a replay report line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortLine {
    /// Frames received.
    pub in_frames: u64,
    /// Bytes received.
    pub in_bytes: u64,
    /// Frames sent.
    pub out_frames: u64,
    /// Bytes sent.
    pub out_bytes: u64,
}

/// The counters `xpe replay` prints, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Frames read from the capture.
    pub frames_in: u64,
    /// Frames forwarded (replies included).
    pub forwarded: u64,
    /// Frames dropped.
    pub dropped: u64,
    /// Frames punted.
    pub punted: u64,
    /// Frames skipped because their link type is not Ethernet.
    pub skipped: u64,
    /// ARP replies sent.
    pub arp_replies: u64,
    /// ICMP echo replies sent.
    pub echo_replies: u64,
    /// Neighbour advertisements sent in answer to solicitations.
    pub nd_replies: u64,
    /// ICMPv6 echo replies sent.
    pub echo6_replies: u64,
    /// Per-interface counters (only interfaces that saw traffic are printed).
    pub ports: BTreeMap<String, PortLine>,
    /// Drops by reason (only non-zero reasons are printed).
    pub drops: BTreeMap<String, u64>,
    /// Punts by reason.
    pub punts: BTreeMap<String, u64>,
    /// ICMP errors sent by kind, and `rate-limited`.
    pub icmp: BTreeMap<String, u64>,
    /// IPv4 packets fragmented, the fragments made, and those dropped (no room).
    pub fragmented: (u64, u64, u64),
}

/// A counter of a report line, or a panic naming the line.
fn num(s: &str, line: &str) -> u64 {
    s.trim_end_matches(',')
        .parse()
        .unwrap_or_else(|_| panic!("expected a number, got {s:?} in report line {line:?}"))
}

impl Report {
    /// Parses the text of `print_report`; panics on a line it does not know.
    pub fn parse(text: &str) -> Report {
        let mut r = Report::default();
        for line in text.lines() {
            let w: Vec<&str> = line.split_whitespace().collect();
            match w.as_slice() {
                ["replay:", n, "frames", "in,", f, "forwarded,", d, "dropped,", p, rest @ ..] => {
                    r.frames_in = num(n, line);
                    r.forwarded = num(f, line);
                    r.dropped = num(d, line);
                    r.punted = num(p, line);
                    match rest {
                        ["punted"] => {}
                        ["punted,", s, "skipped", "(not", "Ethernet)"] => r.skipped = num(s, line),
                        _ => panic!("unknown replay summary {line:?}"),
                    }
                }
                ["replies:", a, "ARP,", e, "ICMP", "echo"] => {
                    r.arp_replies = num(a, line);
                    r.echo_replies = num(e, line);
                }
                ["replies6:", n, "ND,", e, "ICMPv6", "echo"] => {
                    r.nd_replies = num(n, line);
                    r.echo6_replies = num(e, line);
                }
                ["drop", reason, n] => {
                    r.drops.insert(reason.to_string(), num(n, line));
                }
                ["punt", reason, n] => {
                    r.punts.insert(reason.to_string(), num(n, line));
                }
                ["fragmented:", p, "packets,", f, "fragments,", d, "dropped"] => {
                    r.fragmented = (num(p, line), num(f, line), num(d, line));
                }
                ["icmp", kind, n] => {
                    r.icmp.insert(kind.to_string(), num(n, line));
                }
                [name, "in", fi, "frames", bi, "bytes", "out", fo, "frames", bo, "bytes"] => {
                    r.ports.insert(
                        name.to_string(),
                        PortLine {
                            in_frames: num(fi, line),
                            in_bytes: num(bi, line),
                            out_frames: num(fo, line),
                            out_bytes: num(bo, line),
                        },
                    );
                }
                [] => {}
                _ => panic!("unknown replay report line {line:?} in:\n{text}"),
            }
        }
        r
    }
}

/// `[(name, count)]` as the map [`Report`] holds.
pub fn counts(items: &[(&str, u64)]) -> BTreeMap<String, u64> {
    items.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

// ---------------------------------------------------------------------------------------
// tshark
// ---------------------------------------------------------------------------------------

/// One packet as tshark decoded it: field name -> value ("" when absent; several occurrences
/// joined with ',').
pub type Row = HashMap<String, String>;

/// `ip.checksum.status` (and `icmp.checksum.status`) of a good checksum: tshark 4.0's field
/// output prints the number of `PROTO_CHECKSUM_E_GOOD`, not the word "Good".
pub const CHECKSUM_GOOD: &str = "1";
/// `ip.checksum.status` of a bad checksum (`PROTO_CHECKSUM_E_BAD`).
pub const CHECKSUM_BAD: &str = "0";

/// The fields most tests look at.
pub const FIELDS: &[&str] = &[
    "frame.interface_name",
    "eth.src",
    "eth.dst",
    "eth.type",
    "vlan.id",
    "vlan.priority",
    "mpls.label",
    "mpls.exp",
    "mpls.bottom",
    "mpls.ttl",
    "ip.src",
    "ip.dst",
    "ip.ttl",
    "ip.dsfield.dscp",
    "ip.checksum.status",
    "ipv6.dst",
    "ipv6.hlim",
    "frame.comment",
];

/// Decodes `pcap` with tshark and returns `fields` of every packet.
///
/// IPv4 header checksums are verified (see [`CHECKSUM_GOOD`]). Fails the test, never skips
/// it, if tshark is not installed.
pub fn tshark_fields(pcap: &Path, fields: &[&str]) -> Vec<Row> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-n")
        .arg("-r")
        .arg(pcap)
        .args(["-o", "ip.check_checksum:TRUE"])
        .args(["-T", "fields", "-E", "separator=/t", "-E", "occurrence=a"])
        .args(["-E", "aggregator=,"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let output = match cmd.output() {
        Ok(o) => o,
        Err(e) => panic!(
            "cannot run tshark ({e}): these tests decode xpe's output with tshark; \
             install it with scripts/setup.sh"
        ),
    };
    assert!(
        output.status.success(),
        "tshark failed on {}: {}",
        pcap.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("tshark output is UTF-8");
    text.lines()
        .map(|line| {
            let values: Vec<&str> = line.split('\t').collect();
            assert_eq!(values.len(), fields.len(), "tshark line {line:?}");
            fields
                .iter()
                .zip(values)
                .map(|(f, v)| (f.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// Asserts that `row` has exactly these field values (other fields are not compared).
#[track_caller]
pub fn assert_fields(row: &Row, expected: &[(&str, &str)]) {
    let mut wrong = Vec::new();
    for (k, v) in expected {
        let got = row.get(*k).map(String::as_str);
        if got != Some(*v) {
            wrong.push(format!("  {k}: expected {v:?}, got {got:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "fields differ:\n{}\nrow: {row:#?}",
        wrong.join("\n")
    );
}

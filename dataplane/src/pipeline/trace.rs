//! Observing the pipeline: each stage reports a [`Step`] to a [`Tracer`].
//!
//! The forwarding path uses [`NoTrace`], whose empty inline method lets the compiler remove
//! every step; `xpe trace` collects the steps in a `Vec` and explains them with names.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::counters::IcmpError;
use crate::tables::{AdjacencyId, AttachmentId, FecId, IlmEntry, LabelStack, PortId, VrfId};
use crate::wire::ethernet::MacAddr;

/// One stage of the pipeline, as the trace shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A frame arrived.
    Ingress {
        /// Port it arrived on.
        port: PortId,
        /// Its length.
        len: usize,
    },
    /// The Ethernet header.
    Ethernet {
        /// Destination MAC.
        dst: MacAddr,
        /// Source MAC.
        src: MacAddr,
        /// Ethertype (outer).
        ethertype: u16,
    },
    /// An 802.1Q tag.
    Vlan {
        /// VLAN id (0: priority-tagged).
        vid: u16,
        /// Priority code point.
        pcp: u8,
    },
    /// The attachment (and so the VRF) the frame belongs to.
    Attachment {
        /// The attachment.
        attachment: AttachmentId,
        /// Its VRF.
        vrf: VrfId,
    },
    /// A label stack entry being processed.
    Label {
        /// Position in the stack (0: top).
        depth: usize,
        /// Label value.
        label: u32,
        /// Traffic class.
        tc: u8,
        /// Bottom of stack.
        bos: bool,
        /// TTL.
        ttl: u8,
    },
    /// The incoming label entry that matched.
    Ilm(IlmEntry),
    /// An explicit-null label was popped (RFC 3032, RFC 4182).
    ExplicitNull {
        /// 0 (IPv4) or 2 (IPv6).
        label: u32,
    },
    /// An IPv4 lookup.
    Lookup4 {
        /// VRF searched.
        vrf: VrfId,
        /// Destination.
        dst: Ipv4Addr,
        /// Result.
        fec: Option<FecId>,
    },
    /// An IPv6 lookup.
    Lookup6 {
        /// VRF searched.
        vrf: VrfId,
        /// Destination.
        dst: Ipv6Addr,
        /// Result.
        fec: Option<FecId>,
    },
    /// An IP TTL or hop limit rewritten.
    IpTtl {
        /// Before.
        before: u8,
        /// After.
        after: u8,
    },
    /// A label TTL rewritten (swap, or uniform-mode propagation into the next label).
    LabelTtl {
        /// Before.
        before: u8,
        /// After.
        after: u8,
    },
    /// Labels imposed.
    Impose {
        /// The labels, outermost first.
        labels: LabelStack,
        /// TC written.
        tc: u8,
        /// TTL written.
        ttl: u8,
    },
    /// An ICMP echo request to us turned into a reply.
    EchoReply {
        /// Where the reply goes.
        to: Ipv4Addr,
    },
    /// An ARP request for our address turned into a reply.
    ArpReply {
        /// Who asked.
        to: Ipv4Addr,
    },
    /// An ICMPv6 echo request to us turned into a reply.
    Echo6Reply {
        /// Where the reply goes.
        to: Ipv6Addr,
    },
    /// A neighbour solicitation for our address turned into an advertisement (RFC 4861 §7.2.4).
    NdAdvert {
        /// The address solicited.
        target: Ipv6Addr,
        /// Where the advertisement goes: the solicitor, or all nodes for duplicate address
        /// detection.
        to: Ipv6Addr,
    },
    /// The packet was turned into an ICMP error to its source (`pipeline::icmp_error`),
    /// which the steps after this one route.
    Icmp {
        /// What kind.
        kind: IcmpError,
        /// Its source: our address.
        from: IpAddr,
        /// Its destination: the packet's source.
        to: IpAddr,
        /// Bytes of the packet quoted in it.
        quoted: usize,
        /// Label stack entries in its RFC 4950 extension (0: none).
        labels: usize,
        /// Sent on along the packet's LSP (RFC 3032 §2.3.2) rather than looked up here.
        tunnelled: bool,
    },
    /// A packet that would have had an ICMP error got none, and why.
    IcmpNotSent {
        /// Why (RFC 1812 §4.3.2.7, the rate limit, no address to send from).
        why: &'static str,
    },
    /// An IPv4 packet without DF too big for the egress port: sent on as fragments whose IP
    /// packets are `mtu` bytes at most.
    Fragment {
        /// The largest IP packet of a fragment.
        mtu: usize,
    },
    /// The frame leaves by this adjacency.
    Egress {
        /// The adjacency.
        adj: AdjacencyId,
        /// Egress port.
        port: PortId,
    },
}

/// Receives the steps of one frame.
pub trait Tracer {
    /// Called once per stage.
    fn step(&mut self, step: Step);
}

/// The tracer of the forwarding path: does nothing, costs nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTrace;

impl Tracer for NoTrace {
    #[inline(always)]
    fn step(&mut self, _: Step) {}
}

impl Tracer for Vec<Step> {
    fn step(&mut self, step: Step) {
        self.push(step);
    }
}

//! The typed answers of `xpe show ... --json`: what a running instance puts, as one line of
//! JSON, in the `text` of its [`Response`](crate::ctl::Response).
//!
//! Field names are snake_case and stable: scripts read them (`scripts/lab-demo.sh`,
//! `scripts/bench_pps.py`, the live tests). A field may be added; none is renamed or changes
//! its meaning without a note in docs/runtime.md, where every field is described. Values that
//! are one of a few words are enums here, never a Rust `Debug` string. Every type also
//! deserializes, so a client can read an answer back into it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `show counters --json`: the workers' counters, summed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    /// The router's name.
    pub router: String,
    /// How many workers the counters are summed over.
    pub workers: usize,
    /// Per interface, in config order.
    pub interfaces: Vec<InterfaceCounters>,
    /// Frames forwarded (including the ARP, ND and echo replies below).
    pub forwarded: u64,
    /// ARP requests answered for our addresses.
    pub arp_replies: u64,
    /// ICMP echo requests answered for our addresses.
    pub echo_replies: u64,
    /// Neighbour solicitations for our IPv6 addresses answered with an advertisement.
    #[serde(default)]
    pub nd_replies: u64,
    /// ICMPv6 echo requests answered for our IPv6 addresses.
    #[serde(default)]
    pub echo6_replies: u64,
    /// ICMP errors sent in place of the packets they are about, by kind (`time-exceeded`,
    /// `time-exceeded-v6`; every kind, zeros included). Counted as forwarded, not as drops.
    #[serde(default)]
    pub icmp_errors: BTreeMap<String, u64>,
    /// ICMP errors not sent because a worker's rate (`[copp] icmp_errors`) was spent; their
    /// packets are counted as drops.
    #[serde(default)]
    pub icmp_rate_limited: u64,
    /// IPv4 packets without DF too big for their egress, sent on as fragments (counted once
    /// in `forwarded`).
    #[serde(default)]
    pub fragmented: u64,
    /// The fragments made of them (counted on their egress interface).
    #[serde(default)]
    pub fragments: u64,
    /// Fragments not sent: no free buffer for them.
    #[serde(default)]
    pub fragments_dropped: u64,
    /// Dropped frames by reason (`no-route`, `truncated`, ...; every reason, zeros included).
    pub drops: BTreeMap<String, u64>,
    /// Punted frames by reason (every reason, zeros included).
    pub punts: BTreeMap<String, u64>,
    /// Packets per incoming label, including labels since removed.
    pub labels: Vec<LabelCount>,
    /// IP lookups per VRF.
    pub vrfs: Vec<VrfCount>,
    /// Frames dropped because an egress TX ring was full.
    pub tx_ring_full: u64,
    /// Frames dropped because the worker had no socket on the egress interface.
    pub no_tx_socket: u64,
    /// ARP and neighbour discovery frames (and gleans) the workers passed to the neighbour
    /// resolver.
    pub learned: u64,
    /// Those not passed on (the resolver's queue was full).
    pub learn_dropped: u64,
    /// ARP requests and neighbour solicitations the resolver sent (the name is older than
    /// IPv6 next hops).
    pub arp_requests_sent: u64,
    /// ARP requests and neighbour solicitations not sent (a worker's queue was full).
    pub arp_requests_dropped: u64,
    /// Whether punted frames go to the kernel's mirror devices (else they are dropped).
    pub mirrors: bool,
    /// Control-plane policing of punted frames, by class (`routing`, `arp-nd`, `icmp`,
    /// `other`; every class, zeros included).
    pub policed: BTreeMap<String, Policed>,
    /// Punted frames within their rate that found the mirror thread's queue full.
    pub punt_queue_full: u64,
    /// Punted frames the kernel has no place for (labels not ending in IP, no mirror).
    pub punt_no_mirror: u64,
    /// Frames from the mirrors sent out (or routed) by the workers.
    pub injected: u64,
    /// Frames from the mirrors dropped by the workers (no free frame, no socket, too long).
    pub inject_dropped: u64,
    /// The XDP fast path (`xpe run --fast-path xdp`); `null` when it is off. What it forwarded
    /// is already in the interface, label and `forwarded` counts above.
    #[serde(default)]
    pub fast_path: Option<FastPath>,
}

/// The XDP fast path's share of the counters and its state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FastPath {
    /// Whether it forwards (a failed table update switches it off until one succeeds).
    pub live: bool,
    /// Frames the kernel forwarded without the workers (included in `forwarded`).
    pub forwarded: u64,
    /// Labels in its table.
    pub labels: usize,
    /// Table updates that failed.
    pub failed_updates: u64,
    /// The last failure, if any.
    pub last_error: Option<String>,
    /// VRFs whose IPv6 frames go to the workers: their routes did not fit in its IPv6 table.
    #[serde(default)]
    pub vrfs6_left_out: usize,
}

/// What control-plane policing did with one class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policed {
    /// Frames within the rate, handed to the kernel.
    pub passed: u64,
    /// Frames over the rate, dropped.
    pub dropped: u64,
}

/// One interface's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceCounters {
    /// The interface name.
    pub interface: String,
    /// Frames received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Received frames dropped (any reason).
    pub rx_drops: u64,
    /// Frames sent.
    pub tx_packets: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
}

/// Packets that matched one incoming label.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelCount {
    /// The incoming label.
    pub label: u32,
    /// Packets counted.
    pub packets: u64,
    /// Whether the label is no longer in the running table (its count is kept).
    pub removed: bool,
}

/// IP lookups in one VRF.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VrfCount {
    /// The VRF name (`global` for the core table).
    pub vrf: String,
    /// Lookups counted.
    pub lookups: u64,
}

/// `show runtime --json`: per worker, where the time and the frames go.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Runtime {
    /// TSC ticks per second, measured at start.
    pub tsc_hz: f64,
    /// Seconds since start.
    pub uptime_s: f64,
    /// One entry per worker.
    pub workers: Vec<Worker>,
}

/// One worker's loop and frame figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Worker {
    /// The worker's index.
    pub worker: usize,
    /// The core it is pinned to; `null` when unpinned.
    pub core: Option<usize>,
    /// Packets received.
    pub packets: u64,
    /// Non-empty RX batches.
    pub batches: u64,
    /// Packets per non-empty batch (0 before any).
    pub average_batch: f64,
    /// Loop iterations.
    pub polls: u64,
    /// Loop iterations that found work.
    pub busy_polls: u64,
    /// TSC cycles spent in iterations that found work.
    pub busy_cycles: u64,
    /// `busy_cycles / packets` (0 before any packet).
    pub busy_cycles_per_packet: f64,
    /// `sendto` kicks of TX rings.
    pub tx_kicks: u64,
    /// Wake-ups asked for by fill rings.
    pub fill_wakeups: u64,
    /// Sleeps in `poll()` after idle iterations.
    pub sleeps: u64,
    /// UMEM chunks the worker owns.
    pub frames: u64,
    /// Chunks on the free list.
    pub frames_free: u64,
    /// Chunks on fill rings.
    pub frames_in_fill: u64,
    /// Chunks on TX rings.
    pub frames_in_tx: u64,
    /// Chunks held as pieces of a multi-buffer frame.
    pub frames_held: u64,
    /// The sum of the four above; equal to `frames` when none leaked.
    pub frames_accounted: u64,
}

/// `show neighbors --json`: every adjacency and whether its MAC is known.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Neighbors {
    /// One entry per adjacency.
    pub neighbors: Vec<Neighbor>,
}

/// One next hop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Neighbor {
    /// The attachment it is reached on: `dx0.101` (VLAN 101), `core0` (untagged).
    pub attachment: String,
    /// Its IPv4 or IPv6 address.
    pub ip: String,
    /// Its MAC; `null` while incomplete.
    pub mac: Option<String>,
    /// Where the MAC came from.
    pub state: NeighborState,
}

/// Where a neighbour's MAC came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NeighborState {
    /// A `[[neighbor]]` of the config.
    Static,
    /// Learned from ARP.
    Learned,
    /// Not resolved yet: ARP requests go out once a second.
    Incomplete,
}

/// `show interfaces --json`: each interface's XDP attachment and kernel socket counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interfaces {
    /// One entry per interface.
    pub interfaces: Vec<Interface>,
    /// The kernel's mirror devices (empty with `--no-mirrors`).
    #[serde(default)]
    pub mirrors: Vec<Mirror>,
}

/// One mirror device and what crossed it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mirror {
    /// The device name.
    pub name: String,
    /// Its network namespace; `null`: the router's own.
    pub namespace: Option<String>,
    /// What it mirrors: `core0`, `dx0.101`, or `router-address`.
    pub mirrors: String,
    /// The VRF it belongs to (`global` for core ports and the router address).
    pub vrf: String,
    /// Its address, if any (`169.254.10.1/30`).
    pub address: Option<String>,
    /// Its IPv6 address, if any (`2001:db8:a::1/64`; the link-local one is not listed).
    #[serde(default)]
    pub address6: Option<String>,
    /// Its MAC (the port's).
    pub mac: String,
    /// Its MTU (the port's).
    pub mtu: u16,
    /// Frames written to it (punted to the kernel).
    pub punted: u64,
    /// Bytes written.
    pub punted_bytes: u64,
    /// Frames the kernel sent on it, queued for the wire or for routing.
    pub injected: u64,
    /// Bytes of those.
    pub injected_bytes: u64,
    /// Frames from the kernel too long for the port's MTU (or too short for Ethernet).
    pub bad_length: u64,
    /// Frames from the kernel that found worker 0's queue full.
    pub inject_queue_full: u64,
    /// Writes to the device that failed (the kernel's queue full).
    pub write_errors: u64,
    /// Frames refused because the running tables moved the attachment to another VRF.
    pub stale: u64,
}

/// One interface as the runtime drives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    /// The interface name.
    pub interface: String,
    /// Its role; `null` if the running tables do not name it.
    pub kind: Option<PortKind>,
    /// Its MAC; `null` if the running tables do not name it.
    pub mac: Option<String>,
    /// How the steering program is attached.
    pub xdp_mode: XdpMode,
    /// AF_XDP sockets on it (one per RX queue).
    pub sockets: usize,
    /// Whether any of them is in zero-copy mode.
    pub zero_copy: bool,
    /// Frames the steering program redirected to a socket.
    pub xdp_redirected: u64,
    /// Frames it passed to the kernel.
    pub xdp_passed: u64,
    /// Frames received here that the XDP fast path forwarded in the kernel (0 without it).
    #[serde(default)]
    pub xdp_forwarded: u64,
    /// Whether the XDP fast path sends out of this interface (a veth takes redirected frames
    /// only while its peer has an XDP program or GRO on); `null` without the fast path.
    #[serde(default)]
    pub xdp_fast_egress: Option<bool>,
    /// Frames the kernel dropped on the sockets (summed over them).
    pub rx_dropped: u64,
    /// Times an RX ring was full.
    pub rx_ring_full: u64,
    /// Times a fill ring was empty.
    pub rx_fill_ring_empty: u64,
}

/// An interface's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PortKind {
    /// Provider core: MPLS and the global table.
    Core,
    /// Customer edge: VRF attachments.
    Edge,
}

/// How an XDP program is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum XdpMode {
    /// In the driver.
    Native,
    /// Generic (skb) mode.
    Skb,
    /// Native, else skb (only ever asked for; an attached program is one of the two).
    Auto,
}

/// `show labels --json`: the MPLS forwarding table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Labels {
    /// The router's name.
    pub router: String,
    /// One entry per incoming label, in label order.
    pub labels: Vec<LabelEntry>,
}

/// One incoming label entry (ILM) and what it does (NHLFE).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelEntry {
    /// The incoming label.
    #[serde(rename = "in")]
    pub in_label: u32,
    /// What is done to the label stack.
    pub action: LabelAction,
    /// Labels swapped in, outermost first (`swap` only; empty otherwise).
    pub out: Vec<u32>,
    /// The next hop's address (`swap` and `pop`; `null` for `pop_lookup`).
    pub via: Option<String>,
    /// The attachment frames leave by (`swap` and `pop`).
    pub attachment: Option<String>,
    /// The next hop's MAC; `null` while unresolved or for `pop_lookup`.
    pub mac: Option<String>,
    /// The VRF the packet is looked up in (`pop_lookup` only).
    pub vrf: Option<String>,
}

/// What an incoming label entry does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelAction {
    /// Replace the label with `out` and forward.
    Swap,
    /// Penultimate-hop pop: remove the label and forward what is below.
    Pop,
    /// Remove a VPN (table) label and look the IP packet up in `vrf`.
    PopLookup,
}

/// `show vrf NAME --json`: one VRF's routes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vrf {
    /// The VRF name (`global` for the core table).
    pub vrf: String,
    /// The label that pops into this VRF, if it has one.
    pub table_label: Option<u32>,
    /// Every route, as the LPM holds them.
    pub routes: Vec<Route>,
}

/// One route of a VRF.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// The prefix, e.g. `198.18.7.0/24`.
    pub prefix: String,
    /// Where the route came from.
    pub origin: RouteOrigin,
    /// What a packet that matches it gets.
    pub action: RouteAction,
    /// The next hop's address (`forward` only).
    pub via: Option<String>,
    /// The attachment frames leave by (`forward`), or the connected subnet's (`glean`).
    pub attachment: Option<String>,
    /// The next hop's MAC (`forward` only; `null` while unresolved).
    pub mac: Option<String>,
    /// Labels pushed, outermost first (`forward` only; may be empty).
    pub labels: Vec<u32>,
    /// What BGP says of a BGP route: where it was learned, RD, route targets, VPN label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bgp: Option<BgpRoute>,
}

/// A BGP route's origin, as `show vrf` gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BgpRoute {
    /// `ce`: learned from one of the VRF's CE neighbours; `vpn`: imported from a VPN route.
    pub from: String,
    /// The BGP next hop: the CE's address, or the remote PE's router address.
    pub next_hop: String,
    /// The VPN route's route distinguisher.
    pub rd: Option<String>,
    /// The VPN route's route targets.
    pub route_targets: Vec<String>,
    /// The VPN label (under the transport labels of `labels`).
    pub vpn_label: Option<u32>,
    /// The AS path.
    pub as_path: Vec<u32>,
    /// Kept from a gobgpd that died, not announced again yet.
    pub stale: bool,
}

/// Where a route came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteOrigin {
    /// The subnet of an attachment or core interface.
    Connected,
    /// One of our own addresses.
    Local,
    /// A neighbour's host route (static, or learned by ARP or ND).
    Neighbor,
    /// A configured route.
    Static,
    /// Learned from a BGP peer.
    Bgp,
}

/// What a route does with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteAction {
    /// Forward to a next hop, pushing `labels`.
    Forward,
    /// Ours: ARP and echo requests are answered, the rest is punted.
    Local,
    /// A connected host with no known MAC: dropped as `no-neighbor` while ARP asks for it.
    Glean,
}

/// `show all --json`: the forwarding tables at once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct All {
    /// The router's name.
    pub router: String,
    /// The MPLS forwarding table, as in [`Labels`].
    pub labels: Vec<LabelEntry>,
    /// Every VRF, the global table first, as in [`Vrf`].
    pub vrfs: Vec<Vrf>,
}

/// `xpe trace --live --json`: one traced frame per line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TracedFrame {
    /// Its number in this trace, from 1.
    pub frame: u64,
    /// The interface it arrived on.
    pub interface: String,
    /// When a worker received it, in nanoseconds since the Unix epoch.
    pub time_ns: u64,
    /// The frame as received, in hex.
    pub input: String,
    /// Each stage, as `xpe trace` prints it.
    pub steps: Vec<TraceStep>,
    /// The verdict, as `xpe trace` words it (`forward on core0, 106 bytes`, `drop (no-route)`).
    pub verdict: String,
    /// The frames that go out, in hex (one, or one per IPv4 fragment).
    pub outputs: Vec<String>,
    /// What the XDP fast path does with the input (`kernel (...)` or `workers (...)`).
    pub fast_path: String,
}

/// One stage of a traced frame.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceStep {
    /// The stage (`ingress`, `ethernet`, `802.1q`, `lookup`, ...).
    pub stage: String,
    /// What it found.
    pub text: String,
}

//! What `xpe run --metrics ADDR:PORT` serves on `/metrics`: the router's counters, worker
//! figures and table sizes in the Prometheus text format (0.0.4) or OpenMetrics 1.0,
//! whichever the scraper asks for.
//!
//! A scrape reads the same typed answers as `xpe show counters`, `runtime` and `interfaces`
//! ([`crate::api`]), which the workers publish every few thousand loop iterations anyway:
//! the workers do nothing per scrape. [`encode`] turns one [`Sample`] of them into text
//! through `prometheus-client`'s encoders, so names, escaping, `_total` suffixes and units
//! follow the formats without a line of hand-written exposition. Every name starts with
//! `xpe_`, counters end in `_total`, bytes and seconds are in base units, and the interface,
//! VRF, reason and worker are labels (docs/runtime.md lists every metric).

use std::borrow::Cow;
use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::api;

/// The `Content-Type` of the Prometheus text format.
pub const PROMETHEUS_TEXT: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The `Content-Type` of OpenMetrics 1.0 text.
pub const OPENMETRICS_TEXT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The exposition formats a scraper may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The Prometheus text format 0.0.4: what `curl` and `promtool check metrics` get.
    Prometheus,
    /// OpenMetrics 1.0 text: what a Prometheus server asks for first.
    OpenMetrics,
}

impl Format {
    /// The format an HTTP `Accept` header asks for: OpenMetrics when it names it, else the
    /// Prometheus text format.
    pub fn from_accept(accept: Option<&str>) -> Format {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Prometheus,
        }
    }

    /// The `Content-Type` of an answer in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => PROMETHEUS_TEXT,
            Format::OpenMetrics => OPENMETRICS_TEXT,
        }
    }
}

/// Everything one scrape shows, read from the running router at the time of the scrape.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// The router's name (`[router] name`).
    pub router: String,
    /// Whether the XDP fast path was asked for.
    pub fast_path: bool,
    /// Seconds since `xpe run` started forwarding.
    pub uptime_s: f64,
    /// `show counters`.
    pub counters: api::Counters,
    /// `show runtime`.
    pub runtime: api::Runtime,
    /// `show interfaces`.
    pub interfaces: api::Interfaces,
    /// Table sizes.
    pub tables: Tables,
    /// BGP, when the config has a `[bgp]` section.
    pub bgp: Option<Bgp>,
}

/// The sizes of the running tables.
#[derive(Debug, Clone, Default)]
pub struct Tables {
    /// Per VRF (`global` first): its name, IPv4 routes and IPv6 routes.
    pub vrfs: Vec<(String, usize, usize)>,
    /// Entries in the label table.
    pub labels: usize,
    /// Adjacencies by state (`static`, `learned`, `incomplete`).
    pub neighbors: Vec<(&'static str, usize)>,
}

/// What the BGP speakers report.
#[derive(Debug, Clone, Default)]
pub struct Bgp {
    /// Per speaker (`core`, `vrf NAME`): whether its gobgpd runs, and how often it started.
    pub speakers: Vec<(String, bool, u64)>,
    /// Per session.
    pub peers: Vec<BgpPeer>,
    /// Paths refused, by reason (`bad-label`, `martian`, `undecodable`).
    pub refused: Vec<(&'static str, u64)>,
    /// Best paths read from the speakers since start.
    pub paths: u64,
}

/// One BGP session.
#[derive(Debug, Clone, Default)]
pub struct BgpPeer {
    /// The speaker it belongs to.
    pub speaker: String,
    /// The neighbour's address.
    pub peer: String,
    /// Its address family.
    pub family: String,
    /// Whether the session is established.
    pub established: bool,
    /// Prefixes received.
    pub received: u64,
    /// Prefixes accepted.
    pub accepted: u64,
    /// Prefixes advertised.
    pub advertised: u64,
}

/// Encodes `sample` in `format`.
pub fn encode(sample: Sample, format: Format) -> Result<String, fmt::Error> {
    let mut registry = Registry::with_prefix("xpe");
    registry.register_collector(Box::new(Scrape(sample)));
    let mut text = String::new();
    match format {
        Format::Prometheus => {
            prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)?
        }
        Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut text, &registry)?,
    }
    Ok(text)
}

/// The collector of one scrape: it owns the sample it encodes.
#[derive(Debug)]
struct Scrape(Sample);

/// A label set: (name, value) pairs.
type Labels<'a> = Vec<(&'static str, Cow<'a, str>)>;

/// One label.
fn label<'a>(name: &'static str, value: impl Into<Cow<'a, str>>) -> Labels<'a> {
    vec![(name, value.into())]
}

/// Writes one metric family of `kind` with a sample per label set.
fn family<L: EncodeLabelSet, M: EncodeMetric>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    kind: MetricType,
    samples: impl IntoIterator<Item = (L, M)>,
) -> fmt::Result {
    let mut metric = enc.encode_descriptor(name, help, unit, kind)?;
    for (labels, value) in samples {
        value.encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A counter family.
fn counters<L: EncodeLabelSet>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (L, u64)>,
) -> fmt::Result {
    let samples = samples.into_iter().map(|(l, v)| (l, ConstCounter::new(v)));
    family(enc, name, help, None, MetricType::Counter, samples)
}

/// A counter in bytes.
fn byte_counters<L: EncodeLabelSet>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (L, u64)>,
) -> fmt::Result {
    let samples = samples.into_iter().map(|(l, v)| (l, ConstCounter::new(v)));
    family(
        enc,
        name,
        help,
        Some(&Unit::Bytes),
        MetricType::Counter,
        samples,
    )
}

/// A gauge family.
fn gauges<L: EncodeLabelSet>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (L, u64)>,
) -> fmt::Result {
    let samples = samples.into_iter().map(|(l, v)| (l, ConstGauge::new(v)));
    family(enc, name, help, None, MetricType::Gauge, samples)
}

/// One unlabelled counter.
fn counter(enc: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> fmt::Result {
    counters(enc, name, help, [(Labels::new(), value)])
}

impl Collector for Scrape {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let s = &self.0;
        let info = Info::new(vec![
            ("version", Cow::Borrowed(env!("CARGO_PKG_VERSION"))),
            ("router", Cow::Borrowed(s.router.as_str())),
            (
                "fast_path",
                Cow::Borrowed(if s.fast_path { "xdp" } else { "off" }),
            ),
        ]);
        info.encode(enc.encode_descriptor(
            "build",
            "The running xpe: its version, router name and fast path.",
            None,
            info.metric_type(),
        )?)?;
        let uptime = ConstGauge::new(s.uptime_s);
        uptime.encode(enc.encode_descriptor(
            "uptime",
            "Time since xpe run started forwarding.",
            Some(&Unit::Seconds),
            MetricType::Gauge,
        )?)?;
        encode_interfaces(&mut enc, s)?;
        encode_outcomes(&mut enc, &s.counters)?;
        encode_workers(&mut enc, &s.runtime)?;
        encode_tables(&mut enc, s)?;
        if let Some(bgp) = &s.bgp {
            encode_bgp(&mut enc, bgp)?;
        }
        Ok(())
    }
}

/// Per interface: the workers' counts (with the fast path's) and the kernel's.
fn encode_interfaces(enc: &mut DescriptorEncoder, s: &Sample) -> fmt::Result {
    let ifs = &s.counters.interfaces;
    let by_if = |f: fn(&api::InterfaceCounters) -> u64| {
        ifs.iter()
            .map(move |i| (label("interface", i.interface.as_str()), f(i)))
    };
    counters(
        enc,
        "interface_rx_packets",
        "Frames received.",
        by_if(|i| i.rx_packets),
    )?;
    byte_counters(
        enc,
        "interface_rx",
        "Bytes received.",
        by_if(|i| i.rx_bytes),
    )?;
    counters(
        enc,
        "interface_tx_packets",
        "Frames sent.",
        by_if(|i| i.tx_packets),
    )?;
    byte_counters(enc, "interface_tx", "Bytes sent.", by_if(|i| i.tx_bytes))?;
    counters(
        enc,
        "interface_rx_drops",
        "Frames received and dropped, for any reason (xpe_drops_total has the reasons).",
        by_if(|i| i.rx_drops),
    )?;
    let kernel = &s.interfaces.interfaces;
    let by_kernel = |f: fn(&api::Interface) -> u64| {
        kernel
            .iter()
            .map(move |i| (label("interface", i.interface.as_str()), f(i)))
    };
    counters(
        enc,
        "interface_xdp_redirected",
        "Frames the XDP program redirected to an AF_XDP socket.",
        by_kernel(|i| i.xdp_redirected),
    )?;
    counters(
        enc,
        "interface_xdp_passed",
        "Frames the XDP program passed to the kernel.",
        by_kernel(|i| i.xdp_passed),
    )?;
    counters(
        enc,
        "interface_xdp_forwarded",
        "Frames received here that the XDP fast path forwarded in the kernel.",
        by_kernel(|i| i.xdp_forwarded),
    )?;
    counters(
        enc,
        "interface_socket_rx_dropped",
        "Frames the kernel dropped on the interface's AF_XDP sockets.",
        by_kernel(|i| i.rx_dropped),
    )?;
    counters(
        enc,
        "interface_socket_rx_ring_full",
        "Times an AF_XDP RX ring was full.",
        by_kernel(|i| i.rx_ring_full),
    )?;
    counters(
        enc,
        "interface_socket_fill_ring_empty",
        "Times an AF_XDP fill ring was empty.",
        by_kernel(|i| i.rx_fill_ring_empty),
    )?;
    encode_mirrors(enc, &s.interfaces.mirrors)
}

/// Per mirror device: what went to the kernel and what came back.
fn encode_mirrors(enc: &mut DescriptorEncoder, mirrors: &[api::Mirror]) -> fmt::Result {
    let by_mirror = |f: fn(&api::Mirror) -> u64| {
        mirrors.iter().map(move |m| {
            (
                vec![
                    ("mirror", Cow::Borrowed(m.name.as_str())),
                    ("carries", Cow::Borrowed(m.mirrors.as_str())),
                    ("vrf", Cow::Borrowed(m.vrf.as_str())),
                ],
                f(m),
            )
        })
    };
    counters(
        enc,
        "mirror_punted_packets",
        "Frames written to the mirror device (punted to the kernel).",
        by_mirror(|m| m.punted),
    )?;
    byte_counters(
        enc,
        "mirror_punted",
        "Bytes written to the mirror device.",
        by_mirror(|m| m.punted_bytes),
    )?;
    counters(
        enc,
        "mirror_injected_packets",
        "Frames the kernel sent on the mirror device, sent on or routed by xpe.",
        by_mirror(|m| m.injected),
    )?;
    byte_counters(
        enc,
        "mirror_injected",
        "Bytes of those.",
        by_mirror(|m| m.injected_bytes),
    )?;
    counters(
        enc,
        "mirror_errors",
        "Mirror device frames lost, by kind.",
        mirrors.iter().flat_map(|m| {
            [
                ("bad-length", m.bad_length),
                ("inject-queue-full", m.inject_queue_full),
                ("write-error", m.write_errors),
                ("stale", m.stale),
            ]
            .map(|(kind, n)| {
                (
                    vec![
                        ("mirror", Cow::Borrowed(m.name.as_str())),
                        ("kind", Cow::Borrowed(kind)),
                    ],
                    n,
                )
            })
        }),
    )
}

/// What became of the frames: forwarded, dropped and punted by reason, per label and VRF.
fn encode_outcomes(enc: &mut DescriptorEncoder, c: &api::Counters) -> fmt::Result {
    counter(
        enc,
        "forwarded",
        "Frames forwarded, including ARP, ND and echo replies and ICMP errors.",
        c.forwarded,
    )?;
    counters(
        enc,
        "drops",
        "Frames dropped, by reason.",
        by_reason(&c.drops),
    )?;
    counters(
        enc,
        "punts",
        "Frames handed to the kernel, by reason.",
        by_reason(&c.punts),
    )?;
    counters(
        enc,
        "icmp_errors",
        "ICMP errors sent, by kind.",
        c.icmp_errors
            .iter()
            .map(|(k, v)| (label("kind", k.as_str()), *v)),
    )?;
    counters(
        enc,
        "replies",
        "Requests for the router's own addresses answered by the workers, by kind.",
        [
            ("arp", c.arp_replies),
            ("echo", c.echo_replies),
            ("nd", c.nd_replies),
            ("echo6", c.echo6_replies),
        ]
        .map(|(k, v)| (label("kind", k), v)),
    )?;
    counters(
        enc,
        "policed",
        "Punted frames by control-plane policing class and what policing did.",
        c.policed.iter().flat_map(|(class, p)| {
            [("passed", p.passed), ("dropped", p.dropped)].map(|(action, v)| {
                (
                    vec![
                        ("class", Cow::Borrowed(class.as_str())),
                        ("action", Cow::Borrowed(action)),
                    ],
                    v,
                )
            })
        }),
    )?;
    for (name, help, value) in [
        (
            "icmp_rate_limited",
            "ICMP errors not sent: the rate was spent.",
            c.icmp_rate_limited,
        ),
        (
            "fragmented",
            "IPv4 packets sent on as fragments.",
            c.fragmented,
        ),
        ("fragments", "Fragments made.", c.fragments),
        (
            "fragments_dropped",
            "Fragments not sent: no free buffer.",
            c.fragments_dropped,
        ),
        (
            "tx_ring_full",
            "Frames dropped: an egress TX ring was full.",
            c.tx_ring_full,
        ),
        (
            "no_tx_socket",
            "Frames dropped: no socket on the egress interface.",
            c.no_tx_socket,
        ),
        (
            "learned",
            "ARP and ND frames passed to the neighbour resolver.",
            c.learned,
        ),
        (
            "learn_dropped",
            "ARP and ND frames not passed on: the resolver's queue was full.",
            c.learn_dropped,
        ),
        (
            "resolution_requests_sent",
            "ARP requests and neighbour solicitations sent.",
            c.arp_requests_sent,
        ),
        (
            "resolution_requests_dropped",
            "ARP requests and neighbour solicitations not sent: a queue was full.",
            c.arp_requests_dropped,
        ),
        (
            "punt_queue_full",
            "Punted frames that found the mirror thread's queue full.",
            c.punt_queue_full,
        ),
        (
            "punt_no_mirror",
            "Punted frames with no mirror to go to.",
            c.punt_no_mirror,
        ),
        (
            "injected",
            "Frames from the mirrors sent out or routed.",
            c.injected,
        ),
        (
            "inject_dropped",
            "Frames from the mirrors dropped.",
            c.inject_dropped,
        ),
    ] {
        counter(enc, name, help, value)?;
    }
    counters(
        enc,
        "label_packets",
        "Packets per incoming label (labels since removed keep their count).",
        c.labels
            .iter()
            .map(|l| (label("label", l.label.to_string()), l.packets)),
    )?;
    counters(
        enc,
        "vrf_lookups",
        "IP lookups per VRF.",
        c.vrfs
            .iter()
            .map(|v| (label("vrf", v.vrf.as_str()), v.lookups)),
    )?;
    if let Some(fast) = &c.fast_path {
        gauges(
            enc,
            "fast_path_live",
            "1 while the XDP fast path forwards, 0 after a failed table update.",
            [(Labels::new(), u64::from(fast.live))],
        )?;
        counter(
            enc,
            "fast_path_forwarded",
            "Frames the XDP fast path forwarded in the kernel (also in xpe_forwarded_total).",
            fast.forwarded,
        )?;
        counter(
            enc,
            "fast_path_failed_updates",
            "Fast path table updates that failed.",
            fast.failed_updates,
        )?;
        gauges(
            enc,
            "fast_path_ipv6_vrfs_left_out",
            "VRFs whose IPv6 frames the XDP fast path leaves to the workers: their routes do not fit in its IPv6 table.",
            [(Labels::new(), fast.vrfs6_left_out as u64)],
        )?;
    }
    Ok(())
}

/// A count per reason.
fn by_reason(
    m: &std::collections::BTreeMap<String, u64>,
) -> impl Iterator<Item = (Labels<'_>, u64)> {
    m.iter().map(|(k, v)| (label("reason", k.as_str()), *v))
}

/// Per worker: packets, batches and the cycles they took.
fn encode_workers(enc: &mut DescriptorEncoder, r: &api::Runtime) -> fmt::Result {
    let by_worker = |f: fn(&api::Worker) -> u64| {
        r.workers
            .iter()
            .map(move |w| (label("worker", w.worker.to_string()), f(w)))
    };
    counters(
        enc,
        "worker_packets",
        "Packets a worker received.",
        by_worker(|w| w.packets),
    )?;
    counters(
        enc,
        "worker_batches",
        "Non-empty RX batches.",
        by_worker(|w| w.batches),
    )?;
    counters(
        enc,
        "worker_busy_cycles",
        "TSC cycles in loop iterations that found work.",
        by_worker(|w| w.busy_cycles),
    )?;
    let hz = if r.tsc_hz > 0.0 { r.tsc_hz } else { f64::NAN };
    family(
        enc,
        "worker_busy",
        "Time in loop iterations that found work.",
        Some(&Unit::Seconds),
        MetricType::Counter,
        r.workers.iter().map(|w| {
            (
                label("worker", w.worker.to_string()),
                ConstCounter::new(w.busy_cycles as f64 / hz),
            )
        }),
    )?;
    family(
        enc,
        "worker_busy_cycles_per_packet",
        "Busy TSC cycles per packet since start (rate(busy_cycles) / rate(packets) for now).",
        None,
        MetricType::Gauge,
        r.workers.iter().map(|w| {
            (
                label("worker", w.worker.to_string()),
                ConstGauge::new(w.busy_cycles_per_packet),
            )
        }),
    )
}

/// Table sizes.
fn encode_tables(enc: &mut DescriptorEncoder, s: &Sample) -> fmt::Result {
    let t = &s.tables;
    gauges(
        enc,
        "vrf_routes",
        "Routes per VRF and address family.",
        t.vrfs.iter().flat_map(|(vrf, v4, v6)| {
            [("ipv4", *v4), ("ipv6", *v6)].map(|(family, n)| {
                (
                    vec![
                        ("vrf", Cow::Borrowed(vrf.as_str())),
                        ("family", Cow::Borrowed(family)),
                    ],
                    n as u64,
                )
            })
        }),
    )?;
    gauges(
        enc,
        "labels",
        "Entries in the label table.",
        [(Labels::new(), t.labels as u64)],
    )?;
    gauges(
        enc,
        "neighbors",
        "Next hops by state.",
        t.neighbors
            .iter()
            .map(|(state, n)| (label("state", *state), *n as u64)),
    )?;
    gauges(
        enc,
        "workers",
        "Workers forwarding.",
        [(Labels::new(), s.runtime.workers.len() as u64)],
    )
}

/// BGP speakers and sessions.
fn encode_bgp(enc: &mut DescriptorEncoder, b: &Bgp) -> fmt::Result {
    gauges(
        enc,
        "bgp_speaker_up",
        "1 while the speaker's gobgpd runs.",
        b.speakers
            .iter()
            .map(|(name, up, _)| (label("speaker", name.as_str()), u64::from(*up))),
    )?;
    counters(
        enc,
        "bgp_speaker_starts",
        "Times the speaker's gobgpd was started.",
        b.speakers
            .iter()
            .map(|(name, _, starts)| (label("speaker", name.as_str()), *starts)),
    )?;
    let by_peer = |f: fn(&BgpPeer) -> u64| {
        b.peers.iter().map(move |p| {
            (
                vec![
                    ("speaker", Cow::Borrowed(p.speaker.as_str())),
                    ("peer", Cow::Borrowed(p.peer.as_str())),
                    ("family", Cow::Borrowed(p.family.as_str())),
                ],
                f(p),
            )
        })
    };
    gauges(
        enc,
        "bgp_session_established",
        "1 while the session is established.",
        by_peer(|p| u64::from(p.established)),
    )?;
    gauges(
        enc,
        "bgp_prefixes_received",
        "Prefixes received on the session.",
        by_peer(|p| p.received),
    )?;
    gauges(
        enc,
        "bgp_prefixes_accepted",
        "Prefixes accepted on the session.",
        by_peer(|p| p.accepted),
    )?;
    gauges(
        enc,
        "bgp_prefixes_advertised",
        "Prefixes advertised on the session.",
        by_peer(|p| p.advertised),
    )?;
    counters(
        enc,
        "bgp_paths_refused",
        "Paths xpe refused, by reason.",
        b.refused.iter().map(|(r, n)| (label("reason", *r), *n)),
    )?;
    counter(
        enc,
        "bgp_paths",
        "Best paths read from the speakers.",
        b.paths,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Sample {
        let mut s = Sample {
            router: "pe\"1".into(),
            uptime_s: 12.5,
            ..Sample::default()
        };
        s.counters.interfaces.push(api::InterfaceCounters {
            interface: "dx0".into(),
            rx_packets: 7,
            rx_bytes: 700,
            ..Default::default()
        });
        s.counters.drops.insert("no-route".into(), 5);
        s.interfaces.mirrors.push(api::Mirror {
            name: "xpe-dx0.101".into(),
            mirrors: "dx0.101".into(),
            vrf: "vpc-a".into(),
            punted: 4,
            punted_bytes: 400,
            ..Default::default()
        });
        s.counters.labels.push(api::LabelCount {
            label: 16001,
            packets: 3,
            removed: false,
        });
        s.runtime.tsc_hz = 2e9;
        s.runtime.workers.push(api::Worker {
            busy_cycles: 4_000_000_000,
            ..Default::default()
        });
        s
    }

    #[test]
    fn names_follow_the_conventions_in_both_formats() {
        for format in [Format::Prometheus, Format::OpenMetrics] {
            let text = encode(sample(), format).expect("encodes");
            for line in [
                "xpe_interface_rx_packets_total{interface=\"dx0\"} 7",
                "xpe_interface_rx_bytes_total{interface=\"dx0\"} 700",
                "xpe_drops_total{reason=\"no-route\"} 5",
                "xpe_label_packets_total{label=\"16001\"} 3",
                "xpe_worker_busy_seconds_total{worker=\"0\"} 2.0",
                "xpe_uptime_seconds 12.5",
                "xpe_mirror_punted_packets_total{mirror=\"xpe-dx0.101\",carries=\"dx0.101\",vrf=\"vpc-a\"} 4",
                "xpe_mirror_punted_bytes_total{mirror=\"xpe-dx0.101\",carries=\"dx0.101\",vrf=\"vpc-a\"} 400",
                "xpe_mirror_errors_total{mirror=\"xpe-dx0.101\",kind=\"stale\"} 0",
            ] {
                assert!(
                    text.lines().any(|l| l == line),
                    "{format:?} lacks {line}:\n{text}"
                );
            }
            // Label values are escaped by the encoder, not by us.
            assert!(text.contains("router=\"pe\\\"1\""), "{text}");
            assert_eq!(
                text.ends_with("# EOF\n"),
                format == Format::OpenMetrics,
                "only OpenMetrics ends with # EOF"
            );
        }
    }

    #[test]
    fn bgp_sessions_and_table_sizes_are_gauges() {
        let mut s = sample();
        s.tables = Tables {
            vrfs: vec![("vpc-a".into(), 3, 1)],
            labels: 2,
            neighbors: vec![("learned", 4)],
        };
        s.bgp = Some(Bgp {
            speakers: vec![("core".into(), true, 1)],
            peers: vec![BgpPeer {
                speaker: "core".into(),
                peer: "198.18.0.9".into(),
                family: "l3vpn-ipv4-unicast".into(),
                established: true,
                received: 12,
                accepted: 11,
                advertised: 2,
            }],
            refused: vec![("martian", 1)],
            paths: 40,
        });
        let text = encode(s, Format::Prometheus).expect("encodes");
        for line in [
            "# TYPE xpe_vrf_routes gauge",
            "xpe_vrf_routes{vrf=\"vpc-a\",family=\"ipv6\"} 1",
            "xpe_labels 2",
            "xpe_neighbors{state=\"learned\"} 4",
            "xpe_bgp_speaker_up{speaker=\"core\"} 1",
            "xpe_bgp_session_established{speaker=\"core\",peer=\"198.18.0.9\",family=\"l3vpn-ipv4-unicast\"} 1",
            "xpe_bgp_prefixes_accepted{speaker=\"core\",peer=\"198.18.0.9\",family=\"l3vpn-ipv4-unicast\"} 11",
            "xpe_bgp_paths_refused_total{reason=\"martian\"} 1",
            "xpe_bgp_paths_total 40",
        ] {
            assert!(text.lines().any(|l| l == line), "lacks {line}:\n{text}");
        }
        let without = encode(sample(), Format::Prometheus).expect("encodes");
        assert!(!without.contains("xpe_bgp_"), "no BGP, no BGP metrics");
    }

    #[test]
    fn the_accept_header_picks_the_format() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::from_accept(Some(prometheus)), Format::OpenMetrics);
        assert_eq!(Format::from_accept(Some("*/*")), Format::Prometheus);
        assert_eq!(Format::from_accept(None), Format::Prometheus);
    }
}

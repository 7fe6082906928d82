//! The running state read into the typed answers of [`crate::api`]: what `show ... --json`
//! sends as one line, and what the text tables are laid out from.

use std::collections::HashSet;

use serde::Serialize;
use xpe_dataplane::pipeline::{DropReason, IcmpError, Punt, PuntClass};
use xpe_dataplane::tables::{self, Fec, FecId, IlmAction, IlmEntry, IpPrefix, Snapshot, VrfId};
use xpe_dataplane::xsk::fast::FastStatus;
use xpe_dataplane::xsk::steer::Mode;
use xpe_dataplane::xsk::worker::{LoopStats, WorkerStats};

use super::super::{lock, ok, refused, totals, Live};
use crate::api;
use crate::ctl::Response;
use crate::rib::{Rib, RibRoute, Source};

/// An answer as one line of JSON.
pub(super) fn line<T: Serialize>(answer: &T) -> Response {
    match serde_json::to_string(answer) {
        Ok(text) => ok(text),
        Err(e) => refused(format!("cannot encode the answer as JSON: {e}")),
    }
}

/// `show counters`: the workers' counters summed, with the label and VRF counters by the
/// slots they keep across table changes.
pub(in crate::daemon) fn counters(
    live: &Live,
    snap: &Snapshot,
    stats: &[WorkerStats],
    fast: Option<&FastStatus>,
) -> api::Counters {
    let total = totals(stats, fast);
    let current: HashSet<u32> = snap.ilm().entries().map(|e| e.label.get()).collect();
    let (labels, vrfs) = {
        let st = lock(&live.state);
        let labels = st
            .slots
            .label_of
            .iter()
            .enumerate()
            .map(|(slot, &label)| api::LabelCount {
                label,
                packets: total.labels.get(slot).copied().unwrap_or(0),
                removed: !current.contains(&label),
            })
            .collect();
        let vrfs = st
            .slots
            .vrf_of
            .iter()
            .enumerate()
            .map(|(slot, name)| api::VrfCount {
                vrf: name.clone(),
                lookups: total.vrfs.get(slot).copied().unwrap_or(0),
            })
            .collect();
        (labels, vrfs)
    };
    let mut lp = LoopStats::default();
    for w in stats {
        lp += &w.loop_stats;
    }
    // One lock, released before the answer is built (a guard in a field's expression would
    // live to the end of the whole struct expression).
    let (mirrors, punt_no_mirror) = match lock(&live.runtime).as_ref() {
        Some(rt) => (!rt.mirror_counters().is_empty(), rt.punt_no_mirror()),
        None => (false, 0),
    };
    api::Counters {
        router: snap.name().to_string(),
        workers: stats.len(),
        interfaces: snap
            .ports()
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let c = total.ports.get(i).copied().unwrap_or_default();
                api::InterfaceCounters {
                    interface: p.name.clone(),
                    rx_packets: c.rx_packets,
                    rx_bytes: c.rx_bytes,
                    rx_drops: c.rx_drops,
                    tx_packets: c.tx_packets,
                    tx_bytes: c.tx_bytes,
                }
            })
            .collect(),
        forwarded: total.forwarded,
        arp_replies: total.arp_replies,
        echo_replies: total.echo_replies,
        nd_replies: total.nd_replies,
        echo6_replies: total.echo6_replies,
        icmp_errors: IcmpError::ALL
            .iter()
            .map(|k| (k.name().to_string(), total.icmp_sent[*k as usize]))
            .collect(),
        icmp_rate_limited: total.icmp_rate_limited,
        fragmented: total.fragmented,
        fragments: total.fragments,
        fragments_dropped: total.fragments_dropped,
        drops: DropReason::ALL
            .iter()
            .map(|d| (d.name().to_string(), total.drop_count(*d)))
            .collect(),
        punts: Punt::ALL
            .iter()
            .map(|p| (p.name().to_string(), total.punt_count(*p)))
            .collect(),
        labels,
        vrfs,
        tx_ring_full: lp.tx_ring_full,
        no_tx_socket: lp.no_tx_socket,
        learned: lp.learned,
        learn_dropped: lp.learn_dropped,
        arp_requests_sent: lp.originated,
        arp_requests_dropped: lp.originate_dropped,
        mirrors,
        punt_no_mirror,
        policed: PuntClass::ALL
            .iter()
            .map(|c| {
                let p = total.policed[*c as usize];
                (
                    c.name().to_string(),
                    api::Policed {
                        passed: p.passed,
                        dropped: p.dropped,
                    },
                )
            })
            .collect(),
        punt_queue_full: lp.punt_queue_full,
        injected: lp.injected,
        inject_dropped: lp.inject_dropped,
        fast_path: fast.map(|f| api::FastPath {
            live: f.live,
            forwarded: f.counters.forwarded(),
            labels: f.labels,
            failed_updates: f.failed_updates,
            last_error: f.last_error.clone(),
            vrfs6_left_out: f.vrfs6_left_out,
        }),
    }
}

/// `show runtime`: per worker, the loop's figures and where its UMEM chunks are.
pub(in crate::daemon) fn runtime(live: &Live, stats: &[WorkerStats]) -> api::Runtime {
    api::Runtime {
        tsc_hz: live.tsc_hz,
        uptime_s: live.started.elapsed().as_secs_f64(),
        workers: stats
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let l = &w.loop_stats;
                api::Worker {
                    worker: i,
                    core: w.core,
                    packets: l.packets,
                    batches: l.batches,
                    average_batch: l.average_batch(),
                    polls: l.polls,
                    busy_polls: l.busy_polls,
                    busy_cycles: l.busy_cycles,
                    busy_cycles_per_packet: l.busy_cycles_per_packet(),
                    tx_kicks: l.tx_kicks,
                    fill_wakeups: l.fill_wakeups,
                    sleeps: l.sleeps,
                    frames: w.frames,
                    frames_free: w.ledger.free,
                    frames_in_fill: w.ledger.in_fill,
                    frames_in_tx: w.ledger.in_tx,
                    frames_held: w.ledger.held,
                    frames_accounted: w.ledger.total(),
                }
            })
            .collect(),
    }
}

/// `show neighbors`: every adjacency, and whether its MAC is configured, learned or missing.
pub(in crate::daemon) fn neighbors(live: &Live, snap: &Snapshot) -> api::Neighbors {
    let st = lock(&live.state);
    let neighbors = snap
        .adjacencies()
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let key = (a.port.0, a.vlan.map_or(0, |v| v.get()), a.next_hop);
            let state = match (st.base.adjacencies().get(i).and_then(|b| b.mac), a.mac) {
                (Some(_), _) if st.hosts.contains_key(&key) => api::NeighborState::Learned,
                (Some(_), _) => api::NeighborState::Static,
                (None, Some(_)) => api::NeighborState::Learned,
                (None, None) => api::NeighborState::Incomplete,
            };
            api::Neighbor {
                attachment: snap.attachment_name(a.attachment),
                ip: a.next_hop.to_string(),
                mac: a.mac.map(|m| m.to_string()),
                state,
            }
        })
        .collect();
    api::Neighbors { neighbors }
}

/// `show interfaces`: each interface's XDP program, sockets and kernel drop counters.
pub(in crate::daemon) fn interfaces(
    live: &Live,
    snap: &Snapshot,
    stats: &[WorkerStats],
    fast: Option<&FastStatus>,
) -> api::Interfaces {
    let rt = lock(&live.runtime);
    let Some(rt) = rt.as_ref() else {
        return api::Interfaces::default();
    };
    let interfaces = rt
        .xdp_interfaces()
        .into_iter()
        .map(|st| {
            let c = st.counters;
            let port_id = snap.port_by_name(&st.ifname);
            let port = port_id.map(|p| snap.port(p));
            let sockets: Vec<_> = rt
                .sockets()
                .iter()
                .filter(|s| s.ifname == st.ifname)
                .collect();
            let xdp_forwarded = match (fast, port_id) {
                (Some(f), Some(p)) => f
                    .counters
                    .ports
                    .get(usize::from(p.0))
                    .map_or(0, |c| c.rx_packets),
                _ => 0,
            };
            let mut i = api::Interface {
                interface: st.ifname.clone(),
                kind: port.map(|p| match p.kind {
                    tables::PortKind::Core => api::PortKind::Core,
                    tables::PortKind::Edge => api::PortKind::Edge,
                }),
                mac: port.map(|p| p.mac.to_string()),
                xdp_mode: match st.mode {
                    Mode::Native => api::XdpMode::Native,
                    Mode::Skb => api::XdpMode::Skb,
                    Mode::Auto => api::XdpMode::Auto,
                },
                sockets: sockets.len(),
                zero_copy: sockets.iter().any(|s| s.zero_copy),
                xdp_redirected: c.redirected,
                xdp_passed: c.passed,
                xdp_forwarded,
                xdp_fast_egress: match (fast, port_id) {
                    (Some(f), Some(p)) => f.egress_ok.get(usize::from(p.0)).copied(),
                    _ => None,
                },
                rx_dropped: 0,
                rx_ring_full: 0,
                rx_fill_ring_empty: 0,
            };
            for (_, _, k) in stats
                .iter()
                .flat_map(|w| w.sockets.iter())
                .filter(|(n, _, _)| *n == st.ifname)
            {
                i.rx_dropped += k.rx_dropped;
                i.rx_ring_full += k.rx_ring_full;
                i.rx_fill_ring_empty += k.rx_fill_ring_empty;
            }
            i
        })
        .collect();
    let mirrors = rt
        .mirror_counters()
        .into_iter()
        .map(|(m, c)| api::Mirror {
            mirrors: match m.carries {
                None => "router-address".to_string(),
                Some((port, vlan)) => {
                    let name = snap
                        .ports()
                        .get(usize::from(port.0))
                        .map_or("?", |p| p.name.as_str());
                    match vlan {
                        Some(v) => format!("{name}.{v}"),
                        None => name.to_string(),
                    }
                }
            },
            name: m.name,
            namespace: m.netns,
            vrf: m.vrf,
            address: m.address.map(|(a, len)| format!("{a}/{len}")),
            address6: m.address6.map(|(a, len)| format!("{a}/{len}")),
            mac: m.mac.to_string(),
            mtu: m.mtu,
            punted: c.punted,
            punted_bytes: c.punted_bytes,
            injected: c.injected,
            injected_bytes: c.injected_bytes,
            bad_length: c.bad_length,
            inject_queue_full: c.inject_queue_full,
            write_errors: c.write_errors,
            stale: c.stale,
        })
        .collect();
    api::Interfaces {
        interfaces,
        mirrors,
    }
}

/// `show labels`: the MPLS forwarding table.
pub(super) fn labels(snap: &Snapshot) -> api::Labels {
    api::Labels {
        router: snap.name().to_string(),
        labels: label_entries(snap),
    }
}

/// `show vrf NAME`: one VRF's routes.
pub(super) fn vrf(snap: &Snapshot, rib: &Rib, id: VrfId) -> api::Vrf {
    let v = snap.vrf(id);
    api::Vrf {
        vrf: v.name.clone(),
        table_label: v.table_label.map(|l| l.get()),
        routes: rib.routes(id).map(|(p, r)| route(snap, p, r)).collect(),
    }
}

/// `show all`: the label table and every VRF.
pub(super) fn all(snap: &Snapshot, rib: &Rib) -> api::All {
    api::All {
        router: snap.name().to_string(),
        labels: label_entries(snap),
        vrfs: (0..snap.vrfs().len())
            .map(|i| vrf(snap, rib, VrfId(i as u16)))
            .collect(),
    }
}

fn label_entries(snap: &Snapshot) -> Vec<api::LabelEntry> {
    snap.ilm().entries().map(|e| label_entry(snap, e)).collect()
}

fn label_entry(snap: &Snapshot, e: &IlmEntry) -> api::LabelEntry {
    let mut entry = api::LabelEntry {
        in_label: e.label.get(),
        action: api::LabelAction::Pop,
        out: Vec::new(),
        via: None,
        attachment: None,
        mac: None,
        vrf: None,
    };
    let adj = match e.action {
        IlmAction::Swap { adj, out } => {
            entry.action = api::LabelAction::Swap;
            entry.out = out.labels().map(|l| l.get()).collect();
            adj
        }
        IlmAction::Pop { adj } => adj,
        IlmAction::PopLookup { vrf } => {
            entry.action = api::LabelAction::PopLookup;
            entry.vrf = Some(snap.vrf(vrf).name.clone());
            return entry;
        }
    };
    let a = snap.adjacency(adj);
    entry.via = Some(a.next_hop.to_string());
    entry.attachment = Some(snap.attachment_name(a.attachment));
    entry.mac = a.mac.map(|m| m.to_string());
    entry
}

fn route(snap: &Snapshot, prefix: IpPrefix, r: RibRoute) -> api::Route {
    let mut route = api::Route {
        bgp: None,
        prefix: prefix.to_string(),
        origin: match r.source {
            Source::Connected => api::RouteOrigin::Connected,
            Source::Local => api::RouteOrigin::Local,
            Source::Neighbor => api::RouteOrigin::Neighbor,
            Source::Static => api::RouteOrigin::Static,
            Source::Bgp => api::RouteOrigin::Bgp,
        },
        action: api::RouteAction::Local,
        via: None,
        attachment: None,
        mac: None,
        labels: Vec::new(),
    };
    match fec(snap, r.fec) {
        None | Some(Fec::Local) => {}
        Some(Fec::Glean { attachment }) => {
            route.action = api::RouteAction::Glean;
            route.attachment = Some(snap.attachment_name(*attachment));
        }
        Some(Fec::Forward { adj, push }) => {
            let a = snap.adjacency(*adj);
            route.action = api::RouteAction::Forward;
            route.via = Some(a.next_hop.to_string());
            route.attachment = Some(snap.attachment_name(a.attachment));
            route.mac = a.mac.map(|m| m.to_string());
            route.labels = push.labels().map(|l| l.get()).collect();
        }
    }
    route
}

/// A route's FEC; `None` only if the snapshot did not hold together, which
/// `Snapshot::new` rules out.
fn fec(snap: &Snapshot, id: FecId) -> Option<&Fec> {
    snap.fecs().get(id.0 as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::{compile, Offline};
    use crate::config::Config;

    const EXAMPLE: &str = include_str!("../../../../examples/dx-pe.toml");

    fn example() -> Snapshot {
        let config = Config::parse(EXAMPLE, "example").unwrap();
        compile(&config, &Offline).unwrap().snapshot
    }

    #[test]
    fn label_actions_are_words_with_their_next_hop() {
        let snap = example();
        let labels = serde_json::to_value(labels(&snap)).unwrap();
        let entries = labels["labels"].as_array().unwrap();
        let by_label = |l: u64| entries.iter().find(|e| e["in"] == l).unwrap();
        let swap = by_label(16002);
        assert_eq!(swap["action"], "swap", "{swap}");
        assert!(!swap["out"].as_array().unwrap().is_empty(), "{swap}");
        assert!(
            swap["via"].is_string() && swap["attachment"].is_string(),
            "{swap}"
        );
        assert!(swap["vrf"].is_null(), "{swap}");
        let lookup = entries
            .iter()
            .find(|e| e["action"] == "pop_lookup")
            .expect("a table label");
        assert!(
            lookup["vrf"].is_string() && lookup["via"].is_null(),
            "{lookup}"
        );
        let text = serde_json::to_string(&labels).unwrap();
        for debug in ["AdjacencyId", "Swap {", "LabelStack", "Label("] {
            assert!(!text.contains(debug), "a Debug string on the wire: {text}");
        }
    }

    #[test]
    fn route_origins_and_actions_are_words() {
        let config = Config::parse(EXAMPLE, "example").unwrap();
        let compiled = compile(&config, &Offline).unwrap();
        let (snap, rib) = (&compiled.snapshot, &compiled.rib);
        let id = snap.vrf_by_name("vpc-a").unwrap();
        let v = serde_json::to_value(vrf(snap, rib, id)).unwrap();
        assert_eq!(v["vrf"], "vpc-a");
        let routes = v["routes"].as_array().unwrap();
        let origins: HashSet<&str> = routes.iter().filter_map(|r| r["origin"].as_str()).collect();
        assert!(origins.is_subset(&HashSet::from(["connected", "local", "neighbor", "static"])));
        assert!(
            origins.contains("static") && origins.contains("local"),
            "{v}"
        );
        let forward = routes.iter().find(|r| r["origin"] == "static").unwrap();
        assert_eq!(forward["action"], "forward", "{forward}");
        assert!(forward["via"].is_string(), "{forward}");
        assert!(forward["labels"].is_array(), "{forward}");
        let local = routes.iter().find(|r| r["origin"] == "local").unwrap();
        assert_eq!(local["action"], "local", "{local}");
        // Read back into the typed answer.
        let back: api::Vrf = serde_json::from_value(v).unwrap();
        assert_eq!(back, vrf(snap, rib, id));
    }
}

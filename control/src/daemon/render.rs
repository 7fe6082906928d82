//! `xpe show` on a running instance: tables, counters, runtime figures, neighbours and
//! interfaces, as text or JSON.

use std::fmt::Write as _;

use serde_json::json;
use xpe_dataplane::pipeline::{Drop as DropReason, Punt};
use xpe_dataplane::tables::Snapshot;
use xpe_dataplane::xsk::runtime::Runtime;
use xpe_dataplane::xsk::worker::{LoopStats, WorkerStats};

use super::{lock, ok, refused, totals, Live};
use crate::ctl::{Response, What};

/// Answers one `show` request.
pub(super) fn show(live: &Live, what: What, name: Option<&str>, as_json: bool) -> Response {
    let snap = live.published.load();
    let stats = lock(&live.runtime)
        .as_ref()
        .map(Runtime::worker_stats)
        .unwrap_or_default();
    let mut text = Vec::new();
    let result = match what {
        What::All if !as_json => crate::show::all(&mut text, &snap).map(|_| ()),
        What::Labels if !as_json => crate::show::labels(&mut text, &snap),
        What::Vrf => {
            let Some(name) = name else {
                return refused("show vrf needs a VRF name");
            };
            let Some(id) = snap.vrf_by_name(name) else {
                let names: Vec<&str> = snap.vrfs().iter().map(|v| v.name.as_str()).collect();
                return refused(format!(
                    "no vrf named \"{name}\" (running: {})",
                    names.join(", ")
                ));
            };
            if as_json {
                let routes: Vec<_> = snap
                    .vrf(id)
                    .routes
                    .iter()
                    .map(|r| json!({"prefix": r.prefix.to_string(), "origin": format!("{:?}", r.origin).to_lowercase(), "via": crate::show::describe_fec(&snap, r.fec)}))
                    .collect();
                return ok(json!({"vrf": name, "routes": routes}).to_string());
            }
            crate::show::vrf(&mut text, &snap, id)
        }
        What::Counters => return ok(counters_text(live, &snap, &stats, as_json)),
        What::Runtime => return ok(runtime_text(live, &stats, as_json)),
        What::Neighbors => return ok(neighbors_text(live, &snap, as_json)),
        What::Interfaces => return ok(interfaces_text(live, &snap, &stats, as_json)),
        What::All | What::Labels => {
            let labels: Vec<_> = snap
                .ilm()
                .entries()
                .iter()
                .map(|e| json!({"in": e.label.get(), "action": format!("{:?}", e.action)}))
                .collect();
            return ok(json!({"router": snap.name(), "labels": labels}).to_string());
        }
    };
    match result {
        Ok(()) => ok(String::from_utf8_lossy(&text).into_owned()),
        Err(e) => refused(format!("cannot format: {e}")),
    }
}

fn counters_text(live: &Live, snap: &Snapshot, stats: &[WorkerStats], as_json: bool) -> String {
    let total = totals(stats);
    let (label_rows, vrf_rows) = {
        let st = lock(&live.state);
        let labels: Vec<(u32, u64)> = st
            .slots
            .label_of
            .iter()
            .enumerate()
            .map(|(slot, &label)| (label, total.labels.get(slot).copied().unwrap_or(0)))
            .collect();
        let vrfs: Vec<(String, u64)> = st
            .slots
            .vrf_of
            .iter()
            .enumerate()
            .map(|(slot, name)| (name.clone(), total.vrfs.get(slot).copied().unwrap_or(0)))
            .collect();
        (labels, vrfs)
    };
    let mut lp = LoopStats::default();
    for w in stats {
        lp += &w.loop_stats;
    }
    if as_json {
        let ports: Vec<_> = snap
            .ports()
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let c = total.ports.get(i).copied().unwrap_or_default();
                json!({"interface": p.name, "rx_packets": c.rx_packets, "rx_bytes": c.rx_bytes, "rx_drops": c.rx_drops, "tx_packets": c.tx_packets, "tx_bytes": c.tx_bytes})
            })
            .collect();
        let drops: serde_json::Map<String, serde_json::Value> = DropReason::ALL
            .iter()
            .map(|d| (d.name().to_string(), json!(total.drop_count(*d))))
            .collect();
        let punts: serde_json::Map<String, serde_json::Value> = Punt::ALL
            .iter()
            .map(|p| (p.name().to_string(), json!(total.punt_count(*p))))
            .collect();
        return json!({
            "interfaces": ports, "forwarded": total.forwarded, "arp_replies": total.arp_replies,
            "echo_replies": total.echo_replies, "drops": drops, "punts": punts,
            "labels": label_rows.iter().map(|(l, n)| json!({"label": l, "packets": n})).collect::<Vec<_>>(),
            "vrfs": vrf_rows.iter().map(|(v, n)| json!({"vrf": v, "lookups": n})).collect::<Vec<_>>(),
            "tx_ring_full": lp.tx_ring_full, "no_tx_socket": lp.no_tx_socket,
            "learned": lp.learned, "learn_dropped": lp.learn_dropped,
            "arp_requests_sent": lp.originated, "arp_requests_dropped": lp.originate_dropped,
        })
        .to_string();
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Counters of {} (summed over {} worker(s))",
        snap.name(),
        stats.len()
    );
    let _ = writeln!(
        s,
        "  {:<12} {:>14} {:>16} {:>12} {:>14} {:>16}",
        "Interface", "RX packets", "RX bytes", "RX drops", "TX packets", "TX bytes"
    );
    for (i, p) in snap.ports().iter().enumerate() {
        let c = total.ports.get(i).copied().unwrap_or_default();
        let _ = writeln!(
            s,
            "  {:<12} {:>14} {:>16} {:>12} {:>14} {:>16}",
            p.name, c.rx_packets, c.rx_bytes, c.rx_drops, c.tx_packets, c.tx_bytes
        );
    }
    let current: std::collections::HashSet<u32> =
        snap.ilm().entries().iter().map(|e| e.label.get()).collect();
    let _ = writeln!(
        s,
        "Incoming labels (packets; entries since removed are marked)"
    );
    for (label, n) in &label_rows {
        let gone = if current.contains(label) {
            ""
        } else {
            "  (removed)"
        };
        let _ = writeln!(s, "  {label:<10} {n:>14}{gone}");
    }
    let _ = writeln!(s, "VRFs (IP lookups)");
    for (name, n) in &vrf_rows {
        let _ = writeln!(s, "  {name:<16} {n:>14}");
    }
    let _ = writeln!(
        s,
        "Forwarded {} (ARP replies {}, echo replies {}); dropped {}; punted {}",
        total.forwarded,
        total.arp_replies,
        total.echo_replies,
        total.total_drops() + lp.tx_ring_full + lp.no_tx_socket,
        total.total_punts()
    );
    let _ = writeln!(s, "Drops by reason (non-zero)");
    for d in DropReason::ALL {
        let n = total.drop_count(*d);
        if n > 0 {
            let _ = writeln!(s, "  {:<22} {n}", d.name());
        }
    }
    for (name, n) in [
        ("tx-ring-full", lp.tx_ring_full),
        ("no-tx-socket", lp.no_tx_socket),
    ] {
        if n > 0 {
            let _ = writeln!(s, "  {name:<22} {n}");
        }
    }
    let _ = writeln!(s, "Punts by reason (non-zero; the live runtime has no path to the kernel: punted frames are dropped)");
    for p in Punt::ALL {
        let n = total.punt_count(*p);
        if n > 0 {
            let _ = writeln!(s, "  {:<22} {n}", p.name());
        }
    }
    let _ = writeln!(
        s,
        "Neighbours: {} ARP frames learned from ({} not passed on), {} ARP requests sent ({} dropped)",
        lp.learned, lp.learn_dropped, lp.originated, lp.originate_dropped
    );
    s
}

fn runtime_text(live: &Live, stats: &[WorkerStats], as_json: bool) -> String {
    let ghz = live.tsc_hz / 1e9;
    let rows: Vec<_> = stats
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let l = &w.loop_stats;
            (i, w, l, l.busy_cycles_per_packet(), l.average_batch())
        })
        .collect();
    if as_json {
        let workers: Vec<_> = rows
            .iter()
            .map(|(i, w, l, cpp, avg)| {
                json!({
                    "worker": i, "core": w.core, "packets": l.packets, "batches": l.batches,
                    "average_batch": avg, "polls": l.polls, "busy_polls": l.busy_polls,
                    "busy_cycles": l.busy_cycles, "busy_cycles_per_packet": cpp,
                    "tx_kicks": l.tx_kicks, "fill_wakeups": l.fill_wakeups, "sleeps": l.sleeps,
                    "frames": w.frames, "frames_free": w.ledger.free, "frames_in_fill": w.ledger.in_fill,
                    "frames_in_tx": w.ledger.in_tx, "frames_accounted": w.ledger.total(),
                })
            })
            .collect();
        return json!({"tsc_hz": live.tsc_hz, "uptime_s": live.started.elapsed().as_secs_f64(), "workers": workers}).to_string();
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Runtime: up {:.1} s, TSC {ghz:.2} GHz",
        live.started.elapsed().as_secs_f64()
    );
    let _ = writeln!(
        s,
        "  {:<7} {:<5} {:>12} {:>10} {:>7} {:>14} {:>10} {:>12} {:>10}",
        "Worker",
        "Core",
        "Packets",
        "Batches",
        "Avg",
        "Busy cycles",
        "Cyc/pkt",
        "Polls",
        "TX kicks"
    );
    for (i, w, l, cpp, avg) in &rows {
        let _ = writeln!(
            s,
            "  {:<7} {:<5} {:>12} {:>10} {:>7.1} {:>14} {:>10.0} {:>12} {:>10}",
            i,
            w.core.map_or("-".to_string(), |c| c.to_string()),
            l.packets,
            l.batches,
            avg,
            l.busy_cycles,
            cpp,
            l.polls,
            l.tx_kicks
        );
    }
    for (i, w, l, _, _) in &rows {
        let _ = writeln!(
            s,
            "  worker {i}: {} frames: {} free, {} on fill rings, {} on TX rings ({} accounted); {} busy polls, {} sleeps",
            w.frames,
            w.ledger.free,
            w.ledger.in_fill,
            w.ledger.in_tx,
            w.ledger.total(),
            l.busy_polls,
            l.sleeps
        );
    }
    s
}

fn neighbors_text(live: &Live, snap: &Snapshot, as_json: bool) -> String {
    let st = lock(&live.state);
    let rows: Vec<(String, String, String, &str)> = snap
        .adjacencies()
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let key = (a.port.0, a.vlan.map_or(0, |v| v.get()), a.next_hop);
            let origin = match (st.base.adjacencies().get(i).and_then(|b| b.mac), a.mac) {
                (Some(_), _) if st.hosts.contains_key(&key) => "learned",
                (Some(_), _) => "static",
                (None, Some(_)) => "learned",
                (None, None) => "incomplete",
            };
            (
                snap.attachment_name(a.attachment),
                a.next_hop.to_string(),
                a.mac.map_or("-".to_string(), |m| m.to_string()),
                origin,
            )
        })
        .collect();
    if as_json {
        let list: Vec<_> = rows
            .iter()
            .map(|(att, ip, mac, origin)| json!({"attachment": att, "ip": ip, "mac": mac, "state": origin}))
            .collect();
        return json!({"neighbors": list}).to_string();
    }
    let mut s = String::new();
    let _ = writeln!(s, "Neighbours");
    let _ = writeln!(
        s,
        "  {:<12} {:<16} {:<18} State",
        "Interface", "Address", "MAC"
    );
    for (att, ip, mac, origin) in rows {
        let _ = writeln!(s, "  {att:<12} {ip:<16} {mac:<18} {origin}");
    }
    s
}

fn interfaces_text(live: &Live, snap: &Snapshot, stats: &[WorkerStats], as_json: bool) -> String {
    let rt = lock(&live.runtime);
    let mut rows = Vec::new();
    if let Some(rt) = rt.as_ref() {
        for st in rt.steering() {
            let c = st.counters().unwrap_or_default();
            let port = snap.port_by_name(st.ifname()).map(|p| snap.port(p));
            let sockets: Vec<_> = rt
                .sockets()
                .iter()
                .filter(|s| s.ifname == st.ifname())
                .collect();
            let kernel = stats
                .iter()
                .flat_map(|w| w.sockets.iter())
                .filter(|(n, _, _)| n == st.ifname())
                .fold((0u64, 0u64, 0u64), |a, (_, _, k)| {
                    (
                        a.0 + k.rx_dropped,
                        a.1 + k.rx_ring_full,
                        a.2 + k.rx_fill_ring_empty,
                    )
                });
            rows.push((
                st.ifname().to_string(),
                port.map_or("?".into(), |p| format!("{}", p.kind)),
                port.map_or("?".into(), |p| p.mac.to_string()),
                st.mode().to_string(),
                sockets.len(),
                sockets.iter().any(|s| s.zero_copy),
                c.redirected,
                c.passed,
                kernel,
            ));
        }
    }
    if as_json {
        let list: Vec<_> = rows
            .iter()
            .map(|(n, kind, mac, mode, socks, zc, red, pass, k)| {
                json!({"interface": n, "kind": kind, "mac": mac, "xdp_mode": mode, "sockets": socks,
                       "zero_copy": zc, "xdp_redirected": red, "xdp_passed": pass,
                       "rx_dropped": k.0, "rx_ring_full": k.1, "rx_fill_ring_empty": k.2})
            })
            .collect();
        return json!({"interfaces": list}).to_string();
    }
    let mut s = String::new();
    let _ = writeln!(s, "Interfaces");
    let _ = writeln!(
        s,
        "  {:<12} {:<5} {:<18} {:<7} {:>7} {:<5} {:>12} {:>10} {:>10} {:>10} {:>10}",
        "Name",
        "Kind",
        "MAC",
        "XDP",
        "Sockets",
        "Copy",
        "Redirected",
        "Passed",
        "RX drop",
        "Ring full",
        "Fill empty"
    );
    for (n, kind, mac, mode, socks, zc, red, pass, k) in rows {
        let _ = writeln!(
            s,
            "  {:<12} {:<5} {:<18} {:<7} {:>7} {:<5} {:>12} {:>10} {:>10} {:>10} {:>10}",
            n,
            kind,
            mac,
            mode,
            socks,
            if zc { "zc" } else { "copy" },
            red,
            pass,
            k.0,
            k.1,
            k.2
        );
    }
    s
}

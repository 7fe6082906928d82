//! The typed answers laid out as the tables `xpe show` prints: counters, runtime figures,
//! neighbours and interfaces.

use std::fmt::Write as _;

use xpe_dataplane::pipeline::{DropReason, IcmpError, Punt, PuntClass};

use crate::api;

// Writing into a String cannot fail: the fmt::Results below are ignored for that reason.

/// `show counters`.
pub(super) fn counters(c: &api::Counters) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Counters of {} (summed over {} worker(s))",
        c.router, c.workers
    );
    let _ = writeln!(
        s,
        "  {:<12} {:>14} {:>16} {:>12} {:>14} {:>16}",
        "Interface", "RX packets", "RX bytes", "RX drops", "TX packets", "TX bytes"
    );
    for p in &c.interfaces {
        let _ = writeln!(
            s,
            "  {:<12} {:>14} {:>16} {:>12} {:>14} {:>16}",
            p.interface, p.rx_packets, p.rx_bytes, p.rx_drops, p.tx_packets, p.tx_bytes
        );
    }
    let _ = writeln!(
        s,
        "Incoming labels (packets; entries since removed are marked)"
    );
    for l in &c.labels {
        let gone = if l.removed { "  (removed)" } else { "" };
        let _ = writeln!(s, "  {:<10} {:>14}{gone}", l.label, l.packets);
    }
    let _ = writeln!(s, "VRFs (IP lookups)");
    for v in &c.vrfs {
        let _ = writeln!(s, "  {:<16} {:>14}", v.vrf, v.lookups);
    }
    let drops: u64 = c.drops.values().sum();
    let punts: u64 = c.punts.values().sum();
    let _ = writeln!(
        s,
        "Forwarded {} (ARP replies {}, echo replies {}, ND replies {}, echo6 replies {}); dropped {}; punted {}",
        c.forwarded,
        c.arp_replies,
        c.echo_replies,
        c.nd_replies,
        c.echo6_replies,
        drops + c.tx_ring_full + c.no_tx_socket,
        punts
    );
    if let Some(f) = &c.fast_path {
        let state = if f.live {
            String::new()
        } else {
            " (switched off: every frame goes to the workers)".to_string()
        };
        let _ = writeln!(
            s,
            "XDP fast path{state}: {} of the frames forwarded went through the kernel alone; {} label(s) in its table",
            f.forwarded, f.labels
        );
        if f.vrfs6_left_out > 0 {
            let _ = writeln!(
                s,
                "  IPv6 of {} VRF(s) goes to the workers: their routes do not fit in its IPv6 table",
                f.vrfs6_left_out
            );
        }
        if f.failed_updates > 0 || f.last_error.is_some() {
            let _ = writeln!(
                s,
                "  failed table updates {}; last error: {}",
                f.failed_updates,
                f.last_error.as_deref().unwrap_or("-")
            );
        }
    }
    if c.fragmented > 0 {
        let _ = writeln!(
            s,
            "Fragmented {} IPv4 packets (DF clear, too big for their egress) into {} fragments; {} fragments dropped (no buffer)",
            c.fragmented, c.fragments, c.fragments_dropped
        );
    }
    let errors: u64 = c.icmp_errors.values().sum();
    if errors + c.icmp_rate_limited > 0 {
        let _ = writeln!(
            s,
            "ICMP errors sent (in place of their packets, counted as forwarded above)"
        );
        for k in IcmpError::ALL {
            let n = c.icmp_errors.get(k.name()).copied().unwrap_or(0);
            if n > 0 {
                let _ = writeln!(
                    s,
                    "  {:<22} {n}  ({} packets answered)",
                    k.name(),
                    k.reason()
                );
            }
        }
        if c.icmp_rate_limited > 0 {
            let _ = writeln!(
                s,
                "  {:<22} {}  (not sent: over the rate; their packets are drops)",
                "rate-limited", c.icmp_rate_limited
            );
        }
    }
    // Reasons in the pipeline's order, not the map's alphabetical one.
    let _ = writeln!(s, "Drops by reason (non-zero)");
    let by_reason = DropReason::ALL
        .iter()
        .map(|d| (d.name(), c.drops.get(d.name()).copied().unwrap_or(0)));
    for (name, n) in by_reason.chain([
        ("tx-ring-full", c.tx_ring_full),
        ("no-tx-socket", c.no_tx_socket),
    ]) {
        if n > 0 {
            let _ = writeln!(s, "  {name:<22} {n}");
        }
    }
    if c.mirrors {
        let _ = writeln!(
            s,
            "Punts by reason (non-zero; to the kernel's mirrors, policed below)"
        );
    } else {
        let _ = writeln!(
            s,
            "Punts by reason (non-zero; no mirrors (--no-mirrors): punted frames are dropped)"
        );
    }
    for p in Punt::ALL {
        let n = c.punts.get(p.name()).copied().unwrap_or(0);
        if n > 0 {
            let _ = writeln!(s, "  {:<22} {n}", p.name());
        }
    }
    if c.mirrors {
        let _ = writeln!(
            s,
            "Control-plane policing (per class: passed to the kernel / dropped over the rate)"
        );
        for class in PuntClass::ALL {
            let p = c.policed.get(class.name()).copied().unwrap_or_default();
            let _ = writeln!(
                s,
                "  {:<22} {:>12} {:>12}",
                class.name(),
                p.passed,
                p.dropped
            );
        }
        let _ = writeln!(
            s,
            "Mirrors: {} punted frames found the queue full, {} had no mirror to go to; {} frames from the kernel sent, {} dropped",
            c.punt_queue_full, c.punt_no_mirror, c.injected, c.inject_dropped
        );
    }
    let _ = writeln!(
        s,
        "Neighbours: {} ARP and ND frames learned from ({} not passed on), {} ARP requests and neighbour solicitations sent ({} dropped)",
        c.learned, c.learn_dropped, c.arp_requests_sent, c.arp_requests_dropped
    );
    s
}

/// `show runtime`.
pub(super) fn runtime(r: &api::Runtime) -> String {
    let ghz = r.tsc_hz / 1e9;
    let mut s = String::new();
    let _ = writeln!(s, "Runtime: up {:.1} s, TSC {ghz:.2} GHz", r.uptime_s);
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
    for w in &r.workers {
        let _ = writeln!(
            s,
            "  {:<7} {:<5} {:>12} {:>10} {:>7.1} {:>14} {:>10.0} {:>12} {:>10}",
            w.worker,
            w.core.map_or("-".to_string(), |c| c.to_string()),
            w.packets,
            w.batches,
            w.average_batch,
            w.busy_cycles,
            w.busy_cycles_per_packet,
            w.polls,
            w.tx_kicks
        );
    }
    for w in &r.workers {
        let _ = writeln!(
            s,
            "  worker {}: {} frames: {} free, {} on fill rings, {} on TX rings ({} accounted); {} busy polls, {} sleeps",
            w.worker,
            w.frames,
            w.frames_free,
            w.frames_in_fill,
            w.frames_in_tx,
            w.frames_accounted,
            w.busy_polls,
            w.sleeps
        );
    }
    s
}

/// `show neighbors`.
pub(super) fn neighbors(n: &api::Neighbors) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Neighbours");
    // IPv6 addresses are wider than IPv4 ones: the column takes the longest.
    let width = n
        .neighbors
        .iter()
        .map(|e| e.ip.len())
        .max()
        .unwrap_or(0)
        .max(16);
    let _ = writeln!(
        s,
        "  {:<12} {:<width$} {:<18} State",
        "Interface", "Address", "MAC"
    );
    for e in &n.neighbors {
        let state = match e.state {
            api::NeighborState::Static => "static",
            api::NeighborState::Learned => "learned",
            api::NeighborState::Incomplete => "incomplete",
        };
        let _ = writeln!(
            s,
            "  {:<12} {:<width$} {:<18} {state}",
            e.attachment,
            e.ip,
            e.mac.as_deref().unwrap_or("-")
        );
    }
    s
}

/// `show interfaces`.
pub(super) fn interfaces(i: &api::Interfaces) -> String {
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
    for e in &i.interfaces {
        let kind = match e.kind {
            Some(api::PortKind::Core) => "core",
            Some(api::PortKind::Edge) => "edge",
            None => "?",
        };
        let mode = match e.xdp_mode {
            api::XdpMode::Native => "native",
            api::XdpMode::Skb => "skb",
            api::XdpMode::Auto => "auto",
        };
        let _ = writeln!(
            s,
            "  {:<12} {:<5} {:<18} {:<7} {:>7} {:<5} {:>12} {:>10} {:>10} {:>10} {:>10}",
            e.interface,
            kind,
            e.mac.as_deref().unwrap_or("?"),
            mode,
            e.sockets,
            if e.zero_copy { "zc" } else { "copy" },
            e.xdp_redirected,
            e.xdp_passed,
            e.rx_dropped,
            e.rx_ring_full,
            e.rx_fill_ring_empty
        );
    }
    if i.interfaces.iter().any(|e| e.xdp_fast_egress.is_some()) {
        let _ = writeln!(
            s,
            "XDP fast path (forwarded = received here and forwarded in the kernel; a veth takes its frames only while its peer has XDP or GRO on)"
        );
        let _ = writeln!(
            s,
            "  {:<12} {:>12} {:<10}",
            "Name", "Forwarded", "Sends out"
        );
        for e in &i.interfaces {
            let out = match e.xdp_fast_egress {
                Some(true) => "yes",
                Some(false) => "no",
                None => "-",
            };
            let _ = writeln!(
                s,
                "  {:<12} {:>12} {:<10}",
                e.interface, e.xdp_forwarded, out
            );
        }
    }
    if !i.mirrors.is_empty() {
        let _ = writeln!(
            s,
            "Mirrors (kernel devices; punted = to the kernel, injected = from it)"
        );
        let _ = writeln!(
            s,
            "  {:<15} {:<20} {:<14} {:<10} {:<18} {:>10} {:>10} {:>8}",
            "Name", "Namespace", "Mirrors", "VRF", "Address", "Punted", "Injected", "Errors"
        );
        for m in &i.mirrors {
            let errors = m.bad_length + m.inject_queue_full + m.write_errors + m.stale;
            let _ = writeln!(
                s,
                "  {:<15} {:<20} {:<14} {:<10} {:<18} {:>10} {:>10} {:>8}",
                m.name,
                m.namespace.as_deref().unwrap_or("(router's)"),
                m.mirrors,
                m.vrf,
                m.address.as_deref().unwrap_or("-"),
                m.punted,
                m.injected,
                errors
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_list_drops_in_the_pipelines_order_and_mark_removed_labels() {
        let mut c = api::Counters {
            router: "pe".into(),
            workers: 1,
            ..Default::default()
        };
        let first = DropReason::ALL[0].name();
        let last = DropReason::ALL[DropReason::ALL.len() - 1].name();
        c.drops.insert(first.into(), 1);
        c.drops.insert(last.into(), 2);
        c.tx_ring_full = 3;
        c.labels.push(api::LabelCount {
            label: 16002,
            packets: 5,
            removed: true,
        });
        let text = counters(&c);
        assert!(text.contains("dropped 6;"), "{text}");
        let (a, b) = (text.find(first).unwrap(), text.find(last).unwrap());
        assert!(a < b && text.find("tx-ring-full").unwrap() > b, "{text}");
        let row = format!("  {:<10} {:>14}  (removed)", 16002, 5);
        assert!(text.contains(&row), "{text}");
    }
}

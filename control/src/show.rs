//! Tables as a network engineer reads them: `show mpls forwarding-table`, `show ip route vrf`.

use crate::rib::{Rib, Source};
use std::io::{self, Write};
use std::path::Path;

use xpe_dataplane::tables::{Fec, FecId, IlmAction, IlmOrigin, PortKind, Snapshot, VrfId};

use crate::compile::Compiled;
use crate::config::Config;

/// Human-readable byte count.
pub fn bytes(n: usize) -> String {
    match n {
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

/// `xpe check`: one paragraph saying what the config builds.
pub fn summary(out: &mut dyn Write, path: &Path, config: &Config, c: &Compiled) -> io::Result<()> {
    let s = &c.snapshot;
    let routes: usize =
        config.routes.len() + config.vrfs.iter().map(|v| v.routes.len()).sum::<usize>();
    writeln!(out, "{}: ok", path.display())?;
    writeln!(
        out,
        "router {} (ttl-mode {}): {} interfaces ({} core, {} edge), {} VRFs + global, {} attachments",
        s.name(),
        s.ttl_mode(),
        s.ports().len(),
        s.ports().iter().filter(|p| p.kind == PortKind::Core).count(),
        s.ports().iter().filter(|p| p.kind == PortKind::Edge).count(),
        s.vrfs().len() - 1,
        s.attachments().len(),
    )?;
    writeln!(
        out,
        "{} static routes, {} neighbours, {} incoming labels, {} adjacencies, {} FECs",
        routes,
        config.neighbors.len(),
        s.ilm().len(),
        s.adjacencies().len(),
        s.fecs().len(),
    )?;
    let m = &c.mirrors;
    let names: Vec<String> = m
        .mirrors
        .iter()
        .map(|x| match &x.netns {
            Some(ns) => format!("{} ({ns})", x.name),
            None => x.name.clone(),
        })
        .collect();
    writeln!(out, "xpe run mirrors: {}", names.join(", "))?;
    if let Some(b) = &c.bgp {
        let core: Vec<String> = b
            .core
            .iter()
            .map(|p| format!("{} AS {}", p.address, p.asn))
            .collect();
        writeln!(
            out,
            "bgp: AS {}, router id {}, VPN next hop {}; core neighbours (VPNv4, VPNv6): {}",
            b.asn,
            b.router_id,
            b.next_hop,
            if core.is_empty() {
                "none".to_string()
            } else {
                core.join(", ")
            }
        )?;
        for v in &b.vrfs {
            let tags = |t: &[crate::bgp::Tag]| {
                if t.is_empty() {
                    "-".to_string()
                } else {
                    t.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                }
            };
            let ces: Vec<String> = v
                .ces
                .iter()
                .map(|p| {
                    format!(
                        "{} AS {}{}",
                        p.address,
                        p.asn,
                        if p.password.is_some() { " (MD5)" } else { "" }
                    )
                })
                .collect();
            writeln!(
                out,
                "bgp vrf {}: rd {}, import {}, export {}, VPN label {}; CE neighbours: {}; originates {}",
                v.name,
                v.rd.map_or("-".to_string(), |r| r.to_string()),
                tags(&v.import),
                tags(&v.export),
                v.label.map_or("-".to_string(), |l| l.to_string()),
                if ces.is_empty() { "none".to_string() } else { ces.join(", ") },
                v.originated.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            )?;
        }
    }
    for w in &c.warnings {
        writeln!(out, "warning: {w}")?;
    }
    Ok(())
}

/// Everything: interfaces, neighbours, labels, then every VRF.
pub fn all(out: &mut dyn Write, s: &Snapshot, rib: &Rib) -> io::Result<()> {
    writeln!(out, "Router {} (ttl-mode {})", s.name(), s.ttl_mode())?;
    writeln!(out)?;
    interfaces(out, s)?;
    writeln!(out)?;
    neighbors(out, s)?;
    writeln!(out)?;
    labels(out, s)?;
    for i in 0..s.vrfs().len() {
        writeln!(out)?;
        vrf(out, s, rib, VrfId(i as u16))?;
    }
    Ok(())
}

/// Interfaces with their attachments.
pub fn interfaces(out: &mut dyn Write, s: &Snapshot) -> io::Result<()> {
    writeln!(out, "Interfaces")?;
    writeln!(
        out,
        "  Name       Kind  MAC                  MTU  Attachments"
    )?;
    for (i, p) in s.ports().iter().enumerate() {
        let atts: Vec<String> = s
            .attachments()
            .iter()
            .filter(|a| usize::from(a.port.0) == i)
            .map(|a| {
                let vlan = a
                    .vlan
                    .map_or("untagged".to_string(), |v| format!("VLAN {v}"));
                let mut addr = a.address.map_or(String::new(), |p| format!(" {p}"));
                if let Some(p) = a.address6 {
                    addr.push_str(&format!(" {p}"));
                }
                format!("{vlan} vrf {}{addr}", s.vrf(a.vrf).name)
            })
            .collect();
        writeln!(
            out,
            "  {:<10} {:<5} {:<18} {:>5}  {}",
            p.name,
            p.kind.to_string(),
            p.mac.to_string(),
            p.mtu,
            if atts.is_empty() {
                "-".into()
            } else {
                atts.join("; ")
            }
        )?;
    }
    Ok(())
}

/// Adjacencies: next hops and their MACs.
pub fn neighbors(out: &mut dyn Write, s: &Snapshot) -> io::Result<()> {
    writeln!(out, "Adjacencies")?;
    // IPv6 next hops are wider than IPv4 ones: the column takes the longest.
    let width = s
        .adjacencies()
        .iter()
        .map(|a| a.next_hop.to_string().len())
        .max()
        .unwrap_or(0)
        .max(16);
    writeln!(
        out,
        "  {:<12} {:<width$} {:<18} VRF",
        "Interface", "Next hop", "MAC"
    )?;
    for a in s.adjacencies() {
        writeln!(
            out,
            "  {:<12} {:<width$} {:<18} {}",
            s.attachment_name(a.attachment),
            a.next_hop.to_string(),
            a.mac.map_or("incomplete".to_string(), |m| m.to_string()),
            s.vrf(s.attachment(a.attachment).vrf).name
        )?;
    }
    Ok(())
}

/// One row of the MPLS forwarding table, trailing blanks trimmed.
fn label_row(out: &mut dyn Write, cols: [&str; 5]) -> io::Result<()> {
    let [local, outgoing, prefix, ifname, next_hop] = cols;
    let line = format!("{local:<8} {outgoing:<16} {prefix:<16} {ifname:<12} {next_hop}");
    writeln!(out, "{}", line.trim_end())
}

/// The MPLS forwarding table, in the layout of `show mpls forwarding-table`.
pub fn labels(out: &mut dyn Write, s: &Snapshot) -> io::Result<()> {
    writeln!(out, "MPLS forwarding table")?;
    label_row(out, ["Local", "Outgoing", "Prefix", "Outgoing", "Next Hop"])?;
    label_row(out, ["Label", "Label", "or Tunnel Id", "Interface", ""])?;
    for e in s.ilm().entries() {
        let origin = match e.origin {
            IlmOrigin::LabelEntry(n) => format!("label entry {n}"),
            IlmOrigin::TableLabel => String::new(),
        };
        let (outgoing, what, ifname, nh) = match e.action {
            IlmAction::Swap { adj, out } => {
                let a = s.adjacency(adj);
                (
                    out.to_string(),
                    origin,
                    s.attachment_name(a.attachment),
                    a.next_hop.to_string(),
                )
            }
            IlmAction::Pop { adj } => {
                let a = s.adjacency(adj);
                (
                    "Pop Label".into(),
                    origin,
                    s.attachment_name(a.attachment),
                    a.next_hop.to_string(),
                )
            }
            IlmAction::PopLookup { vrf } => (
                "Pop Label".into(),
                format!("vrf {}", s.vrf(vrf).name),
                "aggregate".into(),
                String::new(),
            ),
        };
        label_row(out, [&e.label.to_string(), &outgoing, &what, &ifname, &nh])?;
    }
    label_row(out, ["0, 2", "Pop Label", "explicit null", "global", ""])
}

/// Describes where a FEC sends traffic: `via 198.18.0.2, core0, labels 16001/2001`.
pub fn describe_fec(s: &Snapshot, fec: FecId) -> String {
    match s.fecs().get(fec.0 as usize) {
        None => "(no such FEC)".into(),
        Some(Fec::Local) => "local (this router)".into(),
        Some(Fec::Glean { attachment }) => {
            format!("is directly connected, {}", s.attachment_name(*attachment))
        }
        Some(Fec::Forward { adj, push }) => {
            let a = s.adjacency(*adj);
            let mut t = format!("via {}, {}", a.next_hop, s.attachment_name(a.attachment));
            if !push.is_empty() {
                t.push_str(&format!(", labels {push}"));
            }
            if a.mac.is_none() {
                t.push_str(" (neighbour unresolved)");
            }
            t
        }
    }
}

/// One VRF's routing table, like `show ip route vrf NAME`: the best route of each prefix in
/// the RIB, described with the snapshot's FECs.
pub fn vrf(out: &mut dyn Write, s: &Snapshot, rib: &Rib, id: VrfId) -> io::Result<()> {
    let v = s.vrf(id);
    let label = v
        .table_label
        .map_or(String::new(), |l| format!(", table label {l}"));
    writeln!(
        out,
        "Routing table: vrf {} ({} routes{label}; LPM {} IPv4 + {} IPv6)",
        v.name,
        rib.len(id),
        bytes(v.v4.memory_bytes()),
        bytes(v.v6.memory_bytes()),
    )?;
    writeln!(
        out,
        "Codes: C - connected, L - local, N - neighbour host (static, or learned by ARP or ND), S - static, B - BGP"
    )?;
    for (prefix, r) in rib.routes(id) {
        let what = match r.source {
            Source::Local => "is our address".to_string(),
            _ => describe_fec(s, r.fec),
        };
        writeln!(
            out,
            "{}    {:<24} {what}",
            r.source.code(),
            prefix.to_string()
        )?;
    }
    Ok(())
}

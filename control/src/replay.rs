//! `xpe replay`: every frame of a capture through the pipeline, outputs written as pcapng.
//!
//! The ingress interface of a frame is the `if_name` of its pcapng interface block, or
//! `--interface` for captures without names (classic pcap). The output capture has one
//! interface block per port, named by `if_name`, so tshark shows where each frame left;
//! the drops capture holds the frames as they arrived, with the reason as the comment.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::time::Duration;

use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::{Block, PcapNgReader, PcapNgWriter};
use pcap_file::DataLink;
use xpe_dataplane::pipeline::punt::{Policer, PolicerConfig};
use xpe_dataplane::pipeline::{self, Counters, Frame, IcmpError, NoTrace, Verdict};
use xpe_dataplane::tables::{PortId, Snapshot};

use crate::error::Failure;
use crate::trace::HEADROOM;

/// What to replay and where to write.
#[derive(Debug)]
pub struct Options<'a> {
    /// Input capture.
    pub input: &'a Path,
    /// Output pcapng.
    pub output: &'a Path,
    /// Drops pcapng.
    pub drops: Option<&'a Path>,
    /// Ingress interface override.
    pub interface: Option<&'a str>,
    /// The config's rates: the ICMP errors sent are limited as a worker limits them, on the
    /// capture's clock.
    pub policer: PolicerConfig,
}

/// One captured frame and the interface it arrived on.
#[derive(Debug, Clone)]
pub struct Captured {
    /// Interface name from the capture, if it had one.
    pub ifname: Option<String>,
    /// Whether its link type is Ethernet.
    pub ethernet: bool,
    /// Capture time.
    pub timestamp: Duration,
    /// The bytes.
    pub data: Vec<u8>,
}

/// What a replay did.
#[derive(Debug, Default)]
pub struct Report {
    /// Frames read.
    pub frames: u64,
    /// Frames skipped because their link type is not Ethernet.
    pub not_ethernet: u64,
    /// The pipeline's counters.
    pub counters: Counters,
}

fn read_failure(path: &Path, e: impl std::fmt::Display) -> Failure {
    Failure::new(format!("cannot read capture {}: {e}", path.display()))
}

/// pcapng timestamps count units of `if_tsresol` (default microseconds); pcap-file hands
/// back the raw count as nanoseconds, so scale it here.
fn scale(raw: Duration, tsresol: u8) -> Duration {
    let units = raw.as_nanos();
    let nanos = if tsresol & 0x80 == 0 {
        let exp = u32::from(tsresol);
        if exp <= 9 {
            units.saturating_mul(10u128.pow(9 - exp))
        } else {
            units / 10u128.pow((exp - 9).min(38))
        }
    } else {
        let exp = u32::from(tsresol & 0x7f).min(127);
        units.saturating_mul(1_000_000_000) >> exp
    };
    Duration::from_nanos(nanos.min(u128::from(u64::MAX)) as u64)
}

/// Reads every frame of a pcapng or classic pcap file.
pub fn read_capture(path: &Path) -> Result<Vec<Captured>, Failure> {
    let mut file = File::open(path).map_err(|e| read_failure(path, e))?;
    let mut magic = [0u8; 4];
    file.read_exact(&mut magic)
        .map_err(|e| read_failure(path, e))?;
    let file = File::open(path).map_err(|e| read_failure(path, e))?;
    let mut frames = Vec::new();
    if magic == [0x0a, 0x0d, 0x0d, 0x0a] {
        let mut r = PcapNgReader::new(BufReader::new(file)).map_err(|e| read_failure(path, e))?;
        // (linktype is Ethernet, name, tsresol) per interface of the current section.
        let mut ifaces: Vec<(bool, Option<String>, u8)> = Vec::new();
        while let Some(block) = r.next_block() {
            match block.map_err(|e| read_failure(path, e))? {
                Block::SectionHeader(_) => ifaces.clear(),
                Block::InterfaceDescription(idb) => {
                    let mut name = None;
                    let mut tsresol = 6;
                    for o in &idb.options {
                        match o {
                            InterfaceDescriptionOption::IfName(n) => name = Some(n.to_string()),
                            InterfaceDescriptionOption::IfTsResol(t) => tsresol = *t,
                            _ => {}
                        }
                    }
                    ifaces.push((idb.linktype == DataLink::ETHERNET, name, tsresol));
                }
                Block::EnhancedPacket(p) => {
                    let Some((eth, name, tsresol)) = ifaces.get(p.interface_id as usize) else {
                        return Err(read_failure(
                            path,
                            format!(
                                "a packet names interface {} which has no description block",
                                p.interface_id
                            ),
                        ));
                    };
                    frames.push(Captured {
                        ifname: name.clone(),
                        ethernet: *eth,
                        timestamp: scale(p.timestamp, *tsresol),
                        data: p.data.into_owned(),
                    });
                }
                Block::SimplePacket(p) => {
                    let Some((eth, name, _)) = ifaces.first() else {
                        return Err(read_failure(
                            path,
                            "a simple packet comes before any interface block",
                        ));
                    };
                    frames.push(Captured {
                        ifname: name.clone(),
                        ethernet: *eth,
                        timestamp: Duration::ZERO,
                        data: p.data.into_owned(),
                    });
                }
                _ => {}
            }
        }
    } else {
        let mut r = PcapReader::new(BufReader::new(file)).map_err(|e| read_failure(path, e))?;
        let eth = r.header().datalink == DataLink::ETHERNET;
        while let Some(p) = r.next_packet() {
            let p = p.map_err(|e| read_failure(path, e))?;
            frames.push(Captured {
                ifname: None,
                ethernet: eth,
                timestamp: p.timestamp,
                data: p.data.into_owned(),
            });
        }
    }
    Ok(frames)
}

fn write_failure(path: &Path, e: impl std::fmt::Display) -> Failure {
    Failure::new(format!("cannot write {}: {e}", path.display()))
}

/// A pcapng writer with one Ethernet interface block per port, in port order.
fn writer_for(path: &Path, s: &Snapshot) -> Result<PcapNgWriter<BufWriter<File>>, Failure> {
    let file = File::create(path).map_err(|e| write_failure(path, e))?;
    let mut w = PcapNgWriter::new(BufWriter::new(file)).map_err(|e| write_failure(path, e))?;
    for p in s.ports() {
        let idb = InterfaceDescriptionBlock {
            linktype: DataLink::ETHERNET,
            snaplen: 0,
            options: vec![
                InterfaceDescriptionOption::IfName(Cow::Owned(p.name.clone())),
                InterfaceDescriptionOption::IfTsResol(9),
            ],
        };
        w.write_pcapng_block(idb)
            .map_err(|e| write_failure(path, e))?;
    }
    Ok(w)
}

fn write_frame(
    w: &mut PcapNgWriter<BufWriter<File>>,
    path: &Path,
    port: PortId,
    timestamp: Duration,
    data: &[u8],
    comments: &[&str],
) -> Result<(), Failure> {
    let block = EnhancedPacketBlock {
        interface_id: u32::from(port.0),
        timestamp,
        original_len: data.len() as u32,
        data: Cow::Borrowed(data),
        options: comments
            .iter()
            .map(|c| EnhancedPacketOption::Comment(Cow::Borrowed(*c)))
            .collect(),
    };
    w.write_pcapng_block(block)
        .map_err(|e| write_failure(path, e))?;
    Ok(())
}

/// Resolves the ingress port of every frame before anything is written.
fn ingress_ports(
    s: &Snapshot,
    frames: &[Captured],
    over: Option<&str>,
) -> Result<Vec<PortId>, Failure> {
    let names = || {
        s.ports()
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(name) = over {
        let Some(p) = s.port_by_name(name) else {
            return Err(Failure::new(format!(
                "--interface {name}: no such interface in the config"
            ))
            .hint(format!("the config has: {}", names())));
        };
        return Ok(vec![p; frames.len()]);
    }
    frames
        .iter()
        .enumerate()
        .map(|(i, f)| match &f.ifname {
            None => Err(Failure::new(format!(
                "frame {} of the capture has no interface name",
                i + 1
            ))
            .hint("give the ingress interface with --interface (classic pcap has no names)")),
            Some(n) => s.port_by_name(n).ok_or_else(|| {
                Failure::new(format!(
                    "the capture's interface \"{n}\" is not in the config"
                ))
                .hint(format!(
                    "the config has: {}; or override with --interface",
                    names()
                ))
            }),
        })
        .collect()
}

/// Replays a capture; nothing is written if the capture cannot be read or mapped.
pub fn run(s: &Snapshot, o: &Options<'_>) -> Result<Report, Failure> {
    let frames = read_capture(o.input)?;
    let ports = ingress_ports(s, &frames, o.interface)?;
    let mut out = writer_for(o.output, s)?;
    let mut drops = match o.drops {
        Some(p) => Some((writer_for(p, s)?, p)),
        None => None,
    };
    let mut report = Report {
        counters: Counters::new(s.ports().len()),
        ..Default::default()
    };
    let mut buf = Vec::new();
    let mut policer = Policer::new(&o.policer);
    for (f, &port) in frames.iter().zip(&ports) {
        report.frames += 1;
        if !f.ethernet {
            report.not_ethernet += 1;
            continue;
        }
        buf.clear();
        buf.resize(HEADROOM + f.data.len(), 0);
        buf[HEADROOM..].copy_from_slice(&f.data);
        let Some(mut frame) = Frame::new(&mut buf, HEADROOM, f.data.len()) else {
            continue;
        };
        let now = f.timestamp.as_nanos().min(u128::from(u64::MAX)) as u64;
        policer.settle_icmp(&mut report.counters.icmp_allowance, || now);
        let icmp_before = report.counters.icmp_sent;
        let verdict = pipeline::process(s, port, &mut frame, &mut report.counters, &mut NoTrace);
        // An ICMP error in place of the packet: said so, with the packet's drop reason.
        let icmp = IcmpError::ALL
            .iter()
            .find(|&&k| report.counters.icmp_sent[k as usize] != icmp_before[k as usize]);
        let comment = icmp.map(|k| format!("icmp {k}: {}", k.reason()));
        match verdict {
            Verdict::Forward(egress) => {
                let comments: Vec<&str> = comment.as_deref().into_iter().collect();
                write_frame(
                    &mut out,
                    o.output,
                    egress,
                    f.timestamp,
                    frame.data(),
                    &comments,
                )?;
                // The packet the error is about was dropped: it is in the drops capture too.
                if let (Some((w, p)), Some(k)) = (drops.as_mut(), icmp) {
                    let sent = format!("icmp {k} sent");
                    let reason = k.reason().name();
                    write_frame(w, p, port, f.timestamp, &f.data, &[reason, &sent])?;
                }
            }
            Verdict::Fragment(egress) => {
                // Each fragment is a frame of its own in the output.
                let mtu = s.port(egress).mtu;
                let comment = format!("ipv4 fragment (port mtu {mtu})");
                let mut failed = None;
                pipeline::fragment(
                    frame.data(),
                    usize::from(mtu),
                    egress,
                    &mut report.counters,
                    &mut |parts| {
                        let bytes = parts.concat();
                        let written = write_frame(
                            &mut out,
                            o.output,
                            egress,
                            f.timestamp,
                            &bytes,
                            &[&comment],
                        );
                        failed = written.err();
                        failed.is_none()
                    },
                );
                if let Some(e) = failed {
                    return Err(e);
                }
            }
            Verdict::Drop(r) => {
                if let Some((w, p)) = drops.as_mut() {
                    write_frame(w, p, port, f.timestamp, &f.data, &[r.name()])?;
                }
            }
            Verdict::Punt(r) => {
                if let Some((w, p)) = drops.as_mut() {
                    write_frame(w, p, port, f.timestamp, &f.data, &["punt", r.name()])?;
                }
            }
        }
    }
    out.get_mut()
        .flush()
        .map_err(|e| write_failure(o.output, e))?;
    if let Some((mut w, p)) = drops {
        w.get_mut().flush().map_err(|e| write_failure(p, e))?;
    }
    Ok(report)
}

/// Prints the counters of a replay: totals, per egress interface, per reason.
pub fn print_report(out: &mut dyn Write, s: &Snapshot, r: &Report) -> io::Result<()> {
    let c = &r.counters;
    writeln!(
        out,
        "replay: {} frames in, {} forwarded, {} dropped, {} punted{}",
        r.frames,
        c.forwarded,
        c.total_drops(),
        c.total_punts(),
        if r.not_ethernet > 0 {
            format!(", {} skipped (not Ethernet)", r.not_ethernet)
        } else {
            String::new()
        }
    )?;
    if c.arp_replies + c.echo_replies > 0 {
        writeln!(
            out,
            "  replies: {} ARP, {} ICMP echo",
            c.arp_replies, c.echo_replies
        )?;
    }
    if c.nd_replies + c.echo6_replies > 0 {
        writeln!(
            out,
            "  replies6: {} ND, {} ICMPv6 echo",
            c.nd_replies, c.echo6_replies
        )?;
    }
    for (i, p) in c.ports.iter().enumerate() {
        if p.tx_packets > 0 || p.rx_packets > 0 {
            writeln!(
                out,
                "  {:<10} in {:>6} frames {:>9} bytes   out {:>6} frames {:>9} bytes",
                s.ports()[i].name,
                p.rx_packets,
                p.rx_bytes,
                p.tx_packets,
                p.tx_bytes
            )?;
        }
    }
    // Each ICMP error took its packet's place: counted as forwarded, not as a drop.
    for k in IcmpError::ALL {
        let n = c.icmp_sent[*k as usize];
        if n > 0 {
            writeln!(out, "  icmp {:<22} {n}", k.name())?;
        }
    }
    if c.fragmented > 0 {
        writeln!(
            out,
            "  fragmented: {} packets, {} fragments, {} dropped",
            c.fragmented, c.fragments, c.fragments_dropped
        )?;
    }
    if c.icmp_rate_limited > 0 {
        writeln!(out, "  icmp {:<22} {}", "rate-limited", c.icmp_rate_limited)?;
    }
    for d in pipeline::DropReason::ALL {
        let n = c.drop_count(*d);
        if n > 0 {
            writeln!(out, "  drop {:<22} {n}", d.name())?;
        }
    }
    for p in pipeline::Punt::ALL {
        let n = c.punt_count(*p);
        if n > 0 {
            writeln!(out, "  punt {:<22} {n}", p.name())?;
        }
    }
    Ok(())
}

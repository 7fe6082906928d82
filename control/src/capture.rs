//! `xpe capture`: frames as a running instance's workers receive, send and drop them,
//! written as pcapng.
//!
//! On the control socket, after the [`Request::Capture`] line, the daemon answers with:
//! 1. a [`Response`] line: a refusal, or `ok` with the interface names by port ([`Start`]);
//! 2. binary records, each a 20-byte header and the frame:
//!    `u32 length, u8 kind, u8 drop reason, u16 port, u64 time (ns since the epoch),
//!    u32 zero`, little endian; kind 0 received, 1 sent, 2 dropped, 3 heartbeat (no frame,
//!    once a second, so a daemon sees a client that went away), 4 end;
//! 3. after the end record, the closing [`Response`] line: [`Summary`] as JSON.
//!
//! Frames travel in binary because a capture at saturation moves 100k frames a second;
//! JSON would triple the bytes and cost the daemon's thread an encoding per frame.

use std::borrow::Cow;
use std::io::{BufRead, BufWriter, Read, Write};
use std::path::Path;
use std::time::Duration;

use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::DataLink;
use serde::{Deserialize, Serialize};
use xpe_dataplane::pipeline::DropReason;

use crate::ctl::{CaptureRequest, Request, Response};
use crate::error::Failure;

/// A record's header length.
pub const HEADER: usize = 20;

/// What a record carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// A frame as received.
    Rx = 0,
    /// A frame as sent.
    Tx = 1,
    /// A frame dropped (as received).
    Drop = 2,
    /// Nothing: the daemon checks that the client is still there.
    Heartbeat = 3,
    /// The last record.
    End = 4,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        [Kind::Rx, Kind::Tx, Kind::Drop, Kind::Heartbeat, Kind::End]
            .into_iter()
            .find(|k| *k as u8 == b)
    }

    /// The direction's name in interface block names (`dx0:tx`).
    fn suffix(self) -> &'static str {
        match self {
            Kind::Rx => "rx",
            Kind::Tx => "tx",
            _ => "drop",
        }
    }
}

/// A record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// What follows.
    pub kind: Kind,
    /// The drop reason's index in [`DropReason::ALL`] (drops only).
    pub reason: u8,
    /// The port.
    pub port: u16,
    /// When, in nanoseconds since the epoch.
    pub time_ns: u64,
    /// The frame's length.
    pub len: u32,
}

impl Header {
    /// A record without a frame: a heartbeat or the end.
    pub fn bare(kind: Kind) -> Header {
        Header {
            kind,
            reason: 0,
            port: 0,
            time_ns: 0,
            len: 0,
        }
    }

    /// The header's bytes.
    pub fn encode(&self) -> [u8; HEADER] {
        let mut b = [0u8; HEADER];
        b[0..4].copy_from_slice(&self.len.to_le_bytes());
        b[4] = self.kind as u8;
        b[5] = self.reason;
        b[6..8].copy_from_slice(&self.port.to_le_bytes());
        b[8..16].copy_from_slice(&self.time_ns.to_le_bytes());
        b
    }

    /// The header these bytes encode, if they encode one.
    pub fn decode(b: &[u8; HEADER]) -> Option<Header> {
        Some(Header {
            len: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            kind: Kind::from_u8(b[4])?,
            reason: b[5],
            port: u16::from_le_bytes([b[6], b[7]]),
            time_ns: u64::from_le_bytes([b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]]),
        })
    }
}

/// The text of the first `ok` line: the interface names, by port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Start {
    /// Port names, indexed by port.
    pub ports: Vec<String>,
}

/// Counts by direction: received, sent, dropped.
pub type ByDirection = [u64; 3];

/// The text of the closing line.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Frames written to the client.
    pub written: ByDirection,
    /// Frames the workers queued that were not written: the count was reached, or the
    /// capture ended with them queued.
    pub not_written: ByDirection,
    /// Frames that matched but found a worker's queue full.
    pub missed: ByDirection,
    /// Why the capture ended: `count`, `duration`.
    pub ended_by: String,
    /// How long it ran, in seconds.
    pub seconds: f64,
}

impl Summary {
    /// Frames that matched the filter: written, not written or missed.
    pub fn matched(&self) -> u64 {
        (0..3)
            .map(|i| self.written[i] + self.not_written[i] + self.missed[i])
            .sum()
    }
}

/// `xpe capture`: asks the instance at `socket` for the frames `req` describes and writes
/// them to `path` as pcapng, one interface block per port and direction (`dx0:rx`,
/// `dx0:tx`, `dx0:drop`); drops carry their reason as the packet's comment. `-` is standard
/// output, flushed whenever the daemon has nothing more for the moment (`| tshark -r -`), and
/// the closing line then goes to standard error.
pub fn run(
    socket: &Path,
    req: CaptureRequest,
    path: &Path,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let to_stdout = path == Path::new("-");
    // The file first: an unwritable one is one sentence, before anything starts. It is
    // emptied only once the capture starts, and removed after a refusal only if this
    // command made it (it may be a FIFO, a device, or someone's earlier capture).
    let existed = to_stdout || path.symlink_metadata().is_ok();
    let file = if to_stdout {
        None
    } else {
        Some(
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)
                .map_err(|e| Failure::new(format!("cannot write {}: {e}", path.display())))?,
        )
    };
    let mut input = crate::ctl::open_watch(socket, &Request::Capture(req))?;
    let io = |e: std::io::Error| Failure::new(format!("talking to {}: {e}", socket.display()));
    let first = read_response(&mut input, socket)?;
    if !first.ok {
        if !existed {
            let _ignored = std::fs::remove_file(path);
        }
        return Err(Failure::new(first.text));
    }
    if let Some(f) = file
        .as_ref()
        .filter(|f| f.metadata().is_ok_and(|m| m.is_file()))
    {
        f.set_len(0)
            .map_err(|e| Failure::new(format!("cannot write {}: {e}", path.display())))?;
    }
    let sink: Box<dyn Write> = match file {
        Some(f) => Box::new(f),
        None => Box::new(std::io::stdout()),
    };
    let start: Start = serde_json::from_str(&first.text).map_err(|e| {
        Failure::new(format!(
            "{} answered an unreadable capture start: {e}",
            socket.display()
        ))
    })?;
    let write_failure =
        |e: pcap_file::PcapError| Failure::new(format!("cannot write {}: {e}", path.display()));
    let mut w = PcapNgWriter::new(BufWriter::new(sink)).map_err(write_failure)?;
    for name in &start.ports {
        for kind in [Kind::Rx, Kind::Tx, Kind::Drop] {
            let idb = InterfaceDescriptionBlock {
                linktype: DataLink::ETHERNET,
                snaplen: 0,
                options: vec![
                    InterfaceDescriptionOption::IfName(Cow::Owned(format!(
                        "{name}:{}",
                        kind.suffix()
                    ))),
                    InterfaceDescriptionOption::IfDescription(Cow::Owned(format!(
                        "{name}, frames {} by xpe's workers",
                        match kind {
                            Kind::Rx => "received",
                            Kind::Tx => "sent",
                            _ => "dropped",
                        }
                    ))),
                    InterfaceDescriptionOption::IfTsResol(9),
                ],
            };
            w.write_pcapng_block(idb).map_err(write_failure)?;
        }
    }
    let mut header = [0u8; HEADER];
    let mut data = Vec::new();
    loop {
        input.read_exact(&mut header).map_err(io)?;
        let h = Header::decode(&header).ok_or_else(|| {
            Failure::new(format!(
                "{} sent an unreadable capture record",
                socket.display()
            ))
        })?;
        data.resize(h.len as usize, 0);
        input.read_exact(&mut data).map_err(io)?;
        match h.kind {
            Kind::Heartbeat => {
                w.get_mut()
                    .flush()
                    .map_err(|e| Failure::new(format!("cannot write {}: {e}", path.display())))?;
                continue;
            }
            Kind::End => break,
            Kind::Rx | Kind::Tx | Kind::Drop => {}
        }
        let direction = h.kind as u32;
        let mut options = vec![EnhancedPacketOption::Flags(if h.kind == Kind::Tx {
            2 // outbound
        } else {
            1 // inbound
        })];
        if h.kind == Kind::Drop {
            let reason = DropReason::ALL
                .get(usize::from(h.reason))
                .map_or("unknown", |r| r.name());
            // The reason alone, as `xpe replay --drops` writes it.
            options.push(EnhancedPacketOption::Comment(Cow::Borrowed(reason)));
        }
        let block = EnhancedPacketBlock {
            interface_id: u32::from(h.port) * 3 + direction,
            timestamp: Duration::from_nanos(h.time_ns),
            original_len: h.len,
            data: Cow::Borrowed(&data),
            options,
        };
        w.write_pcapng_block(block).map_err(write_failure)?;
        if to_stdout && input.buffer().is_empty() {
            // A reader on the pipe sees frames as they come, not a buffer at a time.
            w.get_mut()
                .flush()
                .map_err(|e| Failure::new(format!("cannot write {}: {e}", path.display())))?;
        }
    }
    w.into_inner()
        .flush()
        .map_err(|e| Failure::new(format!("cannot write {}: {e}", path.display())))?;
    let last = read_response(&mut input, socket)?;
    if !last.ok {
        return Err(Failure::new(last.text));
    }
    let s: Summary = serde_json::from_str(&last.text).map_err(|e| {
        Failure::new(format!(
            "{} answered an unreadable summary: {e}",
            socket.display()
        ))
    })?;
    let [rx, tx, drops] = s.written;
    let written = rx + tx + drops;
    let mut stderr = std::io::stderr();
    let report: &mut dyn Write = if to_stdout { &mut stderr } else { out };
    let _ignored = writeln!(
        report,
        "{written} frames written to {} ({rx} received, {tx} sent, {drops} dropped) in {:.1} s, ended by {}; {} matched but missed (a worker's queue was full), {} queued after the end",
        path.display(),
        s.seconds,
        s.ended_by,
        s.missed.iter().sum::<u64>(),
        s.not_written.iter().sum::<u64>(),
    );
    if s.matched() == 0 {
        return Err(Failure::new(format!(
            "no frame matched the filter in {:.1} s",
            s.seconds
        ))
        .hint("check the interface, VLAN and directions asked for; `xpe show counters` says what moves"));
    }
    Ok(())
}

/// Reads one [`Response`] line.
fn read_response(input: &mut impl BufRead, socket: &Path) -> Result<Response, Failure> {
    let mut line = String::new();
    input
        .read_line(&mut line)
        .map_err(|e| Failure::new(format!("talking to {}: {e}", socket.display())))?;
    serde_json::from_str(&line).map_err(|e| {
        Failure::new(format!(
            "{} answered something that is not a response: {e}",
            socket.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip() {
        let h = Header {
            kind: Kind::Drop,
            reason: 16,
            port: 3,
            time_ns: 1_764_000_000_123_456_789,
            len: 1514,
        };
        assert_eq!(Header::decode(&h.encode()), Some(h));
        let mut bad = h.encode();
        bad[4] = 9;
        assert_eq!(Header::decode(&bad), None);
    }
}

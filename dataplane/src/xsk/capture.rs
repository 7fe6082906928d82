//! Live capture (`xpe capture`): copies of the frames the workers receive, send and drop.
//!
//! libpcap sees neither what an AF_XDP socket transmits nor what xpe drops, so the workers
//! copy matching frames themselves. A [`Tap`] is shared by the runtime and every worker.
//! While no capture runs, a worker's cost is one relaxed load and one compare per loop
//! iteration ([`Tap::generation`]) and three predictable branches per batch (trace before,
//! capture before and after the pipeline). A running [`Capture`] gives each worker a bounded queue
//! of its own: a worker never waits on it, and a frame that finds its queue full is counted
//! as missed. One capture runs at a time.
//!
//! The tap also carries live traces (`xpe trace --live`): a worker runs the next frames
//! that match a [`TraceFilter`] through the pipeline a second time, on a copy, with the
//! tracer of the offline `xpe trace`, and queues the steps ([`Traced`]). One trace runs at a
//! time, beside a capture or alone.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use super::umem::KERNEL_HEADROOM;
use crate::pipeline::{process, Counters, DropReason, Frame, IcmpError, Step, Verdict};
use crate::tables::{IpPrefix, PortId, Snapshot};

/// Which frames a capture takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Filter {
    /// Only frames received on, or sent out of, this port.
    pub port: Option<PortId>,
    /// Only frames whose outer 802.1Q tag carries this VLAN id.
    pub vlan: Option<u16>,
    /// Frames as received.
    pub rx: bool,
    /// Frames as sent, with the labels and tags pushed.
    pub tx: bool,
    /// Frames dropped, as received, with the reason.
    pub drops: bool,
}

impl Filter {
    /// Whether a frame on `port` with these bytes matches the port and VLAN parts.
    #[inline]
    pub fn matches(&self, port: PortId, data: &[u8]) -> bool {
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        match self.vlan {
            None => true,
            Some(v) => {
                data.len() >= 16
                    && u16::from_be_bytes([data[12], data[13]]) == 0x8100
                    && u16::from_be_bytes([data[14], data[15]]) & 0x0fff == v
            }
        }
    }
}

/// Where a captured frame was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Received.
    Rx,
    /// Sent.
    Tx,
    /// Dropped (the bytes are as received).
    Drop(DropReason),
}

impl Direction {
    /// The direction's place in a count by direction: received, sent, dropped.
    pub fn slot(self) -> usize {
        match self {
            Direction::Rx => 0,
            Direction::Tx => 1,
            Direction::Drop(_) => 2,
        }
    }
}

/// One captured frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    /// Received, sent or dropped.
    pub direction: Direction,
    /// The port it was received on or sent out of.
    pub port: PortId,
    /// When, in nanoseconds since the Unix epoch.
    pub time_ns: u64,
    /// The frame's bytes.
    pub data: Vec<u8>,
}

/// Frames a capture took and missed, per direction.
#[derive(Debug, Default)]
pub struct Counts {
    /// Queued for the reader: received, sent, dropped.
    pub queued: [AtomicU64; 3],
    /// Matched but not queued (the worker's queue was full): received, sent, dropped.
    pub missed: [AtomicU64; 3],
}

impl Counts {
    /// The counts as numbers: (queued, missed), each received, sent, dropped.
    pub fn read(&self) -> ([u64; 3], [u64; 3]) {
        let r = |a: &[AtomicU64; 3]| a.each_ref().map(|c| c.load(Ordering::Relaxed));
        (r(&self.queued), r(&self.missed))
    }
}

/// A running capture: its filter, one queue per worker, and what it counted.
#[derive(Debug)]
pub struct Capture {
    /// What it takes.
    pub filter: Filter,
    queues: Vec<Sender<Captured>>,
    /// What it took and missed.
    pub counts: Counts,
}

impl Capture {
    /// Offers a frame seen by `worker`: copied and queued when it matches, counted as missed
    /// when the queue is full.
    #[inline]
    pub fn offer(&self, worker: usize, direction: Direction, port: PortId, data: &[u8]) {
        let wanted = match direction {
            Direction::Rx => self.filter.rx,
            Direction::Tx => self.filter.tx,
            Direction::Drop(_) => self.filter.drops,
        };
        if !wanted || !self.filter.matches(port, data) {
            return;
        }
        let slot = direction.slot();
        let Some(queue) = self.queues.get(worker) else {
            return;
        };
        let time_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let record = Captured {
            direction,
            port,
            time_ns,
            data: data.to_vec(),
        };
        match queue.try_send(record) {
            Ok(()) => self.counts.queued[slot].fetch_add(1, Ordering::Relaxed),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.counts.missed[slot].fetch_add(1, Ordering::Relaxed)
            }
        };
    }
}

/// Which received frames a live trace takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TraceFilter {
    /// Only frames received on this port.
    pub port: Option<PortId>,
    /// Only frames whose outer 802.1Q tag carries this VLAN id.
    pub vlan: Option<u16>,
    /// Only labelled frames whose top label is this one.
    pub label: Option<u32>,
    /// Only IP packets (labelled or not) whose destination is in this prefix.
    pub prefix: Option<IpPrefix>,
}

impl TraceFilter {
    /// Whether a frame received on `port` with these bytes matches.
    pub fn matches(&self, port: PortId, data: &[u8]) -> bool {
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        let outer = Outer::of(data);
        self.vlan.is_none_or(|v| outer.vlan == Some(v))
            && self.label.is_none_or(|l| outer.label == Some(l))
            && self.prefix.is_none_or(|p| match (p, outer.dst) {
                (IpPrefix::V4(p), Some(core::net::IpAddr::V4(a))) => p.contains(a),
                (IpPrefix::V6(p), Some(core::net::IpAddr::V6(a))) => p.contains(a),
                _ => false,
            })
    }
}

/// What a trace filter looks at: the outer VLAN, the top label, the IP destination under
/// the labels. Read leniently: a frame too short for a field just lacks it (the pipeline,
/// not the filter, says what is wrong with it).
#[derive(Debug, Default, PartialEq, Eq)]
struct Outer {
    vlan: Option<u16>,
    label: Option<u32>,
    dst: Option<core::net::IpAddr>,
}

impl Outer {
    fn of(data: &[u8]) -> Outer {
        let u16_at = |at: usize| {
            data.get(at..at + 2)
                .map(|b| u16::from_be_bytes([b[0], b[1]]))
        };
        let mut out = Outer::default();
        let mut at = 12;
        let mut ethertype = u16_at(at);
        if ethertype == Some(0x8100) {
            out.vlan = u16_at(14).map(|tci| tci & 0x0fff);
            at = 16;
            ethertype = u16_at(at);
        }
        at += 2;
        if ethertype == Some(0x8847) {
            // Walk to the bottom of the stack (at most 16 entries).
            for depth in 0..16 {
                let Some(e) = data.get(at..at + 4) else {
                    return out;
                };
                let entry = u32::from_be_bytes([e[0], e[1], e[2], e[3]]);
                if depth == 0 {
                    out.label = Some(entry >> 12);
                }
                at += 4;
                if entry & 0x100 != 0 {
                    break;
                }
            }
            ethertype = match data.get(at).map(|b| b >> 4) {
                Some(4) => Some(0x0800),
                Some(6) => Some(0x86dd),
                _ => None,
            };
        }
        out.dst = match ethertype {
            Some(0x0800) => data
                .get(at + 16..at + 20)
                .map(|b| core::net::IpAddr::V4(core::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]))),
            Some(0x86dd) => data.get(at + 24..at + 40).map(|b| {
                let mut a = [0u8; 16];
                a.copy_from_slice(b);
                core::net::IpAddr::V6(core::net::Ipv6Addr::from(a))
            }),
            _ => None,
        };
        out
    }
}

/// One frame traced by a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Traced {
    /// The port it arrived on.
    pub port: PortId,
    /// When, in nanoseconds since the Unix epoch.
    pub time_ns: u64,
    /// The frame as received.
    pub input: Vec<u8>,
    /// Every stage, as the offline trace collects them.
    pub steps: Vec<Step>,
    /// The verdict.
    pub verdict: Verdict,
    /// The frame after the pipeline (rewritten when forwarded).
    pub output: Vec<u8>,
    /// The ICMP error the frame turned into, if it did.
    pub icmp: Option<IcmpError>,
}

impl Traced {
    /// Runs a copy of `data`, received on `ingress`, through the pipeline with a tracer that
    /// keeps every step, on counters of its own (so the frame is counted once, by whoever
    /// forwards it): what `xpe trace` does offline and a worker does for `xpe trace --live`.
    pub fn of(snap: &Snapshot, ingress: PortId, data: &[u8]) -> Option<Traced> {
        // The kernel's headroom: room for a VLAN tag and the deepest push, as a worker has.
        let headroom = KERNEL_HEADROOM as usize;
        let mut buf = vec![0u8; headroom + data.len()];
        buf[headroom..].copy_from_slice(data);
        let mut frame = Frame::new(&mut buf, headroom, data.len())?;
        let mut counters = Counters::new(snap.ports().len());
        let mut steps = Vec::new();
        let verdict = process(snap, ingress, &mut frame, &mut counters, &mut steps);
        let icmp = IcmpError::ALL
            .iter()
            .copied()
            .find(|&k| counters.icmp_sent[k as usize] > 0);
        Some(Traced {
            port: ingress,
            time_ns: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
            input: data.to_vec(),
            steps,
            verdict,
            output: frame.data().to_vec(),
            icmp,
        })
    }
}

/// A running live trace.
#[derive(Debug)]
pub struct TraceSession {
    /// Which frames.
    pub filter: TraceFilter,
    /// Frames still to trace.
    remaining: AtomicU64,
    queue: Sender<Traced>,
}

impl TraceSession {
    /// Claims one of the frames still to trace; false when none is left.
    #[inline]
    pub fn claim(&self) -> bool {
        self.remaining
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }

    /// Hands a traced frame to the reader (dropped if the reader is gone).
    pub fn deliver(&self, t: Traced) {
        let _reader_gone = self.queue.try_send(t);
    }
}

/// What reads a running trace. Dropping it stops the trace.
#[derive(Debug)]
pub struct TraceReader {
    tap: Arc<Tap>,
    /// The traced frames, in the order workers finished them.
    pub frames: Receiver<Traced>,
}

impl Drop for TraceReader {
    fn drop(&mut self) {
        self.tap.end(&self.tap.trace);
    }
}

/// Why a capture or trace could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TapError {
    /// Another capture runs.
    #[error("another capture is running (one at a time); wait for it to end")]
    Busy,
    /// Another live trace runs.
    #[error("another live trace is running (one at a time); wait for it to end")]
    TraceBusy,
}

/// The capture and trace slots the runtime and its workers share.
#[derive(Debug, Default)]
pub struct Tap {
    /// Bumped at every start and stop of a capture or a trace.
    generation: AtomicU64,
    current: Mutex<Option<Arc<Capture>>>,
    trace: Mutex<Option<Arc<TraceSession>>>,
}

/// What reads a running capture: the workers' queues. Dropping it stops the capture.
#[derive(Debug)]
pub struct Reader {
    tap: Arc<Tap>,
    /// The capture (for its counts).
    pub capture: Arc<Capture>,
    /// One queue per worker.
    pub queues: Vec<Receiver<Captured>>,
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.tap.stop();
    }
}

impl Tap {
    /// Starts a capture for `workers` workers, each with a queue of `depth` frames.
    pub fn start(
        self: &Arc<Tap>,
        filter: Filter,
        workers: usize,
        depth: usize,
    ) -> Result<Reader, TapError> {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if current.is_some() {
            return Err(TapError::Busy);
        }
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..workers)
            .map(|_| crossbeam_channel::bounded(depth))
            .unzip();
        let capture = Arc::new(Capture {
            filter,
            queues: senders,
            counts: Counts::default(),
        });
        *current = Some(capture.clone());
        self.generation.fetch_add(1, Ordering::Release);
        Ok(Reader {
            tap: self.clone(),
            capture,
            queues: receivers,
        })
    }

    /// Starts a live trace of the next `count` frames that match `filter`.
    pub fn start_trace(
        self: &Arc<Tap>,
        filter: TraceFilter,
        count: u64,
    ) -> Result<TraceReader, TapError> {
        let mut current = self.trace.lock().unwrap_or_else(|p| p.into_inner());
        if current.is_some() {
            return Err(TapError::TraceBusy);
        }
        // Workers claim frames before they trace them, so no more than `count` arrive.
        let (queue, frames) = crossbeam_channel::bounded(count.min(1 << 16) as usize);
        *current = Some(Arc::new(TraceSession {
            filter,
            remaining: AtomicU64::new(count),
            queue,
        }));
        self.generation.fetch_add(1, Ordering::Release);
        Ok(TraceReader {
            tap: self.clone(),
            frames,
        })
    }

    /// The running live trace, if any (a worker asks when the generation moved).
    pub fn tracing(&self) -> Option<Arc<TraceSession>> {
        self.trace.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Ends the running capture, if any.
    fn stop(&self) {
        self.end(&self.current);
    }

    /// Empties a session slot, and tells the workers when it held one.
    fn end<T>(&self, slot: &Mutex<Option<T>>) {
        let mut current = slot.lock().unwrap_or_else(|p| p.into_inner());
        if current.take().is_some() {
            self.generation.fetch_add(1, Ordering::Release);
        }
    }

    /// The generation: a worker compares it with the one it saw last, once per iteration.
    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// The running capture, if any (a worker asks when the generation moved).
    pub fn current(&self) -> Option<Arc<Capture>> {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tagged(vid: u16) -> Vec<u8> {
        let mut f = vec![0u8; 60];
        f[12..14].copy_from_slice(&0x8100u16.to_be_bytes());
        f[14..16].copy_from_slice(&vid.to_be_bytes());
        f
    }

    #[test]
    fn matching_frames_are_queued_and_a_full_queue_counts_misses() {
        let tap = Arc::new(Tap::default());
        let g0 = tap.generation();
        let filter = Filter {
            port: Some(PortId(1)),
            vlan: Some(101),
            tx: true,
            ..Filter::default()
        };
        let reader = tap.start(filter, 1, 2).expect("starts");
        assert_ne!(tap.generation(), g0);
        assert_eq!(tap.start(filter, 1, 2).unwrap_err(), TapError::Busy);
        let cap = tap.current().expect("running");
        cap.offer(0, Direction::Tx, PortId(1), &tagged(101));
        cap.offer(0, Direction::Tx, PortId(0), &tagged(101)); // other port
        cap.offer(0, Direction::Tx, PortId(1), &tagged(102)); // other VLAN
        cap.offer(0, Direction::Rx, PortId(1), &tagged(101)); // RX not asked for
        cap.offer(0, Direction::Tx, PortId(1), &tagged(101));
        cap.offer(0, Direction::Tx, PortId(1), &tagged(101)); // queue of 2 full
        assert_eq!(cap.counts.read(), ([0, 2, 0], [0, 1, 0]));
        assert_eq!(reader.queues[0].len(), 2);
        let g1 = tap.generation();
        drop(reader);
        assert!(tap.current().is_none());
        assert_ne!(tap.generation(), g1, "workers see the stop");
        assert!(
            tap.start(filter, 1, 2).is_ok(),
            "a new capture after the first"
        );
    }
}

#[cfg(test)]
mod trace_tests {
    use super::*;

    /// dst MAC, src MAC, [802.1Q vid], ethertype, then `rest`.
    fn frame(vid: Option<u16>, ethertype: u16, rest: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        if let Some(v) = vid {
            f.extend_from_slice(&0x8100u16.to_be_bytes());
            f.extend_from_slice(&v.to_be_bytes());
        }
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(rest);
        f
    }

    fn ipv4_to(dst: [u8; 4]) -> Vec<u8> {
        let mut ip = vec![0x45u8; 1];
        ip.resize(16, 0);
        ip.extend_from_slice(&dst);
        ip
    }

    fn label(value: u32, bos: bool) -> [u8; 4] {
        (value << 12 | u32::from(bos) << 8 | 64).to_be_bytes()
    }

    #[test]
    fn the_filter_reads_vlan_label_and_the_destination_under_the_labels() {
        let tagged = frame(Some(101), 0x0800, &ipv4_to([198, 18, 20, 2]));
        let mut stack = label(16002, false).to_vec();
        stack.extend_from_slice(&label(2001, true));
        stack.extend_from_slice(&ipv4_to([198, 18, 20, 2]));
        let labelled = frame(None, 0x8847, &stack);
        let prefix = |p: &str| Some(p.parse::<IpPrefix>().expect("prefix"));
        let f = |vlan, label, prefix| TraceFilter {
            port: None,
            vlan,
            label,
            prefix,
        };
        let p0 = PortId(0);
        assert!(f(Some(101), None, prefix("198.18.20.0/24")).matches(p0, &tagged));
        assert!(!f(Some(102), None, None).matches(p0, &tagged));
        assert!(!f(None, Some(16002), None).matches(p0, &tagged));
        assert!(f(None, Some(16002), prefix("198.18.20.2/32")).matches(p0, &labelled));
        assert!(
            !f(None, Some(2001), None).matches(p0, &labelled),
            "top label only"
        );
        assert!(!f(None, None, prefix("198.18.10.0/24")).matches(p0, &labelled));
        assert!(!f(None, None, prefix("2001:db8::/32")).matches(p0, &labelled));
        let other_port = TraceFilter {
            port: Some(PortId(1)),
            ..TraceFilter::default()
        };
        assert!(!other_port.matches(p0, &tagged));
        // Cut anywhere: never a panic, at most no match.
        for cut in 0..labelled.len() {
            let _ = f(None, Some(16002), prefix("198.18.20.0/24")).matches(p0, &labelled[..cut]);
        }
    }

    #[test]
    fn a_trace_session_hands_out_exactly_its_count() {
        let tap = Arc::new(Tap::default());
        let reader = tap.start_trace(TraceFilter::default(), 2).expect("starts");
        assert_eq!(
            tap.start_trace(TraceFilter::default(), 1).unwrap_err(),
            TapError::TraceBusy
        );
        let t = tap.tracing().expect("running");
        assert!(t.claim() && t.claim() && !t.claim());
        drop(reader);
        assert!(tap.tracing().is_none());
    }
}

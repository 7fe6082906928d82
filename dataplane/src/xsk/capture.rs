//! Live capture (`xpe capture`): copies of the frames the workers receive, send and drop.
//!
//! libpcap sees neither what an AF_XDP socket transmits nor what xpe drops, so the workers
//! copy matching frames themselves. A [`Tap`] is shared by the runtime and every worker.
//! While no capture runs, a worker's whole cost is one relaxed load and one compare per loop
//! iteration ([`Tap::generation`]). A running [`Capture`] gives each worker a bounded queue
//! of its own: a worker never waits on it, and a frame that finds its queue full is counted
//! as missed. One capture runs at a time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::pipeline::DropReason;
use crate::tables::PortId;

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
    fn matches(&self, port: PortId, data: &[u8]) -> bool {
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
        let slot = match direction {
            Direction::Rx => 0,
            Direction::Tx => 1,
            Direction::Drop(_) => 2,
        };
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

/// Why a capture could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TapError {
    /// Another capture runs.
    #[error("another capture is running (one at a time); wait for it to end")]
    Busy,
}

/// The capture slot the runtime and its workers share.
#[derive(Debug, Default)]
pub struct Tap {
    /// Even: no capture; odd: `current` holds one. Bumped at every start and stop.
    generation: AtomicU64,
    current: Mutex<Option<Arc<Capture>>>,
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

    /// Ends the running capture, if any.
    fn stop(&self) {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
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
        assert_eq!(tap.generation() % 2, 0);
        let filter = Filter {
            port: Some(PortId(1)),
            vlan: Some(101),
            tx: true,
            ..Filter::default()
        };
        let reader = tap.start(filter, 1, 2).expect("starts");
        assert_eq!(tap.generation() % 2, 1);
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
        drop(reader);
        assert!(tap.current().is_none());
        assert_eq!(tap.generation() % 2, 0);
        assert!(
            tap.start(filter, 1, 2).is_ok(),
            "a new capture after the first"
        );
    }
}

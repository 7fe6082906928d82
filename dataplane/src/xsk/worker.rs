//! The per-core run loop: busy-polls its sockets, runs each received batch through the
//! pipeline on the UMEM frames in place, and transmits on the egress socket of the same UMEM.
//!
//! One iteration: reap TX completions, take a batch from every RX ring (the snapshot is
//! loaded once per iteration), queue forwarded frames per egress socket, commit each TX ring
//! once, kick TX whenever frames are pending (a kick only after RX strands frames:
//! shared/MEASURING.md) and as often as it takes to send what an iteration receives (copy
//! mode sends `tx_budget` frames per kick), refill the fill rings in bulk, and sleep in `poll`
//! only after many iterations found every ring idle.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use xdpilone::xdp::XdpDesc;

use super::capture::{Capture, Direction, Tap, TraceSession, Traced};
use super::mirror::{InjectLink, PuntLink};
use super::socket::XskSocket;
use super::umem::{
    FrameLedger, Umem, FRAME_SIZE, KERNEL_HEADROOM, MAX_FRAME, MAX_JUMBO_FRAME, REGION_CHUNKS,
    REGION_SIZE,
};
use crate::pipeline::learn::{self, Neighbor};
use crate::pipeline::punt::{punt_class, Policer, PolicerConfig};
use crate::pipeline::{
    fragment, process_batch, route_from_kernel, Counters, DropReason, Frame, Punt, Verdict,
};
use crate::tables::{AttachmentId, PortId, Published};
use core::net::IpAddr;

/// Frames taken from one RX ring per iteration.
pub const BATCH: usize = 64;
/// Frames a socket's kicks try to send per iteration: twice a batch, so a backlog drains.
const KICK_SHARE: u32 = 2 * BATCH as u32;
/// Consecutive idle iterations before the loop sleeps in `poll`.
const IDLE_SPINS: u32 = 2048;
/// Longest sleep: bounds how late a stop request or a frame to originate is seen when idle.
const IDLE_SLEEP_MS: i32 = 5;
/// Iterations between two publications of the counters.
const PUBLISH_EVERY: u64 = 512;
/// Frames to originate taken per iteration (ARP requests from the control side).
const ORIGINATE_PER_ITERATION: usize = 16;
/// Room reserved in a socket's TX queue for IPv4 fragments: a batch of jumbo frames cut for
/// a 1500-byte MTU. More still go out (the queue grows once).
const FRAGMENTS_PER_BATCH: usize = BATCH * 8;
/// Frames from the kernel's mirrors taken per iteration.
const INJECT_PER_ITERATION: usize = 64;

/// What a worker tells the control side about neighbours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A neighbour seen in an ARP or neighbour discovery frame on a port.
    Learned {
        /// The port it was seen on.
        port: PortId,
        /// What the frame told.
        neighbor: Neighbor,
    },
    /// A host on a connected subnet that frames were dropped for (no MAC): resolve it.
    Glean {
        /// The attachment whose subnet it is on.
        attachment: AttachmentId,
        /// The host.
        ip: IpAddr,
    },
}

/// A frame the control side asks a worker to send (an ARP request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Originated {
    /// The egress port.
    pub port: PortId,
    /// The whole frame.
    pub frame: Vec<u8>,
}

/// What a worker's loop counted (besides the pipeline's counters).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoopStats {
    /// Loop iterations.
    pub polls: u64,
    /// Iterations that found work.
    pub busy_polls: u64,
    /// Frames received.
    pub packets: u64,
    /// Non-empty RX batches.
    pub batches: u64,
    /// TSC cycles spent in iterations that found work.
    pub busy_cycles: u64,
    /// TX kicks (`sendto`).
    pub tx_kicks: u64,
    /// Fill-ring wakeups (`poll`).
    pub fill_wakeups: u64,
    /// Sleeps in `poll` after the rings stayed idle.
    pub sleeps: u64,
    /// Forwarded frames dropped because the egress TX ring was full.
    pub tx_ring_full: u64,
    /// Forwarded frames whose egress port has no socket in this worker.
    pub no_tx_socket: u64,
    /// Descriptors from the kernel that did not fit a frame (never expected).
    pub bad_descriptors: u64,
    /// Multi-buffer frames dropped: too many pieces, too long, or no idle jumbo region.
    pub jumbo_dropped: u64,
    /// Neighbour events (learned, glean) passed to the control side.
    pub learned: u64,
    /// Neighbour events not passed because the control side was behind.
    pub learn_dropped: u64,
    /// Frames originated for the control side.
    pub originated: u64,
    /// Frames to originate that found no free frame or no socket.
    pub originate_dropped: u64,
    /// Punted frames within their policing rate that found the mirror thread's queue (or
    /// its buffer pool) full: the kernel side is behind.
    pub punt_queue_full: u64,
    /// Frames from the kernel's mirrors sent (or routed).
    pub injected: u64,
    /// Frames from the kernel's mirrors that found no free UMEM frame, no socket for their
    /// port, or were too long.
    pub inject_dropped: u64,
}

impl LoopStats {
    /// Busy TSC cycles per received packet (0 before any packet).
    pub fn busy_cycles_per_packet(&self) -> f64 {
        ratio(self.busy_cycles, self.packets)
    }

    /// Packets per non-empty RX batch (0 before any batch).
    pub fn average_batch(&self) -> f64 {
        ratio(self.packets, self.batches)
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

impl core::ops::AddAssign<&LoopStats> for LoopStats {
    fn add_assign(&mut self, o: &LoopStats) {
        let LoopStats {
            polls,
            busy_polls,
            packets,
            batches,
            busy_cycles,
            tx_kicks,
            fill_wakeups,
            sleeps,
            tx_ring_full,
            no_tx_socket,
            bad_descriptors,
            jumbo_dropped,
            learned,
            learn_dropped,
            originated,
            originate_dropped,
            punt_queue_full,
            injected,
            inject_dropped,
        } = o;
        self.polls += polls;
        self.busy_polls += busy_polls;
        self.packets += packets;
        self.batches += batches;
        self.busy_cycles += busy_cycles;
        self.tx_kicks += tx_kicks;
        self.fill_wakeups += fill_wakeups;
        self.sleeps += sleeps;
        self.tx_ring_full += tx_ring_full;
        self.no_tx_socket += no_tx_socket;
        self.bad_descriptors += bad_descriptors;
        self.jumbo_dropped += jumbo_dropped;
        self.learned += learned;
        self.learn_dropped += learn_dropped;
        self.originated += originated;
        self.originate_dropped += originate_dropped;
        self.punt_queue_full += punt_queue_full;
        self.injected += injected;
        self.inject_dropped += inject_dropped;
    }
}

/// A worker's published state, read by the control side.
#[derive(Debug, Clone, Default)]
pub struct WorkerStats {
    /// The pipeline's counters.
    pub counters: Counters,
    /// The loop's counters.
    pub loop_stats: LoopStats,
    /// Where the UMEM's frames are.
    pub ledger: FrameLedger,
    /// Frames in the UMEM.
    pub frames: u64,
    /// Per socket: (interface, queue, kernel statistics).
    pub sockets: Vec<(String, u32, super::socket::SocketStats)>,
    /// The core the worker is pinned to, if any.
    pub core: Option<usize>,
    /// Whether the loop has ended (after a stop request).
    pub stopped: bool,
}

/// What a worker does with each received batch: the router's pipeline, or (in the benches)
/// a trivial forwarder measured on exactly the same I/O loop.
pub trait Stage: Send + 'static {
    /// Decides every frame of a batch that arrived on `ingress`, rewriting frames in place;
    /// `verdicts[i]` is the verdict of `frames[i]`.
    fn batch(
        &mut self,
        ingress: PortId,
        frames: &mut [Frame<'_>],
        verdicts: &mut [Verdict],
        counters: &mut Counters,
    );

    /// Routes a frame the kernel sent on the mirror of `attachment` to the router's own MAC.
    /// The MTU of a port (labels + IP), for cutting a [`Verdict::Fragment`]; the default (the
    /// benches' forwarder, which never fragments) knows none.
    fn port_mtu(&self, port: PortId) -> Option<u16> {
        let _ = port;
        None
    }

    /// Runs a copy of a received frame through the stage again with the offline trace's
    /// tracer, for `xpe trace --live`; the default (the benches' forwarder) explains nothing.
    fn trace(&mut self, ingress: PortId, data: &[u8]) -> Option<Traced> {
        let _ = (ingress, data);
        None
    }

    /// The default (the benches' forwarder, which has no tables) drops it.
    fn route_from_kernel(
        &mut self,
        attachment: AttachmentId,
        frame: &mut Frame<'_>,
        counters: &mut Counters,
    ) -> Verdict {
        let _ = (attachment, frame, counters);
        Verdict::Drop(DropReason::FromKernelNotRouted)
    }
}

/// The router's stage: the pipeline over the published tables, loaded once per batch (an
/// arc-swap load: no lock, no reference count touched).
pub struct Pipeline(pub Arc<Published>);

impl Stage for Pipeline {
    #[inline]
    fn batch(
        &mut self,
        ingress: PortId,
        frames: &mut [Frame<'_>],
        verdicts: &mut [Verdict],
        counters: &mut Counters,
    ) {
        let snap = self.0.load();
        process_batch(&snap, ingress, frames, verdicts, counters);
    }

    fn route_from_kernel(
        &mut self,
        attachment: AttachmentId,
        frame: &mut Frame<'_>,
        counters: &mut Counters,
    ) -> Verdict {
        route_from_kernel(&self.0.load(), attachment, frame, counters)
    }

    fn trace(&mut self, ingress: PortId, data: &[u8]) -> Option<Traced> {
        Traced::of(&self.0.load(), ingress, data)
    }

    fn port_mtu(&self, port: PortId) -> Option<u16> {
        self.0
            .load()
            .ports()
            .get(usize::from(port.0))
            .map(|p| p.mtu)
    }
}

/// Channels and flags a worker shares with the rest of the process.
pub struct WorkerLinks {
    /// Set to stop every worker.
    pub stop: Arc<AtomicBool>,
    /// Where the worker publishes its counters.
    pub stats: Arc<Mutex<WorkerStats>>,
    /// Neighbours seen in ARP frames.
    pub learn: Sender<Event>,
    /// Frames to originate.
    pub originate: Receiver<Originated>,
    /// Where punted frames go to the kernel's mirrors (`None`: mirrors off, punts are
    /// counted and dropped).
    pub punt: Option<PuntLink>,
    /// Frames the kernel sent on its mirrors (worker 0 only).
    pub inject: Option<InjectLink>,
    /// Control-plane policing rates.
    pub policer: PolicerConfig,
    /// Where `xpe capture` asks for copies of frames.
    pub tap: Arc<Tap>,
    /// The worker's index (its queue in a capture).
    pub index: usize,
}

/// One worker: a UMEM, the sockets on it, its stage, and the loop's state.
pub struct Worker<S: Stage> {
    stage: S,
    // Field order is drop order: sockets close before their UMEM is unregistered and unmapped.
    sockets: Vec<XskSocket>,
    umem: Umem,
    /// Egress socket of each port (by `PortId`), if this worker has one.
    tx_of_port: Vec<Option<usize>>,
    /// Descriptors to transmit per socket, filled during an iteration.
    tx_pending: Vec<Vec<XdpDesc>>,
    /// Multi-buffer (jumbo) state.
    jumbo: Jumbo,
    /// One entry per socket, for `poll` when every ring is idle.
    pollfds: Vec<libc::pollfd>,
    filled: u64,
    received: u64,
    transmitted: u64,
    completed: u64,
    core: Option<usize>,
    links: WorkerLinks,
    /// Control-plane policing of what goes to the kernel.
    policer: Policer,
    /// The policer's clock.
    clock: std::time::Instant,
    /// The tap's generation when last looked at, and the capture running then.
    tap_seen: u64,
    capturing: Option<Arc<Capture>>,
    tracing: Option<Arc<TraceSession>>,
    /// Copies of a batch's frames as received, while a capture takes drops.
    as_received: Vec<Vec<u8>>,
}

/// The descriptor option saying "more pieces of this frame follow" (linux/if_xdp.h).
const XDP_PKT_CONTD: u32 = 1;
/// Most pieces one received frame may have (a 9216-byte frame takes three).
const MAX_PIECES: usize = 6;

/// Multi-buffer frames: with XDP_USE_SG a frame longer than a chunk arrives as several
/// descriptors. The pieces are copied into one jumbo region (consecutive chunks, never on a
/// fill ring) so the pipeline sees one slice, as for every other frame; the region is sent
/// as one descriptor per chunk it spans. This copy is the one place frames are copied: the
/// pipeline reads and rewrites headers in one slice, and copy mode has already copied the
/// frame once in the kernel anyway.
struct Jumbo {
    /// Idle regions.
    free: Vec<usize>,
    /// Descriptors of each region on a TX ring.
    outstanding: Vec<u32>,
    /// Pieces received so far of the frame being received, per socket.
    partial: Vec<Vec<XdpDesc>>,
}

/// Where a frame of a batch lives.
#[derive(Clone, Copy)]
enum Home {
    /// A chunk (its base address).
    Chunk(u64),
    /// A jumbo region.
    Region(usize),
}

/// The cycle counter the loop measures busy time with (the TSC on x86_64).
#[inline]
pub fn cycles() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: RDTSC has no preconditions; every x86_64 CPU has it.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        use std::sync::OnceLock;
        static T0: OnceLock<std::time::Instant> = OnceLock::new();
        T0.get_or_init(std::time::Instant::now).elapsed().as_nanos() as u64
    }
}

impl<S: Stage> Worker<S> {
    /// A worker over `umem` and its bound `sockets`, pinned to `core` when it runs.
    pub fn new(
        stage: S,
        umem: Umem,
        sockets: Vec<XskSocket>,
        core: Option<usize>,
        links: WorkerLinks,
    ) -> Worker<S> {
        let ports = sockets
            .iter()
            .map(|s| usize::from(s.port.0) + 1)
            .max()
            .unwrap_or(0);
        let mut tx_of_port = vec![None; ports];
        for (i, s) in sockets.iter().enumerate() {
            let slot = &mut tx_of_port[usize::from(s.port.0)];
            if slot.is_none() {
                *slot = Some(i);
            }
        }
        let ring = sockets.len();
        let mut umem = umem;
        let frames = umem.frames() as usize;
        umem.free_list().reserve(frames);
        let regions = umem.regions() as usize;
        let jumbo = Jumbo {
            free: (0..regions).rev().collect(),
            outstanding: vec![0; regions],
            partial: (0..ring).map(|_| Vec::with_capacity(MAX_PIECES)).collect(),
        };
        let pollfds = sockets
            .iter()
            .map(|s| libc::pollfd {
                fd: s.fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        Worker {
            stage,
            jumbo,
            pollfds,
            tx_pending: (0..ring)
                // Room for the worst iteration, so pushing never reallocates: every socket's
                // batch to one egress, each frame a jumbo frame of REGION_CHUNKS pieces.
                .map(|_| {
                    Vec::with_capacity(
                        ring * BATCH * REGION_CHUNKS as usize
                            + ORIGINATE_PER_ITERATION
                            + INJECT_PER_ITERATION * REGION_CHUNKS as usize
                            + FRAGMENTS_PER_BATCH,
                    )
                })
                .collect(),
            sockets,
            umem,
            tx_of_port,
            filled: 0,
            received: 0,
            transmitted: 0,
            completed: 0,
            core,
            policer: Policer::new(&links.policer),
            clock: std::time::Instant::now(),
            tap_seen: links.tap.generation(),
            capturing: links.tap.current(),
            tracing: links.tap.tracing(),
            as_received: Vec::new(),
            links,
        }
    }

    /// The sockets (interface, queue, fd), to fill the XSKMAP with.
    pub fn sockets(&self) -> impl Iterator<Item = &XskSocket> {
        self.sockets.iter()
    }

    /// Where the frames are now.
    pub fn ledger(&self) -> FrameLedger {
        let region_chunks = u64::from(self.umem.regions()) * u64::from(REGION_CHUNKS);
        let region_in_tx: u64 = self.jumbo.outstanding.iter().map(|&n| u64::from(n)).sum();
        FrameLedger {
            free: self.umem.free_frames() as u64 + region_chunks - region_in_tx,
            in_fill: self.filled - self.received,
            in_tx: self.transmitted - self.completed,
            held: self.jumbo.partial.iter().map(|p| p.len() as u64).sum(),
        }
    }

    /// Runs the loop until the stop flag is set, then waits briefly for frames in flight on
    /// TX to complete and publishes its final counters.
    pub fn run(mut self) {
        if let Some(id) = self.core {
            // Pinning is best effort: an unpinned worker still forwards correctly, and
            // `show runtime` reports the core it asked for next to the figures.
            core_affinity::set_for_current(core_affinity::CoreId { id });
        }
        let mut counters = Counters::new(0);
        let mut stats = LoopStats::default();
        for s in 0..self.sockets.len() {
            self.refill(s);
        }
        let mut idle = 0u32;
        while !self.links.stop.load(Ordering::Relaxed) {
            let t0 = cycles();
            let mut work = 0usize;
            // No capture: one load and one compare per iteration.
            let generation = self.links.tap.generation();
            if generation != self.tap_seen {
                self.tap_seen = generation;
                self.capturing = self.links.tap.current();
                self.tracing = self.links.tap.tracing();
            }
            for s in 0..self.sockets.len() {
                work += self.reap(s);
            }
            for s in 0..self.sockets.len() {
                work += self.receive(s, &mut counters, &mut stats);
            }
            work += self.originate(&mut stats);
            work += self.inject(&mut counters, &mut stats);
            for s in 0..self.sockets.len() {
                work += self.transmit(s, &mut stats);
                self.refill(s);
            }
            stats.polls += 1;
            if work > 0 {
                stats.busy_polls += 1;
                stats.busy_cycles += cycles().wrapping_sub(t0);
                idle = 0;
            } else {
                idle += 1;
                if idle >= IDLE_SPINS {
                    self.sleep(&mut stats);
                    self.publish(&counters, &stats, false);
                }
            }
            if stats.polls.is_multiple_of(PUBLISH_EVERY) {
                self.publish(&counters, &stats, false);
            }
        }
        // Let frames already on TX rings go out so the ledger ends with them back home.
        for _ in 0..20 {
            let mut pending = 0;
            for s in 0..self.sockets.len() {
                self.transmit(s, &mut stats);
                self.reap(s);
                pending += self.sockets[s].tx.pending();
            }
            if pending == 0 && self.transmitted == self.completed {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.publish(&counters, &stats, true);
    }

    /// Returns completed TX frames of socket `s` to the free list.
    fn reap(&mut self, s: usize) -> usize {
        let sock = &mut self.sockets[s];
        let mut done = sock.comp.complete(super::RING_SIZE);
        let mut n = 0;
        while let Some(addr) = done.read() {
            match self.umem.region_of(addr) {
                None => self.umem.free_list().push(Umem::chunk_of(addr)),
                Some(r) => release_region(&mut self.jumbo, r),
            }
            n += 1;
        }
        done.release();
        self.completed += n as u64;
        n
    }

    /// Takes one batch from socket `s`'s RX ring through the pipeline.
    fn receive(&mut self, s: usize, counters: &mut Counters, stats: &mut LoopStats) -> usize {
        let mut descs = [XdpDesc {
            addr: 0,
            len: 0,
            options: 0,
        }; BATCH];
        let n = {
            let mut rx = self.sockets[s].rx.receive(BATCH as u32);
            let mut n = 0;
            while let Some(d) = rx.read() {
                descs[n] = d;
                n += 1;
            }
            rx.release();
            n
        };
        if n == 0 {
            return 0;
        }
        // Start every frame's first cache line loading before the pipeline reads any of them
        // (see `Umem::prefetch`).
        for d in &descs[..n] {
            self.umem.prefetch(d.addr);
        }
        self.received += n as u64;
        let ingress = self.sockets[s].port;
        let mut frames: [Frame<'_>; BATCH] = core::array::from_fn(|_| Frame::default());
        let mut homes = [Home::Chunk(0); BATCH];
        let mut m = 0;
        for &d in &descs[..n] {
            let base = Umem::chunk_of(d.addr);
            let offset = (d.addr - base) as usize;
            if base >= self.umem.regions_base() || offset + d.len as usize > FRAME_SIZE as usize {
                // The kernel never hands out such a descriptor; if it did, the chunk is
                // dropped from circulation only if it is not ours, and counted.
                stats.bad_descriptors += 1;
                if base < self.umem.regions_base() {
                    self.umem.free_list().push(base);
                }
                continue;
            }
            if d.options & XDP_PKT_CONTD != 0 || !self.jumbo.partial[s].is_empty() {
                // A piece of a multi-buffer frame: gathered until its last piece.
                self.jumbo.partial[s].push(d);
                if d.options & XDP_PKT_CONTD != 0 && self.jumbo.partial[s].len() < MAX_PIECES {
                    continue;
                }
                match self.gather(s, d.options & XDP_PKT_CONTD != 0) {
                    Some((r, len)) => {
                        // SAFETY: `gather` just took region `r` off the idle list, so user
                        // space owns it and nothing else refers to it.
                        let region = unsafe { self.umem.region_mut(r) };
                        frames[m] =
                            Frame::new(region, KERNEL_HEADROOM as usize, len).unwrap_or_default();
                        homes[m] = Home::Region(r);
                        m += 1;
                    }
                    None => stats.jumbo_dropped += 1,
                }
                continue;
            }
            // SAFETY: `base` is the chunk of a descriptor just read from our RX ring, inside
            // this UMEM and below the regions (checked above); the kernel gave the frame to
            // user space, and each chunk is on the RX ring once, so no other slice covers it.
            let chunk = unsafe { self.umem.chunk_mut(base) };
            frames[m] = Frame::new(chunk, offset, d.len as usize).unwrap_or_default();
            homes[m] = Home::Chunk(base);
            m += 1;
        }
        if m == 0 {
            return n;
        }
        stats.packets += m as u64;
        stats.batches += 1;
        let mut verdicts = [Verdict::Drop(crate::pipeline::DropReason::Truncated); BATCH];
        let replies_before = counters.arp_replies + counters.nd_replies;
        let clock = &self.clock;
        self.policer.settle_icmp(&mut counters.icmp_allowance, || {
            clock.elapsed().as_nanos() as u64
        });
        if let Some(t) = self.tracing.clone() {
            for f in &frames[..m] {
                if t.filter.matches(ingress, f.data()) && t.claim() {
                    if let Some(traced) = self.stage.trace(ingress, f.data()) {
                        t.deliver(traced);
                    }
                }
            }
        }
        let capture = self.capturing.clone();
        if let Some(cap) = &capture {
            // The buffers are kept from batch to batch: no allocation once they have grown.
            self.as_received.resize_with(BATCH, Vec::new);
            for (f, copy) in frames[..m].iter().zip(&mut self.as_received) {
                cap.offer(self.links.index, Direction::Rx, ingress, f.data());
                copy.clear();
                if cap.filter.drops && cap.filter.matches(ingress, f.data()) {
                    copy.extend_from_slice(f.data());
                }
            }
        }
        self.stage
            .batch(ingress, &mut frames[..m], &mut verdicts[..m], counters);
        let we_replied = counters.arp_replies + counters.nd_replies != replies_before;
        if !counters.glean.is_empty() {
            for (attachment, ip) in counters.glean.drain() {
                self.tell(Event::Glean { attachment, ip }, stats);
            }
        }
        let mut punted = false;
        let mut now_ns = None;
        for i in 0..m {
            let frame = &frames[i];
            let verdict = verdicts[i];
            if matches!(verdict, Verdict::Punt(Punt::Arp | Punt::Nd)) {
                self.learn(ingress, frame.data(), false, stats);
            }
            if let (Verdict::Punt(_), Some(link)) = (verdict, &self.links.punt) {
                // Policed per class, then copied to the mirror thread: no syscall, no lock.
                let class = punt_class(frame.data());
                let now = *now_ns.get_or_insert_with(|| self.clock.elapsed().as_nanos() as u64);
                let policed = &mut counters.policed[class as usize];
                if !self.policer.allow(class, now) {
                    policed.dropped += 1;
                } else if link.queue(ingress, frame.data()) {
                    policed.passed += 1;
                    punted = true;
                } else {
                    stats.punt_queue_full += 1;
                }
            }
            let egress = match verdict {
                Verdict::Forward(port) => {
                    if we_replied {
                        self.learn(ingress, frame.data(), true, stats);
                    }
                    let egress = self.tx_of_port.get(usize::from(port.0)).copied().flatten();
                    if egress.is_none() {
                        stats.no_tx_socket += 1;
                    }
                    egress
                }
                _ => None,
            };
            if let Verdict::Fragment(port) = verdict {
                // Cut into free frames of their own; the original's buffer is freed below.
                self.send_fragments(port, frame.data(), counters, stats);
            }
            match (homes[i], egress) {
                (Home::Chunk(base), Some(e)) => self.tx_pending[e].push(XdpDesc {
                    addr: base + frame.start() as u64,
                    len: frame.len() as u32,
                    options: 0,
                }),
                (Home::Chunk(base), None) => self.umem.free_list().push(base),
                (Home::Region(r), Some(e)) => {
                    queue_region(
                        &mut self.tx_pending[e],
                        &mut self.jumbo,
                        self.umem.regions_base(),
                        r,
                        frame.start(),
                        frame.len(),
                    );
                }
                (Home::Region(r), None) => self.jumbo.free.push(r),
            }
        }
        if let Some(cap) = &capture {
            // The frames are still in their buffers: transmit comes later in the iteration.
            for (i, frame) in frames[..m].iter().enumerate() {
                match verdicts[i] {
                    Verdict::Forward(port)
                        if self
                            .tx_of_port
                            .get(usize::from(port.0))
                            .is_some_and(Option::is_some) =>
                    {
                        cap.offer(self.links.index, Direction::Tx, port, frame.data());
                    }
                    Verdict::Drop(reason) => match self.as_received.get(i) {
                        Some(data) if !data.is_empty() => {
                            cap.offer(self.links.index, Direction::Drop(reason), ingress, data)
                        }
                        _ => {}
                    },
                    _ => {}
                }
            }
        }
        if punted {
            if let Some(link) = &self.links.punt {
                link.waker.wake();
            }
        }
        n
    }

    /// Sends or routes frames the kernel sent on its mirrors (worker 0 only): each is copied
    /// into a free UMEM frame (a jumbo region when it is longer than a chunk) and queued on
    /// its port's socket, or routed in its attachment's VRF when it was sent to our MAC.
    fn inject(&mut self, counters: &mut Counters, stats: &mut LoopStats) -> usize {
        let Some(link) = &self.links.inject else {
            return 0;
        };
        let mut n = 0;
        while n < INJECT_PER_ITERATION {
            let Ok(injected) = link.frames.try_recv() else {
                break;
            };
            n += 1;
            let len = injected.buf.len();
            let start = KERNEL_HEADROOM as usize;
            let home = if len <= MAX_FRAME as usize {
                self.umem.free_list().pop().map(Home::Chunk)
            } else if len <= MAX_JUMBO_FRAME as usize {
                self.jumbo.free.pop().map(Home::Region)
            } else {
                None
            };
            let Some(home) = home else {
                stats.inject_dropped += 1;
                let _pool_full = link.free.try_send(injected.buf);
                continue;
            };
            let buf = match home {
                // SAFETY: the chunk came off the free list, so user space owns it and nothing
                // else refers to it until it is queued for TX below.
                Home::Chunk(base) => unsafe { self.umem.chunk_mut(base) },
                // SAFETY: the region came off the idle list: user space owns it and no other
                // slice covers it while this one lives.
                Home::Region(r) => unsafe { self.umem.region_mut(r) },
            };
            buf[start..start + len].copy_from_slice(&injected.buf);
            let mut frame = Frame::new(buf, start, len).unwrap_or_default();
            let _pool_full = link.free.try_send(injected.buf);
            let port = match injected.route {
                Some(att) => match self.stage.route_from_kernel(att, &mut frame, counters) {
                    Verdict::Forward(port) => Some(port),
                    _ => None,
                },
                None => {
                    if let Some(p) = counters.ports.get_mut(usize::from(injected.port.0)) {
                        p.tx_packets += 1;
                        p.tx_bytes += len as u64;
                    }
                    Some(injected.port)
                }
            };
            let egress =
                port.and_then(|p| self.tx_of_port.get(usize::from(p.0)).copied().flatten());
            if let (Some(cap), Some(p), Some(_)) = (&self.capturing, port, egress) {
                cap.offer(self.links.index, Direction::Tx, p, frame.data());
            }
            match (home, egress) {
                (Home::Chunk(base), Some(e)) => {
                    self.tx_pending[e].push(XdpDesc {
                        addr: base + frame.start() as u64,
                        len: frame.len() as u32,
                        options: 0,
                    });
                    stats.injected += 1;
                }
                (Home::Region(r), Some(e)) => {
                    queue_region(
                        &mut self.tx_pending[e],
                        &mut self.jumbo,
                        self.umem.regions_base(),
                        r,
                        frame.start(),
                        frame.len(),
                    );
                    stats.injected += 1;
                }
                (Home::Chunk(base), None) => {
                    self.umem.free_list().push(base);
                    if injected.route.is_none() {
                        stats.inject_dropped += 1;
                    }
                }
                (Home::Region(r), None) => {
                    self.jumbo.free.push(r);
                    if injected.route.is_none() {
                        stats.inject_dropped += 1;
                    }
                }
            }
        }
        n
    }

    /// Copies the pieces gathered on socket `s` into an idle jumbo region and returns the
    /// chunks to the free list; `None` (the frame dropped) when the frame is cut short
    /// (`unfinished`: too many pieces), too long for a region, or no region is idle.
    fn gather(&mut self, s: usize, unfinished: bool) -> Option<(usize, usize)> {
        let pieces = core::mem::take(&mut self.jumbo.partial[s]);
        let len: usize = pieces.iter().map(|d| d.len as usize).sum();
        let region = if unfinished || len > MAX_JUMBO_FRAME as usize {
            None
        } else {
            self.jumbo.free.pop()
        };
        if let Some(r) = region {
            // SAFETY: `r` was just taken off the idle list: user space owns it and no other
            // slice covers it while this one lives.
            let dst = unsafe { self.umem.region_mut(r) };
            let mut at = KERNEL_HEADROOM as usize;
            for d in &pieces {
                let base = Umem::chunk_of(d.addr);
                let offset = (d.addr - base) as usize;
                // SAFETY: each piece is a chunk below the regions that the RX ring handed to
                // user space (checked when it was read) and that nothing else refers to.
                let src = unsafe { self.umem.chunk_mut(base) };
                dst[at..at + d.len as usize].copy_from_slice(&src[offset..offset + d.len as usize]);
                at += d.len as usize;
            }
        }
        for d in &pieces {
            self.umem.free_list().push(Umem::chunk_of(d.addr));
        }
        // Give the (now empty) vector back so its capacity is reused.
        let mut pieces = pieces;
        pieces.clear();
        self.jumbo.partial[s] = pieces;
        region.map(|r| (r, len))
    }

    /// Passes the neighbour an ARP or neighbour discovery frame tells about to the control side.
    fn learn(&self, port: PortId, frame: &[u8], built_by_us: bool, stats: &mut LoopStats) {
        if let Some(neighbor) = learn::neighbor(frame, built_by_us) {
            self.tell(Event::Learned { port, neighbor }, stats);
        }
    }

    /// Sends an event to the control side, counting it if the queue is full.
    fn tell(&self, event: Event, stats: &mut LoopStats) {
        match self.links.learn.try_send(event) {
            Ok(()) => stats.learned += 1,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => stats.learn_dropped += 1,
        }
    }

    /// Queues the IPv4 fragments of a frame (`Verdict::Fragment`) on `port`'s socket, each
    /// copied into a free UMEM frame; those with no free frame are counted.
    fn send_fragments(
        &mut self,
        port: PortId,
        data: &[u8],
        counters: &mut Counters,
        stats: &mut LoopStats,
    ) {
        let (Some(e), Some(mtu)) = (
            self.tx_of_port.get(usize::from(port.0)).copied().flatten(),
            self.stage.port_mtu(port),
        ) else {
            stats.no_tx_socket += 1;
            return;
        };
        let (umem, pending) = (&mut self.umem, &mut self.tx_pending[e]);
        let (capture, index) = (&self.capturing, self.links.index);
        let start = KERNEL_HEADROOM as usize;
        let mut out = |parts: &[&[u8]; 3]| {
            let len: usize = parts.iter().map(|p| p.len()).sum();
            if len > MAX_FRAME as usize {
                return false;
            }
            let Some(base) = umem.free_list().pop() else {
                return false;
            };
            // SAFETY: `base` came off the free list, so user space owns the chunk and
            // nothing else refers to it until it is queued for TX below.
            let chunk = unsafe { umem.chunk_mut(base) };
            let mut at = start;
            for p in parts {
                chunk[at..at + p.len()].copy_from_slice(p);
                at += p.len();
            }
            if let Some(cap) = capture {
                cap.offer(index, Direction::Tx, port, &chunk[start..start + len]);
            }
            pending.push(XdpDesc {
                addr: base + start as u64,
                len: len as u32,
                options: 0,
            });
            true
        };
        fragment(data, usize::from(mtu), port, counters, &mut out);
    }

    /// Queues frames the control side asked for (ARP requests) on their egress sockets.
    fn originate(&mut self, stats: &mut LoopStats) -> usize {
        let mut n = 0;
        while n < ORIGINATE_PER_ITERATION {
            let Ok(o) = self.links.originate.try_recv() else {
                break;
            };
            n += 1;
            let egress = self
                .tx_of_port
                .get(usize::from(o.port.0))
                .copied()
                .flatten();
            let (Some(e), Some(base)) = (egress, self.umem.free_list().pop()) else {
                stats.originate_dropped += 1;
                continue;
            };
            let start = KERNEL_HEADROOM as usize;
            if o.frame.len() > MAX_FRAME as usize {
                stats.originate_dropped += 1;
                self.umem.free_list().push(base);
                continue;
            }
            // SAFETY: `base` came off the free list, so user space owns the chunk and nothing
            // else refers to it until it is queued for TX below.
            let chunk = unsafe { self.umem.chunk_mut(base) };
            chunk[start..start + o.frame.len()].copy_from_slice(&o.frame);
            if let Some(cap) = &self.capturing {
                cap.offer(self.links.index, Direction::Tx, o.port, &o.frame);
            }
            self.tx_pending[e].push(XdpDesc {
                addr: base + start as u64,
                len: o.frame.len() as u32,
                options: 0,
            });
            stats.originated += 1;
        }
        n
    }

    /// Commits socket `s`'s pending frames to its TX ring (frames that do not fit are
    /// dropped and counted) and kicks the kernel while any are unsent; returns a non-zero
    /// count while TX work remains.
    fn transmit(&mut self, s: usize, stats: &mut LoopStats) -> usize {
        let pending = &mut self.tx_pending[s];
        let sock = &mut self.sockets[s];
        let queued = pending.len();
        if queued > 0 {
            // A reservation may return fewer slots than the ring has (xdpilone checks its
            // cached view of the consumer first), so reserve again until the ring is full.
            let mut sent = 0;
            while sent < queued {
                let mut tx = sock.tx.transmit((queued - sent) as u32);
                let room = tx.capacity() as usize;
                // Whole frames only: never the first pieces of a multi-buffer frame without
                // its last.
                let fit = pending[sent..sent + room]
                    .iter()
                    .rposition(|d| d.options & XDP_PKT_CONTD == 0)
                    .map_or(0, |i| i + 1);
                if fit == 0 {
                    break;
                }
                tx.insert(pending[sent..sent + fit].iter().copied());
                tx.commit();
                sent += fit;
            }
            self.transmitted += sent as u64;
            for d in &pending[sent..] {
                match self.umem.region_of(d.addr) {
                    None => self.umem.free_list().push(Umem::chunk_of(d.addr)),
                    Some(r) => release_region(&mut self.jumbo, r),
                }
                if d.options & XDP_PKT_CONTD == 0 {
                    stats.tx_ring_full += 1;
                }
            }
            pending.clear();
        }
        let unsent = sock.tx.pending();
        if unsent > 0 && sock.tx.needs_wakeup() {
            // One copy-mode kick transmits at most `tx_budget` frames. Kick until what one
            // iteration may receive is out: a loop that takes in more than it sends only
            // fills the TX ring, drops there, and sends frames gone cold in the cache.
            let kicks = unsent.min(KICK_SHARE).div_ceil(sock.tx_budget.max(1));
            for k in 0..kicks {
                if k > 0 && sock.tx.pending() == 0 {
                    break;
                }
                sock.tx.wake();
                stats.tx_kicks += 1;
            }
        }
        unsent as usize
    }

    /// Gives free frames to socket `s`'s fill ring, in one reservation.
    fn refill(&mut self, s: usize) {
        let free = self.umem.free_list();
        if free.is_empty() {
            return;
        }
        let sock = &mut self.sockets[s];
        // Twice: the first reservation may stop at xdpilone's cached view of the ring.
        for _ in 0..2 {
            let mut fill = sock.fill.fill(free.len() as u32);
            let room = fill.capacity() as usize;
            if room == 0 {
                break;
            }
            let from = free.len() - room;
            fill.insert(free[from..].iter().copied());
            fill.commit();
            drop(fill);
            free.truncate(from);
            self.filled += room as u64;
            if free.is_empty() {
                break;
            }
        }
    }

    /// Sleeps until a socket has a frame, or briefly, when every ring has been idle.
    fn sleep(&mut self, stats: &mut LoopStats) {
        for sock in &mut self.sockets {
            if sock.fill.needs_wakeup() {
                sock.fill.wake();
                stats.fill_wakeups += 1;
            }
        }
        let fds = &mut self.pollfds;
        // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs for the whole call.
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, IDLE_SLEEP_MS) };
        stats.sleeps += 1;
    }

    /// Copies the counters to the shared slot, unless the control side holds it right now.
    fn publish(&self, counters: &Counters, stats: &LoopStats, stopped: bool) {
        let mut slot = match self.links.stats.try_lock() {
            Ok(slot) => slot,
            Err(std::sync::TryLockError::WouldBlock) if !stopped => return,
            Err(std::sync::TryLockError::WouldBlock) => match self.links.stats.lock() {
                Ok(slot) => slot,
                Err(poisoned) => poisoned.into_inner(),
            },
            Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        };
        slot.counters.copy_from(counters);
        slot.loop_stats = *stats;
        slot.ledger = self.ledger();
        slot.frames = u64::from(self.umem.frames());
        slot.core = self.core;
        slot.stopped = stopped;
        if slot.sockets.len() != self.sockets.len()
            || stopped
            || stats.polls.is_multiple_of(PUBLISH_EVERY * 64)
        {
            slot.sockets.clear();
            slot.sockets.extend(
                self.sockets
                    .iter()
                    .map(|s| (s.ifname.clone(), s.queue, s.stats())),
            );
        }
    }
}

/// Queues the frame at `start..start + len` of jumbo region `r` for TX: one descriptor per
/// chunk it spans (a descriptor may not cross a chunk boundary), all but the last marked
/// "more follows".
fn queue_region(
    pending: &mut Vec<XdpDesc>,
    jumbo: &mut Jumbo,
    regions_base: u64,
    r: usize,
    start: usize,
    len: usize,
) {
    let base = regions_base + r as u64 * u64::from(REGION_SIZE);
    let (mut at, end) = (base + start as u64, base + (start + len) as u64);
    while at < end {
        let piece_end = (Umem::chunk_of(at) + u64::from(FRAME_SIZE)).min(end);
        pending.push(XdpDesc {
            addr: at,
            len: (piece_end - at) as u32,
            options: if piece_end < end { XDP_PKT_CONTD } else { 0 },
        });
        jumbo.outstanding[r] += 1;
        at = piece_end;
    }
    if jumbo.outstanding[r] == 0 {
        jumbo.free.push(r);
    }
}

/// One descriptor of region `r` is done (completed, or dropped before the TX ring): the
/// region goes idle with its last one.
#[inline]
fn release_region(jumbo: &mut Jumbo, r: usize) {
    let n = &mut jumbo.outstanding[r];
    *n = n.saturating_sub(1);
    if *n == 0 {
        jumbo.free.push(r);
    }
}

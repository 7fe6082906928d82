//! Starting and stopping the live data plane: the steering program on every interface, one
//! worker per core with its UMEM and its sockets on every interface, and the XSKMAP entries
//! that send each RX queue's frames to its socket.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};

use super::capture::Tap;
use super::fast::{Buffers, FastDelta, FastError, FastPath, FastStatus, FastTables};
use super::mirror::{Mirror, MirrorCount, MirrorPath, MirrorSpec};
use super::netdev::Netdev;
use super::socket::XskSocket;
use super::steer::{Mode, SteerCounters, SteerError, Steering};
use super::umem::{Umem, MAX_FRAME, MAX_JUMBO_FRAME};
use super::worker::{Event, Originated, Pipeline, Stage, Worker, WorkerLinks, WorkerStats};
use super::{XskError, RING_SIZE, TX_BUDGET};
use crate::pipeline::punt::PolicerConfig;
use crate::tables::{PortId, Published, Snapshot};

/// Learned neighbours queued between the workers and the control side.
const LEARN_QUEUE: usize = 4096;
/// Frames to originate queued for worker 0.
const ORIGINATE_QUEUE: usize = 1024;

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Interface name, its port in the tables, and its RX queue count.
    pub interfaces: Vec<(String, PortId, u32)>,
    /// One worker per entry, pinned to that core; `None` runs one unpinned worker.
    pub cores: Option<Vec<usize>>,
    /// How the steering program is attached.
    pub mode: Mode,
    /// Receive and send frames longer than one chunk ([`MAX_FRAME`](super::umem::MAX_FRAME)):
    /// multi-buffer sockets (XDP_USE_SG) and jumbo regions in every UMEM.
    pub jumbo: bool,
    /// Control-plane policing of frames punted to the mirrors, per worker.
    pub policer: PolicerConfig,
    /// Attach the XDP fast path (`--fast-path xdp`) instead of the steering program: the
    /// kernel forwards what it can and steers the rest to the workers.
    pub fast_path: bool,
}

/// The XDP programs a runtime attached.
enum Programs {
    /// The steering program, one loaded copy per interface.
    Steering(Vec<Steering>),
    /// The fast path, one loaded copy on every interface; locked only to update or read it.
    Fast(Box<Mutex<FastPath>>),
}

/// One interface's XDP program as `show interfaces` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XdpInterface {
    /// Interface.
    pub ifname: String,
    /// The mode that took.
    pub mode: Mode,
    /// What its program counted (on the fast path: the frames it steered, not those it
    /// forwarded).
    pub counters: SteerCounters,
}

/// Jumbo regions per worker when [`Plan::jumbo`] is set: frames being forwarded at once.
const JUMBO_REGIONS: u32 = 512;

/// A socket as the runtime reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketInfo {
    /// Worker index.
    pub worker: usize,
    /// Interface.
    pub ifname: String,
    /// Queue.
    pub queue: u32,
    /// Whether the kernel gave zero-copy mode.
    pub zero_copy: bool,
}

/// The running data plane; dropping it stops the workers and detaches the programs.
pub struct Runtime {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    stats: Vec<Arc<Mutex<WorkerStats>>>,
    sockets: Vec<SocketInfo>,
    learned: Receiver<Event>,
    originate: Sender<Originated>,
    /// Where `xpe capture` takes copies from the workers.
    tap: Arc<Tap>,
    /// The mirror thread and its devices; stopped after the workers.
    mirrors: Option<MirrorPath>,
    // Declared last: detached after the workers have stopped.
    programs: Programs,
}

impl Runtime {
    /// Attaches the steering program to every interface of `plan`, starts the workers and
    /// the mirror thread over `mirrors` (none: punts are counted and dropped), and points
    /// every RX queue at its socket. On any error everything started is undone.
    pub fn start(
        plan: &Plan,
        published: Arc<Published>,
        mirrors: Vec<Mirror>,
    ) -> Result<Runtime, XskError> {
        let tables = published.clone();
        Runtime::start_full(plan, |_| Pipeline(tables.clone()), mirrors, Some(published))
    }

    /// As [`Runtime::start`], with worker `w` running `stage(w)` instead of the pipeline (the
    /// benches' trivial forwarder uses this to measure the I/O loop alone).
    pub fn start_with<S: Stage>(
        plan: &Plan,
        stage: impl FnMut(usize) -> S,
    ) -> Result<Runtime, XskError> {
        Runtime::start_full(plan, stage, Vec::new(), None)
    }

    fn start_full<S: Stage>(
        plan: &Plan,
        mut stage: impl FnMut(usize) -> S,
        mirrors: Vec<Mirror>,
        published: Option<Arc<Published>>,
    ) -> Result<Runtime, XskError> {
        let workers: Vec<Option<usize>> = match &plan.cores {
            Some(cores) if !cores.is_empty() => cores.iter().copied().map(Some).collect(),
            _ => vec![None],
        };
        for (ifname, _, queues) in &plan.interfaces {
            if (*queues as usize) < workers.len() {
                return Err(XskError::TooFewQueues {
                    ifname: ifname.clone(),
                    queues: *queues,
                    workers: workers.len(),
                });
            }
            if *queues as usize > xpe_ebpf::MAX_QUEUES as usize {
                return Err(XskError::TooManyQueues {
                    ifname: ifname.clone(),
                    queues: *queues,
                    max: xpe_ebpf::MAX_QUEUES,
                });
            }
        }
        let max_frame = if plan.jumbo {
            MAX_JUMBO_FRAME
        } else {
            MAX_FRAME
        } as usize;
        let mut mirror_path = match &published {
            Some(tables) if !mirrors.is_empty() => Some(MirrorPath::start(
                mirrors,
                workers.len(),
                max_frame,
                tables.clone(),
            )?),
            _ => None,
        };
        let mut programs = match (&published, plan.fast_path) {
            (_, false) => {
                let mut steering = Vec::new();
                for (ifname, _, _) in &plan.interfaces {
                    steering.push(Steering::attach(ifname, plan.mode)?);
                }
                Programs::Steering(steering)
            }
            (None, true) => return Err(XskError::FastWithoutTables),
            (Some(tables), true) => {
                Programs::Fast(Box::new(Mutex::new(load_fast(plan, &tables.load())?)))
            }
        };
        let stop = Arc::new(AtomicBool::new(false));
        let (learn_tx, learned) = crossbeam_channel::bounded(LEARN_QUEUE);
        let (originate, originate_rx) = crossbeam_channel::bounded(ORIGINATE_QUEUE);
        let tap = Arc::new(Tap::default());
        let mut runtime = Runtime {
            tap: tap.clone(),
            stop: stop.clone(),
            threads: Vec::new(),
            stats: Vec::new(),
            sockets: Vec::new(),
            learned,
            originate,
            mirrors: None,
            programs: Programs::Steering(Vec::new()),
        };
        let (ready_tx, ready_rx) = mpsc::channel();
        let nworkers = workers.len();
        for (w, core) in workers.iter().enumerate() {
            // Queue q of every interface goes to worker q % workers.
            let queues: Vec<(String, PortId, u32)> = plan
                .interfaces
                .iter()
                .flat_map(|(ifname, port, n)| {
                    (0..*n)
                        .filter(move |q| *q as usize % nworkers == w)
                        .map(move |q| (ifname.clone(), *port, q))
                })
                .collect();
            let stats = Arc::new(Mutex::new(WorkerStats::default()));
            let stage = stage(w);
            let links = WorkerLinks {
                stop: stop.clone(),
                stats: stats.clone(),
                learn: learn_tx.clone(),
                // Only worker 0 originates; the others get a queue nobody sends on.
                originate: if w == 0 {
                    originate_rx.clone()
                } else {
                    crossbeam_channel::never()
                },
                punt: mirror_path.as_mut().and_then(|m| m.punt[w].take()),
                inject: if w == 0 {
                    mirror_path.as_mut().and_then(|m| m.inject.take())
                } else {
                    None
                },
                policer: plan.policer,
                tap: tap.clone(),
                index: w,
            };
            let ready = ready_tx.clone();
            let jumbo = plan.jumbo;
            let core = *core;
            let thread = std::thread::Builder::new()
                .name(format!("xpe-worker{w}"))
                .spawn(
                    move || match build_worker(stage, &queues, core, jumbo, links) {
                        Ok(worker) => {
                            let sockets = worker
                                .sockets()
                                .map(|s| (w, s.ifname.clone(), s.queue, s.fd(), s.zero_copy))
                                .collect::<Vec<_>>();
                            if ready.send(Ok(sockets)).is_ok() {
                                worker.run();
                            }
                        }
                        Err(e) => {
                            // The receiver only goes away when start() has already failed.
                            let _unreported = ready.send(Err(e));
                        }
                    },
                )
                .map_err(XskError::Spawn)?;
            runtime.threads.push(thread);
            runtime.stats.push(stats);
        }
        drop(ready_tx);
        runtime.mirrors = mirror_path;
        let mut first_error = None;
        let mut bound = Vec::new();
        for _ in 0..workers.len() {
            match ready_rx.recv() {
                Ok(Ok(sockets)) => bound.extend(sockets),
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(_) => {
                    first_error.get_or_insert(XskError::WorkerEnded);
                }
            }
        }
        if let Some(e) = first_error {
            runtime.shutdown();
            return Err(e);
        }
        for (w, ifname, queue, fd, zero_copy) in bound {
            let bound = match &mut programs {
                Programs::Steering(steering) => {
                    let Some(st) = steering.iter_mut().find(|s| s.ifname() == ifname) else {
                        continue;
                    };
                    st.bind_socket(queue, fd).map_err(XskError::from)
                }
                Programs::Fast(fast) => {
                    let Some(&(_, port, _)) = plan.interfaces.iter().find(|i| i.0 == ifname) else {
                        continue;
                    };
                    lock(fast)
                        .bind_socket(port, queue, fd)
                        .map_err(XskError::from)
                }
            };
            if let Err(e) = bound {
                runtime.programs = programs;
                runtime.shutdown();
                return Err(e);
            }
            runtime.sockets.push(SocketInfo {
                worker: w,
                ifname,
                queue,
                zero_copy,
            });
        }
        runtime.programs = programs;
        Ok(runtime)
    }

    /// The sockets, by worker.
    pub fn sockets(&self) -> &[SocketInfo] {
        &self.sockets
    }

    /// Each interface's XDP program: its mode and what it counted.
    pub fn xdp_interfaces(&self) -> Vec<XdpInterface> {
        match &self.programs {
            Programs::Steering(steering) => steering
                .iter()
                .map(|st| XdpInterface {
                    ifname: st.ifname().to_string(),
                    mode: st.mode(),
                    counters: st.counters().unwrap_or_default(),
                })
                .collect(),
            Programs::Fast(fast) => {
                let fast = lock(fast);
                let counters = fast.counters().unwrap_or_default();
                fast.attached()
                    .iter()
                    .enumerate()
                    .map(|(slot, (ifname, mode))| {
                        let c = counters.ports.get(slot).copied().unwrap_or_default();
                        XdpInterface {
                            ifname: ifname.clone(),
                            mode: *mode,
                            counters: SteerCounters {
                                redirected: c.redirected,
                                passed: c.passed,
                            },
                        }
                    })
                    .collect()
            }
        }
    }

    /// Brings the fast path's tables in step with `snap` (just published); `None` when the
    /// fast path is off.
    pub fn fast_apply(&self, snap: &Snapshot) -> Option<Result<FastDelta, FastError>> {
        match &self.programs {
            Programs::Fast(fast) => Some(lock(fast).apply(&FastTables::compile(snap))),
            Programs::Steering(_) => None,
        }
    }

    /// Asks the kernel again which ports take the fast path's redirects, and reinstalls its
    /// tables if that changed (the control side calls this once a second); `None` when the
    /// fast path is off.
    pub fn fast_refresh(&self) -> Option<Result<bool, FastError>> {
        match &self.programs {
            Programs::Fast(fast) => Some(lock(fast).refresh_egress()),
            Programs::Steering(_) => None,
        }
    }

    /// The fast path's state and what it forwarded; `None` when it is off.
    pub fn fast_status(&self) -> Option<FastStatus> {
        match &self.programs {
            Programs::Fast(fast) => Some(lock(fast).status()),
            Programs::Steering(_) => None,
        }
    }

    /// Where captures start: every worker offers it copies while one runs.
    pub fn tap(&self) -> &Arc<Tap> {
        &self.tap
    }

    /// How many workers run.
    pub fn workers(&self) -> usize {
        self.stats.len()
    }

    /// Each worker's latest published state.
    pub fn worker_stats(&self) -> Vec<WorkerStats> {
        self.stats
            .iter()
            .map(|s| match s.lock() {
                Ok(g) => g.clone(),
                Err(poisoned) => poisoned.into_inner().clone(),
            })
            .collect()
    }

    /// Neighbours the workers saw in ARP frames.
    pub fn learned(&self) -> &Receiver<Event> {
        &self.learned
    }

    /// Where to send frames to originate (ARP requests); worker 0 sends them.
    pub fn originate(&self) -> &Sender<Originated> {
        &self.originate
    }

    /// Punted frames the mirror thread had no mirror for (0 when mirrors are off).
    pub fn punt_no_mirror(&self) -> u64 {
        self.mirrors.as_ref().map_or(0, MirrorPath::no_mirror)
    }

    /// Every mirror and its counters (empty when mirrors are off).
    pub fn mirror_counters(&self) -> Vec<(MirrorSpec, MirrorCount)> {
        self.mirrors
            .as_ref()
            .map(MirrorPath::counters)
            .unwrap_or_default()
    }

    /// Stops the workers (they drain their TX rings) and detaches the programs; returns each
    /// worker's final state.
    pub fn stop(self) -> Vec<WorkerStats> {
        self.finish().0
    }

    /// As [`Runtime::stop`], with the fast path's final state too (taken once it is detached,
    /// so it counts every frame it forwarded).
    pub fn finish(mut self) -> (Vec<WorkerStats>, Option<FastStatus>) {
        self.stop_workers();
        let fast = match &self.programs {
            Programs::Fast(fast) => {
                let mut fast = lock(fast);
                fast.detach();
                Some(fast.status())
            }
            Programs::Steering(_) => None,
        };
        self.shutdown();
        (self.worker_stats(), fast)
    }

    fn stop_workers(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            // A worker that panicked has nothing left to clean up: its sockets and UMEM
            // were dropped while unwinding.
            let _panicked = t.join();
        }
    }

    fn shutdown(&mut self) {
        self.stop_workers();
        if let Some(m) = &mut self.mirrors {
            m.stop();
        }
        self.programs = Programs::Steering(Vec::new());
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Loads the fast path with `snap`'s tables and attaches it to every interface of `plan`.
fn load_fast(plan: &Plan, snap: &Snapshot) -> Result<FastPath, XskError> {
    let slots = plan
        .interfaces
        .iter()
        .map(|(_, port, _)| usize::from(port.0) + 1)
        .max()
        .unwrap_or(0);
    let mut ifindex = vec![0; slots];
    for (ifname, port, _) in &plan.interfaces {
        let dev = Netdev::read(ifname).ok_or_else(|| SteerError::Map {
            map: xpe_ebpf::FAST_TX_MAP,
            detail: format!("interface {ifname} is gone"),
        })?;
        ifindex[usize::from(port.0)] = dev.ifindex;
    }
    // Frames in pieces come only where an MTU needs them; elsewhere the copy of the program
    // without multi-buffer support skips the check for them.
    let buffers = if plan.jumbo {
        Buffers::Several
    } else {
        Buffers::One
    };
    let mut fast = FastPath::load(ifindex, &FastTables::compile(snap), buffers)?;
    for (ifname, _, _) in &plan.interfaces {
        fast.attach(ifname, plan.mode)?;
    }
    fast.refresh_egress()?;
    Ok(fast)
}

/// Locks a mutex, poisoned or not: the fast path's maps stay usable after a reader panicked.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Opens a worker's UMEM and its sockets (in the worker's own thread: the UMEM stays there).
fn build_worker<S: Stage>(
    stage: S,
    queues: &[(String, PortId, u32)],
    core: Option<usize>,
    jumbo: bool,
    links: WorkerLinks,
) -> Result<Worker<S>, XskError> {
    // Each socket gets a full fill ring and room for a full TX ring.
    let frames = (queues.len() as u32).max(1) * 2 * RING_SIZE;
    let regions = if jumbo { JUMBO_REGIONS } else { 0 };
    let umem = Umem::new(frames, regions, RING_SIZE)?;
    let mut sockets = Vec::new();
    for (i, (ifname, port, queue)) in queues.iter().enumerate() {
        sockets.push(XskSocket::open(
            &umem,
            i == 0,
            jumbo,
            ifname,
            *queue,
            *port,
            RING_SIZE,
            TX_BUDGET,
        )?);
    }
    Ok(Worker::new(stage, umem, sockets, core, links))
}

//! Mirror interfaces: one kernel TAP device per core port and per VRF attachment, so routing
//! daemons, sshd and the kernel's own stack run on Linux unchanged, as if xpe's ports were
//! the kernel's (the model of VPP's linux-cp plugin).
//!
//! - **Punt.** Workers police what the pipeline punts and queue copies in pooled buffers,
//!   never blocking and making no syscall per frame; the mirror thread writes each to the
//!   mirror of the attachment it arrived on, untagged and without labels
//!   ([`for_kernel`](crate::pipeline::punt::for_kernel)).
//! - **Inject.** The mirror thread reads what the kernel sends on each mirror and queues it
//!   for worker 0, which sends it out of exactly that port, with the attachment's VLAN tag;
//!   a frame to the router's own MAC is routed instead, in the mirror's VRF
//!   ([`route_from_kernel`](crate::pipeline::route_from_kernel)). A mirror of one VRF can
//!   never send into another: it has no way to name another port, tag or table.
//!
//! TAP devices are not persistent: they vanish with the file descriptor, so a stopped or
//! killed xpe leaves none behind. Each is created inside its network namespace (the creating
//! thread enters it with `setns`), so its name never meets the devices of the router's own
//! namespace. tun-rs opens and configures the device; nothing here is written by hand but
//! the eventfd that wakes the mirror thread.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use core::net::{Ipv4Addr, Ipv6Addr};
use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::pipeline::punt::{for_kernel, KernelPath};
use crate::tables::{AttachmentId, PortId, Published, Snapshot};
use crate::wire::ethernet::{EtherType, MacAddr, HEADER_LEN as ETH_LEN};

/// Frames queued between one worker and the mirror thread, and the buffers in each pool.
pub const PUNT_QUEUE: usize = 1024;
/// Frames queued from the mirror thread to worker 0.
pub const INJECT_QUEUE: usize = 1024;
/// Frames read from one mirror per round, so one busy mirror cannot starve the others.
const READS_PER_ROUND: usize = 64;
/// Longest sleep of an idle mirror thread: bounds how late a stop is seen.
const IDLE_POLL_MS: i32 = 100;

/// What one mirror is: built by the control side from the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorSpec {
    /// The device name (at most 15 bytes).
    pub name: String,
    /// The network namespace it lives in (`/run/netns/NAME`); `None`: the router's own.
    pub netns: Option<String>,
    /// What it mirrors: a port and VLAN (`None`: untagged), or nothing (the router-address
    /// device, which only holds an address).
    pub carries: Option<(PortId, Option<u16>)>,
    /// The VRF it belongs to, by name (the global table's name for core ports): a punt or
    /// inject is refused if the running tables put its attachment in another VRF.
    pub vrf: String,
    /// Its MAC: the port's.
    pub mac: MacAddr,
    /// Its MTU: the port's.
    pub mtu: u16,
    /// Our IPv4 address and prefix length on it.
    pub address: Option<(Ipv4Addr, u8)>,
    /// Our IPv6 address and prefix length on it (the link-local one the kernel derives
    /// from the MAC, as xpe does).
    pub address6: Option<(Ipv6Addr, u8)>,
}

/// A mirror's counters, updated by the mirror thread and read by `show interfaces`.
#[derive(Debug, Default)]
pub struct MirrorCounters {
    /// Frames written to the device (punted to the kernel).
    pub punted: AtomicU64,
    /// Bytes written.
    pub punted_bytes: AtomicU64,
    /// Frames read from the device and queued for transmission or routing.
    pub injected: AtomicU64,
    /// Bytes read and queued.
    pub injected_bytes: AtomicU64,
    /// Frames the kernel sent that were too long for the port's MTU, or too short for
    /// Ethernet.
    pub bad_length: AtomicU64,
    /// Frames the kernel sent that found worker 0's queue full.
    pub inject_queue_full: AtomicU64,
    /// Writes to the device that failed (its queue full: the kernel is behind).
    pub write_errors: AtomicU64,
    /// Frames refused because the running tables no longer put the attachment in this
    /// mirror's VRF (an `apply` moved it): never delivered across VRFs.
    pub stale: AtomicU64,
}

/// A snapshot of [`MirrorCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MirrorCount {
    /// See [`MirrorCounters::punted`].
    pub punted: u64,
    /// See [`MirrorCounters::punted_bytes`].
    pub punted_bytes: u64,
    /// See [`MirrorCounters::injected`].
    pub injected: u64,
    /// See [`MirrorCounters::injected_bytes`].
    pub injected_bytes: u64,
    /// See [`MirrorCounters::bad_length`].
    pub bad_length: u64,
    /// See [`MirrorCounters::inject_queue_full`].
    pub inject_queue_full: u64,
    /// See [`MirrorCounters::write_errors`].
    pub write_errors: u64,
    /// See [`MirrorCounters::stale`].
    pub stale: u64,
}

impl MirrorCounters {
    /// The counters now.
    pub fn read(&self) -> MirrorCount {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MirrorCount {
            punted: r(&self.punted),
            punted_bytes: r(&self.punted_bytes),
            injected: r(&self.injected),
            injected_bytes: r(&self.injected_bytes),
            bad_length: r(&self.bad_length),
            inject_queue_full: r(&self.inject_queue_full),
            write_errors: r(&self.write_errors),
            stale: r(&self.stale),
        }
    }
}

fn bump(c: &AtomicU64, by: u64) {
    c.fetch_add(by, Ordering::Relaxed);
}

/// An open mirror device.
pub struct Mirror {
    /// What it mirrors.
    pub spec: MirrorSpec,
    dev: tun_rs::SyncDevice,
    /// Its counters.
    pub counters: Arc<MirrorCounters>,
}

/// Why mirrors could not be made.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// The namespace could not be entered.
    #[error("cannot enter network namespace {netns} (/run/netns/{netns}): {source}")]
    Netns {
        /// The namespace.
        netns: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A device of that name already exists where the mirror would go.
    #[error("cannot create mirror {name} in {place}: a device named {name} already exists there; remove it, or name the mirror otherwise (mirror = \"...\" in the config)")]
    Exists {
        /// The device name.
        name: String,
        /// "namespace X" or "the router's namespace".
        place: String,
    },
    /// The TAP device could not be created or configured.
    #[error("cannot create mirror {name} in {place}: {source}")]
    Create {
        /// The device name.
        name: String,
        /// "namespace X" or "the router's namespace".
        place: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The eventfd or the thread could not be made.
    #[error("cannot start the mirror thread: {0}")]
    Thread(#[source] std::io::Error),
}

fn place(netns: &Option<String>) -> String {
    match netns {
        Some(ns) => format!("namespace {ns}"),
        None => "the router's namespace".to_string(),
    }
}

/// Creates every mirror, each in its namespace, up and with its MAC, MTU and address. On
/// any error none is left: devices already made close (and vanish) with the error.
pub fn open_mirrors(specs: &[MirrorSpec]) -> Result<Vec<Mirror>, MirrorError> {
    let mut mirrors = Vec::with_capacity(specs.len());
    for spec in specs {
        let made = match &spec.netns {
            None => create(spec),
            Some(ns) => {
                // A thread of its own enters the namespace, so the rest of the process stays
                // where it is; the device's descriptor outlives the thread.
                let (spec, ns) = (spec.clone(), ns.clone());
                std::thread::Builder::new()
                    .name("xpe-mirror-make".into())
                    .spawn(move || {
                        enter(&ns)?;
                        create(&spec)
                    })
                    .map_err(MirrorError::Thread)?
                    .join()
                    .map_err(|_| MirrorError::Thread(std::io::Error::other("thread panicked")))?
            }
        }?;
        mirrors.push(Mirror {
            spec: spec.clone(),
            dev: made,
            counters: Arc::default(),
        });
    }
    Ok(mirrors)
}

/// Moves the calling thread into network namespace `ns`.
fn enter(ns: &str) -> Result<(), MirrorError> {
    let err = |source| MirrorError::Netns {
        netns: ns.to_string(),
        source,
    };
    let file = std::fs::File::open(format!("/run/netns/{ns}")).map_err(err)?;
    nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| err(std::io::Error::from(e)))
}

/// Creates one TAP device in the calling thread's namespace.
fn create(spec: &MirrorSpec) -> Result<tun_rs::SyncDevice, MirrorError> {
    let place = place(&spec.netns);
    if nix::net::if_::if_nametoindex(spec.name.as_str()).is_ok() {
        return Err(MirrorError::Exists {
            name: spec.name.clone(),
            place,
        });
    }
    let mut builder = tun_rs::DeviceBuilder::new()
        .name(spec.name.clone())
        .layer(tun_rs::Layer::L2)
        .mac_addr(spec.mac.0)
        .mtu(spec.mtu)
        .enable(true);
    if let Some((addr, len)) = spec.address {
        builder = builder.ipv4(addr, len, None);
    }
    if let Some((addr, len)) = spec.address6 {
        builder = builder.ipv6(addr, len);
    }
    let dev = builder.build_sync().map_err(|source| MirrorError::Create {
        name: spec.name.clone(),
        place: place.clone(),
        source,
    })?;
    dev.set_nonblocking(true)
        .map_err(|source| MirrorError::Create {
            name: spec.name.clone(),
            place,
            source,
        })?;
    Ok(dev)
}

/// A punted frame on its way to the mirror thread.
pub struct Punted {
    /// The port it arrived on.
    pub port: PortId,
    /// The frame as it arrived (a pooled buffer).
    pub buf: Vec<u8>,
}

/// A frame the kernel sent, on its way to worker 0.
pub struct Injected {
    /// The port to send it on.
    pub port: PortId,
    /// Route it in this attachment's VRF rather than send it as it is (it was sent to the
    /// router's own MAC).
    pub route: Option<AttachmentId>,
    /// The frame, tagged for the attachment when it is sent as it is (a pooled buffer).
    pub buf: Vec<u8>,
}

/// Wakes the mirror thread when it sleeps: an eventfd, written only when the thread said it
/// is about to sleep, so a busy thread costs the workers no syscall at all.
pub struct Waker {
    fd: OwnedFd,
    parked: AtomicBool,
}

impl Waker {
    fn new() -> std::io::Result<Waker> {
        // SAFETY: eventfd takes no pointers; a negative return is an error, checked below.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Waker {
            // SAFETY: `fd` was just returned by eventfd and is owned by nobody else.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            parked: AtomicBool::new(false),
        })
    }

    /// Called by a worker after it queued frames.
    #[inline]
    pub fn wake(&self) {
        // Pairs with the fence in `park`: either the mirror thread sees the queued frames
        // when it checks again, or this load sees it parked.
        fence(Ordering::SeqCst);
        if self.parked.load(Ordering::Relaxed) && self.parked.swap(false, Ordering::AcqRel) {
            let one = 1u64.to_ne_bytes();
            // SAFETY: writes 8 bytes from a live local array to an eventfd we own. A failed
            // write (the counter full) leaves the thread awake anyway.
            unsafe { libc::write(self.fd.as_raw_fd(), one.as_ptr().cast(), one.len()) };
        }
    }

    fn park(&self) {
        self.parked.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    fn unpark(&self) {
        self.parked.store(false, Ordering::Relaxed);
        let mut buf = [0u8; 8];
        // SAFETY: reads at most 8 bytes into a live local array from an eventfd we own
        // (non-blocking: nothing to read is EAGAIN, ignored).
        unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    }
}

/// A worker's end of the punt path.
pub struct PuntLink {
    /// Full buffers to the mirror thread.
    pub full: Sender<Punted>,
    /// Empty buffers back from it.
    pub free: Receiver<Vec<u8>>,
    /// Wakes the mirror thread.
    pub waker: Arc<Waker>,
}

impl PuntLink {
    /// Copies `frame` into a pooled buffer and queues it; false (the caller counts it) when
    /// the pool is empty or the queue full. No allocation: buffers hold the largest frame.
    #[inline]
    pub fn queue(&self, port: PortId, frame: &[u8]) -> bool {
        let Ok(mut buf) = self.free.try_recv() else {
            return false;
        };
        buf.clear();
        buf.extend_from_slice(frame);
        match self.full.try_send(Punted { port, buf }) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        }
    }
}

/// Worker 0's end of the inject path.
pub struct InjectLink {
    /// Frames from the kernel.
    pub frames: Receiver<Injected>,
    /// Their buffers, given back.
    pub free: Sender<Vec<u8>>,
}

/// The mirror thread's ends of every queue.
struct Ends {
    punted: Vec<(Receiver<Punted>, Sender<Vec<u8>>)>,
    inject: Sender<Injected>,
    inject_free: Receiver<Vec<u8>>,
    /// Gives a buffer back to the inject pool when its frame could not be queued.
    inject_return: Sender<Vec<u8>>,
    waker: Arc<Waker>,
    no_mirror: Arc<AtomicU64>,
}

/// The running mirrors: their thread and the workers' ends of its queues.
pub struct MirrorPath {
    /// Each worker's punt link, taken by the runtime when it builds the workers.
    pub punt: Vec<Option<PuntLink>>,
    /// Worker 0's inject link.
    pub inject: Option<InjectLink>,
    counters: Vec<(MirrorSpec, Arc<MirrorCounters>)>,
    /// Punted frames that had no mirror to go to (see [`MirrorPath::no_mirror`]).
    no_mirror: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

impl MirrorPath {
    /// Starts the mirror thread over `mirrors` for `workers` workers whose frames are at
    /// most `max_frame` bytes long.
    pub fn start(
        mirrors: Vec<Mirror>,
        workers: usize,
        max_frame: usize,
        published: Arc<Published>,
    ) -> Result<MirrorPath, MirrorError> {
        let waker = Arc::new(Waker::new().map_err(MirrorError::Thread)?);
        let mut punt = Vec::new();
        let mut punted = Vec::new();
        for _ in 0..workers {
            let (full_tx, full_rx) = crossbeam_channel::bounded(PUNT_QUEUE);
            let (free_tx, free_rx) = crossbeam_channel::bounded(PUNT_QUEUE);
            for _ in 0..PUNT_QUEUE {
                let _fits = free_tx.try_send(Vec::with_capacity(max_frame));
            }
            punt.push(Some(PuntLink {
                full: full_tx,
                free: free_rx,
                waker: waker.clone(),
            }));
            punted.push((full_rx, free_tx));
        }
        let (inject_tx, inject_rx) = crossbeam_channel::bounded(INJECT_QUEUE);
        let (inject_free_tx, inject_free_rx) = crossbeam_channel::bounded(INJECT_QUEUE);
        for _ in 0..INJECT_QUEUE {
            let _fits = inject_free_tx.try_send(Vec::with_capacity(max_frame));
        }
        let counters = mirrors
            .iter()
            .map(|m| (m.spec.clone(), m.counters.clone()))
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let no_mirror = Arc::new(AtomicU64::new(0));
        let ends = Ends {
            punted,
            inject: inject_tx,
            inject_free: inject_free_rx,
            inject_return: inject_free_tx.clone(),
            waker,
            no_mirror: no_mirror.clone(),
        };
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("xpe-mirrors".into())
                .spawn(move || mirror_loop(mirrors, ends, published, max_frame, &stop))
                .map_err(MirrorError::Thread)?
        };
        Ok(MirrorPath {
            punt,
            inject: Some(InjectLink {
                frames: inject_rx,
                free: inject_free_tx,
            }),
            counters,
            no_mirror,
            thread: Some(thread),
            stop,
        })
    }

    /// Punted frames the kernel has no place for, dropped by the mirror thread: labels that
    /// do not end in IP or that are not ours to pop (a router alert above a transit label),
    /// a VRF or attachment with no mirror, frames that do not parse.
    pub fn no_mirror(&self) -> u64 {
        self.no_mirror.load(Ordering::Relaxed)
    }

    /// Every mirror and its counters now.
    pub fn counters(&self) -> Vec<(MirrorSpec, MirrorCount)> {
        self.counters
            .iter()
            .map(|(s, c)| (s.clone(), c.read()))
            .collect()
    }

    /// Stops the thread; the devices close (and vanish) with it.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _panicked = t.join();
        }
    }
}

impl Drop for MirrorPath {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Which mirror takes frames of a (port, VLAN), and which takes a VRF's frames from the core.
struct Routing {
    by_attachment: hashbrown::HashMap<(PortId, u16), usize>,
    by_vrf: hashbrown::HashMap<String, usize>,
}

impl Routing {
    fn new(mirrors: &[Mirror]) -> Routing {
        let mut by_attachment = hashbrown::HashMap::new();
        let mut by_vrf = hashbrown::HashMap::new();
        for (i, m) in mirrors.iter().enumerate() {
            if let Some((port, vlan)) = m.spec.carries {
                by_attachment.insert((port, vlan.unwrap_or(0)), i);
                by_vrf.entry(m.spec.vrf.clone()).or_insert(i);
            }
        }
        Routing {
            by_attachment,
            by_vrf,
        }
    }

    /// The mirror for a punted frame's path, if it still belongs to the VRF the tables say.
    /// `Err(true)` when the mirror is stale (counted on it), `Err(false)` when there is none.
    fn mirror(&self, snap: &Snapshot, path: KernelPath, mirrors: &[Mirror]) -> Result<usize, bool> {
        match path {
            KernelPath::Attachment(a) => {
                let att = snap.attachments().get(usize::from(a.0)).ok_or(false)?;
                let key = (att.port, att.vlan.map_or(0, |v| v.get()));
                let &i = self.by_attachment.get(&key).ok_or(false)?;
                if snap.vrf(att.vrf).name != mirrors[i].spec.vrf {
                    bump(&mirrors[i].counters.stale, 1);
                    return Err(true);
                }
                Ok(i)
            }
            KernelPath::Vrf(v) => self.by_vrf.get(&snap.vrf(v).name).copied().ok_or(false),
        }
    }
}

fn mirror_loop(
    mirrors: Vec<Mirror>,
    ends: Ends,
    published: Arc<Published>,
    max_frame: usize,
    stop: &AtomicBool,
) {
    let routing = Routing::new(&mirrors);
    let mut out = Vec::with_capacity(max_frame);
    let mut read = vec![0u8; max_frame];
    let mut pollfds: Vec<libc::pollfd> = mirrors
        .iter()
        .map(|m| libc::pollfd {
            fd: m.dev.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .chain(std::iter::once(libc::pollfd {
            fd: ends.waker.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }))
        .collect();
    while !stop.load(Ordering::Relaxed) {
        let snap = published.load();
        let mut work = 0;
        for (full, free) in &ends.punted {
            while let Ok(p) = full.try_recv() {
                work += 1;
                if !deliver(&snap, &routing, &mirrors, &p, &mut out) {
                    bump(&ends.no_mirror, 1);
                }
                let _pool_full = free.try_send(p.buf);
            }
        }
        for m in &mirrors {
            for _ in 0..READS_PER_ROUND {
                let Ok(n) = m.dev.recv(&mut read) else {
                    break;
                };
                work += 1;
                inject(&snap, m, &read[..n], &ends);
            }
        }
        if work == 0 {
            ends.waker.park();
            let queued = ends.punted.iter().any(|(full, _)| !full.is_empty());
            if !queued {
                sleep(&mut pollfds);
            }
            ends.waker.unpark();
        }
    }
}

/// Sleeps until a mirror has a frame, a worker wakes us, or the idle timeout.
fn sleep(pollfds: &mut [libc::pollfd]) {
    // SAFETY: `pollfds` is a live array of `len` pollfd structs for the whole call.
    unsafe {
        libc::poll(
            pollfds.as_mut_ptr(),
            pollfds.len() as libc::nfds_t,
            IDLE_POLL_MS,
        )
    };
}

/// Writes one punted frame to its mirror; false when it has none (the caller counts it).
fn deliver(
    snap: &Snapshot,
    routing: &Routing,
    mirrors: &[Mirror],
    p: &Punted,
    out: &mut Vec<u8>,
) -> bool {
    let Some(path) = for_kernel(snap, p.port, &p.buf, out) else {
        return false;
    };
    let i = match routing.mirror(snap, path, mirrors) {
        Ok(i) => i,
        // A stale mirror counted it already.
        Err(stale) => return stale,
    };
    let m = &mirrors[i];
    // A unicast frame is for the mirror itself, whatever port it came in on: one that came
    // from the core under a VPN label carries the core port's MAC, which the VRF's mirror
    // would take for another host's.
    if out.first().is_some_and(|b| b & 1 == 0) {
        out[..6].copy_from_slice(&m.spec.mac.0);
    }
    match m.dev.send(out) {
        Ok(_) => {
            bump(&m.counters.punted, 1);
            bump(&m.counters.punted_bytes, out.len() as u64);
        }
        Err(_) => bump(&m.counters.write_errors, 1),
    }
    true
}

/// Queues one frame the kernel sent on mirror `m` for worker 0.
fn inject(snap: &Snapshot, m: &Mirror, frame: &[u8], ends: &Ends) {
    let c = &m.counters;
    let Some((port, vlan)) = m.spec.carries else {
        // The router-address device carries nothing.
        return;
    };
    if frame.len() < ETH_LEN || frame.len() > ETH_LEN + usize::from(m.spec.mtu) {
        bump(&c.bad_length, 1);
        return;
    }
    // The attachment as the running tables have it: it must still be in the mirror's VRF.
    let Some(att_id) = snap
        .ports()
        .get(usize::from(port.0))
        .and_then(|p| p.attachment(vlan.unwrap_or(0)))
    else {
        bump(&c.stale, 1);
        return;
    };
    if snap.vrf(snap.attachment(att_id).vrf).name != m.spec.vrf {
        bump(&c.stale, 1);
        return;
    }
    let Ok(mut buf) = ends.inject_free.try_recv() else {
        bump(&c.inject_queue_full, 1);
        return;
    };
    buf.clear();
    let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
    let to_us = frame[..6] == m.spec.mac.0;
    let route = (to_us
        && (ethertype == EtherType::Ipv4.to_u16() || ethertype == EtherType::Ipv6.to_u16()))
    .then_some(att_id);
    match vlan {
        Some(vid) if route.is_none() => {
            buf.extend_from_slice(&frame[..12]);
            buf.extend_from_slice(&EtherType::Vlan.to_u16().to_be_bytes());
            buf.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
            buf.extend_from_slice(&frame[12..]);
        }
        _ => buf.extend_from_slice(frame),
    }
    let len = buf.len() as u64;
    match ends.inject.try_send(Injected { port, route, buf }) {
        Ok(()) => {
            bump(&c.injected, 1);
            bump(&c.injected_bytes, len);
        }
        Err(TrySendError::Full(i) | TrySendError::Disconnected(i)) => {
            bump(&c.inject_queue_full, 1);
            let _pool_full = ends.inject_return.try_send(i.buf);
        }
    }
}

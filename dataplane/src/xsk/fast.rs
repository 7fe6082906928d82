//! The XDP fast path (`xpe run --fast-path xdp`): one loaded copy of the `xpe_fast` program
//! (ebpf/src/main.rs) attached to every interface. It forwards the LSR swaps and
//! penultimate-hop pops its tables hold in the kernel and steers every other frame, untouched, to the AF_XDP socket of its port and
//! queue, where the pipeline handles it as without the fast path.
//!
//! The tables are compiled from the same [`Snapshot`] the workers use ([`FastTables`]) and kept
//! in step with every published one ([`FastPath::apply`]). The label table is double-buffered:
//! userspace writes the map the program does not read, switches the generation slot, and waits
//! for an RCU grace period before it writes the other one, so a frame sees one table or the
//! next, never half of an update.
//!
//! So far the fast path does the LSR operations only (docs/runtime.md lists what takes which
//! path).

use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::RawFd;

use aya::maps::{Array, DevMap, MapData, PerCpuArray, XskMap};
use aya::Ebpf;
use xpe_ebpf::{self as names, FastLabel, FastPort};

use super::steer::{attach_loaded, loaded_program, Mode, SteerError};
use super::xdp_features::{xdp_features, XDP_ACT_NDO_XMIT};
use crate::pipeline::Counters;
use crate::tables::{IlmAction, PortId, PortKind, Snapshot, TtlMode};

/// What the fast path's maps hold for one snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FastTables {
    /// Every port, by slot (its [`PortId`]). `core` is set where the pipeline takes labelled
    /// frames: core ports with an untagged attachment.
    pub ports: Vec<FastPort>,
    /// Labels it swaps or pops: incoming label -> entry. The entry's TX slot is the egress
    /// port.
    pub labels: BTreeMap<u32, FastLabel>,
}

impl FastTables {
    /// The entries for `snap`: every swap to one outgoing label and every PHP whose next hop is
    /// resolved and untagged. Everything else (VPN labels, several labels pushed, unresolved or
    /// tagged next hops, counter slots past [`names::FAST_MAX_LABELS`]) stays with the
    /// pipeline.
    pub fn compile(snap: &Snapshot) -> FastTables {
        let ports = snap
            .ports()
            .iter()
            .enumerate()
            .map(|(i, p)| FastPort {
                mac: p.mac.0,
                core: u8::from(p.kind == PortKind::Core && p.attachment(0).is_some()),
                pad: 0,
                slot: i as u32,
            })
            .collect();
        let uniform = u8::from(snap.ttl_mode() == TtlMode::Uniform);
        let labels = snap
            .ilm()
            .entries()
            .filter_map(|e| {
                let (adj, op, out) = match e.action {
                    IlmAction::Swap { adj, ref out } => match out.words() {
                        [word] => (adj, names::FAST_OP_SWAP, *word),
                        _ => return None,
                    },
                    IlmAction::Pop { adj } => (adj, names::FAST_OP_POP, 0),
                    IlmAction::PopLookup { .. } => return None,
                };
                let adj = snap.adjacency(adj);
                if adj.mac.is_none()
                    || adj.vlan.is_some()
                    || e.counter >= names::FAST_MAX_LABELS
                    || u32::from(adj.port.0) >= names::FAST_MAX_PORTS
                {
                    return None;
                }
                let mut macs = [0u8; 12];
                macs.copy_from_slice(&adj.header[..12]);
                Some((
                    e.label.get(),
                    FastLabel {
                        out,
                        tx_slot: u32::from(adj.port.0),
                        counter: e.counter,
                        macs,
                        mtu: adj.mtu,
                        op,
                        uniform,
                    },
                ))
            })
            .collect();
        FastTables { ports, labels }
    }
}

/// A map value the kernel copies as plain bytes: [`FastLabel`] and [`FastPort`] are `repr(C)`
/// structs of integers with explicit padding, defined in the no_std crate the program shares
/// (which does not depend on aya, hence the wrapper).
#[repr(transparent)]
#[derive(Clone, Copy)]
struct Value<T>(T);

// SAFETY: `T` is one of the `repr(C)` structs above: integers and byte arrays only, every bit
// pattern valid, padding spelt out as fields.
unsafe impl aya::Pod for Value<FastLabel> {}
// SAFETY: as above.
unsafe impl aya::Pod for Value<FastPort> {}

/// Why the fast path could not be loaded, attached, updated or read.
#[derive(Debug, thiserror::Error)]
pub enum FastError {
    /// The object or a map was refused.
    #[error("cannot load the XDP fast path: {0} (needs root, or CAP_BPF and CAP_NET_ADMIN)")]
    Load(#[source] aya::EbpfError),
    /// The program was refused, or could not be attached.
    #[error(transparent)]
    Program(#[from] SteerError),
    /// More ports than the program's maps have slots for.
    #[error("the XDP fast path takes at most {max} interfaces; the config has {ports}")]
    TooManyPorts {
        /// Ports in the config.
        ports: usize,
        /// The most the fast path takes.
        max: u32,
    },
    /// A map could not be read or written.
    #[error("fast-path map {map}: {detail}")]
    Map {
        /// The map.
        map: &'static str,
        /// Why.
        detail: String,
    },
}

/// What one [`FastPath::apply`] changed in the live label table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FastDelta {
    /// Labels added or changed.
    pub written: usize,
    /// Labels removed.
    pub removed: usize,
    /// Labels in the live table now.
    pub labels: usize,
}

/// One port's fast-path counters, summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FastPortCounters {
    /// Frames received on the port and forwarded in the kernel.
    pub rx_packets: u64,
    /// Their bytes.
    pub rx_bytes: u64,
    /// Frames the kernel forwarded out of the port.
    pub tx_packets: u64,
    /// Their bytes.
    pub tx_bytes: u64,
    /// Frames received on the port and steered to an AF_XDP socket.
    pub redirected: u64,
    /// Frames received on the port and passed to the kernel (no socket bound on the queue).
    pub passed: u64,
}

/// The fast path's counters, summed over CPUs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FastCounters {
    /// By port slot.
    pub ports: Vec<FastPortCounters>,
    /// Packets by label counter slot, for every slot the fast path has counted in.
    pub labels: Vec<(u32, u64)>,
}

impl FastCounters {
    /// Frames forwarded in the kernel.
    pub fn forwarded(&self) -> u64 {
        self.ports.iter().map(|p| p.rx_packets).sum()
    }

    /// Adds what the kernel forwarded to the workers' counters `c`, so they count every frame
    /// the router forwarded: per port, per label slot, and in `forwarded`.
    pub fn add_to(&self, c: &mut Counters) {
        c.forwarded += self.forwarded();
        if c.ports.len() < self.ports.len() {
            c.ports.resize(self.ports.len(), Default::default());
        }
        for (mine, fast) in c.ports.iter_mut().zip(&self.ports) {
            mine.rx_packets += fast.rx_packets;
            mine.rx_bytes += fast.rx_bytes;
            mine.tx_packets += fast.tx_packets;
            mine.tx_bytes += fast.tx_bytes;
        }
        for &(slot, packets) in &self.labels {
            let slot = slot as usize;
            if c.labels.len() <= slot {
                c.labels.resize(slot + 1, 0);
            }
            c.labels[slot] += packets;
        }
    }
}

/// The fast path as `show counters` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FastStatus {
    /// Whether it forwards (a failed update switches it off until the next one succeeds).
    pub live: bool,
    /// Labels in its live table.
    pub labels: usize,
    /// Table updates that failed.
    pub failed_updates: u64,
    /// The last failure.
    pub last_error: Option<String>,
    /// Its counters (empty when they could not be read; `last_error` then says why).
    pub counters: FastCounters,
    /// By port slot: whether it sends out of the port (see [`FastPath::refresh_egress`]).
    pub egress_ok: Vec<bool>,
}

/// The fast-path program loaded, with its tables; attached to each interface with
/// [`FastPath::attach`], detached when dropped.
pub struct FastPath {
    ebpf: Ebpf,
    /// Interface index of each port slot.
    ifindex: Vec<u32>,
    /// What each label map holds.
    held: [BTreeMap<u32, FastLabel>; 2],
    /// The port map's entries.
    ports: Vec<FastPort>,
    /// The live label map (0, 1), or [`names::FAST_GEN_OFF`].
    generation: u32,
    /// Label counter slots ever installed (the ones whose counters are read).
    counted: BTreeSet<u32>,
    /// The tables last asked for ([`FastPath::apply`]), before the egress check.
    wanted: FastTables,
    /// By port slot: whether a redirect to it can succeed ([`FastPath::refresh_egress`]).
    egress_ok: Vec<bool>,
    /// Whether egress needs checking: some interface is attached in native mode, where a
    /// redirect needs the egress device's `ndo_xdp_xmit` (skb mode transmits an skb).
    check_egress: bool,
    /// Interfaces attached, with the mode that took.
    attached: Vec<(String, Mode)>,
    /// Their links, until [`FastPath::detach`].
    links: Vec<aya::programs::xdp::XdpLinkId>,
    /// Updates that failed, and the last one's error.
    failed: (u64, Option<String>),
}

impl std::fmt::Debug for FastPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastPath")
            .field("attached", &self.attached)
            .field("generation", &self.generation)
            .field("labels", &self.live_labels())
            .finish()
    }
}

impl FastPath {
    /// Loads the program for the ports whose interface indices `ifindex` gives (by port slot),
    /// fills the port map and the DEVMAP, and installs `tables`.
    pub fn load(ifindex: Vec<u32>, tables: &FastTables) -> Result<FastPath, FastError> {
        if ifindex.len() > names::FAST_MAX_PORTS as usize {
            return Err(FastError::TooManyPorts {
                ports: ifindex.len(),
                max: names::FAST_MAX_PORTS,
            });
        }
        let mut ebpf = super::steer::load_object(true).map_err(FastError::Load)?;
        {
            let mut tx: DevMap<&mut MapData> = map_mut(&mut ebpf, names::FAST_TX_MAP)?;
            for (slot, &i) in ifindex.iter().enumerate() {
                tx.set(slot as u32, i, None, 0)
                    .map_err(map_err(names::FAST_TX_MAP))?;
            }
        }
        loaded_program(&mut ebpf, names::FAST_PROGRAM)?;
        let slots = ifindex.len();
        let mut fast = FastPath {
            ebpf,
            ifindex,
            wanted: FastTables::default(),
            egress_ok: vec![true; slots],
            check_egress: false,
            held: [BTreeMap::new(), BTreeMap::new()],
            ports: Vec::new(),
            generation: names::FAST_GEN_OFF,
            counted: BTreeSet::new(),
            attached: Vec::new(),
            links: Vec::new(),
            failed: (0, None),
        };
        fast.set_generation(names::FAST_GEN_OFF)?;
        fast.apply(tables)?;
        Ok(fast)
    }

    /// Attaches the program to `ifname`; with [`Mode::Auto`], native first, then skb.
    pub fn attach(&mut self, ifname: &str, mode: Mode) -> Result<Mode, FastError> {
        let xdp: &mut aya::programs::Xdp = self
            .ebpf
            .program_mut(names::FAST_PROGRAM)
            .ok_or_else(|| missing(names::FAST_PROGRAM))?
            .try_into()
            .map_err(|source| SteerError::Program {
                program: names::FAST_PROGRAM,
                source,
            })?;
        let (mode, link) = attach_loaded(xdp, ifname, mode)?;
        self.attached.push((ifname.to_string(), mode));
        self.links.push(link);
        self.check_egress |= mode == Mode::Native;
        Ok(mode)
    }

    /// Asks the kernel again which ports take redirected frames (a veth does only while its
    /// peer has an XDP program or GRO on), and reinstalls the tables if that changed: labels
    /// whose egress does not are left to the workers. Returns whether anything changed.
    pub fn refresh_egress(&mut self) -> Result<bool, FastError> {
        let mut now = Vec::with_capacity(self.ifindex.len());
        for &i in &self.ifindex {
            // A port whose features cannot be read is not sent to: the workers still are.
            now.push(
                !self.check_egress || xdp_features(i).map_or(false, |f| f & XDP_ACT_NDO_XMIT != 0),
            );
        }
        if now == self.egress_ok {
            return Ok(false);
        }
        self.egress_ok = now;
        let wanted = self.wanted.clone();
        self.apply(&wanted)?;
        Ok(true)
    }

    /// By port slot: whether the fast path sends out of it.
    pub fn egress_ok(&self) -> &[bool] {
        &self.egress_ok
    }

    /// Detaches the program from every interface (its maps and counters stay readable).
    pub fn detach(&mut self) {
        let Some(program) = self.ebpf.program_mut(names::FAST_PROGRAM) else {
            return;
        };
        let Ok(xdp) = <&mut aya::programs::Xdp>::try_from(program) else {
            return;
        };
        for link in self.links.drain(..) {
            // An interface that went away took its attachment with it.
            let _gone = xdp.detach(link);
        }
    }

    /// The interfaces attached, with the mode that took on each.
    pub fn attached(&self) -> &[(String, Mode)] {
        &self.attached
    }

    /// Points RX queue `queue` of port `port` at the AF_XDP socket `fd`.
    pub fn bind_socket(&mut self, port: PortId, queue: u32, fd: RawFd) -> Result<(), FastError> {
        let mut xsks: XskMap<&mut MapData> = map_mut(&mut self.ebpf, names::FAST_XSK_MAP)?;
        xsks.set(u32::from(port.0) * names::MAX_QUEUES + queue, fd, 0)
            .map_err(|e| FastError::Map {
                map: names::FAST_XSK_MAP,
                detail: format!("queue {queue} of port {}: {e}", port.0),
            })
    }

    /// Whether the fast path forwards at all (not switched off by a failed update).
    pub fn is_live(&self) -> bool {
        self.generation != names::FAST_GEN_OFF
    }

    /// Updates that failed, and the last one's error.
    pub fn failed_updates(&self) -> (u64, Option<&str>) {
        (self.failed.0, self.failed.1.as_deref())
    }

    /// Its state and counters.
    pub fn status(&self) -> FastStatus {
        let (counters, read_error) = match self.counters() {
            Ok(c) => (c, None),
            Err(e) => (FastCounters::default(), Some(e.to_string())),
        };
        FastStatus {
            live: self.is_live(),
            labels: self.live_labels(),
            failed_updates: self.failed.0,
            last_error: read_error.or_else(|| self.failed.1.clone()),
            counters,
            egress_ok: self.egress_ok.clone(),
        }
    }

    /// Labels in the live table.
    pub fn live_labels(&self) -> usize {
        self.held
            .get(self.generation as usize)
            .map_or(0, |h| h.len())
    }

    /// Brings the maps in step with `next`: the port entries that changed, then the label map
    /// the program does not read, then the switch to it. Returns what changed against the live
    /// table. On a failure the fast path is switched off (every frame goes to the workers,
    /// which have the new tables) until an update succeeds.
    pub fn apply(&mut self, next: &FastTables) -> Result<FastDelta, FastError> {
        self.wanted = next.clone();
        let mut next = next.clone();
        next.labels
            .retain(|_, e| self.egress_ok.get(e.tx_slot as usize) == Some(&true));
        match self.try_apply(&next) {
            Ok(delta) => Ok(delta),
            Err(e) => {
                // Nothing is forwarded on stale tables; if even this fails the program keeps
                // the last complete table, which the error reports.
                let _off = self.set_generation(names::FAST_GEN_OFF);
                self.failed = (self.failed.0 + 1, Some(e.to_string()));
                Err(e)
            }
        }
    }

    fn try_apply(&mut self, next: &FastTables) -> Result<FastDelta, FastError> {
        self.write_ports(&next.ports)?;
        // Most publishes (routes, neighbours elsewhere) leave the labels as they are: no
        // switch, no grace period.
        if self.held.get(self.generation as usize) == Some(&next.labels) {
            return Ok(FastDelta {
                labels: next.labels.len(),
                ..FastDelta::default()
            });
        }
        let spare = match self.generation {
            0 => 1,
            _ => 0,
        };
        let mut delta = FastDelta::default();
        let live = self.held.get(self.generation as usize).cloned();
        {
            let name = names::FAST_LABELS_MAPS[spare];
            let mut map: aya::maps::HashMap<&mut MapData, u32, Value<FastLabel>> =
                map_mut(&mut self.ebpf, name)?;
            let held = &mut self.held[spare];
            for (label, entry) in &next.labels {
                if held.get(label) != Some(entry) {
                    map.insert(label, Value(*entry), 0)
                        .map_err(|e| FastError::Map {
                            map: name,
                            detail: format!("label {label}: {e}"),
                        })?;
                    held.insert(*label, *entry);
                }
                self.counted.insert(entry.counter);
            }
            let gone: Vec<u32> = held
                .keys()
                .filter(|l| !next.labels.contains_key(l))
                .copied()
                .collect();
            for label in gone {
                map.remove(&label).map_err(|e| FastError::Map {
                    map: name,
                    detail: format!("label {label}: {e}"),
                })?;
                held.remove(&label);
            }
        }
        for (label, entry) in &next.labels {
            if live.as_ref().and_then(|l| l.get(label)) != Some(entry) {
                delta.written += 1;
            }
        }
        delta.removed = live.map_or(0, |l| {
            l.keys().filter(|k| !next.labels.contains_key(k)).count()
        });
        self.set_generation(spare as u32)?;
        delta.labels = self.live_labels();
        Ok(delta)
    }

    /// Writes the port entries that differ from `ports`.
    fn write_ports(&mut self, ports: &[FastPort]) -> Result<(), FastError> {
        let name = names::FAST_PORTS_MAP;
        let mut map: aya::maps::HashMap<&mut MapData, u32, Value<FastPort>> =
            map_mut(&mut self.ebpf, name)?;
        for (slot, port) in ports.iter().enumerate() {
            let Some(&ifindex) = self.ifindex.get(slot) else {
                continue;
            };
            if self.ports.get(slot) != Some(port) {
                map.insert(ifindex, Value(*port), 0)
                    .map_err(|e| FastError::Map {
                        map: name,
                        detail: format!("port {slot}: {e}"),
                    })?;
            }
        }
        self.ports = ports.to_vec();
        Ok(())
    }

    /// Makes label map `generation` live (or none, with [`names::FAST_GEN_OFF`]), then waits
    /// until no program can still be reading the one before.
    fn set_generation(&mut self, generation: u32) -> Result<(), FastError> {
        let mut gen: Array<&mut MapData, u32> = map_mut(&mut self.ebpf, names::FAST_GEN_MAP)?;
        gen.set(0, generation, 0)
            .map_err(map_err(names::FAST_GEN_MAP))?;
        self.generation = generation;
        grace_period();
        Ok(())
    }

    /// The counters, summed over CPUs.
    pub fn counters(&self) -> Result<FastCounters, FastError> {
        let read = |name: &'static str| -> Result<PerCpuArray<&MapData, u64>, FastError> {
            let found = self.ebpf.map(name).ok_or_else(|| missing(name))?;
            PerCpuArray::try_from(found).map_err(map_err(name))
        };
        let stats = read(names::FAST_PORT_STATS_MAP)?;
        let sum = |i: u32| -> Result<u64, FastError> {
            let values = stats
                .get(&i, 0)
                .map_err(map_err(names::FAST_PORT_STATS_MAP))?;
            Ok(values.iter().sum())
        };
        let mut ports = Vec::with_capacity(self.ifindex.len());
        for slot in 0..self.ifindex.len() as u32 {
            let at = |k: u32| sum(slot * names::FAST_PORT_STATS_LEN + k);
            ports.push(FastPortCounters {
                rx_packets: at(names::FAST_PORT_RX_PACKETS)?,
                rx_bytes: at(names::FAST_PORT_RX_BYTES)?,
                tx_packets: at(names::FAST_PORT_TX_PACKETS)?,
                tx_bytes: at(names::FAST_PORT_TX_BYTES)?,
                redirected: at(names::FAST_PORT_REDIRECTED)?,
                passed: at(names::FAST_PORT_PASSED)?,
            });
        }
        let label_stats = read(names::FAST_LABEL_STATS_MAP)?;
        let mut labels = Vec::with_capacity(self.counted.len());
        for &slot in &self.counted {
            let values = label_stats
                .get(&slot, 0)
                .map_err(map_err(names::FAST_LABEL_STATS_MAP))?;
            labels.push((slot, values.iter().sum()));
        }
        Ok(FastCounters { ports, labels })
    }

    /// Runs the program once on `frame` as if it arrived on interface `ingress` (queue 0),
    /// with BPF_PROG_TEST_RUN: returns the XDP action and the frame as the program left it.
    pub fn test_run(&self, frame: &[u8], ingress: u32) -> Result<(u32, Vec<u8>), FastError> {
        use aya::programs::{TestRun, TestRunOptions};
        let program_err = |source| SteerError::Program {
            program: names::FAST_PROGRAM,
            source,
        };
        let xdp: &aya::programs::Xdp = self
            .ebpf
            .program(names::FAST_PROGRAM)
            .ok_or_else(|| missing(names::FAST_PROGRAM))?
            .try_into()
            .map_err(program_err)?;
        // struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index,
        // egress_ifindex (linux/bpf.h); the kernel wants data 0 and data_end the length.
        let md: [u32; 6] = [0, frame.len() as u32, 0, ingress, 0, 0];
        let ctx: Vec<u8> = md.iter().flat_map(|w| w.to_ne_bytes()).collect();
        let mut out = vec![0u8; frame.len() + 256];
        let result = xdp
            .test_run(TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                ctx_in: Some(&ctx),
                ..TestRunOptions::default()
            })
            .map_err(program_err)?;
        out.truncate(result.data_size_out as usize);
        Ok((result.return_value, out))
    }
}

/// Waits for an RCU grace period: when it returns, no XDP program that started before it is
/// still running. `membarrier(MEMBARRIER_CMD_GLOBAL)` is the kernel's `synchronize_rcu()`
/// (kernel/sched/membarrier.c), and XDP programs run inside RCU read-side sections. Where the
/// kernel refuses it (nohz_full CPUs), a pause far longer than any one program run stands in.
fn grace_period() {
    const MEMBARRIER_CMD_GLOBAL: libc::c_long = 1;
    // SAFETY: membarrier takes no pointers; an unsupported command only returns an error.
    let done = unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) } == 0;
    if !done {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn missing(map: &'static str) -> FastError {
    FastError::Map {
        map,
        detail: "missing from the embedded object".into(),
    }
}

fn map_err<E: std::fmt::Display>(map: &'static str) -> impl Fn(E) -> FastError {
    move |e| FastError::Map {
        map,
        detail: e.to_string(),
    }
}

/// Map `name` of `ebpf` as the typed map `M`.
fn map_mut<'a, M>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<M, FastError>
where
    M: TryFrom<&'a mut aya::maps::Map, Error = aya::maps::MapError>,
{
    let found = ebpf.map_mut(name).ok_or_else(|| missing(name))?;
    M::try_from(found).map_err(map_err(name))
}

//! `xpe run`: the live data plane between Linux interfaces, and the control socket through
//! which `xpe show`, `apply`, `route` and `label` change and read it while it forwards.
//!
//! Every change builds a complete new snapshot from the changed config and publishes it with
//! one pointer swap (`tables::Published`): workers pick it up at their next batch, nothing
//! stops, and a change that does not validate is refused with the running tables untouched.
//! Neighbours learned from ARP are kept beside the config and laid over each new snapshot
//! (static neighbours win); unresolved next hops get an ARP request once a second.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use xpe_dataplane::pipeline::learn::arp_request;
use xpe_dataplane::pipeline::{Counters, Drop as DropReason, Punt};
use xpe_dataplane::tables::{
    Adjacency, AdjacencyId, AttachmentId, Fec, FecId, IpPrefix, Published, RouteInfo, RouteOrigin,
    Snapshot, VrfId,
};
use xpe_dataplane::wire::ethernet::MacAddr;
use xpe_dataplane::xsk::netdev::Netdev;
use xpe_dataplane::xsk::runtime::{Plan, Runtime};
use xpe_dataplane::xsk::steer::{Mode, SteerError};
use xpe_dataplane::xsk::umem::{MAX_FRAME, MAX_JUMBO_FRAME};
use xpe_dataplane::xsk::worker::{cycles, Event, LoopStats, Originated, WorkerStats};
use xpe_dataplane::xsk::XskError;

use crate::compile::{compile, Compiled, SysfsMacs};
use crate::config::{Config, LabelAction, LabelEntry, Neighbor, Route};
use crate::ctl::{Request, Response, What};
use crate::error::Failure;

/// Ethernet header plus one 802.1Q tag: what a frame adds to the interface MTU.
const L2_OVERHEAD: u32 = 18;
/// ARP requests sent per second at most, over all unresolved next hops.
const ARP_PER_SECOND: usize = 64;

/// What `xpe run` was asked to do.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The config file.
    pub config: PathBuf,
    /// Worker cores (`None`: one unpinned worker).
    pub cores: Option<Vec<usize>>,
    /// XDP attach mode.
    pub mode: Mode,
    /// Control socket path (default `/run/xpe/NAME.sock`).
    pub socket: Option<PathBuf>,
}

/// The config and tables a running instance changes under the state lock.
struct State {
    config: Config,
    /// The compiled config, before learned neighbours are laid over it.
    base: Snapshot,
    /// Next hops of adjacencies resolved by ARP: (port, VLAN id or 0, address) -> MAC.
    learned: HashMap<NeighborKey, MacAddr>,
    /// Hosts on connected subnets resolved by ARP after a glean: compiled in like static
    /// neighbours (they need host routes), so a change here recompiles.
    hosts: HashMap<NeighborKey, MacAddr>,
    /// Hosts asked for after a glean, and when.
    asked: HashMap<NeighborKey, Instant>,
    /// Counter slots of labels and VRFs.
    slots: Slots,
}

/// Counter slots by label value and by VRF name, kept for the life of the process: a label's
/// or a VRF's packet counts survive every table change that keeps (or brings back) it.
#[derive(Default)]
struct Slots {
    labels: HashMap<u32, u32>,
    label_of: Vec<u32>,
    vrfs: HashMap<String, u32>,
    vrf_of: Vec<String>,
}

impl Slots {
    /// `snap` counting into these slots (new labels and VRFs get new ones).
    fn assign(&mut self, snap: &Snapshot) -> Snapshot {
        let Slots {
            labels,
            label_of,
            vrfs,
            vrf_of,
        } = self;
        snap.with_counter_slots(
            |l| {
                *labels.entry(l.get()).or_insert_with(|| {
                    label_of.push(l.get());
                    (label_of.len() - 1) as u32
                })
            },
            |name| match vrfs.get(name) {
                Some(&s) => s,
                None => {
                    vrf_of.push(name.to_string());
                    let s = (vrf_of.len() - 1) as u32;
                    vrfs.insert(name.to_string(), s);
                    s
                }
            },
        )
    }
}

/// A neighbour's place: port index, VLAN id (0 untagged), address.
type NeighborKey = (u16, u16, Ipv4Addr);

/// Hosts waiting for an ARP answer at most; more gleans wait until some are answered.
const MAX_ASKED: usize = 1024;

/// Everything the control threads share.
struct Live {
    state: Mutex<State>,
    published: Arc<Published>,
    runtime: Mutex<Option<Runtime>>,
    interfaces: Vec<String>,
    tsc_hz: f64,
    started: Instant,
    stop: AtomicBool,
}

/// `xpe run`: checks, starts, serves the control socket until SIGINT or SIGTERM, stops.
pub fn run(opts: &RunOptions, out: &mut dyn Write) -> Result<(), Failure> {
    // SAFETY-free check of the effective user: libc::geteuid has no preconditions, but the
    // control crate forbids unsafe, so ask the kernel through /proc instead.
    if !is_root() {
        return Err(Failure::new(
            "xpe run needs root (it attaches XDP programs and opens AF_XDP sockets)",
        )
        .hint("run it with sudo"));
    }
    let (config, compiled) = load_live(&opts.config)?;
    let name = config.router.name.clone();
    let mut interfaces = Vec::new();
    for i in &config.interfaces {
        let dev = Netdev::read(&i.name).ok_or_else(|| {
            Failure::new(format!(
                "interface {} does not exist in this network namespace",
                i.name
            ))
            .hint(
                "create it, or run xpe in the namespace that has it (ip netns exec NS xpe run ...)",
            )
        })?;
        if !dev.up {
            return Err(Failure::new(format!("interface {} is down", i.name))
                .hint(format!("bring it up: ip link set {} up", i.name)));
        }
        if dev.mtu + L2_OVERHEAD > MAX_JUMBO_FRAME {
            return Err(Failure::new(format!(
                "interface {} has MTU {}, but xpe forwards frames of at most {} bytes",
                i.name, dev.mtu, MAX_JUMBO_FRAME
            ))
            .hint(format!(
                "set the MTU to {} or less: ip link set {} mtu {}",
                MAX_JUMBO_FRAME - L2_OVERHEAD,
                i.name,
                MAX_JUMBO_FRAME - L2_OVERHEAD
            )));
        }
        interfaces.push(dev);
    }
    for dev in &interfaces {
        vlan_offloads_off(&dev.name, out)?;
    }
    // Frames longer than a chunk arrive in pieces (multi-buffer AF_XDP): only asked for when
    // an MTU needs it, as the kernel must support it (6.6 and later in copy mode).
    let jumbo = interfaces.iter().any(|d| d.mtu + L2_OVERHEAD > MAX_FRAME);
    let socket = opts
        .socket
        .clone()
        .unwrap_or_else(|| crate::ctl::default_socket(&name));
    let listener = bind_socket(&socket)?;
    let snap = &compiled.snapshot;
    let plan = Plan {
        interfaces: interfaces
            .iter()
            .map(|d| {
                let port = snap
                    .port_by_name(&d.name)
                    .expect("compiled from the same interfaces");
                (d.name.clone(), port, d.rx_queues)
            })
            .collect(),
        cores: opts.cores.clone(),
        mode: opts.mode,
        jumbo,
    };
    let mut slots = Slots::default();
    let base = slots.assign(&compiled.snapshot);
    let published = Arc::new(Published::new(base.clone()));
    let runtime = match Runtime::start(&plan, published.clone()) {
        Ok(r) => r,
        Err(e) => {
            remove_socket(&socket);
            return Err(start_failure(e, jumbo));
        }
    };
    let live = Arc::new(Live {
        state: Mutex::new(State {
            config,
            base,
            slots,
            learned: HashMap::new(),
            hosts: HashMap::new(),
            asked: HashMap::new(),
        }),
        published,
        interfaces: interfaces.iter().map(|d| d.name.clone()).collect(),
        tsc_hz: measure_tsc_hz(),
        started: Instant::now(),
        stop: AtomicBool::new(false),
        runtime: Mutex::new(Some(runtime)),
    });
    let modes = {
        let rt = lock(&live.runtime);
        let rt = rt.as_ref().expect("just started");
        let steering: Vec<String> = rt
            .steering()
            .iter()
            .map(|s| format!("{} {}", s.ifname(), s.mode()))
            .collect();
        let workers = rt
            .sockets()
            .iter()
            .map(|s| s.worker)
            .max()
            .map_or(0, |w| w + 1);
        format!(
            "{} socket(s) on {} worker(s), XDP: {}",
            rt.sockets().len(),
            workers,
            steering.join(", ")
        )
    };
    // A closed stdout must not stop a router.
    let _ignored = writeln!(
        out,
        "xpe {name} running: {modes}; control socket {}",
        socket.display()
    );
    let _ignored = out.flush();
    for w in &compiled.warnings {
        let _ignored = writeln!(out, "warning: {w}");
    }

    let server = {
        let live = live.clone();
        std::thread::Builder::new()
            .name("xpe-control".into())
            .spawn(move || serve(&live, &listener))
            .map_err(|e| Failure::new(format!("cannot start the control thread: {e}")))?
    };
    let neighbours = {
        let live = live.clone();
        std::thread::Builder::new()
            .name("xpe-neighbours".into())
            .spawn(move || neighbour_loop(&live))
            .map_err(|e| Failure::new(format!("cannot start the neighbour thread: {e}")))?
    };
    wait_for_signal()?;
    live.stop.store(true, Ordering::Relaxed);
    let final_stats = lock(&live.runtime)
        .take()
        .map(Runtime::stop)
        .unwrap_or_default();
    remove_socket(&socket);
    // The control thread blocks in accept(); poke it so it sees the stop flag.
    let _ignored = UnixStream::connect(&socket);
    let _ignored = neighbours.join();
    drop(server);
    let total = totals(&final_stats);
    let rx: u64 = total.ports.iter().map(|p| p.rx_packets).sum();
    let _ignored = writeln!(
        out,
        "xpe {name} stopped: {rx} frames received, {} forwarded, {} dropped, {} punted; XDP detached",
        total.forwarded,
        total.total_drops(),
        total.total_punts()
    );
    Ok(())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Whether we run as root (effective uid 0), read from /proc so no unsafe is needed here.
pub(crate) fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// Loads and compiles a config with the interfaces' real MACs.
fn load_live(path: &Path) -> Result<(Config, Compiled), Failure> {
    let config = Config::load(path).map_err(|e| Failure::new(e.to_string()))?;
    let compiled = compile_live(&config)?;
    Ok((config, compiled))
}

fn compile_live(config: &Config) -> Result<Compiled, Failure> {
    compile(config, &SysfsMacs).map_err(|errors| {
        let n = errors.0.len();
        Failure::new(format!("the config has {n} error(s):\n{errors}"))
            .hint("fix the objects named above; see docs/config.md")
    })
}

/// The XDP program must see 802.1Q tags in the frame data, so the NIC must not strip them
/// (rxvlan) or expect to insert them (txvlan). Done with ethtool, which setup.sh installs:
/// it knows every driver's feature names, where the raw ioctl would need them spelled out.
fn vlan_offloads_off(ifname: &str, out: &mut dyn Write) -> Result<(), Failure> {
    let status = std::process::Command::new("ethtool")
        .args(["-K", ifname, "rxvlan", "off", "txvlan", "off"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map_err(|e| {
            Failure::new(format!(
                "cannot run ethtool to turn VLAN offloads off on {ifname}: {e}"
            ))
            .hint("install it: scripts/setup.sh")
        })?;
    if !status.success() {
        // Devices without these features (or with them fixed off) refuse the change; the
        // frames then carry their tags anyway. Say so rather than stop.
        let _ignored = writeln!(out, "note: ethtool could not change VLAN offloads on {ifname} (the device may not have them)");
    }
    Ok(())
}

/// Binds the control socket (mode 0600), replacing a stale file no one listens on.
fn bind_socket(path: &Path) -> Result<UnixListener, Failure> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Failure::new(format!("cannot create {}: {e}", dir.display())))?;
    }
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(Failure::new(format!(
                "another xpe is running with control socket {}",
                path.display()
            ))
            .hint("stop it first, or give this one another --socket"));
        }
        std::fs::remove_file(path).map_err(|e| {
            Failure::new(format!(
                "cannot remove the stale socket {}: {e}",
                path.display()
            ))
        })?;
    }
    let listener = UnixListener::bind(path).map_err(|e| {
        Failure::new(format!(
            "cannot create the control socket {}: {e}",
            path.display()
        ))
    })?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| Failure::new(format!("cannot restrict {} to root: {e}", path.display())))?;
    Ok(listener)
}

fn remove_socket(path: &Path) {
    // Already gone is fine; anything else leaves a stale file the next start replaces.
    let _stale_is_replaced_next_start = std::fs::remove_file(path);
}

/// What to try when the steering program cannot be loaded or attached.
const STEER_HINT: &str =
    "try --xdp-mode skb, or check `ip link show` for another XDP program on the interface";

/// One sentence per way the live runtime fails to start.
fn start_failure(e: XskError, jumbo: bool) -> Failure {
    let text = e.to_string();
    match &e {
        _ if e.no_af_xdp() => {
            Failure::new(format!("this kernel has no AF_XDP sockets ({text})"))
                .hint("a kernel with CONFIG_XDP_SOCKETS=y is needed")
        }
        _ if e.not_permitted() => {
            Failure::new(text).hint("run as root (CAP_NET_ADMIN, CAP_NET_RAW and CAP_BPF)")
        }
        _ if jumbo && e.flags_refused() => Failure::new(format!(
            "the kernel refused multi-buffer AF_XDP sockets (XDP_USE_SG), which frames longer than {MAX_FRAME} bytes need ({text})"
        ))
        .hint(format!("use a kernel of 6.6 or later, or an MTU of {} or less", MAX_FRAME - L2_OVERHEAD)),
        XskError::Steer(SteerError::Attach { ifname, .. }) => match attached_program(ifname) {
            Some((id, name)) => Failure::new(format!(
                "interface {ifname} already has an XDP program ({name}, id {id}) that xpe did not attach"
            ))
            .hint(format!(
                "xpe never replaces another tool's program (its own go with the process that attached them): remove it with `ip link set dev {ifname} xdp off` if it is not needed"
            )),
            None => Failure::new(text).hint(STEER_HINT),
        },
        XskError::Steer(_) => Failure::new(text).hint(STEER_HINT),
        _ => Failure::new(text),
    }
}

/// The XDP program attached to an interface, as `ip -d link` shows it: (id, name).
fn attached_program(ifname: &str) -> Option<(String, String)> {
    let out = std::process::Command::new("ip")
        .args(["-d", "link", "show", "dev", ifname])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut words = text.split_whitespace().skip_while(|w| *w != "prog/xdp");
    let (mut id, mut name) = (None, None);
    while let Some(w) = words.next() {
        match w {
            "id" => id = words.next().map(str::to_string),
            "name" => name = words.next().map(str::to_string),
            _ => {}
        }
        if id.is_some() && name.is_some() {
            break;
        }
    }
    Some((id?, name.unwrap_or_else(|| "unnamed".into())))
}

/// Waits for SIGINT or SIGTERM.
fn wait_for_signal() -> Result<(), Failure> {
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])
    .map_err(|e| Failure::new(format!("cannot install signal handlers: {e}")))?;
    let _signal = signals.forever().next();
    Ok(())
}

/// TSC ticks per second, measured over 50 ms (for cycles shown as time).
fn measure_tsc_hz() -> f64 {
    let (c0, t0) = (cycles(), Instant::now());
    std::thread::sleep(Duration::from_millis(50));
    let (c1, t1) = (cycles(), Instant::now());
    c1.wrapping_sub(c0) as f64 / (t1 - t0).as_secs_f64()
}

/// Serves control requests until the stop flag is set.
fn serve(live: &Live, listener: &UnixListener) {
    for conn in listener.incoming() {
        if live.stop.load(Ordering::Relaxed) {
            return;
        }
        let Ok(mut conn) = conn else { continue };
        let mut line = String::new();
        let response = match BufReader::new(&conn).read_line(&mut line) {
            Ok(_) => match serde_json::from_str::<Request>(&line) {
                Ok(req) => handle(live, req),
                Err(e) => Response {
                    ok: false,
                    text: format!("not a valid request: {e}"),
                },
            },
            Err(e) => Response {
                ok: false,
                text: format!("cannot read the request: {e}"),
            },
        };
        if let Ok(body) = serde_json::to_vec(&response) {
            // A client that went away misses its answer; the server carries on.
            let _client_gone = conn.write_all(&body);
        }
    }
}

fn ok(text: String) -> Response {
    Response { ok: true, text }
}

fn refused(text: impl Into<String>) -> Response {
    Response {
        ok: false,
        text: text.into(),
    }
}

/// Carries out one request.
fn handle(live: &Live, req: Request) -> Response {
    match req {
        Request::Show { what, name, json } => show(live, what, name.as_deref(), json),
        Request::Apply { config, origin } => match Config::parse(&config, &origin) {
            Ok(cfg) => change(live, |_| Ok(cfg)),
            Err(e) => refused(format!(
                "{e}\nnothing applied: the running tables are unchanged"
            )),
        },
        Request::RouteAdd {
            vrf,
            prefix,
            via,
            labels,
        } => match route_in_place(live, vrf.as_deref(), &prefix, Some((&via, &labels))) {
            Some(done) => done,
            None => change(live, |c| {
                let routes = routes_of(c, vrf.as_deref())?;
                routes.retain(|r| !same_prefix(&r.prefix, &prefix));
                routes.push(Route {
                    prefix: prefix.clone(),
                    via: via.clone(),
                    labels: labels.clone(),
                });
                Ok(c.clone())
            }),
        },
        Request::RouteDel { vrf, prefix } => {
            match route_in_place(live, vrf.as_deref(), &prefix, None) {
                Some(done) => done,
                None => change(live, |c| {
                    let routes = routes_of(c, vrf.as_deref())?;
                    let before = routes.len();
                    routes.retain(|r| !same_prefix(&r.prefix, &prefix));
                    if routes.len() == before {
                        return Err(format!(
                            "{} has no static route {prefix}",
                            vrf_label(vrf.as_deref())
                        ));
                    }
                    Ok(c.clone())
                }),
            }
        }
        Request::LabelAdd {
            in_label,
            action,
            out,
            via,
        } => change(live, |c| {
            let action = match action.as_str() {
                "swap" => LabelAction::Swap,
                "pop" => LabelAction::Pop,
                other => return Err(format!("unknown label action \"{other}\" (swap or pop)")),
            };
            c.labels.retain(|l| l.in_label != in_label);
            c.labels.push(LabelEntry {
                in_label,
                action,
                out: (!out.is_empty()).then(|| out.clone()),
                via: via.clone(),
            });
            Ok(c.clone())
        }),
        Request::LabelDel { in_label } => change(live, |c| {
            let before = c.labels.len();
            c.labels.retain(|l| l.in_label != in_label);
            if c.labels.len() == before {
                return Err(format!("there is no label entry for in-label {in_label}"));
            }
            Ok(c.clone())
        }),
    }
}

fn vrf_label(vrf: Option<&str>) -> String {
    match vrf {
        None | Some("global") => "the global table".into(),
        Some(v) => format!("vrf \"{v}\""),
    }
}

fn routes_of<'c>(c: &'c mut Config, vrf: Option<&str>) -> Result<&'c mut Vec<Route>, String> {
    match vrf {
        None | Some("global") => Ok(&mut c.routes),
        Some(name) => {
            let names: Vec<String> = c.vrfs.iter().map(|v| v.name.clone()).collect();
            c.vrfs
                .iter_mut()
                .find(|v| v.name == name)
                .map(|v| &mut v.routes)
                .ok_or_else(|| {
                    format!(
                        "no vrf named \"{name}\" (the config has: {})",
                        names.join(", ")
                    )
                })
        }
    }
}

/// One static route added (`add`: via and labels), replaced or removed without a recompile:
/// the route is validated by compiling the config with no other route (every check that
/// concerns one route runs: prefix, host bits, labels, next-hop resolution, clashes with
/// connected subnets, our addresses and neighbours), its adjacency and FEC are found in the
/// running tables or appended, and only its VRF's LPM tables are rebuilt. `None` sends the
/// change down the full recompile instead (unknown VRF or prefix text, which the full path
/// reports; anything that does not line up).
fn route_in_place(
    live: &Live,
    vrf: Option<&str>,
    prefix: &str,
    add: Option<(&str, &[i64])>,
) -> Option<Response> {
    let t0 = Instant::now();
    let mut st = lock(&live.state);
    let name = vrf.filter(|v| *v != "global");
    let vid = match name {
        None => VrfId::GLOBAL,
        Some(n) => st.base.vrf_by_name(n)?,
    };
    let parsed: IpPrefix = prefix.trim().parse().ok()?;
    let mut routes: Vec<RouteInfo> = st.base.vrf(vid).routes.clone();
    let existing = routes.iter().position(|r| r.prefix == parsed);
    let (mut adjacencies, mut fecs) = (Vec::new(), Vec::new());
    match add {
        None => {
            // Removing: the route must be a configured one.
            let configured = routes_of(&mut st.config, vrf)
                .ok()?
                .iter()
                .any(|r| same_prefix(&r.prefix, prefix));
            if !configured {
                return Some(refused(format!(
                    "{} has no static route {prefix}\nnothing applied: the running tables are unchanged",
                    vrf_label(vrf)
                )));
            }
            let i = existing.filter(|&i| routes[i].origin == RouteOrigin::Static)?;
            routes.remove(i);
        }
        Some((via, labels)) => {
            let mut probe = Config {
                router: st.config.router.clone(),
                interfaces: st.config.interfaces.clone(),
                neighbors: st.config.neighbors.clone(),
                vrfs: st
                    .config
                    .vrfs
                    .iter()
                    .map(|v| crate::config::Vrf {
                        name: v.name.clone(),
                        table_label: v.table_label,
                        attachments: v.attachments.clone(),
                        routes: Vec::new(),
                    })
                    .collect(),
                routes: Vec::new(),
                labels: Vec::new(),
            };
            routes_of(&mut probe, vrf).ok()?.push(Route {
                prefix: prefix.to_string(),
                via: via.to_string(),
                labels: labels.to_vec(),
            });
            let probe = match compile(&with_learned_hosts(&probe, &st.hosts, &live.interfaces), &SysfsMacs) {
                Ok(c) => c.snapshot,
                Err(errors) => {
                    return Some(refused(format!(
                        "the change has {} error(s):\n{errors}\nnothing applied: the running tables are unchanged",
                        errors.0.len()
                    )))
                }
            };
            // The probe must describe the same attachments and VRFs as the running tables.
            let same_layout = probe.attachments().len() == st.base.attachments().len()
                && probe
                    .attachments()
                    .iter()
                    .zip(st.base.attachments())
                    .all(|(a, b)| (a.port, a.vlan, a.vrf) == (b.port, b.vlan, b.vrf))
                && probe.vrfs().len() == st.base.vrfs().len();
            if !same_layout {
                return None;
            }
            let info = probe.vrf(vid).routes.iter().find(|r| r.prefix == parsed)?;
            let Fec::Forward { adj, push } = *probe.fec(info.fec) else {
                return None;
            };
            let want = probe.adjacency(adj);
            let base = &st.base;
            let adj_id = match base
                .adjacencies()
                .iter()
                .position(|a| a.attachment == want.attachment && a.next_hop == want.next_hop)
            {
                Some(i) => AdjacencyId(i as u32),
                None => {
                    adjacencies.push(Adjacency::new(want.attachment, want.next_hop, want.mac));
                    AdjacencyId(base.adjacencies().len() as u32)
                }
            };
            let fec = Fec::Forward { adj: adj_id, push };
            let fec_id = match base.fecs().iter().position(|f| *f == fec) {
                Some(i) => FecId(i as u32),
                None => {
                    fecs.push(fec);
                    FecId(base.fecs().len() as u32)
                }
            };
            if let Some(i) = existing {
                // The probe accepted the prefix, so what it replaces is a static route.
                if routes[i].origin != RouteOrigin::Static {
                    return None;
                }
                routes.remove(i);
            }
            routes.push(RouteInfo {
                prefix: parsed,
                origin: RouteOrigin::Static,
                fec: fec_id,
            });
        }
    }
    let next = st
        .base
        .with_vrf_routes(vid, routes, adjacencies, fecs)
        .ok()?;
    let config_routes = routes_of(&mut st.config, vrf).ok()?;
    config_routes.retain(|r| !same_prefix(&r.prefix, prefix));
    if let Some((via, labels)) = add {
        config_routes.push(Route {
            prefix: prefix.to_string(),
            via: via.to_string(),
            labels: labels.to_vec(),
        });
    }
    st.base = next;
    publish(live, &st);
    Some(ok(format!(
        "applied: route {prefix} {} in {}; {} routes there; published in {:.3} ms",
        if add.is_some() { "added" } else { "removed" },
        vrf_label(vrf),
        st.base.vrf(vid).routes.len(),
        t0.elapsed().as_secs_f64() * 1e3
    )))
}

/// Prefixes compare as written after trimming: `198.18.7.0/24` names one route.
fn same_prefix(a: &str, b: &str) -> bool {
    a.trim() == b.trim()
}

/// Changes the config with `edit` (on a copy), compiles it, and publishes the result; on
/// any error nothing changes.
fn change(live: &Live, edit: impl FnOnce(&mut Config) -> Result<Config, String>) -> Response {
    let t0 = Instant::now();
    let mut st = lock(&live.state);
    let mut draft = st.config.clone();
    let next = match edit(&mut draft) {
        Ok(c) => c,
        Err(e) => {
            return refused(format!(
                "{e}\nnothing applied: the running tables are unchanged"
            ))
        }
    };
    // Learned hosts go along unless the new config makes one of them invalid (its subnet
    // gone, say): then they are dropped and relearned on demand.
    let with_hosts = compile(
        &with_learned_hosts(&next, &st.hosts, &live.interfaces),
        &SysfsMacs,
    );
    let keep_hosts = with_hosts.is_ok();
    let compiled = match with_hosts.or_else(|_| compile(&next, &SysfsMacs)) {
        Ok(c) => c,
        Err(errors) => {
            return refused(format!(
                "the change has {} error(s):\n{errors}\nnothing applied: the running tables are unchanged",
                errors.0.len()
            ))
        }
    };
    let names: Vec<&str> = compiled
        .snapshot
        .ports()
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    if names
        != live
            .interfaces
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
    {
        return refused(format!(
            "interfaces cannot change while xpe runs (running: {}; new: {})\nnothing applied: restart xpe with the new config",
            live.interfaces.join(", "),
            names.join(", ")
        ));
    }
    st.config = next;
    st.base = st.slots.assign(&compiled.snapshot);
    if !keep_hosts {
        st.hosts.clear();
    }
    publish(live, &st);
    let took = t0.elapsed();
    let mut text = format!(
        "applied: {} routes, {} incoming labels; published in {:.3} ms",
        st.base.vrfs().iter().map(|v| v.routes.len()).sum::<usize>(),
        st.base.ilm().entries().len(),
        took.as_secs_f64() * 1e3
    );
    for w in &compiled.warnings {
        text.push_str(&format!("\nwarning: {w}"));
    }
    ok(text)
}

/// Publishes the base snapshot with the learned neighbours laid over it.
fn publish(live: &Live, st: &State) {
    let next = st.base.with_resolved(|adj| {
        st.learned
            .get(&(adj.port.0, adj.vlan.map_or(0, |v| v.get()), adj.next_hop))
            .copied()
    });
    live.published.publish(next);
}

/// The config plus the hosts learned after a glean, as neighbour entries (static ones win).
fn with_learned_hosts(
    config: &Config,
    hosts: &HashMap<NeighborKey, MacAddr>,
    interfaces: &[String],
) -> Config {
    let mut c = config.clone();
    for (&(port, vid, ip), mac) in hosts {
        let Some(interface) = interfaces.get(usize::from(port)) else {
            continue;
        };
        let vlan = (vid != 0).then_some(i64::from(vid));
        let ip_text = ip.to_string();
        let is_static = config
            .neighbors
            .iter()
            .any(|n| &n.interface == interface && n.vlan == vlan && n.ip.trim() == ip_text);
        if !is_static {
            c.neighbors.push(Neighbor {
                interface: interface.clone(),
                vlan,
                ip: ip_text,
                mac: mac.to_string(),
            });
        }
    }
    c
}

/// Takes neighbour events from the workers; asks for unresolved next hops once a second
/// and for gleaned hosts when their frames are dropped (each at most once a second).
fn neighbour_loop(live: &Live) {
    let (from_workers, to_worker) = match lock(&live.runtime).as_ref() {
        Some(rt) => (rt.learned().clone(), rt.originate().clone()),
        None => return,
    };
    let mut last_round = Instant::now() - Duration::from_secs(1);
    let mut sent_this_second = 0usize;
    while !live.stop.load(Ordering::Relaxed) {
        if last_round.elapsed() >= Duration::from_secs(1) {
            last_round = Instant::now();
            sent_this_second = 0;
            let snap = live.published.load();
            for adj in snap.adjacencies().iter().filter(|a| a.mac.is_none()) {
                if sent_this_second == ARP_PER_SECOND {
                    break;
                }
                if request_arp(&snap, &to_worker, adj.attachment, adj.next_hop) {
                    sent_this_second += 1;
                }
            }
            let mut st = lock(&live.state);
            st.asked
                .retain(|_, at| at.elapsed() < Duration::from_secs(10));
        }
        let Ok(event) = from_workers.recv_timeout(Duration::from_millis(50)) else {
            continue;
        };
        let mut st = lock(&live.state);
        match event {
            Event::Learned { port, neighbor } => {
                let key = (port.0, neighbor.vid, neighbor.ip);
                // Keep only neighbours something waits for: a flood of ARP from arbitrary
                // addresses cannot grow the tables.
                let next_hop = st.base.adjacencies().iter().any(|a| {
                    a.mac.is_none() && (a.port.0, a.vlan.map_or(0, |v| v.get()), a.next_hop) == key
                });
                if next_hop && st.learned.get(&key) != Some(&neighbor.mac) {
                    st.learned.insert(key, neighbor.mac);
                    publish(live, &st);
                } else if st.asked.remove(&key).is_some()
                    && st.hosts.get(&key) != Some(&neighbor.mac)
                {
                    st.hosts.insert(key, neighbor.mac);
                    let config = with_learned_hosts(&st.config, &st.hosts, &live.interfaces);
                    match compile(&config, &SysfsMacs) {
                        Ok(compiled) => {
                            st.base = st.slots.assign(&compiled.snapshot);
                            publish(live, &st);
                        }
                        // The host does not fit the running config (it changed meanwhile).
                        Err(_) => {
                            st.hosts.remove(&key);
                        }
                    }
                }
            }
            Event::Glean { attachment, ip } => {
                let snap = live.published.load();
                let Some(att) = snap.attachments().get(usize::from(attachment.0)) else {
                    continue;
                };
                let key = (att.port.0, att.vlan.map_or(0, |v| v.get()), ip);
                let fresh = st
                    .asked
                    .get(&key)
                    .is_none_or(|at| at.elapsed() >= Duration::from_secs(1));
                if !fresh
                    || sent_this_second >= ARP_PER_SECOND
                    || (st.asked.len() >= MAX_ASKED && !st.asked.contains_key(&key))
                {
                    continue;
                }
                if request_arp(&snap, &to_worker, attachment, ip) {
                    sent_this_second += 1;
                    st.asked.insert(key, Instant::now());
                }
            }
        }
    }
}

/// Queues an ARP request for `target` out of an attachment, from the attachment's address;
/// false when it has no address or worker 0's queue is full.
fn request_arp(
    snap: &Snapshot,
    to_worker: &crossbeam_channel::Sender<Originated>,
    attachment: AttachmentId,
    target: Ipv4Addr,
) -> bool {
    let att = snap.attachment(attachment);
    let Some(ours) = att.address else {
        return false;
    };
    let frame = arp_request(
        snap.port(att.port).mac,
        att.vlan.map(|v| v.get()),
        ours.addr(),
        target,
    );
    to_worker
        .try_send(Originated {
            port: att.port,
            frame,
        })
        .is_ok()
}

/// The workers' counters summed.
fn totals(stats: &[WorkerStats]) -> Counters {
    let mut total = Counters::new(0);
    for w in stats {
        total += &w.counters;
    }
    total
}

fn show(live: &Live, what: What, name: Option<&str>, as_json: bool) -> Response {
    let snap = live.published.load();
    let stats = lock(&live.runtime)
        .as_ref()
        .map(Runtime::worker_stats)
        .unwrap_or_default();
    let mut text = Vec::new();
    let result = match what {
        What::All if !as_json => crate::show::all(&mut text, &snap).map(|_| ()),
        What::Labels if !as_json => crate::show::labels(&mut text, &snap),
        What::Vrf => {
            let Some(name) = name else {
                return refused("show vrf needs a VRF name");
            };
            let Some(id) = snap.vrf_by_name(name) else {
                let names: Vec<&str> = snap.vrfs().iter().map(|v| v.name.as_str()).collect();
                return refused(format!(
                    "no vrf named \"{name}\" (running: {})",
                    names.join(", ")
                ));
            };
            if as_json {
                let routes: Vec<_> = snap
                    .vrf(id)
                    .routes
                    .iter()
                    .map(|r| json!({"prefix": r.prefix.to_string(), "origin": format!("{:?}", r.origin).to_lowercase(), "via": crate::show::describe_fec(&snap, r.fec)}))
                    .collect();
                return ok(json!({"vrf": name, "routes": routes}).to_string());
            }
            crate::show::vrf(&mut text, &snap, id)
        }
        What::Counters => return ok(counters_text(live, &snap, &stats, as_json)),
        What::Runtime => return ok(runtime_text(live, &stats, as_json)),
        What::Neighbors => return ok(neighbors_text(live, &snap, as_json)),
        What::Interfaces => return ok(interfaces_text(live, &snap, &stats, as_json)),
        What::All | What::Labels => {
            let labels: Vec<_> = snap
                .ilm()
                .entries()
                .iter()
                .map(|e| json!({"in": e.label.get(), "action": format!("{:?}", e.action)}))
                .collect();
            return ok(json!({"router": snap.name(), "labels": labels}).to_string());
        }
    };
    match result {
        Ok(()) => ok(String::from_utf8_lossy(&text).into_owned()),
        Err(e) => refused(format!("cannot format: {e}")),
    }
}

fn counters_text(live: &Live, snap: &Snapshot, stats: &[WorkerStats], as_json: bool) -> String {
    let total = totals(stats);
    let (label_rows, vrf_rows) = {
        let st = lock(&live.state);
        let labels: Vec<(u32, u64)> = st
            .slots
            .label_of
            .iter()
            .enumerate()
            .map(|(slot, &label)| (label, total.labels.get(slot).copied().unwrap_or(0)))
            .collect();
        let vrfs: Vec<(String, u64)> = st
            .slots
            .vrf_of
            .iter()
            .enumerate()
            .map(|(slot, name)| (name.clone(), total.vrfs.get(slot).copied().unwrap_or(0)))
            .collect();
        (labels, vrfs)
    };
    let mut lp = LoopStats::default();
    for w in stats {
        lp += &w.loop_stats;
    }
    if as_json {
        let ports: Vec<_> = snap
            .ports()
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let c = total.ports.get(i).copied().unwrap_or_default();
                json!({"interface": p.name, "rx_packets": c.rx_packets, "rx_bytes": c.rx_bytes, "rx_drops": c.rx_drops, "tx_packets": c.tx_packets, "tx_bytes": c.tx_bytes})
            })
            .collect();
        let drops: serde_json::Map<String, serde_json::Value> = DropReason::ALL
            .iter()
            .map(|d| (d.name().to_string(), json!(total.drop_count(*d))))
            .collect();
        let punts: serde_json::Map<String, serde_json::Value> = Punt::ALL
            .iter()
            .map(|p| (p.name().to_string(), json!(total.punt_count(*p))))
            .collect();
        return json!({
            "interfaces": ports, "forwarded": total.forwarded, "arp_replies": total.arp_replies,
            "echo_replies": total.echo_replies, "drops": drops, "punts": punts,
            "labels": label_rows.iter().map(|(l, n)| json!({"label": l, "packets": n})).collect::<Vec<_>>(),
            "vrfs": vrf_rows.iter().map(|(v, n)| json!({"vrf": v, "lookups": n})).collect::<Vec<_>>(),
            "tx_ring_full": lp.tx_ring_full, "no_tx_socket": lp.no_tx_socket,
            "learned": lp.learned, "learn_dropped": lp.learn_dropped,
            "arp_requests_sent": lp.originated, "arp_requests_dropped": lp.originate_dropped,
        })
        .to_string();
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Counters of {} (summed over {} worker(s))",
        snap.name(),
        stats.len()
    );
    let _ = writeln!(
        s,
        "  {:<12} {:>14} {:>16} {:>12} {:>14} {:>16}",
        "Interface", "RX packets", "RX bytes", "RX drops", "TX packets", "TX bytes"
    );
    for (i, p) in snap.ports().iter().enumerate() {
        let c = total.ports.get(i).copied().unwrap_or_default();
        let _ = writeln!(
            s,
            "  {:<12} {:>14} {:>16} {:>12} {:>14} {:>16}",
            p.name, c.rx_packets, c.rx_bytes, c.rx_drops, c.tx_packets, c.tx_bytes
        );
    }
    let current: std::collections::HashSet<u32> =
        snap.ilm().entries().iter().map(|e| e.label.get()).collect();
    let _ = writeln!(
        s,
        "Incoming labels (packets; entries since removed are marked)"
    );
    for (label, n) in &label_rows {
        let gone = if current.contains(label) {
            ""
        } else {
            "  (removed)"
        };
        let _ = writeln!(s, "  {label:<10} {n:>14}{gone}");
    }
    let _ = writeln!(s, "VRFs (IP lookups)");
    for (name, n) in &vrf_rows {
        let _ = writeln!(s, "  {name:<16} {n:>14}");
    }
    let _ = writeln!(
        s,
        "Forwarded {} (ARP replies {}, echo replies {}); dropped {}; punted {}",
        total.forwarded,
        total.arp_replies,
        total.echo_replies,
        total.total_drops() + lp.tx_ring_full + lp.no_tx_socket,
        total.total_punts()
    );
    let _ = writeln!(s, "Drops by reason (non-zero)");
    for d in DropReason::ALL {
        let n = total.drop_count(*d);
        if n > 0 {
            let _ = writeln!(s, "  {:<22} {n}", d.name());
        }
    }
    for (name, n) in [
        ("tx-ring-full", lp.tx_ring_full),
        ("no-tx-socket", lp.no_tx_socket),
    ] {
        if n > 0 {
            let _ = writeln!(s, "  {name:<22} {n}");
        }
    }
    let _ = writeln!(s, "Punts by reason (non-zero; the live runtime has no path to the kernel: punted frames are dropped)");
    for p in Punt::ALL {
        let n = total.punt_count(*p);
        if n > 0 {
            let _ = writeln!(s, "  {:<22} {n}", p.name());
        }
    }
    let _ = writeln!(
        s,
        "Neighbours: {} ARP frames learned from ({} not passed on), {} ARP requests sent ({} dropped)",
        lp.learned, lp.learn_dropped, lp.originated, lp.originate_dropped
    );
    s
}

fn runtime_text(live: &Live, stats: &[WorkerStats], as_json: bool) -> String {
    let ghz = live.tsc_hz / 1e9;
    let rows: Vec<_> = stats
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let l = &w.loop_stats;
            (i, w, l, l.busy_cycles_per_packet(), l.average_batch())
        })
        .collect();
    if as_json {
        let workers: Vec<_> = rows
            .iter()
            .map(|(i, w, l, cpp, avg)| {
                json!({
                    "worker": i, "core": w.core, "packets": l.packets, "batches": l.batches,
                    "average_batch": avg, "polls": l.polls, "busy_polls": l.busy_polls,
                    "busy_cycles": l.busy_cycles, "busy_cycles_per_packet": cpp,
                    "tx_kicks": l.tx_kicks, "fill_wakeups": l.fill_wakeups, "sleeps": l.sleeps,
                    "frames": w.frames, "frames_free": w.ledger.free, "frames_in_fill": w.ledger.in_fill,
                    "frames_in_tx": w.ledger.in_tx, "frames_accounted": w.ledger.total(),
                })
            })
            .collect();
        return json!({"tsc_hz": live.tsc_hz, "uptime_s": live.started.elapsed().as_secs_f64(), "workers": workers}).to_string();
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Runtime: up {:.1} s, TSC {ghz:.2} GHz",
        live.started.elapsed().as_secs_f64()
    );
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
    for (i, w, l, cpp, avg) in &rows {
        let _ = writeln!(
            s,
            "  {:<7} {:<5} {:>12} {:>10} {:>7.1} {:>14} {:>10.0} {:>12} {:>10}",
            i,
            w.core.map_or("-".to_string(), |c| c.to_string()),
            l.packets,
            l.batches,
            avg,
            l.busy_cycles,
            cpp,
            l.polls,
            l.tx_kicks
        );
    }
    for (i, w, l, _, _) in &rows {
        let _ = writeln!(
            s,
            "  worker {i}: {} frames: {} free, {} on fill rings, {} on TX rings ({} accounted); {} busy polls, {} sleeps",
            w.frames,
            w.ledger.free,
            w.ledger.in_fill,
            w.ledger.in_tx,
            w.ledger.total(),
            l.busy_polls,
            l.sleeps
        );
    }
    s
}

fn neighbors_text(live: &Live, snap: &Snapshot, as_json: bool) -> String {
    let st = lock(&live.state);
    let rows: Vec<(String, String, String, &str)> = snap
        .adjacencies()
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let key = (a.port.0, a.vlan.map_or(0, |v| v.get()), a.next_hop);
            let origin = match (st.base.adjacencies().get(i).and_then(|b| b.mac), a.mac) {
                (Some(_), _) if st.hosts.contains_key(&key) => "learned",
                (Some(_), _) => "static",
                (None, Some(_)) => "learned",
                (None, None) => "incomplete",
            };
            (
                snap.attachment_name(a.attachment),
                a.next_hop.to_string(),
                a.mac.map_or("-".to_string(), |m| m.to_string()),
                origin,
            )
        })
        .collect();
    if as_json {
        let list: Vec<_> = rows
            .iter()
            .map(|(att, ip, mac, origin)| json!({"attachment": att, "ip": ip, "mac": mac, "state": origin}))
            .collect();
        return json!({"neighbors": list}).to_string();
    }
    let mut s = String::new();
    let _ = writeln!(s, "Neighbours");
    let _ = writeln!(
        s,
        "  {:<12} {:<16} {:<18} State",
        "Interface", "Address", "MAC"
    );
    for (att, ip, mac, origin) in rows {
        let _ = writeln!(s, "  {att:<12} {ip:<16} {mac:<18} {origin}");
    }
    s
}

fn interfaces_text(live: &Live, snap: &Snapshot, stats: &[WorkerStats], as_json: bool) -> String {
    let rt = lock(&live.runtime);
    let mut rows = Vec::new();
    if let Some(rt) = rt.as_ref() {
        for st in rt.steering() {
            let c = st.counters().unwrap_or_default();
            let port = snap.port_by_name(st.ifname()).map(|p| snap.port(p));
            let sockets: Vec<_> = rt
                .sockets()
                .iter()
                .filter(|s| s.ifname == st.ifname())
                .collect();
            let kernel = stats
                .iter()
                .flat_map(|w| w.sockets.iter())
                .filter(|(n, _, _)| n == st.ifname())
                .fold((0u64, 0u64, 0u64), |a, (_, _, k)| {
                    (
                        a.0 + k.rx_dropped,
                        a.1 + k.rx_ring_full,
                        a.2 + k.rx_fill_ring_empty,
                    )
                });
            rows.push((
                st.ifname().to_string(),
                port.map_or("?".into(), |p| format!("{}", p.kind)),
                port.map_or("?".into(), |p| p.mac.to_string()),
                st.mode().to_string(),
                sockets.len(),
                sockets.iter().any(|s| s.zero_copy),
                c.redirected,
                c.passed,
                kernel,
            ));
        }
    }
    if as_json {
        let list: Vec<_> = rows
            .iter()
            .map(|(n, kind, mac, mode, socks, zc, red, pass, k)| {
                json!({"interface": n, "kind": kind, "mac": mac, "xdp_mode": mode, "sockets": socks,
                       "zero_copy": zc, "xdp_redirected": red, "xdp_passed": pass,
                       "rx_dropped": k.0, "rx_ring_full": k.1, "rx_fill_ring_empty": k.2})
            })
            .collect();
        return json!({"interfaces": list}).to_string();
    }
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
    for (n, kind, mac, mode, socks, zc, red, pass, k) in rows {
        let _ = writeln!(
            s,
            "  {:<12} {:<5} {:<18} {:<7} {:>7} {:<5} {:>12} {:>10} {:>10} {:>10} {:>10}",
            n,
            kind,
            mac,
            mode,
            socks,
            if zc { "zc" } else { "copy" },
            red,
            pass,
            k.0,
            k.1,
            k.2
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::Offline;

    const EXAMPLE: &str = include_str!("../../examples/dx-pe.toml");

    fn mac(last: u8) -> MacAddr {
        MacAddr([0x02, 0, 0, 0, 0xee, last])
    }

    #[test]
    fn learned_hosts_never_override_static_neighbours() {
        let config = Config::parse(EXAMPLE, "example").unwrap();
        let interfaces = vec!["core0".to_string(), "dx0".to_string()];
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        let hosts = HashMap::from([
            // dx0 VLAN 101 has a static neighbour at .2: the learned MAC must not replace it.
            ((1, 101, ip("169.254.10.2")), mac(1)),
            ((1, 101, ip("169.254.10.3")), mac(2)),
        ]);
        let merged = with_learned_hosts(&config, &hosts, &interfaces);
        let on_101: Vec<_> = merged
            .neighbors
            .iter()
            .filter(|n| n.interface == "dx0" && n.vlan == Some(101))
            .collect();
        assert_eq!(on_101.len(), 2, "{on_101:?}");
        assert_eq!(
            on_101[0].mac, "02:00:00:00:aa:01",
            "the static entry stays first and unchanged"
        );
        assert_eq!(
            (on_101[1].ip.as_str(), on_101[1].mac.as_str()),
            ("169.254.10.3", "02:00:00:00:ee:02")
        );
        assert_eq!(merged.neighbors.len(), config.neighbors.len() + 1);
    }

    #[test]
    fn counter_slots_stay_with_labels_and_vrfs_across_changes() {
        let mut config = Config::parse(EXAMPLE, "example").unwrap();
        let mut slots = Slots::default();
        let first = slots.assign(&compile(&config, &Offline).unwrap().snapshot);
        let slot_of = |s: &Snapshot, label: u32| {
            s.ilm()
                .entries()
                .iter()
                .find(|e| e.label.get() == label)
                .map(|e| e.counter)
        };
        let (s16002, s1001) = (
            slot_of(&first, 16002).unwrap(),
            slot_of(&first, 1001).unwrap(),
        );
        // Remove the swap entry and add another one: the others keep their slots, the new
        // one gets a fresh slot, and the removed label keeps its (unused) slot.
        config.labels.retain(|l| l.in_label != 16002);
        let mut extra = config.labels[0].clone();
        extra.in_label = 15999;
        config.labels.push(extra);
        let second = slots.assign(&compile(&config, &Offline).unwrap().snapshot);
        assert_eq!(slot_of(&second, 1001), Some(s1001));
        assert_eq!(slot_of(&second, 16002), None);
        let fresh = slot_of(&second, 15999).unwrap();
        assert!(
            fresh as usize >= first.slot_counts().0,
            "a new label gets a new slot"
        );
        assert_eq!(slots.label_of[s16002 as usize], 16002);
        assert_eq!(second.slot_counts().0, slots.label_of.len());
        let vrf = second.vrf_by_name("vpc-b").unwrap();
        assert_eq!(slots.vrf_of[second.vrf_slot(vrf)], "vpc-b");
    }
}

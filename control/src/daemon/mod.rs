//! `xpe run`: the live data plane between Linux interfaces, and the control socket through
//! which `xpe show`, `apply`, `route` and `label` change and read it while it forwards.
//!
//! Every change makes a new snapshot and publishes it with one pointer swap
//! (`tables::Published`): workers pick it up at their next batch, nothing stops, and a change
//! that does not validate is refused with the running tables untouched. Static routes go
//! through the RIB into the VRFs' editable tables, so a route change costs the prefix's path,
//! not the table; a label change costs its entry's block of the label table; `apply`
//! recompiles the config. Neighbours learned from ARP are kept beside the config and laid
//! over each new snapshot (static neighbours win); unresolved next hops get an ARP request
//! once a second.
//!
//! Split by job: [`startup`] checks and prepares everything before the workers start,
//! [`server`] answers the control socket, [`edit`] carries out requests that change the
//! tables, [`feed`] coalesces every route change into batches on one committer thread,
//! [`routes`] stages them through the RIB, [`labels`] changes label entries, [`neighbours`]
//! resolves next hops, and [`render`] shows tables and counters as text or JSON. This file
//! holds what they share and [`run`]'s order of events.

mod bgp;
mod capture;
mod edit;
mod feed;
mod labels;
mod metrics;
mod mirrors;
mod neighbours;
mod render;
mod routes;
mod server;
mod startup;
mod trace;

use std::collections::HashMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use xpe_dataplane::pipeline::Counters;
use xpe_dataplane::tables::{Published, Snapshot};
use xpe_dataplane::wire::ethernet::MacAddr;
use xpe_dataplane::xsk::fast::FastStatus;
use xpe_dataplane::xsk::runtime::{Plan, Runtime};
use xpe_dataplane::xsk::steer::Mode;
use xpe_dataplane::xsk::umem::MAX_FRAME;
use xpe_dataplane::xsk::worker::WorkerStats;

use crate::config::Config;
use crate::ctl::Response;
use crate::error::Failure;
use crate::rib::Rib;
use edit::Slots;
use server::{Limits, Server};

/// What `xpe run` was asked to do.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The config file.
    pub config: PathBuf,
    /// Worker cores (`None`: one unpinned worker).
    pub cores: Option<Vec<usize>>,
    /// XDP attach mode.
    pub mode: Mode,
    /// Attach the XDP fast path (`--fast-path xdp`).
    pub fast_path: bool,
    /// Control socket path (default `/run/xpe/NAME.sock`).
    pub socket: Option<PathBuf>,
    /// A route file applied before forwarding starts.
    pub routes: Option<PathBuf>,
    /// Make the mirror devices (`--no-mirrors` turns them off).
    pub mirrors: bool,
    /// Prefix of the mirror namespaces' names.
    pub netns_prefix: String,
    /// Where to serve Prometheus metrics, if anywhere.
    pub metrics: Option<std::net::SocketAddr>,
}

/// Applies the route file at `path` to the tables before they are first published.
fn load_routes(
    state: &mut State,
    path: &std::path::Path,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let t0 = Instant::now();
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::new(format!("cannot read {}: {e}", path.display())))?;
    let origin = path.display().to_string();
    let lines = crate::routefile::parse(&text, routes::MAX_ERRORS).map_err(|errors| {
        let shown: Vec<String> = errors
            .iter()
            .map(|e| format!("{origin}:{}: {}", e.line, e.error))
            .collect();
        Failure::new(format!("{origin} has errors:\n{}", shown.join("\n")))
            .hint("fix the lines named above; docs/routes.md describes the format")
    })?;
    let applied = routes::apply(state, &lines, &origin).map_err(|r| {
        Failure::new(format!("{origin} does not fit the config:\n{}", r.text()))
            .hint("fix the routes named above, or the config they need")
    })?;
    let _ignored = writeln!(
        out,
        "routes from {origin}: {} added, {} removed, in {} VRF(s), in {:.0} ms",
        applied.added,
        applied.removed,
        applied.vrfs,
        t0.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}

/// The config and tables a running instance changes under the state lock.
struct State {
    /// The running config without its static routes, which live in the RIB
    /// (`edit::with_static_routes` puts them back for a recompile).
    config: Config,
    /// The compiled config, before learned neighbours are laid over it.
    base: Snapshot,
    /// Every route by source; its FIB tables are `base`'s LPM tables.
    rib: Rib,
    /// Next hops of adjacencies resolved by ARP or neighbour discovery: (port, VLAN id or 0,
    /// address) -> MAC.
    learned: HashMap<NeighborKey, MacAddr>,
    /// Hosts on connected subnets resolved by ARP or ND after a glean: compiled in like static
    /// neighbours (they need host routes), so a change here recompiles.
    hosts: HashMap<NeighborKey, MacAddr>,
    /// Hosts asked for after a glean, and when.
    asked: HashMap<NeighborKey, Instant>,
    /// Counter slots of labels and VRFs.
    slots: Slots,
    /// The BGP routes in the RIB, unresolved: what a recompile stages again
    /// ([`routes::restage_bgp`]).
    bgp: HashMap<
        (
            xpe_dataplane::tables::VrfId,
            xpe_dataplane::tables::IpPrefix,
        ),
        routes::BgpNext,
    >,
}

impl State {
    /// The state of a freshly compiled config: its tables with counter slots assigned, its
    /// RIB, no neighbour learned yet.
    fn new(config: Config, snapshot: Snapshot, rib: Rib) -> State {
        let mut slots = Slots::default();
        let base = slots.assign(&snapshot);
        State {
            config: edit::without_routes(config),
            base,
            rib,
            slots,
            learned: HashMap::new(),
            hosts: HashMap::new(),
            asked: HashMap::new(),
            bgp: HashMap::new(),
        }
    }
}

/// A neighbour's place: port index, VLAN id (0 untagged), address.
type NeighborKey = (u16, u16, IpAddr);

/// Everything the control threads share.
struct Live {
    state: Mutex<State>,
    /// The route committer's queue: every route change goes through it.
    feed: feed::Feed,
    published: Arc<Published>,
    runtime: Mutex<Option<Runtime>>,
    interfaces: Vec<String>,
    tsc_hz: f64,
    started: Instant,
    stop: AtomicBool,
    /// What BGP does, as the running config says (`apply` may not change it).
    bgp_plan: Option<crate::bgp::BgpPlan>,
    /// What `show bgp` reads, once BGP runs.
    bgp: Mutex<Option<Arc<Mutex<bgp::Status>>>>,
    /// Where `show vrf` asks BGP about its routes, once BGP runs.
    bgp_queries: Mutex<Option<bgp::Queries>>,
}

/// What BGP says of each BGP route of VRF `vrf`, by prefix (empty without BGP, or when it
/// does not answer within a second).
fn bgp_details(
    live: &Live,
    vrf: xpe_dataplane::tables::VrfId,
) -> HashMap<String, crate::api::BgpRoute> {
    let Some(queries) = lock(&live.bgp_queries).clone() else {
        return HashMap::new();
    };
    queries.ask(vrf)
}

/// `xpe run`: checks, starts, serves the control socket until SIGINT or SIGTERM, stops.
pub fn run(opts: &RunOptions, out: &mut dyn Write) -> Result<(), Failure> {
    startup::check_root()?;
    let (config, compiled) = startup::load_live(&opts.config)?;
    let name = config.router.name.clone();
    let metrics_listener = opts.metrics.map(metrics::bind).transpose()?;
    let interfaces = startup::check_interfaces(&config)?;
    for dev in &interfaces {
        startup::vlan_offloads_off(&dev.name, out)?;
        if startup::is_veth(&dev.name) {
            startup::veth_checksum_note(&dev.name, out);
            if opts.fast_path {
                startup::veth_gro_off(&dev.name, out);
            }
        }
    }
    // Frames longer than a chunk arrive in pieces (multi-buffer AF_XDP): only asked for when
    // an MTU needs it, as the kernel must support it (6.6 and later in copy mode).
    let jumbo = interfaces
        .iter()
        .any(|d| d.mtu + startup::L2_OVERHEAD > MAX_FRAME);
    let socket = opts
        .socket
        .clone()
        .unwrap_or_else(|| crate::ctl::default_socket(&name));
    let listener = startup::bind_socket(&socket)?;
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
        policer: compiled.policer,
        fast_path: opts.fast_path,
    };
    let mirror_plan = compiled.mirrors.clone().with_prefix(&opts.netns_prefix);
    let bgp_plan = compiled.bgp.clone();
    let mut state = State::new(config, compiled.snapshot, compiled.rib);
    if let Some(path) = &opts.routes {
        if let Err(e) = load_routes(&mut state, path, out) {
            startup::remove_socket(&socket);
            return Err(e);
        }
    }
    let (devices, mut created) = if opts.mirrors {
        match mirrors::make(&mirror_plan) {
            Ok(made) => made,
            Err(e) => {
                startup::remove_socket(&socket);
                return Err(e);
            }
        }
    } else {
        Default::default()
    };
    let mirror_count = devices.len();
    let published = Arc::new(Published::new(state.base.clone()));
    let runtime = match Runtime::start(&plan, published.clone(), devices) {
        Ok(r) => r,
        Err(e) => {
            startup::remove_socket(&socket);
            return Err(startup::start_failure(e, jumbo));
        }
    };
    let modes = startup::describe(&runtime);
    // The workers are running on their cores: what starts from here keeps off them.
    let control_cores = opts
        .cores
        .as_deref()
        .and_then(startup::keep_off_worker_cores);
    let (feed, jobs) = feed::Feed::new();
    let live = Arc::new(Live {
        state: Mutex::new(state),
        feed,
        published,
        interfaces: interfaces.iter().map(|d| d.name.clone()).collect(),
        tsc_hz: startup::measure_tsc_hz(),
        started: Instant::now(),
        stop: AtomicBool::new(false),
        runtime: Mutex::new(Some(runtime)),
        bgp_plan: bgp_plan.clone(),
        bgp: Mutex::new(None),
        bgp_queries: Mutex::new(None),
    });
    // A closed stdout must not stop a router.
    let _ignored = writeln!(
        out,
        "xpe {name} running: {modes}; control socket {}",
        socket.display()
    );
    if let Some(cores) = control_cores {
        let cores: Vec<String> = cores.iter().map(ToString::to_string).collect();
        let _ignored = writeln!(out, "control threads on core(s) {}", cores.join(","));
    }
    let _ignored = out.flush();
    if mirror_count > 0 {
        let namespaces: Vec<String> = mirror_plan
            .namespaces
            .iter()
            .filter_map(|n| n.name.as_deref())
            .map(|n| {
                let how = if created.made(n) {
                    "created"
                } else {
                    "existing"
                };
                format!("{n} ({how})")
            })
            .collect();
        let _ignored = writeln!(
            out,
            "mirrors: {mirror_count} device(s); VRF namespaces {}",
            if namespaces.is_empty() {
                "-".to_string()
            } else {
                namespaces.join(", ")
            }
        );
    }
    for w in &compiled.warnings {
        let _ignored = writeln!(out, "warning: {w}");
    }

    let committer = feed::start(live.clone(), jobs)
        .map_err(|e| Failure::new(format!("cannot start the route committer: {e}")))?;
    // BGP first: once the control socket answers, `show bgp` has something to say.
    let bgp = match bgp_plan {
        Some(plan) => {
            // Each VRF's speaker runs where its mirrors are, so its CEs can reach it.
            let netns: Vec<Option<String>> = plan
                .vrfs
                .iter()
                .map(|v| {
                    mirror_plan
                        .namespaces
                        .iter()
                        .find(|n| opts.mirrors && n.vrfs.contains(&v.name))
                        .and_then(|n| n.name.clone())
                })
                .collect();
            let dir = socket.with_extension("bgp");
            let speakers = 1 + plan.vrfs.iter().filter(|v| !v.ces.is_empty()).count();
            let _ignored = writeln!(
                out,
                "bgp: AS {}, router id {}; {speakers} gobgpd (the core's and one per VRF with CE neighbours), API sockets and logs in {}",
                plan.asn,
                plan.router_id,
                dir.display()
            );
            match bgp::start(live.clone(), plan, netns, dir) {
                Ok(started) => {
                    *lock(&live.bgp) = Some(started.status.clone());
                    *lock(&live.bgp_queries) = Some(started.queries.clone());
                    Some(started)
                }
                Err(e) => {
                    let _ignored = writeln!(
                        out,
                        "warning: cannot start BGP ({e}): forwarding with the static routes only"
                    );
                    None
                }
            }
        }
        None => None,
    };
    let server = {
        let handler: Arc<server::Handler> = {
            let live = live.clone();
            Arc::new(move |req| edit::handle(&live, req))
        };
        let streams: Arc<server::StreamHandler> = {
            let live = live.clone();
            Arc::new(move |origin, input, ack| feed::stream(&live, origin, input, ack))
        };
        let taps = server::Taps {
            capture: {
                let live = live.clone();
                Arc::new(move |req, conn| capture::serve(&live, req, conn))
            },
            trace: {
                let live = live.clone();
                Arc::new(move |req, conn| trace::serve(&live, req, conn))
            },
        };
        Server::start(
            listener,
            &socket,
            Limits::DAEMON,
            handler,
            Some(streams),
            Some(taps),
        )
        .map_err(|e| Failure::new(format!("cannot start the control thread: {e}")))?
    };
    let metrics = match metrics_listener {
        Some(l) => {
            let addr = l.local_addr().ok();
            let server = metrics::Server::start(live.clone(), l)?;
            if let Some(addr) = addr {
                let _ignored = writeln!(out, "metrics: http://{addr}/metrics");
            }
            Some(server)
        }
        None => None,
    };
    let neighbours = {
        let live = live.clone();
        std::thread::Builder::new()
            .name("xpe-neighbours".into())
            .spawn(move || neighbours::neighbour_loop(&live))
            .map_err(|e| Failure::new(format!("cannot start the neighbour thread: {e}")))?
    };
    startup::wait_for_signal()?;
    live.stop.store(true, Ordering::Relaxed);
    server.stop();
    if let Some(m) = metrics {
        m.stop();
    }
    if let Some(b) = bgp {
        b.stop();
    }
    let (final_stats, fast) = lock(&live.runtime)
        .take()
        .map(Runtime::finish)
        .unwrap_or_default();
    startup::remove_socket(&socket);
    for problem in created.remove() {
        let _ignored = writeln!(out, "warning: {problem}");
    }
    if neighbours.join().is_err() {
        let _ignored = writeln!(out, "warning: the neighbour thread panicked");
    }
    if committer.join().is_err() {
        let _ignored = writeln!(out, "warning: the route committer panicked");
    }
    let total = totals(&final_stats, fast.as_ref());
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

/// Locks a mutex, poisoned or not: a control thread that panicked must not stop the router.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// What `show` and `/metrics` read of the running data plane: each worker's published state
/// and the fast path's (none while it stops).
fn readings(live: &Live) -> (Vec<WorkerStats>, Option<FastStatus>) {
    lock(&live.runtime)
        .as_ref()
        .map(|rt| (rt.worker_stats(), rt.fast_status()))
        .unwrap_or_default()
}

/// The workers' counters summed, with what the XDP fast path forwarded (when it is on).
fn totals(stats: &[WorkerStats], fast: Option<&FastStatus>) -> Counters {
    let mut total = Counters::new(0);
    for w in stats {
        total += &w.counters;
    }
    if let Some(fast) = fast {
        fast.counters.add_to(&mut total);
    }
    total
}

/// A request carried out, with what to print.
fn ok(text: String) -> Response {
    Response { ok: true, text }
}

/// A request refused, with the sentence saying why.
fn refused(text: impl Into<String>) -> Response {
    Response {
        ok: false,
        text: text.into(),
    }
}

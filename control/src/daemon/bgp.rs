//! BGP through GoBGP: xpe starts and supervises one gobgpd for the core and one per VRF with
//! CE neighbours (crate::bgp says why), configures each through its gRPC API on a Unix
//! socket, reads their best paths, and is the VPN glue between them:
//!
//! - a CE's route goes into its VRF's RIB (source `bgp`, next hop the CE), and out to the core
//!   speaker as a VPN route with the VRF's RD, export targets, VPN label and the router address
//!   as next hop; so do the VRF's connected subnets and its static routes through attachments;
//! - a VPN best path whose targets match a VRF's import list goes into that VRF's RIB (next
//!   hop the remote PE, resolved through the global table to transport labels, with the VPN
//!   label under them), and out to the VRF's speaker, for its CEs.
//!
//! Everything here runs on one thread with a small tokio runtime: one task per speaker
//! ([`supervise`]) and one that owns the routes ([`Sync`]). RIB changes go through the route
//! committer like every other route change, so BGP never stops forwarding. When a gobgpd
//! dies its routes stay (stale) while it is restarted; what it has not announced again
//! `stale_time` after it is back is removed (RFC 4724's idea).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use xpe_gobgp::apipb::gobgp_api_client::GobgpApiClient;
use xpe_gobgp::apipb::{
    self, watch_event_request, watch_event_response, AddPathStreamRequest, AddPeerRequest, AfiSafi,
    AfiSafiConfig, AsPathAttribute, Global, ListPeerRequest, PeerConf, StartBgpRequest, TableType,
    Transport, WatchEventRequest,
};
use xpe_gobgp::tonic::transport::Channel;

use xpe_dataplane::tables::{IpPrefix, VrfId};
use xpe_dataplane::wire::mpls::Label;

use super::feed::Input;
use super::routes::{BgpChange, BgpNext, Mode};
use super::{lock, Live};
use crate::bgp::wire::{self, Afi, Learned};
use crate::bgp::{BgpPlan, Peer, Tag};

/// Who speaks: the core's gobgpd, or the one of `plan.vrfs[i]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Speaker {
    Core,
    Vrf(usize),
}

/// How to start and configure one gobgpd.
#[derive(Debug, Clone)]
struct Spec {
    speaker: Speaker,
    /// `core` or `vrf NAME`, for `show bgp` and logs.
    name: String,
    netns: Option<String>,
    socket: PathBuf,
    log: PathBuf,
    peers: Vec<(Peer, Afi)>,
}

/// What `show bgp` reads: every speaker's state and its peers, and every VRF's counts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Status {
    /// The router's ASN.
    pub asn: u32,
    /// The router id.
    pub router_id: String,
    /// `started by xpe`: xpe runs and supervises each gobgpd.
    pub mode: String,
    /// The speakers, core first.
    pub speakers: Vec<SpeakerStatus>,
    /// The VRFs that use BGP.
    pub vrfs: Vec<VrfStatus>,
    /// VPN paths refused for a reserved or missing label (0-15), or a stack of more than one.
    pub bad_label: u64,
    /// CE paths refused as martians (0/8, 127/8, multicast, class E, IPv6 link-local, ...).
    pub martians: u64,
    /// Paths GoBGP reported that xpe could not read.
    pub undecodable: u64,
    /// Where the route owner's time went.
    pub work: Work,
}

/// The route owner's work since start: what a full table costs, and where.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Work {
    /// Best paths read from the speakers.
    pub paths: u64,
    /// Batches of events handled.
    pub batches: u64,
    /// Milliseconds decoding and taking in paths.
    pub learn_ms: f64,
    /// Milliseconds waiting for the RIB and FIB (the route committer) to take the changes.
    pub rib_ms: f64,
    /// Milliseconds announcing to the speakers.
    pub announce_ms: f64,
}

/// One gobgpd.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SpeakerStatus {
    /// `core` or `vrf NAME`.
    pub name: String,
    /// Its network namespace (`None`: xpe's own).
    pub namespace: Option<String>,
    /// `running`, `starting`, `restarting` or `down`.
    pub state: String,
    /// Why it is not running, or what happened last.
    pub detail: String,
    /// Its process id while running.
    pub pid: Option<u32>,
    /// Its API socket.
    pub api: String,
    /// Its log.
    pub log: String,
    /// Times it was started.
    pub starts: u64,
    /// Its neighbours.
    pub peers: Vec<PeerStatus>,
}

/// One BGP session.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PeerStatus {
    /// The neighbour's address.
    pub address: String,
    /// Its ASN.
    pub asn: u32,
    /// The address family.
    pub family: String,
    /// `established`, `active`, `connect`, `idle`, `opensent`, `openconfirm`.
    pub state: String,
    /// Seconds since it came up (established) or went down.
    pub uptime: Option<u64>,
    /// Prefixes received and accepted.
    pub received: u64,
    /// Prefixes accepted (after GoBGP's policy).
    pub accepted: u64,
    /// Prefixes sent.
    pub advertised: u64,
    /// The last error GoBGP logged for the session, or a hint when there is none.
    pub reason: String,
}

/// One VRF's BGP.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VrfStatus {
    /// Its name.
    pub name: String,
    /// Its RD.
    pub rd: Option<String>,
    /// Import targets.
    pub import: Vec<String>,
    /// Export targets.
    pub export: Vec<String>,
    /// Its VPN label.
    pub label: Option<u32>,
    /// Routes learned from its CEs.
    pub from_ces: usize,
    /// VPN routes whose targets it imports.
    pub from_vpn: usize,
    /// BGP routes in its RIB.
    pub installed: usize,
    /// Routes not installed because their next hop did not resolve.
    pub unresolved: usize,
    /// Routes kept from a gobgpd that died, not announced again yet.
    pub stale: usize,
    /// VPN routes it exports (to the core speaker).
    pub exported: usize,
    /// Routes its speaker announces to its CEs.
    pub advertised: usize,
}

/// The running BGP: its thread and how to stop it.
pub(super) struct Bgp {
    thread: std::thread::JoinHandle<()>,
    stop: watch::Sender<bool>,
    /// What `show bgp` reads.
    pub status: Arc<Mutex<Status>>,
    /// Where `show vrf` asks about BGP routes.
    pub queries: Queries,
}

/// How the control thread asks the route owner about a VRF's BGP routes.
#[derive(Clone)]
pub(super) struct Queries(mpsc::UnboundedSender<Query>);

/// One question: the BGP routes of a VRF, by prefix.
struct Query {
    vrf: VrfId,
    reply: crossbeam_channel::Sender<HashMap<String, crate::api::BgpRoute>>,
}

impl Queries {
    /// The BGP routes of `vrf` as BGP has them; empty if it does not answer within a second.
    pub(super) fn ask(&self, vrf: VrfId) -> HashMap<String, crate::api::BgpRoute> {
        let (reply, answer) = crossbeam_channel::bounded(1);
        if self.0.send(Query { vrf, reply }).is_err() {
            return HashMap::new();
        }
        answer
            .recv_timeout(Duration::from_secs(1))
            .unwrap_or_default()
    }
}

impl Bgp {
    /// Stops every gobgpd xpe started and the BGP thread.
    pub(super) fn stop(self) {
        let _ignored = self.stop.send(true);
        if self.thread.join().is_err() {
            eprintln!("warning: the BGP thread panicked");
        }
    }
}

/// Starts BGP for `plan`: `netns[i]` is the namespace of `plan.vrfs[i]`'s mirrors (`None`
/// when it has none, so its CEs cannot be reached); `dir` holds the API sockets and logs.
pub(super) fn start(
    live: Arc<Live>,
    plan: BgpPlan,
    netns: Vec<Option<String>>,
    dir: PathBuf,
) -> std::io::Result<Bgp> {
    std::fs::create_dir_all(&dir)?;
    let mut specs = vec![Spec {
        speaker: Speaker::Core,
        name: "core".into(),
        netns: None,
        socket: dir.join("core.sock"),
        log: dir.join("core.log"),
        peers: plan
            .core
            .iter()
            .flat_map(|p| [(p.clone(), Afi::Vpnv4), (p.clone(), Afi::Vpnv6)])
            .collect(),
    }];
    for (i, v) in plan.vrfs.iter().enumerate() {
        if v.ces.is_empty() {
            continue;
        }
        specs.push(Spec {
            speaker: Speaker::Vrf(i),
            name: format!("vrf {}", v.name),
            netns: netns.get(i).cloned().flatten(),
            socket: dir.join(format!("vrf-{}.sock", v.vrf.0)),
            log: dir.join(format!("vrf-{}.log", v.vrf.0)),
            peers: v
                .ces
                .iter()
                .map(|p| (p.clone(), Afi::unicast_of(p.address)))
                .collect(),
        });
    }
    let status = Arc::new(Mutex::new(Status {
        asn: plan.asn,
        router_id: plan.router_id.to_string(),
        mode: "started by xpe".into(),
        speakers: specs
            .iter()
            .map(|s| SpeakerStatus {
                name: s.name.clone(),
                namespace: s.netns.clone(),
                state: "starting".into(),
                api: format!("unix://{}", s.socket.display()),
                log: s.log.display().to_string(),
                peers: s
                    .peers
                    .iter()
                    .map(|(p, afi)| PeerStatus {
                        address: p.address.to_string(),
                        asn: p.asn,
                        family: afi.name().into(),
                        state: "idle".into(),
                        ..PeerStatus::default()
                    })
                    .collect(),
                ..SpeakerStatus::default()
            })
            .collect(),
        vrfs: plan
            .vrfs
            .iter()
            .map(|v| VrfStatus {
                name: v.name.clone(),
                rd: v.rd.map(|t| t.to_string()),
                import: v.import.iter().map(Tag::to_string).collect(),
                export: v.export.iter().map(Tag::to_string).collect(),
                label: v.label.map(Label::get),
                ..VrfStatus::default()
            })
            .collect(),
        ..Status::default()
    }));
    let (stop, stopped) = watch::channel(false);
    let (queries, asked) = mpsc::unbounded_channel();
    let thread = {
        let status = status.clone();
        std::thread::Builder::new()
            .name("xpe-bgp".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        eprintln!("error: BGP cannot start its runtime: {e}");
                        return;
                    }
                };
                rt.block_on(run(live, plan, specs, status, stopped, asked));
            })?
    };
    Ok(Bgp {
        thread,
        stop,
        status,
        queries: Queries(queries),
    })
}

impl Afi {
    fn unicast_of(ip: IpAddr) -> Afi {
        match ip {
            IpAddr::V4(_) => Afi::Ipv4,
            IpAddr::V6(_) => Afi::Ipv6,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Afi::Ipv4 => "ipv4-unicast",
            Afi::Ipv6 => "ipv6-unicast",
            Afi::Vpnv4 => "vpnv4",
            Afi::Vpnv6 => "vpnv6",
        }
    }
}

/// What the speaker tasks tell the route owner.
enum Event {
    /// A gobgpd is up and configured.
    Up(Speaker, GobgpApiClient<Channel>),
    /// One of its sessions is established, the first since it came up.
    Established(Speaker),
    /// It died or was stopped.
    Down(Speaker),
    /// Best paths it reported.
    Paths(Speaker, Vec<apipb::Path>),
}

async fn run(
    live: Arc<Live>,
    plan: BgpPlan,
    specs: Vec<Spec>,
    status: Arc<Mutex<Status>>,
    stop: watch::Receiver<bool>,
    mut asked: mpsc::UnboundedReceiver<Query>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for (index, spec) in specs.into_iter().enumerate() {
        if matches!(spec.speaker, Speaker::Vrf(_)) && spec.netns.is_none() {
            let mut st = lock(&status);
            st.speakers[index].state = "down".into();
            st.speakers[index].detail = "not started: its CEs reach it through the VRF's mirror namespace, and xpe runs with --no-mirrors".into();
            continue;
        }
        tasks.push(tokio::spawn(supervise(
            spec,
            index,
            plan.clone(),
            tx.clone(),
            status.clone(),
            stop.clone(),
        )));
    }
    drop(tx);
    let mut sync = Sync::new(live, plan, status);
    let mut stop_rx = stop.clone();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            ev = rx.recv() => match ev {
                Some(ev) => {
                    let mut batch = vec![ev];
                    while let Ok(more) = rx.try_recv() {
                        batch.push(more);
                        if batch.len() >= 1024 {
                            break;
                        }
                    }
                    sync.handle(batch).await;
                }
                None => break,
            },
            _ = tick.tick() => {
                sync.purge_due().await;
                sync.count_now_and_then();
            }
            Some(q) = asked.recv() => {
                let _gone = q.reply.send(sync.details(q.vrf));
            }
            _ = stop_rx.changed() => break,
        }
    }
    for t in tasks {
        let _ignored = t.await;
    }
}

/// How long a new gobgpd may take to open its API socket.
const API_WAIT: Duration = Duration::from_secs(10);
/// How long a restarted gobgpd's sessions may take to come back before the routes it had are
/// purged anyway (the stale time counts from the first session established); also the
/// restart time its graceful-restart capability asks its peers to keep its routes for.
const RESTART_WINDOW: Duration = Duration::from_secs(120);
/// Seconds between attempts to open a BGP session.
const CONNECT_RETRY: u64 = 5;
/// The longest wait between restarts of a gobgpd that keeps dying.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Keeps one gobgpd running: starts it, configures it, reports its best paths and peers, and
/// starts it again when it dies, until xpe stops.
async fn supervise(
    spec: Spec,
    index: usize,
    plan: BgpPlan,
    events: mpsc::UnboundedSender<Event>,
    status: Arc<Mutex<Status>>,
    mut stop: watch::Receiver<bool>,
) {
    let set = |f: &dyn Fn(&mut SpeakerStatus)| {
        let mut st = lock(&status);
        if let Some(s) = st.speakers.get_mut(index) {
            f(s);
        }
    };
    let reasons: Arc<Mutex<Reasons>> = Arc::default();
    let mut backoff = Duration::from_secs(1);
    loop {
        if *stop.borrow() {
            return;
        }
        set(&|s| {
            s.starts += 1;
            s.state = if s.starts > 1 {
                "restarting"
            } else {
                "starting"
            }
            .into();
        });
        let restarting = lock(&status)
            .speakers
            .get(index)
            .is_some_and(|s| s.starts > 1);
        let started = start_gobgpd(&spec, &plan, reasons.clone(), restarting).await;
        let (mut child, mut client) = match started {
            Ok(c) => c,
            Err(e) => {
                set(&|s| {
                    s.state = "down".into();
                    s.detail = e.clone();
                    s.pid = None;
                });
                if wait_or_stop(&mut stop, backoff).await {
                    return;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        let pid = child.id();
        set(&|s| {
            s.state = "running".into();
            s.detail = "started by xpe".into();
            s.pid = pid;
        });
        let watch = client
            .watch_event(WatchEventRequest {
                peer: None,
                table: Some(watch_event_request::Table {
                    filters: vec![watch_event_request::table::Filter {
                        r#type: watch_event_request::table::filter::Type::Best as i32,
                        init: true,
                    }],
                }),
            })
            .await;
        let mut stream = match watch {
            Ok(s) => s.into_inner(),
            Err(e) => {
                let detail = format!("its API refused to report routes: {}", e.message());
                set(&|s| {
                    s.state = "down".into();
                    s.detail = detail.clone();
                    s.pid = None;
                });
                end(&mut child).await;
                if wait_or_stop(&mut stop, backoff).await {
                    return;
                }
                continue;
            }
        };
        let _ignored = events.send(Event::Up(spec.speaker, client.clone()));
        let up_at = Instant::now();
        // The peers are polled by a task of their own, so that a slow answer (GoBGP counts
        // a neighbour's routes by walking its tables) never holds up the route stream.
        let (peers_tx, mut peers_rx) = mpsc::channel(1);
        let poller = tokio::spawn(poll_peers(
            client.clone(),
            spec.clone(),
            reasons.clone(),
            peers_tx,
        ));
        let mut established = false;
        let why = loop {
            tokio::select! {
                msg = stream.message() => match msg {
                    Ok(Some(resp)) => {
                        if let Some(watch_event_response::Event::Table(t)) = resp.event {
                            let _ignored = events.send(Event::Paths(spec.speaker, t.paths));
                        }
                    }
                    Ok(None) => break "its API closed the route stream".to_string(),
                    Err(e) => break format!("its API failed: {}", e.message()),
                },
                exit = child.wait() => break match exit {
                    Ok(s) => format!("gobgpd exited ({s}); see {}", spec.log.display()),
                    Err(e) => format!("cannot wait for gobgpd: {e}"),
                },
                Some(peers) = peers_rx.recv() => {
                    if !established && peers.iter().any(|p| p.state == "established") {
                        established = true;
                        let _ignored = events.send(Event::Established(spec.speaker));
                    }
                    set(&|s| s.peers = peers.clone());
                }
                _ = stop.changed() => {
                    poller.abort();
                    end(&mut child).await;
                    set(&|s| { s.state = "stopped".into(); s.pid = None; });
                    return;
                }
            }
        };
        poller.abort();
        end(&mut child).await;
        let _ignored = events.send(Event::Down(spec.speaker));
        set(&|s| {
            s.state = "down".into();
            s.detail = why.clone();
            s.pid = None;
            for p in &mut s.peers {
                p.state = "idle".into();
                p.uptime = None;
            }
        });
        if up_at.elapsed() > Duration::from_secs(60) {
            backoff = Duration::from_secs(1);
        }
        if wait_or_stop(&mut stop, backoff).await {
            return;
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Sleeps for `d`; true when xpe is stopping.
async fn wait_or_stop(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}

/// Ends a gobgpd xpe started: SIGTERM, then SIGKILL after a second.
async fn end(child: &mut tokio::process::Child) {
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        // Our own child, not reaped yet, so the pid is still its.
        let _ignored = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
        if tokio::time::timeout(Duration::from_secs(1), child.wait())
            .await
            .is_ok()
        {
            return;
        }
    }
    let _ignored = child.kill().await;
}

/// Starts one gobgpd and configures it: the process and a client of its API.
async fn start_gobgpd(
    spec: &Spec,
    plan: &BgpPlan,
    reasons: Arc<Mutex<Reasons>>,
    restarting: bool,
) -> Result<(tokio::process::Child, GobgpApiClient<Channel>), String> {
    let _ignored = std::fs::remove_file(&spec.socket);
    let api = format!("unix://{}", spec.socket.display());
    let args = [
        "--api-hosts",
        api.as_str(),
        "--pprof-disable",
        "--log-plain",
        "--log-level",
        "info",
    ];
    let program = find_program(&plan.program)?;
    let mut cmd = match &spec.netns {
        Some(ns) => {
            let mut c = tokio::process::Command::new("ip");
            c.args(["netns", "exec", ns]).arg(&program);
            c
        }
        None => tokio::process::Command::new(&program),
    };
    cmd.args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    die_with_parent(&mut cmd);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    let log = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.log)
        .await
        .map_err(|e| format!("cannot open {}: {e}", spec.log.display()))?;
    let log = Arc::new(tokio::sync::Mutex::new(log));
    if let Some(out) = child.stdout.take() {
        tokio::spawn(read_log(out, log.clone(), reasons.clone()));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(read_log(err, log, reasons));
    }
    let deadline = Instant::now() + API_WAIT;
    let mut client = loop {
        if let Ok(Some(s)) = child.try_wait() {
            return Err(format!(
                "gobgpd exited at start ({s}); see {}",
                spec.log.display()
            ));
        }
        if spec.socket.exists() {
            if let Ok(c) = xpe_gobgp::connect_unix(&spec.socket).await {
                break c;
            }
        }
        if Instant::now() > deadline {
            end(&mut child).await;
            return Err(format!(
                "gobgpd did not open its API socket {} within {} s",
                spec.socket.display(),
                API_WAIT.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let configured = configure(&mut client, spec, plan, restarting).await;
    if let Err(e) = configured {
        end(&mut child).await;
        return Err(e);
    }
    Ok((child, client))
}

/// The gobgpd program: a path as given, or a name looked up in PATH. Looked up here, not left
/// to `ip netns exec`, so a missing program is the same sentence for every speaker.
fn find_program(program: &str) -> Result<PathBuf, String> {
    let missing = || {
        format!(
            "cannot run {program}: not found (install Debian's gobgpd: scripts/setup.sh does, or set [bgp] gobgpd)"
        )
    };
    let candidates: Vec<PathBuf> = if program.contains('/') {
        vec![PathBuf::from(program)]
    } else {
        std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).map(|d| d.join(program)).collect())
            .unwrap_or_default()
    };
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(missing)
}

/// Makes the kernel end the gobgpd when the thread that started it ends, so a SIGKILLed
/// xpe leaves no gobgpd behind (`ip netns exec` execs the program, which keeps the setting).
#[allow(unsafe_code)]
fn die_with_parent(cmd: &mut tokio::process::Command) {
    // SAFETY: the closure runs in the forked child before exec and only calls prctl(2),
    // which is async-signal-safe; it touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM)
                .map_err(std::io::Error::from)
        });
    }
}

/// Starts BGP in a fresh gobgpd and adds the speaker's neighbours, with graceful restart
/// (RFC 4724): its peers keep its routes for [`RESTART_WINDOW`] while it restarts, and one that
/// `restarting` says so in its OPENs (restart and forwarding-state bits), so the routes the
/// data plane keeps using stay where they are.
async fn configure(
    client: &mut GobgpApiClient<Channel>,
    spec: &Spec,
    plan: &BgpPlan,
    restarting: bool,
) -> Result<(), String> {
    client
        .start_bgp(StartBgpRequest {
            global: Some(Global {
                asn: plan.asn,
                router_id: plan.router_id.to_string(),
                listen_port: 179,
                ..Global::default()
            }),
        })
        .await
        .map_err(|e| format!("gobgpd refused to start BGP: {}", e.message()))?;
    let mut by_address: Vec<(&Peer, Vec<Afi>)> = Vec::new();
    for (p, afi) in &spec.peers {
        match by_address.iter_mut().find(|(q, _)| q.address == p.address) {
            Some((_, afis)) => afis.push(*afi),
            None => by_address.push((p, vec![*afi])),
        }
    }
    for (p, afis) in by_address {
        let source = match (spec.speaker, p.source) {
            (_, Some(s)) => s.to_string(),
            (Speaker::Core, None) => plan.next_hop.to_string(),
            (Speaker::Vrf(_), None) => String::new(),
        };
        let peer = apipb::Peer {
            conf: Some(PeerConf {
                neighbor_address: p.address.to_string(),
                peer_asn: p.asn,
                auth_password: p.password.clone().unwrap_or_default(),
                ..PeerConf::default()
            }),
            transport: Some(Transport {
                local_address: source,
                ..Transport::default()
            }),
            // GoBGP's default connect retry is 120 s (a random 120-240 s between tries): a
            // session whose first try failed (its peer came up a little later) would wait
            // minutes. An FRR peer without zebra never connects to a peer that is not on a
            // connected subnet (it has no route to it), so the PE must keep trying.
            timers: Some(apipb::Timers {
                config: Some(apipb::TimersConfig {
                    connect_retry: CONNECT_RETRY,
                    hold_time: 90,
                    keepalive_interval: 30,
                    ..apipb::TimersConfig::default()
                }),
                state: None,
            }),
            graceful_restart: Some(apipb::GracefulRestart {
                enabled: true,
                restart_time: RESTART_WINDOW.as_secs() as u32,
                local_restarting: restarting,
                ..apipb::GracefulRestart::default()
            }),
            afi_safis: afis
                .iter()
                .map(|a| AfiSafi {
                    config: Some(AfiSafiConfig {
                        family: Some(a.family()),
                        enabled: true,
                    }),
                    mp_graceful_restart: Some(apipb::MpGracefulRestart {
                        config: Some(apipb::MpGracefulRestartConfig { enabled: true }),
                        state: None,
                    }),
                    ..AfiSafi::default()
                })
                .collect(),
            ..apipb::Peer::default()
        };
        client
            .add_peer(AddPeerRequest { peer: Some(peer) })
            .await
            .map_err(|e| format!("gobgpd refused neighbour {}: {}", p.address, e.message()))?;
    }
    Ok(())
}

/// Copies a gobgpd's output into its log and keeps, per neighbour, the last warning or
/// error it logged about it (what `show bgp` gives as the reason a session is down).
async fn read_log<R: tokio::io::AsyncRead + Unpin>(
    from: R,
    log: Arc<tokio::sync::Mutex<tokio::fs::File>>,
    reasons: Arc<Mutex<Reasons>>,
) {
    let mut lines = tokio::io::BufReader::new(from).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        {
            let mut f = log.lock().await;
            let _ignored = f.write_all(line.as_bytes()).await;
            let _ignored = f.write_all(b"\n").await;
        }
        if let Some((peer, reason)) = reason_of(&line) {
            let mut all = lock(&reasons);
            let logged = all.entry(peer).or_default();
            if reason.contains("notification") {
                logged.notification = Some(reason);
            } else {
                logged.other = Some(reason);
            }
        }
    }
}

/// From a gobgpd log line (logrus text format: `level=warning msg="..." Key=ADDR ...`), the
/// neighbour and what went wrong, if it is a warning or error about one.
fn reason_of(line: &str) -> Option<(String, String)> {
    if !(line.contains("level=warning") || line.contains("level=error")) {
        return None;
    }
    let field = |name: &str| -> Option<String> {
        let at = line.find(&format!(" {name}="))? + name.len() + 2;
        let rest = &line[at..];
        Some(match rest.strip_prefix('"') {
            Some(q) => q[..q.find('"').unwrap_or(q.len())].to_string(),
            None => rest.split(' ').next().unwrap_or_default().to_string(),
        })
    };
    let peer = field("Key")?;
    peer.parse::<IpAddr>().ok()?;
    let mut reason = field("msg")?;
    for extra in ["Code", "Subcode", "Data", "Error"] {
        if let Some(v) = field(extra) {
            reason.push_str(&format!(" {extra}={v}"));
        }
    }
    if let (Some(code), Some(sub)) = (field("Code"), field("Subcode")) {
        if let Some(what) = notification(&code, &sub) {
            reason.push_str(&format!(" ({what})"));
        }
    }
    Some((peer, reason))
}

/// What a gobgpd logged about one neighbour since its session was last established: the last
/// NOTIFICATION (sent or received) and the last other warning.
#[derive(Debug, Clone, Default)]
struct Logged {
    notification: Option<String>,
    other: Option<String>,
    /// OPENs and NOTIFICATIONs received, when the session was last established and now:
    /// GoBGP logs nothing for a NOTIFICATION that refuses its OPEN in OpenConfirm.
    counts_at_up: (u64, u64),
    counts_now: (u64, u64),
}

/// Per neighbour address.
type Reasons = HashMap<String, Logged>;

/// Why a session in `state` is not established: an OPEN error refused by either side says it
/// all; with no TCP session (active, connect) the usual causes come first, then the last
/// thing logged.
fn why(state: &str, logged: Option<&Logged>) -> String {
    let notification = logged.and_then(|l| l.notification.clone());
    let last = notification
        .clone()
        .or_else(|| logged.and_then(|l| l.other.clone()));
    let open_error = notification
        .as_deref()
        .is_some_and(|n| n.contains("Code=2 "));
    if let Some(l) = logged.filter(|_| !open_error) {
        let (opens, notifications) = (
            l.counts_now.0.saturating_sub(l.counts_at_up.0),
            l.counts_now.1.saturating_sub(l.counts_at_up.1),
        );
        if opens > 0 && notifications > 0 {
            return format!(
                "the neighbour answers our OPEN with a NOTIFICATION ({opens} OPENs and {notifications} NOTIFICATIONs received since the session was last up): an ASN that does not match on either side is the usual cause (GoBGP logs no detail for this case)"
            );
        }
    }
    match (state, last) {
        ("active" | "connect", last) if !open_error => {
            let hint = "no TCP session: the neighbour does not answer (down, unreachable, or a TCP MD5 password mismatch, which the kernel drops silently)";
            match last {
                Some(l) => format!("{hint}; before that: {l}"),
                None => hint.to_string(),
            }
        }
        (_, Some(l)) => l,
        (_, None) => String::new(),
    }
}

/// RFC 4271 §4.5 and RFC 4486 names of the NOTIFICATIONs engineers meet most.
fn notification(code: &str, sub: &str) -> Option<&'static str> {
    Some(match (code, sub) {
        ("2", "2") => "OPEN error: bad peer AS",
        ("2", "3") => "OPEN error: bad BGP identifier",
        ("2", "6") => "OPEN error: unacceptable hold time",
        ("2", "7") => "OPEN error: unsupported capability",
        ("4", _) => "hold timer expired",
        ("6", "2") => "cease: administrative shutdown",
        ("6", "3") => "cease: peer de-configured",
        ("6", "4") => "cease: administrative reset",
        ("6", "5") => "cease: connection rejected",
        ("6", "6") => "cease: other configuration change",
        ("6", "7") => "cease: connection collision resolution",
        ("2", _) => "OPEN error",
        ("3", _) => "UPDATE error",
        ("6", _) => "cease",
        _ => return None,
    })
}

/// How often the peers are polled.
const PEER_POLL: Duration = Duration::from_secs(1);
/// How much of gobgpd's time counting the routes sent may take: GoBGP counts them by running
/// its whole table through each neighbour's export policy, in its main loop, which with a
/// million routes takes seconds and would starve the sessions if asked every poll.
const ADVERTISED_SHARE: u32 = 50;

/// Polls the speaker's neighbours every [`PEER_POLL`] and sends what it finds to `to`, until
/// aborted. The routes sent are counted again only once the time since the last count is
/// [`ADVERTISED_SHARE`] times what that count took; meanwhile the last count stands.
async fn poll_peers(
    mut client: GobgpApiClient<Channel>,
    spec: Spec,
    reasons: Arc<Mutex<Reasons>>,
    to: mpsc::Sender<Vec<PeerStatus>>,
) {
    let mut tick = tokio::time::interval(PEER_POLL);
    let mut sent: HashMap<(String, String), u64> = HashMap::new();
    let mut next_count = Instant::now();
    loop {
        tick.tick().await;
        let count = Instant::now() >= next_count;
        let asked = Instant::now();
        let Some(mut peers) = list_peers(&mut client, &spec, &reasons, count).await else {
            continue;
        };
        if count {
            next_count = Instant::now() + asked.elapsed() * ADVERTISED_SHARE;
            for p in &peers {
                sent.insert((p.address.clone(), p.family.clone()), p.advertised);
            }
        } else {
            for p in &mut peers {
                let key = (p.address.clone(), p.family.clone());
                p.advertised = sent.get(&key).copied().unwrap_or(0);
            }
        }
        if to.send(peers).await.is_err() {
            return;
        }
    }
}

/// The speaker's neighbours as GoBGP has them now, with the routes sent to each when `count`;
/// `None` when its API does not answer.
async fn list_peers(
    client: &mut GobgpApiClient<Channel>,
    spec: &Spec,
    reasons: &Mutex<Reasons>,
    count: bool,
) -> Option<Vec<PeerStatus>> {
    let mut stream = client
        .list_peer(ListPeerRequest {
            address: String::new(),
            enable_advertised: count,
        })
        .await
        .ok()?
        .into_inner();
    let mut got: HashMap<String, apipb::Peer> = HashMap::new();
    while let Ok(Some(r)) = stream.message().await {
        if let Some(p) = r.peer {
            let addr = p
                .conf
                .as_ref()
                .map(|c| c.neighbor_address.clone())
                .unwrap_or_default();
            got.insert(addr, p);
        }
    }
    let mut reasons = lock(reasons);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Some(
        spec.peers
            .iter()
            .map(|(p, afi)| {
                let addr = p.address.to_string();
                let mut out = PeerStatus {
                    address: addr.clone(),
                    asn: p.asn,
                    family: afi.name().into(),
                    state: "idle".into(),
                    ..PeerStatus::default()
                };
                let Some(g) = got.get(&addr) else {
                    out.reason = "not configured in gobgpd".into();
                    return out;
                };
                let state = g.state.as_ref().map_or(0, |s| s.session_state);
                out.state = match apipb::peer_state::SessionState::try_from(state) {
                    Ok(apipb::peer_state::SessionState::Established) => "established",
                    Ok(apipb::peer_state::SessionState::Active) => "active",
                    Ok(apipb::peer_state::SessionState::Connect) => "connect",
                    Ok(apipb::peer_state::SessionState::Opensent) => "opensent",
                    Ok(apipb::peer_state::SessionState::Openconfirm) => "openconfirm",
                    _ => "idle",
                }
                .into();
                let timers = g.timers.as_ref().and_then(|t| t.state.as_ref());
                if let Some(t) = timers {
                    let since = if out.state == "established" {
                        t.uptime.as_ref()
                    } else {
                        t.downtime.as_ref()
                    };
                    out.uptime = since
                        .map(|ts| ts.seconds)
                        .filter(|&s| s > 0)
                        .map(|s| now.saturating_sub(s as u64));
                }
                for a in &g.afi_safis {
                    let fam = a.config.as_ref().and_then(|c| c.family.as_ref());
                    if fam.and_then(Afi::of) != Some(*afi) {
                        continue;
                    }
                    if let Some(s) = &a.state {
                        out.received = s.received;
                        out.accepted = s.accepted;
                        out.advertised = s.advertised;
                    }
                }
                let received = g
                    .state
                    .as_ref()
                    .and_then(|s| s.messages.as_ref())
                    .and_then(|m| m.received.as_ref())
                    .map_or((0, 0), |m| (m.open, m.notification));
                let logged = reasons.entry(addr.clone()).or_default();
                if out.state == "established" {
                    // What went wrong before is no reason for a later failure.
                    *logged = Logged {
                        counts_at_up: received,
                        ..Logged::default()
                    };
                } else {
                    logged.counts_now = received;
                    out.reason = why(&out.state, Some(logged));
                }
                out
            })
            .collect(),
    )
}

/// `show bgp` as text.
pub(super) fn text(s: &Status) -> String {
    let mut out = format!(
        "BGP AS {}, router id {}; gobgpd {}\n",
        s.asn, s.router_id, s.mode
    );
    for sp in &s.speakers {
        let pid = sp.pid.map(|p| format!(" pid {p}")).unwrap_or_default();
        let ns = sp
            .namespace
            .as_deref()
            .map(|n| format!(" in namespace {n}"))
            .unwrap_or_default();
        out.push_str(&format!(
            "\nspeaker {}{ns}: {}{pid}, started {} time(s); {}\n  API {}, log {}\n",
            sp.name, sp.state, sp.starts, sp.detail, sp.api, sp.log
        ));
        out.push_str(&format!(
            "  {:<26} {:>10} {:<13} {:<12} {:>9} {:>9} {:>9} {:>9}\n",
            "neighbor", "AS", "family", "state", "up/down", "received", "accepted", "sent"
        ));
        for p in &sp.peers {
            let up = p.uptime.map_or("never".to_string(), |u| {
                format!("{:02}:{:02}:{:02}", u / 3600, u / 60 % 60, u % 60)
            });
            out.push_str(&format!(
                "  {:<26} {:>10} {:<13} {:<12} {:>9} {:>9} {:>9} {:>9}\n",
                p.address, p.asn, p.family, p.state, up, p.received, p.accepted, p.advertised
            ));
            if !p.reason.is_empty() {
                out.push_str(&format!("    why: {}\n", p.reason));
            }
        }
    }
    out.push_str(&format!(
        "\n{:<12} {:<18} {:>8} {:>6} {:>6} {:>9} {:>10} {:>6} {:>8} {:>10}  import / export\n",
        "vrf",
        "rd",
        "label",
        "CEs",
        "VPN",
        "installed",
        "unresolved",
        "stale",
        "exported",
        "advertised"
    ));
    for v in &s.vrfs {
        out.push_str(&format!(
            "{:<12} {:<18} {:>8} {:>6} {:>6} {:>9} {:>10} {:>6} {:>8} {:>10}  {} / {}\n",
            v.name,
            v.rd.as_deref().unwrap_or("-"),
            v.label.map_or("-".to_string(), |l| l.to_string()),
            v.from_ces,
            v.from_vpn,
            v.installed,
            v.unresolved,
            v.stale,
            v.exported,
            v.advertised,
            list(&v.import),
            list(&v.export)
        ));
    }
    out.push_str(&format!(
        "\nrefused: {} VPN path(s) with a reserved or missing label, {} martian(s) from CEs, {} undecodable path(s)",
        s.bad_label, s.martians, s.undecodable
    ));
    let w = &s.work;
    out.push_str(&format!(
        "\nwork: {} best paths in {} batches; {:.0} ms taking them in, {:.0} ms in the RIB and FIB, {:.0} ms announcing",
        w.paths, w.batches, w.learn_ms, w.rib_ms, w.announce_ms
    ));
    out
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        "-".into()
    } else {
        v.join(",")
    }
}

/// Paths to send each speaker, in order.
type Ops = HashMap<Speaker, Vec<apipb::Path>>;

/// Paths per AddPathStream message.
const ANNOUNCE_CHUNK: usize = 1000;

/// A hash of a path as it would be sent.
fn hash_of(path: &apipb::Path) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    prost::Message::encode_to_vec(path).hash(&mut h);
    h.finish()
}

/// A path's place: the speaker it came from and its key there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    /// A VPN route: RD and prefix.
    Vpn(Tag, IpPrefix),
    /// A CE route of `plan.vrfs[i]`.
    Ce(usize, IpPrefix),
}

/// A path learned, with the generation of its speaker when it was last announced.
#[derive(Debug, Clone)]
struct In {
    next_hop: IpAddr,
    label: Option<Label>,
    targets: Vec<Tag>,
    as_path: Option<AsPathAttribute>,
    generation: u64,
}

/// Owns BGP's routes: what each speaker reported, what went into the RIB, and what xpe
/// announced to each speaker.
struct Sync {
    live: Arc<Live>,
    plan: BgpPlan,
    status: Arc<Mutex<Status>>,
    clients: HashMap<Speaker, GobgpApiClient<Channel>>,
    /// Each speaker's generation: one more every time it comes up.
    generation: HashMap<Speaker, u64>,
    /// Purges due: (when, speaker, generation whose older paths go).
    purges: Vec<(Instant, Speaker, u64)>,
    learned: HashMap<Key, In>,
    /// RDs with a VPN path for a prefix.
    /// Sorted; almost always one (a B-tree set per prefix cost 200 bytes each).
    rds_of: HashMap<IpPrefix, Vec<Tag>>,
    /// What each VRF's RIB has from BGP.
    installed: Vec<HashMap<IpPrefix, BgpNext>>,
    unresolved: Vec<HashSet<IpPrefix>>,
    /// Paths added to each speaker, by (VRF index, prefix): a hash of what was announced, to
    /// tell an unchanged path (a withdrawal is built again from the key).
    announced: HashMap<(Speaker, usize, IpPrefix), u64>,
    /// When `show bgp`'s counts were last brought up to date.
    counted: Instant,
}

impl Sync {
    fn new(live: Arc<Live>, plan: BgpPlan, status: Arc<Mutex<Status>>) -> Sync {
        let n = plan.vrfs.len();
        Sync {
            live,
            plan,
            status,
            clients: HashMap::new(),
            generation: HashMap::new(),
            purges: Vec::new(),
            learned: HashMap::new(),
            rds_of: HashMap::new(),
            installed: vec![HashMap::new(); n],
            unresolved: vec![HashSet::new(); n],
            announced: HashMap::new(),
            counted: Instant::now(),
        }
    }

    async fn handle(&mut self, events: Vec<Event>) {
        lock(&self.status).work.batches += 1;
        let mut touched: BTreeSet<(usize, IpPrefix)> = BTreeSet::new();
        let mut fresh: Vec<Speaker> = Vec::new();
        for ev in events {
            match ev {
                Event::Up(speaker, client) => {
                    self.clients.insert(speaker, client);
                    let g = self.generation.entry(speaker).or_insert(0);
                    *g += 1;
                    // Should no session come back, what it had goes after all.
                    self.purges.push((
                        Instant::now() + self.plan.stale_time + RESTART_WINDOW,
                        speaker,
                        *g,
                    ));
                    self.announced.retain(|(s, _, _), _| *s != speaker);
                    fresh.push(speaker);
                }
                Event::Established(speaker) => {
                    // Its peers have `stale_time` to announce their routes again.
                    let g = self.generation.get(&speaker).copied().unwrap_or(0);
                    self.purges
                        .push((Instant::now() + self.plan.stale_time, speaker, g));
                }
                Event::Down(speaker) => {
                    self.clients.remove(&speaker);
                    self.announced.retain(|(s, _, _), _| *s != speaker);
                }
                Event::Paths(speaker, paths) => {
                    let t0 = Instant::now();
                    for p in &paths {
                        self.learn(speaker, p, &mut touched);
                    }
                    let mut st = lock(&self.status);
                    st.work.paths += paths.len() as u64;
                    st.work.learn_ms += t0.elapsed().as_secs_f64() * 1e3;
                }
            }
        }
        self.apply(touched).await;
        for speaker in fresh {
            self.announce_all(speaker).await;
        }
        self.count_now_and_then();
    }

    /// Takes in one path a speaker reported.
    fn learn(
        &mut self,
        speaker: Speaker,
        path: &apipb::Path,
        touched: &mut BTreeSet<(usize, IpPrefix)>,
    ) {
        let l: Learned = match wire::decode(path) {
            Ok(l) => l,
            Err(_) => {
                lock(&self.status).undecodable += 1;
                return;
            }
        };
        let generation = self.generation.get(&speaker).copied().unwrap_or(0);
        match speaker {
            Speaker::Core => {
                if !matches!(l.afi, Afi::Vpnv4 | Afi::Vpnv6) {
                    return;
                }
                let Some(rd) = l.rd else {
                    return;
                };
                let key = Key::Vpn(rd, l.prefix);
                // Our own routes come back as the best path of their RD: not learned.
                let ours = l.local || l.next_hop == Some(IpAddr::V4(self.plan.next_hop));
                let old = self.learned.get(&key).map(|i| i.targets.clone());
                if (l.withdraw || ours) && old.is_none() {
                    return;
                }
                let new = if l.withdraw || ours {
                    None
                } else {
                    let label = match l.labels.as_slice() {
                        [one] => Label::new(*one).filter(|l| l.get() >= 16),
                        _ => None,
                    };
                    match (label, l.next_hop) {
                        (Some(label), Some(next_hop)) => Some(In {
                            next_hop,
                            label: Some(label),
                            targets: l.targets.clone(),
                            as_path: l.as_path.clone(),
                            generation,
                        }),
                        _ => {
                            lock(&self.status).bad_label += 1;
                            None
                        }
                    }
                };
                let targets: Vec<Tag> = old
                    .iter()
                    .flatten()
                    .chain(new.iter().flat_map(|n| n.targets.iter()))
                    .copied()
                    .collect();
                match new {
                    Some(n) => {
                        self.learned.insert(key, n);
                        let rds = self.rds_of.entry(l.prefix).or_default();
                        if let Err(at) = rds.binary_search(&rd) {
                            rds.insert(at, rd);
                        }
                    }
                    None => {
                        self.learned.remove(&key);
                        self.forget_rd(l.prefix, rd);
                    }
                }
                for (i, v) in self.plan.vrfs.iter().enumerate() {
                    if v.import.iter().any(|t| targets.contains(t)) {
                        touched.insert((i, l.prefix));
                    }
                }
            }
            Speaker::Vrf(i) => {
                if !matches!(l.afi, Afi::Ipv4 | Afi::Ipv6) {
                    return;
                }
                let key = Key::Ce(i, l.prefix);
                // What xpe added itself (for the CEs) is not a CE's route.
                let from_ce = !l.local && l.next_hop.is_some_and(|n| !n.is_unspecified());
                if !l.withdraw && from_ce && martian(l.prefix) {
                    lock(&self.status).martians += 1;
                    return;
                }
                if (l.withdraw || !from_ce) && !self.learned.contains_key(&key) {
                    // Our own path as its best, or a withdrawal of nothing we had: no change.
                    return;
                }
                match (l.withdraw || !from_ce, l.next_hop) {
                    (false, Some(next_hop)) => {
                        self.learned.insert(
                            key,
                            In {
                                next_hop,
                                label: None,
                                targets: Vec::new(),
                                as_path: l.as_path.clone(),
                                generation,
                            },
                        );
                    }
                    _ => {
                        self.learned.remove(&key);
                    }
                }
                touched.insert((i, l.prefix));
            }
        }
    }

    /// Drops `rd` from the RDs with a VPN path for `prefix`.
    fn forget_rd(&mut self, prefix: IpPrefix, rd: Tag) {
        if let Some(rds) = self.rds_of.get_mut(&prefix) {
            rds.retain(|r| *r != rd);
            if rds.is_empty() {
                self.rds_of.remove(&prefix);
            }
        }
    }

    /// The route VRF `i` should have for `prefix` from BGP: a CE's first, then the VPN path
    /// of the lowest RD whose targets it imports.
    fn best(&self, i: usize, prefix: IpPrefix) -> Option<(BgpNext, Option<&AsPathAttribute>)> {
        let (key, p) = self.best_path(i, prefix)?;
        let next = match key {
            Key::Ce(..) => BgpNext::Ce(p.next_hop),
            Key::Vpn(..) => BgpNext::Vpn {
                next_hop: p.next_hop,
                label: p.label?,
            },
        };
        Some((next, p.as_path.as_ref()))
    }

    /// The path [`Sync::best`] chooses, with its key.
    fn best_path(&self, i: usize, prefix: IpPrefix) -> Option<(Key, &In)> {
        let ce = Key::Ce(i, prefix);
        if let Some(p) = self.learned.get(&ce) {
            return Some((ce, p));
        }
        let import = &self.plan.vrfs[i].import;
        self.rds_of.get(&prefix)?.iter().find_map(|rd| {
            let key = Key::Vpn(*rd, prefix);
            self.learned
                .get(&key)
                .filter(|p| p.targets.iter().any(|t| import.contains(t)))
                .map(|p| (key, p))
        })
    }

    /// Brings the RIB and the speakers in line with what was learned, for the touched routes.
    async fn apply(&mut self, touched: BTreeSet<(usize, IpPrefix)>) {
        if touched.is_empty() {
            return;
        }
        let mut changes: Vec<BgpChange> = Vec::new();
        for &(i, prefix) in &touched {
            let want = self.best(i, prefix).map(|(n, _)| n);
            let vrf = self.plan.vrfs[i].vrf;
            let have = self.installed[i].get(&prefix).copied();
            if want != have || (want.is_some() && self.unresolved[i].contains(&prefix)) {
                changes.push((vrf, prefix, want));
                match want {
                    Some(n) => self.installed[i].insert(prefix, n),
                    None => self.installed[i].remove(&prefix),
                };
                self.unresolved[i].remove(&prefix);
            }
        }
        if !changes.is_empty() {
            let t0 = Instant::now();
            let feed = self.live.feed.clone();
            let outcome = tokio::task::spawn_blocking(move || {
                feed.submit(Input::Bgp(changes), "bgp", Mode::All)
            })
            .await;
            if let Ok(out) = outcome {
                for (vrf, prefix, _why) in out.unresolved {
                    if let Some(i) = self.plan.vrfs.iter().position(|v| v.vrf == vrf) {
                        self.installed[i].remove(&prefix);
                        self.unresolved[i].insert(prefix);
                    }
                }
            }
            // The cheap counts at once (the rest once a second: [`Sync::count`]).
            let mut st = lock(&self.status);
            st.work.rib_ms += t0.elapsed().as_secs_f64() * 1e3;
            for (i, v) in st.vrfs.iter_mut().enumerate() {
                v.installed = self.installed[i].len();
                v.unresolved = self.unresolved[i].len();
            }
        }
        let mut ops = Ops::new();
        for &(i, prefix) in &touched {
            self.announce(Speaker::Core, i, prefix, &mut ops);
            self.announce(Speaker::Vrf(i), i, prefix, &mut ops);
        }
        self.flush(ops).await;
    }

    /// What `speaker` should carry for (VRF `i`, `prefix`): a path to add, or `None`.
    fn wanted(&self, speaker: Speaker, i: usize, prefix: IpPrefix) -> Option<apipb::Path> {
        let v = &self.plan.vrfs[i];
        match speaker {
            Speaker::Core => {
                let (rd, label) = (v.rd?, v.label?);
                if v.export.is_empty() {
                    return None;
                }
                let ce = self.learned.get(&Key::Ce(i, prefix));
                if ce.is_none() && v.originated.binary_search(&prefix).is_err() {
                    return None;
                }
                Some(wire::vpn_path(
                    prefix,
                    rd,
                    label.get(),
                    self.plan.next_hop,
                    &v.export,
                    ce.and_then(|c| c.as_path.as_ref()),
                ))
            }
            Speaker::Vrf(j) if j == i => {
                if v.ces.is_empty() || self.learned.contains_key(&Key::Ce(i, prefix)) {
                    return None;
                }
                match self.best(i, prefix)? {
                    (BgpNext::Vpn { .. }, as_path) if self.installed[i].contains_key(&prefix) => {
                        Some(wire::unicast_path(prefix, as_path))
                    }
                    _ => None,
                }
            }
            Speaker::Vrf(_) => None,
        }
    }

    /// Adds to `ops` what brings the path of (VRF `i`, `prefix`) at `speaker` in line with
    /// [`Sync::wanted`]: the path, its withdrawal, or nothing when it is announced as it is (a
    /// speaker's report of our own path comes back here, and announcing it again would make
    /// it report it again).
    fn announce(&mut self, speaker: Speaker, i: usize, prefix: IpPrefix, ops: &mut Ops) {
        if !self.clients.contains_key(&speaker) {
            return;
        }
        let key = (speaker, i, prefix);
        match self.wanted(speaker, i, prefix) {
            Some(path) => {
                let hash = hash_of(&path);
                if self.announced.insert(key, hash) != Some(hash) {
                    // A path of the same NLRI replaces ours in GoBGP: no withdrawal first.
                    ops.entry(speaker).or_default().push(path);
                }
            }
            None => {
                if self.announced.remove(&key).is_some() {
                    if let Some(mut path) = self.withdrawal(speaker, i, prefix) {
                        path.is_withdraw = true;
                        ops.entry(speaker).or_default().push(path);
                    }
                }
            }
        }
    }

    /// A path with the NLRI xpe announced for (VRF `i`, `prefix`) at `speaker`, to withdraw it.
    fn withdrawal(&self, speaker: Speaker, i: usize, prefix: IpPrefix) -> Option<apipb::Path> {
        let v = &self.plan.vrfs[i];
        match speaker {
            Speaker::Core => Some(wire::vpn_path(
                prefix,
                v.rd?,
                v.label?.get(),
                self.plan.next_hop,
                &v.export,
                None,
            )),
            Speaker::Vrf(_) => Some(wire::unicast_path(prefix, None)),
        }
    }

    /// Sends each speaker its adds and withdrawals, in order, through one AddPathStream in
    /// chunks: a million routes are a few hundred messages, not a million calls.
    async fn flush(&mut self, ops: Ops) {
        if ops.is_empty() {
            return;
        }
        let t0 = Instant::now();
        self.send(ops).await;
        lock(&self.status).work.announce_ms += t0.elapsed().as_secs_f64() * 1e3;
    }

    async fn send(&mut self, ops: Ops) {
        for (speaker, paths) in ops {
            let Some(mut client) = self.clients.get(&speaker).cloned() else {
                continue;
            };
            let chunks: Vec<AddPathStreamRequest> = paths
                .chunks(ANNOUNCE_CHUNK)
                .map(|c| AddPathStreamRequest {
                    table_type: TableType::Global as i32,
                    vrf_id: String::new(),
                    paths: c.to_vec(),
                })
                .collect();
            let sent = client
                .add_path_stream(xpe_gobgp::tonic::codegen::tokio_stream::iter(chunks))
                .await;
            if sent.is_err() {
                // The speaker is going (or refused a path): what it carries is unknown, and
                // it is announced whole again when it is back up.
                self.announced.retain(|(s, _, _), _| *s != speaker);
            }
        }
    }

    /// Announces everything a speaker that just came up should carry.
    async fn announce_all(&mut self, speaker: Speaker) {
        let mut keys: Vec<(usize, IpPrefix)> = Vec::new();
        for (i, v) in self.plan.vrfs.iter().enumerate() {
            match speaker {
                Speaker::Core => {
                    keys.extend(v.originated.iter().map(|&p| (i, p)));
                    keys.extend(self.learned.keys().filter_map(|k| match k {
                        Key::Ce(j, p) if *j == i => Some((i, *p)),
                        _ => None,
                    }));
                }
                Speaker::Vrf(j) if j == i => {
                    keys.extend(self.installed[i].keys().map(|&p| (i, p)));
                }
                Speaker::Vrf(_) => {}
            }
        }
        keys.sort();
        keys.dedup();
        let mut ops = Ops::new();
        for (i, p) in keys {
            self.announce(speaker, i, p, &mut ops);
        }
        self.flush(ops).await;
    }

    /// Removes what speakers that came back have not announced again in time.
    async fn purge_due(&mut self) {
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) =
            self.purges.drain(..).partition(|(at, _, _)| *at <= now);
        self.purges = later;
        if due.is_empty() {
            return;
        }
        let mut touched = BTreeSet::new();
        for (_, speaker, g) in due {
            let stale: Vec<Key> = self
                .learned
                .iter()
                .filter(|(k, v)| speaker_of(k) == speaker && v.generation < g)
                .map(|(k, _)| *k)
                .collect();
            for k in stale {
                let old = self.learned.remove(&k);
                match k {
                    Key::Vpn(rd, prefix) => {
                        self.forget_rd(prefix, rd);
                        let targets = old.map(|o| o.targets).unwrap_or_default();
                        for (i, v) in self.plan.vrfs.iter().enumerate() {
                            if v.import.iter().any(|t| targets.contains(t)) {
                                touched.insert((i, prefix));
                            }
                        }
                    }
                    Key::Ce(i, prefix) => {
                        touched.insert((i, prefix));
                    }
                }
            }
        }
        self.apply(touched).await;
        self.count();
    }

    /// [`Sync::count`] at most once a second: it looks at every route, and a full table
    /// arrives in thousands of batches.
    fn count_now_and_then(&mut self) {
        if self.counted.elapsed() >= Duration::from_secs(1) {
            self.count();
            self.counted = Instant::now();
        }
    }

    /// What BGP says of each BGP route in VRF `vrf`'s RIB, by prefix.
    fn details(&self, vrf: VrfId) -> HashMap<String, crate::api::BgpRoute> {
        let Some(i) = self.plan.vrfs.iter().position(|v| v.vrf == vrf) else {
            return HashMap::new();
        };
        let stale = |k: &Key, p: &In| {
            let speaker = speaker_of(k);
            p.generation < self.generation.get(&speaker).copied().unwrap_or(0)
                || !self.clients.contains_key(&speaker)
        };
        let mut out = HashMap::new();
        for &prefix in self.installed[i].keys() {
            let Some((key, p)) = self.best_path(i, prefix) else {
                continue;
            };
            let from = match key {
                Key::Ce(..) => "ce",
                Key::Vpn(..) => "vpn",
            };
            out.insert(
                prefix.to_string(),
                crate::api::BgpRoute {
                    from: from.into(),
                    next_hop: p.next_hop.to_string(),
                    rd: match key {
                        Key::Vpn(rd, _) => Some(rd.to_string()),
                        Key::Ce(..) => None,
                    },
                    route_targets: p.targets.iter().map(Tag::to_string).collect(),
                    vpn_label: p.label.map(Label::get),
                    as_path: p.as_path.as_ref().map(wire::as_numbers).unwrap_or_default(),
                    stale: stale(&key, p),
                },
            );
        }
        out
    }

    /// Updates the per-VRF counts of `show bgp`.
    fn count(&self) {
        let mut st = lock(&self.status);
        for (i, v) in st.vrfs.iter_mut().enumerate() {
            let import = &self.plan.vrfs[i].import;
            let mut stale = 0;
            let (mut ces, mut vpn) = (0, 0);
            for (k, p) in &self.learned {
                let mine = match k {
                    Key::Ce(j, _) => {
                        if *j == i {
                            ces += 1;
                        }
                        *j == i
                    }
                    Key::Vpn(..) => {
                        let m = p.targets.iter().any(|t| import.contains(t));
                        if m {
                            vpn += 1;
                        }
                        m
                    }
                };
                let speaker = speaker_of(k);
                let current = self.generation.get(&speaker).copied().unwrap_or(0);
                if mine && (p.generation < current || !self.clients.contains_key(&speaker)) {
                    stale += 1;
                }
            }
            v.from_ces = ces;
            v.from_vpn = vpn;
            v.stale = stale;
            v.installed = self.installed[i].len();
            v.unresolved = self.unresolved[i].len();
            v.exported = self
                .announced
                .keys()
                .filter(|(s, j, _)| *s == Speaker::Core && *j == i)
                .count();
            v.advertised = self
                .announced
                .keys()
                .filter(|(s, j, _)| *s == Speaker::Vrf(i) && *j == i)
                .count();
        }
    }
}

fn speaker_of(k: &Key) -> Speaker {
    match k {
        Key::Vpn(..) => Speaker::Core,
        Key::Ce(i, _) => Speaker::Vrf(*i),
    }
}

/// Addresses no CE may announce into a VRF (RFC 6890's "not forwardable" and the like):
/// this network, loopback, link-local, multicast and class E; for IPv6 the unspecified and
/// loopback addresses, link-local and multicast.
fn martian(prefix: IpPrefix) -> bool {
    match prefix {
        IpPrefix::V4(p) => {
            let a = p.network().octets();
            p.len() > 0 && (a[0] == 0 || a[0] == 127 || a[0] >= 224)
        }
        IpPrefix::V6(p) => {
            let a = p.network();
            p.len() > 0
                && (a.is_loopback()
                    || a.is_unspecified() && p.len() == 128
                    || (a.segments()[0] & 0xffc0) == 0xfe80
                    || (a.segments()[0] & 0xff00) == 0xff00)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> IpPrefix {
        crate::resolve::prefix(s).unwrap()
    }

    #[test]
    fn martians_are_refused_and_customer_space_is_not() {
        for m in [
            "0.0.0.0/8",
            "127.0.0.0/8",
            "127.1.0.0/16",
            "224.0.0.0/4",
            "240.0.0.0/4",
            "fe80::/10",
            "ff02::/16",
            "::1/128",
        ] {
            assert!(martian(p(m)), "{m}");
        }
        for ok in [
            "0.0.0.0/0",
            "198.18.10.0/24",
            "10.0.0.0/8",
            "169.254.10.0/30",
            "2001:db8::/32",
            "::/0",
        ] {
            assert!(!martian(p(ok)), "{ok}");
        }
    }

    #[test]
    fn gobgpd_log_lines_give_the_reason_a_session_is_down() {
        let line = r#"time="2026-12-05T03:16:27Z" level=warning msg="sent notification" Code=2 Data="[]" Key=198.18.99.2 Subcode=2 Topic=Peer"#;
        let (peer, why) = reason_of(line).unwrap();
        assert_eq!(peer, "198.18.99.2");
        assert!(why.starts_with("sent notification"), "{why}");
        assert!(why.contains("bad peer AS"), "{why}");
        assert!(reason_of(r#"level=info msg="Peer Up" Key=198.18.99.2"#).is_none());
        assert!(reason_of(r#"level=warning msg="listen failed" Key=:179"#).is_none());
    }

    #[test]
    fn an_open_error_says_it_all_and_silence_points_at_tcp() {
        let (_, bad_as) = reason_of(
            r#"level=warning msg="received notification" Code=2 Key=169.254.20.2 Subcode=2"#,
        )
        .unwrap();
        let logged = Logged {
            notification: Some(bad_as),
            other: Some("Closed an accepted connection".into()),
            ..Logged::default()
        };
        let w = why("active", Some(&logged));
        assert!(
            w.starts_with("received notification Code=2 Subcode=2") && w.contains("bad peer AS"),
            "{w}"
        );
        let (_, cease) = reason_of(
            r#"level=warning msg="received notification" Code=6 Key=169.254.20.2 Subcode=6"#,
        )
        .unwrap();
        let mut logged = Logged {
            notification: Some(cease),
            other: None,
            counts_at_up: (1, 0),
            counts_now: (1, 1),
        };
        let w = why("connect", Some(&logged));
        assert!(
            w.starts_with("no TCP session") && w.contains("TCP MD5"),
            "{w}"
        );
        assert!(w.ends_with("(cease: other configuration change)"), "{w}");
        // OPENs answered by NOTIFICATIONs: refused at OPEN (GoBGP logs nothing then).
        logged.counts_now = (4, 4);
        let w = why("active", Some(&logged));
        assert!(w.contains("ASN that does not match"), "{w}");
        assert!(why("active", None).starts_with("no TCP session"));
        assert_eq!(why("idle", None), "");
    }
}

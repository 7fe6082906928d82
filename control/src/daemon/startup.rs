//! Start-up and shutdown of `xpe run`: the checks that come before any interface is touched
//! (root, config, interfaces), VLAN offloads, the control socket file, one sentence for each
//! way the runtime fails to start, and the signals that stop it.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

use xpe_dataplane::xsk::netdev::Netdev;
use xpe_dataplane::xsk::runtime::Runtime;
use xpe_dataplane::xsk::steer::SteerError;
use xpe_dataplane::xsk::umem::{MAX_FRAME, MAX_JUMBO_FRAME};
use xpe_dataplane::xsk::worker::cycles;
use xpe_dataplane::xsk::XskError;

use crate::compile::{compile, Compiled, SysfsMacs};
use crate::config::Config;
use crate::error::Failure;

/// Ethernet header plus one 802.1Q tag: what a frame adds to the interface MTU.
pub(super) const L2_OVERHEAD: u32 = 18;

/// Refuses to go on unless we run as root.
pub(super) fn check_root() -> Result<(), Failure> {
    if xpe_dataplane::xsk::netdev::is_root() {
        return Ok(());
    }
    Err(
        Failure::new("xpe run needs root (it attaches XDP programs and opens AF_XDP sockets)")
            .hint("run it with sudo"),
    )
}

/// Loads and compiles a config with the interfaces' real MACs.
pub(super) fn load_live(path: &Path) -> Result<(Config, Compiled), Failure> {
    let config = Config::load(path).map_err(|e| Failure::new(e.to_string()))?;
    let compiled = compile(&config, &SysfsMacs).map_err(|errors| {
        let n = errors.0.len();
        Failure::new(format!("the config has {n} error(s):\n{errors}"))
            .hint("fix the objects named above; see docs/config.md")
    })?;
    Ok((config, compiled))
}

/// Every interface of the config as the kernel has it: present in this namespace, up, and
/// with an MTU whose frames fit what the workers forward.
pub(super) fn check_interfaces(config: &Config) -> Result<Vec<Netdev>, Failure> {
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
    Ok(interfaces)
}

/// The XDP program must see 802.1Q tags in the frame data, so the NIC must not strip them
/// (rxvlan) or expect to insert them (txvlan). Done with ethtool, which setup.sh installs:
/// it knows every driver's feature names, where the raw ioctl would need them spelled out.
pub(super) fn vlan_offloads_off(ifname: &str, out: &mut dyn Write) -> Result<(), Failure> {
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

/// Turns GRO off on veth `ifname`, before the fast path is attached. A veth with
/// GRO on lets its peer keep sending GSO frames, and hands them to an XDP program in pieces
/// even when the program was loaded without multi-buffer support, which the fast path's copy
/// for one-buffer frames relies on (`xpe_fast_linear`, docs/runtime.md). xpe forwards frames
/// one by one and never wants them merged. A veth that refuses gets a note: the program then
/// still leaves frames over the egress MTU and cut IP packets to the workers, but a labelled
/// GSO frame could be swapped whole.
pub(super) fn veth_gro_off(ifname: &str, out: &mut dyn Write) {
    let done = std::process::Command::new("ethtool")
        .args(["-K", ifname, "gro", "off"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !done {
        let _ignored = writeln!(
            out,
            "note: ethtool could not turn GRO off on {ifname}: its peer may send merged (GSO) frames, which the fast path could forward whole"
        );
    }
}

/// Whether `ifname` is a veth, by its driver as ethtool reports it.
pub(super) fn is_veth(ifname: &str) -> bool {
    std::process::Command::new("ethtool")
        .args(["-i", ifname])
        .stderr(std::process::Stdio::null())
        .output()
        .is_ok_and(|info| {
            String::from_utf8_lossy(&info.stdout)
                .lines()
                .any(|l| l.trim() == "driver: veth")
        })
}

/// A note for veth `ifname`: an AF_XDP copy sends frames on as they are, so a Linux
/// host behind a veth whose TX checksum offload is on (the default) has its TCP and UDP
/// arrive with the checksum the kernel left for the device to finish, and dropped as bad.
/// Its namespace is not ours to look into, so this is a reminder, not a check.
pub(super) fn veth_checksum_note(ifname: &str, out: &mut dyn Write) {
    let _ignored = writeln!(
        out,
        "note: {ifname} is a veth: a Linux host on its other end needs TX checksum offload off (`ethtool -K DEV tx off` there), or its TCP and UDP arrive with unfinished checksums and are dropped (docs/runtime.md)"
    );
}

/// Binds the control socket (mode 0600), replacing a stale file no one listens on.
pub(super) fn bind_socket(path: &Path) -> Result<UnixListener, Failure> {
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

/// Removes the control socket file on the way out.
pub(super) fn remove_socket(path: &Path) {
    // Already gone is fine; anything else leaves a stale file the next start replaces.
    let _stale_is_replaced_next_start = std::fs::remove_file(path);
}

/// What to try when the steering program cannot be loaded or attached.
const STEER_HINT: &str =
    "try --xdp-mode skb, or check `ip link show` for another XDP program on the interface";

/// One sentence per way the live runtime fails to start.
pub(super) fn start_failure(e: XskError, jumbo: bool) -> Failure {
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

/// The started runtime in one line: sockets, workers, each interface's XDP mode, and the
/// fast path when it is on.
pub(super) fn describe(rt: &Runtime) -> String {
    let steering: Vec<String> = rt
        .xdp_interfaces()
        .iter()
        .map(|s| format!("{} {}", s.ifname, s.mode))
        .collect();
    let fast = match rt.fast_status() {
        Some(f) => format!(
            "; XDP fast path on ({} label(s) forwarded in the kernel)",
            f.labels
        ),
        None => String::new(),
    };
    let workers = rt
        .sockets()
        .iter()
        .map(|s| s.worker)
        .max()
        .map_or(0, |w| w + 1);
    format!(
        "{} socket(s) on {} worker(s), XDP: {}{fast}",
        rt.sockets().len(),
        workers,
        steering.join(", ")
    )
}

/// Waits for SIGINT or SIGTERM.
pub(super) fn wait_for_signal() -> Result<(), Failure> {
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])
    .map_err(|e| Failure::new(format!("cannot install signal handlers: {e}")))?;
    let _signal = signals.forever().next();
    Ok(())
}

/// TSC ticks per second, measured over 50 ms (for cycles shown as time).
pub(super) fn measure_tsc_hz() -> f64 {
    let (c0, t0) = (cycles(), Instant::now());
    std::thread::sleep(Duration::from_millis(50));
    let (c1, t1) = (cycles(), Instant::now());
    c1.wrapping_sub(c0) as f64 / (t1 - t0).as_secs_f64()
}

/// Moves the calling thread, and so every control thread it starts from now on (route
/// committer, BGP, control socket, metrics, neighbours), off the cores the workers are pinned
/// to, when another core is left: a scrape or a `show` must not take time from a
/// busy-polling worker. Returns the cores the control threads keep, if it changed them.
pub(super) fn keep_off_worker_cores(workers: &[usize]) -> Option<Vec<usize>> {
    use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
    use nix::unistd::Pid;
    let current = sched_getaffinity(Pid::from_raw(0)).ok()?;
    let mut rest = CpuSet::new();
    let mut kept = Vec::new();
    for cpu in 0..CpuSet::count() {
        if current.is_set(cpu).unwrap_or(false) && !workers.contains(&cpu) {
            rest.set(cpu).ok()?;
            kept.push(cpu);
        }
    }
    if kept.is_empty() || workers.iter().all(|w| !current.is_set(*w).unwrap_or(false)) {
        return None;
    }
    sched_setaffinity(Pid::from_raw(0), &rest).ok()?;
    Some(kept)
}

//! Making the mirrors of `xpe run`: their namespaces (created when missing, and removed at
//! stop when this run created them), the TAP devices (`xsk::mirror`), then each namespace's
//! gateway neighbours and kernel routes, with one `ip -batch` per namespace.
//!
//! iproute2 does the namespace and route work: `ip netns add` is what users create
//! namespaces with (a bind mount under /run/netns that daemons can `ip netns exec` into), and
//! one `ip -batch` per namespace is one process however many routes there are.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Command, Stdio};

use xpe_dataplane::xsk::mirror::{open_mirrors, Mirror};

use crate::error::Failure;
use crate::mirrors::MirrorPlan;

/// Namespaces this run created: removed when it stops.
#[derive(Debug, Default)]
pub(super) struct Created {
    names: Vec<String>,
    /// The mount namespace they were made in, when not ours (see [`NetnsTool`]).
    tool: NetnsTool,
}

impl Created {
    /// Whether this run created namespace `ns`.
    pub(super) fn made(&self, ns: &str) -> bool {
        self.names.iter().any(|n| n == ns)
    }

    /// Removes the namespaces (their mirrors are gone by now: the devices closed with the
    /// runtime). A daemon still running inside one keeps it alive, unnamed, until it exits.
    pub(super) fn remove(&mut self) -> Vec<String> {
        let mut failed = Vec::new();
        for ns in self.names.drain(..) {
            if let Err(e) = self.tool.run(&["netns", "delete", &ns], "") {
                failed.push(format!("cannot remove network namespace {ns}: {e}"));
            }
        }
        failed
    }
}

impl Drop for Created {
    fn drop(&mut self) {
        // Only reached on an error path (`run` removes them itself and reports failures).
        let _reported_by_run = self.remove();
    }
}

/// How `ip netns add` and `delete` are run. Under `ip netns exec`, xpe has a mount namespace
/// of its own, and a namespace's bind mount made there (under /run/netns) would never
/// propagate back: nobody else could enter it. Then the command runs in the mount namespace
/// of the process that started xpe, through nsenter (util-linux), so the namespace is
/// visible there and, by propagation, to xpe too.
#[derive(Debug, Default)]
struct NetnsTool {
    /// The mount namespace to run in, if not ours: held open, so it outlives the process
    /// that started xpe, and named for nsenter through our own /proc/PID/fd entry.
    mounts: Option<(std::fs::File, String)>,
    /// Our /run/netns receives mounts but does not send them, and no other mount namespace
    /// could be found to make namespaces in: they must exist beforehand.
    stranded: bool,
}

impl NetnsTool {
    fn here() -> NetnsTool {
        if !netns_mount_is_slave() {
            return NetnsTool::default();
        }
        let parent = std::os::unix::process::parent_id();
        let theirs = format!("/proc/{parent}/ns/mnt");
        let differ = matches!(
            (std::fs::read_link("/proc/self/ns/mnt"), std::fs::read_link(&theirs)),
            (Ok(a), Ok(b)) if a != b
        );
        let mounts = differ
            .then(|| std::fs::File::open(&theirs).ok())
            .flatten()
            .map(|f| {
                let path = format!("/proc/{}/fd/{}", std::process::id(), f.as_raw_fd());
                (f, path)
            });
        NetnsTool {
            stranded: mounts.is_none(),
            mounts,
        }
    }

    fn run(&self, args: &[&str], input: &str) -> Result<(), String> {
        match &self.mounts {
            None => run("ip", args, input),
            Some((_, mnt)) => {
                let mut all = vec![format!("--mount={mnt}"), "ip".to_string()];
                all.extend(args.iter().map(|a| a.to_string()));
                let all: Vec<&str> = all.iter().map(String::as_str).collect();
                run("nsenter", &all, input)
            }
        }
    }
}

/// Creates what `plan` asks for; on any error, nothing it made is left.
pub(super) fn make(plan: &MirrorPlan) -> Result<(Vec<Mirror>, Created), Failure> {
    let mut created = Created {
        names: Vec::new(),
        tool: NetnsTool::here(),
    };
    for ns in plan.namespaces.iter().filter_map(|n| n.name.as_ref()) {
        if Path::new("/run/netns").join(ns).exists() {
            continue;
        }
        if created.tool.stranded {
            return Err(Failure::new(format!(
                "network namespace {ns} for mirrors does not exist, and xpe runs in a mount namespace of its own (as under `ip netns exec`) whose parent is gone, where a namespace it made would be invisible to everything else"
            ))
            .hint(format!(
                "create it first: ip netns add {ns} (xpe uses it, and leaves it when it stops); or run with --no-mirrors"
            )));
        }
        created.tool.run(&["netns", "add", ns], "").map_err(|e| {
            Failure::new(format!(
                "cannot create network namespace {ns} for mirrors: {e}"
            ))
            .hint("name another with namespace = \"...\" in the VRF, or run with --no-mirrors")
        })?;
        created.names.push(ns.clone());
    }
    let mirrors = open_mirrors(&plan.mirrors).map_err(|e| {
        Failure::new(e.to_string()).hint("or run with --no-mirrors to make no mirror devices")
    })?;
    for ns in &plan.namespaces {
        let batch = plan.batch(ns);
        if batch.is_empty() {
            continue;
        }
        let mut args = Vec::new();
        if let Some(name) = &ns.name {
            args.extend(["-n", name.as_str()]);
        }
        args.extend(["-batch", "-"]);
        run("ip", &args, &batch).map_err(|e| {
            let place = ns
                .name
                .as_ref()
                .map_or("the router's namespace".to_string(), |n| {
                    format!("namespace {n}")
                });
            Failure::new(format!(
                "cannot install the kernel routes into xpe in {place}: {e}"
            ))
            .hint("IPv6 must be on in that namespace (the routes' next hop is link-local)")
        })?;
    }
    Ok((mirrors, created))
}

/// Whether /run/netns is a slave mount here (`master:N` and no `shared:N` in
/// /proc/self/mountinfo), as `ip netns exec` leaves it: a namespace added here would not
/// propagate to the mount namespace it came from.
fn netns_mount_is_slave() -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    info.lines().any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let optional = fields.iter().skip(6).take_while(|f| **f != "-");
        fields.get(4) == Some(&"/run/netns")
            && optional.clone().any(|f| f.starts_with("master:"))
            && !optional.clone().any(|f| f.starts_with("shared:"))
    })
}

/// Runs `program ARGS` with `input` on its standard input; its error output when it fails.
fn run(program: &str, args: &[&str], input: &str) -> Result<(), String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .map_err(|e| format!("cannot write to {program}: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{program} did not finish: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

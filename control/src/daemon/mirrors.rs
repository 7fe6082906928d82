//! Making the mirrors of `xpe run`: their namespaces (created when missing, and removed at
//! stop when this run created them), the TAP devices (`xsk::mirror`), then each namespace's
//! gateway neighbours and kernel routes, with one `ip -batch` per namespace.
//!
//! iproute2 does the namespace and route work: `ip netns add` is what users create
//! namespaces with (a bind mount under /run/netns that daemons can `ip netns exec` into), and
//! one `ip -batch` per namespace is one process however many routes there are.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use xpe_dataplane::xsk::mirror::{open_mirrors, Mirror};

use crate::error::Failure;
use crate::mirrors::MirrorPlan;

/// Namespaces this run created: removed when it stops.
#[derive(Debug, Default)]
pub(super) struct Created(Vec<String>);

impl Created {
    /// Removes the namespaces (their mirrors are gone by now: the devices closed with the
    /// runtime). A daemon still running inside one keeps it alive, unnamed, until it exits.
    pub(super) fn remove(&mut self) {
        for ns in self.0.drain(..) {
            let _gone_already = Command::new("ip")
                .args(["netns", "delete", &ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Drop for Created {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Creates what `plan` asks for; on any error, nothing it made is left.
pub(super) fn make(plan: &MirrorPlan) -> Result<(Vec<Mirror>, Created), Failure> {
    let mut created = Created::default();
    let private_mounts = in_private_mount_namespace();
    for ns in plan.namespaces.iter().filter_map(|n| n.name.as_ref()) {
        if Path::new("/run/netns").join(ns).exists() {
            continue;
        }
        if private_mounts {
            return Err(Failure::new(format!(
                "network namespace {ns} for mirrors does not exist, and xpe runs in a mount namespace of its own (as under `ip netns exec`), where a namespace it made would be invisible to everything else"
            ))
            .hint(format!(
                "create it first: ip netns add {ns} (xpe uses it, and leaves it when it stops); or run with --no-mirrors"
            )));
        }
        run_ip(&["netns", "add", ns], "").map_err(|e| {
            Failure::new(format!(
                "cannot create network namespace {ns} for mirrors: {e}"
            ))
            .hint("name another with namespace = \"...\" in the VRF, or run with --no-mirrors")
        })?;
        created.0.push(ns.clone());
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
        run_ip(&args, &batch).map_err(|e| {
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

/// Whether this process has a mount namespace its parent does not share: `ip netns exec`
/// gives the command one, whose new mounts (such as `ip netns add`'s bind mount under
/// /run/netns) do not propagate back.
fn in_private_mount_namespace() -> bool {
    let parent = std::os::unix::process::parent_id();
    let ours = std::fs::read_link("/proc/self/ns/mnt");
    let theirs = std::fs::read_link(format!("/proc/{parent}/ns/mnt"));
    matches!((ours, theirs), (Ok(a), Ok(b)) if a != b)
}

/// Runs `ip ARGS` with `input` on its standard input; its error output when it fails.
fn run_ip(args: &[&str], input: &str) -> Result<(), String> {
    let mut child = Command::new("ip")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run ip (iproute2): {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .map_err(|e| format!("cannot write to ip: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("ip did not finish: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

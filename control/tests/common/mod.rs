//! Helpers shared by the control crate's root integration tests.

use std::process::Command;

/// Runs a command, panicking with its output if it fails.
pub fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command in a namespace, panicking with its output if it fails.
// Each test file that includes this module uses part of it.
#[allow(dead_code)]
pub fn ns_sh(ns: &str, args: &[&str]) -> String {
    let mut all = vec!["ip", "netns", "exec", ns];
    all.extend_from_slice(args);
    sh(&all)
}

/// Runs a command in a namespace; returns (success, stdout).
#[allow(dead_code)]
pub fn ns_try(ns: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .output()
        .expect("ip netns exec");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Stops a process we started, best effort (also while panicking): SIGTERM, up to 5 s for
/// it to end, then SIGKILL; reaps it.
#[allow(dead_code)]
pub fn stop_child(mut child: std::process::Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .stderr(std::process::Stdio::null())
        .status();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::time::Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Deletes a test's namespaces, then any other whose name starts with `prefix` (mirror
/// namespaces an xpe it started made and, killed, could not remove).
#[allow(dead_code)]
pub fn remove_namespaces(namespaces: &mut Vec<String>, prefix: &str) {
    for ns in namespaces.drain(..).rev() {
        let _ = Command::new("ip").args(["netns", "del", &ns]).status();
    }
    for entry in std::fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(prefix) {
            let _ = Command::new("ip").args(["netns", "del", &name]).status();
        }
    }
}

/// A counter of a namespace's kernel from `/proc/net/snmp`: group `group` (`Icmp`, `Udp`),
/// field `field` (`InEchos`, `NoPorts`).
#[allow(dead_code)]
pub fn snmp(ns: &str, group: &str, field: &str) -> u64 {
    let text = ns_sh(ns, &["cat", "/proc/net/snmp"]);
    let mut lines = text.lines().filter(|l| l.starts_with(&format!("{group}:")));
    let (names, values) = (lines.next().expect("header"), lines.next().expect("values"));
    let at = names
        .split_whitespace()
        .position(|n| n == field)
        .unwrap_or_else(|| panic!("no {group} {field} in /proc/net/snmp"));
    values
        .split_whitespace()
        .nth(at)
        .and_then(|v| v.parse().ok())
        .expect("value")
}

/// Checks that the tests run as root, then makes the temporary directory of a lab named
/// `prefix` (its logs and sockets).
#[allow(dead_code)]
pub fn lab_dir(prefix: &str) -> std::path::PathBuf {
    assert!(
        sh(&["id", "-u"]).trim() == "0",
        "this test needs root (network namespaces, XDP, AF_XDP): run the test suite as root"
    );
    let dir = std::env::temp_dir().join(prefix);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// The replies a `ping -q` summary reports (0 when it has none).
#[allow(dead_code)]
pub fn ping_replies(summary: &str) -> u32 {
    summary
        .lines()
        .find_map(|l| {
            l.split(", ")
                .nth(1)?
                .strip_suffix(" received")
                .map(str::to_string)
        })
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

//! The Direct Connect lab (`scripts/lab.sh`, examples/lab/) as a user runs it: `up`, `up`
//! again, `demo`, `down`, and the cases around them (needs root, AF_XDP and BPF; it fails,
//! never skips, without them).
//!
//! The lab runs with this test's xpe binary and a prefix of `xd<pid>-` on every namespace,
//! socket and state directory, so it never meets a user's lab; `down` runs on drop, also on
//! panic.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const XPE: &str = env!("CARGO_BIN_EXE_xpe");
/// The lab's namespaces: the script's, then the PEs' mirror namespaces that xpe run makes
/// (one per VRF; `down` removes them too).
const NAMESPACES: [&str; 13] = [
    "vpc-a",
    "vpc-b",
    "wires",
    "pe-dx",
    "p1",
    "pe-site",
    "site-a",
    "site-b",
    "rr",
    "pe-dx-vpc-a",
    "pe-dx-vpc-b",
    "pe-site-vpc-a",
    "pe-site-vpc-b",
];

struct Lab {
    prefix: String,
}

impl Lab {
    /// A lab whose names start with `xd<pid><tag>-` (each test its own tag: they run at once).
    fn new(tag: &str) -> Lab {
        let uid = Command::new("id").arg("-u").output().expect("id -u");
        assert_eq!(
            String::from_utf8_lossy(&uid.stdout).trim(),
            "0",
            "this test needs root (network namespaces, XDP, AF_XDP): run the test suite as root"
        );
        Lab {
            prefix: format!("xd{}{tag}-", std::process::id()),
        }
    }

    fn script() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/lab.sh")
    }

    /// Runs `scripts/lab.sh ARG` with this lab's prefix and binary, and `env`.
    fn run(&self, arg: &str, env: &[(&str, &str)]) -> Output {
        Command::new("bash")
            .arg(Self::script())
            .arg(arg)
            .env("XPE", XPE)
            .env("XPE_LAB_PREFIX", &self.prefix)
            .envs(env.iter().copied())
            .output()
            .expect("run scripts/lab.sh")
    }

    /// As [`Lab::run`], asserting success; returns stdout and stderr.
    fn ok(&self, arg: &str) -> String {
        self.ok_with(arg, &[])
    }

    fn ok_with(&self, arg: &str, env: &[(&str, &str)]) -> String {
        let out = self.run(arg, env);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "lab.sh {arg} failed:\n{text}");
        text
    }

    /// The lab's namespaces that exist now.
    fn namespaces(&self) -> Vec<String> {
        let out = Command::new("ip")
            .args(["netns", "list"])
            .output()
            .expect("ip netns list");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|n| n.starts_with(&self.prefix))
            .map(str::to_owned)
            .collect()
    }

    /// Sockets and state the lab leaves in /run.
    fn leftovers(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        for r in ["pe-dx", "p1", "pe-site"] {
            let s = PathBuf::from(format!("/run/xpe/{}{r}.sock", self.prefix));
            if s.exists() {
                found.push(s);
            }
        }
        let state = PathBuf::from(format!("/run/xpe-lab/{}", self.prefix));
        if state.exists() {
            found.push(state);
        }
        found
    }

    fn assert_gone(&self, after: &str) {
        assert_eq!(
            self.namespaces(),
            Vec::<String>::new(),
            "namespaces left after {after}"
        );
        assert_eq!(
            self.leftovers(),
            Vec::<PathBuf>::new(),
            "files left after {after}"
        );
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.run("down", &[]);
    }
}

#[test]
fn up_demo_down() {
    let lab = Lab::new("a");

    let up = lab.ok("up");
    assert!(up.contains("lab: up"), "{up}");
    let mut names = lab.namespaces();
    names.sort();
    let mut want: Vec<String> = NAMESPACES
        .iter()
        .map(|n| format!("{}{n}", lab.prefix))
        .collect();
    want.sort();
    assert_eq!(names, want);

    // Up twice is harmless: the running routers stay.
    let again = lab.ok("up");
    assert!(again.contains("already up"), "{again}");
    assert!(lab.ok("status").contains("lab: up"));

    let demo = lab.ok("demo");
    let verdict = demo
        .lines()
        .rev()
        .find(|l| l.starts_with("lab: "))
        .unwrap_or("");
    assert!(
        verdict.starts_with("lab: all ") && verdict.ends_with(" checks passed"),
        "demo verdict: {verdict}\n{demo}"
    );
    assert!(!demo.contains("[FAIL]"), "{demo}");
    for heading in 1..=9 {
        assert!(
            demo.contains(&format!("\n== {heading}. ")),
            "step {heading} missing:\n{demo}"
        );
    }

    lab.ok("down");
    lab.assert_gone("down");
    // Down again: nothing to do, still fine.
    lab.ok("down");

    // A lab with a dead router is not up: `demo` rebuilds it first. This round uses
    // 1500-byte VIFs (no jumbo frames anywhere).
    let mtu = [("LAB_VIF_MTU", "1500")];
    lab.ok_with("up", &mtu);
    let pid = std::fs::read_to_string(format!("/run/xpe-lab/{}/p1.pid", lab.prefix))
        .expect("p1 pid file");
    let killed = Command::new("kill")
        .args(["-KILL", pid.trim()])
        .status()
        .expect("kill");
    assert!(killed.success());
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(lab.run("status", &[]).status.code() == Some(1));
    let demo = lab.ok_with("demo", &mtu);
    assert!(demo.contains("lab: all "), "{demo}");
    assert!(demo.contains("a full-size 1500-byte packet"), "{demo}");
    lab.ok("down");
    lab.assert_gone("down after a killed router");
}

#[test]
fn bad_input_is_refused_and_leaves_nothing() {
    let lab = Lab::new("b");
    let out = lab.run("up", &[("LAB_VIF_MTU", "jumbo")]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("LAB_VIF_MTU=jumbo"), "{err}");
    lab.assert_gone("a refused up");

    let out = lab.run("sideways", &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage: scripts/lab.sh"));

    let out = lab.run("up", &[("XPE", "/nonexistent/xpe")]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an executable"));
    lab.assert_gone("up with a missing binary");
}

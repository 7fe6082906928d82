//! The pps harness (`scripts/bench_pps.py`, what `scripts/bench-pps.sh` runs) end to end, in
//! its smallest form: one run of one second per row, so it checks the harness, not the speed
//! (needs root; it fails, never skips, without it).
//!
//! Every DUT but Open vSwitch (installed only by `scripts/setup.sh --bench`) forwards swap and
//! imposition frames from `xpe gen` to `xpe sink`; the harness checks a captured sample of each
//! DUT's output before it records a row. This test checks the rows, the files and the refusal of
//! bad arguments.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The binaries `cargo test --workspace` built: xpe-fwd of this package, xpe next to it.
fn binaries() -> (PathBuf, PathBuf) {
    let fwd = PathBuf::from(env!("CARGO_BIN_EXE_xpe-fwd"));
    let xpe = fwd.with_file_name("xpe");
    assert!(
        xpe.exists(),
        "{} is missing: build the workspace first (cargo build --workspace)",
        xpe.display()
    );
    (xpe, fwd)
}

fn harness() -> Command {
    let (xpe, fwd) = binaries();
    let mut c = Command::new("/usr/bin/python3");
    c.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/bench_pps.py"))
        .arg("--xpe")
        .arg(xpe)
        .arg("--fwd")
        .arg(fwd);
    c
}

#[test]
fn every_dut_but_ovs_is_measured_after_its_output_is_checked() {
    let uid = Command::new("id").arg("-u").output().expect("id -u");
    assert_eq!(
        String::from_utf8_lossy(&uid.stdout).trim(),
        "0",
        "this test needs root (namespaces, XDP, AF_XDP): run the test suite as root"
    );
    let out_dir = std::env::temp_dir().join(format!("xbpt{}", std::process::id()));
    let out = harness()
        .args(["--duts", "xpe,forwarder,kernel,xdp-redirect"])
        .args([
            "--scenarios",
            "swap,impose",
            "--sizes",
            "64",
            "--placements",
            "P0s1",
        ])
        .args([
            "--runs",
            "1",
            "--seconds",
            "1",
            "--warmup",
            "0.5",
            "--flows",
            "16",
        ])
        .arg("--out")
        .arg(&out_dir)
        .output()
        .expect("run bench_pps.py");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "harness failed:\n{text}");

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("pps.json")).expect("pps.json"))
            .expect("pps.json is JSON");
    let rows = json["rows"].as_array().expect("rows");
    let mut seen: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r["dut"].as_str().unwrap_or("?"),
                r["scenario"].as_str().unwrap_or("?")
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            "forwarder impose",
            "forwarder swap",
            "kernel impose",
            "xdp-redirect impose",
            "xdp-redirect swap",
            "xpe impose",
            "xpe swap",
        ],
        "{text}"
    );
    assert_eq!(json["notes"].as_array().map(Vec::len), Some(0), "{text}");
    for r in rows {
        assert!(
            r["delivered_mpps"].as_f64().unwrap_or(0.0) > 0.0,
            "nothing delivered: {r}\n{text}"
        );
        assert!(
            r["offered_mpps"].as_f64().unwrap_or(0.0)
                >= r["delivered_mpps"].as_f64().unwrap_or(0.0) * 0.9,
            "delivered well above offered: {r}"
        );
        assert_eq!(r["frame_size"], 64);
        assert_eq!(r["placement"], "P0s1");
        let afxdp = matches!(r["dut"].as_str(), Some("xpe" | "forwarder"));
        assert_eq!(
            r["cycles_per_packet"].is_number(),
            afxdp,
            "cycles only where the DUT reports them: {r}"
        );
    }
    // The labels the xpe rows were checked for: the swap and the two imposed labels.
    let verified = |dut: &str, sc: &str| {
        rows.iter()
            .find(|r| r["dut"] == dut && r["scenario"] == sc)
            .and_then(|r| r["verified"].as_str())
            .unwrap_or("")
            .to_owned()
    };
    assert!(verified("xpe", "swap").contains("labels=16002,2001 ttls=63,64"));
    assert!(verified("xpe", "impose").contains("labels=16001,2001 ttls=63,63"));
    assert!(verified("kernel", "impose").contains("ip.ttl=63"));

    let png = std::fs::read(out_dir.join("pps.png")).expect("pps.png");
    assert!(png.starts_with(b"\x89PNG"), "pps.png is not a PNG");
    let md = std::fs::read_to_string(out_dir.join("pps.md")).expect("pps.md");
    assert!(md.contains("| DUT | scenario | frame |"), "{md}");
    let _ = std::fs::remove_dir_all(&out_dir);
}

#[test]
fn bad_arguments_are_refused() {
    let out = harness()
        .args(["--duts", "xpe,vpp"])
        .output()
        .expect("run bench_pps.py");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--duts: vpp: choose from"), "{err}");
}

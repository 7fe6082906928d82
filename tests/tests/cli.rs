//! The `xpe` command line as a user meets it: `replay` on captures it cannot map to
//! interfaces, and `check` on broken configs. A failure is one sentence naming what is wrong
//! (and a hint) on stderr, exit code 1, and nothing written.

use std::ffi::OsString;
use std::path::Path;

use xpe_tests::*;

/// `xpe replay CONFIG --in IN --out OUT [extra...]`.
fn replay_args(config: &Path, input: &Path, output: &Path, extra: &[&str]) -> Run {
    let mut args: Vec<OsString> = vec![
        "replay".into(),
        config.into(),
        "--in".into(),
        input.into(),
        "--out".into(),
        output.into(),
    ];
    args.extend(extra.iter().map(OsString::from));
    xpe(args)
}

/// A classic pcap has no interface names: replay needs `--interface`.
#[test]
fn classic_pcap_needs_interface() {
    let dir = TempDir::new();
    let frame = V4::new(Eth::dx0(101), "169.254.10.2", "198.19.20.5").udp();
    let input = dir.write("in.pcap", classic_pcap(&[frame.clone(), frame]));
    let out = dir.path().join("out.pcapng");

    let run = replay_args(&example_config(), &input, &out, &[]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("--interface"), "{}", run.stderr);
    assert!(run.stderr.starts_with("xpe: "), "{}", run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(
        !out.exists(),
        "nothing may be written when the capture cannot be mapped"
    );

    let run = replay_args(&example_config(), &input, &out, &["--interface", "dx0"]);
    assert_eq!(run.code, 0, "{run:?}");
    let report = Report::parse(&run.stdout);
    assert_eq!((report.frames_in, report.forwarded), (2, 2));
    assert_eq!(report.ports["dx0"].in_frames, 2);
    let rows = tshark_fields(&out, &["frame.interface_name", "mpls.label"]);
    assert_eq!(rows.len(), 2);
    assert_fields(
        &rows[0],
        &[
            ("frame.interface_name", "core0"),
            ("mpls.label", "16001,2001"),
        ],
    );

    let run = replay_args(&example_config(), &input, &out, &["--interface", "eth9"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("eth9"), "{}", run.stderr);
    assert!(run.stderr.contains("core0, dx0"), "{}", run.stderr);
}

/// A pcapng whose interface is not in the config fails, naming it; `--interface` overrides.
#[test]
fn capture_interface_not_in_config() {
    let dir = TempDir::new();
    let frame = V4::new(Eth::dx0(101), "169.254.10.2", "198.19.20.5").udp();
    let input = dir.write(
        "in.pcapng",
        pcapng(&[("dx0", frame.clone()), ("eth7", frame)]),
    );
    let out = dir.path().join("out.pcapng");
    let drops = dir.path().join("drops.pcapng");
    let drops_arg = drops.to_str().expect("UTF-8 temp path");

    let run = replay_args(&example_config(), &input, &out, &["--drops", drops_arg]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("interface \"eth7\" is not in the config"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("hint: "), "{}", run.stderr);
    assert!(!out.exists() && !drops.exists(), "nothing may be written");

    let run = replay_args(&example_config(), &input, &out, &["-i", "dx0"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(Report::parse(&run.stdout).forwarded, 2);
}

/// Broken inputs to replay: a missing capture, a file that is no capture.
#[test]
fn unreadable_capture() {
    let dir = TempDir::new();
    let out = dir.path().join("out.pcapng");
    let run = replay_args(
        &example_config(),
        &dir.path().join("missing.pcapng"),
        &out,
        &[],
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("cannot read capture"), "{}", run.stderr);
    let junk = dir.write("junk.pcapng", b"this is not a capture file at all");
    let run = replay_args(&example_config(), &junk, &out, &[]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("cannot read capture"), "{}", run.stderr);
}

/// Frames of a non-Ethernet interface are skipped and counted, not decoded as Ethernet.
#[test]
fn non_ethernet_frames_are_skipped() {
    use std::borrow::Cow;
    use std::time::Duration;

    use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
    use pcap_file::pcapng::blocks::interface_description::{
        InterfaceDescriptionBlock, InterfaceDescriptionOption,
    };
    use pcap_file::pcapng::PcapNgWriter;
    use pcap_file::DataLink;

    let frame = V4::new(Eth::dx0(101), "169.254.10.2", "198.19.20.5").udp();
    let mut w = PcapNgWriter::new(Vec::new()).expect("section");
    for (name, link) in [("dx0", DataLink::ETHERNET), ("core0", DataLink::RAW)] {
        w.write_pcapng_block(InterfaceDescriptionBlock {
            linktype: link,
            snaplen: 0,
            options: vec![InterfaceDescriptionOption::IfName(Cow::Borrowed(name))],
        })
        .expect("idb");
    }
    // No if_tsresol: microseconds. pcap-file writes the Duration's nanoseconds as the raw
    // count, so this is 1700000000.123456 s to every reader.
    let ts = Duration::from_nanos(1_700_000_000_123_456);
    for (id, data) in [(0, frame.clone()), (1, l3_of(&frame).to_vec())] {
        w.write_pcapng_block(EnhancedPacketBlock {
            interface_id: id,
            timestamp: ts,
            original_len: data.len() as u32,
            data: Cow::Owned(data),
            options: vec![],
        })
        .expect("epb");
    }
    let dir = TempDir::new();
    let input = dir.write("in.pcapng", w.into_inner());
    let out = dir.path().join("out.pcapng");
    let run = replay_args(&example_config(), &input, &out, &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.starts_with(
            "replay: 2 frames in, 1 forwarded, 0 dropped, 0 punted, 1 skipped (not Ethernet)\n"
        ),
        "{}",
        run.stdout
    );
    let report = Report::parse(&run.stdout);
    assert_eq!(report.skipped, 1);
    // The skipped frame arrived on core0 but never reached the pipeline.
    assert_eq!(report.ports["core0"].in_frames, 0);
    assert_eq!(report.ports["core0"].out_frames, 1);
    let rows = tshark_fields(&out, &["frame.interface_name", "frame.time_epoch"]);
    assert_eq!(rows.len(), 1);
    assert_fields(
        &rows[0],
        &[
            ("frame.interface_name", "core0"),
            ("frame.time_epoch", "1700000000.123456000"),
        ],
    );
}

/// The example config checks clean.
#[test]
fn check_example() {
    let run = xpe(["check".into(), OsString::from(example_config())]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains(": ok"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("xpe run mirrors: cp-core0, dx0.101 (pe-dx-vpc-a), dx0.102 (pe-dx-vpc-b)\n"),
        "{}",
        run.stdout
    );
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    for name in ["pipe", "extras"] {
        let run = xpe(["check".into(), OsString::from(test_config(name))]);
        assert_eq!(run.code, 0, "{name}: {run:?}");
    }
}

/// The example config with `from` replaced by `to` (which must occur exactly once).
fn broken(from: &str, to: &str) -> String {
    let text = std::fs::read_to_string(example_config()).expect("read example");
    assert_eq!(
        text.matches(from).count(),
        1,
        "{from:?} must occur once in the example"
    );
    text.replace(from, to)
}

/// Runs `xpe check` on config text; asserts it fails and returns stderr.
#[track_caller]
fn check_fails(text: &str) -> String {
    let dir = TempDir::new();
    let path = dir.write("xpe.toml", text);
    let run = xpe(["check".into(), OsString::from(&path)]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(run.stderr.starts_with("xpe: "), "{}", run.stderr);
    run.stderr
}

/// Every broken config names the objects at fault.
#[test]
fn check_broken_configs() {
    // A table label clashing with a label entry: both users are named.
    let e = check_fails(&broken("table_label = 1001", "table_label = 16002"));
    assert!(e.contains("duplicate in-label 16002"), "{e}");
    assert!(e.contains("vrf \"vpc-a\""), "{e}");
    assert!(e.contains("label entry 1"), "{e}");

    // One VLAN in two VRFs.
    let e = check_fails(&broken("vlan = 102\naddress", "vlan = 101\naddress"));
    assert!(e.contains("VLAN 101 attached twice"), "{e}");
    assert!(e.contains("vpc-a") && e.contains("vpc-b"), "{e}");

    // A next hop outside every connected subnet of the VRF.
    let e = check_fails(&broken(
        "prefix = \"198.18.10.0/24\"       # the VPC, behind the virtual private gateway\nvia = \"169.254.10.2\"",
        "prefix = \"198.18.10.0/24\"\nvia = \"169.254.99.2\"",
    ));
    assert!(e.contains("vrf \"vpc-a\" route 198.18.10.0/24"), "{e}");
    assert!(
        e.contains("via 169.254.99.2 is not in any connected subnet"),
        "{e}"
    );

    // Reserved labels 0..15 cannot be assigned, as in-label or pushed.
    let e = check_fails(&broken("in = 16002", "in = 15"));
    assert!(e.contains("in-label 15 is outside 16..1048575"), "{e}");
    let e = check_fails(&broken("labels = [16001, 2002]", "labels = [16001, 15]"));
    assert!(e.contains("vrf \"vpc-b\" route 198.19.20.0/24"), "{e}");
    assert!(e.contains("label 15 is outside 16..1048575"), "{e}");

    // An attachment on an interface that does not exist.
    let e = check_fails(&broken(
        "interface = \"dx0\"\nvlan = 101                      # omit",
        "interface = \"dx9\"\nvlan = 101                      # omit",
    ));
    assert!(e.contains("unknown interface \"dx9\""), "{e}");

    // Several problems at once are all reported.
    let e = check_fails(
        &broken("in = 16002", "in = 15").replace("table_label = 1002", "table_label = 1001"),
    );
    assert!(e.contains("2 errors"), "{e}");
}

/// TOML syntax and type errors point at the line.
#[test]
fn check_reports_toml_line() {
    let text = broken("mtu = 9001", "mtu = = 9001");
    let line = text
        .lines()
        .position(|l| l.contains("mtu = = 9001"))
        .expect("edited line")
        + 1;
    let e = check_fails(&text);
    assert!(e.contains(&format!("line {line}")), "{e}");

    let text = broken("mtu = 9001", "mtu = \"jumbo\"");
    let line = text
        .lines()
        .position(|l| l.contains("jumbo"))
        .expect("edited line")
        + 1;
    let e = check_fails(&text);
    assert!(e.contains(&format!("line {line}")), "{e}");

    let dir = TempDir::new();
    let run = xpe([
        "check".into(),
        OsString::from(dir.path().join("missing.toml")),
    ]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("cannot read"), "{}", run.stderr);
}

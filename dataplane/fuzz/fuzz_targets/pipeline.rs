//! Whole frames through the pipeline: no input may panic `process`, and every frame ends
//! forwarded, as a counted drop or as a counted punt.
//!
//! The snapshot is `examples/dx-pe.toml` compiled once per fuzzing process, in its own TTL
//! mode (uniform) and in pipe mode. The first input byte picks how the rest, the frame, is
//! offered (given 256 bytes of headroom, as `xpe replay` does):
//!
//! - bits 0-4: the ingress port, modulo the number of ports + 1 (the extra one is a port the
//!   snapshot does not have);
//! - bit 5: repair the IPv4 header checksum (and an ICMP one below it) after the mutation;
//! - bit 6: overwrite a unicast destination MAC with the ingress port's;
//! - bit 7: pipe instead of uniform TTL mode.
//!
//! Bits 5 and 6 are there because a fuzzer cannot guess a 48-bit MAC or solve a ones'
//! complement sum by mutation: without them nearly every input stops at the MAC filter or the
//! IPv4 header check, and the label, lookup and rewrite code behind them is never reached.
//! With the bits clear the bytes go in exactly as generated.
//!
//! A forwarded frame must hold at least an Ethernet header with the egress port's MAC as
//! source. `pipeline.dict` (`-dict=`) holds the config's MACs, VLANs, labels and addresses.
//!
//! The same bytes also go through the punt path's helpers (`punt_class`, `for_kernel`) as
//! they arrived, and through `route_from_kernel` as a frame a mirror's kernel sent on an
//! attachment picked by bits 0-4: none may panic, and a routed frame is counted once.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use xpe_control::compile::{compile, Offline};
use xpe_control::config::Config;
use xpe_dataplane::pipeline::punt::{for_kernel, punt_class};
use xpe_dataplane::pipeline::{process, route_from_kernel, Counters, Frame, NoTrace, Verdict};
use xpe_dataplane::tables::{AttachmentId, PortId, Snapshot};

const CONFIG: &str = include_str!("../../../examples/dx-pe.toml");

/// Room for a VLAN tag and the deepest label push in front of the frame.
const HEADROOM: usize = 256;

fn snapshots() -> &'static [Snapshot; 2] {
    static SNAPS: OnceLock<[Snapshot; 2]> = OnceLock::new();
    SNAPS.get_or_init(|| {
        let pipe = CONFIG.replace("ttl_mode = \"uniform\"", "ttl_mode = \"pipe\"");
        assert_ne!(
            pipe, CONFIG,
            "examples/dx-pe.toml no longer sets ttl_mode = \"uniform\""
        );
        [build(CONFIG), build(&pipe)]
    })
}

fn build(text: &str) -> Snapshot {
    let config = Config::parse(text, "examples/dx-pe.toml").expect("examples/dx-pe.toml parses");
    compile(&config, &Offline)
        .expect("examples/dx-pe.toml compiles")
        .snapshot
}

/// RFC 1071 Internet checksum (the harness's own, not the code under test).
fn inet_checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    for pair in data.chunks(2) {
        sum += u32::from(u16::from_be_bytes([
            pair[0],
            pair.get(1).copied().unwrap_or(0),
        ]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Where an IPv4 header would sit: after the MACs, up to two VLAN tags and a label stack.
fn ipv4_offset(f: &[u8]) -> Option<usize> {
    let mut at = 12;
    let mut ethertype = u16::from_be_bytes([*f.get(at)?, *f.get(at + 1)?]);
    for _ in 0..2 {
        if !matches!(ethertype, 0x8100 | 0x88a8) {
            break;
        }
        at += 4;
        ethertype = u16::from_be_bytes([*f.get(at)?, *f.get(at + 1)?]);
    }
    at += 2;
    if ethertype == 0x8847 {
        for _ in 0..16 {
            let bos = f.get(at + 2)? & 1 == 1;
            at += 4;
            if bos {
                break;
            }
        }
    }
    (f.get(at)? >> 4 == 4).then_some(at)
}

fn repair_checksums(f: &mut [u8]) {
    let Some(at) = ipv4_offset(f) else { return };
    let ihl = usize::from(f[at] & 0x0f) * 4;
    if ihl < 20 || at + ihl > f.len() {
        return;
    }
    f[at + 10..at + 12].fill(0);
    let sum = inet_checksum(&f[at..at + ihl]);
    f[at + 10..at + 12].copy_from_slice(&sum.to_be_bytes());
    let total = usize::from(u16::from_be_bytes([f[at + 2], f[at + 3]]));
    let icmp = at + ihl..(at + total).min(f.len());
    if f[at + 9] == 1 && icmp.len() >= 4 {
        let icmp = &mut f[icmp];
        icmp[2..4].fill(0);
        let sum = inet_checksum(icmp);
        icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let snap = &snapshots()[usize::from(selector >> 7)];
    let ports = snap.ports().len() as u16;
    let ingress = PortId(u16::from(selector & 0x1f) % (ports + 1));
    let mut buf = vec![0u8; HEADROOM + bytes.len()];
    let input = &mut buf[HEADROOM..];
    input.copy_from_slice(bytes);
    if selector & 0x40 != 0 && input.len() >= 6 && input[0] & 1 == 0 {
        if let Some(port) = snap.ports().get(usize::from(ingress.0)) {
            input[..6].copy_from_slice(&port.mac.0);
        }
    }
    if selector & 0x20 != 0 {
        repair_checksums(input);
    }
    let arrived = buf[HEADROOM..].to_vec();
    punt_class(&arrived);
    let mut out = Vec::new();
    if for_kernel(snap, ingress, &arrived, &mut out).is_some() {
        assert!(out.len() >= 14, "a {}-byte frame for the kernel", out.len());
    }
    let atts = snap.attachments().len() as u16;
    if atts > 0 {
        let att = AttachmentId(u16::from(selector & 0x1f) % atts);
        let mut from_kernel = buf.clone();
        let mut frame = Frame::new(&mut from_kernel, HEADROOM, bytes.len()).expect("fits");
        let mut counters = Counters::new(snap.ports().len());
        route_from_kernel(snap, att, &mut frame, &mut counters);
        assert_eq!(
            counters.forwarded + counters.total_drops() + counters.total_punts(),
            1,
            "a frame from the kernel was not counted exactly once"
        );
    }
    let mut frame =
        Frame::new(&mut buf, HEADROOM, bytes.len()).expect("the buffer holds the frame");
    let mut counters = Counters::new(snap.ports().len());
    let verdict = process(snap, ingress, &mut frame, &mut counters, &mut NoTrace);
    assert_eq!(
        counters.forwarded + counters.total_drops() + counters.total_punts(),
        1,
        "{verdict:?} was not counted exactly once"
    );
    if let Verdict::Forward(egress) = verdict {
        let out = frame.data();
        assert!(out.len() >= 14, "forwarded a {}-byte frame", out.len());
        assert_eq!(
            &out[6..12],
            &snap.port(egress).mac.0,
            "source MAC is not the egress port's"
        );
    }
});

//! Shared fixtures for the criterion benches: the example PE's tables (optionally with a
//! large synthetic VRF), frame builders, and synthetic route tables ([`routes`]).

pub mod routes;

use std::net::Ipv4Addr;

use etherparse::PacketBuilder;
use xpe_control::compile::{compile, Offline};
use xpe_control::config::{Config, Route};
use xpe_dataplane::tables::Snapshot;

/// The example PE config (examples/dx-pe.toml).
pub const EXAMPLE: &str = include_str!("../../examples/dx-pe.toml");

/// MAC of core0 in the example.
pub const CORE_MAC: [u8; 6] = [2, 0, 0, 0, 1, 1];
/// MAC of dx0 in the example.
pub const EDGE_MAC: [u8; 6] = [2, 0, 0, 0, 1, 2];
/// MAC of the core neighbour 198.18.0.2.
pub const P_MAC: [u8; 6] = [2, 0, 0, 0, 2, 1];
/// MAC of the VLAN 101 neighbour 169.254.10.2.
pub const VGW_MAC: [u8; 6] = [2, 0, 0, 0, 0xaa, 1];

/// The example's tables, with `extra` prefixes added to vrf vpc-a, each pushing 16001/2001
/// toward 198.18.0.2 (as routes learnt from one remote PE with a per-VRF label would).
pub fn pe_snapshot(extra: &[(Ipv4Addr, u8)]) -> Snapshot {
    let mut config = Config::parse(EXAMPLE, "dx-pe.toml").expect("the example parses");
    let vrf = &mut config.vrfs[0];
    vrf.routes.reserve(extra.len());
    for (addr, len) in extra {
        vrf.routes.push(Route {
            prefix: format!("{addr}/{len}"),
            via: "198.18.0.2".into(),
            labels: vec![16001, 2001],
        });
    }
    match compile(&config, &Offline) {
        Ok(c) => c.snapshot,
        Err(e) => panic!("bench config does not compile: {e}"),
    }
}

/// A UDP/IPv4 frame of `frame_len` bytes from the VLAN 101 neighbour to `dst`.
pub fn edge_frame(dst: Ipv4Addr, frame_len: usize) -> Vec<u8> {
    let builder = PacketBuilder::ethernet2(VGW_MAC, EDGE_MAC)
        .single_vlan(101.try_into().expect("valid VLAN"))
        .ipv4([198, 18, 10, 5], dst.octets(), 64)
        .udp(40000, 5001);
    let payload = vec![0u8; frame_len.saturating_sub(18 + 20 + 8)];
    let mut out = Vec::with_capacity(frame_len);
    builder.write(&mut out, &payload).expect("write to a Vec");
    out
}

/// A frame from the core neighbour carrying `labels` (outermost first, TTL 64, S on the last)
/// over a UDP/IPv4 packet to `dst`, `frame_len` bytes long.
pub fn core_frame(labels: &[u32], dst: Ipv4Addr, frame_len: usize) -> Vec<u8> {
    let builder = PacketBuilder::ethernet2(P_MAC, CORE_MAC)
        .ipv4([198, 19, 20, 5], dst.octets(), 64)
        .udp(5001, 40000);
    let payload = vec![0u8; frame_len.saturating_sub(14 + 4 * labels.len() + 20 + 8)];
    let mut ip = Vec::with_capacity(frame_len);
    builder.write(&mut ip, &payload).expect("write to a Vec");
    let mut out = ip[..12].to_vec();
    out.extend_from_slice(&0x8847u16.to_be_bytes());
    for (i, l) in labels.iter().enumerate() {
        let bos = u32::from(i + 1 == labels.len());
        out.extend_from_slice(&(l << 12 | bos << 8 | 64).to_be_bytes());
    }
    out.extend_from_slice(&ip[14..]);
    out
}

//! `bgp-inject`: makes a gobgpd a remote PE that announces (or withdraws) N VPNv4 routes, for
//! scripts/bench-bgp.sh. It starts BGP in the gobgpd at `--api` (a Unix socket), adds one
//! iBGP neighbour with VPNv4, and streams the routes in through AddPathStream: consecutive
//! /24s from `--start`, one RD, one route target, one VPN label, one next hop.
//!
//! ```text
//! bgp-inject --api /run/x/inj.sock --asn 65000 --router-id 198.18.9.2 --peer 198.18.9.1 \
//!     --rd 65000:99 --rt 65000:1 --label 5000 --next-hop 198.18.9.2 --count 1000000 [--withdraw]
//! ```
//!
//! With `--no-setup` it only streams (the gobgpd already runs BGP with that neighbour).

use std::net::Ipv4Addr;
use std::time::Instant;

use xpe_control::bgp::wire::vpn_path;
use xpe_control::bgp::Tag;
use xpe_dataplane::tables::{IpPrefix, Ipv4Prefix};
use xpe_gobgp::apipb::{
    family, AddPathStreamRequest, AddPeerRequest, AfiSafi, AfiSafiConfig, Family, Global, Peer,
    PeerConf, StartBgpRequest, TableType, Timers, TimersConfig,
};

/// Paths per stream message.
const CHUNK: usize = 1000;

struct Args {
    api: String,
    asn: u32,
    router_id: Ipv4Addr,
    peer: Ipv4Addr,
    rd: Tag,
    rt: Tag,
    label: u32,
    next_hop: Ipv4Addr,
    count: u32,
    start: Ipv4Addr,
    withdraw: bool,
    setup: bool,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        api: String::new(),
        asn: 65000,
        router_id: Ipv4Addr::UNSPECIFIED,
        peer: Ipv4Addr::UNSPECIFIED,
        rd: Tag::As2 { asn: 65000, n: 99 },
        rt: Tag::As2 { asn: 65000, n: 1 },
        label: 5000,
        next_hop: Ipv4Addr::UNSPECIFIED,
        count: 1000,
        start: Ipv4Addr::new(10, 0, 0, 0),
        withdraw: false,
        setup: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let bad = |v: &str| format!("{flag}: \"{v}\" is not valid");
        match flag.as_str() {
            "--api" => a.api = value()?,
            "--asn" => a.asn = value()?.parse().map_err(|_| bad("asn"))?,
            "--router-id" => a.router_id = value()?.parse().map_err(|_| bad("router id"))?,
            "--peer" => a.peer = value()?.parse().map_err(|_| bad("peer"))?,
            "--rd" => a.rd = value()?.parse()?,
            "--rt" => a.rt = value()?.parse()?,
            "--label" => a.label = value()?.parse().map_err(|_| bad("label"))?,
            "--next-hop" => a.next_hop = value()?.parse().map_err(|_| bad("next hop"))?,
            "--count" => a.count = value()?.parse().map_err(|_| bad("count"))?,
            "--start" => a.start = value()?.parse().map_err(|_| bad("start"))?,
            "--withdraw" => a.withdraw = true,
            "--no-setup" => a.setup = false,
            other => {
                return Err(format!(
                    "unknown argument {other} (see the source's header)"
                ))
            }
        }
    }
    if a.api.is_empty() {
        return Err("--api PATH (the gobgpd's Unix socket) is required".into());
    }
    Ok(a)
}

fn main() {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bgp-inject: {e}");
            std::process::exit(2);
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    if let Err(e) = rt.block_on(run(&args)) {
        eprintln!("bgp-inject: {e}");
        std::process::exit(1);
    }
}

async fn run(a: &Args) -> Result<(), String> {
    let mut client = xpe_gobgp::connect_unix(std::path::Path::new(&a.api))
        .await
        .map_err(|e| format!("cannot reach gobgpd at {}: {e}", a.api))?;
    if a.setup {
        client
            .start_bgp(StartBgpRequest {
                global: Some(Global {
                    asn: a.asn,
                    router_id: a.router_id.to_string(),
                    listen_port: 179,
                    ..Global::default()
                }),
            })
            .await
            .map_err(|e| format!("StartBgp: {}", e.message()))?;
        let vpnv4 = Family {
            afi: family::Afi::Ip as i32,
            safi: family::Safi::MplsVpn as i32,
        };
        client
            .add_peer(AddPeerRequest {
                peer: Some(Peer {
                    conf: Some(PeerConf {
                        neighbor_address: a.peer.to_string(),
                        peer_asn: a.asn,
                        ..PeerConf::default()
                    }),
                    timers: Some(Timers {
                        config: Some(TimersConfig {
                            connect_retry: 5,
                            hold_time: 90,
                            keepalive_interval: 30,
                            ..TimersConfig::default()
                        }),
                        state: None,
                    }),
                    afi_safis: vec![AfiSafi {
                        config: Some(AfiSafiConfig {
                            family: Some(vpnv4),
                            enabled: true,
                        }),
                        ..AfiSafi::default()
                    }],
                    ..Peer::default()
                }),
            })
            .await
            .map_err(|e| format!("AddPeer: {}", e.message()))?;
    }
    let t0 = Instant::now();
    let base = u32::from(a.start);
    let mut chunks = Vec::new();
    let mut paths = Vec::with_capacity(CHUNK);
    for i in 0..a.count {
        let net = Ipv4Addr::from(base.wrapping_add(i << 8));
        let prefix = IpPrefix::V4(Ipv4Prefix::new(net, 24).expect("24 is a valid length"));
        let mut p = vpn_path(prefix, a.rd, a.label, a.next_hop, &[a.rt], None);
        p.is_withdraw = a.withdraw;
        paths.push(p);
        if paths.len() == CHUNK {
            chunks.push(std::mem::take(&mut paths));
        }
    }
    if !paths.is_empty() {
        chunks.push(paths);
    }
    let built = t0.elapsed();
    let requests: Vec<AddPathStreamRequest> = chunks
        .into_iter()
        .map(|paths| AddPathStreamRequest {
            table_type: TableType::Global as i32,
            vrf_id: String::new(),
            paths,
        })
        .collect();
    client
        .add_path_stream(xpe_gobgp::tonic::codegen::tokio_stream::iter(requests))
        .await
        .map_err(|e| format!("AddPathStream: {}", e.message()))?;
    println!(
        "{} {} VPNv4 routes (built in {:.2} s, streamed into gobgpd in {:.2} s)",
        if a.withdraw { "withdrew" } else { "announced" },
        a.count,
        built.as_secs_f64(),
        (t0.elapsed() - built).as_secs_f64()
    );
    Ok(())
}

//! How long a config takes to parse and to compile (what `xpe apply` and every single
//! `route add` pay on a running instance): `cargo run --release -p xpe-benches --example
//! compile_time -- CONFIG`.

use std::time::Instant;

use xpe_control::compile::{compile, Offline};
use xpe_control::config::Config;

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: compile_time CONFIG");
        std::process::exit(2);
    };
    let t0 = Instant::now();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("cannot read {path}: {e}");
            std::process::exit(1);
        }
    };
    let t1 = Instant::now();
    let config = match Config::parse(&text, &path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let t2 = Instant::now();
    let copy = config.clone();
    let t3 = Instant::now();
    let compiled = match compile(&copy, &Offline) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let t4 = Instant::now();
    let routes: usize = (0..compiled.rib.vrf_count())
        .map(|v| compiled.rib.len(xpe_dataplane::tables::VrfId(v as u16)))
        .sum();
    println!(
        "{routes} routes: read {:.0} ms, parse {:.0} ms, clone {:.0} ms, compile {:.0} ms",
        (t1 - t0).as_secs_f64() * 1e3,
        (t2 - t1).as_secs_f64() * 1e3,
        (t3 - t2).as_secs_f64() * 1e3,
        (t4 - t3).as_secs_f64() * 1e3
    );
}

//! A paced route feed into a running xpe, timed end to end: `route_feed SOCKET LINES RATE
//! SECONDS` (run by scripts/bench-route-churn.sh and scripts/bench-churn-traffic.sh).
//!
//! Streams route changes (`Request::RouteStream`, as `xpe route load --stream` does) at RATE
//! changes per second for SECONDS: every millisecond the changes due so far go out in one
//! write, taken from the route file LINES (docs/routes.md) in turn, over and over (so LINES
//! usually removes routes and then puts them back). Every change is timed from the moment it was written to the moment
//! the daemon acknowledged the chunk holding it as published (the daemon coalesces what
//! arrived together, and other requests, into one snapshot). Prints the rate reached, the
//! publish latency per change (p50, p99, max), and the chunks and batches the daemon made.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use xpe_control::ctl::{Request, Response, StreamAck};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: route_feed SOCKET LINES RATE SECONDS");
        std::process::exit(2);
    }
    let socket = &args[1];
    let lines: Vec<String> = std::fs::read_to_string(&args[2])
        .expect("read the route lines")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(!lines.is_empty(), "no route lines in {}", args[2]);
    let rate: f64 = args[3].parse().expect("RATE");
    let seconds: f64 = args[4].parse().expect("SECONDS");

    let conn = UnixStream::connect(socket).expect("connect to the control socket");
    let mut writer = conn.try_clone().expect("clone the socket");
    let mut header = serde_json::to_vec(&Request::RouteStream {
        origin: "route_feed".into(),
    })
    .expect("encode");
    header.push(b'\n');
    writer.write_all(&header).expect("send the request");

    // Acknowledgements, read as they come: (last line published, when, the daemon's own
    // figure, requests in its batch).
    let (acks_tx, acks_rx) = mpsc::channel::<(u64, Instant, StreamAck)>();
    let reader = std::thread::spawn(move || {
        let mut reader = BufReader::new(conn);
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return None;
            }
            if let Ok(ack) = serde_json::from_str::<StreamAck>(&line) {
                let _ = acks_tx.send((ack.through, Instant::now(), ack));
                continue;
            }
            return serde_json::from_str::<Response>(&line).ok();
        }
    });

    // The sender: every millisecond, the changes due by then, as one write.
    let start = Instant::now();
    let total = (rate * seconds) as u64;
    // (last line number of the write, when it was written)
    let mut sent: Vec<(u64, Instant)> = Vec::new();
    let mut line_no = 0u64;
    let mut text = String::new();
    let mut tick = 0u64;
    while line_no < total {
        tick += 1;
        let due_at = start + Duration::from_micros(tick * 1000);
        if let Some(wait) = due_at.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let due = ((start.elapsed().as_secs_f64() * rate) as u64).min(total);
        text.clear();
        while line_no < due {
            text.push_str(&lines[line_no as usize % lines.len()]);
            line_no += 1;
        }
        if !text.is_empty() {
            writer.write_all(text.as_bytes()).expect("send routes");
            sent.push((line_no, Instant::now()));
        }
    }
    let sending = start.elapsed();
    writer
        .shutdown(std::net::Shutdown::Write)
        .expect("end the stream");
    let response = reader.join().expect("reader");
    let acks: Vec<(u64, Instant, StreamAck)> = acks_rx.try_iter().collect();
    let done = acks.last().map_or(sending, |a| a.1 - start);

    // Each write's latency: from its writing to the first acknowledgement that covers its
    // last line, counted once per change it held.
    let mut latencies: Vec<f64> = Vec::with_capacity(total as usize);
    let mut a = 0;
    let mut first = 0u64;
    for &(last, at) in &sent {
        while a < acks.len() && acks[a].0 < last {
            a += 1;
        }
        let Some(ack) = acks.get(a) else { break };
        let ms = (ack.1 - at).as_secs_f64() * 1e3;
        latencies.extend(std::iter::repeat_n(ms, (last - first) as usize));
        first = last;
    }
    latencies.sort_by(f64::total_cmp);
    let q = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
    let published = acks.last().map_or(0, |a| a.0);
    println!(
        "feed: {published} of {total} changes published in {:.2} s ({:.0} changes/s; asked {rate:.0}/s for {seconds} s)",
        done.as_secs_f64(),
        published as f64 / done.as_secs_f64(),
    );
    if !latencies.is_empty() {
        println!(
            "publish latency per change, written to acknowledged: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            q(0.5),
            q(0.99),
            q(1.0)
        );
    }
    let mut daemon: Vec<f64> = acks.iter().map(|a| a.2.latency_ms).collect();
    daemon.sort_by(f64::total_cmp);
    if !daemon.is_empty() {
        println!(
            "daemon: {} chunks of {:.0} changes on average, arrival to published p50 {:.3} ms, p99 {:.3} ms",
            acks.len(),
            published as f64 / acks.len() as f64,
            daemon[daemon.len() / 2],
            daemon[(daemon.len() - 1) * 99 / 100]
        );
    }
    match response {
        Some(r) if r.ok => println!("xpe: {}", r.text),
        Some(r) => {
            eprintln!("xpe refused the feed: {}", r.text);
            std::process::exit(1);
        }
        None => {
            eprintln!("xpe closed the stream without an answer");
            std::process::exit(1);
        }
    }
}

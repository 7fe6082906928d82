//! `xpe trace --live` on the daemon's side: starts a trace session on the workers' tap and
//! explains each frame they trace with the offline trace's words
//! ([`crate::trace::explain`]), as it arrives.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use xpe_dataplane::tables::IpPrefix;
use xpe_dataplane::xsk::capture::{TraceFilter, Traced};
use xpe_dataplane::xsk::fast::FastTables;

use super::server::write_line;
use super::{lock, ok, refused, Live};
use crate::api::{TraceStep, TracedFrame};
use crate::ctl::{Response, TraceEvent, TraceRequest};
use crate::trace::{explain, write_text};

/// The most frames one trace may ask for.
const MAX_COUNT: u64 = 10_000;

/// The longest a trace may wait for its frames.
const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// Serves one live trace on `conn`; the returned response closes it.
pub(super) fn serve(live: &Live, req: TraceRequest, conn: &UnixStream) -> Response {
    let snap = live.published.load();
    let port = match super::capture::where_on(&snap, req.interface.as_deref(), req.vlan) {
        Ok(p) => p,
        Err(why) => return refused(why),
    };
    if let Some(l) = req.label {
        if l >= 1 << 20 {
            return refused(format!("{l} is not a label (0-1048575)"));
        }
    }
    let prefix = match req.prefix.as_deref().map(str::parse::<IpPrefix>) {
        None => None,
        Some(Ok(p)) => Some(p),
        Some(Err(e)) => return refused(format!("--prefix: {e}")),
    };
    if !(1..=MAX_COUNT).contains(&req.count) {
        return refused(format!("--count must be from 1 to {MAX_COUNT}"));
    }
    let timeout = Duration::from_millis(req.timeout_ms).min(MAX_TIMEOUT);
    let filter = TraceFilter {
        port,
        vlan: req.vlan,
        label: req.label,
        prefix,
    };
    let reader = {
        let rt = lock(&live.runtime);
        let Some(rt) = rt.as_ref() else {
            return refused("the data plane is stopping");
        };
        match rt.tap().start_trace(filter, req.count) {
            Ok(r) => r,
            Err(e) => return refused(e.to_string()),
        }
    };
    let mut w = conn;
    if write_line(&mut w, &ok(String::new())).is_err() {
        return refused("the client went away");
    }
    // Compiled once, from the tables of the trace's start (a 1M-route VRF takes a while):
    // what the fast path would do is asked of every frame.
    let fast = FastTables::compile(&snap);
    // A trace may wait for an hour: it must not keep these tables alive past a change.
    drop(snap);
    let t0 = Instant::now();
    let mut traced = 0u64;
    while traced < req.count {
        let left = timeout.saturating_sub(t0.elapsed());
        if left.is_zero() {
            break;
        }
        let line = match reader.frames.recv_timeout(left.min(Duration::from_secs(1))) {
            Ok(t) => {
                traced += 1;
                TraceEvent::Frame {
                    text: render(live, &fast, &t, traced, &req),
                }
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => TraceEvent::Heartbeat,
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        };
        if write_line(&mut w, &line).is_err() {
            return refused("the client went away");
        }
    }
    drop(reader);
    let waited = t0.elapsed().as_secs_f64();
    if traced == req.count {
        ok(String::new())
    } else if traced == 0 {
        refused(format!("no frame matched the filter in {waited:.1} s"))
    } else {
        refused(format!(
            "only {traced} of {} frames matched the filter in {waited:.1} s",
            req.count
        ))
    }
}

/// One traced frame as text or JSON.
fn render(live: &Live, fast: &FastTables, t: &Traced, n: u64, req: &TraceRequest) -> String {
    let snap = live.published.load();
    let e = {
        let st = lock(&live.state);
        explain(&snap, &st.rib, fast, t)
    };
    let interface = snap
        .ports()
        .get(usize::from(t.port.0))
        .map_or_else(|| format!("port {}", t.port.0), |p| p.name.clone());
    if req.json {
        let frame = TracedFrame {
            frame: n,
            interface,
            time_ns: t.time_ns,
            input: compact_hex(&t.input),
            steps: e
                .steps
                .iter()
                .map(|(stage, text)| TraceStep {
                    stage: (*stage).to_string(),
                    text: text.clone(),
                })
                .collect(),
            verdict: e.verdict.clone(),
            outputs: e.outputs.iter().map(|o| compact_hex(o)).collect(),
            fast_path: e.fast_path.clone(),
        };
        return serde_json::to_string(&frame).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    }
    let mut text = Vec::new();
    let secs = t.time_ns / 1_000_000_000;
    let _ignored = writeln!(
        text,
        "frame {n} of {}: received on {interface} at {:02}:{:02}:{:02}.{:06} UTC, {} bytes",
        req.count,
        secs / 3600 % 24,
        secs / 60 % 60,
        secs % 60,
        t.time_ns % 1_000_000_000 / 1000,
        t.input.len()
    );
    let _ignored = writeln!(text, "input: {}", crate::trace::hex(&t.input));
    let _ignored = write_text(&mut text, &e);
    String::from_utf8_lossy(&text).into_owned()
}

/// Hex without separators.
fn compact_hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

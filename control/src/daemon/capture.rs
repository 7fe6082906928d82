//! `xpe capture` on the daemon's side: starts a capture on the workers' tap, writes what
//! they queue to the client as it comes, and ends it by count, by duration, or when the
//! client goes away ([`crate::capture`] has the record format).

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use xpe_dataplane::tables::{PortId, Snapshot};
use xpe_dataplane::xsk::capture::{Captured, Direction, Filter};

use super::server::write_line;
use super::{lock, ok, refused, Live};
use crate::capture::{Header, Kind, Start, Summary, HEADER};
use crate::ctl::{CaptureRequest, Response};

/// Frames each worker may have queued for the reader before it counts misses.
const QUEUE_DEPTH: usize = 16 << 10;

/// The longest capture: a forgotten one ends by itself.
const MAX_DURATION: Duration = Duration::from_secs(3600);

/// How long the reader sleeps when every queue is empty.
const IDLE: Duration = Duration::from_millis(2);

/// Serves one capture on `conn`; the returned response closes it.
pub(super) fn serve(live: &Live, req: CaptureRequest, conn: &UnixStream) -> Response {
    let snap = live.published.load();
    let port = match where_on(&snap, req.interface.as_deref(), req.vlan) {
        Ok(p) => p,
        Err(why) => return refused(why),
    };
    if req.count == Some(0) || req.duration_ms == Some(0) {
        return refused("a capture of no frames or no time captures nothing");
    }
    let duration = req
        .duration_ms
        .map_or(MAX_DURATION, Duration::from_millis)
        .min(MAX_DURATION);
    // No direction named: all of them, as tcpdump shows everything.
    let all = !(req.rx || req.tx || req.drops);
    let filter = Filter {
        port,
        vlan: req.vlan,
        rx: req.rx || all,
        tx: req.tx || all,
        drops: req.drops || all,
    };
    let reader = {
        let rt = lock(&live.runtime);
        let Some(rt) = rt.as_ref() else {
            return refused("the data plane is stopping");
        };
        match rt.tap().start(filter, rt.workers(), QUEUE_DEPTH) {
            Ok(r) => r,
            Err(e) => return refused(e.to_string()),
        }
    };
    let start = Start {
        ports: snap.ports().iter().map(|p| p.name.clone()).collect(),
    };
    // A capture may run for an hour: it must not keep these tables alive past a change.
    drop(snap);
    let first = match serde_json::to_string(&start) {
        Ok(text) => ok(text),
        Err(e) => return refused(format!("cannot encode the capture start: {e}")),
    };
    let mut w = std::io::BufWriter::with_capacity(1 << 20, conn);
    if write_line(&mut w, &first).and_then(|()| w.flush()).is_err() {
        return refused("the client went away");
    }
    let t0 = Instant::now();
    let mut summary = Summary::default();
    let mut heartbeat = t0;
    let limit = req.count.unwrap_or(u64::MAX);
    let mut written = 0u64;
    let ended_by = 'capture: loop {
        let mut took = 0;
        for q in &reader.queues {
            while let Ok(c) = q.try_recv() {
                took += 1;
                if write_record(&mut w, &c).is_err() {
                    // The client is gone: nobody to answer.
                    return refused("the client went away");
                }
                summary.written[c.direction.slot()] += 1;
                written += 1;
                if written >= limit {
                    break 'capture "count";
                }
            }
        }
        if t0.elapsed() >= duration {
            break "duration";
        }
        if took == 0 {
            if w.flush().is_err() {
                return refused("the client went away");
            }
            if heartbeat.elapsed() >= Duration::from_secs(1) {
                heartbeat = Instant::now();
                if w.write_all(&Header::bare(Kind::Heartbeat).encode())
                    .and_then(|()| w.flush())
                    .is_err()
                {
                    return refused("the client went away");
                }
            }
            std::thread::sleep(IDLE);
        }
    };
    summary.seconds = t0.elapsed().as_secs_f64();
    let capture = reader.capture.clone();
    drop(reader); // the workers stop offering at their next iteration
    let (queued, missed) = capture.counts.read();
    summary.not_written = std::array::from_fn(|d| queued[d].saturating_sub(summary.written[d]));
    summary.missed = missed;
    summary.ended_by = ended_by.to_string();
    if w.write_all(&Header::bare(Kind::End).encode())
        .and_then(|()| w.flush())
        .is_err()
    {
        return refused("the client went away");
    }
    match serde_json::to_string(&summary) {
        Ok(text) => ok(text),
        Err(e) => refused(format!("cannot encode the capture summary: {e}")),
    }
}

/// The port of a capture's or trace's `--interface`, once its `--vlan` is checked too; the
/// refusal's sentence otherwise.
pub(super) fn where_on(
    snap: &Snapshot,
    interface: Option<&str>,
    vlan: Option<u16>,
) -> Result<Option<PortId>, String> {
    if let Some(v) = vlan {
        if !(1..=4094).contains(&v) {
            return Err(format!("VLAN {v} is not a VLAN id (1-4094)"));
        }
    }
    let Some(name) = interface else {
        return Ok(None);
    };
    snap.port_by_name(name).map(Some).ok_or_else(|| {
        let names: Vec<&str> = snap.ports().iter().map(|p| p.name.as_str()).collect();
        format!(
            "no interface named \"{name}\" (running: {})",
            names.join(", ")
        )
    })
}

fn write_record(w: &mut impl Write, c: &Captured) -> std::io::Result<()> {
    let (kind, reason) = match c.direction {
        Direction::Rx => (Kind::Rx, 0),
        Direction::Tx => (Kind::Tx, 0),
        Direction::Drop(r) => (Kind::Drop, r as u8),
    };
    let h = Header {
        kind,
        reason,
        port: c.port.0,
        time_ns: c.time_ns,
        len: c.data.len() as u32,
    };
    debug_assert_eq!(h.encode().len(), HEADER);
    w.write_all(&h.encode())?;
    w.write_all(&c.data)
}

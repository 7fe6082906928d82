//! The route feed: every route change (`route add|del`, `route load`, a route stream, and a
//! routing daemon's feed) goes through one committer thread, which coalesces what arrives
//! together into one batch: one RIB commit and one published snapshot.
//!
//! The committer takes the first request waiting, then every other one already queued (up to
//! [`MAX_BATCH_BYTES`] of route text and [`MAX_BATCH_REQUESTS`] requests), stages each in
//! turn against the tables as the ones before it left them, and publishes once. So a burst
//! is published every few milliseconds, as fast as batches apply, rather than once per
//! change; and there is no timer: a change that arrives alone is published at once. A change
//! waits at most for the batch being applied when it arrived and then its own.
//!
//! Each request keeps its own answer: with [`Mode::All`] a request whose change does not
//! check is refused whole while the others of its batch go on; a stream's chunk stops at its
//! first error ([`Mode::UpToError`]).

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use xpe_dataplane::tables::{IpPrefix, LabelStack, VrfId};

use std::io::{BufRead, Read};

use super::routes::{Applied, Batch, BgpChange, Mode, Refused, MAX_ERRORS};
use super::server::{AckSink, StreamInput, STREAM_BUFFER};
use super::{edit, lock, ok, refused, Live};
use crate::ctl::{Response, StreamAck};
use crate::routefile::{self, RouteLine};

/// Route text one batch takes in at most, besides its first request (whatever its size).
pub(super) const MAX_BATCH_BYTES: usize = 4 << 20;
/// Requests one batch takes in at most.
pub(super) const MAX_BATCH_REQUESTS: usize = 256;

/// The changes of one request.
pub(super) enum Input {
    /// Lines of the route file format, the first numbered `first_line`.
    Text { text: String, first_line: usize },
    /// One change (`route add|del`).
    One {
        vrf: String,
        prefix: IpPrefix,
        next: Option<(IpAddr, LabelStack)>,
    },
    /// BGP's changes ([`super::bgp`]).
    Bgp(Vec<BgpChange>),
}

impl Input {
    fn bytes(&self) -> usize {
        match self {
            Input::Text { text, .. } => text.len(),
            Input::One { .. } => 64,
            Input::Bgp(changes) => 64 * changes.len(),
        }
    }
}

/// One request to the committer.
pub(super) struct Job {
    pub input: Input,
    /// Where the lines came from, for errors (`routes.txt`; empty for `route add`).
    pub origin: String,
    pub mode: Mode,
    pub reply: Sender<Outcome>,
    /// When it was handed over: publish latency counts from here.
    pub queued: Instant,
}

/// What became of a request.
#[derive(Debug, Default)]
pub(super) struct Outcome {
    /// What was applied (all zero when refused whole).
    pub applied: Applied,
    /// The number of the last line applied, if any (text input).
    pub through: Option<usize>,
    /// Why (some of) it was refused.
    pub refused: Option<Refused>,
    /// Malformed lines: (line number, error), refused before any check.
    pub malformed: Vec<String>,
    /// From handing over to published (or refused).
    pub latency: Duration,
    /// Requests in the batch it was published with (it counts).
    pub batch_requests: usize,
    /// Routes of the changed VRF after the batch (single changes).
    pub vrf_routes: usize,
    /// VRFs whose tables the batch changed.
    pub vrfs: usize,
    /// BGP routes that did not resolve, and why.
    pub unresolved: Vec<(VrfId, IpPrefix, String)>,
}

/// The committer's queue; cloned by every connection that changes routes.
#[derive(Clone)]
pub(super) struct Feed {
    tx: Sender<Job>,
}

impl Feed {
    /// The queue, and its end for [`start`].
    pub(super) fn new() -> (Feed, Receiver<Job>) {
        let (tx, rx) = crossbeam_channel::unbounded();
        (Feed { tx }, rx)
    }

    /// Hands `input` over and waits for its outcome.
    pub(super) fn submit(&self, input: Input, origin: &str, mode: Mode) -> Outcome {
        let (reply, outcome) = crossbeam_channel::bounded(1);
        let job = Job {
            input,
            origin: origin.to_string(),
            mode,
            reply,
            queued: Instant::now(),
        };
        let gone = || Outcome {
            refused: Some(Refused {
                errors: vec!["the route committer has stopped (xpe is shutting down)".into()],
                more: 0,
            }),
            ..Outcome::default()
        };
        if self.tx.send(job).is_err() {
            return gone();
        }
        outcome.recv().unwrap_or_else(|_| gone())
    }
}

/// Starts the committer thread on `live`'s state, taking jobs from `rx`.
pub(super) fn start(
    live: Arc<Live>,
    rx: Receiver<Job>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("xpe-committer".into())
        .spawn(move || commit_loop(&live, &rx))
}

/// Takes batches off the queue until xpe stops.
fn commit_loop(live: &Live, rx: &Receiver<Job>) {
    while !live.stop.load(Ordering::Relaxed) {
        let Ok(first) = rx.recv_timeout(Duration::from_millis(200)) else {
            continue;
        };
        let mut jobs = vec![first];
        let mut bytes = 0;
        while jobs.len() < MAX_BATCH_REQUESTS && bytes < MAX_BATCH_BYTES {
            match rx.try_recv() {
                Ok(job) => {
                    bytes += job.input.bytes();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        commit(live, jobs);
    }
}

/// Stages every job of a batch, publishes once, and answers each.
fn commit(live: &Live, jobs: Vec<Job>) {
    let requests = jobs.len();
    // Route text is parsed before the state lock is taken: a million lines take a few
    // hundred milliseconds that `show` need not wait for.
    let parsed: Vec<Option<(Vec<RouteLine<'_>>, Vec<String>)>> = jobs
        .iter()
        .map(|job| match &job.input {
            Input::Text { text, first_line } => {
                Some(parse(text, *first_line, job.mode, &job.origin))
            }
            Input::One { .. } | Input::Bgp(_) => None,
        })
        .collect();
    let mut st = lock(&live.state);
    let mut batch = Batch::new(&st);
    let mut outcomes = Vec::with_capacity(jobs.len());
    let mut changes = 0;
    for (job, parsed) in jobs.iter().zip(parsed) {
        let mut outcome = Outcome::default();
        match &job.input {
            Input::Text { .. } => {
                let (lines, malformed) = parsed.unwrap_or_default();
                outcome.malformed = malformed;
                if outcome.malformed.is_empty() || job.mode == Mode::UpToError {
                    let staged = batch.stage(&mut st, &lines, &job.origin, job.mode);
                    outcome.applied = staged.applied;
                    outcome.through = staged.lines.checked_sub(1).map(|i| lines[i].line);
                    outcome.refused = staged.refused;
                    changes += staged.lines;
                }
            }
            Input::One { vrf, prefix, next } => {
                let line = RouteLine {
                    line: 1,
                    vrf,
                    prefix: *prefix,
                    next: *next,
                };
                let staged = batch.stage(&mut st, &[line], "", Mode::All);
                outcome.applied = staged.applied;
                outcome.refused = staged.refused;
                changes += staged.lines;
            }
            Input::Bgp(bgp) => {
                let (applied, unresolved) = batch.stage_bgp(&mut st, bgp);
                outcome.applied = applied;
                outcome.unresolved = unresolved;
                changes += bgp.len();
            }
        }
        outcomes.push(outcome);
    }
    let finished = if changes > 0 {
        batch.finish(&mut st).inspect(|_| edit::publish(live, &st))
    } else {
        Ok(0)
    };
    for (job, mut outcome) in jobs.into_iter().zip(outcomes) {
        match &finished {
            Ok(vrfs) => outcome.vrfs = *vrfs,
            Err(e) if outcome.refused.is_none() && outcome.malformed.is_empty() => {
                outcome.applied = Applied::default();
                outcome.through = None;
                outcome.refused = Some(Refused {
                    errors: vec![e.clone()],
                    more: 0,
                });
            }
            Err(_) => {}
        }
        if let Input::One { vrf, .. } = &job.input {
            outcome.vrf_routes = st
                .rib
                .len(st.base.vrf_by_name(vrf).unwrap_or(VrfId::GLOBAL));
        }
        outcome.latency = job.queued.elapsed();
        outcome.batch_requests = requests;
        // A client that went away does not take its answer; the others still get theirs.
        let _client_gone = job.reply.send(outcome);
    }
}

/// Parses a chunk of route text numbered from `first_line`: the lines, and the malformed
/// ones as sentences naming `origin` and the line. With `Mode::UpToError` only the lines
/// before the first malformed one.
fn parse<'t>(
    text: &'t str,
    first_line: usize,
    mode: Mode,
    origin: &str,
) -> (Vec<RouteLine<'t>>, Vec<String>) {
    let offset = first_line - 1;
    match routefile::parse(text, MAX_ERRORS) {
        Ok(mut lines) => {
            for l in &mut lines {
                l.line += offset;
            }
            (lines, Vec::new())
        }
        Err(errors) => {
            let malformed: Vec<String> = errors
                .iter()
                .map(|e| format!("{origin}:{}: {}", e.line + offset, e.error))
                .collect();
            if mode == Mode::All {
                return (Vec::new(), malformed);
            }
            // Up to the first malformed line: parse what precedes it.
            let first_bad = errors.first().map_or(usize::MAX, |e| e.line);
            let before: usize = text
                .split_inclusive('\n')
                .take(first_bad - 1)
                .map(str::len)
                .sum();
            let mut lines = routefile::parse(&text[..before], MAX_ERRORS).unwrap_or_default();
            for l in &mut lines {
                l.line += offset;
            }
            (lines, malformed.into_iter().take(1).collect())
        }
    }
}

/// The longest line a stream takes: far more than any route needs, and a bound on what a
/// client without newlines makes the daemon hold.
const MAX_LINE: usize = 4096;

/// Serves a route stream: reads lines as they arrive and hands over, as one chunk, the
/// complete lines already received (at least one, waited for, and at most
/// [`STREAM_BUFFER`] bytes), so what arrives while one chunk is published becomes the next.
/// Each chunk is staged up to its first bad line ([`Mode::UpToError`]) and acknowledged once
/// published; the stream ends at the client's end of input, or at the first bad line,
/// which is refused with its number while everything before it stays applied.
pub(super) fn stream(
    live: &Live,
    origin: &str,
    input: &mut StreamInput,
    ack: &mut AckSink<'_>,
) -> Response {
    let mut next_line = 1;
    let (mut added, mut removed, mut chunks) = (0u64, 0u64, 0u64);
    let mut latencies: Vec<f64> = Vec::new();
    let summary = |added: u64, removed: u64, chunks: u64| {
        format!("{added} routes added or replaced, {removed} removed, in {chunks} chunk(s)")
    };
    loop {
        let first_line = next_line;
        let mut text = String::new();
        // One line, waited for; then every complete line already here, without waiting.
        let mut lines = 0;
        loop {
            match read_line(input, &mut text) {
                Ok(true) => lines += 1,
                Ok(false) => break,
                Err(e) => {
                    return refused(format!(
                        "{origin}:{}: {e}\nstream closed; before it: {}, all published",
                        first_line + lines,
                        summary(added, removed, chunks)
                    ))
                }
            }
            if text.len() >= STREAM_BUFFER || !input.buffer().contains(&b'\n') {
                break;
            }
        }
        if lines == 0 {
            let took = if latencies.is_empty() {
                String::new()
            } else {
                latencies.sort_by(f64::total_cmp);
                format!(
                    "; publish latency p50 {:.3} ms, max {:.3} ms",
                    latencies[latencies.len() / 2],
                    latencies[latencies.len() - 1]
                )
            };
            return ok(format!(
                "streamed {origin}: {} lines, {}{took}",
                next_line - 1,
                summary(added, removed, chunks)
            ));
        }
        next_line += lines;
        let out = live
            .feed
            .submit(Input::Text { text, first_line }, origin, Mode::UpToError);
        added += out.applied.added as u64;
        removed += out.applied.removed as u64;
        if let Some(through) = out.through {
            chunks += 1;
            let latency_ms = out.latency.as_secs_f64() * 1e3;
            latencies.push(latency_ms);
            let sent = ack(&StreamAck {
                through: through as u64,
                added: out.applied.added as u64,
                removed: out.applied.removed as u64,
                latency_ms,
                batch_requests: out.batch_requests as u64,
            });
            if let Err(e) = sent {
                return refused(format!("cannot acknowledge: {e}"));
            }
        }
        let error = out
            .malformed
            .first()
            .cloned()
            .or_else(|| out.refused.map(|r| r.text()));
        if let Some(error) = error {
            return refused(format!(
                "{error}\nstream stopped there; before it: {}, all published; the rest was not read",
                summary(added, removed, chunks)
            ));
        }
    }
}

/// Appends one line of at most [`MAX_LINE`] bytes to `text`: false at the end of input.
fn read_line(input: &mut StreamInput, text: &mut String) -> Result<bool, String> {
    let mut line = Vec::new();
    let n = input
        .by_ref()
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', &mut line)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                format!(
                    "nothing arrived for {} s",
                    super::server::Limits::DAEMON.stream_idle.as_secs()
                )
            }
            _ => format!("cannot read the stream: {e}"),
        })?;
    if n == 0 {
        return Ok(false);
    }
    if n > MAX_LINE {
        return Err(format!("the line is longer than {MAX_LINE} bytes"));
    }
    let line = std::str::from_utf8(&line).map_err(|_| "the line is not UTF-8".to_string())?;
    text.push_str(line);
    if !line.ends_with('\n') {
        // The last line without its newline: the next one must not run into it.
        text.push('\n');
    }
    Ok(true)
}

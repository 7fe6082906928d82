//! The control socket server: one JSON request per connection, one JSON response back, and
//! no client can hold up another.
//!
//! The accepting thread never reads or waits for a client: each connection gets a thread of
//! its own, up to [`Limits::max_connections`] at once (beyond that a connection gets a
//! one-line refusal and is closed). A connection has [`Limits::read_idle`] between bytes and
//! [`Limits::read_total`] in all to deliver its request, of at most
//! [`Limits::max_request`] bytes; a request that is late, too large, not JSON or of an
//! unknown kind gets a one-line error and the connection is closed, and the server goes on.
//! Writes give up when the client has not taken anything for [`Limits::write`].
//!
//! Requests that change the tables still take turns on the state lock: concurrency here is
//! about clients that are slow or silent, not about parallel edits.

use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::ctl::{CaptureRequest, Request, Response, StreamAck, TraceRequest};

/// What the server allows one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Connections served at once; more are refused.
    pub max_connections: usize,
    /// The largest request, in bytes (its closing newline not counted).
    pub max_request: usize,
    /// How long a client may send nothing before its request is given up.
    pub read_idle: Duration,
    /// How long a whole request may take to arrive.
    pub read_total: Duration,
    /// How long a client may take nothing of its response before it is dropped.
    pub write: Duration,
    /// How long a route stream may send nothing before it is closed (a quiet feed sends a
    /// comment line now and then).
    pub stream_idle: Duration,
}

impl Limits {
    /// The daemon's limits. `xpe apply` sends the whole config as one JSON string: a
    /// million-route config is about 83 MB of TOML and 92 MB as a request, so 128 MiB leaves
    /// room and still bounds what a broken client makes the daemon hold. Over a local socket
    /// such a request arrives in well under a second, so 30 s in all is generous.
    pub(crate) const DAEMON: Limits = Limits {
        max_connections: 64,
        max_request: 128 << 20,
        read_idle: Duration::from_secs(5),
        read_total: Duration::from_secs(30),
        write: Duration::from_secs(5),
        stream_idle: Duration::from_secs(60),
    };
}

/// What carries out a request that arrived whole and parsed.
pub(crate) type Handler = dyn Fn(Request) -> Response + Send + Sync;

/// What reads a route stream: the bytes after its request line, then the connection (with
/// [`Limits::stream_idle`] as its read timeout).
pub(crate) type StreamInput = io::BufReader<io::Chain<io::Cursor<Vec<u8>>, UnixStream>>;

/// Sends one acknowledgement line of a stream.
pub(crate) type AckSink<'a> = dyn FnMut(&StreamAck) -> io::Result<()> + 'a;

/// What serves a route stream (`Request::RouteStream`): reads its lines from the input,
/// acknowledges what it published, and returns the closing response.
pub(crate) type StreamHandler =
    dyn Fn(&str, &mut StreamInput, &mut AckSink<'_>) -> Response + Send + Sync;

/// What serves a capture (`Request::Capture`): writes its start line and records to the
/// connection and returns the closing response.
pub(crate) type CaptureHandler = dyn Fn(CaptureRequest, &UnixStream) -> Response + Send + Sync;

/// What serves a live trace (`Request::Trace`), in the same way.
pub(crate) type TraceHandler = dyn Fn(TraceRequest, &UnixStream) -> Response + Send + Sync;

/// What serves the connections that watch the workers: captures and live traces.
#[derive(Clone)]
pub(crate) struct Taps {
    /// Captures.
    pub capture: Arc<CaptureHandler>,
    /// Live traces.
    pub trace: Arc<TraceHandler>,
}

/// Bytes a route stream reads ahead: what arrived while the previous chunk was published
/// becomes the next chunk, up to this much.
pub(crate) const STREAM_BUFFER: usize = 1 << 20;

/// Why a request could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RequestError {
    /// More bytes than [`Limits::max_request`] without the end of the request.
    #[error("the request is larger than the control socket's limit of {}", crate::show::bytes(*.limit))]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// Nothing arrived for [`Limits::read_idle`].
    #[error("no request: nothing arrived for {} s; connection closed", .after.as_secs_f64())]
    Idle {
        /// How long the client was silent.
        after: Duration,
    },
    /// The request did not arrive whole within [`Limits::read_total`].
    #[error("the request did not arrive whole within {} s; connection closed", .after.as_secs_f64())]
    Late {
        /// The limit.
        after: Duration,
    },
    /// The socket failed.
    #[error("cannot read the request: {0}")]
    Read(#[source] io::Error),
}

/// The running server: its accepting thread and how to stop it.
pub(crate) struct Server {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Server {
    /// Starts accepting on `listener` (bound at `path`), answering with `handler`.
    /// `streams` serves route streams and `taps` captures and live traces (without them
    /// they are refused).
    pub(crate) fn start(
        listener: UnixListener,
        path: &Path,
        limits: Limits,
        handler: Arc<Handler>,
        streams: Option<Arc<StreamHandler>>,
        taps: Option<Taps>,
    ) -> io::Result<Server> {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            let handlers = Handlers {
                handler,
                streams,
                taps,
            };
            std::thread::Builder::new()
                .name("xpe-control".into())
                .spawn(move || accept_loop(&listener, limits, &stop, &handlers))?
        };
        Ok(Server {
            path: path.to_path_buf(),
            stop,
            thread,
        })
    }

    /// Stops accepting and waits for the accepting thread; call it before the socket file
    /// is removed. Connections being served finish on their own threads (their timeouts
    /// bound them), or end with the process.
    pub(crate) fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        // The accepting thread blocks in accept(): a connection wakes it to see the flag.
        // Without one (the file gone, say) waiting for it would hang, so it is left.
        if UnixStream::connect(&self.path).is_ok() && self.thread.join().is_err() {
            eprintln!("xpe: the control thread panicked");
        }
    }
}

/// The request and stream handlers, shared by every connection thread.
#[derive(Clone)]
struct Handlers {
    handler: Arc<Handler>,
    streams: Option<Arc<StreamHandler>>,
    taps: Option<Taps>,
}

fn accept_loop(listener: &UnixListener, limits: Limits, stop: &AtomicBool, handlers: &Handlers) {
    let active = Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        // accept() fails for reasons of the one connection (it went away, or the process
        // is out of descriptors for a moment); the next may do better.
        let Ok(conn) = conn else { continue };
        if active.fetch_add(1, Ordering::AcqRel) >= limits.max_connections {
            active.fetch_sub(1, Ordering::AcqRel);
            refuse_now(
                conn,
                &format!(
                    "the control socket is serving {} connections already; try again",
                    limits.max_connections
                ),
            );
            continue;
        }
        let slot = Slot(active.clone());
        let handlers = handlers.clone();
        let spawned = std::thread::Builder::new()
            .name("xpe-control-conn".into())
            .spawn(move || {
                let _slot = slot;
                serve_one(conn, limits, &handlers);
            });
        if let Err(e) = spawned {
            // The closure (connection and slot) is dropped with the error: nothing to
            // answer on, and the slot is given back.
            eprintln!("xpe: cannot start a control connection thread: {e}");
        }
    }
}

/// A place among the connections served at once, given back on drop.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Refuses a connection from the accepting thread, which must not wait on any client: a new
/// socket's send buffer is empty, so a non-blocking write of one line goes through unless
/// the client is already gone.
fn refuse_now(mut conn: UnixStream, why: &str) {
    if conn.set_nonblocking(true).is_ok() {
        let _client_gone_or_full = conn.write_all(&response_line(&refused(why)));
    }
}

/// Reads one request, has it carried out and writes the response.
fn serve_one(mut conn: UnixStream, limits: Limits, handlers: &Handlers) {
    let response = match read_request(&conn, &limits) {
        Ok((bytes, rest)) => match serde_json::from_slice::<Request>(&bytes) {
            Ok(Request::RouteStream { origin }) => match &handlers.streams {
                Some(streams) => serve_stream(&conn, limits, rest, &origin, &**streams),
                None => refused("this server takes no route streams"),
            },
            // Records are written as they come; a client that takes nothing for the write
            // limit is given up.
            Ok(Request::Capture(req)) => match &handlers.taps {
                Some(taps) => match conn.set_write_timeout(Some(limits.write)) {
                    Ok(()) => (taps.capture)(req, &conn),
                    Err(e) => refused(format!("cannot serve the capture: {e}")),
                },
                None => refused("this server takes no captures"),
            },
            Ok(Request::Trace(req)) => match &handlers.taps {
                Some(taps) => match conn.set_write_timeout(Some(limits.write)) {
                    Ok(()) => (taps.trace)(req, &conn),
                    Err(e) => refused(format!("cannot serve the trace: {e}")),
                },
                None => refused("this server takes no live traces"),
            },
            Ok(req) => (handlers.handler)(req),
            Err(e) => refused(format!("not a valid request: {e}")),
        },
        Err(e) => refused(e.to_string()),
    };
    // A client that went away, or stopped reading, misses its answer; the server carries on.
    if conn.set_write_timeout(Some(limits.write)).is_ok() {
        let _client_gone = conn.write_all(&response_line(&response));
    }
}

/// Serves a route stream on `conn`: `rest` is what arrived after the request line.
fn serve_stream(
    conn: &UnixStream,
    limits: Limits,
    rest: Vec<u8>,
    origin: &str,
    streams: &StreamHandler,
) -> Response {
    // The input owns a handle of its own (the reader's type is named in `StreamInput`);
    // acknowledgements are written through `conn`.
    let reader = match conn.try_clone() {
        Ok(r) => r,
        Err(e) => return refused(format!("cannot serve the stream: {e}")),
    };
    if let Err(e) = reader
        .set_read_timeout(Some(limits.stream_idle))
        .and_then(|()| conn.set_write_timeout(Some(limits.write)))
    {
        return refused(format!("cannot serve the stream: {e}"));
    }
    let mut input =
        io::BufReader::with_capacity(STREAM_BUFFER, io::Cursor::new(rest).chain(reader));
    let mut ack = |a: &StreamAck| -> io::Result<()> { write_line(&mut &*conn, a) };
    streams(origin, &mut input, &mut ack)
}

/// Reads up to the first newline (or the end of the stream), within the limits; the request
/// and what arrived after its newline.
fn read_request(
    mut conn: &UnixStream,
    limits: &Limits,
) -> Result<(Vec<u8>, Vec<u8>), RequestError> {
    let started = Instant::now();
    let mut request = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        let left = limits.read_total.saturating_sub(started.elapsed());
        if left.is_zero() {
            return Err(RequestError::Late {
                after: limits.read_total,
            });
        }
        conn.set_read_timeout(Some(left.min(limits.read_idle)))
            .map_err(RequestError::Read)?;
        let n = match conn.read(&mut chunk) {
            Ok(0) => return Ok((request, Vec::new())),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(if started.elapsed() >= limits.read_total {
                    RequestError::Late {
                        after: limits.read_total,
                    }
                } else {
                    RequestError::Idle {
                        after: limits.read_idle,
                    }
                });
            }
            Err(e) => return Err(RequestError::Read(e)),
        };
        // Only what belongs to the request is kept, and never more than the limit.
        let end = chunk[..n].iter().position(|&b| b == b'\n');
        let take = end.unwrap_or(n);
        if request.len() + take > limits.max_request {
            return Err(RequestError::TooLarge {
                limit: limits.max_request,
            });
        }
        request.extend_from_slice(&chunk[..take]);
        if let Some(end) = end {
            return Ok((request, chunk[end + 1..n].to_vec()));
        }
    }
}

fn refused(text: impl Into<String>) -> Response {
    Response {
        ok: false,
        text: text.into(),
    }
}

/// Writes `v` as one line of JSON: the acknowledgements of a route stream, and what a
/// capture or live trace sends besides its records.
pub(crate) fn write_line<T: serde::Serialize>(w: &mut impl Write, v: &T) -> io::Result<()> {
    let mut line = serde_json::to_vec(v).map_err(io::Error::other)?;
    line.push(b'\n');
    w.write_all(&line)
}

/// A response as one line: JSON escapes the newlines inside its text.
fn response_line(response: &Response) -> Vec<u8> {
    // A bool and a string always encode; the fallback only keeps this free of a panic.
    let mut body = serde_json::to_vec(response)
        .unwrap_or_else(|_| br#"{"ok":false,"text":"cannot encode the response"}"#.to_vec());
    body.push(b'\n');
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctl::{call, What};

    /// A server on a socket in a fresh temporary directory, removed on drop.
    struct Fixture {
        dir: PathBuf,
        path: PathBuf,
        server: Option<Server>,
    }

    impl Fixture {
        fn new(name: &str, limits: Limits, handler: Arc<Handler>) -> Fixture {
            let dir =
                std::env::temp_dir().join(format!("xpe-server-{}-{name}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("ctl.sock");
            let _stale = std::fs::remove_file(&path);
            let listener = UnixListener::bind(&path).unwrap();
            let server = Server::start(listener, &path, limits, handler, None, None).unwrap();
            Fixture {
                dir,
                path,
                server: Some(server),
            }
        }

        /// Sends raw bytes, then reads everything the server answers.
        fn raw(&self, bytes: &[u8]) -> String {
            let mut c = UnixStream::connect(&self.path).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let _refused_early = c.write_all(bytes);
            let _already_closed = c.shutdown(std::net::Shutdown::Write);
            let mut answer = Vec::new();
            let _reset_after_the_answer = c.read_to_end(&mut answer);
            String::from_utf8(answer).unwrap()
        }

        fn show(&self) -> Response {
            let show = Request::Show {
                what: What::Counters,
                name: None,
                json: false,
            };
            call(&self.path, &show).unwrap()
        }
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            if let Some(s) = self.server.take() {
                s.stop();
            }
            let _best_effort = std::fs::remove_dir_all(&self.dir);
        }
    }

    const SMALL: Limits = Limits {
        max_connections: 4,
        max_request: 1024,
        read_idle: Duration::from_millis(300),
        read_total: Duration::from_secs(2),
        write: Duration::from_secs(2),
        stream_idle: Duration::from_millis(300),
    };

    fn echo() -> Arc<Handler> {
        Arc::new(|req| Response {
            ok: true,
            text: format!("{req:?}"),
        })
    }

    /// One line of JSON that is a refusal; returns its text.
    fn refusal(answer: &str) -> String {
        assert!(
            answer.ends_with('\n') && answer.trim_end().lines().count() == 1,
            "not one line: {answer:?}"
        );
        let r: Response = serde_json::from_str(answer).unwrap();
        assert!(!r.ok, "{answer}");
        r.text
    }

    #[test]
    fn an_idle_client_holds_up_no_one_and_is_closed_after_its_silence() {
        let f = Fixture::new("idle", SMALL, echo());
        let mut idle = UnixStream::connect(&f.path).unwrap();
        let t0 = Instant::now();
        let r = f.show();
        assert!(r.ok && r.text.starts_with("Show"), "{r:?}");
        assert!(t0.elapsed() < SMALL.read_idle, "{:?}", t0.elapsed());
        idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut answer = String::new();
        idle.read_to_string(&mut answer).unwrap();
        assert!(
            refusal(&answer).contains("nothing arrived for 0.3 s"),
            "{answer}"
        );
        assert!(t0.elapsed() >= SMALL.read_idle);
    }

    #[test]
    fn garbage_unknown_and_oversized_requests_get_one_line_and_the_server_goes_on() {
        let f = Fixture::new("bad", SMALL, echo());
        assert!(refusal(&f.raw(b"hello\n")).starts_with("not a valid request"));
        let unknown = refusal(&f.raw(b"{\"op\":\"reboot\"}\n"));
        assert!(unknown.contains("unknown variant `reboot`"), "{unknown}");
        // Without a newline, and far past the limit: refused when the limit is crossed.
        let big = refusal(&f.raw(&[b'x'; 64 << 10]));
        assert!(
            big.contains("larger than the control socket's limit of 1.0 KiB"),
            "{big}"
        );
        // The client sees the refusal even though the server closed while it was writing.
        let apply = Request::Apply {
            config: "#".repeat(1 << 20),
            origin: "big.toml".into(),
        };
        let r = call(&f.path, &apply).unwrap();
        assert!(!r.ok && r.text.contains("larger than"), "{r:?}");
        // A request ends at its newline; what follows is not read.
        let r: Response =
            serde_json::from_str(&f.raw(b"{\"op\":\"label-del\",\"in_label\":16}\ntrailing bytes"))
                .unwrap();
        assert!(r.ok && r.text.contains("LabelDel"), "{r:?}");
        assert!(f.show().ok);
    }

    #[test]
    fn a_request_that_trickles_in_is_cut_off_at_the_total_limit() {
        let limits = Limits {
            read_total: Duration::from_millis(600),
            ..SMALL
        };
        let f = Fixture::new("slow", limits, echo());
        let mut c = UnixStream::connect(&f.path).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let t0 = Instant::now();
        // A byte every 100 ms: never silent for the idle limit, never done.
        while t0.elapsed() < Duration::from_secs(2) {
            if c.write_all(b" ").is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut answer = String::new();
        let _reset_after_the_answer = c.read_to_string(&mut answer);
        assert!(
            refusal(&answer).contains("did not arrive whole within 0.6 s"),
            "{answer}"
        );
    }

    #[test]
    fn connections_beyond_the_limit_are_refused_at_once() {
        let limits = Limits {
            max_connections: 2,
            ..SMALL
        };
        let entered = Arc::new(AtomicUsize::new(0));
        let hold = Arc::new(AtomicBool::new(true));
        let handler: Arc<Handler> = {
            let (entered, hold) = (entered.clone(), hold.clone());
            Arc::new(move |req| {
                if matches!(req, Request::LabelDel { .. }) {
                    entered.fetch_add(1, Ordering::SeqCst);
                    while hold.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
                Response {
                    ok: true,
                    text: "done".into(),
                }
            })
        };
        let f = Fixture::new("busy", limits, handler);
        let busy: Vec<_> = (0..2)
            .map(|_| {
                let path = f.path.clone();
                std::thread::spawn(move || call(&path, &Request::LabelDel { in_label: 16 }))
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(5);
        while entered.load(Ordering::SeqCst) < 2 {
            assert!(Instant::now() < deadline, "the two requests never arrived");
            std::thread::sleep(Duration::from_millis(5));
        }
        let t0 = Instant::now();
        let third = refusal(&f.raw(b"{\"op\":\"label-del\",\"in_label\":17}\n"));
        assert!(third.contains("serving 2 connections already"), "{third}");
        assert!(t0.elapsed() < Duration::from_secs(1));
        hold.store(false, Ordering::SeqCst);
        for b in busy {
            assert!(b.join().unwrap().unwrap().ok);
        }
        // The places are given back.
        assert!(f.show().ok);
        assert!(f.show().ok);
    }
}

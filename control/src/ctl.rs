//! The runtime control protocol between `xpe run` and the `xpe` commands that talk to it:
//! one JSON request per connection on a Unix socket (one line), one JSON response back (one
//! line). The server's limits are in `daemon::server`.
//!
//! The socket is mode 0600 in /run/xpe (root only): whoever can talk to it can rewrite the
//! forwarding tables.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::Failure;

/// Where control sockets live by default: `/run/xpe/ROUTER-NAME.sock`.
pub const SOCKET_DIR: &str = "/run/xpe";

/// How long a client waits for an answer (a 1M-route apply takes seconds).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

/// What `xpe show` asks a running instance for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum What {
    /// Interfaces, neighbours, labels and every VRF.
    All,
    /// Packet counters: per interface, per drop and punt reason.
    Counters,
    /// The MPLS forwarding table.
    Labels,
    /// One VRF's routes (name it).
    Vrf,
    /// Next hops and their MACs (static, learned, incomplete).
    Neighbors,
    /// Interfaces, their XDP mode, sockets and kernel counters.
    Interfaces,
    /// Per worker: packets, batches, busy cycles per packet.
    Runtime,
    /// BGP: each gobgpd, its sessions, and each VRF's routes.
    Bgp,
}

/// A request to a running instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Request {
    /// Show a table or counters.
    Show {
        /// Which.
        what: What,
        /// The VRF for [`What::Vrf`].
        name: Option<String>,
        /// JSON instead of text.
        json: bool,
    },
    /// Replace the whole config.
    Apply {
        /// The config text.
        config: String,
        /// Where it came from, for error messages.
        origin: String,
    },
    /// Add a static route, or replace the one with the same prefix.
    RouteAdd {
        /// VRF name; `None` for the global table.
        vrf: Option<String>,
        /// The prefix.
        prefix: String,
        /// The next hop.
        via: String,
        /// Labels to push, outermost first.
        labels: Vec<i64>,
    },
    /// Apply a route file (docs/routes.md): every change or none.
    RouteLoad {
        /// The file's text.
        routes: String,
        /// Where it came from, for error messages.
        origin: String,
    },
    /// Start a route stream: route file lines follow the request on the same connection
    /// until the client shuts its side down; each published batch is acknowledged with a
    /// [`StreamAck`] line, and a [`Response`] ends the stream (docs/routes.md).
    RouteStream {
        /// Where the lines come from, for error messages.
        origin: String,
    },
    /// Remove a static route.
    RouteDel {
        /// VRF name; `None` for the global table.
        vrf: Option<String>,
        /// The prefix.
        prefix: String,
    },
    /// Add an incoming label entry, or replace the one for the same label.
    LabelAdd {
        /// The incoming label.
        in_label: i64,
        /// `swap` or `pop`.
        action: String,
        /// Labels to swap in, outermost first.
        out: Vec<i64>,
        /// The next hop.
        via: String,
    },
    /// Remove an incoming label entry.
    LabelDel {
        /// The incoming label.
        in_label: i64,
    },
    /// Capture frames as the workers see them (`xpe capture`): a [`Response`] line (its
    /// text the interface names by port), then binary records until the end record, then
    /// the closing [`Response`] ([`crate::capture`] has the format).
    Capture(CaptureRequest),
    /// Trace the next frames that match, stage by stage (`xpe trace --live`): a
    /// [`Response`] line, then a [`TraceEvent`] line per traced frame (and a heartbeat each
    /// idle second), then the closing [`Response`].
    Trace(TraceRequest),
}

/// What `xpe trace --live` asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct TraceRequest {
    /// Only frames received on this interface.
    pub interface: Option<String>,
    /// Only frames whose outer 802.1Q tag has this VLAN id.
    pub vlan: Option<u16>,
    /// Only labelled frames with this top label.
    pub label: Option<u32>,
    /// Only IP packets to this prefix (under any labels).
    pub prefix: Option<String>,
    /// Frames to trace.
    pub count: u64,
    /// Give up after this many milliseconds.
    pub timeout_ms: u64,
    /// Each frame as a line of JSON ([`crate::api::TracedFrame`]) instead of text.
    pub json: bool,
}

/// One line of a live trace after its first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum TraceEvent {
    /// A traced frame, as text or JSON.
    Frame {
        /// What to print.
        text: String,
    },
    /// Nothing matched for a second: the daemon checks the client is still there.
    Heartbeat,
}

/// What `xpe capture` asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CaptureRequest {
    /// Only frames received on or sent out of this interface.
    pub interface: Option<String>,
    /// Only frames whose outer 802.1Q tag has this VLAN id.
    pub vlan: Option<u16>,
    /// Frames as received.
    pub rx: bool,
    /// Frames as sent.
    pub tx: bool,
    /// Frames dropped, with the reason.
    pub drops: bool,
    /// Stop after this many frames.
    pub count: Option<u64>,
    /// Stop after this many milliseconds.
    pub duration_ms: Option<u64>,
}

/// The answer: text to print, or an error sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// Whether the request was carried out.
    pub ok: bool,
    /// What to print (stdout when ok, stderr otherwise).
    pub text: String,
}

/// A route stream's acknowledgement of one published chunk: the lines up to `through`
/// are in the running tables.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StreamAck {
    /// The number of the last line applied, from 1 (comments and blank lines count).
    pub through: u64,
    /// Routes added or replaced by the chunk.
    pub added: u64,
    /// Routes removed by the chunk.
    pub removed: u64,
    /// From the chunk's arrival at the committer to its publication, in milliseconds.
    pub latency_ms: f64,
    /// Requests published in the same batch (the chunk counts).
    pub batch_requests: u64,
}

/// The socket path of a router name.
pub fn default_socket(router: &str) -> PathBuf {
    Path::new(SOCKET_DIR).join(format!("{router}.sock"))
}

/// The socket to talk to: the one given, or the only one in [`SOCKET_DIR`].
pub fn find_socket(given: Option<&Path>) -> Result<PathBuf, Failure> {
    if let Some(p) = given {
        return Ok(p.to_path_buf());
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(SOCKET_DIR)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "sock"))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    match found.len() {
        0 => Err(Failure::new(format!(
            "no running xpe: {SOCKET_DIR} has no control socket"
        ))
        .hint("start one with `xpe run CONFIG`, or pass --socket PATH")),
        1 => Ok(found.remove(0)),
        _ => Err(
            Failure::new("several xpe instances are running").hint(format!(
                "pass --socket with one of: {}",
                found
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        ),
    }
}

/// Sends `request` to the instance at `socket` and returns its answer.
pub fn call(socket: &Path, request: &Request) -> Result<Response, Failure> {
    // Encoded before connecting: the server gives a connection a few seconds of silence,
    // and encoding a million-route config takes a noticeable part of one.
    let mut body = serde_json::to_vec(request)
        .map_err(|e| Failure::new(format!("cannot encode the request: {e}")))?;
    body.push(b'\n');
    let mut stream = connect(socket)?;
    let io = |e: std::io::Error| Failure::new(format!("talking to {}: {e}", socket.display()));
    stream.set_read_timeout(Some(CLIENT_TIMEOUT)).map_err(io)?;
    // A server that refuses the request early (too large, too many connections) answers
    // and closes while we still write: the write fails, and the answer says why.
    let sent = stream
        .write_all(&body)
        .and_then(|()| stream.shutdown(std::net::Shutdown::Write));
    let mut answer = Vec::new();
    let read = stream.read_to_end(&mut answer);
    match serde_json::from_slice(&answer) {
        Ok(response) => Ok(response),
        Err(e) => {
            sent.map_err(io)?;
            read.map_err(io)?;
            Err(Failure::new(format!(
                "{} answered something that is not a response: {e}",
                socket.display()
            )))
        }
    }
}

/// Streams route lines from `input` to the daemon (`Request::RouteStream`): a thread sends
/// them as they come while this one reads the acknowledgements, handing each to `on_ack`,
/// until the closing [`Response`]. No read timeout: a stream may be quiet as long as its
/// source is (the daemon closes one that sends nothing for a minute).
pub fn stream(
    socket: &Path,
    origin: &str,
    mut input: Box<dyn Read + Send>,
    on_ack: &mut dyn FnMut(&StreamAck),
) -> Result<Response, Failure> {
    let mut header = serde_json::to_vec(&Request::RouteStream {
        origin: origin.to_string(),
    })
    .map_err(|e| Failure::new(format!("cannot encode the request: {e}")))?;
    header.push(b'\n');
    let conn = connect(socket)?;
    let io = |e: std::io::Error| Failure::new(format!("talking to {}: {e}", socket.display()));
    let mut writer = conn.try_clone().map_err(io)?;
    let sender = std::thread::spawn(move || -> std::io::Result<u64> {
        writer.write_all(&header)?;
        let sent = std::io::copy(&mut input, &mut writer)?;
        writer.shutdown(std::net::Shutdown::Write)?;
        Ok(sent)
    });
    let mut reader = std::io::BufReader::new(conn);
    let mut line = String::new();
    loop {
        line.clear();
        let n = std::io::BufRead::read_line(&mut reader, &mut line).map_err(io)?;
        if n == 0 {
            // The daemon closed without a last word: say what the sending side saw.
            let sent = sender.join();
            return Err(Failure::new(format!(
                "{} closed the stream without an answer{}",
                socket.display(),
                match sent {
                    Ok(Err(e)) => format!(" (sending: {e})"),
                    _ => String::new(),
                }
            )));
        }
        if let Ok(ack) = serde_json::from_str::<StreamAck>(&line) {
            on_ack(&ack);
            continue;
        }
        let response: Response = serde_json::from_str(&line).map_err(|e| {
            Failure::new(format!(
                "{} answered something that is not a response: {e}",
                socket.display()
            ))
        })?;
        // The sender ends with the input, or with an error once the daemon has closed (it
        // stops reading at the first bad line); it is not waited for, as an input that
        // never ends (a pipe from a feed) would keep it forever.
        drop(sender);
        return Ok(response);
    }
}

/// Connects to the control socket, with a hint when that fails.
/// Opens a connection that stays open after its request (a capture or a live trace): sends
/// `request` and returns the reader of what follows. Heartbeats come once a second, so ten
/// seconds of silence is a daemon gone.
pub(crate) fn open_watch(
    socket: &Path,
    request: &Request,
) -> Result<std::io::BufReader<UnixStream>, Failure> {
    let mut body = serde_json::to_vec(request)
        .map_err(|e| Failure::new(format!("cannot encode the request: {e}")))?;
    body.push(b'\n');
    let mut stream = connect(socket)?;
    let io = |e: std::io::Error| Failure::new(format!("talking to {}: {e}", socket.display()));
    stream.write_all(&body).map_err(io)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(io)?;
    Ok(std::io::BufReader::with_capacity(1 << 20, stream))
}

fn connect(socket: &Path) -> Result<UnixStream, Failure> {
    UnixStream::connect(socket).map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::PermissionDenied => "the control socket is root's: run with sudo",
            _ => "is `xpe run` running? pass --socket PATH if it uses another socket",
        };
        Failure::new(format!("cannot connect to {}: {e}", socket.display())).hint(hint)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_as_json() {
        let reqs = [
            Request::Show {
                what: What::Vrf,
                name: Some("vpc-a".into()),
                json: true,
            },
            Request::RouteAdd {
                vrf: None,
                prefix: "198.18.7.0/24".into(),
                via: "198.18.0.2".into(),
                labels: vec![16001],
            },
            Request::LabelDel { in_label: 16002 },
        ];
        for r in reqs {
            let text = serde_json::to_string(&r).unwrap();
            assert_eq!(serde_json::from_str::<Request>(&text).unwrap(), r);
        }
        assert!(serde_json::to_string(&Request::LabelDel { in_label: 1 })
            .unwrap()
            .contains("\"op\":\"label-del\""));
    }

    #[test]
    fn a_missing_socket_is_one_clear_sentence() {
        let e = call(
            Path::new("/nonexistent/xpe.sock"),
            &Request::LabelDel { in_label: 16 },
        )
        .unwrap_err();
        assert!(
            e.message
                .contains("cannot connect to /nonexistent/xpe.sock"),
            "{}",
            e.message
        );
    }
}

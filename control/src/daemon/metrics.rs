//! `xpe run --metrics ADDR:PORT`: an HTTP server on its own thread that answers
//! `GET /metrics` with a [`Sample`] of the running router, encoded by
//! [`crate::metrics::encode`].
//!
//! The listener is bound before the workers start, so an address in use or not ours is a
//! start-up error, not a router that runs unobserved. The server is axum on a current-thread
//! tokio runtime: one scrape at a time, none of it on a worker's core budget beyond the
//! counters the workers already publish.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread::JoinHandle;

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::sync::oneshot;

use super::render::json;
use super::{bgp, lock, Live};
use crate::api::NeighborState;
use crate::error::Failure;
use crate::metrics::{encode, Bgp, BgpPeer, Format, Sample, Tables};

/// Binds the metrics address: before anything starts, so a bad one stops `xpe run` early.
pub(super) fn bind(addr: SocketAddr) -> Result<TcpListener, Failure> {
    let listener = TcpListener::bind(addr).map_err(|e| {
        Failure::new(format!("cannot serve metrics on {addr}: {e}")).hint(
            "pick a free address and port of this namespace for --metrics (9464 is usual for exporters)",
        )
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|e| Failure::new(format!("cannot serve metrics on {addr}: {e}")))?;
    Ok(listener)
}

/// The running metrics server.
pub(super) struct Server {
    stop: oneshot::Sender<()>,
    thread: JoinHandle<()>,
}

impl Server {
    /// Serves `/metrics` on `listener` until [`Server::stop`].
    pub(super) fn start(live: Arc<Live>, listener: TcpListener) -> Result<Server, Failure> {
        let (stop, stopped) = oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(|e| Failure::new(format!("cannot start the metrics server: {e}")))?;
        let thread = std::thread::Builder::new()
            .name("xpe-metrics".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            eprintln!("warning: the metrics server cannot listen: {e}");
                            return;
                        }
                    };
                    let app = Router::new()
                        .route("/metrics", get(scrape))
                        .route("/", get(index))
                        .with_state(live);
                    let served = axum::serve(listener, app)
                        .with_graceful_shutdown(async {
                            let _ignored = stopped.await;
                        })
                        .await;
                    if let Err(e) = served {
                        eprintln!("warning: the metrics server stopped: {e}");
                    }
                });
            })
            .map_err(|e| Failure::new(format!("cannot start the metrics thread: {e}")))?;
        Ok(Server { stop, thread })
    }

    /// Stops serving and waits for the thread.
    pub(super) fn stop(self) {
        let _ignored = self.stop.send(());
        let _ignored = self.thread.join();
    }
}

/// `GET /`: where the metrics are.
async fn index() -> &'static str {
    "xpe: metrics are on /metrics\n"
}

/// `GET /metrics`: one sample, in the format the scraper asked for.
async fn scrape(
    axum::extract::State(live): axum::extract::State<Arc<Live>>,
    headers: HeaderMap,
) -> impl IntoResponse {
    let format = Format::from_accept(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    match encode(sample(&live), format) {
        Ok(text) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, format.content_type())],
            text,
        ),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("cannot encode the metrics: {e}\n"),
        ),
    }
}

/// Reads the running router as `show counters`, `runtime` and `interfaces` would.
fn sample(live: &Live) -> Sample {
    let snap = live.published.load();
    let (stats, fast) = super::readings(live);
    let neighbors = json::neighbors(live, &snap);
    let count = |state: NeighborState| {
        neighbors
            .neighbors
            .iter()
            .filter(|n| n.state == state)
            .count()
    };
    let tables = Tables {
        vrfs: snap
            .vrfs()
            .iter()
            .map(|v| (v.name.clone(), v.v4.len(), v.v6.len()))
            .collect(),
        labels: snap.ilm().entries().count(),
        neighbors: vec![
            ("static", count(NeighborState::Static)),
            ("learned", count(NeighborState::Learned)),
            ("incomplete", count(NeighborState::Incomplete)),
        ],
    };
    let bgp = lock(&live.bgp).clone().map(|status| {
        let status = lock(&status).clone();
        bgp_sample(&status)
    });
    Sample {
        router: snap.name().to_string(),
        fast_path: fast.is_some(),
        uptime_s: live.started.elapsed().as_secs_f64(),
        counters: json::counters(live, &snap, &stats, fast.as_ref()),
        runtime: json::runtime(live, &stats),
        interfaces: json::interfaces(live, &snap, &stats, fast.as_ref()),
        tables,
        bgp,
    }
}

/// What the metrics show of BGP.
fn bgp_sample(status: &bgp::Status) -> Bgp {
    Bgp {
        speakers: status
            .speakers
            .iter()
            .map(|s| (s.name.clone(), s.state == "running", s.starts))
            .collect(),
        peers: status
            .speakers
            .iter()
            .flat_map(|s| {
                s.peers.iter().map(|p| BgpPeer {
                    speaker: s.name.clone(),
                    peer: p.address.clone(),
                    family: p.family.clone(),
                    established: p.state == "established",
                    received: p.received,
                    accepted: p.accepted,
                    advertised: p.advertised,
                })
            })
            .collect(),
        refused: vec![
            ("bad-label", status.bad_label),
            ("martian", status.martians),
            ("undecodable", status.undecodable),
        ],
        paths: status.work.paths,
    }
}

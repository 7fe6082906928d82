//! GoBGP's gRPC API, package `apipb`, as tonic and prost generate it from the daemon's own
//! proto files at build time (see build.rs). Only the client is built.

#![allow(missing_docs, clippy::all)]

/// Everything of `apipb`: messages, enums and `gobgp_api_client::GobgpApiClient`.
pub mod apipb {
    tonic::include_proto!("apipb");
}

pub use prost;
pub use prost_types;
pub use tonic;

use apipb::gobgp_api_client::GobgpApiClient;
use tonic::transport::{Channel, Endpoint, Uri};

/// A client of the gobgpd API at the Unix socket `path` (gobgpd `--api-hosts unix://PATH`).
pub async fn connect_unix(path: &std::path::Path) -> Result<GobgpApiClient<Channel>, String> {
    let path = path.to_path_buf();
    // The URI is not used: the connector opens the socket.
    let channel = Endpoint::try_from("http://[::]:50051")
        .map_err(|e| e.to_string())?
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                    tokio::net::UnixStream::connect(path).await?,
                ))
            }
        }))
        .await
        .map_err(|e| e.to_string())?;
    Ok(GobgpApiClient::new(channel))
}

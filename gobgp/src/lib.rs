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

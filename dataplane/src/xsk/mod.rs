//! The Linux side of the data plane: the XDP program that steers frames into AF_XDP
//! sockets, the UMEM and rings (xdpilone), and the pinned workers that run the pipeline on
//! frames in place. This is the one module of the crate where `unsafe` is allowed
//! (STYLE.md): the UMEM mapping, slices over its frames, and a few socket calls.
//!
//! The lab tools' programs (generator, sink, in-kernel forwarder, host VLAN tagging) are not in
//! this object: `xpe-lab` builds and loads its own, and attaches its XDP programs through
//! [`steer::Attached`].
//!
//! Why xdpilone rather than xsk-rs: see `benches/README.md` (I/O layer).

pub mod netdev;
pub mod runtime;
pub mod socket;
pub mod steer;
pub mod umem;
pub mod worker;

/// The eBPF object built by `build.rs` (the XDP steering program), embedded once.
pub(crate) static EBPF_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/xpe-ebpf"));

/// Entries in every ring (RX, TX, fill, completion) of every socket.
pub const RING_SIZE: u32 = 2048;

/// Why the AF_XDP side could not start.
#[derive(Debug, thiserror::Error)]
pub enum XskError {
    /// The UMEM's memory could not be mapped.
    #[error("cannot map {bytes} bytes: {source}")]
    UmemMap {
        /// The size of the mapping.
        bytes: usize,
        /// Why mmap refused.
        #[source]
        source: std::io::Error,
    },
    /// mmap succeeded at address 0, which the UMEM cannot use.
    #[error("mmap returned NULL")]
    UmemNull,
    /// The kernel refused to register the UMEM (this opens the worker's first AF_XDP socket).
    #[error("cannot register the UMEM: {source}")]
    UmemRegister {
        /// The errno, as an I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A socket could not be opened or bound.
    #[error("AF_XDP socket on {ifname} queue {queue}: {detail}")]
    Socket {
        /// Interface.
        ifname: String,
        /// Queue.
        queue: u32,
        /// What failed and why.
        detail: String,
        /// The errno.
        errno: i32,
    },
    /// The steering program.
    #[error(transparent)]
    Steer(#[from] steer::SteerError),
    /// The plan cannot work (queues, threads).
    #[error("{0}")]
    Plan(String),
}

impl XskError {
    /// The kernel has no AF_XDP sockets (CONFIG_XDP_SOCKETS off).
    pub fn no_af_xdp(&self) -> bool {
        matches!(self, XskError::Socket { errno, .. } if *errno == libc::EAFNOSUPPORT)
    }

    /// The kernel refused for want of privileges.
    pub fn not_permitted(&self) -> bool {
        matches!(self, XskError::Socket { errno, .. } if *errno == libc::EPERM || *errno == libc::EACCES)
    }

    /// The kernel refused the bind flags or options (what an old kernel says to XDP_USE_SG).
    pub fn flags_refused(&self) -> bool {
        matches!(self, XskError::Socket { errno, .. } if *errno == libc::EINVAL || *errno == libc::EOPNOTSUPP)
    }
}

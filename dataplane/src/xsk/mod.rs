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

pub mod capture;
pub mod fast;
pub mod mirror;
pub mod netdev;
pub mod runtime;
pub mod socket;
pub mod steer;
pub mod umem;
pub mod worker;
pub mod xdp_features;

/// The eBPF object built by `build.rs` (the XDP steering program), embedded once.
pub(crate) static EBPF_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/xpe-ebpf"));

/// Entries in every ring (RX, TX, fill, completion) of every socket.
pub const RING_SIZE: u32 = 2048;

/// Descriptors one copy-mode `sendto` may transmit, asked of the kernel with
/// `XDP_MAX_TX_SKB_BUDGET` (kernel >= 6.17; 32 before, or when refused). Twice a batch, so a
/// kick sends all a batch brought and some backlog (benches/README.md, "The I/O loop against
/// Open vSwitch").
pub const TX_BUDGET: u32 = 128;

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
    /// The XDP fast path could not be loaded, attached or filled.
    #[error(transparent)]
    Fast(#[from] fast::FastError),
    /// The XDP fast path runs the pipeline's tables: it needs them.
    #[error("the XDP fast path needs the pipeline's tables (not a bench stage)")]
    FastWithoutTables,
    /// An interface has fewer RX queues than there are workers.
    #[error("interface {ifname} has {queues} RX queue(s) but {workers} workers were asked for: every worker needs a queue on every interface it transmits on; use --cores with at most {queues} core(s)")]
    TooFewQueues {
        /// Interface.
        ifname: String,
        /// Its RX queues.
        queues: u32,
        /// Workers asked for.
        workers: usize,
    },
    /// An interface has more RX queues than the steering program's map holds.
    #[error("interface {ifname} has {queues} RX queues; at most {max} are supported")]
    TooManyQueues {
        /// Interface.
        ifname: String,
        /// Its RX queues.
        queues: u32,
        /// The most supported ([`xpe_ebpf::MAX_QUEUES`]).
        max: u32,
    },
    /// A worker thread could not be spawned.
    #[error("cannot start a worker thread: {0}")]
    Spawn(#[source] std::io::Error),
    /// A worker thread ended before reporting its sockets ready (it panicked).
    #[error("a worker thread ended during start-up")]
    WorkerEnded,
    /// The mirror thread could not start.
    #[error(transparent)]
    Mirror(#[from] mirror::MirrorError),
}

impl XskError {
    /// The errno of a refused AF_XDP socket call: opening or binding a socket, or registering
    /// the UMEM (which opens the worker's first socket, so it is the first call to fail).
    fn socket_errno(&self) -> Option<i32> {
        match self {
            XskError::Socket { errno, .. } => Some(*errno),
            XskError::UmemRegister { source } => source.raw_os_error(),
            _ => None,
        }
    }

    /// The kernel has no AF_XDP sockets (CONFIG_XDP_SOCKETS off).
    pub fn no_af_xdp(&self) -> bool {
        self.socket_errno() == Some(libc::EAFNOSUPPORT)
    }

    /// The kernel refused for want of privileges.
    pub fn not_permitted(&self) -> bool {
        matches!(self.socket_errno(), Some(libc::EPERM | libc::EACCES))
    }

    /// The kernel refused the bind flags or options (what an old kernel says to XDP_USE_SG).
    pub fn flags_refused(&self) -> bool {
        matches!(self, XskError::Socket { errno, .. } if *errno == libc::EINVAL || *errno == libc::EOPNOTSUPP)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_errors_read_as_before() {
        let e = XskError::TooFewQueues {
            ifname: "dx0".into(),
            queues: 1,
            workers: 2,
        };
        assert_eq!(
            e.to_string(),
            "interface dx0 has 1 RX queue(s) but 2 workers were asked for: every worker needs a queue on every interface it transmits on; use --cores with at most 1 core(s)"
        );
        let e = XskError::TooManyQueues {
            ifname: "dx0".into(),
            queues: 96,
            max: xpe_ebpf::MAX_QUEUES,
        };
        assert_eq!(
            e.to_string(),
            "interface dx0 has 96 RX queues; at most 64 are supported"
        );
    }

    #[test]
    fn umem_errors_keep_the_errno() {
        let e = XskError::UmemMap {
            bytes: 4096,
            source: std::io::Error::from_raw_os_error(libc::ENOMEM),
        };
        assert!(e.to_string().starts_with("cannot map 4096 bytes: "), "{e}");
        assert!(std::error::Error::source(&e).is_some());
        let refused = |errno| XskError::UmemRegister {
            source: std::io::Error::from_raw_os_error(errno),
        };
        // Registering the UMEM opens the worker's first AF_XDP socket, so it is where a
        // kernel without AF_XDP or a missing privilege shows first.
        assert!(refused(libc::EAFNOSUPPORT).no_af_xdp());
        assert!(refused(libc::EPERM).not_permitted());
        assert!(!refused(libc::ENOMEM).no_af_xdp() && !refused(libc::ENOMEM).not_permitted());
    }
}

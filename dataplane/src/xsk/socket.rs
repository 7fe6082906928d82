//! One AF_XDP socket on an (interface, queue), on a worker's shared UMEM: its RX and TX
//! rings, and the fill and completion rings of that device queue.

use std::ffi::CString;
use std::time::Duration;

use xdpilone::{CompletionQueue, FillQueue, IfInfo, RingRx, RingTx, Socket, SocketConfig, User};

use super::umem::Umem;
use super::XskError;
use crate::tables::PortId;

/// Binding a queue again within about 20 ms of closing its previous socket returns EBUSY
/// (measured here, shared/MEASURING.md): retry this many times, 10 ms apart.
const BIND_RETRIES: u32 = 50;

/// `getsockopt(SOL_XDP, XDP_OPTIONS)` and its zero-copy flag (linux/if_xdp.h).
const XDP_OPTIONS: libc::c_int = 8;
const XDP_OPTIONS_ZEROCOPY: u32 = 1;
const SOL_XDP: libc::c_int = 283;
/// `setsockopt(SOL_XDP, XDP_MAX_TX_SKB_BUDGET)` (linux/if_xdp.h, kernel >= 6.17): the most
/// descriptors one copy-mode `sendto` transmits.
const XDP_MAX_TX_SKB_BUDGET: libc::c_int = 9;
/// What one copy-mode `sendto` transmits without it (the kernel's TX_BATCH_SIZE).
pub const DEFAULT_TX_BUDGET: u32 = 32;
/// Bind flag: frames may span several descriptors (linux/if_xdp.h, kernel >= 6.6).
pub const XDP_USE_SG: u16 = 1 << 4;

/// What the kernel counted on one socket (`XDP_STATISTICS`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SocketStats {
    /// Frames dropped for other reasons (e.g. too long for a chunk).
    pub rx_dropped: u64,
    /// Frames dropped because the RX ring was full (we did not keep up).
    pub rx_ring_full: u64,
    /// Times the kernel found the fill ring empty.
    pub rx_fill_ring_empty: u64,
    /// Invalid RX descriptors.
    pub rx_invalid: u64,
    /// Invalid TX descriptors (a bug if ever non-zero).
    pub tx_invalid: u64,
}

/// An AF_XDP socket bound to one queue of one interface.
pub struct XskSocket {
    /// The interface.
    pub ifname: String,
    /// Its queue.
    pub queue: u32,
    /// The interface's port in the tables.
    pub port: PortId,
    /// Whether the kernel gave zero-copy mode (veth never does: copy mode).
    pub zero_copy: bool,
    /// Descriptors one `sendto` transmits in copy mode: `tx_budget` as asked when the kernel
    /// took it, else [`DEFAULT_TX_BUDGET`].
    pub tx_budget: u32,
    pub(crate) rx: RingRx,
    pub(crate) tx: RingTx,
    pub(crate) fill: FillQueue,
    pub(crate) comp: CompletionQueue,
    user: User,
}

impl XskSocket {
    /// Opens a socket on `ifname` queue `queue` sharing `umem`; `owner` is true for the first
    /// socket of the UMEM, which carries the bind flags every later socket inherits, among
    /// them multi-buffer frames (`sg`, XDP_USE_SG); `tx_budget` is asked of the kernel as the
    /// most a copy-mode `sendto` transmits (at most `ring_size`).
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        umem: &Umem,
        owner: bool,
        sg: bool,
        ifname: &str,
        queue: u32,
        port: PortId,
        ring_size: u32,
        tx_budget: u32,
    ) -> Result<XskSocket, XskError> {
        let fail = |what: &str, e: xdpilone::Errno| XskError::Socket {
            ifname: ifname.to_string(),
            queue,
            detail: format!("{what}: {e}"),
            errno: e.get_raw(),
        };
        let name = CString::new(ifname).map_err(|_| XskError::Socket {
            ifname: ifname.to_string(),
            queue,
            detail: "the name contains a NUL byte".into(),
            errno: libc::EINVAL,
        })?;
        let mut info = IfInfo::invalid();
        info.from_name(&name)
            .map_err(|e| fail("no such interface", e))?;
        info.set_queue(queue);
        let sock = if owner {
            Socket::with_shared(&info, umem.inner())
        } else {
            Socket::new(&info)
        }
        .map_err(|e| fail("cannot create an AF_XDP socket", e))?;
        let device = umem
            .inner()
            .fq_cq(&sock)
            .map_err(|e| fail("cannot set up the fill and completion rings", e))?;
        let ring = core::num::NonZeroU32::new(ring_size);
        let config = SocketConfig {
            rx_size: ring,
            tx_size: ring,
            // A socket sharing another's UMEM must bind with no flags of its own (the kernel
            // refuses them with XDP_SHARED_UMEM): it inherits the owner's.
            bind_flags: match (owner, sg) {
                (true, false) => SocketConfig::XDP_BIND_NEED_WAKEUP,
                (true, true) => SocketConfig::XDP_BIND_NEED_WAKEUP | XDP_USE_SG,
                (false, _) => 0,
            },
        };
        let user = umem
            .inner()
            .rx_tx(&sock, &config)
            .map_err(|e| fail("cannot set up the RX and TX rings", e))?;
        let rx = user
            .map_rx()
            .map_err(|e| fail("cannot map the RX ring", e))?;
        let tx = user
            .map_tx()
            .map_err(|e| fail("cannot map the TX ring", e))?;
        let mut tries = 0;
        loop {
            match umem.inner().bind(&user) {
                Ok(()) => break,
                Err(e) if e.get_raw() == libc::EBUSY && tries < BIND_RETRIES => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(fail("cannot bind", e)),
            }
        }
        let (fill, comp) = device.into_parts();
        let zero_copy =
            xdp_options(user.as_raw_fd()).is_some_and(|f| f & XDP_OPTIONS_ZEROCOPY != 0);
        // An older kernel refuses the option (ENOPROTOOPT): the worker then kicks more often.
        let tx_budget = if set_tx_budget(user.as_raw_fd(), tx_budget.min(ring_size)) {
            tx_budget.min(ring_size)
        } else {
            DEFAULT_TX_BUDGET
        };
        Ok(XskSocket {
            ifname: ifname.to_string(),
            queue,
            port,
            zero_copy,
            tx_budget,
            rx,
            tx,
            fill,
            comp,
            user,
        })
    }

    /// The socket's file descriptor (for the XSKMAP and for poll).
    pub fn fd(&self) -> i32 {
        self.user.as_raw_fd()
    }

    /// What the kernel counted on this socket.
    pub fn stats(&self) -> SocketStats {
        match self.user.statistics_v2() {
            Ok(s) => SocketStats {
                rx_dropped: s.rx_dropped,
                rx_ring_full: s.rx_ring_full,
                rx_fill_ring_empty: s.rx_fill_ring_empty_descs,
                rx_invalid: s.rx_invalid_descs,
                tx_invalid: s.tx_invalid_descs,
            },
            // The socket is ours and bound; a failure here leaves the counters at zero
            // rather than stopping the worker.
            Err(_) => SocketStats::default(),
        }
    }
}

/// Asks the kernel to transmit up to `budget` descriptors per copy-mode `sendto`; false when
/// it refuses (a kernel before 6.17, or a budget outside 32..=the TX ring's size).
fn set_tx_budget(fd: i32, budget: u32) -> bool {
    // SAFETY: `budget` is a valid u32 for the whole call and its size is passed with it.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            SOL_XDP,
            XDP_MAX_TX_SKB_BUDGET,
            (&budget as *const u32).cast(),
            core::mem::size_of::<u32>() as libc::socklen_t,
        )
    };
    rc == 0
}

/// The socket's XDP_OPTIONS flags.
fn xdp_options(fd: i32) -> Option<u32> {
    let mut flags: u32 = 0;
    let mut len = core::mem::size_of::<u32>() as libc::socklen_t;
    // SAFETY: `flags` and `len` are valid for writes of the sizes given; the kernel writes at
    // most `len` bytes (struct xdp_options is one u32).
    let rc = unsafe {
        libc::getsockopt(
            fd,
            SOL_XDP,
            XDP_OPTIONS,
            (&mut flags as *mut u32).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(flags)
}

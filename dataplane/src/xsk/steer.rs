//! Loading and attaching the XDP steering program (`ebpf/src/main.rs`) and reading its
//! counters. The program is embedded in the binary at build time and detached when the
//! [`Steering`] is dropped. (Replacing a program a crashed run left behind, and binding the
//! AF_XDP sockets it redirects to, come with the live runtime.)

use std::fmt;

use std::os::fd::RawFd;

use aya::maps::{PerCpuArray, XskMap};
use aya::programs::{Xdp, XdpMode};
use aya::Ebpf;
use xpe_ebpf as names;

/// How the program is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Driver (native) mode; the only one that gives zero-copy or fast copy mode.
    Native,
    /// Generic (skb) mode, which every device supports.
    Skb,
    /// Native, falling back to skb where the driver refuses.
    Auto,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Native => "native",
            Mode::Skb => "skb",
            Mode::Auto => "auto",
        })
    }
}

/// Why the program could not be loaded, attached or read.
#[derive(Debug, thiserror::Error)]
pub enum SteerError {
    /// The object file or its maps were refused by the kernel.
    #[error("cannot load the XDP program into the kernel: {0} (needs root, or CAP_BPF and CAP_NET_ADMIN)")]
    Load(#[source] aya::EbpfError),
    /// The program is missing from the object or refused by the verifier.
    #[error("XDP program {program}: {source}")]
    Program {
        /// Program name.
        program: &'static str,
        /// Why.
        #[source]
        source: aya::programs::ProgramError,
    },
    /// Attaching to the interface failed.
    #[error("cannot attach XDP in {mode} mode to {ifname}: {source}")]
    Attach {
        /// Interface.
        ifname: String,
        /// Mode tried last.
        mode: Mode,
        /// Why.
        #[source]
        source: aya::programs::ProgramError,
    },
    /// A map is missing or unreadable.
    #[error("XDP map {map}: {detail}")]
    Map {
        /// Map name.
        map: &'static str,
        /// Why.
        detail: String,
    },
}

/// What the program counted, summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SteerCounters {
    /// Frames redirected to an AF_XDP socket.
    pub redirected: u64,
    /// Frames passed to the kernel (no socket bound on their RX queue).
    pub passed: u64,
}

/// An XDP program of a loaded eBPF object attached to one interface, with its own copy of the
/// object's maps; dropping it detaches the program. What [`Steering`] is made of, and public
/// so that the lab tools (`xpe-lab`: the sink, the in-kernel forwarder) attach their own
/// object's programs the same way.
pub struct Attached {
    ebpf: Ebpf,
    ifname: String,
    mode: Mode,
}

impl fmt::Debug for Attached {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attached")
            .field("ifname", &self.ifname)
            .field("mode", &self.mode)
            .finish()
    }
}

impl Attached {
    /// Loads the object and attaches its XDP program `program` to `ifname`; with
    /// [`Mode::Auto`], native first, then skb.
    pub(crate) fn load(
        program: &'static str,
        ifname: &str,
        mode: Mode,
    ) -> Result<Attached, SteerError> {
        let ebpf = load_object(false, None).map_err(SteerError::Load)?;
        Attached::attach(ebpf, program, ifname, mode)
    }

    /// Attaches XDP program `program` of an object already loaded (with its globals set and
    /// its maps filled) to `ifname`; with [`Mode::Auto`], native first, then skb.
    pub fn attach(
        mut ebpf: Ebpf,
        program: &'static str,
        ifname: &str,
        mode: Mode,
    ) -> Result<Attached, SteerError> {
        let mode = attach_xdp(&mut ebpf, program, ifname, mode)?;
        Ok(Attached {
            ebpf,
            ifname: ifname.to_string(),
            mode,
        })
    }

    /// The interface.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// The mode that took.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Counters `indices` of the per-CPU array `map`, each summed over CPUs.
    pub fn per_cpu_sums<const N: usize>(
        &self,
        map: &'static str,
        indices: [u32; N],
    ) -> Result<[u64; N], SteerError> {
        let map_err = |detail: String| SteerError::Map { map, detail };
        let stats: PerCpuArray<_, u64> = PerCpuArray::try_from(
            self.ebpf
                .map(map)
                .ok_or_else(|| map_err("missing from the embedded object".into()))?,
        )
        .map_err(|e| map_err(e.to_string()))?;
        let mut sums = [0u64; N];
        for (sum, i) in sums.iter_mut().zip(indices) {
            let values = stats.get(&i, 0).map_err(|e| map_err(e.to_string()))?;
            *sum = values.iter().sum();
        }
        Ok(sums)
    }
}

/// The steering program attached to one interface; dropping it detaches the program.
#[derive(Debug)]
pub struct Steering(Attached);

impl Steering {
    /// Loads the program and attaches it to `ifname`; with [`Mode::Auto`], native first, then
    /// skb. The mode that took is [`Steering::mode`].
    pub fn attach(ifname: &str, mode: Mode) -> Result<Steering, SteerError> {
        Attached::load(names::PROGRAM, ifname, mode).map(Steering)
    }

    /// The interface the program is attached to.
    pub fn ifname(&self) -> &str {
        self.0.ifname()
    }

    /// The mode it is attached in.
    pub fn mode(&self) -> Mode {
        self.0.mode()
    }

    /// Points RX queue `queue` at the AF_XDP socket `fd`: from now on its frames are
    /// redirected there instead of passed to the kernel.
    pub fn bind_socket(&mut self, queue: u32, fd: RawFd) -> Result<(), SteerError> {
        let map_err = |detail: String| SteerError::Map {
            map: names::XSK_MAP,
            detail,
        };
        let map = self
            .0
            .ebpf
            .map_mut(names::XSK_MAP)
            .ok_or_else(|| map_err("missing from the embedded object".into()))?;
        let mut xsks = XskMap::try_from(map).map_err(|e| map_err(e.to_string()))?;
        xsks.set(queue, fd, 0)
            .map_err(|e| map_err(format!("queue {queue} of {}: {e}", self.0.ifname)))
    }

    /// Reads the counters, summed over CPUs.
    pub fn counters(&self) -> Result<SteerCounters, SteerError> {
        let [redirected, passed] = self.0.per_cpu_sums(
            names::STATS_MAP,
            [names::STAT_REDIRECTED, names::STAT_PASSED],
        )?;
        Ok(SteerCounters { redirected, passed })
    }
}

/// Loads xpe's eBPF object. Without `fast`, the fast path's maps are shrunk to one entry each:
/// the steering program loads its own copy of the object on every interface and never touches
/// them (at full size they take 130 MB: docs/runtime.md, "The XDP fast path"). With `fast`,
/// `routes6` sizes the IPv6 trie (`None`: its full size).
pub(crate) fn load_object(fast: bool, routes6: Option<u32>) -> Result<Ebpf, aya::EbpfError> {
    let btf = aya::Btf::from_sys_fs().ok();
    let mut loader = aya::EbpfLoader::new();
    loader.btf(btf.as_ref());
    if !fast {
        for map in names::FAST_MAPS {
            loader.map_max_entries(map, 1);
        }
    } else if let Some(n) = routes6 {
        loader.map_max_entries(names::FAST_ROUTES6_MAP, n);
    }
    loader.load(super::EBPF_OBJECT)
}

/// Loads XDP program `program` of `ebpf` and attaches it to `ifname`; with [`Mode::Auto`],
/// native first, then skb. Returns the mode that took. The attachment lasts as long as `ebpf`
/// (aya detaches on drop; the kernel when the process ends).
fn attach_xdp(
    ebpf: &mut Ebpf,
    program: &'static str,
    ifname: &str,
    mode: Mode,
) -> Result<Mode, SteerError> {
    let xdp = loaded_program(ebpf, program)?;
    attach_loaded(xdp, ifname, mode).map(|(mode, _link)| mode)
}

/// Program `program` of `ebpf`, loaded into the kernel (the verifier has passed it).
pub(crate) fn loaded_program<'a>(
    ebpf: &'a mut Ebpf,
    program: &'static str,
) -> Result<&'a mut Xdp, SteerError> {
    let xdp: &mut Xdp = ebpf
        .program_mut(program)
        .ok_or(SteerError::Map {
            map: program,
            detail: "missing from the embedded object".into(),
        })?
        .try_into()
        .map_err(|source| SteerError::Program { program, source })?;
    xdp.load()
        .map_err(|source| SteerError::Program { program, source })?;
    Ok(xdp)
}

/// Attaches the loaded program `xdp` to `ifname`; with [`Mode::Auto`], native first, then
/// skb. Returns the mode that took and the link.
pub(crate) fn attach_loaded(
    xdp: &mut Xdp,
    ifname: &str,
    mode: Mode,
) -> Result<(Mode, aya::programs::xdp::XdpLinkId), SteerError> {
    let tries: &[(Mode, XdpMode)] = match mode {
        Mode::Native => &[(Mode::Native, XdpMode::Driver)],
        Mode::Skb => &[(Mode::Skb, XdpMode::Skb)],
        Mode::Auto => &[(Mode::Native, XdpMode::Driver), (Mode::Skb, XdpMode::Skb)],
    };
    let mut last = None;
    for &(mode, flags) in tries {
        match xdp.attach(ifname, flags) {
            Ok(link) => return Ok((mode, link)),
            Err(e) => last = Some((mode, e)),
        }
    }
    let (mode, source) = last.expect("at least one mode is tried");
    Err(SteerError::Attach {
        ifname: ifname.to_string(),
        mode,
        source,
    })
}

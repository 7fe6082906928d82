//! The XDP fast path's tables (issue 17, first part: LSR swap), compiled from the same
//! [`Snapshot`] the workers use. The program (`xpe_fast`, ebpf/src/main.rs) forwards what these
//! tables hold and steers every other frame to the AF_XDP sockets untouched.
//!
//! Work in progress: the tables are compiled and the program is checked against the pipeline
//! (`dataplane/tests/fast_path.rs`); `xpe run` does not attach it yet.

use xpe_ebpf::{FastPort, FastSwap};

use crate::tables::{IlmAction, PortId, PortKind, Snapshot};

/// What the fast path's maps hold for one snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FastTables {
    /// Ingress ports the program takes frames on: (port, entry). Core ports with an untagged
    /// attachment: the pipeline takes labelled frames only there.
    pub ports: Vec<(PortId, FastPort)>,
    /// Labels it swaps: (incoming label, entry). The entry's TX slot is the egress port's index.
    pub labels: Vec<(u32, FastSwap)>,
}

impl FastTables {
    /// The entries for `snap`: every swap to one outgoing label whose next hop is resolved and
    /// untagged. Everything else (PHP, VPN labels, several labels pushed, unresolved or tagged
    /// next hops) stays with the pipeline.
    pub fn compile(snap: &Snapshot) -> FastTables {
        let ports = snap
            .ports()
            .iter()
            .enumerate()
            .filter(|(_, p)| p.kind == PortKind::Core && p.attachment(0).is_some())
            .map(|(i, p)| {
                (
                    PortId(i as u16),
                    FastPort {
                        mac: p.mac.0,
                        pad: [0; 2],
                    },
                )
            })
            .collect();
        let labels = snap
            .ilm()
            .entries()
            .filter_map(|e| {
                let IlmAction::Swap { adj, ref out } = e.action else {
                    return None;
                };
                let [word] = out.words() else {
                    return None;
                };
                let adj = snap.adjacency(adj);
                if adj.mac.is_none() || adj.vlan.is_some() {
                    return None;
                }
                let mut macs = [0u8; 12];
                macs.copy_from_slice(&adj.header[..12]);
                Some((
                    e.label.get(),
                    FastSwap {
                        out: *word,
                        tx_slot: u32::from(adj.port.0),
                        macs,
                        mtu: adj.mtu,
                        pad: 0,
                    },
                ))
            })
            .collect();
        FastTables { ports, labels }
    }
}

/// A map value the kernel copies as plain bytes: [`FastSwap`] and [`FastPort`] are `repr(C)`
/// structs of integers with explicit padding, defined in the no_std crate the program shares
/// (which does not depend on aya, hence the wrapper).
#[repr(transparent)]
#[derive(Clone, Copy)]
struct Value<T>(T);

// SAFETY: `T` is one of the `repr(C)` structs above: integers and byte arrays only, every bit
// pattern valid, padding spelt out as fields.
unsafe impl aya::Pod for Value<FastSwap> {}
// SAFETY: as above.
unsafe impl aya::Pod for Value<FastPort> {}

/// Why the fast path could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum FastError {
    /// The object or a map was refused.
    #[error("cannot load the XDP fast path: {0} (needs root, or CAP_BPF and CAP_NET_ADMIN)")]
    Load(#[source] aya::EbpfError),
    /// The program was refused (the verifier says why).
    #[error("XDP program xpe_fast: {0}")]
    Program(#[source] aya::programs::ProgramError),
    /// A map could not be filled.
    #[error("fast-path map {map}: {detail}")]
    Map {
        /// The map.
        map: &'static str,
        /// Why.
        detail: String,
    },
}

/// The fast-path program loaded (not attached) with its tables filled.
pub struct FastProgram {
    ebpf: aya::Ebpf,
}

impl FastProgram {
    /// Loads the program and fills its maps from `tables`; `ifindex` gives each port's
    /// interface index (ports it gives none for are left out).
    pub fn load(
        tables: &FastTables,
        ifindex: impl Fn(PortId) -> Option<u32>,
    ) -> Result<FastProgram, FastError> {
        use aya::maps::DevMap;
        use xpe_ebpf as names;
        let mut ebpf = aya::EbpfLoader::new()
            .btf(aya::Btf::from_sys_fs().ok().as_ref())
            .load(super::EBPF_OBJECT)
            .map_err(FastError::Load)?;
        fn err<E: std::fmt::Display>(map: &'static str) -> impl Fn(E) -> FastError {
            move |e| FastError::Map {
                map,
                detail: e.to_string(),
            }
        }
        let missing = |map: &'static str| FastError::Map {
            map,
            detail: "missing from the embedded object".into(),
        };
        {
            let map = ebpf
                .map_mut(names::FAST_TX_MAP)
                .ok_or_else(|| missing(names::FAST_TX_MAP))?;
            let mut tx = DevMap::try_from(map).map_err(err(names::FAST_TX_MAP))?;
            // Each egress slot once: the ingress ports' and those the labels name.
            let slots: std::collections::BTreeSet<u32> = tables
                .ports
                .iter()
                .map(|(port, _)| u32::from(port.0))
                .chain(tables.labels.iter().map(|(_, swap)| swap.tx_slot))
                .collect();
            for slot in slots {
                if let Some(i) = ifindex(PortId(slot as u16)) {
                    tx.set(slot, i, None, 0).map_err(err(names::FAST_TX_MAP))?;
                }
            }
        }
        let ports = tables
            .ports
            .iter()
            .filter_map(|(port, entry)| Some((ifindex(*port)?, Value(*entry))));
        fill_hash(&mut ebpf, names::FAST_PORTS_MAP, ports)?;
        let labels = tables.labels.iter().map(|(l, entry)| (*l, Value(*entry)));
        fill_hash(&mut ebpf, names::FAST_LABELS_MAP, labels)?;
        let xdp: &mut aya::programs::Xdp = ebpf
            .program_mut(names::FAST_PROGRAM)
            .ok_or_else(|| missing(names::FAST_PROGRAM))?
            .try_into()
            .map_err(FastError::Program)?;
        xdp.load().map_err(FastError::Program)?;
        Ok(FastProgram { ebpf })
    }

    /// Runs the program once on `frame` as if it arrived on interface `ingress` (queue 0),
    /// with BPF_PROG_TEST_RUN: returns the XDP action and the frame as the program left it.
    pub fn test_run(&self, frame: &[u8], ingress: u32) -> Result<(u32, Vec<u8>), FastError> {
        use aya::programs::{TestRun, TestRunOptions};
        let xdp: &aya::programs::Xdp = self
            .ebpf
            .program(xpe_ebpf::FAST_PROGRAM)
            .ok_or(FastError::Map {
                map: xpe_ebpf::FAST_PROGRAM,
                detail: "missing from the embedded object".into(),
            })?
            .try_into()
            .map_err(FastError::Program)?;
        // struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index,
        // egress_ifindex (linux/bpf.h); the kernel wants data 0 and data_end the length.
        let md: [u32; 6] = [0, frame.len() as u32, 0, ingress, 0, 0];
        let ctx: Vec<u8> = md.iter().flat_map(|w| w.to_ne_bytes()).collect();
        let mut out = vec![0u8; frame.len() + 256];
        let result = xdp
            .test_run(TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                ctx_in: Some(&ctx),
                ..TestRunOptions::default()
            })
            .map_err(FastError::Program)?;
        out.truncate(result.data_size_out as usize);
        Ok((result.return_value, out))
    }
}

/// Inserts `entries` into the hash map `map` of `ebpf`.
fn fill_hash<V: aya::Pod>(
    ebpf: &mut aya::Ebpf,
    map: &'static str,
    entries: impl Iterator<Item = (u32, V)>,
) -> Result<(), FastError> {
    let fail = |detail: String| FastError::Map { map, detail };
    let found = ebpf
        .map_mut(map)
        .ok_or_else(|| fail("missing from the embedded object".into()))?;
    let mut hash: aya::maps::HashMap<_, u32, V> =
        aya::maps::HashMap::try_from(found).map_err(|e| fail(e.to_string()))?;
    for (key, value) in entries {
        hash.insert(key, value, 0)
            .map_err(|e| fail(format!("key {key}: {e}")))?;
    }
    Ok(())
}

//! Static route changes through the RIB, staged in batches ([`Batch`]): the route committer
//! ([`super::feed`]) stages every request it took in together and finishes the batch with one
//! commit; `run --routes` applies a route file before the workers start ([`apply`]). This is
//! the call a routing-daemon feed uses too.
//!
//! Every change of a request is checked against the running tables and what the batch
//! staged before it (VRF, next-hop subnet, clashes with connected and local routes, removal
//! of a route that exists), each error naming its change; a request is staged whole or not
//! at all (a stream's chunk: up to its first error). Staged changes go into the RIB; when the
//! batch finishes, the RIB's best-route deltas go into the VRFs' editable LPM tables as one
//! batch per VRF, and the caller publishes one snapshot for the whole batch.

use std::collections::HashMap;
use std::net::IpAddr;

use xpe_dataplane::tables::{
    Adjacency, AdjacencyId, AttachmentId, Fec, FecId, IpPrefix, LabelStack, VrfId,
};
use xpe_dataplane::wire::mpls::Label;

use super::State;
use crate::resolve::{self, RouteError};
use crate::rib::Source;
use crate::routefile::RouteLine;

/// What a batch did.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Applied {
    /// Routes added or replaced.
    pub added: usize,
    /// Routes removed.
    pub removed: usize,
    /// VRFs whose tables changed.
    pub vrfs: usize,
}

/// Why a batch was refused: one sentence per change at fault (at most `MAX_ERRORS`), and how
/// many more there were.
#[derive(Debug, Clone)]
pub(super) struct Refused {
    pub errors: Vec<String>,
    pub more: usize,
}

impl Refused {
    /// The errors, one per line, and how many more there were.
    pub(super) fn text(&self) -> String {
        let mut text = self.errors.join("\n");
        if self.more > 0 {
            text.push_str(&format!("\n... and {} more", self.more));
        }
        text
    }
}

/// Errors listed in one refusal at most.
pub(super) const MAX_ERRORS: usize = 20;

/// How a batch takes a change that does not check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Every change or none (`route add|del`, `route load FILE`, `run --routes`).
    All,
    /// The changes before the first that does not check, and none after it (a stream: what
    /// came before an error was published already, or is published with this batch).
    UpToError,
}

/// Changes checked and put into the RIB, not yet in the FIB tables: one or more requests'
/// worth, finished with one commit and one snapshot ([`Batch::finish`]).
pub(super) struct Batch {
    /// The running adjacencies and FECs by value, and those the batch appends.
    adj_of: HashMap<(AttachmentId, IpAddr), AdjacencyId>,
    fec_of: HashMap<Fec, FecId>,
    new_adjacencies: Vec<Adjacency>,
    new_fecs: Vec<Fec>,
}

/// What [`Batch::stage`] did with a request's changes.
#[derive(Debug)]
pub(super) struct Staged {
    /// The changes staged.
    pub applied: Applied,
    /// How many changes were staged (in `Mode::UpToError`, those before the error).
    pub lines: usize,
    /// Why the rest was not (in `Mode::All`, nothing was staged then).
    pub refused: Option<Refused>,
}

impl Batch {
    /// An empty batch on the running tables.
    pub(super) fn new(st: &State) -> Self {
        // FECs and adjacencies are only ever appended, so ids in the running tables stay
        // valid; ones already there are shared by value.
        Batch {
            adj_of: st
                .base
                .adjacencies()
                .iter()
                .enumerate()
                .map(|(i, a)| ((a.attachment, a.next_hop), AdjacencyId(i as u32)))
                .collect(),
            fec_of: st
                .base
                .fecs()
                .iter()
                .enumerate()
                .map(|(i, f)| (*f, FecId(i as u32)))
                .collect(),
            new_adjacencies: Vec::new(),
            new_fecs: Vec::new(),
        }
    }

    /// Checks `lines` against the running tables and what the batch staged before, and puts
    /// those that pass into the RIB (see [`Mode`]); `name` says where the lines came from in
    /// errors (`routes.txt`, or empty for `route add`).
    pub(super) fn stage(
        &mut self,
        st: &mut State,
        lines: &[RouteLine<'_>],
        name: &str,
        mode: Mode,
    ) -> Staged {
        let mut refused = Refused {
            errors: Vec::new(),
            more: 0,
        };
        let mut checked: Vec<(VrfId, IpPrefix, Option<NextHop>)> = Vec::with_capacity(lines.len());
        for l in lines {
            match check(st, l) {
                Ok(Route { vrf, next }) => checked.push((vrf, l.prefix, next)),
                Err(e) if refused.errors.len() < MAX_ERRORS => {
                    let what = if name.is_empty() {
                        String::new()
                    } else {
                        format!("{name}:{}: ", l.line)
                    };
                    let vrf = match l.vrf {
                        "global" => "the global table".to_string(),
                        v => format!("vrf \"{v}\""),
                    };
                    refused
                        .errors
                        .push(format!("{what}{vrf} route {}: {e}", l.prefix));
                    if mode == Mode::UpToError {
                        break;
                    }
                }
                Err(_) => refused.more += 1,
            }
        }
        let refused = (!refused.errors.is_empty()).then_some(refused);
        if refused.is_some() && mode == Mode::All {
            checked.clear();
        }
        let mut applied = Applied::default();
        for &(vid, prefix, next) in &checked {
            let fec = next.map(|(att, ip, push)| {
                let adj = self.adjacency(st, att, ip);
                self.fec(st, Fec::Forward { adj, push })
            });
            st.rib.set(vid, prefix, Source::Static, fec);
            if fec.is_some() {
                applied.added += 1;
            } else {
                applied.removed += 1;
            }
        }
        Staged {
            applied,
            lines: checked.len(),
            refused,
        }
    }

    fn adjacency(&mut self, st: &State, att: AttachmentId, ip: IpAddr) -> AdjacencyId {
        let next = AdjacencyId((st.base.adjacencies().len() + self.new_adjacencies.len()) as u32);
        *self.adj_of.entry((att, ip)).or_insert_with(|| {
            self.new_adjacencies.push(Adjacency::new(att, ip, None));
            next
        })
    }

    fn fec(&mut self, st: &State, fec: Fec) -> FecId {
        let next = FecId((st.base.fecs().len() + self.new_fecs.len()) as u32);
        *self.fec_of.entry(fec).or_insert_with(|| {
            self.new_fecs.push(fec);
            next
        })
    }

    /// Commits the RIB's pending changes into the FIB tables and makes `st.base` the new
    /// snapshot (the caller publishes it); the number of VRFs whose tables changed. When the
    /// global table changed, the VPN routes (whose next hops resolve through it) are resolved
    /// again in the same publish.
    pub(super) fn finish(self, st: &mut State) -> Result<usize, String> {
        let changed = self.commit(st)?;
        let vpn: Vec<BgpChange> = if changed.contains(&VrfId::GLOBAL) {
            st.bgp
                .iter()
                .filter(|(_, n)| matches!(n, BgpNext::Vpn { .. }))
                .map(|(&(vrf, prefix), &next)| (vrf, prefix, Some(next)))
                .collect()
        } else {
            Vec::new()
        };
        if vpn.is_empty() {
            return Ok(changed.len());
        }
        // BGP routes are only ever in VRFs, so this commit does not come back here.
        let mut again = Batch::new(st);
        again.stage_bgp(st, &vpn);
        let more = again.commit(st)?;
        Ok(changed.len() + more.iter().filter(|v| !changed.contains(v)).count())
    }

    /// [`Batch::finish`] without the VPN routes' resolution: the VRFs whose tables changed.
    fn commit(self, st: &mut State) -> Result<Vec<VrfId>, String> {
        let changed = st
            .rib
            .commit()
            .map_err(|e| format!("the tables cannot take the change: {e}"))?;
        let mut next = st.base.clone();
        let (mut adjacencies, mut fecs) = (self.new_adjacencies, self.new_fecs);
        for &vid in &changed {
            let (v4, v6) = st.rib.tables(vid);
            next = next
                .with_vrf_tables(
                    vid,
                    v4,
                    v6,
                    std::mem::take(&mut adjacencies),
                    std::mem::take(&mut fecs),
                )
                .map_err(|e| format!("the tables cannot take the change: {e}"))?;
        }
        st.base = next;
        Ok(changed)
    }
}

/// Checks `lines` against the running tables and, when all pass, applies them to the RIB,
/// the FIB tables and `st.base` (the caller publishes it): one request as a batch of its
/// own, for a route file read before the workers start.
pub(super) fn apply(
    st: &mut State,
    lines: &[RouteLine<'_>],
    name: &str,
) -> Result<Applied, Refused> {
    let mut batch = Batch::new(st);
    let staged = batch.stage(st, lines, name, Mode::All);
    if let Some(refused) = staged.refused {
        return Err(refused);
    }
    let mut applied = staged.applied;
    applied.vrfs = batch.finish(st).map_err(|e| Refused {
        errors: vec![e],
        more: 0,
    })?;
    Ok(applied)
}

/// Where a BGP route leads, before it is resolved against the running tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum BgpNext {
    /// Learned from a CE: its address, on one of the VRF's attachments.
    Ce(IpAddr),
    /// Imported from a VPN route: the remote PE's address (resolved through the global
    /// table to its transport labels and adjacency) and the VPN label to push under them.
    Vpn { next_hop: IpAddr, label: Label },
}

/// One BGP route change for the RIB: `None` removes the VRF's BGP route for the prefix.
pub(crate) type BgpChange = (VrfId, IpPrefix, Option<BgpNext>);

impl Batch {
    /// Stages BGP route changes. A route that does not resolve (its next hop unreachable, a
    /// label stack too deep) is not installed, and any BGP route it replaces goes: what
    /// comes back names them, for `show bgp` to count.
    pub(super) fn stage_bgp(
        &mut self,
        st: &mut State,
        changes: &[BgpChange],
    ) -> (Applied, Vec<(VrfId, IpPrefix, String)>) {
        let mut applied = Applied::default();
        let mut failed = Vec::new();
        for &(vrf, prefix, next) in changes {
            let fec = match next {
                None => None,
                Some(next) => match self.bgp_fec(st, vrf, next) {
                    Ok(fec) => Some(fec),
                    Err(e) => {
                        failed.push((vrf, prefix, e));
                        None
                    }
                },
            };
            // Kept even when it does not resolve: a later change of the global table may
            // resolve it ([`Batch::finish`]).
            match next {
                Some(next) => {
                    st.bgp.insert((vrf, prefix), next);
                    if fec.is_some() {
                        applied.added += 1;
                    }
                }
                None => {
                    if st.bgp.remove(&(vrf, prefix)).is_some() {
                        applied.removed += 1;
                    }
                }
            }
            st.rib.set(vrf, prefix, Source::Bgp, fec);
        }
        (applied, failed)
    }

    /// The FEC of a BGP route in `vrf`.
    fn bgp_fec(&mut self, st: &State, vrf: VrfId, next: BgpNext) -> Result<FecId, String> {
        match next {
            BgpNext::Ce(ip) => {
                let name = &st.base.vrf(vrf).name;
                let att = resolve::attachment(st.base.attachments(), vrf, name, ip, false)
                    .map_err(|e| e.to_string())?;
                let adj = self.adjacency(st, att, ip);
                Ok(self.fec(
                    st,
                    Fec::Forward {
                        adj,
                        push: LabelStack::EMPTY,
                    },
                ))
            }
            BgpNext::Vpn { next_hop, label } => {
                let global = st.base.vrf(VrfId::GLOBAL);
                let hit = match next_hop {
                    IpAddr::V4(a) => global.v4.lookup(u32::from(a)),
                    IpAddr::V6(a) => global.v6.lookup(u128::from(a)),
                };
                let Some(fec) = hit else {
                    return Err(format!(
                        "next hop {next_hop} has no route in the global table"
                    ));
                };
                let (adj, mut labels) = match *st.base.fec(FecId(fec)) {
                    Fec::Forward { adj, push } => (adj, push.labels().collect::<Vec<Label>>()),
                    Fec::Glean { attachment } => {
                        (self.adjacency(st, attachment, next_hop), Vec::new())
                    }
                    Fec::Local => {
                        return Err(format!("next hop {next_hop} is this router's own address"))
                    }
                };
                labels.push(label);
                let push = LabelStack::new(&labels).ok_or_else(|| {
                    format!(
                        "the transport labels to {next_hop} and the VPN label make a stack deeper than xpe pushes"
                    )
                })?;
                Ok(self.fec(st, Fec::Forward { adj, push }))
            }
        }
    }
}

/// After a recompile replaced the RIB (`apply`, a learned host's new MAC), stages every BGP
/// route again into it, by VRF name (`names[i]` is the name VRF `i` had before); what no
/// longer resolves, or whose VRF is gone, is dropped. The caller publishes.
pub(super) fn restage_bgp(st: &mut State, names: &[String]) -> Result<(), String> {
    if st.bgp.is_empty() {
        return Ok(());
    }
    let old = std::mem::take(&mut st.bgp);
    let changes: Vec<BgpChange> = old
        .into_iter()
        .filter_map(|((vrf, prefix), next)| {
            let name = names.get(usize::from(vrf.0))?;
            let vrf = st.base.vrf_by_name(name)?;
            Some((vrf, prefix, Some(next)))
        })
        .collect();
    let mut batch = Batch::new(st);
    batch.stage_bgp(st, &changes);
    batch.finish(st).map(|_| ())
}

/// Where an added route leaves: the attachment, the next hop, the labels it pushes.
type NextHop = (AttachmentId, IpAddr, LabelStack);

/// One change checked against the running tables: its VRF and, for an addition, where it
/// leaves.
struct Route {
    vrf: VrfId,
    next: Option<NextHop>,
}

/// Checks one change against the running tables; the error is one sentence.
fn check(st: &State, l: &RouteLine<'_>) -> Result<Route, String> {
    let vrf = match l.vrf {
        "global" => VrfId::GLOBAL,
        name => st.base.vrf_by_name(name).ok_or_else(|| {
            let names: Vec<&str> = st.base.vrfs().iter().map(|v| v.name.as_str()).collect();
            format!("no vrf named \"{name}\" (running: {})", names.join(", "))
        })?,
    };
    let candidates = st.rib.candidates(vrf, l.prefix);
    let Some((via, push)) = l.next else {
        if !candidates.iter().any(|r| r.source == Source::Static) {
            return Err("there is no such static route".into());
        }
        return Ok(Route { vrf, next: None });
    };
    if let Some(r) = candidates
        .iter()
        .find(|r| !matches!(r.source, Source::Static | Source::Bgp))
    {
        return Err(RouteError::Clash {
            prefix: l.prefix,
            existing: r.source,
        }
        .to_string());
    }
    let name = &st.base.vrf(vrf).name;
    let att = resolve::attachment(st.base.attachments(), vrf, name, via, !push.is_empty())
        .map_err(|e| e.to_string())?;
    Ok(Route {
        vrf,
        next: Some((att, via, push)),
    })
}

//! Static route changes in batches, through the RIB: `route add|del` is a batch of one,
//! `route load` and `run --routes` a whole route file. This is the call a routing-daemon
//! feed uses too.
//!
//! Every change of a batch is checked against the running tables first (VRF, next-hop
//! subnet, clashes with connected and local routes, removal of a route that exists), each
//! error naming its change; only when all pass does anything change. Then each change goes
//! into the RIB, the RIB's best-route deltas go into the VRFs' editable LPM tables as one
//! batch per VRF, and the caller publishes one snapshot for the whole batch.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use xpe_dataplane::tables::{
    Adjacency, AdjacencyId, AttachmentId, Fec, FecId, IpPrefix, LabelStack, VrfId,
};

use super::State;
use crate::resolve::{self, RouteError};
use crate::rib::Source;
use crate::routefile::RouteLine;

/// What a batch did.
#[derive(Debug, Default)]
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
#[derive(Debug)]
pub(super) struct Refused {
    pub errors: Vec<String>,
    pub more: usize,
}

/// Errors listed in one refusal at most.
pub(super) const MAX_ERRORS: usize = 20;

/// One checked change: (VRF, prefix, FEC to add or none to remove).
type Checked = (VrfId, IpPrefix, Option<Fec>);

/// Checks `lines` against the running tables and, when all pass, applies them to the RIB,
/// the FIB tables and `st.base` (the caller publishes it); `name` says where the lines came
/// from in errors (`routes.txt`, `route add`).
pub(super) fn apply(
    st: &mut State,
    lines: &[RouteLine<'_>],
    name: &str,
) -> Result<Applied, Refused> {
    let mut refused = Refused {
        errors: Vec::new(),
        more: 0,
    };
    let mut checked: Vec<Checked> = Vec::with_capacity(lines.len());
    let mut adj_of: HashMap<(AttachmentId, Ipv4Addr), AdjacencyId> = st
        .base
        .adjacencies()
        .iter()
        .enumerate()
        .map(|(i, a)| ((a.attachment, a.next_hop), AdjacencyId(i as u32)))
        .collect();
    let mut new_adjacencies: Vec<Adjacency> = Vec::new();
    for l in lines {
        match check(st, l) {
            Ok(Route { vrf, next: None }) => checked.push((vrf, l.prefix, None)),
            Ok(Route {
                vrf,
                next: Some((att, ip, push)),
            }) => {
                let next =
                    AdjacencyId((st.base.adjacencies().len() + new_adjacencies.len()) as u32);
                let adj = *adj_of.entry((att, ip)).or_insert_with(|| {
                    new_adjacencies.push(Adjacency::new(att, ip, None));
                    next
                });
                checked.push((vrf, l.prefix, Some(Fec::Forward { adj, push })));
            }
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
            }
            Err(_) => refused.more += 1,
        }
    }
    if !refused.errors.is_empty() {
        return Err(refused);
    }

    // FECs: the running ones by value, new ones appended (FECs and adjacencies are only ever
    // appended, so values in the running tables stay valid).
    let mut fec_of: HashMap<Fec, FecId> = st
        .base
        .fecs()
        .iter()
        .enumerate()
        .map(|(i, f)| (*f, FecId(i as u32)))
        .collect();
    let mut new_fecs = Vec::new();
    let mut applied = Applied::default();
    for &(vid, prefix, fec) in &checked {
        let fec_id = fec.map(|f| {
            let next = FecId((st.base.fecs().len() + new_fecs.len()) as u32);
            *fec_of.entry(f).or_insert_with(|| {
                new_fecs.push(f);
                next
            })
        });
        st.rib.set(vid, prefix, Source::Static, fec_id);
        if fec.is_some() {
            applied.added += 1;
        } else {
            applied.removed += 1;
        }
    }
    let changed = st.rib.commit().map_err(|e| Refused {
        errors: vec![format!("the tables cannot take the change: {e}")],
        more: 0,
    })?;
    let mut next = st.base.clone();
    let (mut adjacencies, mut fecs) = (new_adjacencies, new_fecs);
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
            .map_err(|e| Refused {
                errors: vec![format!("the tables cannot take the change: {e}")],
                more: 0,
            })?;
    }
    applied.vrfs = changed.len();
    st.base = next;
    Ok(applied)
}

/// One change checked against the running tables: its VRF and, for an addition, the
/// attachment and next hop it leaves by with the labels it pushes.
struct Route {
    vrf: VrfId,
    next: Option<(AttachmentId, Ipv4Addr, LabelStack)>,
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

//! The request handler: carries out the requests that change the tables (`apply`,
//! `route add|del|load`, `label add|del`) and publishes the result; hands `show` requests to
//! the renderer.
//!
//! Route changes go to the route committer ([`super::feed`]), which stages them through the
//! RIB into their VRFs' tables with whatever else was queued, without a recompile
//! ([`route_batch`]); a label change is a delta of one entry in the label table, also
//! without one ([`label_change`], [`super::labels`]). `apply` compiles the config it is given
//! and replaces the RIB ([`change`]); the one recompile of the running config left, for a
//! learned host whose MAC changed, writes the RIB's static routes back into it
//! ([`with_static_routes`]). Counter slots stay with their label or VRF across every change
//! ([`Slots`]).

use std::collections::HashMap;
use std::time::Instant;

use xpe_dataplane::tables::{Fec, Snapshot, VrfId};
use xpe_dataplane::wire::ethernet::MacAddr;
use xpe_dataplane::wire::mpls::Label;

use super::feed::Input;
use super::labels;
use super::routes::Mode;
use super::{lock, ok, refused, Live, NeighborKey, State};
use crate::compile::{compile, SysfsMacs};
use crate::config::{Config, LabelAction, LabelEntry, Neighbor, Route};
use crate::ctl::{Request, Response};
use crate::resolve::{self, RouteError};
use crate::rib::Source;

/// Counter slots by label value and by VRF name, kept for the life of the process: a label's
/// or a VRF's packet counts survive every table change that keeps (or brings back) it.
#[derive(Default)]
pub(super) struct Slots {
    labels: HashMap<u32, u32>,
    /// The label counted in each label slot.
    pub(super) label_of: Vec<u32>,
    vrfs: HashMap<String, u32>,
    /// The VRF counted in each VRF slot.
    pub(super) vrf_of: Vec<String>,
}

impl Slots {
    /// The slot of `label`: its own, or the one [`Slots::label`] would give it.
    pub(super) fn label_slot(&self, label: Label) -> u32 {
        self.labels
            .get(&label.get())
            .copied()
            .unwrap_or(self.label_of.len() as u32)
    }

    /// The slot of `label`, a new one if it has none.
    pub(super) fn label(&mut self, label: Label) -> u32 {
        slot_for(&mut self.labels, &mut self.label_of, label)
    }

    /// `snap` counting into these slots (new labels and VRFs get new ones).
    pub(super) fn assign(&mut self, snap: &Snapshot) -> Snapshot {
        let Slots {
            labels,
            label_of,
            vrfs,
            vrf_of,
        } = self;
        snap.with_counter_slots(
            |l| slot_for(labels, label_of, l),
            |name| match vrfs.get(name) {
                Some(&s) => s,
                None => {
                    vrf_of.push(name.to_string());
                    let s = (vrf_of.len() - 1) as u32;
                    vrfs.insert(name.to_string(), s);
                    s
                }
            },
        )
    }
}

/// The slot of `label` in `labels`, a new one at the end of `label_of` if it has none.
fn slot_for(labels: &mut HashMap<u32, u32>, label_of: &mut Vec<u32>, label: Label) -> u32 {
    *labels.entry(label.get()).or_insert_with(|| {
        label_of.push(label.get());
        (label_of.len() - 1) as u32
    })
}

/// Carries out one request.
pub(super) fn handle(live: &Live, req: Request) -> Response {
    match req {
        Request::Show { what, name, json } => {
            super::render::show(live, what, name.as_deref(), json)
        }
        Request::Apply { config, origin } => match Config::parse(&config, &origin) {
            Ok(cfg) => change(live, cfg),
            Err(e) => refused(format!(
                "{e}\nnothing applied: the running tables are unchanged"
            )),
        },
        Request::RouteAdd {
            vrf,
            prefix,
            via,
            labels,
        } => {
            let vrf = vrf.as_deref().unwrap_or("global");
            let change = (|| {
                Ok::<_, RouteError>(Input::One {
                    vrf: vrf.to_string(),
                    prefix: resolve::prefix(&prefix)?,
                    next: Some((resolve::next_hop(&via)?, resolve::labels(&labels, false)?)),
                })
            })();
            match change {
                Ok(change) => route_batch(live, change, None),
                Err(e) => refused(format!(
                    "the change has 1 error(s):\n{} route {}: {e}\nnothing applied: the running tables are unchanged",
                    vrf_label(Some(vrf)),
                    prefix.trim()
                )),
            }
        }
        Request::RouteDel { vrf, prefix } => {
            let vrf = vrf.as_deref().unwrap_or("global");
            match resolve::prefix(&prefix) {
                Ok(p) => route_batch(
                    live,
                    Input::One {
                        vrf: vrf.to_string(),
                        prefix: p,
                        next: None,
                    },
                    None,
                ),
                Err(e) => refused(format!(
                    "{} route {}: {e}\nnothing applied: the running tables are unchanged",
                    vrf_label(Some(vrf)),
                    prefix.trim()
                )),
            }
        }
        Request::RouteLoad { routes, origin } => route_batch(
            live,
            Input::Text {
                text: routes,
                first_line: 1,
            },
            Some(&origin),
        ),
        Request::RouteStream { .. } => refused(
            "a route stream is a connection of its own: `xpe route load --stream`, see docs/routes.md",
        ),
        Request::Capture(_) | Request::Trace(_) => refused(
            "captures and live traces are connections of their own: `xpe capture`, `xpe trace --live`",
        ),
        Request::LabelAdd {
            in_label,
            action,
            out,
            via,
        } => {
            let action = match action.as_str() {
                "swap" => LabelAction::Swap,
                "pop" => LabelAction::Pop,
                other => {
                    return refused(format!(
                        "unknown label action \"{other}\" (swap or pop)\nnothing applied: the running tables are unchanged"
                    ))
                }
            };
            let entry = LabelEntry {
                in_label,
                action,
                out: (!out.is_empty()).then_some(out),
                via,
            };
            label_change(live, |st| labels::add(st, entry))
        }
        Request::LabelDel { in_label } => label_change(live, |st| labels::del(st, in_label)),
    }
}

fn vrf_label(vrf: Option<&str>) -> String {
    match vrf {
        None | Some("global") => "the global table".into(),
        Some(v) => format!("vrf \"{v}\""),
    }
}

/// Static route changes through the route feed ([`feed`]), published with whatever else
/// was queued with them; `file` names a route file (`None`: one `route add|del`).
fn route_batch(live: &Live, input: Input, file: Option<&str>) -> Response {
    let one = match &input {
        Input::One { vrf, prefix, next } => Some((vrf.clone(), *prefix, next.is_some())),
        Input::Text { .. } | Input::Bgp(_) => None,
    };
    let out = live.feed.submit(input, file.unwrap_or_default(), Mode::All);
    if !out.malformed.is_empty() {
        let origin = file.unwrap_or("routes");
        return refused(format!(
            "{origin} has errors:\n{}\nnothing applied: the running tables are unchanged",
            out.malformed.join("\n")
        ));
    }
    if let Some(r) = out.refused {
        return refused(format!(
            "the change has {} error(s):\n{}\nnothing applied: the running tables are unchanged",
            r.errors.len() + r.more,
            r.text()
        ));
    }
    let ms = out.latency.as_secs_f64() * 1e3;
    let with = match out.batch_requests {
        0 | 1 => String::new(),
        n => format!(" with {} other request(s)", n - 1),
    };
    match one {
        Some((vrf, prefix, add)) => ok(format!(
            "applied: route {prefix} {} in {}; {} routes there; published in {ms:.3} ms{with}",
            if add { "added" } else { "removed" },
            vrf_label(Some(&vrf)),
            out.vrf_routes,
        )),
        None => ok(format!(
            "loaded {}: {} routes added or replaced, {} removed, in {} VRF(s); published in {ms:.3} ms{with}",
            file.unwrap_or("routes"),
            out.applied.added,
            out.applied.removed,
            out.vrfs
        )),
    }
}

/// A label change as a delta ([`labels`]), published at once.
fn label_change(
    live: &Live,
    apply: impl FnOnce(&mut State) -> Result<labels::Changed, labels::LabelRefusal>,
) -> Response {
    let t0 = Instant::now();
    let mut st = lock(&live.state);
    let changed = match apply(&mut st) {
        Ok(changed) => changed,
        Err(e) => {
            return refused(format!(
                "{e}\nnothing applied: the running tables are unchanged"
            ))
        }
    };
    publish(live, &st);
    let took = t0.elapsed();
    let mut text = format!(
        "applied: label {} {} as a delta (routes untouched, no recompile); {} routes, {} incoming labels; published in {:.3} ms",
        changed.label,
        changed.what,
        route_count(&st),
        st.base.ilm().len(),
        took.as_secs_f64() * 1e3
    );
    for w in &changed.warnings {
        text.push_str(&format!("\nwarning: {w}"));
    }
    ok(text)
}

/// Routes in every VRF's RIB.
fn route_count(st: &State) -> usize {
    (0..st.rib.vrf_count())
        .map(|v| st.rib.len(VrfId(v as u16)))
        .sum()
}

/// The running config as a file would hold it: `st.config`, which is kept without routes,
/// plus every static route of the RIB written back from its FEC (next hop and labels). The
/// RIB is where static routes live once running, so a route file of a million lines costs
/// no config text; this is built only for a recompile.
pub(super) fn with_static_routes(st: &State) -> Config {
    let mut config = st.config.clone();
    for (i, vrf) in st.base.vrfs().iter().enumerate() {
        let routes: Vec<Route> = st
            .rib
            .routes_from(VrfId(i as u16), Source::Static)
            .filter_map(|(prefix, fec)| match *st.base.fec(fec) {
                Fec::Forward { adj, push } => Some(Route {
                    prefix: prefix.to_string(),
                    via: st.base.adjacency(adj).next_hop.to_string(),
                    labels: push.labels().map(|l| i64::from(l.get())).collect(),
                }),
                Fec::Local | Fec::Glean { .. } => None,
            })
            .collect();
        if i == 0 {
            config.routes = routes;
        } else if let Some(v) = config.vrfs.iter_mut().find(|v| v.name == vrf.name) {
            v.routes = routes;
        }
    }
    config
}

/// A config without its static routes: what the daemon keeps once the routes are in the RIB.
pub(super) fn without_routes(mut config: Config) -> Config {
    config.routes = Vec::new();
    for v in &mut config.vrfs {
        v.routes = Vec::new();
    }
    config
}

/// Replaces the running config by `next` (`apply`): compiles it and publishes the result;
/// on any error nothing changes. The routes are `next`'s: the RIB's are not written back.
fn change(live: &Live, next: Config) -> Response {
    let t0 = Instant::now();
    let mut st = lock(&live.state);
    // Learned hosts go along unless the new config makes one of them invalid (its subnet
    // gone, say): then they are dropped and relearned on demand.
    let with_hosts = compile(
        &with_learned_hosts(&next, &st.hosts, &live.interfaces),
        &SysfsMacs,
    );
    let keep_hosts = with_hosts.is_ok();
    let compiled = match with_hosts.or_else(|_| compile(&next, &SysfsMacs)) {
        Ok(c) => c,
        Err(errors) => {
            return refused(format!(
                "the change has {} error(s):\n{errors}\nnothing applied: the running tables are unchanged",
                errors.0.len()
            ))
        }
    };
    let names: Vec<&str> = compiled
        .snapshot
        .ports()
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    if names
        != live
            .interfaces
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
    {
        return refused(format!(
            "interfaces cannot change while xpe runs (running: {}; new: {})\nnothing applied: restart xpe with the new config",
            live.interfaces.join(", "),
            names.join(", ")
        ));
    }
    if compiled.bgp != live.bgp_plan {
        return refused(
            "BGP settings ([bgp], a VRF's rd, import, export or bgp_neighbor) cannot change while xpe runs\nnothing applied: restart xpe with the new config",
        );
    }
    let names = super::neighbours::vrf_names(&st.base);
    // The running tables are kept until BGP's routes are in the new ones (only copied when
    // there are BGP routes to stage).
    let backup = (!st.bgp.is_empty()).then(|| (st.base.clone(), st.rib.clone(), st.bgp.clone()));
    st.base = st.slots.assign(&compiled.snapshot);
    st.rib = compiled.rib;
    if let Err(e) = super::routes::restage_bgp(&mut st, &names) {
        if let Some(b) = backup {
            (st.base, st.rib, st.bgp) = b;
        }
        return refused(format!(
            "the BGP routes do not fit the new tables: {e}\nnothing applied: the running tables are unchanged"
        ));
    }
    st.config = without_routes(next);
    if !keep_hosts {
        st.hosts.clear();
    }
    publish(live, &st);
    let took = t0.elapsed();
    let mut text = format!(
        "applied: {} routes, {} incoming labels; published in {:.3} ms",
        route_count(&st),
        st.base.ilm().len(),
        took.as_secs_f64() * 1e3
    );
    for w in &compiled.warnings {
        text.push_str(&format!("\nwarning: {w}"));
    }
    ok(text)
}

/// Publishes the base snapshot with the learned neighbours laid over it, and brings the XDP
/// fast path's tables in step with it (when it is on; a failure switches the fast path off,
/// counts it and names it in `show counters`, and the workers forward everything).
pub(super) fn publish(live: &Live, st: &State) {
    live.published.publish(resolved(st));
    if let Some(rt) = lock(&live.runtime).as_ref() {
        let _counted = rt.fast_apply(&live.published.load());
    }
}

/// The base snapshot with the learned neighbours laid over its adjacencies by (port, VLAN,
/// next hop): what [`publish`] publishes.
pub(super) fn resolved(st: &State) -> Snapshot {
    st.base.with_resolved(|adj| {
        st.learned
            .get(&(adj.port.0, adj.vlan.map_or(0, |v| v.get()), adj.next_hop))
            .copied()
    })
}

/// The config plus the hosts learned after a glean, as neighbour entries (static ones win).
pub(super) fn with_learned_hosts(
    config: &Config,
    hosts: &HashMap<NeighborKey, MacAddr>,
    interfaces: &[String],
) -> Config {
    let mut c = config.clone();
    for (&(port, vid, ip), mac) in hosts {
        let Some(interface) = interfaces.get(usize::from(port)) else {
            continue;
        };
        let vlan = (vid != 0).then_some(i64::from(vid));
        // Compared as addresses: IPv6 has more than one way to write one.
        let is_static = config.neighbors.iter().any(|n| {
            &n.interface == interface
                && n.vlan == vlan
                && n.ip.trim().parse::<std::net::IpAddr>() == Ok(ip)
        });
        if !is_static {
            c.neighbors.push(Neighbor {
                interface: interface.clone(),
                vlan,
                ip: ip.to_string(),
                mac: mac.to_string(),
            });
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    use crate::compile::Offline;

    const EXAMPLE: &str = include_str!("../../../examples/dx-pe.toml");

    fn mac(last: u8) -> MacAddr {
        MacAddr([0x02, 0, 0, 0, 0xee, last])
    }

    /// Every (VRF, prefix, source, FEC as text) of a compiled config.
    fn routes_of(c: &crate::compile::Compiled) -> Vec<(String, String, Source, String)> {
        let snap = &c.snapshot;
        (0..c.rib.vrf_count())
            .flat_map(|v| {
                let vid = VrfId(v as u16);
                c.rib.routes(vid).map(move |(p, r)| {
                    (
                        snap.vrf(vid).name.clone(),
                        p.to_string(),
                        r.source,
                        crate::show::describe_fec(snap, r.fec),
                    )
                })
            })
            .collect()
    }

    #[test]
    fn static_routes_written_back_from_the_rib_compile_to_the_same_tables() {
        // The daemon keeps the config without routes; a recompile puts the RIB's static
        // routes back (next hop and labels from their FECs) and must get the same routes.
        let config = Config::parse(EXAMPLE, "example").unwrap();
        let compiled = compile(&config, &Offline).unwrap();
        let before = routes_of(&compiled);
        assert!(before.iter().any(|r| r.2 == Source::Static), "{before:?}");
        let st = State {
            config: without_routes(config),
            base: compiled.snapshot.clone(),
            rib: compiled.rib.clone(),
            slots: Slots::default(),
            learned: HashMap::new(),
            hosts: HashMap::new(),
            asked: HashMap::new(),
            bgp: HashMap::new(),
        };
        assert!(st.config.routes.is_empty() && st.config.vrfs.iter().all(|v| v.routes.is_empty()));
        let again = compile(&with_static_routes(&st), &Offline).unwrap();
        assert_eq!(routes_of(&again), before);
    }

    #[test]
    fn learned_hosts_never_override_static_neighbours() {
        let config = Config::parse(EXAMPLE, "example").unwrap();
        let interfaces = vec!["core0".to_string(), "dx0".to_string()];
        let ip = |s: &str| std::net::IpAddr::V4(s.parse::<Ipv4Addr>().unwrap());
        let hosts = HashMap::from([
            // dx0 VLAN 101 has a static neighbour at .2: the learned MAC must not replace it.
            ((1, 101, ip("169.254.10.2")), mac(1)),
            ((1, 101, ip("169.254.10.3")), mac(2)),
        ]);
        let merged = with_learned_hosts(&config, &hosts, &interfaces);
        let on_101: Vec<_> = merged
            .neighbors
            .iter()
            .filter(|n| n.interface == "dx0" && n.vlan == Some(101))
            .collect();
        assert_eq!(on_101.len(), 2, "{on_101:?}");
        assert_eq!(
            on_101[0].mac, "02:00:00:00:aa:01",
            "the static entry stays first and unchanged"
        );
        assert_eq!(
            (on_101[1].ip.as_str(), on_101[1].mac.as_str()),
            ("169.254.10.3", "02:00:00:00:ee:02")
        );
        assert_eq!(merged.neighbors.len(), config.neighbors.len() + 1);
    }

    #[test]
    fn counter_slots_stay_with_labels_and_vrfs_across_changes() {
        let mut config = Config::parse(EXAMPLE, "example").unwrap();
        let mut slots = Slots::default();
        let first = slots.assign(&compile(&config, &Offline).unwrap().snapshot);
        let slot_of = |s: &Snapshot, label: u32| {
            s.ilm()
                .entries()
                .find(|e| e.label.get() == label)
                .map(|e| e.counter)
        };
        let (s16002, s1001) = (
            slot_of(&first, 16002).unwrap(),
            slot_of(&first, 1001).unwrap(),
        );
        // Remove the swap entry and add another one: the others keep their slots, the new
        // one gets a fresh slot, and the removed label keeps its (unused) slot.
        config.labels.retain(|l| l.in_label != 16002);
        let mut extra = config.labels[0].clone();
        extra.in_label = 15999;
        config.labels.push(extra);
        let second = slots.assign(&compile(&config, &Offline).unwrap().snapshot);
        assert_eq!(slot_of(&second, 1001), Some(s1001));
        assert_eq!(slot_of(&second, 16002), None);
        let fresh = slot_of(&second, 15999).unwrap();
        assert!(
            fresh as usize >= first.slot_counts().0,
            "a new label gets a new slot"
        );
        assert_eq!(slots.label_of[s16002 as usize], 16002);
        assert_eq!(second.slot_counts().0, slots.label_of.len());
        let vrf = second.vrf_by_name("vpc-b").unwrap();
        assert_eq!(slots.vrf_of[second.vrf_slot(vrf)], "vpc-b");
    }
}

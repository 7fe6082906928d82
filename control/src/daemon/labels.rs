//! Label entry changes (`label add|del`) as deltas: one incoming label entry added, replaced
//! or removed in the running tables, without a recompile.
//!
//! An entry is checked by the compiler's own checks ([`check_label_entry`]) against the
//! running tables: the same refusals, named the same way, as the entry would get in a config.
//! Its next hop takes the running adjacency to that address or an appended one; the label
//! table copies the label's block and shares the rest ([`Snapshot::with_label`]); the VRFs
//! and their routes are not touched. `st.config` follows, so a later recompile builds the
//! same entries: an added entry is the config's last, a replaced one keeps its place, and a
//! removed one's place is taken by the last (so one other entry is renumbered, not every
//! entry after it; the number is only what `show labels` names an entry by).

use xpe_dataplane::tables::{Adjacency, AdjacencyId, IlmEntry, IlmOrigin, Snapshot, TableError};
use xpe_dataplane::wire::mpls::Label;

use super::State;
use crate::compile::{check_label_entry, unresolved_next_hop, ConfigErrors, LabelUser, Object};
use crate::config::LabelEntry;

/// Why a label change was refused; the running tables and config are unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum LabelRefusal {
    /// `label del` of a label no `[[label]]` entry has (a VRF's `table_label` is not one).
    #[error("there is no label entry for in-label {0}")]
    NoEntry(i64),
    /// The entry fails the checks a config's entry gets.
    #[error("the change has {} error(s):\n{}", .0.0.len(), .0)]
    Invalid(ConfigErrors),
    /// The tables refused the change (a bug if it happens: everything was checked).
    #[error("the tables cannot take the change: {0}")]
    Table(#[from] TableError),
}

/// What a label change did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Changed {
    /// The label.
    pub label: Label,
    /// `added`, `replaced` or `removed`.
    pub what: &'static str,
    /// What a config with the entry would be warned about.
    pub warnings: Vec<String>,
}

/// Adds `entry`, or replaces the entry for its in-label, in `st.base` and `st.config` (the
/// caller publishes `st.base`).
pub(super) fn add(st: &mut State, entry: LabelEntry) -> Result<Changed, LabelRefusal> {
    let at = st
        .config
        .labels
        .iter()
        .position(|l| l.in_label == entry.in_label);
    let index = at.unwrap_or(st.config.labels.len()) + 1;
    // Another entry with the label is the one replaced, so only a table label can clash.
    let checked = check_label_entry(&entry, index, st.base.attachments(), |n, _| {
        table_label_user(&st.base, n)
    })
    .map_err(|errors| LabelRefusal::Invalid(ConfigErrors(errors)))?;
    let (att, ip) = (checked.attachment, checked.next_hop);
    let running = st.base.adjacencies();
    let (adj, appended) = match running
        .iter()
        .position(|a| a.attachment == att && a.next_hop == ip)
    {
        Some(i) => (AdjacencyId(i as u32), Vec::new()),
        None => (
            AdjacencyId(running.len() as u32),
            vec![Adjacency::new(att, ip, None)],
        ),
    };
    let mut warnings = Vec::new();
    // Static neighbours are the adjacencies with a MAC in the compiled tables.
    if !running
        .iter()
        .any(|a| a.attachment == att && a.next_hop == ip && a.mac.is_some())
    {
        let obj = Object::LabelEntry {
            index,
            in_label: entry.in_label,
        };
        warnings.push(unresolved_next_hop(&obj, ip));
    }
    let next = st.base.with_label(
        IlmEntry {
            label: checked.label,
            action: checked.action(adj),
            origin: IlmOrigin::LabelEntry(index),
            counter: st.slots.label_slot(checked.label),
        },
        appended,
    )?;
    st.slots.label(checked.label);
    st.base = next;
    let what = match at {
        Some(i) => {
            st.config.labels[i] = entry;
            "replaced"
        }
        None => {
            st.config.labels.push(entry);
            "added"
        }
    };
    Ok(Changed {
        label: checked.label,
        what,
        warnings,
    })
}

/// Removes the `[[label]]` entry for `in_label` from `st.base` and `st.config` (the caller
/// publishes `st.base`).
pub(super) fn del(st: &mut State, in_label: i64) -> Result<Changed, LabelRefusal> {
    let labels = &st.config.labels;
    let (Some(i), Some(label)) = (
        labels.iter().position(|l| l.in_label == in_label),
        u32::try_from(in_label).ok().and_then(Label::new),
    ) else {
        return Err(LabelRefusal::NoEntry(in_label));
    };
    let mut next = st.base.without_label(label)?;
    let last = labels.len() - 1;
    if i != last {
        // The config's entries passed the checks, so the label is valid and in the table.
        let moved = labels[last].in_label as u32;
        let e = *next.ilm().lookup(moved).ok_or(TableError::NoLabel(moved))?;
        next = next.with_label(
            IlmEntry {
                origin: IlmOrigin::LabelEntry(i + 1),
                ..e
            },
            Vec::new(),
        )?;
    }
    st.base = next;
    st.config.labels.swap_remove(i);
    Ok(Changed {
        label,
        what: "removed",
        warnings: Vec::new(),
    })
}

/// The VRF whose `table_label` is `n`, if any.
fn table_label_user(snap: &Snapshot, n: i64) -> Option<LabelUser> {
    snap.vrfs()
        .iter()
        .find(|v| v.table_label.is_some_and(|l| i64::from(l.get()) == n))
        .map(|v| LabelUser::Vrf(v.name.clone()))
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::sync::Arc;

    use xpe_dataplane::tables::{IlmAction, Vrf, VrfId};
    use xpe_dataplane::wire::ethernet::MacAddr;

    use super::super::edit::{resolved, with_static_routes, without_routes};
    use super::*;
    use crate::compile::{compile, Offline};
    use crate::config::{Config, LabelAction};

    const EXAMPLE: &str = include_str!("../../../examples/dx-pe.toml");

    /// The example running, with a /29 on core0 so that next hops other than its static
    /// neighbour (.2) exist.
    fn running() -> State {
        let text = EXAMPLE.replace("address = \"198.18.0.1/30\"", "address = \"198.18.0.1/29\"");
        let config = Config::parse(&text, "example").unwrap();
        let compiled = compile(&config, &Offline).unwrap();
        State::new(config, compiled.snapshot, compiled.rib)
    }

    fn swap(in_label: i64, out: &[i64], via: &str) -> LabelEntry {
        LabelEntry {
            in_label,
            action: LabelAction::Swap,
            out: Some(out.to_vec()),
            via: via.into(),
        }
    }

    fn pop(in_label: i64, via: &str) -> LabelEntry {
        LabelEntry {
            in_label,
            action: LabelAction::Pop,
            out: None,
            via: via.into(),
        }
    }

    /// The label table as `show labels` prints it, and each label's counter slot.
    fn table(s: &Snapshot) -> (String, Vec<(u32, u32)>) {
        let mut text = Vec::new();
        crate::show::labels(&mut text, s).unwrap();
        let slots = s
            .ilm()
            .entries()
            .map(|e| (e.label.get(), e.counter))
            .collect();
        (String::from_utf8(text).unwrap(), slots)
    }

    /// The tables a recompile of the running config builds, in the same counter slots.
    fn recompiled(st: &mut State) -> Snapshot {
        let compiled = compile(&with_static_routes(st), &Offline).unwrap();
        st.slots.assign(&compiled.snapshot)
    }

    /// The VRFs, to check that a label change shares them (routes untouched).
    fn vrfs(s: &Snapshot) -> Vec<Arc<Vrf>> {
        s.vrfs().to_vec()
    }

    fn same_vrfs(a: &[Arc<Vrf>], b: &Snapshot) -> bool {
        a.len() == b.vrfs().len() && a.iter().zip(b.vrfs()).all(|(x, y)| Arc::ptr_eq(x, y))
    }

    #[test]
    fn add_replace_and_remove_build_what_a_recompile_builds() {
        let mut st = running();
        let before = vrfs(&st.base);
        let routes = st.rib.len(VrfId(1));
        let labels = st.base.ilm().len();

        // Added, through the static neighbour's adjacency.
        let done = add(&mut st, swap(16100, &[16101, 2001], "198.18.0.2")).unwrap();
        assert_eq!((done.label.get(), done.what), (16100, "added"));
        assert!(done.warnings.is_empty(), "{:?}", done.warnings);
        assert_eq!(st.base.ilm().len(), labels + 1);
        let e = *st.base.ilm().lookup(16100).unwrap();
        let IlmAction::Swap { adj, out } = e.action else {
            panic!("{e:?}")
        };
        assert_eq!(out.to_string(), "16101/2001");
        assert_eq!(
            st.base.adjacency(adj).next_hop,
            Ipv4Addr::new(198, 18, 0, 2)
        );
        assert!(st.base.adjacency(adj).mac.is_some());
        assert_eq!(e.origin, IlmOrigin::LabelEntry(st.config.labels.len()));
        let slot = e.counter;
        assert_eq!(st.slots.label_of[slot as usize], 16100);
        assert!((slot as usize) < st.base.slot_counts().0);
        assert!(same_vrfs(&before, &st.base), "the VRFs are shared");
        assert_eq!(st.rib.len(VrfId(1)), routes);
        assert_eq!(table(&st.base), table(&recompiled(&mut st)));

        // Replaced, through a next hop without an adjacency yet: one is appended, the entry
        // keeps its place in the config and its counter slot, and the warning a config
        // would get comes with it.
        let adjacencies = st.base.adjacencies().len();
        let done = add(&mut st, pop(16100, "198.18.0.3")).unwrap();
        assert_eq!(done.what, "replaced");
        assert_eq!(
            done.warnings,
            [format!(
                "label entry {} (in 16100): via 198.18.0.3 has no static neighbour; its traffic counts as no-neighbor until ARP resolves it",
                st.config.labels.len()
            )]
        );
        assert_eq!(st.base.adjacencies().len(), adjacencies + 1);
        let e = *st.base.ilm().lookup(16100).unwrap();
        assert_eq!(e.counter, slot);
        assert_eq!(
            e.action,
            IlmAction::Pop {
                adj: AdjacencyId(adjacencies as u32)
            }
        );
        assert_eq!(st.base.ilm().len(), labels + 1);
        assert!(same_vrfs(&before, &st.base));
        assert_eq!(table(&st.base), table(&recompiled(&mut st)));

        // One more, then the first entry removed: the last takes its place in the config
        // and its number in the table, and a recompile agrees.
        add(&mut st, pop(16200, "198.18.0.2")).unwrap();
        let in_labels =
            |st: &State| -> Vec<i64> { st.config.labels.iter().map(|l| l.in_label).collect() };
        assert_eq!(in_labels(&st), [16002, 16004, 16100, 16200]);
        let done = del(&mut st, 16002).unwrap();
        assert_eq!((done.label.get(), done.what), (16002, "removed"));
        assert_eq!(in_labels(&st), [16200, 16004, 16100]);
        assert!(st.base.ilm().lookup(16002).is_none());
        assert_eq!(
            st.base.ilm().lookup(16200).unwrap().origin,
            IlmOrigin::LabelEntry(1)
        );
        assert_eq!(table(&st.base), table(&recompiled(&mut st)));
        // The last entry removed: nothing moves.
        del(&mut st, 16100).unwrap();
        assert_eq!(in_labels(&st), [16200, 16004]);
        assert_eq!(table(&st.base), table(&recompiled(&mut st)));
        assert!(same_vrfs(&before, &st.base));
        assert_eq!(st.base.ilm().len(), labels);
        // The table labels were never touched.
        for l in [1001, 1002] {
            assert!(matches!(
                st.base.ilm().lookup(l).unwrap().action,
                IlmAction::PopLookup { .. }
            ));
        }
    }

    #[test]
    fn removing_what_is_not_a_label_entry_is_refused() {
        let mut st = running();
        let (text, _) = table(&st.base);
        for n in [16100, 1001, 15, -1, 1 << 40] {
            assert_eq!(del(&mut st, n), Err(LabelRefusal::NoEntry(n)));
        }
        assert_eq!(
            LabelRefusal::NoEntry(1001).to_string(),
            "there is no label entry for in-label 1001"
        );
        assert_eq!(table(&st.base).0, text);
        assert_eq!(st.config.labels.len(), 2);
    }

    #[test]
    fn refusals_are_the_compilers_and_change_nothing() {
        let mut st = running();
        let unchanged = (
            table(&st.base),
            st.base.adjacencies().len(),
            st.slots.label_of.clone(),
            format!("{:?}", st.config.labels),
        );
        for bad in [
            pop(15, "198.18.0.2"),
            pop(1 << 20, "198.18.0.2"),
            pop(1001, "198.18.0.2"),
            swap(1002, &[16005], "198.18.0.2"),
            LabelEntry {
                out: None,
                ..swap(16100, &[], "198.18.0.2")
            },
            swap(16100, &[], "198.18.0.2"),
            LabelEntry {
                out: Some(vec![16101]),
                ..pop(16100, "198.18.0.2")
            },
            swap(16100, &[1], "198.18.0.2"),
            swap(16100, &[16101; 9], "198.18.0.2"),
            pop(16100, "169.254.10.2"),
            pop(16100, "198.18.0.1"),
            pop(16100, "2001:db8::1"),
            pop(16100, "nowhere"),
            // A replacement is checked in the replaced entry's place.
            pop(16002, "198.18.9.9"),
        ] {
            // What the compiler says of a config with the entry where `add` puts it.
            let mut config = with_static_routes(&st);
            match config
                .labels
                .iter()
                .position(|l| l.in_label == bad.in_label)
            {
                Some(i) => config.labels[i] = bad.clone(),
                None => config.labels.push(bad.clone()),
            }
            let expected = compile(&config, &Offline).expect_err("refused");
            assert_eq!(
                add(&mut st, bad.clone()),
                Err(LabelRefusal::Invalid(expected.clone())),
                "{bad:?}"
            );
            assert!(LabelRefusal::Invalid(expected.clone())
                .to_string()
                .starts_with(&format!("the change has {} error(s):\n", expected.0.len())),);
            let now = (
                table(&st.base),
                st.base.adjacencies().len(),
                st.slots.label_of.clone(),
                format!("{:?}", st.config.labels),
            );
            assert_eq!(now, unchanged, "{bad:?} changed something");
        }
        // The clash names both users, as in a config.
        let Err(LabelRefusal::Invalid(errors)) = add(&mut st, pop(1001, "198.18.0.2")) else {
            panic!("refused")
        };
        assert_eq!(
            errors.to_string(),
            "label 1001: duplicate in-label 1001 used by vrf \"vpc-a\" and label entry 3"
        );
    }

    #[test]
    fn a_new_next_hop_already_learned_is_resolved_in_the_published_tables() {
        let mut st = running();
        let mac = MacAddr([2, 0, 0, 0, 3, 3]);
        let ip = Ipv4Addr::new(198, 18, 0, 3);
        // core0 is port 0, untagged.
        st.learned.insert((0, 0, ip.into()), mac);
        add(&mut st, pop(16100, "198.18.0.3")).unwrap();
        let IlmAction::Pop { adj } = st.base.ilm().lookup(16100).unwrap().action else {
            panic!("a pop")
        };
        assert_eq!(
            st.base.adjacency(adj).mac,
            None,
            "the base has no learned MAC"
        );
        let published = resolved(&st);
        assert_eq!(published.adjacency(adj).next_hop, ip);
        assert_eq!(published.adjacency(adj).mac, Some(mac));
    }

    /// One label add with a VRF of 1M routes present, as a delta and as the recompile
    /// `label add` was before (what `change()` did for it). Prints both; asserts nothing of
    /// their times. `cargo test --release -p xpe-control --lib -- --ignored --nocapture
    /// label_add_with_a_million_routes`
    #[test]
    #[ignore = "a measurement: builds a 1M-route VRF; run it in release with --nocapture"]
    fn label_add_with_a_million_routes() {
        use std::time::Instant;

        use xpe_dataplane::tables::{IpPrefix, Ipv4Prefix, LabelStack};

        use super::super::edit::with_learned_hosts;
        use super::super::routes;
        use crate::routefile::RouteLine;

        let mut st = running();
        let push =
            LabelStack::new(&[Label::new(16001).unwrap(), Label::new(2001).unwrap()]).unwrap();
        let lines: Vec<RouteLine> = (0..1_000_000u32)
            .map(|i| RouteLine {
                line: i as usize + 1,
                vrf: "vpc-a",
                // 11.0.0.0/24 onwards, one /24 apart.
                prefix: IpPrefix::V4(
                    Ipv4Prefix::new(Ipv4Addr::from(0x0b00_0000 + (i << 8)), 24).unwrap(),
                ),
                next: Some((Ipv4Addr::new(198, 18, 0, 2).into(), push)),
            })
            .collect();
        let t0 = Instant::now();
        routes::apply(&mut st, &lines, "generated").unwrap();
        let load = t0.elapsed();
        drop(lines);
        let vpc_a = st.base.vrf_by_name("vpc-a").unwrap();
        assert!(st.rib.len(vpc_a) > 1_000_000);

        // The delta, 200 times (added, then replaced): check, adjacency, label table, and
        // the snapshot `publish` lays the learned MACs over.
        let mut deltas = Vec::new();
        for i in 0..200 {
            let t0 = Instant::now();
            add(&mut st, swap(16100 + i % 100, &[16101], "198.18.0.2")).unwrap();
            let published = resolved(&st);
            deltas.push(t0.elapsed());
            drop(published);
        }
        deltas.sort();

        // The recompile: the config with the RIB's routes written back and the entry in it,
        // compiled (learned hosts included), counted into the same slots, made the running
        // tables (the old RIB freed), and laid over with learned MACs.
        let mut recompiles = Vec::new();
        for i in 0..2 {
            let t0 = Instant::now();
            let mut config = with_static_routes(&st);
            let entry = swap(16300 + i, &[16101], "198.18.0.2");
            config.labels.retain(|l| l.in_label != entry.in_label);
            config.labels.push(entry);
            let interfaces = ["core0".to_string(), "dx0".to_string()];
            let compiled = compile(
                &with_learned_hosts(&config, &st.hosts, &interfaces),
                &Offline,
            )
            .unwrap();
            st.base = st.slots.assign(&compiled.snapshot);
            st.rib = compiled.rib;
            st.config = without_routes(config);
            let published = resolved(&st);
            recompiles.push(t0.elapsed());
            drop(published);
        }
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
        println!(
            "{} routes (loaded in {:.0} ms), {} labels: label add as a delta p50 {:.3} ms, max {:.3} ms ({} runs); as a recompile {:.0} ms, {:.0} ms",
            st.rib.len(vpc_a),
            ms(load),
            st.base.ilm().len(),
            ms(deltas[deltas.len() / 2]),
            ms(deltas[deltas.len() - 1]),
            deltas.len(),
            ms(recompiles[0]),
            ms(recompiles[1]),
        );
    }
}

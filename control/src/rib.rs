//! The RIB: every route of every VRF from every source, and the best of each prefix in the FIB.
//!
//! As in FRR's zebra, the RIB and the FIB are different things. The RIB keeps, per VRF and
//! prefix, one route per source (connected, local, a static neighbour's host route, static,
//! BGP), each resolved to a FEC. The source with the lowest preference wins (zebra's
//! administrative distances) and its FEC goes into the VRF's editable LPM tables
//! ([`Ipv4Table`], [`Ipv6Table`]) as a pending change. [`Rib::commit`] applies the pending
//! changes of each VRF as one batch, and the caller publishes the new tables with
//! `Snapshot::with_vrf_tables`: a route change touches one prefix's entry here and the trie
//! nodes on that prefix's path there, never the rest of a million-route table.
//!
//! What `show vrf` and `trace` print comes from here, not from the data-plane snapshot, which
//! holds only what the workers read.

use std::hash::Hash;
use std::net::{Ipv4Addr, Ipv6Addr};

use hashbrown::hash_map::Entry;
use hashbrown::HashMap;

use serde::Serialize;
use xpe_dataplane::tables::lpm::{Ipv4Lpm, Ipv4Table, Ipv6Lpm, Ipv6Table, LpmError};
use xpe_dataplane::tables::{FecId, IpPrefix, Ipv4Prefix, Ipv6Prefix, VrfId};

/// Where a route came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The subnet of an attachment or core interface.
    Connected,
    /// One of our own addresses.
    Local,
    /// A static neighbour's host route on a connected subnet.
    Neighbor,
    /// A configured route, or one added with `xpe route add`.
    Static,
    /// Learned from a BGP peer.
    Bgp,
}

impl Source {
    /// The preference among routes for one prefix (lower wins), after zebra's administrative
    /// distances: connected and local 0, static 1, eBGP 20.
    pub fn preference(self) -> u8 {
        match self {
            Source::Connected | Source::Local | Source::Neighbor => 0,
            Source::Static => 1,
            Source::Bgp => 20,
        }
    }

    /// The one-letter code `show vrf` prints.
    pub fn code(self) -> &'static str {
        match self {
            Source::Connected => "C",
            Source::Local => "L",
            Source::Neighbor => "N",
            Source::Static => "S",
            Source::Bgp => "B",
        }
    }
}

/// One source's route for a prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RibRoute {
    /// Where it came from.
    pub source: Source,
    /// What it resolves to.
    pub fec: FecId,
}

/// The routes of one prefix, best first. Almost every prefix has one source, kept inline;
/// the rare list is boxed so that an entry of the map stays 16 bytes.
#[derive(Debug, Clone)]
enum Candidates {
    One(RibRoute),
    Many(Box<[RibRoute]>),
}

impl Candidates {
    fn best(&self) -> RibRoute {
        match self {
            Candidates::One(r) => *r,
            // Never empty: a list that loses its last route is removed.
            Candidates::Many(v) => v[0],
        }
    }

    fn as_slice(&self) -> &[RibRoute] {
        match self {
            Candidates::One(r) => std::slice::from_ref(r),
            Candidates::Many(v) => v,
        }
    }

    /// Sets (or with `None` removes) `source`'s route; `None` back when none is left.
    fn set(self, source: Source, fec: Option<FecId>) -> Option<Self> {
        let mut list: Vec<RibRoute> = self.as_slice().to_vec();
        list.retain(|r| r.source != source);
        if let Some(fec) = fec {
            list.push(RibRoute { source, fec });
        }
        list.sort_by_key(|r| (r.source.preference(), r.source));
        match list.len() {
            0 => None,
            1 => Some(Candidates::One(list[0])),
            _ => Some(Candidates::Many(list.into_boxed_slice())),
        }
    }
}

/// One VRF's routes and its editable FIB tables.
///
/// The routes are hash maps, not sorted maps: a change is two or three lookups of one prefix
/// (check, set), and in a million-route table a B-tree walk misses the cache at every level
/// where a hash probe misses about once (the B-tree spent 40% of a churn batch's time in its
/// walks). What lists routes sorts them ([`Rib::routes`]); the FIB tables keep their own
/// order for the ranges they rebuild.
#[derive(Debug, Clone, Default)]
struct VrfRib {
    v4: HashMap<Ipv4Prefix, Candidates>,
    v6: HashMap<Ipv6Prefix, Candidates>,
    fib4: Ipv4Table,
    fib6: Ipv6Table,
    /// Best-route changes not yet in the FIB tables: (prefix, new FEC or none).
    pending4: Vec<(Ipv4Addr, u8, Option<u32>)>,
    pending6: Vec<(Ipv6Addr, u8, Option<u32>)>,
}

/// The routes of every VRF, indexed by [`VrfId`] (0 is the global table).
#[derive(Debug, Clone, Default)]
pub struct Rib {
    vrfs: Vec<VrfRib>,
}

impl Rib {
    /// A RIB of `vrfs` empty VRFs.
    pub fn new(vrfs: usize) -> Self {
        Rib {
            vrfs: vec![VrfRib::default(); vrfs],
        }
    }

    /// Number of VRFs.
    pub fn vrf_count(&self) -> usize {
        self.vrfs.len()
    }

    /// Sets `source`'s route for `prefix` in `vrf` to `fec`, or removes it (`None`). When the
    /// best route of the prefix changes, the change waits for [`Rib::commit`]. Returns the
    /// route of that source it replaced, if any; an unknown VRF is a no-op (`None`).
    pub fn set(
        &mut self,
        vrf: VrfId,
        prefix: IpPrefix,
        source: Source,
        fec: Option<FecId>,
    ) -> Option<RibRoute> {
        let v = self.vrfs.get_mut(usize::from(vrf.0))?;
        match prefix {
            IpPrefix::V4(p) => {
                let u = update(&mut v.v4, p, source, fec);
                if let Some(change) = u.fib_change() {
                    v.pending4.push((p.network(), p.len(), change));
                }
                u.replaced
            }
            IpPrefix::V6(p) => {
                let u = update(&mut v.v6, p, source, fec);
                if let Some(change) = u.fib_change() {
                    v.pending6.push((p.network(), p.len(), change));
                }
                u.replaced
            }
        }
    }

    /// Applies every pending change to the FIB tables, one batch per VRF and family; returns
    /// the VRFs whose tables changed. On an error (a table ran out of room) that VRF's
    /// pending changes are dropped with its tables as they were.
    pub fn commit(&mut self) -> Result<Vec<VrfId>, LpmError> {
        let mut changed = Vec::new();
        for (i, v) in self.vrfs.iter_mut().enumerate() {
            if v.pending4.is_empty() && v.pending6.is_empty() {
                continue;
            }
            let (p4, p6) = (
                std::mem::take(&mut v.pending4),
                std::mem::take(&mut v.pending6),
            );
            if !p4.is_empty() {
                v.fib4.apply(p4)?;
            }
            if !p6.is_empty() {
                v.fib6.apply(p6)?;
            }
            changed.push(VrfId(i as u16));
        }
        Ok(changed)
    }

    /// The FIB tables of a VRF as of the last commit, to publish.
    pub fn tables(&self, vrf: VrfId) -> (Ipv4Lpm, Ipv6Lpm) {
        self.vrfs.get(usize::from(vrf.0)).map_or_else(
            || (Ipv4Lpm::new(), Ipv6Lpm::new()),
            |v| (v.fib4.lpm().clone(), v.fib6.lpm().clone()),
        )
    }

    /// The best route of exactly `prefix`.
    pub fn best(&self, vrf: VrfId, prefix: IpPrefix) -> Option<RibRoute> {
        let v = self.vrfs.get(usize::from(vrf.0))?;
        match prefix {
            IpPrefix::V4(p) => v.v4.get(&p).map(Candidates::best),
            IpPrefix::V6(p) => v.v6.get(&p).map(Candidates::best),
        }
    }

    /// Every route of `prefix`, best first.
    pub fn candidates(&self, vrf: VrfId, prefix: IpPrefix) -> &[RibRoute] {
        let Some(v) = self.vrfs.get(usize::from(vrf.0)) else {
            return &[];
        };
        let found = match prefix {
            IpPrefix::V4(p) => v.v4.get(&p),
            IpPrefix::V6(p) => v.v6.get(&p),
        };
        found.map_or(&[], Candidates::as_slice)
    }

    /// Number of prefixes of a VRF (each counted once, whatever its sources).
    pub fn len(&self, vrf: VrfId) -> usize {
        self.vrfs
            .get(usize::from(vrf.0))
            .map_or(0, |v| v.v4.len() + v.v6.len())
    }

    /// True when the VRF has no route.
    pub fn is_empty(&self, vrf: VrfId) -> bool {
        self.len(vrf) == 0
    }

    /// The best route of every prefix of a VRF, IPv4 then IPv6, each sorted by prefix.
    pub fn routes(&self, vrf: VrfId) -> impl Iterator<Item = (IpPrefix, RibRoute)> + '_ {
        let v = self.vrfs.get(usize::from(vrf.0));
        let v4 = v.into_iter().flat_map(|v| sorted(&v.v4));
        let v6 = v.into_iter().flat_map(|v| sorted(&v.v6));
        v4.map(|(p, c)| (IpPrefix::V4(*p), c.best()))
            .chain(v6.map(|(p, c)| (IpPrefix::V6(*p), c.best())))
    }

    /// The prefixes of a VRF that have a route from `source` (best or not), with its FEC,
    /// sorted by prefix.
    pub fn routes_from(
        &self,
        vrf: VrfId,
        source: Source,
    ) -> impl Iterator<Item = (IpPrefix, FecId)> + '_ {
        let v = self.vrfs.get(usize::from(vrf.0));
        let of = move |c: &Candidates| {
            c.as_slice()
                .iter()
                .find(|r| r.source == source)
                .map(|r| r.fec)
        };
        let v4 = v.into_iter().flat_map(|v| sorted(&v.v4));
        let v6 = v.into_iter().flat_map(|v| sorted(&v.v6));
        v4.filter_map(move |(p, c)| Some((IpPrefix::V4(*p), of(c)?)))
            .chain(v6.filter_map(move |(p, c)| Some((IpPrefix::V6(*p), of(c)?))))
    }

    /// The route an IPv4 destination matches (longest prefix), for `trace`: one probe per
    /// prefix length.
    pub fn matching4(&self, vrf: VrfId, dst: Ipv4Addr) -> Option<(IpPrefix, RibRoute)> {
        let v = self.vrfs.get(usize::from(vrf.0))?;
        (0..=32u8).rev().find_map(|len| {
            let p = Ipv4Prefix::new(dst, len)?.trunc();
            v.v4.get(&p).map(|c| (IpPrefix::V4(p), c.best()))
        })
    }

    /// The route an IPv6 destination matches (longest prefix), for `trace`.
    pub fn matching6(&self, vrf: VrfId, dst: Ipv6Addr) -> Option<(IpPrefix, RibRoute)> {
        let v = self.vrfs.get(usize::from(vrf.0))?;
        (0..=128u8).rev().find_map(|len| {
            let p = Ipv6Prefix::new(dst, len)?.trunc();
            v.v6.get(&p).map(|c| (IpPrefix::V6(p), c.best()))
        })
    }
}

/// What one [`update`] did: the best route before and after, and the route of the source
/// it replaced.
struct Updated {
    best_before: Option<RibRoute>,
    best_after: Option<RibRoute>,
    replaced: Option<RibRoute>,
}

impl Updated {
    /// The FIB change: `Some(Some(fec))` to set, `Some(None)` to remove, `None` when the best
    /// FEC stays.
    fn fib_change(&self) -> Option<Option<u32>> {
        let before = self.best_before.map(|r| r.fec);
        let after = self.best_after.map(|r| r.fec);
        (before != after).then_some(after.map(|f| f.0))
    }
}

/// The entries of a route map sorted by prefix (what `show vrf` lists).
fn sorted<P: Ord>(map: &HashMap<P, Candidates>) -> std::vec::IntoIter<(&P, &Candidates)> {
    let mut all: Vec<_> = map.iter().collect();
    all.sort_unstable_by(|a, b| a.0.cmp(b.0));
    all.into_iter()
}

/// Sets `source`'s route of `prefix` in `map` (or removes it), in one probe of the map.
fn update<P: Eq + Hash + Copy>(
    map: &mut HashMap<P, Candidates>,
    prefix: P,
    source: Source,
    fec: Option<FecId>,
) -> Updated {
    match map.entry(prefix) {
        Entry::Vacant(slot) => {
            let best_after = fec.map(|fec| RibRoute { source, fec });
            if let Some(route) = best_after {
                slot.insert(Candidates::One(route));
            }
            Updated {
                best_before: None,
                best_after,
                replaced: None,
            }
        }
        Entry::Occupied(mut slot) => {
            let before = slot.get();
            let replaced = before
                .as_slice()
                .iter()
                .find(|r| r.source == source)
                .copied();
            let best_before = Some(before.best());
            // The common case, one route replaced by the same source: no list to build.
            let after = match (before, fec) {
                (Candidates::One(r), Some(fec)) if r.source == source => {
                    Some(Candidates::One(RibRoute { source, fec }))
                }
                _ => slot.get().clone().set(source, fec),
            };
            let best_after = after.as_ref().map(Candidates::best);
            match after {
                Some(after) => {
                    slot.insert(after);
                }
                None => {
                    slot.remove();
                }
            }
            Updated {
                best_before,
                best_after,
                replaced,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> IpPrefix {
        s.parse().unwrap()
    }

    fn lookup(rib: &Rib, vrf: VrfId, dst: &str) -> Option<u32> {
        let (v4, v6) = rib.tables(vrf);
        match dst.parse().unwrap() {
            std::net::IpAddr::V4(a) => v4.lookup(u32::from(a)),
            std::net::IpAddr::V6(a) => v6.lookup(u128::from(a)),
        }
    }

    #[test]
    fn the_preferred_source_wins_and_the_next_takes_over() {
        let mut rib = Rib::new(2);
        let vrf = VrfId(1);
        rib.set(vrf, p("198.18.7.0/24"), Source::Bgp, Some(FecId(5)));
        rib.commit().unwrap();
        assert_eq!(lookup(&rib, vrf, "198.18.7.1"), Some(5));
        // A static route beats BGP; withdrawing it gives the prefix back to BGP.
        rib.set(vrf, p("198.18.7.0/24"), Source::Static, Some(FecId(7)));
        assert_eq!(rib.commit().unwrap(), vec![vrf]);
        assert_eq!(lookup(&rib, vrf, "198.18.7.1"), Some(7));
        assert_eq!(rib.candidates(vrf, p("198.18.7.0/24")).len(), 2);
        let replaced = rib.set(vrf, p("198.18.7.0/24"), Source::Static, None);
        assert_eq!(replaced.map(|r| r.fec), Some(FecId(7)));
        rib.commit().unwrap();
        assert_eq!(lookup(&rib, vrf, "198.18.7.1"), Some(5));
        // A BGP change under a static route does not touch the FIB.
        rib.set(vrf, p("198.18.7.0/24"), Source::Static, Some(FecId(7)));
        rib.commit().unwrap();
        rib.set(vrf, p("198.18.7.0/24"), Source::Bgp, Some(FecId(9)));
        assert_eq!(rib.commit().unwrap(), Vec::<VrfId>::new());
        // Removing the last route removes the prefix.
        rib.set(vrf, p("198.18.7.0/24"), Source::Static, None);
        rib.set(vrf, p("198.18.7.0/24"), Source::Bgp, None);
        rib.commit().unwrap();
        assert_eq!(lookup(&rib, vrf, "198.18.7.1"), None);
        assert!(rib.is_empty(vrf));
        // The global table was never touched.
        assert!(rib.is_empty(VrfId::GLOBAL));
    }

    #[test]
    fn trace_finds_the_longest_match_in_both_families() {
        let mut rib = Rib::new(1);
        let g = VrfId::GLOBAL;
        for (prefix, fec) in [
            ("0.0.0.0/0", 1),
            ("198.18.0.0/15", 2),
            ("198.18.7.0/24", 3),
            ("2001:db8::/32", 4),
            ("2001:db8:1::/48", 5),
        ] {
            rib.set(g, p(prefix), Source::Static, Some(FecId(fec)));
        }
        rib.commit().unwrap();
        let at = |dst: &str| match dst.parse().unwrap() {
            std::net::IpAddr::V4(a) => rib.matching4(g, a),
            std::net::IpAddr::V6(a) => rib.matching6(g, a),
        };
        assert_eq!(at("198.18.7.9").map(|m| m.0), Some(p("198.18.7.0/24")));
        assert_eq!(at("198.19.0.1").map(|m| m.1.fec), Some(FecId(2)));
        assert_eq!(at("192.0.2.1").map(|m| m.0), Some(p("0.0.0.0/0")));
        assert_eq!(at("2001:db8:1::9").map(|m| m.1.fec), Some(FecId(5)));
        assert_eq!(at("2001:db9::1"), None);
        let listed: Vec<_> = rib.routes(g).map(|(p, _)| p.to_string()).collect();
        assert_eq!(
            listed,
            [
                "0.0.0.0/0",
                "198.18.0.0/15",
                "198.18.7.0/24",
                "2001:db8::/32",
                "2001:db8:1::/48"
            ]
        );
    }
}

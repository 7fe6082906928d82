//! The routes of an editable IPv4 table, kept in the shape its builders read them: per root
//! entry, the routes longer than the root in one sorted slice, and the few shorter routes
//! in a sorted map.
//!
//! A change rebuilds the subtree below one root entry from exactly the routes of that entry,
//! so they are stored together: finding them is an index, not a walk of a million-route tree,
//! and adding one is a binary search and a short move within its slice (about 15 routes per
//! entry at 1M routes under a /16 root). One sorted map of everything spent a third of a
//! churn batch's time walking and ranging (profile of 2,000-change batches on 1M routes).
//! Routes of at most the root's width change root leaves and are few (a few thousand in a
//! full table), so a sorted map serves them.

use std::collections::BTreeMap;

/// A validated route: canonical network, prefix length, value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Route {
    pub network: u32,
    pub len: u8,
    pub value: u32,
}

impl Route {
    /// The sort key: by network, then shorter first, so a covering prefix comes before the
    /// prefixes it covers.
    fn key(&self) -> (u32, u8) {
        (self.network, self.len)
    }
}

/// The routes of a table with a root of `root_bits`.
#[derive(Clone, Debug)]
pub(super) struct RouteSet {
    root_bits: u8,
    /// Routes of at most `root_bits` bits: (network, length) -> value.
    short: BTreeMap<(u32, u8), u32>,
    /// Per root entry: its routes longer than `root_bits`, sorted by (network, length).
    below: Vec<Vec<Route>>,
    len: usize,
}

impl RouteSet {
    /// The set of `routes` (sorted by (network, length), no duplicates) for a root of
    /// `root_bits`.
    pub fn from_sorted(routes: &[Route], root_bits: u8) -> Self {
        let mut set = RouteSet {
            root_bits,
            short: BTreeMap::new(),
            below: vec![Vec::new(); 1 << root_bits],
            len: routes.len(),
        };
        for r in routes {
            if r.len <= root_bits {
                set.short.insert(r.key(), r.value);
            } else {
                // In sorted order, so each entry's list is sorted too.
                let slot = set.slot(r.network);
                set.below[slot].push(*r);
            }
        }
        set
    }

    /// `routes` in any order, sorted and with the last of each prefix kept.
    pub fn sort_dedup(mut routes: Vec<Route>) -> Vec<Route> {
        // Stable: among equal prefixes the input order stays, and the last one is kept.
        routes.sort_by_key(Route::key);
        let mut out: Vec<Route> = Vec::with_capacity(routes.len());
        for r in routes {
            match out.last_mut() {
                Some(last) if last.key() == r.key() => *last = r,
                _ => out.push(r),
            }
        }
        out
    }

    fn slot(&self, network: u32) -> usize {
        (u64::from(network) >> (32 - u32::from(self.root_bits))) as usize
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The value of exactly this prefix.
    pub fn get(&self, network: u32, len: u8) -> Option<u32> {
        if len <= self.root_bits {
            return self.short.get(&(network, len)).copied();
        }
        let list = &self.below[self.slot(network)];
        list.binary_search_by_key(&(network, len), Route::key)
            .ok()
            .map(|i| list[i].value)
    }

    /// Adds or replaces a route; the value it had before, if any.
    pub fn insert(&mut self, r: Route) -> Option<u32> {
        let before = if r.len <= self.root_bits {
            self.short.insert(r.key(), r.value)
        } else {
            let slot = self.slot(r.network);
            let list = &mut self.below[slot];
            match list.binary_search_by_key(&r.key(), Route::key) {
                Ok(i) => Some(std::mem::replace(&mut list[i].value, r.value)),
                Err(i) => {
                    list.insert(i, r);
                    None
                }
            }
        };
        if before.is_none() {
            self.len += 1;
        }
        before
    }

    /// Removes a route; its value, if it was there.
    pub fn remove(&mut self, network: u32, len: u8) -> Option<u32> {
        let removed = if len <= self.root_bits {
            self.short.remove(&(network, len))
        } else {
            let slot = self.slot(network);
            let list = &mut self.below[slot];
            let found = list.binary_search_by_key(&(network, len), Route::key);
            let removed = found.ok().map(|i| list.remove(i).value);
            if list.is_empty() {
                // Give the memory back: a table that shrinks keeps no empty lists' capacity.
                *list = Vec::new();
            }
            removed
        };
        if removed.is_some() {
            self.len -= 1;
        }
        removed
    }

    /// The routes longer than the root below root entry `slot`, sorted.
    pub fn below(&self, slot: usize) -> &[Route] {
        &self.below[slot]
    }

    /// Takes the list of root entry `slot` out, to be put back with [`RouteSet::put_below`]
    /// (a builder reads it while it changes the table around it).
    pub fn take_below(&mut self, slot: usize) -> Vec<Route> {
        std::mem::take(&mut self.below[slot])
    }

    /// Puts back a list taken with [`RouteSet::take_below`].
    pub fn put_below(&mut self, slot: usize, list: Vec<Route>) {
        self.below[slot] = list;
    }

    /// The routes of at most the root's width with networks in `first..=last`, sorted.
    pub fn short_in(&self, first: u32, last: u32) -> impl Iterator<Item = Route> + '_ {
        self.short
            .range((first, 0)..=(last, 32))
            .map(|(&(network, len), &value)| Route {
                network,
                len,
                value,
            })
    }

    /// Every route, sorted by (network, length): per root entry, its short routes (which
    /// start at or after the entry's first address and sort before the longer routes with
    /// the same network) and then its longer ones.
    pub fn sorted(&self) -> Vec<Route> {
        let mut out = Vec::with_capacity(self.len);
        let mut short = self.short_in(0, u32::MAX).peekable();
        for (slot, list) in self.below.iter().enumerate() {
            let end = ((slot as u64 + 1) << (32 - u32::from(self.root_bits))) - 1;
            while let Some(r) = short.next_if(|r| u64::from(r.network) <= end) {
                out.push(r);
            }
            out.extend_from_slice(list);
        }
        out.extend(short);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(network: u32, len: u8, value: u32) -> Route {
        Route {
            network,
            len,
            value,
        }
    }

    #[test]
    fn sorted_interleaves_short_and_long_routes_in_order() {
        let routes = RouteSet::sort_dedup(vec![
            r(0x0a01_0000, 16, 1),
            r(0x0a00_0000, 8, 2),
            r(0x0a01_0100, 24, 3),
            r(0x0a01_0000, 24, 4),
            r(0x0b00_0000, 8, 5),
            r(0x0a01_0000, 16, 6), // replaces the first
            r(0, 0, 7),
        ]);
        for bits in [8, 16] {
            let set = RouteSet::from_sorted(&routes, bits);
            assert_eq!(set.sorted(), routes, "root of {bits} bits");
            assert_eq!(set.len(), 6);
            assert_eq!(set.get(0x0a01_0000, 16), Some(6));
        }
    }

    #[test]
    fn insert_and_remove_keep_order_and_count() {
        let mut set = RouteSet::from_sorted(&[], 16);
        assert_eq!(set.insert(r(0x0a01_0200, 24, 1)), None);
        assert_eq!(set.insert(r(0x0a01_0100, 24, 2)), None);
        assert_eq!(set.insert(r(0x0a01_0100, 24, 3)), Some(2));
        assert_eq!(set.insert(r(0x0a00_0000, 8, 4)), None);
        assert_eq!(set.len(), 3);
        assert_eq!(
            set.below(0x0a01),
            &[r(0x0a01_0100, 24, 3), r(0x0a01_0200, 24, 1)]
        );
        assert_eq!(set.remove(0x0a01_0100, 24), Some(3));
        assert_eq!(set.remove(0x0a01_0100, 24), None);
        assert_eq!(set.remove(0x0a00_0000, 8), Some(4));
        assert_eq!(set.len(), 1);
        assert_eq!(set.sorted(), vec![r(0x0a01_0200, 24, 1)]);
    }
}

//! The incoming label map (ILM): what to do with a label that arrives at the top of the stack.
//!
//! Labels are 20 bits but a router uses a few clustered ranges (SRGB 16000.., VPN labels ..).
//! A two-level direct table (1024 blocks of 1024 labels, blocks allocated on first use) finds
//! an entry with no hashing: the top level points to a label's block, the block holds its
//! labels' entries and a 2 KiB slot array saying which entry is whose. It costs 8 KiB for the
//! top level plus 2 KiB and the entries per block in use, and cannot degrade the way a hash
//! table with a bad key distribution can.
//!
//! Blocks are reference counted and never changed once built: a label change makes a new
//! table that copies the top level and the label's block and shares every other block with
//! the running table, so it costs the same with ten labels as with a hundred thousand.

use std::sync::Arc;

use super::{AdjacencyId, LabelStack, TableError, VrfId};
use crate::wire::mpls::Label;

/// What an incoming label does (the NHLFE it maps to).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IlmAction {
    /// Replace the top label with the innermost of `out`, push the rest above it, TTL - 1,
    /// TC and S kept; forward to `adj`.
    Swap {
        /// The next hop.
        adj: AdjacencyId,
        /// New labels, outermost first (at least one).
        out: LabelStack,
    },
    /// Penultimate-hop pop: remove the top label and forward what is below to `adj`.
    Pop {
        /// The next hop.
        adj: AdjacencyId,
    },
    /// Pop a VPN (table) label, which must be the bottom of the stack, and look the IP packet
    /// up in `vrf`.
    PopLookup {
        /// The VRF.
        vrf: VrfId,
    },
}

/// Where an ILM entry came from (for `show` and `trace`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IlmOrigin {
    /// The n-th `[[label]]` entry of the config (1-based).
    LabelEntry(usize),
    /// A VRF's `table_label`.
    TableLabel,
}

/// One incoming label entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IlmEntry {
    /// The incoming label.
    pub label: Label,
    /// What to do.
    pub action: IlmAction,
    /// Where it came from.
    pub origin: IlmOrigin,
    /// The slot its packets are counted in; [`LabelTable::new`] sets it to the entry's index,
    /// [`Snapshot::with_counter_slots`](super::Snapshot::with_counter_slots) to one that
    /// stays with the label across table changes, and
    /// [`Snapshot::with_label`](super::Snapshot::with_label) takes it as given.
    pub counter: u32,
}

const BLOCK: usize = 1024;
const BLOCKS: usize = (Label::MAX.get() as usize + 1) / BLOCK;

/// The entries of one block of [`BLOCK`] consecutive labels.
#[derive(Debug, Clone)]
struct Block {
    /// The entries, sorted by label; at most [`BLOCK`].
    entries: Vec<IlmEntry>,
    /// Label within the block -> index in `entries` + 1 (0: no entry).
    slots: [u16; BLOCK],
}

impl Block {
    /// A block of `entries`, which are sorted, of distinct labels, all in one block.
    fn new(entries: Vec<IlmEntry>) -> Block {
        let mut b = Block {
            entries,
            slots: [0; BLOCK],
        };
        b.index();
        b
    }

    /// Rewrites `slots` from `entries`.
    fn index(&mut self) {
        self.slots.fill(0);
        for (i, e) in self.entries.iter().enumerate() {
            // At most BLOCK (1024) entries, so the index fits in u16.
            self.slots[e.label.get() as usize % BLOCK] = i as u16 + 1;
        }
    }

    /// The index in `entries` of the entry for `label`, or where it would go.
    fn find(&self, label: Label) -> Result<usize, usize> {
        self.entries
            .binary_search_by_key(&label.get(), |e| e.label.get())
    }
}

/// The incoming label map: label -> [`IlmEntry`].
///
/// Blocks are shared: a table made by [`LabelTable::with_entry`] or
/// [`LabelTable::without_entry`] copies the top level and the one block its label is in, and
/// shares every other block with the table it was made from.
#[derive(Debug, Clone)]
pub struct LabelTable {
    /// Label block -> its entries, if any label of the block has one.
    top: Box<[Option<Arc<Block>>; BLOCKS]>,
    /// Number of entries.
    len: usize,
}

impl LabelTable {
    /// Builds the table; two entries for one label are an error.
    pub fn new(mut entries: Vec<IlmEntry>) -> Result<Self, TableError> {
        entries.sort_by_key(|e| e.label.get());
        if let Some(w) = entries.windows(2).find(|w| w[0].label == w[1].label) {
            return Err(TableError::DuplicateLabel(w[0].label.get()));
        }
        for (i, e) in entries.iter_mut().enumerate() {
            e.counter = i as u32;
        }
        let len = entries.len();
        let mut top: Box<[Option<Arc<Block>>; BLOCKS]> = Box::new([const { None }; BLOCKS]);
        let mut rest = entries.as_slice();
        while let Some(first) = rest.first() {
            let b = first.label.get() as usize / BLOCK;
            let n = rest
                .iter()
                .take_while(|e| e.label.get() as usize / BLOCK == b)
                .count();
            top[b] = Some(Arc::new(Block::new(rest[..n].to_vec())));
            rest = &rest[n..];
        }
        Ok(LabelTable { top, len })
    }

    /// A copy of this table in which `entry` is the entry for its label, added or replacing
    /// the one there; the replaced entry, if any, is returned with it.
    ///
    /// Copies the top level (one pointer per block) and the label's block; every other
    /// block is shared with `self`.
    pub fn with_entry(&self, entry: IlmEntry) -> (Self, Option<IlmEntry>) {
        let b = entry.label.get() as usize / BLOCK;
        let mut block = match &self.top[b] {
            Some(block) => Block::clone(block),
            None => Block::new(Vec::new()),
        };
        let replaced = match block.find(entry.label) {
            Ok(i) => Some(std::mem::replace(&mut block.entries[i], entry)),
            Err(i) => {
                block.entries.insert(i, entry);
                block.index();
                None
            }
        };
        let mut top = self.top.clone();
        top[b] = Some(Arc::new(block));
        let len = self.len + usize::from(replaced.is_none());
        (LabelTable { top, len }, replaced)
    }

    /// A copy of this table without the entry for `label`, and that entry; `None` if it has
    /// none. Copies as [`LabelTable::with_entry`] does; a block left empty is freed.
    pub fn without_entry(&self, label: Label) -> Option<(Self, IlmEntry)> {
        let b = label.get() as usize / BLOCK;
        let old = self.top[b].as_deref()?;
        let i = old.find(label).ok()?;
        let mut top = self.top.clone();
        top[b] = if old.entries.len() == 1 {
            None
        } else {
            let mut block = old.clone();
            block.entries.remove(i);
            block.index();
            Some(Arc::new(block))
        };
        let table = LabelTable {
            top,
            len: self.len - 1,
        };
        Some((table, old.entries[i]))
    }

    /// A copy of this table with the counter slot of each entry set by `slot` (by label).
    /// Every block is copied.
    pub(crate) fn with_counters(&self, mut slot: impl FnMut(Label) -> u32) -> Self {
        let mut next = self.clone();
        for block in next.top.iter_mut().flatten() {
            let mut b = Block::clone(block);
            for e in &mut b.entries {
                e.counter = slot(e.label);
            }
            *block = Arc::new(b);
        }
        next
    }

    /// The entry for a label, if any.
    // Forced: once process_batch grew, LLVM stopped inlining it into the per-frame path,
    // which cost about 30 instructions per labelled frame (callgrind).
    #[inline(always)]
    pub fn lookup(&self, label: u32) -> Option<&IlmEntry> {
        let l = label as usize & (BLOCKS * BLOCK - 1);
        // Dependent loads: the block pointer, the slot, the entry (the block's entry pointer
        // sits in the same allocation, loaded beside the slot).
        let block = self.top[l / BLOCK].as_deref()?;
        let i = usize::from(block.slots[l % BLOCK]).checked_sub(1)?;
        block.entries.get(i)
    }

    /// All entries, in label order.
    pub fn entries(&self) -> impl Iterator<Item = &IlmEntry> + '_ {
        self.top.iter().flatten().flat_map(|b| b.entries.iter())
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table has no entry.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Heap bytes used by the table (blocks shared with other tables counted in full).
    pub fn memory_bytes(&self) -> usize {
        core::mem::size_of::<[Option<Arc<Block>>; BLOCKS]>()
            + self
                .top
                .iter()
                .flatten()
                .map(|b| {
                    core::mem::size_of::<Block>()
                        + b.entries.capacity() * core::mem::size_of::<IlmEntry>()
                })
                .sum::<usize>()
    }

    /// Whether `self` and `other` share the block of `label` (the same allocation).
    #[cfg(test)]
    pub(crate) fn shares_block(&self, other: &LabelTable, label: u32) -> bool {
        let b = label as usize / BLOCK;
        match (&self.top[b], &other.top[b]) {
            (Some(x), Some(y)) => Arc::ptr_eq(x, y),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(label: u32, vrf: u16) -> IlmEntry {
        IlmEntry {
            label: Label::new(label).unwrap(),
            action: IlmAction::PopLookup { vrf: VrfId(vrf) },
            origin: IlmOrigin::TableLabel,
            counter: 0,
        }
    }

    #[test]
    fn finds_entries_across_blocks() {
        let t = LabelTable::new(vec![
            entry(1001, 1),
            entry(16002, 2),
            entry(1048575, 3),
            entry(16, 4),
        ])
        .unwrap();
        for (l, v) in [(1001, 1), (16002, 2), (1048575, 3), (16, 4)] {
            assert_eq!(
                t.lookup(l).unwrap().action,
                IlmAction::PopLookup { vrf: VrfId(v) }
            );
        }
        for l in [0, 17, 1000, 1002, 16001, 16003, 1048574, 2_000_000] {
            assert!(t.lookup(l).is_none(), "label {l}");
        }
        // Four labels in four blocks: the top level plus four blocks.
        assert!(t.memory_bytes() < 24 * 1024);
    }

    fn swap(label: u32, adj: u32) -> IlmEntry {
        IlmEntry {
            label: Label::new(label).unwrap(),
            action: IlmAction::Swap {
                adj: AdjacencyId(adj),
                out: LabelStack::new(&[Label::new(16999).unwrap()]).unwrap(),
            },
            origin: IlmOrigin::LabelEntry(1),
            counter: 7,
        }
    }

    fn labels(t: &LabelTable) -> Vec<u32> {
        t.entries().map(|e| e.label.get()).collect()
    }

    #[test]
    fn adds_replaces_and_removes_one_entry() {
        let t = LabelTable::new(vec![entry(1001, 1), entry(16002, 2), entry(16010, 3)]).unwrap();
        // Added in an existing block, between two entries: both keep their place.
        let (added, replaced) = t.with_entry(swap(16005, 4));
        assert_eq!(replaced, None);
        assert_eq!(added.len(), 4);
        assert_eq!(labels(&added), [1001, 16002, 16005, 16010]);
        assert_eq!(added.lookup(16005), Some(&swap(16005, 4)));
        for (l, v) in [(1001, 1), (16002, 2), (16010, 3)] {
            assert_eq!(added.lookup(l), t.lookup(l), "label {l}");
            assert_eq!(
                added.lookup(l).unwrap().action,
                IlmAction::PopLookup { vrf: VrfId(v) }
            );
        }
        assert!(t.lookup(16005).is_none(), "the running table is unchanged");
        // Replaced: the old entry comes back, the count stays.
        let (swapped, replaced) = added.with_entry(swap(16005, 9));
        assert_eq!(replaced, Some(swap(16005, 4)));
        assert_eq!(swapped.len(), 4);
        assert_eq!(swapped.lookup(16005), Some(&swap(16005, 9)));
        // Added in a block of its own, then removed: the block goes with it.
        let (far, _) = swapped.with_entry(swap(500_000, 1));
        assert_eq!(labels(&far), [1001, 16002, 16005, 16010, 500_000]);
        assert!(far.memory_bytes() > swapped.memory_bytes() + core::mem::size_of::<Block>());
        let (back, removed) = far.without_entry(Label::new(500_000).unwrap()).unwrap();
        assert_eq!(removed, swap(500_000, 1));
        assert!(back.lookup(500_000).is_none());
        assert_eq!(back.memory_bytes(), swapped.memory_bytes());
        // Removed from a block that keeps others: they are still found.
        let (gone, removed) = back.without_entry(Label::new(16002).unwrap()).unwrap();
        assert_eq!(Some(&removed), t.lookup(16002));
        assert_eq!(labels(&gone), [1001, 16005, 16010]);
        assert!(gone.lookup(16002).is_none());
        assert_eq!(gone.lookup(16005), Some(&swap(16005, 9)));
        assert_eq!(gone.lookup(16010), t.lookup(16010));
        assert!(gone.without_entry(Label::new(16002).unwrap()).is_none());
        assert!(gone.without_entry(Label::new(70_000).unwrap()).is_none());
        assert_eq!(gone.len(), 3);
    }

    #[test]
    fn a_change_shares_every_block_but_its_own() {
        // Three blocks: 0..1023 holds 1001, 15360..16383 holds 16002, 16384..17407 holds 16400.
        let t = LabelTable::new(vec![entry(1001, 1), entry(16002, 2), entry(16400, 3)]).unwrap();
        let (added, _) = t.with_entry(swap(16003, 4));
        assert!(
            !added.shares_block(&t, 16003),
            "the changed block is a copy"
        );
        assert!(added.shares_block(&t, 1001) && added.shares_block(&t, 16400));
        let (removed, _) = added.without_entry(Label::new(16400).unwrap()).unwrap();
        assert!(removed.shares_block(&added, 1001) && removed.shares_block(&added, 16002));
        let recounted = t.with_counters(|l| l.get());
        assert!(!recounted.shares_block(&t, 1001));
        assert_eq!(recounted.lookup(16400).unwrap().counter, 16400);
    }

    #[test]
    fn rejects_duplicates() {
        assert_eq!(
            LabelTable::new(vec![entry(1001, 1), entry(1001, 2)]).unwrap_err(),
            TableError::DuplicateLabel(1001)
        );
    }
}

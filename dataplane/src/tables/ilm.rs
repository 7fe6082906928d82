//! The incoming label map (ILM): what to do with a label that arrives at the top of the stack.
//!
//! Labels are 20 bits but a router uses a few clustered ranges (SRGB 16000.., VPN labels ..).
//! A two-level direct table (1024 blocks of 1024 labels, blocks allocated on first use) finds
//! an entry in two dependent loads with no hashing, costs 4 KiB for the top level plus 4 KiB
//! per block in use, and cannot degrade the way a hash table with a bad key distribution can.

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
    /// stays with the label across table changes.
    pub counter: u32,
}

const BLOCK: usize = 1024;
const BLOCKS: usize = (Label::MAX.get() as usize + 1) / BLOCK;

/// The incoming label map: label -> [`IlmEntry`].
#[derive(Debug, Clone)]
pub struct LabelTable {
    /// Label block -> block index + 1 (0: no block).
    top: Box<[u16; BLOCKS]>,
    /// Label within block -> entry index + 1 (0: no entry).
    blocks: Vec<Box<[u32; BLOCK]>>,
    entries: Vec<IlmEntry>,
}

impl LabelTable {
    /// Builds the table; two entries for one label are an error.
    pub fn new(mut entries: Vec<IlmEntry>) -> Result<Self, TableError> {
        entries.sort_by_key(|e| e.label.get());
        if let Some(w) = entries.windows(2).find(|w| w[0].label == w[1].label) {
            return Err(TableError::DuplicateLabel(w[0].label.get()));
        }
        if entries.len() >= u32::MAX as usize {
            return Err(TableError::TooMany("label entries"));
        }
        for (i, e) in entries.iter_mut().enumerate() {
            e.counter = i as u32;
        }
        let mut top = Box::new([0u16; BLOCKS]);
        let mut blocks: Vec<Box<[u32; BLOCK]>> = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let l = e.label.get() as usize;
            let slot = &mut top[l / BLOCK];
            if *slot == 0 {
                blocks.push(Box::new([0; BLOCK]));
                // At most BLOCKS (1024) blocks exist, so the index fits in u16.
                *slot = blocks.len() as u16;
            }
            blocks[usize::from(*slot) - 1][l % BLOCK] = i as u32 + 1;
        }
        Ok(LabelTable {
            top,
            blocks,
            entries,
        })
    }

    /// Replaces the entries by the same entries (same labels, same order) with other counter
    /// slots: the index stays valid.
    pub(crate) fn set_entries(&mut self, entries: Vec<IlmEntry>) {
        debug_assert!(entries
            .iter()
            .zip(&self.entries)
            .all(|(a, b)| a.label == b.label));
        if entries.len() == self.entries.len() {
            self.entries = entries;
        }
    }

    /// The entry for a label, if any.
    #[inline(always)]
    pub fn lookup(&self, label: u32) -> Option<&IlmEntry> {
        self.entries.get(self.lookup_index(label)?)
    }

    /// The index in [`LabelTable::entries`] of a label's entry, if any (the pipeline counts
    /// packets per entry by it).
    // Forced: once process_batch grew, LLVM stopped inlining it into the per-frame path,
    // which cost about 30 instructions per labelled frame (callgrind).
    #[inline(always)]
    pub fn lookup_index(&self, label: u32) -> Option<usize> {
        let l = label as usize & (BLOCKS * BLOCK - 1);
        let b = usize::from(self.top[l / BLOCK]).checked_sub(1)?;
        (self.blocks.get(b)?[l % BLOCK] as usize).checked_sub(1)
    }

    /// All entries, sorted by label.
    pub fn entries(&self) -> &[IlmEntry] {
        &self.entries
    }

    /// Heap bytes used by the table.
    pub fn memory_bytes(&self) -> usize {
        core::mem::size_of::<[u16; BLOCKS]>()
            + self.blocks.len() * core::mem::size_of::<[u32; BLOCK]>()
            + self.entries.capacity() * core::mem::size_of::<IlmEntry>()
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

    #[test]
    fn rejects_duplicates() {
        assert_eq!(
            LabelTable::new(vec![entry(1001, 1), entry(1001, 2)]).unwrap_err(),
            TableError::DuplicateLabel(1001)
        );
    }
}

//! One lane's buffer: encoded COPY rows, the records set aside, and what the merge needs to
//! know about them (repeated keys, tombstones).

use std::collections::HashSet;

use crate::copy::CopyRows;
use crate::rejected::RejectedRecord;

pub(crate) struct Batch {
    pub rows: CopyRows,
    /// Records set aside, kept with the batch.
    pub rejected: Vec<RejectedRecord>,
    key_hashes: HashSet<u64>,
    /// Some key appears twice (the merge must deduplicate).
    pub duplicates: bool,
    /// Some record is a tombstone.
    pub tombstones: bool,
    /// Rows, bytes and rejected records when the last state arrived: what states cover.
    covered: (usize, usize, usize),
}

impl Batch {
    pub(crate) fn new() -> Batch {
        Batch {
            rows: CopyRows::new(),
            rejected: Vec::new(),
            key_hashes: HashSet::new(),
            duplicates: false,
            tombstones: false,
            covered: (0, 0, 0),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rows.is_empty() && self.rejected.is_empty()
    }

    /// Records held: rows and set-aside ones.
    pub(crate) fn records(&self) -> usize {
        self.rows.len() + self.rejected.len()
    }

    /// Bytes held: encoded rows and the text of rejected records.
    pub(crate) fn bytes(&self) -> usize {
        self.rows.bytes() + self.rejected.iter().map(|r| r.data.len()).sum::<usize>()
    }

    /// Notes a row's key and kind after it was written.
    pub(crate) fn noted(&mut self, key_hash: u64, tombstone: bool) {
        self.tombstones |= tombstone;
        if !self.key_hashes.insert(key_hash) {
            self.duplicates = true;
        }
    }

    /// Everything so far is covered by a state.
    pub(crate) fn mark_covered(&mut self) {
        self.covered = (self.rows.len(), self.rows.bytes(), self.rejected.len());
    }

    /// Drops the records no state covers yet.
    pub(crate) fn cut_to_last_state(&mut self) {
        let (rows, bytes, rejected) = self.covered;
        self.rows.truncate(rows, bytes);
        self.rejected.truncate(rejected);
    }
}

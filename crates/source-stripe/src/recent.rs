//! The ids of the events applied lately, so the same event received twice (by webhook and by
//! polling, or delivered twice) is applied once. Bounded: the oldest ids are forgotten first.

use std::collections::hash_map::RandomState;
use std::collections::{HashSet, VecDeque};
use std::hash::BuildHasher;

/// Event ids remembered by default: far more than arrive between two polls.
pub const DEFAULT_CAPACITY: usize = 100_000;

/// A bounded set of event ids. Each is kept as a 128-bit digest (two independently keyed
/// SipHashes), a fifth of the memory of the id twice over; two ids share a digest with
/// probability 2^-128.
pub struct RecentIds {
    order: VecDeque<u128>,
    ids: HashSet<u128>,
    capacity: usize,
    keys: (RandomState, RandomState),
}

impl Default for RecentIds {
    fn default() -> Self {
        RecentIds::with_capacity(DEFAULT_CAPACITY)
    }
}

impl RecentIds {
    /// Remembers at most `capacity` ids.
    pub fn with_capacity(capacity: usize) -> RecentIds {
        RecentIds {
            order: VecDeque::new(),
            ids: HashSet::new(),
            capacity: capacity.max(1),
            keys: (RandomState::new(), RandomState::new()),
        }
    }

    fn digest(&self, id: &str) -> u128 {
        (u128::from(self.keys.0.hash_one(id)) << 64) | u128::from(self.keys.1.hash_one(id))
    }

    /// Whether `id` was applied lately.
    #[cfg(test)]
    pub fn contains(&self, id: &str) -> bool {
        self.ids.contains(&self.digest(id))
    }

    /// Remembers `id`; false when it already was.
    pub fn insert(&mut self, id: &str) -> bool {
        let digest = self.digest(id);
        if !self.ids.insert(digest) {
            return false;
        }
        self.order.push_back(digest);
        if self.order.len() > self.capacity
            && let Some(oldest) = self.order.pop_front()
        {
            self.ids.remove(&oldest);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_newest_ids() {
        let mut recent = RecentIds::with_capacity(2);
        assert!(recent.insert("a"));
        assert!(!recent.insert("a"));
        assert!(recent.insert("b"));
        assert!(recent.insert("c"));
        assert!(!recent.contains("a"));
        assert!(recent.contains("b") && recent.contains("c"));
    }
}

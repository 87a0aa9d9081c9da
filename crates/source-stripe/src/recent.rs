//! The ids of the events applied lately, so the same event received twice (by webhook and by
//! polling, or delivered twice) is applied once. Bounded in time and in number: ids of events
//! created more than [`REMEMBER_SECS`] before the newest one are forgotten, and the oldest first
//! past the capacity. A copy arriving later still meets the version gates, which keep a newer
//! version over it.

use std::collections::hash_map::RandomState;
use std::collections::{HashSet, VecDeque};
use std::hash::BuildHasher;

/// Event ids remembered at most.
pub(crate) const DEFAULT_CAPACITY: usize = 100_000;
/// How long, in event time, an id is remembered: far longer than an event stays in the polled
/// window (lateness, interval and clock slack), so memory stays flat at a steady rate.
pub(crate) const REMEMBER_SECS: i64 = 120;

/// A bounded set of event ids. Each is kept as a 128-bit digest (two independently keyed
/// SipHashes), a fifth of the memory of the id twice over; two ids share a digest with
/// probability 2^-128.
pub(crate) struct RecentIds {
    /// Digests with their events' seconds, in the order they were remembered.
    order: VecDeque<(u128, i64)>,
    ids: HashSet<u128>,
    capacity: usize,
    newest: i64,
    keys: (RandomState, RandomState),
}

impl Default for RecentIds {
    fn default() -> Self {
        RecentIds::with_capacity(DEFAULT_CAPACITY)
    }
}

impl RecentIds {
    /// Remembers at most `capacity` ids.
    pub(crate) fn with_capacity(capacity: usize) -> RecentIds {
        RecentIds {
            order: VecDeque::new(),
            ids: HashSet::new(),
            capacity: capacity.max(1),
            newest: i64::MIN,
            keys: (RandomState::new(), RandomState::new()),
        }
    }

    fn digest(&self, id: &str) -> u128 {
        (u128::from(self.keys.0.hash_one(id)) << 64) | u128::from(self.keys.1.hash_one(id))
    }

    /// Whether `id` was applied lately.
    #[cfg(test)]
    pub(crate) fn contains(&self, id: &str) -> bool {
        self.ids.contains(&self.digest(id))
    }

    /// Remembers `id`, of an event created at second `created`; false when it already was.
    pub(crate) fn insert(&mut self, id: &str, created: i64) -> bool {
        let digest = self.digest(id);
        if !self.ids.insert(digest) {
            return false;
        }
        self.order.push_back((digest, created));
        self.newest = self.newest.max(created);
        let horizon = self.newest.saturating_sub(REMEMBER_SECS);
        while let Some(&(oldest, at)) = self.order.front() {
            if self.order.len() <= self.capacity && at >= horizon {
                break;
            }
            self.order.pop_front();
            self.ids.remove(&oldest);
        }
        true
    }

    /// How many ids are remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.order.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_newest_ids() {
        let mut recent = RecentIds::with_capacity(2);
        assert!(recent.insert("a", 1));
        assert!(!recent.insert("a", 1));
        assert!(recent.insert("b", 1));
        assert!(recent.insert("c", 1));
        assert!(!recent.contains("a"));
        assert!(recent.contains("b") && recent.contains("c"));
    }

    #[test]
    fn forgets_ids_older_than_the_horizon() {
        let mut recent = RecentIds::with_capacity(1000);
        assert!(recent.insert("old", 100));
        assert!(recent.insert("late", 100 + REMEMBER_SECS));
        assert!(recent.contains("old"), "at the horizon: still remembered");
        assert!(recent.insert("new", 101 + REMEMBER_SECS));
        assert!(!recent.contains("old"));
        assert!(recent.contains("late") && recent.contains("new"));
        // An event older than the newest one does not move the horizon back.
        assert!(recent.insert("reordered", 105));
        assert_eq!(recent.len(), 3);
        // A steady stream keeps a steady number of ids.
        for second in 0..10 * REMEMBER_SECS {
            recent.insert(&format!("evt_{second}"), 1000 + second);
        }
        assert_eq!(recent.len(), REMEMBER_SECS as usize + 1);
    }
}

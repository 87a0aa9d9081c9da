//! The ids of the events applied lately, so the same event received twice (by webhook and by
//! polling, or delivered twice) is applied once. Bounded: the oldest ids are forgotten first.

use std::collections::{HashSet, VecDeque};

/// Event ids remembered by default: far more than arrive between two polls.
pub const DEFAULT_CAPACITY: usize = 100_000;

/// A bounded set of event ids.
pub struct RecentIds {
    order: VecDeque<String>,
    ids: HashSet<String>,
    capacity: usize,
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
        }
    }

    /// Whether `id` was applied lately.
    #[cfg(test)]
    pub fn contains(&self, id: &str) -> bool {
        self.ids.contains(id)
    }

    /// Remembers `id`; false when it already was.
    pub fn insert(&mut self, id: &str) -> bool {
        if !self.ids.insert(id.to_owned()) {
            return false;
        }
        self.order.push_back(id.to_owned());
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

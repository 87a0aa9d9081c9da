//! The data of one account in one mode: per stream, the objects in creation order with their
//! JSON serialised once (a list page is a concatenation of these bytes), the nested items of
//! parents, and the event log.

use std::collections::HashMap;
use std::sync::OnceLock;

use bytes::Bytes;
use rand::rngs::StdRng;
use serde_json::Value;
use stripe_catalog::Resource;

use crate::ids::IdShape;
use crate::listed::{LIST_ITEM_DEPTH, Listed};
use crate::pretty::pretty_at;

/// Position of an object in creation order: `created`, then a data-set-wide sequence number
/// that orders objects created within the same second.
pub(crate) type Key = (i64, u64);

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub key: Key,
    pub id: Box<str>,
    /// Deleted objects keep their place so a cursor on them still positions a page.
    pub deleted: bool,
    json: Bytes,
    /// The pretty form at list depth, made the first time a list page carries the object.
    in_list: OnceLock<Bytes>,
}

impl Entry {
    pub(crate) fn new(key: Key, id: Box<str>, deleted: bool, json: Bytes) -> Entry {
        Entry {
            key,
            id,
            deleted,
            json,
            in_list: OnceLock::new(),
        }
    }

    /// The object's compact JSON.
    pub(crate) fn json(&self) -> &Bytes {
        &self.json
    }

    pub(crate) fn set_json(&mut self, json: Bytes) {
        self.json = json;
        self.in_list = OnceLock::new();
    }
}

impl Listed for Entry {
    fn compact(&self) -> &Bytes {
        &self.json
    }

    fn in_list(&self) -> Bytes {
        self.in_list
            .get_or_init(|| pretty_at(&self.json, LIST_ITEM_DEPTH))
            .clone()
    }
}

/// One top-level stream, ascending by key.
#[derive(Debug, Default)]
pub(crate) struct Collection {
    pub entries: Vec<Entry>,
    pub index: HashMap<Box<str>, Key>,
}

impl Collection {
    pub(crate) fn position(&self, id: &str) -> Option<usize> {
        let key = *self.index.get(id)?;
        let at = self.entries.partition_point(|e| e.key < key);
        (self.entries.get(at)?.key == key).then_some(at)
    }

    pub(crate) fn get(&self, id: &str) -> Option<&Entry> {
        self.position(id).map(|at| &self.entries[at])
    }

    pub(crate) fn live(&self, id: &str) -> Option<&Entry> {
        self.get(id).filter(|e| !e.deleted)
    }

    pub(crate) fn insert(&mut self, entry: Entry) {
        self.index.insert(entry.id.clone(), entry.key);
        let at = self.entries.partition_point(|e| e.key < entry.key);
        self.entries.insert(at, entry);
    }

    /// Non-deleted objects, newest first.
    pub(crate) fn newest_first(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().rev().filter(|e| !e.deleted)
    }
}

/// An item of a parent's nested list (subscription item, invoice line…).
#[derive(Debug, Clone)]
pub(crate) struct Child {
    pub id: Box<str>,
    pub json: Bytes,
}

impl Child {
    /// An item as stored: its id and its serialised JSON.
    pub(crate) fn of(item: &serde_json::Value) -> Child {
        Child {
            id: item
                .get("id")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .into(),
            json: Bytes::from(item.to_string()),
        }
    }
}

/// The items of one nested stream, by parent id, in the parent's order.
impl Listed for Child {
    fn compact(&self) -> &Bytes {
        &self.json
    }
}

#[derive(Debug, Default)]
pub(crate) struct Children {
    pub by_parent: HashMap<Box<str>, Vec<Child>>,
}

#[derive(Debug, Clone)]
pub(crate) struct EventEntry {
    pub key: Key,
    pub id: Box<str>,
    pub event_type: Box<str>,
    pub json: Bytes,
}

impl Listed for EventEntry {
    fn compact(&self) -> &Bytes {
        &self.json
    }
}

/// Events ascending by key; ids index into it (events are only ever appended once built).
#[derive(Debug, Default)]
pub(crate) struct EventLog {
    pub entries: Vec<EventEntry>,
    pub index: HashMap<Box<str>, usize>,
}

impl EventLog {
    pub(crate) fn push(&mut self, event: EventEntry) {
        self.index.insert(event.id.clone(), self.entries.len());
        self.entries.push(event);
    }

    pub(crate) fn get(&self, id: &str) -> Option<&EventEntry> {
        self.index.get(id).map(|&i| &self.entries[i])
    }
}

/// Everything one (account, mode) pair serves.
#[derive(Debug)]
pub(crate) struct DataSet {
    pub account_id: String,
    pub is_platform: bool,
    pub livemode: bool,
    pub collections: HashMap<&'static str, Collection>,
    pub children: HashMap<&'static str, Children>,
    pub events: EventLog,
    pub next_seq: u64,
    /// Randomness for objects created through the API (ids), seeded from the data set's seed.
    pub rng: StdRng,
    pub id_shapes: HashMap<&'static str, IdShape>,
}

impl DataSet {
    pub(crate) fn next_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    pub(crate) fn collection(&self, resource: &Resource) -> Option<&Collection> {
        self.collections.get(resource.stream.as_str())
    }

    /// The `account` attribute of this data set's events: set for connected accounts only.
    pub(crate) fn event_account(&self) -> Option<&str> {
        (!self.is_platform).then_some(self.account_id.as_str())
    }

    /// Whether an id is already taken by any object of the data set.
    pub(crate) fn id_taken(&self, id: &str) -> bool {
        self.collections.values().any(|c| c.index.contains_key(id))
    }

    /// Parses the stored objects of a stream (nested streams: the items of live parents),
    /// newest first, deleted excluded.
    pub(crate) fn objects(&self, resource: &'static Resource) -> Vec<Value> {
        let parse = |json: &Bytes| serde_json::from_slice(json).unwrap_or(Value::Null);
        if let Some(parent) = &resource.parent {
            let (Some(parents), Some(children)) = (
                self.collections.get(parent.stream.as_str()),
                self.children.get(resource.stream.as_str()),
            ) else {
                return Vec::new();
            };
            return parents
                .newest_first()
                .filter_map(|p| children.by_parent.get(&p.id))
                .flatten()
                .map(|c| parse(&c.json))
                .collect();
        }
        if resource.stream == "events" {
            return self
                .events
                .entries
                .iter()
                .rev()
                .map(|e| parse(&e.json))
                .collect();
        }
        self.collections
            .get(resource.stream.as_str())
            .map(|c| c.newest_first().map(|e| parse(&e.json)).collect())
            .unwrap_or_default()
    }
}

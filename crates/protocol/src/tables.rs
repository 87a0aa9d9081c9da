//! A checkpoint tied to the tables it was written into.
//!
//! A destination's `setup` reports, per stream, an identity for the table it writes (which
//! changes when the table is created again: dropped by a teardown and recreated, or a new
//! database) and whether the table holds rows. A [`SyncState`] remembers what it saw; when the
//! next run's report differs (another table, or an empty table where rows were committed), the
//! stream's source state no longer describes what the table holds, so it is dropped and the
//! stream is read again from the start. Every holder of the state (the engine, the CLI's store,
//! a service) applies the same report with [`SyncState::reconcile_tables`] and gets the same
//! result.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{JsonMap, SourceState, SyncState};

/// The key of [`SyncState::destination`] under which the tables seen are kept.
const TABLES_KEY: &str = "tables";

/// What a destination's `setup` found or made for one stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableReport {
    /// Changes whenever the table is created anew (opaque; compared for equality only).
    pub identity: String,
    /// Whether the table holds any row.
    pub has_rows: bool,
    /// Where it is, for messages (e.g. `stripe.customers`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
}

/// What a checkpoint remembers of a stream's table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct TableSeen {
    identity: String,
    /// Rows were committed to it, or it held rows when the checkpoint saw it.
    rows: bool,
}

/// Why a stream's checkpoint was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableChange {
    /// The table is not the one the checkpoint was written into.
    Recreated,
    /// The table is empty although rows were committed to it.
    Emptied,
    /// The table is empty and the checkpoint never saw it (saved before tables were reported,
    /// or what it remembers cannot be read): nothing says the rows it describes are there.
    Unverified,
}

/// A stream whose checkpoint [`SyncState::reconcile_tables`] dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamReset {
    /// The stream.
    pub stream: String,
    /// Its table, as the destination named it.
    pub table: Option<String>,
    /// Why.
    pub change: TableChange,
}

impl std::fmt::Display for StreamReset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let table = self
            .table
            .as_deref()
            .map(|t| format!("its table {t}"))
            .unwrap_or_else(|| "its table".to_owned());
        let why = match self.change {
            TableChange::Recreated => {
                "is not the table its checkpoint was written into (it was dropped and created again, or the destination moved)"
            }
            TableChange::Emptied => "is empty although rows were committed to it",
            TableChange::Unverified => {
                "is empty, and the checkpoint was saved before it recorded its tables"
            }
        };
        write!(
            f,
            "stream {}: {table} {why}; its checkpoint is dropped and the stream is read again from the start",
            self.stream
        )
    }
}

impl SyncState {
    /// The tables the state saw; `None` when it saw none, or what it holds cannot be read (a
    /// hand edit, a later version's shape), which is treated the same way.
    fn tables_seen(&self) -> Option<BTreeMap<String, TableSeen>> {
        let value = self.destination.get(TABLES_KEY)?;
        serde_json::from_value(value.clone()).ok()
    }

    fn set_tables_seen(&mut self, seen: &BTreeMap<String, TableSeen>) {
        let value = serde_json::to_value(seen).unwrap_or(Value::Object(JsonMap::new()));
        self.destination.insert(TABLES_KEY.to_owned(), value);
    }

    /// Applies a destination's report of its tables: drops the source state of every stream
    /// whose table is not the one seen before, or is empty although rows were committed, and
    /// remembers the tables now reported. A state that never saw a table (a first run, or one
    /// saved before tables were reported) adopts it as it is, unless the table is empty while
    /// the stream has a checkpoint: then nothing says the rows are there, and an empty stream is
    /// cheap to read again.
    pub fn reconcile_tables(&mut self, report: &BTreeMap<String, TableReport>) -> Vec<StreamReset> {
        let mut seen = self.tables_seen().unwrap_or_default();
        let mut resets = Vec::new();
        for (stream, now) in report {
            let before = seen.get(stream);
            let change = match before {
                Some(b) if b.identity != now.identity => Some(TableChange::Recreated),
                Some(b) if b.rows && !now.has_rows => Some(TableChange::Emptied),
                Some(_) => None,
                None if !now.has_rows => Some(TableChange::Unverified),
                None => None,
            };
            let had_state = self
                .source
                .streams
                .get(stream)
                .is_some_and(|s| !s.is_null());
            if let Some(change) = change
                && had_state
            {
                self.source.streams.remove(stream);
                resets.push(StreamReset {
                    stream: stream.clone(),
                    table: now.table.clone(),
                    change,
                });
            }
            let rows_before = change.is_none() && before.is_some_and(|b| b.rows);
            seen.insert(
                stream.clone(),
                TableSeen {
                    identity: now.identity.clone(),
                    rows: rows_before || now.has_rows,
                },
            );
        }
        self.set_tables_seen(&seen);
        resets
    }

    /// Notes that a committed state carried rows into its stream's table.
    pub(crate) fn note_committed(&mut self, state: &SourceState) {
        let (SourceState::Stream(s), Some(stats)) = (state, state.destination_stats()) else {
            return;
        };
        if stats.committed == 0 {
            return;
        }
        let Some(mut seen) = self.tables_seen() else {
            return;
        };
        if let Some(table) = seen.get_mut(&s.stream)
            && !table.rows
        {
            table.rows = true;
            self.set_tables_seen(&seen);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn report(entries: &[(&str, &str, bool)]) -> BTreeMap<String, TableReport> {
        entries
            .iter()
            .map(|(stream, identity, has_rows)| {
                (
                    stream.to_string(),
                    TableReport {
                        identity: identity.to_string(),
                        has_rows: *has_rows,
                        table: Some(format!("stripe.{stream}")),
                    },
                )
            })
            .collect()
    }

    fn state_with(streams: &[&str]) -> SyncState {
        let mut state = SyncState::default();
        for s in streams {
            state
                .source
                .streams
                .insert(s.to_string(), json!({"status": "complete"}));
        }
        state.source.global = json!({"events_cursor": 5});
        state
    }

    #[test]
    fn a_state_that_never_saw_its_tables_adopts_them_unless_one_is_empty() {
        let mut state = state_with(&["customers", "invoices"]);
        let resets = state.reconcile_tables(&report(&[
            ("customers", "g1", true),
            ("invoices", "g2", false),
        ]));
        assert!(state.source.streams.contains_key("customers"));
        assert_eq!(
            state.destination["tables"]["customers"],
            json!({"identity": "g1", "rows": true})
        );
        // An empty table under a checkpoint that never saw it: read again, to be sure.
        assert_eq!(resets.len(), 1);
        assert_eq!(resets[0].stream, "invoices");
        assert_eq!(resets[0].change, TableChange::Unverified);
        assert!(!state.source.streams.contains_key("invoices"));
        // What a state remembers in a shape it cannot read counts as never seen.
        let mut odd = state_with(&["customers"]);
        odd.destination
            .insert("tables".into(), json!({"customers": "g1"}));
        let resets = odd.reconcile_tables(&report(&[("customers", "g1", false)]));
        assert_eq!(resets.len(), 1);
    }

    #[test]
    fn a_recreated_table_drops_only_its_streams_checkpoint() {
        let mut state = state_with(&["customers", "invoices"]);
        state.reconcile_tables(&report(&[
            ("customers", "g1", true),
            ("invoices", "g2", true),
        ]));
        let resets = state.reconcile_tables(&report(&[
            ("customers", "g9", false),
            ("invoices", "g2", true),
        ]));
        assert_eq!(resets.len(), 1);
        assert_eq!(resets[0].stream, "customers");
        assert_eq!(resets[0].change, TableChange::Recreated);
        assert!(!state.source.streams.contains_key("customers"));
        assert!(state.source.streams.contains_key("invoices"));
        assert_eq!(state.source.global, json!({"events_cursor": 5}));
        // Seen once, the new table is the reference: the next report changes nothing.
        assert!(
            state
                .reconcile_tables(&report(&[("customers", "g9", false)]))
                .is_empty()
        );
    }

    #[test]
    fn an_emptied_table_drops_its_checkpoint_once_rows_were_committed() {
        let mut state = state_with(&[]);
        state.reconcile_tables(&report(&[("customers", "g1", false)]));
        state
            .source
            .streams
            .insert("customers".into(), json!({"status": "complete"}));
        // Nothing committed yet: an empty table is what the checkpoint describes.
        assert!(
            state
                .reconcile_tables(&report(&[("customers", "g1", false)]))
                .is_empty()
        );
        let committed =
            SourceState::stream("customers", json!({"status": "complete"})).with_committed(3);
        state.apply(&committed);
        let resets = state.reconcile_tables(&report(&[("customers", "g1", false)]));
        assert_eq!(resets.len(), 1);
        assert_eq!(resets[0].change, TableChange::Emptied);
        assert!(resets[0].to_string().contains("stripe.customers is empty"));
    }

    #[test]
    fn a_stream_without_a_checkpoint_has_nothing_to_drop() {
        let mut state = state_with(&[]);
        state.reconcile_tables(&report(&[("customers", "g1", true)]));
        assert!(
            state
                .reconcile_tables(&report(&[("customers", "g2", true)]))
                .is_empty()
        );
    }
}

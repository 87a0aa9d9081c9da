//! A checkpoint saved by the reference system (stripe/sync-engine), continued instead of
//! discarded, so that switching costs no re-backfill. Its per-stream state is
//! `{accounted_range?: {gte, lt}, remaining: [{gte, lt, cursor}]}` (RFC 3339 times or dates):
//! everything in the accounted range but the remaining ranges was read, and a remaining range
//! with a cursor was read down to that object (Stripe lists newest first; `starting_after` the
//! cursor reads what is older). `remaining: []` is a stream complete for its range. Its global
//! state is `{events_cursor: <unix seconds>}`: the events up to then were applied.
//!
//! It is converted once, at the start of a read, into this source's own checkpoints: the
//! remaining ranges from their cursors, plus the ranges the reference never covered (before
//! this source's start, or after the events cursor can catch up), and the events cursor.
//! Without an events cursor (the reference polls events only when asked), events are read
//! from the reference's last run on (the end of its accounted ranges), as far back as Stripe
//! keeps them.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};
use stripe_catalog::{Api, Resource};
use sync_protocol::SourceStateSet;
use sync_protocol::time::unix_to_rfc3339;

use crate::events::{CLOCK_SLACK_SECS, RETENTION_SECS};
use crate::state::{EventsCursor, GlobalCheckpoint, Range, Span, StreamCheckpoint, new_generation};

/// The events cursor starts this far before the reference's last run began.
const CURSOR_MARGIN_SECS: i64 = 5;
/// Without a cursor, events are read from no further back than this inside Stripe's retention.
const RETENTION_MARGIN_SECS: i64 = 3600;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReferenceStream {
    #[serde(default)]
    accounted_range: Option<ReferenceSpan>,
    remaining: Vec<ReferenceRange>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReferenceSpan {
    gte: String,
    lt: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReferenceRange {
    gte: String,
    lt: String,
    #[serde(default)]
    cursor: Option<String>,
}

/// A reference checkpoint turned into this source's, with what the conversion could not
/// carry over (for a warning).
pub(crate) struct Imported {
    pub state: SourceStateSet,
    pub notes: Vec<String>,
}

/// An object the reference wrote (ours all carry a version `v`).
fn is_reference(value: &Value) -> bool {
    value
        .as_object()
        .is_some_and(|m| !m.contains_key("v") && !m.is_empty())
}

/// The reference's global state, `{events_cursor}`; `Ok(None)`: no cursor in it.
fn reference_cursor(global: &Value) -> Result<Option<i64>, String> {
    let Some(map) = global.as_object().filter(|m| !m.is_empty()) else {
        return Ok(None);
    };
    if map.keys().any(|k| k != "events_cursor") {
        return Err(format!(
            "the global state {global} is neither this source's nor the reference's ({{\"events_cursor\": <unix seconds>}})"
        ));
    }
    match map.get("events_cursor") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .filter(|s| *s > 0)
            .map(Some)
            .ok_or_else(|| format!("events_cursor {v} is not a number of Unix seconds")),
    }
}

/// Unix seconds of a reference time: RFC 3339, or a date (its midnight, UTC). `up` rounds a
/// fraction of a second up (an upper bound), else down.
fn unix(text: &str, up: bool) -> Option<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        let secs = t.timestamp();
        return Some(if up && t.timestamp_subsec_nanos() > 0 {
            secs + 1
        } else {
            secs
        });
    }
    let date = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp())
}

fn span_of(gte: &str, lt: &str, what: &str) -> Result<Span, String> {
    let parse = |text: &str, up: bool| {
        unix(text, up).ok_or_else(|| format!("{what}: {text:?} is not an RFC 3339 time or a date"))
    };
    let span = Span {
        gte: parse(gte, false)?,
        lt: parse(lt, true)?,
    };
    if span.gte >= span.lt {
        return Err(format!("{what}: gte {gte:?} is not before lt {lt:?}"));
    }
    Ok(span)
}

/// Whether a state is the reference's: its global state is, or it has none and a stream's is.
pub(crate) fn is_reference_state(state: &SourceStateSet) -> bool {
    let global_empty = state.global.as_object().is_none_or(Map::is_empty);
    if global_empty {
        state.streams.values().any(is_reference)
    } else {
        is_reference(&state.global)
    }
}

/// One stream's reference checkpoint as this source's, given the events cursor that will
/// follow it (`cursor`) and this source's lower bound (`start`).
fn stream_checkpoint(
    listed: &Resource,
    value: &Value,
    start: i64,
    cursor: i64,
    now: i64,
) -> Result<StreamCheckpoint, String> {
    let saved: ReferenceStream = serde_json::from_value(value.clone())
        .map_err(|e| format!("not a reference stream state ({e})"))?;
    let mut remaining = Vec::new();
    for (i, r) in saved.remaining.iter().enumerate() {
        let span = span_of(&r.gte, &r.lt, &format!("remaining[{i}]"))?;
        remaining.push(Range {
            gte: span.gte,
            lt: span.lt,
            cursor: r.cursor.clone().filter(|c| !c.is_empty()),
        });
    }
    let accounted = match &saved.accounted_range {
        Some(a) => span_of(&a.gte, &a.lt, "accounted_range")?,
        // Without it the reference reads just the remaining ranges: they bound what it covered.
        None => Span {
            gte: remaining.iter().map(|r| r.gte).min().unwrap_or(start),
            lt: remaining.iter().map(|r| r.lt).max().unwrap_or(now),
        },
    };
    if !(listed.created_filter && listed.api == Api::V1) {
        // Listed newest first without a time filter: the reference pages the first range only.
        return Ok(match remaining.first() {
            None => StreamCheckpoint::Complete {
                span: None,
                listed_until: Some(now + CLOCK_SLACK_SECS),
            },
            Some(range) if listed.api == Api::V1 => StreamCheckpoint::Sequential {
                cursor: range.cursor.clone(),
                emitted: 0,
                listing: None,
            },
            // A v2 page token of the reference's cannot be trusted to mean ours: start over.
            Some(_) => StreamCheckpoint::Sequential {
                cursor: None,
                emitted: 0,
                listing: None,
            },
        });
    }
    // What the reference never covered: before its range, and after it up to where the events
    // cursor takes over (objects created after the cursor come as events).
    if start < accounted.gte {
        remaining.push(Range {
            gte: start,
            lt: accounted.gte,
            cursor: None,
        });
    }
    if cursor > accounted.lt {
        remaining.push(Range {
            gte: accounted.lt,
            lt: cursor,
            cursor: None,
        });
    }
    let span = Span {
        gte: start.min(accounted.gte),
        lt: accounted.lt.max(cursor),
    };
    Ok(if remaining.is_empty() {
        StreamCheckpoint::Complete {
            span: Some(span),
            // The reference's listings cannot be ordered against events of the same second:
            // an event up to now has its object read again rather than trusted.
            listed_until: Some(now + CLOCK_SLACK_SECS),
        }
    } else {
        StreamCheckpoint::Ranges {
            span,
            remaining,
            emitted: 0,
            listing: None,
            pass: 0,
        }
    })
}

/// Converts a reference checkpoint (see [`is_reference_state`]) into this source's. `start` is
/// the lower bound of this source's backfills, `now` the server's time.
pub(crate) fn import(state: &SourceStateSet, start: i64, now: i64) -> Result<Imported, String> {
    let stripe = stripe_catalog::catalog();
    let mut notes = Vec::new();
    let lts: Vec<i64> = state
        .streams
        .values()
        .filter_map(|v| {
            let saved: ReferenceStream = serde_json::from_value(v.clone()).ok()?;
            match saved.accounted_range {
                Some(a) => unix(&a.lt, true),
                None => saved
                    .remaining
                    .iter()
                    .filter_map(|r| unix(&r.lt, true))
                    .max(),
            }
        })
        .collect();
    let cursor = match reference_cursor(&state.global)? {
        // A cursor ahead of now (milliseconds, a wrong clock) would skip every change from
        // here on, silently: refused.
        Some(cursor) if cursor > now + CLOCK_SLACK_SECS => {
            return Err(format!(
                "events_cursor {cursor} is later than now ({now}): it must be Unix seconds (not milliseconds) of an event already read"
            ));
        }
        Some(cursor) => cursor,
        None => {
            let from = lts.iter().min().map_or(now, |lt| lt - 1) - CURSOR_MARGIN_SECS;
            let kept = now - RETENTION_SECS + RETENTION_MARGIN_SECS;
            if from < kept {
                notes.push(format!(
                    "the reference's checkpoint has no events cursor and its last run ({}) is older than Stripe keeps events: changes made before {} to objects it had read are not read (reset to backfill them)",
                    unix_to_rfc3339(from).unwrap_or_default(),
                    unix_to_rfc3339(kept).unwrap_or_default()
                ));
            }
            from.max(kept).min(now)
        }
    };
    let mut streams = BTreeMap::new();
    let mut generations = BTreeMap::new();
    for (name, value) in &state.streams {
        let Some(resource) = stripe.named(name) else {
            notes.push(format!("{name}: no such stream; its state is dropped"));
            continue;
        };
        let listed = resource
            .parent
            .as_ref()
            .and_then(|p| stripe.resource(&p.stream))
            .unwrap_or(resource);
        match stream_checkpoint(listed, value, start, cursor, now) {
            Ok(checkpoint) => {
                let generation = new_generation() + generations.len() as u64;
                streams.insert(resource.stream.clone(), checkpoint.to_value(generation));
                generations.insert(resource.stream.clone(), generation);
            }
            Err(reason) => notes.push(format!("{name}: backfilled again ({reason})")),
        }
    }
    let global = GlobalCheckpoint {
        account: None,
        events_cursor: EventsCursor {
            created: cursor,
            seen: Vec::new(),
        },
        streams: generations,
    };
    Ok(Imported {
        state: SourceStateSet {
            streams,
            global: global.to_value(),
        },
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LAUNCH: i64 = 1_293_840_000;

    fn set(streams: Value, global: Value) -> SourceStateSet {
        SourceStateSet::from_value_lenient(json!({"streams": streams, "global": global})).unwrap()
    }

    fn checkpoint(imported: &Imported, stream: &str) -> StreamCheckpoint {
        StreamCheckpoint::from_value(&imported.state.streams[stream])
            .unwrap()
            .0
    }

    #[test]
    fn an_events_cursor_ahead_of_now_is_refused() {
        let now = 1_713_400_000;
        let state = SourceStateSet {
            streams: BTreeMap::new(),
            global: json!({"events_cursor": 1_713_400_000_000i64}),
        };
        let refused = import(&state, 1_300_000_000, now).err().unwrap_or_default();
        assert!(refused.contains("milliseconds"), "{refused}");
        let fine = SourceStateSet {
            streams: BTreeMap::new(),
            global: json!({"events_cursor": now - 60}),
        };
        assert!(import(&fine, 1_300_000_000, now).is_ok());
    }

    #[test]
    fn remaining_ranges_continue_from_their_cursors() {
        let state = set(
            json!({"customers": {"accounted_range": {"gte": "2011-01-01", "lt": "2024-04-17T00:00:00.000Z"},
                   "remaining": [{"gte": "2018-01-01", "lt": "2024-04-17", "cursor": "cus_100"}]}}),
            json!({"events_cursor": 1_713_312_000}),
        );
        assert!(is_reference_state(&state));
        let imported = import(&state, LAUNCH, 1_713_400_000).unwrap();
        assert!(imported.notes.is_empty(), "{:?}", imported.notes);
        assert_eq!(
            checkpoint(&imported, "customers"),
            StreamCheckpoint::Ranges {
                span: Span {
                    gte: LAUNCH,
                    lt: 1_713_312_000
                },
                remaining: vec![Range {
                    gte: 1_514_764_800,
                    lt: 1_713_312_000,
                    cursor: Some("cus_100".into())
                }],
                emitted: 0,
                listing: None,
                pass: 0,
            }
        );
        let global = GlobalCheckpoint::from_value(&imported.state.global)
            .unwrap()
            .unwrap();
        assert_eq!(global.events_cursor.created, 1_713_312_000);
        assert!(global.account.is_none());
        assert_eq!(global.streams.len(), 1);
    }

    #[test]
    fn an_empty_remaining_is_complete_and_uncovered_ranges_are_added() {
        let state = set(
            json!({"products": {"accounted_range": {"gte": "2011-01-01", "lt": "2024-04-17"}, "remaining": []},
                   "prices": {"accounted_range": {"gte": "2020-01-01", "lt": "2024-04-17"}, "remaining": []}}),
            json!({"events_cursor": 1_713_400_000}),
        );
        let imported = import(&state, LAUNCH, 1_713_400_100).unwrap();
        assert!(!checkpoint(&imported, "products").is_complete());
        match checkpoint(&imported, "prices") {
            StreamCheckpoint::Ranges { remaining, .. } => assert_eq!(
                remaining,
                vec![
                    Range {
                        gte: LAUNCH,
                        lt: 1_577_836_800,
                        cursor: None
                    },
                    Range {
                        gte: 1_713_312_000,
                        lt: 1_713_400_000,
                        cursor: None
                    }
                ]
            ),
            other => panic!("{other:?}"),
        }
        let state = set(
            json!({"products": {"accounted_range": {"gte": "2011-01-01", "lt": "2024-04-17"}, "remaining": []}}),
            json!({"events_cursor": 1_713_300_000}),
        );
        let imported = import(&state, LAUNCH, 1_713_400_100).unwrap();
        assert!(checkpoint(&imported, "products").is_complete());
    }

    #[test]
    fn without_a_cursor_events_are_read_from_the_last_run_within_retention() {
        let now = 1_713_400_000;
        let state = set(
            json!({"customer": {"remaining": [{"gte": "2018-01-01", "lt": "2024-04-17", "cursor": null}]}}),
            json!({}),
        );
        assert!(is_reference_state(&state));
        let imported = import(&state, LAUNCH, now).unwrap();
        assert!(imported.state.streams.contains_key("customers"));
        let global = GlobalCheckpoint::from_value(&imported.state.global)
            .unwrap()
            .unwrap();
        assert_eq!(global.events_cursor.created, 1_713_312_000 - 1 - 5);
        let long_ago = import(&state, LAUNCH, now + 90 * 86_400).unwrap();
        assert_eq!(long_ago.notes.len(), 1, "{:?}", long_ago.notes);
    }

    #[test]
    fn our_own_states_and_unreadable_ones_are_told_apart() {
        let ours = set(
            json!({"customers": {"v": 1, "phase": "complete"}}),
            json!({"v": 1, "events_cursor": {"created": 5}}),
        );
        assert!(!is_reference_state(&ours));
        assert!(!is_reference_state(&SourceStateSet::default()));
        let bad = set(
            json!({"customers": {"remaining": [{"gte": "soon", "lt": "2024-04-17"}]},
                   "invoices": {"eventId": "evt_1", "eventCreated": 1_700_000_001}}),
            json!({"events_cursor": 1_713_312_000}),
        );
        let imported = import(&bad, LAUNCH, 1_713_400_000).unwrap();
        assert!(imported.state.streams.is_empty());
        assert_eq!(imported.notes.len(), 2, "{:?}", imported.notes);
        assert!(imported.notes[0].contains("soon"), "{:?}", imported.notes);
        assert!(import(&set(json!({}), json!({"events_cursor": "x"})), LAUNCH, 1).is_err());
    }
}

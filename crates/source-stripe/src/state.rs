//! What a stream's state and the global state hold. Both are versioned; a state this version
//! cannot read is discarded with a warning and the stream starts over (never a crash).

use serde::{Deserialize, Serialize};
use serde_json::Value;

const VERSION: u32 = 1;

/// `[gte, lt)` in Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Span {
    pub gte: i64,
    pub lt: i64,
}

/// A part of a stream's `created` range still to read; with a cursor, the objects older than
/// the cursor object (the last one emitted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Range {
    pub gte: i64,
    pub lt: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// One stream's checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub(crate) enum StreamCheckpoint {
    /// Backfill of a stream listed by `created` ranges.
    Ranges {
        span: Span,
        remaining: Vec<Range>,
        emitted: u64,
        /// The listing's id, when what it does not return is to be marked deleted (see
        /// `sync_protocol::Listing`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        listing: Option<String>,
        /// Which of the stream's lists this is, when it takes more than one to return every
        /// object (prices: active ones, then inactive ones).
        #[serde(default, skip_serializing_if = "is_first_pass")]
        pass: u8,
    },
    /// Backfill of a stream listed from newest to oldest without a time filter.
    Sequential {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cursor: Option<String>,
        emitted: u64,
        /// As for `Ranges`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        listing: Option<String>,
    },
    /// The backfill is done; updates come from events.
    Complete {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        span: Option<Span>,
        /// The last second the backfill listed objects in (clock slack included): an event
        /// up to then may be older than the version listed, so its object is read again.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        listed_until: Option<i64>,
    },
}

fn is_first_pass(pass: &u8) -> bool {
    *pass == 0
}

#[derive(Serialize, Deserialize)]
struct Versioned<T> {
    v: u32,
    #[serde(flatten)]
    inner: T,
}

/// Names one backfill of one stream. The global state records the generation of every stream it
/// covers: a stream checkpoint whose generation differs (the stream was not synced while the
/// events cursor moved, or the cursor was restarted) is stale, and the stream starts over.
pub(crate) type Generation = u64;

/// A fresh generation: the current time in microseconds, unique enough between runs.
pub(crate) fn new_generation() -> Generation {
    // Strictly increasing within the process: accounts read at once start their streams in the
    // same microsecond, and a listing's id (a generation) must name one account's listing.
    static LAST: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let now = chrono::Utc::now().timestamp_micros().max(1) as u64;
    let previous = LAST
        .fetch_update(
            std::sync::atomic::Ordering::Relaxed,
            std::sync::atomic::Ordering::Relaxed,
            |last| Some(now.max(last + 1)),
        )
        .unwrap_or(0);
    now.max(previous + 1) as Generation
}

#[derive(Serialize, Deserialize)]
struct StreamWire {
    #[serde(default)]
    generation: Generation,
    #[serde(flatten)]
    checkpoint: StreamCheckpoint,
}

impl StreamCheckpoint {
    pub(crate) fn to_value(&self, generation: Generation) -> Value {
        serde_json::to_value(Versioned {
            v: VERSION,
            inner: StreamWire {
                generation,
                checkpoint: self.clone(),
            },
        })
        .unwrap_or(Value::Null)
    }

    /// Reads a saved state and its generation; `Err` explains why it was discarded.
    pub(crate) fn from_value(value: &Value) -> Result<(StreamCheckpoint, Generation), String> {
        let versioned: Versioned<StreamWire> =
            serde_json::from_value(value.clone()).map_err(|e| format!("unreadable state ({e})"))?;
        if versioned.v != VERSION {
            return Err(format!("state version {} is not {VERSION}", versioned.v));
        }
        Ok((versioned.inner.checkpoint, versioned.inner.generation))
    }

    /// The id of the listing this backfill is, when it is to sweep.
    pub(crate) fn listing(&self) -> Option<&str> {
        match self {
            StreamCheckpoint::Ranges { listing, .. }
            | StreamCheckpoint::Sequential { listing, .. } => listing.as_deref(),
            StreamCheckpoint::Complete { .. } => None,
        }
    }

    /// A range-listed stream with nothing read yet: one range, no cursor, no record.
    pub(crate) fn not_begun(&self) -> bool {
        matches!(self, StreamCheckpoint::Ranges { remaining, emitted: 0, pass: 0, .. }
            if remaining.len() == 1 && remaining[0].cursor.is_none())
    }

    pub(crate) fn is_complete(&self) -> bool {
        matches!(self, StreamCheckpoint::Complete { .. })
    }

    /// See [`StreamCheckpoint::Complete::listed_until`].
    pub(crate) fn listed_until(&self) -> Option<i64> {
        match self {
            StreamCheckpoint::Complete { listed_until, .. } => *listed_until,
            _ => None,
        }
    }
}

/// Where the events feed was last read: every event created before `created`, and those at
/// `created` whose ids are in `seen`, have been processed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct EventsCursor {
    pub created: i64,
    #[serde(default)]
    pub seen: Vec<String>,
}

/// Which account and mode a state was read from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AccountMark {
    pub id: String,
    pub livemode: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct GlobalCheckpoint {
    /// The account (and mode) whose data the state describes: a state read from another
    /// account is never resumed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<AccountMark>,
    pub events_cursor: EventsCursor,
    /// The streams whose updates the cursor has followed, with their backfill generation.
    #[serde(default)]
    pub streams: std::collections::BTreeMap<String, Generation>,
}

impl GlobalCheckpoint {
    pub(crate) fn to_value(&self) -> Value {
        serde_json::to_value(Versioned {
            v: VERSION,
            inner: self.clone(),
        })
        .unwrap_or(Value::Null)
    }

    pub(crate) fn from_value(value: &Value) -> Option<Result<GlobalCheckpoint, String>> {
        if value.is_null() || value.as_object().is_some_and(|m| m.is_empty()) {
            return None;
        }
        Some(
            serde_json::from_value::<Versioned<GlobalCheckpoint>>(value.clone())
                .map_err(|e| format!("unreadable global state ({e})"))
                .and_then(|v| {
                    if v.v == VERSION {
                        Ok(v.inner)
                    } else {
                        Err(format!("global state version {} is not {VERSION}", v.v))
                    }
                }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn checkpoints_round_trip() {
        let c = StreamCheckpoint::Ranges {
            span: Span { gte: 1, lt: 10 },
            remaining: vec![Range {
                gte: 1,
                lt: 5,
                cursor: Some("cus_1".into()),
            }],
            emitted: 3,
            listing: None,
            pass: 0,
        };
        let v = c.to_value(7);
        assert_eq!(v["v"], 1);
        assert_eq!(v["phase"], "ranges");
        assert!(v.get("pass").is_none(), "a first pass is not written: {v}");
        assert_eq!(StreamCheckpoint::from_value(&v).unwrap(), (c.clone(), 7));
        let StreamCheckpoint::Ranges {
            span,
            remaining,
            emitted,
            listing,
            ..
        } = c
        else {
            unreachable!()
        };
        let second = StreamCheckpoint::Ranges {
            span,
            remaining,
            emitted,
            listing,
            pass: 1,
        };
        let v = second.to_value(7);
        assert_eq!(v["pass"], 1);
        assert_eq!(StreamCheckpoint::from_value(&v).unwrap(), (second, 7));
        assert!(StreamCheckpoint::from_value(&json!({"accounted_range": {}})).is_err());
        assert!(StreamCheckpoint::from_value(&json!({"v": 9, "phase": "complete"})).is_err());
        let g = GlobalCheckpoint {
            account: Some(AccountMark {
                id: "acct_1".into(),
                livemode: false,
            }),
            events_cursor: EventsCursor {
                created: 5,
                seen: vec!["evt_1".into()],
            },
            streams: [("customers".to_owned(), 7)].into_iter().collect(),
        };
        assert_eq!(GlobalCheckpoint::from_value(&g.to_value()), Some(Ok(g)));
        assert_eq!(GlobalCheckpoint::from_value(&json!({})), None);
    }
}

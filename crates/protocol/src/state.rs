use std::collections::BTreeMap;

use serde::de::{Deserializer, Error as _};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{JsonMap, Listing};

/// A checkpoint emitted by a source. The destination re-emits it, with
/// [`DestinationStats`], once every record before it is committed.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceState {
    /// One stream's position; replaces that stream's entry in [`SyncState`].
    Stream(StreamState),
    /// State shared by all streams (e.g. an events cursor); replaces the global entry.
    Global(GlobalState),
}

/// The state of one stream.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamState {
    /// The stream.
    pub stream: String,
    /// The source's checkpoint for it; opaque to everyone else.
    pub data: Value,
    /// A fence of the stream's listing, when the source sends one with this state.
    pub listing: Option<Listing>,
    /// Added by the destination when it re-emits the state.
    pub destination_stats: Option<DestinationStats>,
    /// Fields this version does not know, kept for round trips.
    pub extra: JsonMap,
}

/// The state shared by every stream.
#[derive(Debug, Clone, PartialEq)]
pub struct GlobalState {
    /// The source's checkpoint; opaque to everyone else.
    pub data: Value,
    /// Added by the destination when it re-emits the state.
    pub destination_stats: Option<DestinationStats>,
    /// Fields this version does not know, kept for round trips.
    pub extra: JsonMap,
}

/// Added by the destination when it re-emits a state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DestinationStats {
    /// Records committed since the previous state of the same stream (for a global state: of
    /// every stream since the previous global state).
    pub committed: u64,
    /// Records among those the destination could not store and set aside (counted apart from
    /// `committed`; `committed + rejected` is what it was sent).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rejected: u64,
    /// Fields this version does not know, kept for round trips.
    #[serde(flatten)]
    pub extra: JsonMap,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl SourceState {
    /// A state of one stream.
    pub fn stream(stream: impl Into<String>, data: Value) -> SourceState {
        SourceState::Stream(StreamState {
            stream: stream.into(),
            data,
            listing: None,
            destination_stats: None,
            extra: JsonMap::new(),
        })
    }

    /// A state of one stream that carries a fence of its listing.
    pub fn stream_with_listing(
        stream: impl Into<String>,
        data: Value,
        listing: Listing,
    ) -> SourceState {
        let mut state = SourceState::stream(stream, data);
        if let SourceState::Stream(s) = &mut state {
            s.listing = Some(listing);
        }
        state
    }

    /// The listing fence this state carries, if any.
    pub fn listing(&self) -> Option<&Listing> {
        match self {
            SourceState::Stream(s) => s.listing.as_ref(),
            SourceState::Global(_) => None,
        }
    }

    /// A global state.
    pub fn global(data: Value) -> SourceState {
        SourceState::Global(GlobalState {
            data,
            destination_stats: None,
            extra: JsonMap::new(),
        })
    }

    /// The stream this state belongs to; `None` for a global state.
    pub fn stream_name(&self) -> Option<&str> {
        match self {
            SourceState::Stream(s) => Some(&s.stream),
            SourceState::Global(_) => None,
        }
    }

    /// The source's checkpoint.
    pub fn data(&self) -> &Value {
        match self {
            SourceState::Stream(s) => &s.data,
            SourceState::Global(g) => &g.data,
        }
    }

    /// What the destination added, when it re-emitted the state.
    pub fn destination_stats(&self) -> Option<&DestinationStats> {
        match self {
            SourceState::Stream(s) => s.destination_stats.as_ref(),
            SourceState::Global(g) => g.destination_stats.as_ref(),
        }
    }

    /// Returns the same state stamped with the number of records committed before it.
    pub fn with_committed(self, committed: u64) -> SourceState {
        self.with_stats(committed, 0)
    }

    /// Returns the same state stamped with the records committed and rejected before it.
    pub fn with_stats(mut self, committed: u64, rejected: u64) -> SourceState {
        let stats = Some(DestinationStats {
            committed,
            rejected,
            extra: JsonMap::new(),
        });
        match &mut self {
            SourceState::Stream(s) => s.destination_stats = stats,
            SourceState::Global(g) => g.destination_stats = stats,
        }
        self
    }
}

impl Serialize for SourceState {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (extra, stats) = match self {
            SourceState::Stream(st) => (&st.extra, &st.destination_stats),
            SourceState::Global(g) => (&g.extra, &g.destination_stats),
        };
        let mut map = s.serialize_map(None)?;
        match self {
            SourceState::Stream(st) => {
                map.serialize_entry("state_type", "stream")?;
                map.serialize_entry("stream", &st.stream)?;
            }
            SourceState::Global(_) => map.serialize_entry("state_type", "global")?,
        }
        map.serialize_entry("data", self.data())?;
        if let Some(listing) = self.listing() {
            map.serialize_entry("listing", listing)?;
        }
        if let Some(stats) = stats {
            map.serialize_entry("destination_stats", stats)?;
        }
        for (k, v) in extra {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for SourceState {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "lowercase")]
        enum StateType {
            Stream,
            Global,
        }
        #[derive(Deserialize)]
        struct Wire {
            // A payload without `state_type` is a stream state (the older wire form).
            state_type: Option<StateType>,
            stream: Option<String>,
            #[serde(default)]
            data: Value,
            listing: Option<Listing>,
            destination_stats: Option<DestinationStats>,
            #[serde(flatten)]
            extra: JsonMap,
        }
        let wire = Wire::deserialize(d)?;
        match wire.state_type.unwrap_or(StateType::Stream) {
            StateType::Stream => Ok(SourceState::Stream(StreamState {
                stream: wire
                    .stream
                    .ok_or_else(|| D::Error::missing_field("stream"))?,
                data: wire.data,
                listing: wire.listing,
                destination_stats: wire.destination_stats,
                extra: wire.extra,
            })),
            StateType::Global => {
                let mut extra = wire.extra;
                if let Some(listing) = wire.listing.and_then(|l| serde_json::to_value(l).ok()) {
                    extra.insert("listing".to_owned(), listing);
                }
                if let Some(stream) = wire.stream {
                    extra.insert("stream".to_owned(), Value::String(stream));
                }
                Ok(SourceState::Global(GlobalState {
                    data: wire.data,
                    destination_stats: wire.destination_stats,
                    extra,
                }))
            }
        }
    }
}

/// What a source receives as `--state`: every stream's state and the global state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceStateSet {
    /// Each stream's state, by stream name.
    #[serde(default)]
    pub streams: BTreeMap<String, Value>,
    /// The global state (`{}` when none).
    #[serde(default = "empty_object", skip_serializing_if = "is_empty_object")]
    pub global: Value,
}

fn empty_object() -> Value {
    Value::Object(JsonMap::new())
}

fn is_empty_object(v: &Value) -> bool {
    v.as_object().is_some_and(JsonMap::is_empty) || v.is_null()
}

impl SourceStateSet {
    /// Reads a `--state` value: a source state `{"streams":…,"global":…}`, a whole
    /// [`SyncState`] (its `source` part is used), or a legacy flat map of stream name to state.
    pub fn from_value_lenient(value: Value) -> Result<SourceStateSet, serde_json::Error> {
        let Value::Object(mut map) = value else {
            return serde_json::from_value(value);
        };
        if let Some(source) = map.get("source").filter(|s| s.get("streams").is_some()) {
            return serde_json::from_value(source.clone());
        }
        if map.contains_key("streams") {
            return serde_json::from_value(Value::Object(map));
        }
        let global = map.remove("_global").unwrap_or_else(empty_object);
        Ok(SourceStateSet {
            streams: map.into_iter().filter(|(_, v)| !v.is_null()).collect(),
            global,
        })
    }

    /// Applies one state: a stream state replaces its stream's entry, a global state the global entry.
    pub fn apply(&mut self, state: &SourceState) {
        match state {
            SourceState::Stream(s) => {
                self.streams.insert(s.stream.clone(), s.data.clone());
            }
            SourceState::Global(g) => self.global = g.data.clone(),
        }
    }

    /// No stream state and no global state.
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty() && is_empty_object(&self.global)
    }
}

/// The engine's whole checkpoint, round-tripped from one run's `eof.ending_state` to the next.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncState {
    /// The source's states.
    #[serde(default)]
    pub source: SourceStateSet,
    /// What the state knows of the destination: the tables it was written into (see
    /// [`SyncState::reconcile_tables`]).
    #[serde(default)]
    pub destination: JsonMap,
    /// The engine's notes on the run.
    #[serde(default)]
    pub sync_run: SyncRun,
}

/// Engine-owned bookkeeping about the run that produced a state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncRun {
    /// The run that saved it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// The upper bound of created times the run reads (no built-in connector sets it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_ceiling: Option<String>,
    /// Progress saved with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Value>,
    /// Fields this version does not know, kept for round trips.
    #[serde(flatten)]
    pub extra: JsonMap,
}

impl SyncState {
    /// Applies one committed state (see [`SourceStateSet::apply`]).
    pub fn apply(&mut self, state: &SourceState) {
        self.source.apply(state);
        self.note_committed(state);
    }

    /// Folds a sequence of states, in order, into a state.
    pub fn reduce<'a>(mut self, states: impl IntoIterator<Item = &'a SourceState>) -> SyncState {
        for state in states {
            self.apply(state);
        }
        self
    }
}

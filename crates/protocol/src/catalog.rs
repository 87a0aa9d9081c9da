use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::JsonMap;

/// What a source can produce, the output of `discover`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    /// The streams, one per kind of object.
    pub streams: Vec<Stream>,
    /// Fields this version does not know, kept for round trips.
    #[serde(flatten)]
    pub extra: JsonMap,
}

/// One stream of records, with its shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stream {
    /// The stream's name, unique in the catalog.
    pub name: String,
    /// Paths of the key fields; `[["id"],["_account_id"]]` is a composite key of two top-level fields.
    #[serde(default)]
    pub primary_key: Vec<Vec<String>>,
    /// The field whose larger value marks the newer version of an object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newer_than_field: Option<String>,
    /// JSON Schema of one record's `data`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_schema: Option<Value>,
    /// Source-specific facts about the stream (Stripe: its endpoint, whether events cover it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// The boolean field whose `true` marks a deleted object (`deleted` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soft_delete_field: Option<String>,
    /// Fields this version does not know, kept for round trips.
    #[serde(flatten)]
    pub extra: JsonMap,
}

impl Stream {
    /// A stream with this name and nothing else set.
    pub fn new(name: impl Into<String>) -> Stream {
        Stream {
            name: name.into(),
            primary_key: Vec::new(),
            newer_than_field: None,
            json_schema: None,
            metadata: None,
            soft_delete_field: None,
            extra: JsonMap::new(),
        }
    }

    /// The top-level field names of the primary key (the first element of each path).
    pub fn primary_key_fields(&self) -> Vec<&str> {
        self.primary_key
            .iter()
            .filter_map(|path| path.first().map(String::as_str))
            .collect()
    }
}

/// How the source reads a stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    /// Everything, every run.
    #[default]
    FullRefresh,
    /// From the stream's saved state onwards.
    Incremental,
}

/// How the destination applies records (carried from the Airbyte protocol; dest-postgres always upserts by key).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DestinationSyncMode {
    /// Add every record.
    #[default]
    Append,
    /// Replace the table's contents.
    Overwrite,
    /// Add, then keep one row per key.
    AppendDedup,
    /// Upsert by key.
    Update,
    /// Upsert; tombstones mark rows deleted.
    SoftDelete,
}

/// A half-open time range `[gte, lt)` of RFC 3339 timestamps; either bound may be open.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeRange {
    /// Inclusive start, RFC 3339; open when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gte: Option<String>,
    /// Exclusive end, RFC 3339; open when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lt: Option<String>,
}

/// An extra column the destination adds to a stream's table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemColumn {
    /// The column's name.
    pub name: String,
    /// Its SQL type (`type` on the wire, `text` by default).
    #[serde(default = "SystemColumn::default_type", rename = "type")]
    pub column_type: String,
    /// Whether the destination indexes it.
    #[serde(default)]
    pub index: bool,
}

impl SystemColumn {
    fn default_type() -> String {
        "text".to_owned()
    }
}

/// The streams a sync runs, with per-stream options.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ConfiguredCatalog {
    /// The streams to sync.
    pub streams: Vec<ConfiguredStream>,
    /// Fields this version does not know, kept for round trips.
    #[serde(flatten)]
    pub extra: JsonMap,
}

impl<'de> Deserialize<'de> for ConfiguredCatalog {
    /// Accepts a configured catalog, and also a plain discovered catalog (each entry a bare
    /// stream), which is configured with defaults.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Wire {
            streams: Vec<Value>,
            #[serde(flatten)]
            extra: JsonMap,
        }
        let wire = Wire::deserialize(d)?;
        let mut streams = Vec::with_capacity(wire.streams.len());
        for (index, value) in wire.streams.into_iter().enumerate() {
            let configured = value.get("stream").is_some_and(Value::is_object);
            let stream = if configured {
                serde_json::from_value::<ConfiguredStream>(value)
            } else {
                serde_json::from_value::<Stream>(value).map(ConfiguredStream::new)
            }
            .map_err(|e| serde::de::Error::custom(format!("streams[{index}]: {e}")))?;
            streams.push(stream);
        }
        Ok(ConfiguredCatalog {
            streams,
            extra: wire.extra,
        })
    }
}

/// One stream as configured for a sync.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfiguredStream {
    /// The stream as discovered.
    pub stream: Stream,
    /// How the source reads it.
    #[serde(default)]
    pub sync_mode: SyncMode,
    /// How the destination applies it.
    #[serde(default)]
    pub destination_sync_mode: DestinationSyncMode,
    /// The cursor field, when the stream has a choice of one (no built-in connector reads it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor_field: Option<Vec<String>>,
    /// Top-level properties to keep as columns; all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<String>>,
    /// Stop the stream's backfill after this many records (a sample); the stream then counts as complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backfill_limit: Option<u64>,
    /// Whether the source can read a `time_range` of this stream (no built-in connector reads it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supports_time_range: Option<bool>,
    /// Read only objects created in this range (no built-in connector reads it yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_range: Option<TimeRange>,
    /// Extra columns for the destination to add (no built-in connector reads it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_columns: Option<Vec<SystemColumn>>,
    /// Fields this version does not know, kept for round trips.
    #[serde(flatten)]
    pub extra: JsonMap,
}

impl ConfiguredStream {
    /// A stream configured with the defaults: full refresh, append, every field.
    pub fn new(stream: Stream) -> ConfiguredStream {
        ConfiguredStream {
            stream,
            sync_mode: SyncMode::default(),
            destination_sync_mode: DestinationSyncMode::default(),
            cursor_field: None,
            fields: None,
            backfill_limit: None,
            supports_time_range: None,
            time_range: None,
            system_columns: None,
            extra: JsonMap::new(),
        }
    }
}

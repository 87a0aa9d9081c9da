use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::JsonMap;

/// What a source can produce, the output of `discover`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    pub streams: Vec<Stream>,
    #[serde(flatten)]
    pub extra: JsonMap,
}

/// One stream of records, with its shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stream {
    pub name: String,
    /// Paths of the key fields; `[["id"],["_account_id"]]` is a composite key of two top-level fields.
    #[serde(default)]
    pub primary_key: Vec<Vec<String>>,
    /// The field whose larger value marks the newer version of an object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newer_than_field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_schema: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soft_delete_field: Option<String>,
    #[serde(flatten)]
    pub extra: JsonMap,
}

impl Stream {
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

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    #[default]
    FullRefresh,
    Incremental,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DestinationSyncMode {
    #[default]
    Append,
    Overwrite,
    AppendDedup,
    Update,
    SoftDelete,
}

/// A half-open time range `[gte, lt)` of RFC 3339 timestamps; either bound may be open.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeRange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gte: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lt: Option<String>,
}

/// An extra column the destination adds to a stream's table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemColumn {
    pub name: String,
    #[serde(default = "SystemColumn::default_type", rename = "type")]
    pub column_type: String,
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
    pub streams: Vec<ConfiguredStream>,
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

impl ConfiguredCatalog {
    /// Configures every stream of a discovered catalog with defaults.
    pub fn from_catalog(catalog: Catalog) -> ConfiguredCatalog {
        ConfiguredCatalog {
            streams: catalog
                .streams
                .into_iter()
                .map(ConfiguredStream::new)
                .collect(),
            extra: JsonMap::new(),
        }
    }

    pub fn stream(&self, name: &str) -> Option<&ConfiguredStream> {
        self.streams.iter().find(|s| s.stream.name == name)
    }
}

/// One stream as configured for a sync.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfiguredStream {
    pub stream: Stream,
    #[serde(default)]
    pub sync_mode: SyncMode,
    #[serde(default)]
    pub destination_sync_mode: DestinationSyncMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor_field: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backfill_limit: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supports_time_range: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_range: Option<TimeRange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_columns: Option<Vec<SystemColumn>>,
    #[serde(flatten)]
    pub extra: JsonMap,
}

impl ConfiguredStream {
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

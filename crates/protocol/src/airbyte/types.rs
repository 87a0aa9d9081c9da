//! Airbyte payload shapes. Field names are the Airbyte spellings, mixed case included.
//!
//! These mirror the Airbyte protocol's published schema field for field; that schema
//! (airbyte_protocol.yaml, <https://docs.airbyte.com/understanding-airbyte/airbyte-protocol>)
//! is their documentation, so it is not repeated here.
#![allow(missing_docs)]

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::JsonMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AirbyteRecord {
    pub stream: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub data: Value,
    /// Epoch milliseconds.
    pub emitted_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Value>,
    #[serde(flatten)]
    pub extra: JsonMap,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum AirbyteStateType {
    Stream,
    Global,
    Legacy,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamDescriptor {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

impl StreamDescriptor {
    pub fn named(name: impl Into<String>) -> StreamDescriptor {
        StreamDescriptor {
            name: name.into(),
            namespace: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AirbyteStreamState {
    pub stream_descriptor: StreamDescriptor,
    /// `null` means "reset this stream".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_state: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AirbyteGlobalState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_state: Option<Value>,
    #[serde(default)]
    pub stream_states: Vec<AirbyteStreamState>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AirbyteStateStats {
    /// A float on the wire ("should always have a decimal point").
    #[serde(rename = "recordCount")]
    pub record_count: f64,
    #[serde(
        rename = "rejectedRecordCount",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub rejected_record_count: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AirbyteState {
    /// Absent means LEGACY.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub state_type: Option<AirbyteStateType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<AirbyteStreamState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global: Option<AirbyteGlobalState>,
    /// The LEGACY state blob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    #[serde(
        rename = "sourceStats",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub source_stats: Option<AirbyteStateStats>,
    #[serde(
        rename = "destinationStats",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub destination_stats: Option<AirbyteStateStats>,
    #[serde(flatten)]
    pub extra: JsonMap,
}

impl AirbyteState {
    pub fn effective_type(&self) -> AirbyteStateType {
        self.state_type.unwrap_or(AirbyteStateType::Legacy)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum AirbyteLogLevel {
    Fatal,
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AirbyteLog {
    pub level: AirbyteLogLevel,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_trace: Option<String>,
    #[serde(flatten)]
    pub extra: JsonMap,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AirbyteSpec {
    #[serde(
        rename = "documentationUrl",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub documentation_url: Option<String>,
    #[serde(
        rename = "changelogUrl",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub changelog_url: Option<String>,
    #[serde(rename = "connectionSpecification")]
    pub connection_specification: Value,
    #[serde(
        rename = "supportsIncremental",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub supports_incremental: Option<bool>,
    #[serde(
        rename = "supportsNormalization",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub supports_normalization: Option<bool>,
    #[serde(
        rename = "supportsDBT",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub supports_dbt: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supported_destination_sync_modes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advanced_auth: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<String>,
    #[serde(flatten)]
    pub extra: JsonMap,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum AirbyteStatus {
    Succeeded,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AirbyteConnectionStatus {
    pub status: AirbyteStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(flatten)]
    pub extra: JsonMap,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AirbyteCatalog {
    pub streams: Vec<AirbyteStream>,
    #[serde(flatten)]
    pub extra: JsonMap,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AirbyteStream {
    pub name: String,
    #[serde(default)]
    pub json_schema: Value,
    #[serde(default)]
    pub supported_sync_modes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_defined_cursor: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_cursor_field: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_defined_primary_key: Option<Vec<Vec<String>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_resumable: Option<bool>,
    #[serde(flatten)]
    pub extra: JsonMap,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfiguredAirbyteCatalog {
    pub streams: Vec<ConfiguredAirbyteStream>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfiguredAirbyteStream {
    pub stream: AirbyteStream,
    pub sync_mode: String,
    pub destination_sync_mode: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor_field: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_key: Option<Vec<Vec<String>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_generation_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_id: Option<i64>,
    #[serde(flatten)]
    pub extra: JsonMap,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AirbyteTraceType {
    Error,
    Estimate,
    StreamStatus,
    Analytics,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AirbyteTrace {
    #[serde(rename = "type")]
    pub trace_type: AirbyteTraceType,
    /// Epoch milliseconds, a number (not necessarily an integer) on TRACE.
    pub emitted_at: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<AirbyteErrorTrace>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimate: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_status: Option<AirbyteStreamStatusTrace>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analytics: Option<Value>,
    #[serde(flatten)]
    pub extra: JsonMap,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AirbyteErrorTrace {
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_trace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_descriptor: Option<StreamDescriptor>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum AirbyteStreamStatus {
    Started,
    Running,
    Complete,
    Incomplete,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AirbyteStreamStatusTrace {
    pub stream_descriptor: StreamDescriptor,
    pub status: AirbyteStreamStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasons: Option<Vec<Value>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AirbyteControl {
    #[serde(rename = "type")]
    pub control_type: String,
    pub emitted_at: f64,
    #[serde(
        rename = "connectorConfig",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub connector_config: Option<AirbyteConnectorConfig>,
    #[serde(flatten)]
    pub extra: JsonMap,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AirbyteConnectorConfig {
    pub config: Value,
}

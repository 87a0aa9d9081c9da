//! Translation between the native and the Airbyte dialects (stateless; `emitted_at` is stamped
//! with the current time where the native message carries none).
//!
//! Every field the two dialects share survives a round trip. Fields only one dialect has are
//! carried in the other's `extra` map where the shape allows, and dropped otherwise (documented
//! per function).

use serde_json::{Value, json};

use super::AirbyteMessage;
use super::types::*;
use crate::time::{epoch_ms_to_rfc3339, rfc3339_to_epoch_ms};
use crate::{
    Catalog, ConfiguredCatalog, ConnectionStatus, Control, DestinationStats, DestinationSyncMode,
    FailureType, GlobalState, JsonMap, Log, LogLevel, Message, Record, Role, SourceState,
    SourceStateSet, Spec, Status, Stream, StreamState, StreamStatus, StreamStatusKind, SyncMode,
};

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn take_string(extra: &mut JsonMap, key: &str) -> Option<String> {
    match extra.remove(key) {
        Some(Value::String(s)) => Some(s),
        Some(other) => {
            extra.insert(key.to_owned(), other);
            None
        }
        None => None,
    }
}

/// Native → Airbyte. `progress`, `eof` and `source_input` have no Airbyte counterpart (`None`).
/// A `stream_status` of `skip` becomes INCOMPLETE (Airbyte has no skip); `range_complete`
/// becomes RUNNING.
pub fn to_airbyte(message: &Message) -> Option<AirbyteMessage> {
    Some(match message {
        Message::Record(r) => {
            let mut extra = r.extra.clone();
            let namespace = take_string(&mut extra, "namespace");
            let meta = extra.remove("meta");
            AirbyteMessage::Record(AirbyteRecord {
                stream: r.stream.clone(),
                namespace,
                data: r.data.clone(),
                emitted_at: r
                    .emitted_at
                    .as_deref()
                    .and_then(rfc3339_to_epoch_ms)
                    .unwrap_or_else(now_ms),
                meta,
                extra,
            })
        }
        Message::SourceState(s) => AirbyteMessage::State(state_to_airbyte(s)),
        Message::Catalog(c) => AirbyteMessage::Catalog(catalog_to_airbyte(c)),
        Message::Spec(s) => AirbyteMessage::Spec(AirbyteSpec {
            documentation_url: None,
            changelog_url: None,
            connection_specification: s.config.clone(),
            supports_incremental: None,
            supports_normalization: None,
            supports_dbt: None,
            supported_destination_sync_modes: None,
            advanced_auth: None,
            protocol_version: None,
            extra: s.extra.clone(),
        }),
        Message::ConnectionStatus(c) => AirbyteMessage::ConnectionStatus(AirbyteConnectionStatus {
            status: match c.status {
                Status::Succeeded => AirbyteStatus::Succeeded,
                Status::Failed => AirbyteStatus::Failed,
            },
            message: c.message.clone(),
            extra: c.extra.clone(),
        }),
        Message::Log(l) => {
            let mut extra = l.extra.clone();
            if let Some(data) = &l.data {
                extra.insert("data".to_owned(), data.clone());
            }
            AirbyteMessage::Log(AirbyteLog {
                level: match l.level {
                    LogLevel::Debug => AirbyteLogLevel::Debug,
                    LogLevel::Info => AirbyteLogLevel::Info,
                    LogLevel::Warn => AirbyteLogLevel::Warn,
                    LogLevel::Error => AirbyteLogLevel::Error,
                },
                message: l.message.clone(),
                stack_trace: None,
                extra,
            })
        }
        Message::StreamStatus(s) => AirbyteMessage::Trace(stream_status_to_trace(s)),
        // Airbyte has no counterpart: its destinations report no tables.
        Message::Control(Control::DestinationTables(_)) => return None,
        Message::Control(Control::SourceConfig(config) | Control::DestinationConfig(config)) => {
            AirbyteMessage::Control(AirbyteControl {
                control_type: "CONNECTOR_CONFIG".to_owned(),
                emitted_at: now_ms() as f64,
                connector_config: Some(AirbyteConnectorConfig {
                    config: config.clone(),
                }),
                extra: JsonMap::new(),
            })
        }
        Message::Progress(_) | Message::Eof(_) | Message::SourceInput(_) => return None,
    })
}

fn stream_status_to_trace(s: &StreamStatus) -> AirbyteTrace {
    let descriptor = StreamDescriptor::named(&s.stream);
    let status = |status| AirbyteStreamStatusTrace {
        stream_descriptor: descriptor.clone(),
        status,
        reasons: None,
    };
    let (trace_type, stream_status, error) = match &s.kind {
        StreamStatusKind::Start { .. } => (
            AirbyteTraceType::StreamStatus,
            Some(status(AirbyteStreamStatus::Started)),
            None,
        ),
        StreamStatusKind::RangeComplete { .. } => (
            AirbyteTraceType::StreamStatus,
            Some(status(AirbyteStreamStatus::Running)),
            None,
        ),
        StreamStatusKind::Complete {} => (
            AirbyteTraceType::StreamStatus,
            Some(status(AirbyteStreamStatus::Complete)),
            None,
        ),
        StreamStatusKind::Skip { .. } => (
            AirbyteTraceType::StreamStatus,
            Some(status(AirbyteStreamStatus::Incomplete)),
            None,
        ),
        StreamStatusKind::Error { error } => (
            AirbyteTraceType::Error,
            None,
            Some(AirbyteErrorTrace {
                message: error.clone(),
                internal_message: None,
                stack_trace: None,
                failure_type: None,
                stream_descriptor: Some(descriptor.clone()),
            }),
        ),
    };
    AirbyteTrace {
        trace_type,
        emitted_at: now_ms() as f64,
        error,
        estimate: None,
        stream_status,
        analytics: None,
        extra: JsonMap::new(),
    }
}

fn stats_to_airbyte(stats: Option<&DestinationStats>) -> Option<AirbyteStateStats> {
    stats.map(|s| AirbyteStateStats {
        record_count: s.committed as f64,
        rejected_record_count: (s.rejected > 0).then_some(s.rejected as f64),
    })
}

fn stats_from_airbyte(stats: Option<&AirbyteStateStats>) -> Option<DestinationStats> {
    stats.map(|s| DestinationStats {
        committed: s.record_count.max(0.0) as u64,
        rejected: s.rejected_record_count.unwrap_or(0.0).max(0.0) as u64,
        extra: JsonMap::new(),
    })
}

fn state_to_airbyte(state: &SourceState) -> AirbyteState {
    match state {
        SourceState::Stream(s) => AirbyteState {
            state_type: Some(AirbyteStateType::Stream),
            stream: Some(AirbyteStreamState {
                stream_descriptor: StreamDescriptor::named(&s.stream),
                stream_state: Some(s.data.clone()),
            }),
            global: None,
            data: None,
            source_stats: None,
            destination_stats: stats_to_airbyte(s.destination_stats.as_ref()),
            extra: s.extra.clone(),
        },
        SourceState::Global(g) => AirbyteState {
            state_type: Some(AirbyteStateType::Global),
            stream: None,
            global: Some(AirbyteGlobalState {
                shared_state: Some(g.data.clone()),
                stream_states: Vec::new(),
            }),
            data: None,
            source_stats: None,
            destination_stats: stats_to_airbyte(g.destination_stats.as_ref()),
            extra: g.extra.clone(),
        },
    }
}

/// Airbyte state → native states. A GLOBAL state becomes a global state holding `shared_state`
/// followed by one stream state per entry of `stream_states`; LEGACY becomes a global state.
fn state_from_airbyte(state: AirbyteState) -> Vec<Message> {
    let destination_stats = stats_from_airbyte(state.destination_stats.as_ref());
    let extra = state.extra;
    let mut out = Vec::new();
    match state.state_type.unwrap_or(AirbyteStateType::Legacy) {
        AirbyteStateType::Stream => {
            if let Some(s) = state.stream {
                out.push(SourceState::Stream(StreamState {
                    stream: s.stream_descriptor.name,
                    data: s.stream_state.unwrap_or(Value::Null),
                    // Airbyte has no listing fence: what Airbyte connectors list is never swept.
                    listing: None,
                    destination_stats,
                    extra,
                }));
            }
        }
        AirbyteStateType::Global => {
            let global = state.global.unwrap_or(AirbyteGlobalState {
                shared_state: None,
                stream_states: Vec::new(),
            });
            out.push(SourceState::Global(GlobalState {
                data: global.shared_state.unwrap_or_else(|| json!({})),
                destination_stats,
                extra,
            }));
            for s in global.stream_states {
                out.push(SourceState::stream(
                    s.stream_descriptor.name,
                    s.stream_state.unwrap_or(Value::Null),
                ));
            }
        }
        AirbyteStateType::Legacy => {
            out.push(SourceState::Global(GlobalState {
                data: state.data.unwrap_or(Value::Null),
                destination_stats,
                extra,
            }));
        }
    }
    out.into_iter().map(Message::SourceState).collect()
}

/// Airbyte → native. One message may become several (a GLOBAL state with stream states) or none
/// (a RUNNING stream status, a DESTINATION_CATALOG). TRACE ERROR with a stream becomes that
/// stream's `stream_status error`, without one a failed `connection_status`; ESTIMATE and
/// ANALYTICS traces become debug logs.
pub fn from_airbyte(message: AirbyteMessage, role: Role) -> Vec<Message> {
    match message {
        AirbyteMessage::Record(r) => {
            let mut extra = r.extra;
            if let Some(ns) = r.namespace {
                extra.insert("namespace".to_owned(), Value::String(ns));
            }
            if let Some(meta) = r.meta {
                extra.insert("meta".to_owned(), meta);
            }
            vec![Message::Record(Record {
                stream: r.stream,
                data: r.data,
                emitted_at: epoch_ms_to_rfc3339(r.emitted_at),
                extra,
            })]
        }
        AirbyteMessage::State(s) => state_from_airbyte(s),
        AirbyteMessage::Log(l) => {
            let mut extra = l.extra;
            let data = extra.remove("data");
            let mut message = l.message;
            if let Some(trace) = l.stack_trace {
                message = format!("{message}\n{trace}");
            }
            let level = match l.level {
                AirbyteLogLevel::Fatal | AirbyteLogLevel::Error => LogLevel::Error,
                AirbyteLogLevel::Warn => LogLevel::Warn,
                AirbyteLogLevel::Info => LogLevel::Info,
                AirbyteLogLevel::Debug | AirbyteLogLevel::Trace => LogLevel::Debug,
            };
            vec![Message::Log(Log {
                level,
                message,
                data,
                extra,
            })]
        }
        AirbyteMessage::Spec(s) => {
            let mut spec = Spec::new(s.connection_specification);
            spec.extra = s.extra;
            vec![Message::Spec(spec)]
        }
        AirbyteMessage::ConnectionStatus(c) => vec![Message::ConnectionStatus(ConnectionStatus {
            status: match c.status {
                AirbyteStatus::Succeeded => Status::Succeeded,
                AirbyteStatus::Failed => Status::Failed,
            },
            message: c.message,
            failure_type: None,
            extra: c.extra,
        })],
        AirbyteMessage::Catalog(c) => vec![Message::Catalog(catalog_from_airbyte(c))],
        AirbyteMessage::Trace(t) => trace_from_airbyte(t),
        AirbyteMessage::Control(c) => match c.connector_config {
            Some(cc) => vec![Message::Control(match role {
                Role::Source => Control::SourceConfig(cc.config),
                Role::Destination => Control::DestinationConfig(cc.config),
            })],
            None => Vec::new(),
        },
        AirbyteMessage::DestinationCatalog(_) => Vec::new(),
    }
}

fn trace_from_airbyte(trace: AirbyteTrace) -> Vec<Message> {
    match trace.trace_type {
        AirbyteTraceType::Error => {
            let Some(error) = trace.error else {
                return Vec::new();
            };
            let message = match &error.internal_message {
                Some(internal) if *internal != error.message => {
                    format!("{} ({internal})", error.message)
                }
                _ => error.message.clone(),
            };
            match error.stream_descriptor {
                Some(d) => vec![Message::StreamStatus(StreamStatus::new(
                    d.name,
                    StreamStatusKind::Error { error: message },
                ))],
                None => {
                    let failure_type = match error.failure_type.as_deref() {
                        Some("config_error") => Some(FailureType::ConfigError),
                        Some("transient_error") => Some(FailureType::TransientError),
                        Some("system_error") => Some(FailureType::SystemError),
                        _ => None,
                    };
                    vec![Message::ConnectionStatus(ConnectionStatus::failed(
                        message,
                        failure_type,
                    ))]
                }
            }
        }
        AirbyteTraceType::StreamStatus => {
            let Some(s) = trace.stream_status else {
                return Vec::new();
            };
            let kind = match s.status {
                AirbyteStreamStatus::Started => StreamStatusKind::Start { time_range: None },
                AirbyteStreamStatus::Running => return Vec::new(),
                AirbyteStreamStatus::Complete => StreamStatusKind::Complete {},
                AirbyteStreamStatus::Incomplete => StreamStatusKind::Error {
                    error: "the connector reported the stream incomplete".to_owned(),
                },
            };
            vec![Message::StreamStatus(StreamStatus::new(
                s.stream_descriptor.name,
                kind,
            ))]
        }
        AirbyteTraceType::Estimate | AirbyteTraceType::Analytics => {
            let data = trace.estimate.or(trace.analytics);
            let mut log = Log::new(
                LogLevel::Debug,
                format!("{:?} trace", trace.trace_type).to_lowercase(),
            );
            log.data = data;
            vec![Message::Log(log)]
        }
    }
}

fn stream_to_airbyte(stream: &Stream) -> AirbyteStream {
    let mut extra = stream.extra.clone();
    if let Some(metadata) = &stream.metadata {
        extra.insert("metadata".to_owned(), metadata.clone());
    }
    let incremental = stream.newer_than_field.is_some();
    AirbyteStream {
        name: stream.name.clone(),
        json_schema: stream
            .json_schema
            .clone()
            .unwrap_or_else(|| json!({"type": "object"})),
        supported_sync_modes: if incremental {
            vec!["full_refresh".into(), "incremental".into()]
        } else {
            vec!["full_refresh".into()]
        },
        source_defined_cursor: incremental.then_some(true),
        default_cursor_field: stream.newer_than_field.clone().map(|f| vec![f]),
        source_defined_primary_key: (!stream.primary_key.is_empty())
            .then(|| stream.primary_key.clone()),
        namespace: None,
        is_resumable: None,
        extra,
    }
}

fn stream_from_airbyte(stream: AirbyteStream) -> Stream {
    let mut extra = stream.extra;
    let metadata = extra.remove("metadata");
    if let Some(ns) = stream.namespace {
        extra.insert("namespace".to_owned(), Value::String(ns));
    }
    let newer_than_field = stream
        .default_cursor_field
        .filter(|f| f.len() == 1)
        .and_then(|mut f| f.pop());
    Stream {
        name: stream.name,
        primary_key: stream.source_defined_primary_key.unwrap_or_default(),
        newer_than_field,
        json_schema: (!stream.json_schema.is_null()).then_some(stream.json_schema),
        metadata,
        soft_delete_field: None,
        extra,
    }
}

/// A native catalog as an Airbyte one: key as `source_defined_primary_key`, version field as `default_cursor_field`.
pub fn catalog_to_airbyte(catalog: &Catalog) -> AirbyteCatalog {
    AirbyteCatalog {
        streams: catalog.streams.iter().map(stream_to_airbyte).collect(),
        extra: catalog.extra.clone(),
    }
}

/// An Airbyte catalog as a native one (the reverse of [`catalog_to_airbyte`]).
pub fn catalog_from_airbyte(catalog: AirbyteCatalog) -> Catalog {
    Catalog {
        streams: catalog
            .streams
            .into_iter()
            .map(stream_from_airbyte)
            .collect(),
        extra: catalog.extra,
    }
}

/// The configured catalog file an Airbyte connector reads.
pub fn configured_catalog_to_airbyte(catalog: &ConfiguredCatalog) -> ConfiguredAirbyteCatalog {
    ConfiguredAirbyteCatalog {
        streams: catalog
            .streams
            .iter()
            .map(|cs| ConfiguredAirbyteStream {
                stream: stream_to_airbyte(&cs.stream),
                sync_mode: match cs.sync_mode {
                    SyncMode::FullRefresh => "full_refresh",
                    SyncMode::Incremental => "incremental",
                }
                .to_owned(),
                destination_sync_mode: match cs.destination_sync_mode {
                    DestinationSyncMode::Append => "append",
                    DestinationSyncMode::Overwrite => "overwrite",
                    DestinationSyncMode::AppendDedup => "append_dedup",
                    DestinationSyncMode::Update => "update",
                    DestinationSyncMode::SoftDelete => "soft_delete",
                }
                .to_owned(),
                cursor_field: cs
                    .cursor_field
                    .clone()
                    .or_else(|| cs.stream.newer_than_field.clone().map(|f| vec![f])),
                primary_key: (!cs.stream.primary_key.is_empty())
                    .then(|| cs.stream.primary_key.clone()),
                generation_id: None,
                minimum_generation_id: None,
                sync_id: None,
                extra: JsonMap::new(),
            })
            .collect(),
    }
}

/// The state file an Airbyte source reads: a JSON array of AirbyteStateMessage. With a global
/// state, one GLOBAL message carrying every stream state; otherwise one STREAM message per stream.
pub fn state_to_airbyte_input(state: &SourceStateSet) -> Vec<AirbyteState> {
    let has_global = state.global.as_object().is_some_and(|g| !g.is_empty())
        || !(state.global.is_null() || state.global.is_object());
    let stream_states = || {
        state.streams.iter().map(|(name, data)| AirbyteStreamState {
            stream_descriptor: StreamDescriptor::named(name),
            stream_state: Some(data.clone()),
        })
    };
    let blank = || AirbyteState {
        state_type: None,
        stream: None,
        global: None,
        data: None,
        source_stats: None,
        destination_stats: None,
        extra: JsonMap::new(),
    };
    if has_global {
        return vec![AirbyteState {
            state_type: Some(AirbyteStateType::Global),
            global: Some(AirbyteGlobalState {
                shared_state: Some(state.global.clone()),
                stream_states: stream_states().collect(),
            }),
            ..blank()
        }];
    }
    stream_states()
        .map(|s| AirbyteState {
            state_type: Some(AirbyteStateType::Stream),
            stream: Some(s),
            ..blank()
        })
        .collect()
}

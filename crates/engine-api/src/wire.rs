//! The HTTP API's request bodies, read and written by the server and the remote client alike.
//! Reading names the field at fault (`pipeline.source.type: …`).
//!
//! A pipeline is `{"source": {"type": T, T: {config}}, "destination": {…}, "streams": [...]}`;
//! the config may also sit beside `type` (`{"type": "stripe", "api_key": …}`).

use serde_json::{Map, Value, json};
use sync_protocol::{Catalog, Message, SyncState};

use crate::StreamChoice;
use crate::{ConnectorConfig, Only, PipelineRequest, SyncRequest};

/// A body that cannot be used, and why (the field first).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BodyError(pub String);

fn err<T>(message: impl Into<String>) -> Result<T, BodyError> {
    Err(BodyError(message.into()))
}

fn object<'a>(value: &'a Value, path: &str) -> Result<&'a Map<String, Value>, BodyError> {
    value
        .as_object()
        .ok_or_else(|| BodyError(format!("{path}: must be a JSON object")))
}

/// The fields of `pipeline_check`, `pipeline_setup` and `pipeline_teardown` bodies.
pub const OPERATION_FIELDS: &[&str] = &["pipeline", "only"];
/// The fields of a sync's body (`pipeline_sync`, `pipeline_sync_batch`, `pipeline_read`).
pub const SYNC_FIELDS: &[&str] = &[
    "pipeline",
    "state",
    "time_limit",
    "soft_time_limit",
    "state_limit",
    "run_id",
    "stdin",
    "prepared_catalog",
];
/// The fields of a `pipeline_write` body.
pub const WRITE_FIELDS: &[&str] = &["pipeline", "stdin"];
/// The fields of a `source_discover` body.
pub const DISCOVER_FIELDS: &[&str] = &["source", "streams"];

/// Refuses a key the body has no use for: a typo or a misplaced field is never ignored.
pub fn known_fields(
    map: &Map<String, Value>,
    path: &str,
    allowed: &[&str],
) -> Result<(), BodyError> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(key) => err(format!(
            "{}: unknown field (expected one of: {})",
            join(path, key),
            allowed.join(", ")
        )),
        None => Ok(()),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() || path == "body" {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Reads one side of a pipeline.
pub fn connector(value: &Value, path: &str) -> Result<ConnectorConfig, BodyError> {
    let side = object(value, path)?;
    let Some(name) = side.get("type") else {
        return err(format!(
            "{path}.type: missing (the connector's name, e.g. \"stripe\")"
        ));
    };
    let Some(name) = name.as_str().filter(|n| !n.is_empty()) else {
        return err(format!("{path}.type: must be a non-empty string"));
    };
    let config = match side.get(name) {
        Some(Value::Object(config)) => {
            known_fields(side, path, &["type", name])?;
            config.clone()
        }
        Some(_) => return err(format!("{path}.{name}: must be a JSON object (the config)")),
        None => side
            .iter()
            .filter(|(k, _)| k.as_str() != "type")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    };
    Ok(ConnectorConfig {
        name: name.to_owned(),
        config,
    })
}

/// A list of streams, each a name or `{name, backfill_limit?, fields?, sync_mode?}` (the
/// pipeline file's `streams` too). A name may be the stream's or its objects' (`customer`).
pub fn streams(value: &Value, path: &str) -> Result<Vec<StreamChoice>, BodyError> {
    let Some(list) = value.as_array() else {
        return err(format!("{path}: must be an array of streams"));
    };
    list.iter()
        .enumerate()
        .map(|(i, item)| {
            let at = format!("{path}[{i}]");
            if let Some(name) = item.as_str() {
                return Ok(StreamChoice {
                    name: name.to_owned(),
                    ..Default::default()
                });
            }
            let stream = object(item, &at)?;
            known_fields(
                stream,
                &at,
                &["name", "backfill_limit", "fields", "sync_mode"],
            )?;
            let Some(name) = stream.get("name").and_then(Value::as_str) else {
                return err(format!("{at}.name: missing"));
            };
            let backfill_limit = match stream.get("backfill_limit") {
                None | Some(Value::Null) => None,
                Some(v) => Some(v.as_u64().filter(|n| *n > 0).ok_or_else(|| {
                    BodyError(format!("{at}.backfill_limit: must be a positive integer"))
                })?),
            };
            let fields = match stream.get("fields") {
                None | Some(Value::Null) => None,
                Some(v) => Some(serde_json::from_value(v.clone()).map_err(|_| {
                    BodyError(format!("{at}.fields: must be an array of field names"))
                })?),
            };
            let sync_mode = match stream.get("sync_mode") {
                None | Some(Value::Null) => None,
                Some(v) => Some(serde_json::from_value(v.clone()).map_err(|_| {
                    BodyError(format!(
                        "{at}.sync_mode: must be \"incremental\" (continue from the saved state) or \"full_refresh\" (read the stream from scratch)"
                    ))
                })?),
            };
            Ok(StreamChoice {
                name: name.to_owned(),
                backfill_limit,
                fields,
                sync_mode,
            })
        })
        .collect()
}

/// Keys of a pipeline as the reference's service stores and sends it whole: taken, and not
/// acted on here (the caller keeps what they mean: whether to run, and the state it sends as
/// `state`).
const STORED_PIPELINE_KEYS: [&str; 3] = ["desired_status", "status", "sync_state"];

/// Reads a pipeline.
pub fn pipeline(value: &Value, path: &str) -> Result<PipelineRequest, BodyError> {
    let p = object(value, path)?;
    let mut allowed = vec!["id", "source", "destination", "streams"];
    allowed.extend(STORED_PIPELINE_KEYS);
    known_fields(p, path, &allowed)?;
    let side = |key: &str| match p.get(key) {
        Some(v) => connector(v, &format!("{path}.{key}")),
        None => err(format!("{path}.{key}: missing")),
    };
    let sync_id = match p.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) if !id.is_empty() => Some(id.clone()),
        Some(_) => return err(format!("{path}.id: must be a non-empty string")),
    };
    Ok(PipelineRequest {
        source: side("source")?,
        destination: side("destination")?,
        streams: match p.get("streams") {
            None | Some(Value::Null) => None,
            Some(v) => Some(streams(v, &format!("{path}.streams"))?),
        },
        sync_id,
    })
}

/// The pipeline as the API writes it.
pub fn pipeline_json(p: &PipelineRequest) -> Value {
    let side = |c: &ConnectorConfig| json!({"type": c.name, c.name.clone(): c.config});
    let mut out = json!({"source": side(&p.source), "destination": side(&p.destination)});
    if let Some(id) = &p.sync_id {
        out["id"] = json!(id);
    }
    if let Some(streams) = &p.streams {
        out["streams"] = Value::Array(
            streams
                .iter()
                .map(|s| {
                    let mut item = json!({"name": s.name});
                    if let Some(limit) = s.backfill_limit {
                        item["backfill_limit"] = json!(limit);
                    }
                    if let Some(fields) = &s.fields {
                        item["fields"] = json!(fields);
                    }
                    if let Some(mode) = s.sync_mode {
                        item["sync_mode"] = json!(mode);
                    }
                    item
                })
                .collect(),
        );
    }
    out
}

fn seconds(body: &Map<String, Value>, key: &str) -> Result<Option<f64>, BodyError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_f64() {
            Some(s) if crate::is_time_limit(s) => Ok(Some(s)),
            _ => err(format!(
                "{key}: must be a number of seconds above 0 and at most {}",
                crate::MAX_TIME_LIMIT_SECS
            )),
        },
    }
}

/// A pipeline operation's body: `{pipeline, only?}`.
pub fn operation(body: &Value) -> Result<(PipelineRequest, Option<Only>), BodyError> {
    let b = object(body, "body")?;
    known_fields(b, "body", OPERATION_FIELDS)?;
    let Some(p) = b.get("pipeline") else {
        return err("pipeline: missing");
    };
    let only = match b.get("only") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            serde_json::from_value(v.clone())
                .map_err(|_| BodyError("only: must be \"source\" or \"destination\"".into()))?,
        ),
    };
    Ok((pipeline(p, "pipeline")?, only))
}

/// A sync's body (`pipeline_sync`, `pipeline_sync_batch`, `pipeline_read`): the pipeline,
/// `state`, `time_limit`, `soft_time_limit`, `state_limit`, `run_id`, `stdin` (messages;
/// `source_input` ones go to the source), `prepared_catalog` (an earlier discover's catalog:
/// the run neither discovers nor runs setup).
pub fn sync(body: &Value) -> Result<(PipelineRequest, SyncRequest), BodyError> {
    let b = object(body, "body")?;
    known_fields(b, "body", SYNC_FIELDS)?;
    let Some(p) = b.get("pipeline") else {
        return err("pipeline: missing");
    };
    let pipeline = pipeline(p, "pipeline")?;
    let state = match b.get("state") {
        None | Some(Value::Null) => SyncState::default(),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| BodyError(format!("state: not a sync state ({e})")))?,
    };
    let state_limit = match b.get("state_limit") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .filter(|n| *n > 0)
                .ok_or_else(|| BodyError("state_limit: must be a positive integer".into()))?,
        ),
    };
    let run_id = match b.get("run_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) if !id.trim().is_empty() => Some(id.clone()),
        Some(_) => return err("run_id: must be a non-empty string (the run's name)"),
    };
    let mut input = Vec::new();
    if let Some(stdin) = b.get("stdin").filter(|v| !v.is_null()) {
        let Some(items) = stdin.as_array() else {
            return err("stdin: must be an array of messages");
        };
        for (i, item) in items.iter().enumerate() {
            input.push(source_input(item).map_err(|e| BodyError(format!("stdin[{i}]: {e}")))?);
        }
    }
    let prepared = match b.get("prepared_catalog") {
        None | Some(Value::Null) => None,
        Some(v) => Some(serde_json::from_value::<Catalog>(v.clone()).map_err(|e| {
            BodyError(format!(
                "prepared_catalog: not a catalog ({{\"streams\": [...]}}, as source_discover answers): {e}"
            ))
        })?),
    };
    Ok((
        pipeline,
        SyncRequest {
            state,
            time_limit: seconds(b, "time_limit")?,
            soft_time_limit: seconds(b, "soft_time_limit")?,
            state_limit,
            run_id,
            input,
            prepared,
        },
    ))
}

/// The messages of `pipeline_write`'s `stdin` (records and states for the destination).
pub fn write(body: &Value) -> Result<(PipelineRequest, Vec<Message>), BodyError> {
    let b = object(body, "body")?;
    known_fields(b, "body", WRITE_FIELDS)?;
    let Some(p) = b.get("pipeline") else {
        return err("pipeline: missing");
    };
    Ok((pipeline(p, "pipeline")?, write_input(b)?))
}

fn write_input(body: &Map<String, Value>) -> Result<Vec<Message>, BodyError> {
    let Some(items) = body.get("stdin").and_then(Value::as_array) else {
        return err("stdin: missing (an array of messages for the destination)");
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let line = serde_json::to_vec(item).map_err(|e| BodyError(e.to_string()))?;
            Message::from_slice(&line)
                .map_err(|e| BodyError(format!("stdin[{i}]: not a protocol message ({e})")))
        })
        .collect()
}

/// The payload of a `source_input` message.
pub fn source_input(item: &Value) -> Result<Value, String> {
    let line = serde_json::to_vec(item).map_err(|e| e.to_string())?;
    match Message::from_slice(&line) {
        Ok(Message::SourceInput(payload)) => Ok(payload),
        Ok(other) => Err(format!(
            "a {} message; only source_input messages go to the source",
            other.message_type()
        )),
        Err(e) => Err(format!("not a protocol message ({e})")),
    }
}

/// Reads an NDJSON body: a `start` message (`{"type":"start","start":{pipeline, state, …}}`),
/// then `source_input` messages.
pub fn ndjson_sync(text: &str) -> Result<(PipelineRequest, SyncRequest), BodyError> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((_, first)) = lines.next() else {
        return err("body: empty; the first line must be a start message");
    };
    let start: Value = serde_json::from_str(first)
        .map_err(|e| BodyError(format!("line 1: invalid JSON ({e})")))?;
    if start.get("type").and_then(Value::as_str) != Some("start") {
        return err("line 1: must be a start message ({\"type\":\"start\",\"start\":{…}})");
    }
    let Some(payload) = start.get("start") else {
        return err("line 1: start: missing");
    };
    let (pipeline, mut request) = sync(payload)?;
    for (number, line) in lines {
        let item: Value = serde_json::from_str(line)
            .map_err(|e| BodyError(format!("line {}: invalid JSON ({e})", number + 1)))?;
        request
            .input
            .push(source_input(&item).map_err(|e| BodyError(format!("line {}: {e}", number + 1)))?);
    }
    Ok((pipeline, request))
}

/// The body of every error answer of both HTTP servers (`sync-engine serve` and sync-service),
/// as the reference's: `{"error": "…"}`.
pub fn error_body(message: &str) -> Value {
    json!({ "error": message })
}

/// The JSON Schema of [`error_body`], for both servers' OpenAPI documents.
pub fn error_schema() -> Value {
    json!({"type": "object", "required": ["error"], "properties": {"error": {"type": "string", "description": "What is wrong, naming the field"}}})
}

/// The message of an error answer's body ([`error_body`]), when it has one.
pub fn error_message(body: &Value) -> Option<&str> {
    body.get("error").and_then(Value::as_str)
}

/// A sync's body as the remote client sends it.
pub fn sync_json(p: &PipelineRequest, r: &SyncRequest) -> Value {
    let mut body = json!({"pipeline": pipeline_json(p), "state": r.state});
    let set = |body: &mut Value, key: &str, v: Option<Value>| {
        if let Some(v) = v {
            body[key] = v;
        }
    };
    set(&mut body, "time_limit", r.time_limit.map(|s| json!(s)));
    set(
        &mut body,
        "soft_time_limit",
        r.soft_time_limit.map(|s| json!(s)),
    );
    set(&mut body, "state_limit", r.state_limit.map(|n| json!(n)));
    set(&mut body, "run_id", r.run_id.as_ref().map(|id| json!(id)));
    set(
        &mut body,
        "prepared_catalog",
        r.prepared.as_ref().map(|c| json!(c)),
    );
    if !r.input.is_empty() {
        body["stdin"] = Value::Array(
            r.input
                .iter()
                .map(|x| json!({"type": "source_input", "source_input": x}))
                .collect(),
        );
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_sits_under_the_type_or_beside_it() {
        let a = connector(&json!({"type": "stripe", "stripe": {"api_key": "k"}}), "s").unwrap();
        let b = connector(&json!({"type": "stripe", "api_key": "k"}), "s").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.config["api_key"], "k");
    }

    #[test]
    fn errors_name_the_field() {
        let e = operation(&json!({"pipeline": {"source": {"type": "stripe"}}})).unwrap_err();
        assert_eq!(e.0, "pipeline.destination: missing");
        let e =
            sync(&json!({"pipeline": {"source": {"type": ""}, "destination": {}}})).unwrap_err();
        assert!(e.0.starts_with("pipeline.source.type:"), "{e}");
        let body = json!({"pipeline": {"source": {"type": "a"}, "destination": {"type": "b"}}, "time_limit": -1});
        assert!(sync(&body).unwrap_err().0.starts_with("time_limit:"));
        for huge in [json!(1e308), json!(604_801), json!(u64::MAX)] {
            let body = json!({"pipeline": {"source": {"type": "a"}, "destination": {"type": "b"}}, "soft_time_limit": huge});
            assert!(sync(&body).unwrap_err().0.starts_with("soft_time_limit:"));
        }
        let body = json!({"pipeline": {"source": {"type": "a"}, "destination": {"type": "b"}}, "stdin": [{"type": "record", "record": {"stream": "s", "data": {}}}]});
        assert!(
            sync(&body)
                .unwrap_err()
                .0
                .starts_with("stdin[0]: a record message")
        );
    }

    #[test]
    fn a_field_the_body_has_no_use_for_is_refused_naming_it() {
        let pipeline = json!({"source": {"type": "a"}, "destination": {"type": "b"}});
        let refused = |body: Value| -> String {
            let by_sync = sync(&body).map(|_| ()).unwrap_err().0;
            by_sync.split(':').next().unwrap_or_default().to_owned()
        };
        assert_eq!(
            refused(json!({"pipeline": pipeline, "streams": ["customers"]})),
            "streams"
        );
        assert_eq!(refused(json!({"pipeline": pipeline, "run": "r"})), "run");
        assert_eq!(
            refused(json!({"pipeline": pipeline, "run_id": 5})),
            "run_id"
        );
        assert_eq!(
            refused(
                json!({"pipeline": {"source": {"type": "a"}, "destination": {"type": "b"}, "streams": [{"name": "x", "sync_mode": "sometimes"}]}})
            ),
            "pipeline.streams[0].sync_mode"
        );
        assert_eq!(
            refused(
                json!({"pipeline": {"source": {"type": "a"}, "destination": {"type": "b"}, "stream": []}})
            ),
            "pipeline.stream"
        );
        assert_eq!(
            refused(
                json!({"pipeline": {"source": {"type": "a"}, "destination": {"type": "b"}, "streams": [{"name": "x", "backfil_limit": 5}]}})
            ),
            "pipeline.streams[0].backfil_limit"
        );
        assert_eq!(
            refused(
                json!({"pipeline": {"source": {"type": "stripe", "stripe": {}, "backfill_limit": 5}, "destination": {"type": "b"}}})
            ),
            "pipeline.source.backfill_limit"
        );
        let zero = json!({"pipeline": {"source": {"type": "a"}, "destination": {"type": "b"}, "streams": [{"name": "x", "backfill_limit": 0}]}});
        assert!(
            sync(&zero)
                .unwrap_err()
                .0
                .starts_with("pipeline.streams[0].backfill_limit")
        );
        let e = operation(&json!({"pipeline": pipeline, "stdin": []})).unwrap_err();
        assert!(e.0.starts_with("stdin: unknown field"), "{e}");
        let e = write(&json!({"pipeline": pipeline, "only": "source", "stdin": []})).unwrap_err();
        assert!(e.0.starts_with("only: unknown field"), "{e}");
        assert!(write(&json!({"pipeline": pipeline, "stdin": []})).is_ok());
    }

    #[test]
    fn a_sync_body_as_the_reference_sends_it_is_read() {
        let body = json!({
            "pipeline": {
                "id": "pipe_1", "desired_status": "active", "status": "ready", "sync_state": null,
                "source": {"type": "stripe", "api_key": "k"},
                "destination": {"type": "postgres", "postgres": {"url": "u"}},
                "streams": [{"name": "customer", "sync_mode": "full_refresh"}, {"name": "invoices", "sync_mode": "incremental"}]},
            "state": null, "time_limit": 30, "soft_time_limit": 20, "run_id": "run-001"
        });
        let (p, r) = sync(&body).unwrap();
        assert_eq!(r.run_id.as_deref(), Some("run-001"));
        assert_eq!(p.sync_id.as_deref(), Some("pipe_1"));
        let modes: Vec<_> = p.streams.unwrap().iter().map(|s| s.sync_mode).collect();
        assert_eq!(
            modes,
            [
                Some(sync_protocol::SyncMode::FullRefresh),
                Some(sync_protocol::SyncMode::Incremental)
            ]
        );
    }

    #[test]
    fn a_sync_body_round_trips() {
        let body = json!({
            "pipeline": {"source": {"type": "stripe", "stripe": {"api_key": "k"}}, "destination": {"type": "postgres", "postgres": {"url": "u"}}, "streams": [{"name": "customers", "backfill_limit": 3, "sync_mode": "full_refresh"}]},
            "run_id": "r1",
            "time_limit": 2.5,
            "state_limit": 1,
            "stdin": [{"type": "source_input", "source_input": {"id": "evt_1"}}]
        });
        let (p, r) = sync(&body).unwrap();
        let again = sync(&sync_json(&p, &r)).unwrap();
        assert_eq!(p, again.0);
        assert_eq!(r.input, again.1.input);
        assert_eq!(again.1.time_limit, Some(2.5));
        assert_eq!(again.1.run_id.as_deref(), Some("r1"));
    }

    #[test]
    fn an_ndjson_body_starts_with_a_start_message() {
        let text = "{\"type\":\"start\",\"start\":{\"pipeline\":{\"source\":{\"type\":\"a\"},\"destination\":{\"type\":\"b\"}},\"time_limit\":3}}\n{\"type\":\"source_input\",\"source_input\":{\"id\":\"evt_1\"}}\n";
        let (_, r) = ndjson_sync(text).unwrap();
        assert_eq!(r.time_limit, Some(3.0));
        assert_eq!(r.input, vec![json!({"id": "evt_1"})]);
        assert!(
            ndjson_sync("{\"type\":\"record\"}")
                .unwrap_err()
                .0
                .starts_with("line 1:")
        );
    }
}

//! The OpenAPI 3.1 document, built from [`crate::ROUTES`] and the connectors' specs at request
//! time, so it always lists what the server serves and accepts.

use serde_json::{Map, Value, json};
use sync_protocol::Role;

use crate::AppState;
use crate::route_table::{Answer, ROUTES};
use sync_engine_api::Engine;
use sync_engine_api::openapi::{Auth, error_answer, reference};

fn one_of(names: &[&str]) -> Value {
    json!({ "oneOf": names.iter().map(|n| reference(n)).collect::<Vec<_>>() })
}

/// `SourceStripeConfig` for role source and name `stripe`.
fn config_component(role: Role, name: &str) -> String {
    let mut pascal = String::new();
    for part in name.split(|c: char| !c.is_ascii_alphanumeric()) {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            pascal.extend(first.to_uppercase());
            pascal.push_str(chars.as_str());
        }
    }
    let role = match role {
        Role::Source => "Source",
        Role::Destination => "Destination",
    };
    format!("{role}{pascal}Config")
}

/// A message envelope: `{"type": T, T: payload}`.
fn message(kind: &str, payload: Value) -> Value {
    json!({
        "type": "object",
        "required": ["type", kind],
        "properties": { "type": { "const": kind }, kind: payload }
    })
}

/// The schemas that do not depend on the connectors.
fn fixed_schemas() -> Map<String, Value> {
    let mut schemas = request_schemas();
    schemas.extend(message_schemas());
    schemas
}

/// The schemas of what clients send, and of errors and health.
fn request_schemas() -> Map<String, Value> {
    let any_object = json!({"type": "object"});
    let mut schemas = Map::new();
    schemas.insert("Health".into(), json!({"type": "object", "required": ["ok", "hostname"], "properties": {"ok": {"const": true}, "hostname": {"type": "string"}, "version": {"type": "string"}}}));
    schemas.insert("StreamSelection".into(), json!({"type": "object", "required": ["name"], "properties": {
            "name": {"type": "string", "description": "The stream (customers), or the name of its objects (customer, checkout.session) as the catalog's metadata.resource_name gives it"},
            "backfill_limit": {"type": "integer", "minimum": 1},
            "fields": {"type": "array", "items": {"type": "string"}},
            "sync_mode": {"enum": ["incremental", "full_refresh"], "description": "incremental (the default): continue from the saved state; full_refresh: read the stream from scratch, its saved state dropped for this run"}
        }}));
    let stored = |what: &str| json!({"description": format!("{what}: taken as the reference's service sends its stored pipeline, not acted on")});
    schemas.insert("PipelineConfig".into(), json!({"type": "object", "required": ["source", "destination"], "properties": {
            "id": {"type": "string", "minLength": 1, "description": "names the pipeline; a destination that tracks which syncs use its tables (dest-postgres: sync_id) gets it"},
            "source": reference("SourceConfig"),
            "destination": reference("DestinationConfig"),
            "streams": {"type": "array", "items": reference("StreamSelection")},
            "desired_status": stored("desired_status"),
            "status": stored("status"),
            "sync_state": stored("sync_state (send the state to resume from as the request's state)")
        }}));
    schemas.insert("PipelineOperation".into(), json!({"type": "object", "required": ["pipeline"], "properties": {"pipeline": reference("PipelineConfig"), "only": {"enum": ["source", "destination"]}}}));
    schemas.insert("SourceDiscover".into(), json!({"type": "object", "required": ["source"], "properties": {"source": reference("SourceConfig"), "streams": {"type": "array", "items": reference("StreamSelection")}}}));
    schemas.insert("SyncRequest".into(), json!({"type": "object", "required": ["pipeline"], "properties": {
            "pipeline": reference("PipelineConfig"),
            "state": reference("SyncState"),
            "time_limit": {"type": "number", "exclusiveMinimum": 0, "maximum": sync_engine_api::MAX_TIME_LIMIT_SECS, "description": "Hard limit in seconds: both connectors are stopped; what is committed stands"},
            "soft_time_limit": {"type": "number", "exclusiveMinimum": 0, "maximum": sync_engine_api::MAX_TIME_LIMIT_SECS, "description": "Graceful limit in seconds (default 0.8 × time_limit): the source stops, the destination commits"},
            "state_limit": {"type": "integer", "minimum": 1, "description": "Stop gracefully after this many source states"},
            "run_id": {"type": "string", "minLength": 1, "description": "Names the run: kept in eof.ending_state.sync_run.run_id and shown in the logs (also ?run_id=)"},
            "stdin": {"type": "array", "items": reference("SourceInputMessage"), "description": "Push-mode input for the source"},
            "prepared_catalog": {"type": "object", "required": ["streams"], "properties": {"streams": {"type": "array"}}, "description": "The source's catalog as an earlier source_discover answered it, from a caller that already ran setup: the run neither discovers nor runs setup"}
        }}));
    schemas.insert(
        "StartMessage".into(),
        json!(message("start", reference("SyncRequest"))),
    );
    schemas.insert("WriteRequest".into(), json!({"type": "object", "required": ["pipeline", "stdin"], "properties": {"pipeline": reference("PipelineConfig"), "stdin": {"type": "array", "items": reference("Message")}}}));
    schemas.insert("SyncState".into(), json!({"type": "object", "properties": {"source": {"type": "object", "properties": {"streams": {"type": "object", "additionalProperties": true}, "global": any_object}}, "destination": any_object, "sync_run": any_object}}));
    schemas.insert("SourceState".into(), json!({"type": "object", "required": ["state_type", "data"], "properties": {"state_type": {"enum": ["stream", "global"]}, "stream": {"type": "string"}, "data": true, "destination_stats": {"type": "object", "properties": {"committed": {"type": "integer"}, "rejected": {"type": "integer"}}}}}));
    schemas.insert(
        "RunStatus".into(),
        json!({"enum": ["started", "succeeded", "failed"]}),
    );
    schemas
}

/// The schemas of protocol messages and of what the routes answer.
fn message_schemas() -> Map<String, Value> {
    let time_range = json!({"type": "object", "properties": {"gte": {"type": "string", "format": "date-time"}, "lt": {"type": "string", "format": "date-time"}}});
    let mut schemas = Map::new();
    schemas.insert("StreamProgress".into(), json!({"type": "object", "properties": {"status": {"enum": ["not_started", "started", "completed", "skipped", "errored"]}, "state_count": {"type": "integer"}, "record_count": {"type": "integer"}, "committed_count": {"type": "integer"}, "rejected_count": {"type": "integer"}, "message": {"type": "string"}, "total_range": time_range.clone(), "completed_ranges": {"type": "array", "items": time_range}}}));
    schemas.insert("ProgressPayload".into(), json!({"type": "object", "required": ["started_at", "elapsed_ms", "derived"], "properties": {"started_at": {"type": "string", "format": "date-time"}, "elapsed_ms": {"type": "integer"}, "global_state_count": {"type": "integer"}, "derived": {"type": "object", "properties": {"status": reference("RunStatus"), "records_per_second": {"type": "number"}, "states_per_second": {"type": "number"}, "total_record_count": {"type": "integer"}, "total_state_count": {"type": "integer"}}}, "streams": {"type": "object", "additionalProperties": reference("StreamProgress")}}}));
    schemas.insert("EofPayload".into(), json!({"type": "object", "required": ["status", "has_more"], "properties": {"status": reference("RunStatus"), "reason": {"enum": ["complete", "time_limit", "state_limit", "aborted", "error"]}, "has_more": {"type": "boolean"}, "ending_state": reference("SyncState"), "run_progress": reference("ProgressPayload"), "request_progress": reference("ProgressPayload")}}));
    schemas.insert("RecordMessage".into(), json!(message("record", json!({"type": "object", "required": ["stream", "data"], "properties": {"stream": {"type": "string"}, "data": {"type": "object"}, "emitted_at": {"type": "string"}}}))));
    schemas.insert(
        "SourceStateMessage".into(),
        json!(message("source_state", reference("SourceState"))),
    );
    schemas.insert("CatalogMessage".into(), json!(message("catalog", json!({"type": "object", "required": ["streams"], "properties": {"streams": {"type": "array", "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}, "primary_key": {"type": "array"}, "newer_than_field": {"type": "string"}, "json_schema": {"type": "object"}, "metadata": {"type": "object"}}}}}}))));
    schemas.insert("LogMessage".into(), json!(message("log", json!({"type": "object", "required": ["level", "message"], "properties": {"level": {"enum": ["debug", "info", "warn", "error"]}, "message": {"type": "string"}, "data": true}}))));
    schemas.insert("SpecMessage".into(), json!(message("spec", json!({"type": "object", "required": ["config"], "properties": {"config": {"type": "object"}, "source_state_stream": {"type": "object"}, "source_input": {"type": "object"}}}))));
    schemas.insert("ConnectionStatusMessage".into(), json!(message("connection_status", json!({"type": "object", "required": ["status"], "properties": {"status": {"enum": ["succeeded", "failed"]}, "message": {"type": "string"}, "failure_type": {"enum": ["config_error", "transient_error", "system_error"]}, "_emitted_by": {"type": "string", "description": "source/<type> or destination/<type>"}}}))));
    schemas.insert("StreamStatusMessage".into(), json!(message("stream_status", json!({"type": "object", "required": ["stream", "status"], "properties": {"stream": {"type": "string"}, "status": {"enum": ["start", "range_complete", "complete", "error", "skip"]}, "time_range": {"type": "object"}, "range_complete": {"type": "object"}, "error": {"type": "string"}, "reason": {"type": "string"}}}))));
    schemas.insert("ControlMessage".into(), json!(message("control", json!({"type": "object", "required": ["control_type"], "properties": {"control_type": {"enum": ["source_config", "destination_config", "destination_tables"]}, "source_config": reference("SourceConfigValue"), "destination_config": reference("DestinationConfigValue"), "destination_tables": {"type": "object", "additionalProperties": {"type": "object", "required": ["identity", "has_rows"], "properties": {"identity": {"type": "string"}, "has_rows": {"type": "boolean"}, "table": {"type": "string"}}}}}}))));
    schemas.insert(
        "ProgressMessage".into(),
        json!(message("progress", reference("ProgressPayload"))),
    );
    schemas.insert(
        "EofMessage".into(),
        json!(message("eof", reference("EofPayload"))),
    );
    schemas.insert("SourceInputMessage".into(), json!(message("source_input", json!({"description": "Handed to the source as it is: a Stripe event, or a raw webhook {body, headers}"}))));
    schemas.insert(
        "Message".into(),
        json!(one_of(&[
            "RecordMessage",
            "SourceStateMessage",
            "CatalogMessage",
            "LogMessage",
            "SpecMessage",
            "ConnectionStatusMessage",
            "StreamStatusMessage",
            "ControlMessage",
            "ProgressMessage",
            "EofMessage",
            "SourceInputMessage"
        ])),
    );
    schemas.insert(
        "CheckOutput".into(),
        json!(one_of(&["ConnectionStatusMessage", "LogMessage"])),
    );
    schemas.insert(
        "SetupOutput".into(),
        json!(one_of(&["ControlMessage", "LogMessage"])),
    );
    schemas.insert("TeardownOutput".into(), json!(one_of(&["LogMessage"])));
    schemas.insert(
        "DiscoverOutput".into(),
        json!(one_of(&["CatalogMessage", "LogMessage"])),
    );
    schemas.insert("ReadOutput".into(), json!(reference("Message")));
    schemas.insert(
        "DestinationOutput".into(),
        json!(one_of(&[
            "SourceStateMessage",
            "StreamStatusMessage",
            "ConnectionStatusMessage",
            "LogMessage",
            "ControlMessage"
        ])),
    );
    schemas.insert(
        "SyncOutput".into(),
        json!(one_of(&[
            "SourceStateMessage",
            "StreamStatusMessage",
            "ProgressMessage",
            "ConnectionStatusMessage",
            "LogMessage",
            "ControlMessage",
            "EofMessage"
        ])),
    );
    schemas.insert("ConnectorList".into(), json!({"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "items": reference("ConnectorSchema")}}}));
    schemas.insert("ConnectorSchema".into(), json!({"type": "object", "required": ["type", "config_schema"], "properties": {"type": {"type": "string"}, "config_schema": {"type": "object"}, "source_input_schema": {"type": "object"}}}));
    schemas.insert(
        "OpenApiDocument".into(),
        json!({"type": "object", "description": "An OpenAPI 3.1 document"}),
    );
    schemas
}

/// The per-connector config schemas and the unions over them.
async fn connector_schemas(state: &AppState, schemas: &mut Map<String, Value>) {
    for role in [Role::Source, Role::Destination] {
        let mut sides = Vec::new();
        let mut values = Vec::new();
        for (found, name) in state.engine.resolver().candidates() {
            if found != role {
                continue;
            }
            let Ok(spec) = state.engine.spec(role, &name).await else {
                continue;
            };
            let component = config_component(role, &name);
            let value_component = format!("{component}Value");
            schemas.insert(value_component.clone(), spec.config.clone());
            schemas.insert(
                component.clone(),
                json!({
                    "type": "object",
                    "required": ["type"],
                    "description": format!("The config under \"{name}\", or its keys beside type"),
                    "properties": {"type": {"const": name}, name.clone(): reference(&value_component)}
                }),
            );
            sides.push(component);
            values.push(value_component);
        }
        let role_name = match role {
            Role::Source => "Source",
            Role::Destination => "Destination",
        };
        let union = |names: &[String]| {
            if names.is_empty() {
                json!({"type": "object"})
            } else {
                json!({"oneOf": names.iter().map(|n| reference(n)).collect::<Vec<_>>()})
            }
        };
        schemas.insert(format!("{role_name}Config"), union(&sides));
        schemas.insert(format!("{role_name}ConfigValue"), union(&values));
    }
}

fn error_responses() -> Value {
    let error = error_answer;
    json!({
        "400": error("The body, a connector name, a stream or a config is invalid (before anything runs)"),
        "401": error("A bearer token is required or wrong"),
        "429": error("The engine runs as many syncs as it may; see Retry-After"),
        "502": error("A connector failed before the operation could start"),
        "500": error("An internal error")
    })
}

fn operation(route: &crate::route_table::Route) -> Value {
    let (media, schema) = match route.answer {
        Answer::Json(schema) => ("application/json", schema),
        Answer::Ndjson(schema) => ("application/x-ndjson", schema),
    };
    let mut responses = error_responses();
    responses["200"] = json!({
        "description": if media == "application/json" { "JSON" } else { "One message per line, written as produced" },
        "headers": {"sync-engine-request-id": {"description": "A fresh UUID v4 per response", "schema": {"type": "string"}}},
        "content": {media: {"schema": reference(schema)}}
    });
    let mut op = json!({
        "operationId": route.operation_id,
        "summary": route.summary,
        "responses": responses,
    });
    if route.path.contains("{type}") {
        op["parameters"] =
            json!([{"name": "type", "in": "path", "required": true, "schema": {"type": "string"}}]);
        op["responses"]["404"] = error_answer("Unknown connector");
    }
    let action_id = json!({"name": "X-Action-Id", "in": "header", "required": false, "schema": {"type": "string"}, "description": "The caller's name for this action, shown in the logs"});
    if route.body == Some("PipelineOperation") {
        op["parameters"] = json!([action_id]);
    }
    if route.body == Some("SyncRequest") {
        op["parameters"] = json!([
            {"name": "run_id", "in": "query", "required": false, "schema": {"type": "string", "minLength": 1}, "description": "Names the run when the body gives no run_id (a different one is a 400)"},
            action_id
        ]);
    }
    if let Some(body) = route.body {
        let mut content = json!({"application/json": {"schema": reference(body)}});
        if body == "SyncRequest" {
            // A start message, then source_input messages, one per line.
            content["application/x-ndjson"] = json!({"schema": reference("StartMessage")});
        }
        op["requestBody"] = json!({"required": true, "content": content});
    }
    if route.path == "/health" {
        op["security"] = json!([]);
    }
    op
}

/// The document.
pub(super) async fn document(state: &AppState) -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let item = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| json!({}));
        item[route.method] = operation(route);
    }
    let mut schemas = fixed_schemas();
    connector_schemas(state, &mut schemas).await;
    sync_engine_api::openapi::document(
        "stripe-sync engine",
        "The sync engine over HTTP: pipelines in, NDJSON protocol messages out. See docs/http-api.md.",
        paths,
        schemas,
        Auth::WhenConfigured,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_names_are_pascal_case() {
        assert_eq!(
            config_component(Role::Source, "stripe"),
            "SourceStripeConfig"
        );
        assert_eq!(
            config_component(Role::Destination, "google-sheets"),
            "DestinationGoogleSheetsConfig"
        );
    }

    #[test]
    fn each_body_schema_lists_exactly_the_fields_its_parser_takes() {
        let schemas = fixed_schemas();
        for (schema, fields) in [
            ("PipelineOperation", sync_engine_api::wire::OPERATION_FIELDS),
            ("SyncRequest", sync_engine_api::wire::SYNC_FIELDS),
            ("WriteRequest", sync_engine_api::wire::WRITE_FIELDS),
            ("SourceDiscover", sync_engine_api::wire::DISCOVER_FIELDS),
        ] {
            test_support::assert_properties(&schemas[schema], fields, schema);
        }
    }

    #[test]
    fn every_reference_resolves() {
        let schemas = fixed_schemas();
        let text = serde_json::to_string(&schemas).unwrap();
        for part in text.split("#/components/schemas/").skip(1) {
            let name: String = part.chars().take_while(|c| *c != '"').collect();
            let dynamic = [
                "SourceConfig",
                "DestinationConfig",
                "SourceConfigValue",
                "DestinationConfigValue",
            ];
            assert!(
                schemas.contains_key(&name) || dynamic.contains(&name.as_str()),
                "dangling reference {name}"
            );
        }
        for route in ROUTES {
            for name in [
                route.body,
                Some(match route.answer {
                    Answer::Json(s) | Answer::Ndjson(s) => s,
                }),
            ]
            .into_iter()
            .flatten()
            {
                assert!(
                    schemas.contains_key(name),
                    "{} refers to {name}",
                    route.path
                );
            }
        }
    }
}

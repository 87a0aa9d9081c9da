//! The OpenAPI 3.1 document of the REST API, built from [`ROUTES`]; a test checks that every
//! route listed is served and that the document is valid.

use serde_json::{Map, Value, json};
use sync_engine_api::openapi::{Auth, error_answer, reference};

/// One route of the API.
pub struct Route {
    /// The HTTP method.
    pub method: &'static str,
    /// The path, with `{id}` for a pipeline id.
    pub path: &'static str,
    /// What the route does.
    pub summary: &'static str,
    /// The request body's schema, if it takes one.
    pub body: Option<&'static str>,
    /// The success status and the answer's schema.
    pub answer: (&'static str, &'static str),
    /// Query parameters: name, JSON type, what it does.
    pub query: &'static [(&'static str, &'static str, &'static str)],
    /// Answers NDJSON (connector and engine messages) unless the client accepts only JSON.
    pub ndjson: bool,
}

const fn route(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    body: Option<&'static str>,
    answer: (&'static str, &'static str),
) -> Route {
    Route {
        method,
        path,
        summary,
        body,
        answer,
        query: &[],
        ndjson: false,
    }
}

const fn with_query(
    mut r: Route,
    query: &'static [(&'static str, &'static str, &'static str)],
) -> Route {
    r.query = query;
    r
}

const fn ndjson(mut r: Route) -> Route {
    r.ndjson = true;
    r
}

const ONLY: &[(&str, &str, &str)] = &[("only", "string", "source or destination: one side only")];
const RUN_ID: (&str, &str, &str) = ("run_id", "string", "the caller's name for the run");
const RESET_STATE: (&str, &str, &str) = (
    "reset_state",
    "boolean",
    "start from no checkpoint (the result is saved as the checkpoint)",
);

/// Every route.
pub const ROUTES: &[Route] = &[
    route("get", "/health", "Liveness", None, ("200", "Health")),
    route(
        "get",
        "/openapi.json",
        "This document",
        None,
        ("200", "Document"),
    ),
    route(
        "get",
        "/pipelines",
        "Every pipeline (but those being deleted), secrets redacted",
        None,
        ("200", "PipelineList"),
    ),
    with_query(
        route(
            "post",
            "/pipelines",
            "Create a pipeline: check both connectors and its streams, store it, start its workflow",
            Some("PipelineCreate"),
            ("201", "Pipeline"),
        ),
        &[(
            "skip_check",
            "boolean",
            "store it without checking the connectors or the streams",
        )],
    ),
    route(
        "get",
        "/pipelines/{id}",
        "One pipeline, secrets redacted",
        None,
        ("200", "Pipeline"),
    ),
    route(
        "patch",
        "/pipelines/{id}",
        "Pause, resume, delete, or change configs and streams; a move elsewhere resets the checkpoint",
        Some("PipelineUpdate"),
        ("200", "Pipeline"),
    ),
    route(
        "delete",
        "/pipelines/{id}",
        "Gone at once; the workflow tears it down and forgets it",
        None,
        ("200", "Deleted"),
    ),
    route(
        "get",
        "/pipelines/{id}/runs",
        "The last 100 steps",
        None,
        ("200", "RunList"),
    ),
    ndjson(with_query(
        route(
            "post",
            "/pipelines/{id}/sync",
            "Run a step now, streaming its messages (ending with eof); as JSON, 202 once asked",
            None,
            ("200", "Message"),
        ),
        &[
            (
                "time_limit",
                "number",
                "the step's hard time limit in seconds (at most 600; graceful at 0.8 of it)",
            ),
            RUN_ID,
            RESET_STATE,
        ],
    )),
    with_query(
        route(
            "post",
            "/pipelines/{id}/sync_batch",
            "Run a step now and answer its eof once it ended, the run as run",
            None,
            ("200", "Eof"),
        ),
        &[
            (
                "state_limit",
                "integer",
                "stop gracefully after this many committed states",
            ),
            RUN_ID,
            RESET_STATE,
            (
                "timeout_secs",
                "integer",
                "answer 504 after this long (default 300; the step goes on)",
            ),
        ],
    ),
    route(
        "post",
        "/pipelines/{id}/reconcile",
        "Read everything again (a full reconcile)",
        None,
        ("202", "Accepted"),
    ),
    ndjson(with_query(
        route(
            "post",
            "/pipelines/{id}/check",
            "Check the stored configs",
            None,
            ("200", "Verdict"),
        ),
        ONLY,
    )),
    ndjson(with_query(
        route(
            "post",
            "/pipelines/{id}/setup",
            "Set the connectors up; config updates (a webhook secret) are stored",
            None,
            ("200", "Verdict"),
        ),
        ONLY,
    )),
    ndjson(with_query(
        route(
            "post",
            "/pipelines/{id}/teardown",
            "Tear a paused pipeline's connectors down and reset its checkpoint",
            None,
            ("200", "Verdict"),
        ),
        ONLY,
    )),
    route(
        "post",
        "/webhooks/{id}",
        "A Stripe webhook, verified with the pipeline's webhook_secret (or, for a Connect platform's pipeline, connect_webhook_secret)",
        Some("StripeEvent"),
        ("200", "WebhookReceived"),
    ),
];

fn schemas() -> Map<String, Value> {
    let side = json!({"type": "object", "description": "{name, config}, or as the reference writes it: {type, <type>: {config}} or the config beside type; a postgres destination's connection_string is its url", "properties": {
        "name": {"type": "string", "description": "Connector name (default stripe / postgres)"},
        "config": {"type": "object", "description": "The connector's config; secrets are shown as ***"},
        "type": {"type": "string", "description": "Connector name (the reference's spelling; then the config is beside it or under its name)"}}});
    let stream = json!({"oneOf": [{"type": "string"}, {"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string"}, "sync_mode": {"enum": ["incremental", "full_refresh"]},
        "backfill_limit": {"type": "integer", "minimum": 1}, "fields": {"type": "array", "items": {"type": "string"}}}}]});
    let status = json!({"enum": ["backfilling", "ready", "paused", "error", "tearing_down"]});
    let mut s = Map::new();
    s.insert(
        "Health".into(),
        json!({"type": "object", "required": ["ok"], "properties": {"ok": {"const": true}}}),
    );
    s.insert("Document".into(), json!({"type": "object"}));
    s.insert("ConnectorSide".into(), side);
    s.insert("Pipeline".into(), json!({"type": "object", "required": ["id", "source", "destination", "status", "desired_status"], "properties": {
        "id": {"type": "string"}, "source": reference("ConnectorSide"), "destination": reference("ConnectorSide"),
        "streams": {"type": ["array", "null"], "items": stream.clone()},
        "desired_status": {"enum": ["active", "paused", "deleted"]}, "status": status,
        "failure_type": {"type": ["string", "null"], "enum": ["config_error", "transient_error", "system_error", null]},
        "error": {"type": ["string", "null"]},
        "checkpoint": {"type": "object", "description": "GET /pipelines/{id} only: the state a step resumes from, when it was saved, how many saves, what it was written for, and when and why it was last reset", "properties": {
            "state": {"type": "object"}, "saved_at": {"type": "string"}, "saves": {"type": "integer"},
            "written_for": {"type": ["object", "null"], "properties": {"source": {"type": "string"}, "destination": {"type": "string"}}},
            "reset": {"type": ["object", "null"], "properties": {"at": {"type": "string"}, "reason": {"type": "string"}}}}},
        "accounts": {"type": "array", "description": "GET /pipelines/{id} of a Connect platform's pipeline (connected_accounts) only: each account's status as its checkpoint holds it (the _accounts table's rows)", "items": {"type": "object", "properties": {
            "account_id": {"type": "string"}, "is_platform": {"type": "boolean"},
            "status": {"type": "string", "enum": ["active", "unavailable", "deauthorized", "failed"]},
            "connected_at": {"type": ["integer", "null"]}, "deauthorized_at": {"type": ["integer", "null"]},
            "last_synced_at": {"type": ["integer", "null"]}, "error": {"type": ["string", "null"]}}}},
        "checkpoint_reset": {"type": ["string", "null"], "description": "PATCH only: why the update reset the checkpoint (it moved what the source reads or where the destination writes), else null"}}}));
    s.insert("PipelineList".into(), json!({"type": "object", "required": ["data", "has_more"], "properties": {"data": {"type": "array", "items": reference("Pipeline")}, "has_more": {"const": false}}}));
    s.insert("PipelineCreate".into(), json!({"type": "object", "required": ["source", "destination"], "additionalProperties": false, "properties": {
        "id": {"type": "string", "pattern": "^[a-zA-Z0-9][a-zA-Z0-9_-]{0,63}$", "description": "absent: pipe_ and 16 random characters"}, "source": reference("ConnectorSide"), "destination": reference("ConnectorSide"),
        "streams": {"type": "array", "minItems": 1, "items": stream.clone()}}}));
    s.insert("PipelineUpdate".into(), json!({"type": "object", "additionalProperties": false, "properties": {
        "desired_status": {"enum": ["active", "paused", "deleted"]}, "status": {"enum": ["active", "paused", "deleted"], "description": "the same as desired_status"},
        "source": reference("ConnectorSide"), "destination": reference("ConnectorSide"),
        "streams": {"type": "array", "minItems": 1, "items": stream}}}));
    s.insert("Deleted".into(), json!({"type": "object", "required": ["id", "deleted"], "properties": {"id": {"type": "string"}, "deleted": {"const": true}}}));
    s.insert("Message".into(), json!({"type": "object", "required": ["type"], "description": "One NDJSON line: a message of the protocol (docs/protocol.md); config updates are shown with secrets as ***", "properties": {"type": {"type": "string"}}}));
    s.insert("Eof".into(), json!({"type": "object", "required": ["status", "has_more"], "description": "The run's eof payload (docs/protocol.md), with the run as run", "properties": {
        "status": {"enum": ["started", "succeeded", "failed"]}, "reason": {"type": "string"}, "has_more": {"type": "boolean"},
        "ending_state": {"type": ["object", "null"]}, "run_progress": {"type": "object"}, "request_progress": {"type": "object"},
        "error": {"type": "object", "properties": {"code": {"type": "string"}, "message": {"type": "string"}}},
        "run": reference("Run")}}));
    s.insert("Run".into(), json!({"type": "object", "properties": {
        "id": {"type": "integer"}, "fence": {"type": "integer"}, "started_at": {"type": "string"}, "ended_at": {"type": ["string", "null"]},
        "status": {"enum": ["started", "succeeded", "time_limit", "interrupted", "failed"]}, "has_more": {"type": ["boolean", "null"]},
        "states": {"type": "integer"}, "error": {"type": ["string", "null"]}}}));
    s.insert("RunList".into(), json!({"type": "object", "required": ["data"], "properties": {"data": {"type": "array", "items": reference("Run")}}}));
    s.insert("Verdict".into(), json!({"type": "object", "required": ["id", "ok"], "properties": {
        "id": {"type": "string"}, "ok": {"type": "boolean"},
        "failures": {"type": "array", "items": {"type": "object", "properties": {"failure_type": {"type": ["string", "null"]}, "message": {"type": "string"}}}},
        "config_updated": {"type": "array", "items": {"enum": ["source", "destination"]}},
        "checkpoint": {"const": "reset"}}}));
    s.insert("Accepted".into(), json!({"type": "object"}));
    s.insert("StripeEvent".into(), json!({"type": "object", "required": ["id", "object"], "properties": {"id": {"type": "string"}, "object": {"const": "event"}}}));
    s.insert("WebhookReceived".into(), json!({"type": "object", "required": ["received", "duplicate"], "properties": {"received": {"type": "string"}, "duplicate": {"type": "boolean"}}}));
    s
}

/// The document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for Route {
        method,
        path,
        summary,
        body,
        answer: (code, answer),
        query,
        ndjson,
    } in ROUTES
    {
        let content = if *ndjson {
            json!({"application/x-ndjson": {"schema": reference("Message")},
                   "application/json": {"schema": reference(answer)}})
        } else {
            json!({"application/json": {"schema": reference(answer)}})
        };
        let mut operation = json!({
            "summary": summary,
            "responses": {
                *code: {"description": "OK", "content": content},
                "default": error_answer("An error"),
            },
        });
        let mut parameters = Vec::new();
        if path.contains("{id}") {
            parameters.push(
                json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}),
            );
        }
        for (name, kind, description) in *query {
            parameters.push(json!({"name": name, "in": "query", "required": false, "description": description, "schema": {"type": kind}}));
        }
        if !parameters.is_empty() {
            operation["parameters"] = Value::Array(parameters);
        }
        if matches!(*path, "/health" | "/openapi.json") || path.starts_with("/webhooks/") {
            // Open, or signed by Stripe instead.
            operation["security"] = json!([]);
        }
        if let Some(body) = body {
            operation["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": reference(body)}}});
        }
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        entry[*method] = operation;
    }
    sync_engine_api::openapi::document(
        "sync-service",
        "Pipelines as durable workflows: the REST API. See docs/service.md.",
        paths,
        schemas(),
        Auth::Required,
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn each_body_schema_lists_exactly_the_fields_its_parser_takes() {
        let schemas = super::schemas();
        for (schema, fields) in [
            ("PipelineCreate", crate::api::CREATE_FIELDS),
            ("PipelineUpdate", crate::api::UPDATE_FIELDS),
        ] {
            test_support::assert_properties(&schemas[schema], fields, schema);
        }
    }
}

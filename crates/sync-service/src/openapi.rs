//! The OpenAPI 3.1 document of the REST API, built from [`ROUTES`]; a test checks that every
//! route listed is served and that the document is valid.

use serde_json::{Map, Value, json};

/// One route of the API.
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    /// The request body's schema, if it takes one.
    pub body: Option<&'static str>,
    /// The success status and the answer's schema.
    pub answer: (&'static str, &'static str),
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
    }
}

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
        "Every pipeline, secrets redacted",
        None,
        ("200", "PipelineList"),
    ),
    route(
        "post",
        "/pipelines",
        "Create a pipeline: check both connectors and its streams, store it, start its workflow",
        Some("PipelineCreate"),
        ("201", "Pipeline"),
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
        "Pause, resume, or change configs and streams; a move elsewhere resets the checkpoint",
        Some("PipelineUpdate"),
        ("200", "Pipeline"),
    ),
    route(
        "delete",
        "/pipelines/{id}",
        "Tear the pipeline down and forget it",
        None,
        ("202", "Pipeline"),
    ),
    route(
        "get",
        "/pipelines/{id}/runs",
        "The last 100 steps",
        None,
        ("200", "RunList"),
    ),
    route(
        "post",
        "/pipelines/{id}/sync",
        "Run a step now",
        None,
        ("202", "Accepted"),
    ),
    route(
        "post",
        "/pipelines/{id}/sync_batch",
        "Run a step now and answer with it once it ended (?timeout_secs=, default 300)",
        None,
        ("200", "Run"),
    ),
    route(
        "post",
        "/pipelines/{id}/reconcile",
        "Read everything again (a full reconcile)",
        None,
        ("202", "Accepted"),
    ),
    route(
        "post",
        "/pipelines/{id}/check",
        "Check the stored configs (?only=source|destination)",
        None,
        ("200", "Verdict"),
    ),
    route(
        "post",
        "/pipelines/{id}/setup",
        "Set the connectors up; config updates (a webhook secret) are stored (?only=)",
        None,
        ("200", "Verdict"),
    ),
    route(
        "post",
        "/pipelines/{id}/teardown",
        "Tear a paused pipeline's connectors down and reset its checkpoint (?only=)",
        None,
        ("200", "Verdict"),
    ),
    route(
        "post",
        "/webhooks/{id}",
        "A Stripe webhook, verified with the pipeline's webhook_secret",
        Some("StripeEvent"),
        ("200", "WebhookReceived"),
    ),
];

fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn schemas() -> Map<String, Value> {
    let side = json!({"type": "object", "properties": {
        "name": {"type": "string", "description": "Connector name (default stripe / postgres)"},
        "config": {"type": "object", "description": "The connector's config; secrets are shown as ***"}}});
    let status = json!({"enum": ["backfilling", "ready", "paused", "error", "tearing_down"]});
    let mut s = Map::new();
    s.insert("Error".into(), json!({"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["message"], "properties": {"message": {"type": "string", "description": "What is wrong, naming the field"}}}}}));
    s.insert(
        "Health".into(),
        json!({"type": "object", "required": ["ok"], "properties": {"ok": {"const": true}}}),
    );
    s.insert("Document".into(), json!({"type": "object"}));
    s.insert("ConnectorSide".into(), side);
    s.insert("Pipeline".into(), json!({"type": "object", "required": ["id", "source", "destination", "status", "desired_status"], "properties": {
        "id": {"type": "string"}, "source": reference("ConnectorSide"), "destination": reference("ConnectorSide"),
        "streams": {"type": ["array", "null"], "items": {"type": "string"}},
        "desired_status": {"enum": ["active", "paused", "deleted"]}, "status": status,
        "failure_type": {"type": ["string", "null"], "enum": ["config_error", "transient_error", "system_error", null]},
        "error": {"type": ["string", "null"]},
        "checkpoint": {"type": "object", "description": "GET /pipelines/{id} only: the state a step resumes from, when it was saved, how many saves, what it was written for, and when and why it was last reset", "properties": {
            "state": {"type": "object"}, "saved_at": {"type": "string"}, "saves": {"type": "integer"},
            "written_for": {"type": ["object", "null"], "properties": {"source": {"type": "string"}, "destination": {"type": "string"}}},
            "reset": {"type": ["object", "null"], "properties": {"at": {"type": "string"}, "reason": {"type": "string"}}}}},
        "checkpoint_reset": {"type": ["string", "null"], "description": "PATCH only: why the update reset the checkpoint (it moved what the source reads or where the destination writes), else null"}}}));
    s.insert("PipelineList".into(), json!({"type": "object", "required": ["data"], "properties": {"data": {"type": "array", "items": reference("Pipeline")}}}));
    s.insert("PipelineCreate".into(), json!({"type": "object", "required": ["source", "destination"], "additionalProperties": false, "properties": {
        "id": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$"}, "source": reference("ConnectorSide"), "destination": reference("ConnectorSide"),
        "streams": {"type": "array", "minItems": 1, "items": {"type": "string"}}}}));
    s.insert("PipelineUpdate".into(), json!({"type": "object", "additionalProperties": false, "properties": {
        "status": {"enum": ["active", "paused", "deleted"]}, "source": reference("ConnectorSide"), "destination": reference("ConnectorSide"),
        "streams": {"type": "array", "minItems": 1, "items": {"type": "string"}}}}));
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
    } in ROUTES
    {
        let mut operation = json!({
            "summary": summary,
            "responses": {
                *code: {"description": "OK", "content": {"application/json": {"schema": reference(answer)}}},
                "default": {"description": "An error", "content": {"application/json": {"schema": reference("Error")}}},
            },
        });
        if path.contains("{id}") {
            operation["parameters"] = json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}]);
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
    json!({
        "openapi": "3.1.0",
        "info": {"title": "sync-service", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    })
}

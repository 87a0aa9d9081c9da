//! Every route, listed once: the router and the OpenAPI document are both built from
//! [`ROUTES`], so neither can miss a route the other has.

/// How a route answers, for the OpenAPI document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// A JSON document (its component schema).
    Json(&'static str),
    /// An NDJSON stream of messages (its component schema, a union of messages).
    Ndjson(&'static str),
}

/// One route.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub operation_id: &'static str,
    pub summary: &'static str,
    /// The request body's component schema, for POST routes.
    pub body: Option<&'static str>,
    pub answer: Answer,
}

/// Every route the server serves.
pub(crate) const ROUTES: &[Route] = &[
    Route {
        method: "get",
        path: "/health",
        operation_id: "health",
        summary: "Liveness: {ok, hostname, version}; needs no token",
        body: None,
        answer: Answer::Json("Health"),
    },
    Route {
        method: "post",
        path: "/pipeline_check",
        operation_id: "pipeline_check",
        summary: "Run check on both connectors (or `only` one): one connection_status each, tagged _emitted_by",
        body: Some("PipelineOperation"),
        answer: Answer::Ndjson("CheckOutput"),
    },
    Route {
        method: "post",
        path: "/pipeline_setup",
        operation_id: "pipeline_setup",
        summary: "Run setup on both connectors (or `only` one) for the selected streams",
        body: Some("PipelineOperation"),
        answer: Answer::Ndjson("SetupOutput"),
    },
    Route {
        method: "post",
        path: "/pipeline_teardown",
        operation_id: "pipeline_teardown",
        summary: "Run teardown on both connectors (or `only` one)",
        body: Some("PipelineOperation"),
        answer: Answer::Ndjson("TeardownOutput"),
    },
    Route {
        method: "post",
        path: "/source_discover",
        operation_id: "source_discover",
        summary: "The source's catalog (narrowed to `streams` when given)",
        body: Some("SourceDiscover"),
        answer: Answer::Ndjson("DiscoverOutput"),
    },
    Route {
        method: "post",
        path: "/pipeline_read",
        operation_id: "pipeline_read",
        summary: "Read from the source only: every message it emits (records included), then an eof",
        body: Some("SyncRequest"),
        answer: Answer::Ndjson("ReadOutput"),
    },
    Route {
        method: "post",
        path: "/pipeline_write",
        operation_id: "pipeline_write",
        summary: "Write the records and states of `stdin` to the destination: what it emits (committed states, logs)",
        body: Some("WriteRequest"),
        answer: Answer::Ndjson("DestinationOutput"),
    },
    Route {
        method: "post",
        path: "/pipeline_sync",
        operation_id: "pipeline_sync",
        summary: "Sync: committed states, statuses, progress, then exactly one eof; records are never streamed back. The body may also be NDJSON whose first line is a start message",
        body: Some("SyncRequest"),
        answer: Answer::Ndjson("SyncOutput"),
    },
    Route {
        method: "post",
        path: "/pipeline_sync_batch",
        operation_id: "pipeline_sync_batch",
        summary: "Sync until `state_limit` states (default 1000) are committed; answers the eof payload as JSON",
        body: Some("SyncRequest"),
        answer: Answer::Json("EofPayload"),
    },
    Route {
        method: "get",
        path: "/meta/sources",
        operation_id: "meta_sources",
        summary: "The source connectors this engine finds, with their config schemas",
        body: None,
        answer: Answer::Json("ConnectorList"),
    },
    Route {
        method: "get",
        path: "/meta/sources/{type}",
        operation_id: "meta_source",
        summary: "One source connector's config schema; 404 when unknown",
        body: None,
        answer: Answer::Json("ConnectorSchema"),
    },
    Route {
        method: "get",
        path: "/meta/destinations",
        operation_id: "meta_destinations",
        summary: "The destination connectors this engine finds, with their config schemas",
        body: None,
        answer: Answer::Json("ConnectorList"),
    },
    Route {
        method: "get",
        path: "/meta/destinations/{type}",
        operation_id: "meta_destination",
        summary: "One destination connector's config schema; 404 when unknown",
        body: None,
        answer: Answer::Json("ConnectorSchema"),
    },
    Route {
        method: "get",
        path: "/openapi.json",
        operation_id: "openapi",
        summary: "This document",
        body: None,
        answer: Answer::Json("OpenApiDocument"),
    },
];

//! What the OpenAPI 3.1 documents of both HTTP servers (`sync-engine serve` and sync-service)
//! share: references to components, the error answer, and the document's frame with its
//! bearer-token scheme. Each server lists its own routes and schemas.

use serde_json::{Map, Value, json};

/// A reference to the component schema `name`.
pub fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// An error answer ([`crate::wire::error_body`]), described.
pub fn error_answer(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": reference("Error")}}})
}

/// Whether a server's routes need the bearer token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// Always (sync-service).
    Required,
    /// Only when the server runs with a token (`sync-engine serve --api-token`).
    WhenConfigured,
}

/// The document: `title` and `description` in its info, the crate's version, the paths, the
/// component schemas (an `Error` among them, [`crate::wire::error_schema`], unless given) and
/// the bearer scheme.
pub fn document(
    title: &str,
    description: &str,
    paths: Map<String, Value>,
    mut schemas: Map<String, Value>,
    auth: Auth,
) -> Value {
    schemas
        .entry("Error")
        .or_insert_with(crate::wire::error_schema);
    let (scheme_description, security) = match auth {
        Auth::Required => (
            "Every route but those marked otherwise",
            json!([{"bearerAuth": []}]),
        ),
        Auth::WhenConfigured => (
            "Required when the server runs with --api-token",
            json!([{"bearerAuth": []}, {}]),
        ),
    };
    json!({
        "openapi": "3.1.0",
        "info": {"title": title, "version": env!("CARGO_PKG_VERSION"), "description": description},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "description": scheme_description}}
        },
        "security": security
    })
}

//! The optional bearer token: required on every route but `/health` when the server has one.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::AppState;
use super::ndjson::error_response;

/// Compares digests, so the time taken says nothing about how much of the token matched.
fn same_token(given: &str, expected: &str) -> bool {
    Sha256::digest(given.as_bytes()) == Sha256::digest(expected.as_bytes())
}

pub async fn require_token(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(expected) = &state.token else {
        return next.run(request).await;
    };
    if request.uri().path() == "/health" {
        return next.run(request).await;
    }
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(token) if same_token(token, expected) => next.run(request).await,
        Some(_) => error_response(
            StatusCode::UNAUTHORIZED,
            "the bearer token is not this engine's",
        )
        .into_response(),
        None => error_response(
            StatusCode::UNAUTHORIZED,
            "this engine requires Authorization: Bearer <token>",
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_compare_by_value() {
        assert!(super::same_token("abc", "abc"));
        assert!(!super::same_token("abd", "abc"));
        assert!(!super::same_token("", "abc"));
    }
}

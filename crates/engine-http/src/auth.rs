//! The optional bearer token: required on every route but `/health` when the server has one
//! (the web console's login form and assets aside).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sync_web_guard::gate::Gate;

use crate::AppState;
use crate::ndjson::error_response;

/// The bearer token, or the web console's session cookie (`sync_web_guard::gate`); pages
/// without either go to the login form.
pub(super) async fn require_token(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    if request.uri().path() == "/health" {
        return next.run(request).await;
    }
    let gate = sync_web_guard::gate::gate(
        request.method(),
        request.uri().path(),
        request.uri().query(),
        request.headers(),
        state.token.as_deref(),
    );
    match gate {
        Gate::Pass => next.run(request).await,
        Gate::Login(wanted) => sync_web_guard::gate::to_login(&wanted),
        Gate::Refuse(why) => error_response(StatusCode::UNAUTHORIZED, why).into_response(),
    }
}

//! What the API's handlers share: their state, their answers and errors, strict query
//! parsing (a leaf the route modules use; the routers are in `api.rs`).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::activities::AnyEngine;
use crate::control::{Control, ControlError};
use crate::pipeline::{self, Desired, Pipeline};
use crate::temporal::Temporal;
use crate::workflow::PipelineInput;

/// What the API's handlers share.
pub struct Api {
    /// The control database.
    pub control: Control,
    /// The Temporal client (signals, workflow starts).
    pub temporal: Temporal,
    /// Runs `check` before a pipeline is created.
    pub engine: AnyEngine,
    /// Required as `Authorization: Bearer …` when set.
    pub token: Option<String>,
    /// What a pipeline's workflow starts with (timers, the live task queue); the id and the
    /// desired status are filled in per pipeline.
    pub workflow: PipelineInput,
    /// The login the console's SQL page runs statements as (`--sql-reader-url`).
    pub sql_reader: Option<sync_console::SqlReader>,
}

/// An error answer.
pub struct Failure(pub StatusCode, pub String);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.0, Json(sync_engine_api::wire::error_body(&self.1))).into_response()
    }
}

/// A query string naming only the parameters its route takes: anything else (a typo such as
/// `?side=source` on teardown) is a 400 naming it, never a request that does more than asked.
pub struct StrictQuery<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for StrictQuery<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Failure;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Failure> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(query)| StrictQuery(query))
            .map_err(|e| Failure(StatusCode::BAD_REQUEST, e.body_text()))
    }
}

impl From<ControlError> for Failure {
    fn from(e: ControlError) -> Self {
        let code = match e {
            ControlError::NotFound(_) => StatusCode::NOT_FOUND,
            ControlError::Exists(_) => StatusCode::CONFLICT,
            ControlError::Database(_) | ControlError::Fenced(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        Failure(code, e.to_string())
    }
}

impl From<pipeline::Invalid> for Failure {
    fn from(e: pipeline::Invalid) -> Self {
        Failure(StatusCode::BAD_REQUEST, e.0)
    }
}

pub(crate) fn unavailable(e: anyhow::Error) -> Failure {
    Failure(StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}"))
}

pub(crate) type Answer = Result<Response, Failure>;

impl Api {
    /// A pipeline the API shows: one to be deleted is gone already (its teardown goes on in
    /// the workflow).
    pub(crate) async fn visible(&self, id: &str) -> Result<Pipeline, Failure> {
        let p = self.control.get(id).await?;
        if p.desired == Desired::Deleted {
            return Err(ControlError::NotFound(id.to_owned()).into());
        }
        Ok(p)
    }

    pub(crate) fn input(&self, id: &str, desired: Desired) -> PipelineInput {
        PipelineInput {
            pipeline_id: id.to_owned(),
            desired,
            ..self.workflow.clone()
        }
    }
}

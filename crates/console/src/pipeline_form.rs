//! Making and editing a pipeline: the form at `/console/pipelines/new` and
//! `/console/pipelines/{id}/edit`, built from the connectors' config schemas, and the two
//! calls its script makes before saving: `POST /console/check` (each side's check) and
//! `POST /console/streams` (the source's streams, from discover). Saving goes to the REST API
//! (`POST /pipelines`, `PATCH /pipelines/{id}`), so the form can do nothing the API refuses.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::config_form::{self, Field};
use crate::frame::{Chrome, render, unavailable};
use crate::pipelines::Pipelines;
use crate::views::{ConnectorForm, Draft, StoredPipeline};

/// One side of the form.
pub(crate) struct SideForm {
    /// `source` or `destination`.
    pub(crate) side: &'static str,
    /// The connector's name.
    pub(crate) name: String,
    /// Its fields, required first.
    pub(crate) fields: Vec<Field>,
}

impl SideForm {
    fn of(
        side: &'static str,
        connector: &ConnectorForm,
        stored: Option<&StoredPipeline>,
    ) -> SideForm {
        let config = stored.map(|s| match side {
            "source" => &s.source["config"],
            _ => &s.destination["config"],
        });
        SideForm {
            side,
            name: connector.name.clone(),
            fields: config_form::fields(&connector.schema, config),
        }
    }

    /// The required fields, shown first.
    pub(crate) fn required(&self) -> impl Iterator<Item = &Field> {
        self.fields.iter().filter(|f| f.required)
    }

    /// The optional fields, folded away.
    pub(crate) fn optional(&self) -> impl Iterator<Item = &Field> {
        self.fields.iter().filter(|f| !f.required)
    }

    /// A field's element id.
    pub(crate) fn id(&self, field: &Field) -> String {
        format!("{}-{}", self.side, field.key)
    }
}

#[derive(askama::Template)]
#[template(path = "pipeline_form.html")]
struct FormPage<'a> {
    chrome: &'a Chrome,
    current: &'static str,
    title: String,
    /// The pipeline edited; `None`: a new one.
    editing: Option<String>,
    sides: [SideForm; 2],
    /// The stored streams (an edit) as JSON, chosen when the list arrives; `null`: all.
    stored_streams: String,
}

impl FormPage<'_> {
    /// The pipeline's page (an edit).
    fn back(&self) -> String {
        match &self.editing {
            Some(id) => crate::link::pipeline_page(id),
            None => "/".to_owned(),
        }
    }
}

/// `GET /console/pipelines/new`.
pub(crate) async fn new(State(console): State<Arc<Pipelines>>) -> Response {
    form(&console, None).await
}

/// `GET /console/pipelines/{id}/edit`.
pub(crate) async fn edit(
    State(console): State<Arc<Pipelines>>,
    Path(id): Path<String>,
) -> Response {
    form(&console, Some(id)).await
}

async fn form(console: &Pipelines, editing: Option<String>) -> Response {
    let connectors = match console.data.connectors().await {
        Ok(c) => c,
        Err(e) => return unavailable(&console.chrome, &e),
    };
    let stored = match &editing {
        None => None,
        Some(id) => match console.data.stored(id).await {
            Ok(Some(s)) => Some(s),
            Ok(None) => {
                return crate::frame::not_found(
                    &console.chrome,
                    &format!("There is no pipeline {id:?}."),
                );
            }
            Err(e) => return unavailable(&console.chrome, &e),
        },
    };
    let [source, destination] = &connectors;
    if let Some(s) = &stored {
        let names = (s.source["name"].as_str(), s.destination["name"].as_str());
        if names != (Some(source.name.as_str()), Some(destination.name.as_str())) {
            return crate::frame::message(
                &console.chrome,
                StatusCode::CONFLICT,
                "Edit through the API",
                &format!(
                    "This form edits pipelines from {} into {}; this one runs {} into {}. Change it with PATCH /pipelines/{{id}}.",
                    source.name,
                    destination.name,
                    names.0.unwrap_or("?"),
                    names.1.unwrap_or("?"),
                ),
            );
        }
    }
    render(&FormPage {
        chrome: &console.chrome,
        current: "pipelines",
        title: match &editing {
            Some(id) => format!("Edit {id} · Pipelines"),
            None => "New pipeline · Pipelines".to_owned(),
        },
        sides: [
            SideForm::of("source", source, stored.as_ref()),
            SideForm::of("destination", destination, stored.as_ref()),
        ],
        stored_streams: stored
            .map(|s| s.streams.to_string())
            .unwrap_or_else(|| "null".to_owned()),
        editing,
    })
}

/// A draft the host refused: a 400 naming the field, as the API's.
fn refused(message: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": message}))).into_response()
}

/// `POST /console/check`: `{"sides": [{"side", "ok", "message"}…]}`.
pub(crate) async fn check(
    State(console): State<Arc<Pipelines>>,
    Json(draft): Json<Draft>,
) -> Response {
    match console.data.check(draft).await {
        Ok(sides) => Json(json!({"sides": sides})).into_response(),
        Err(e) => refused(e),
    }
}

/// `POST /console/streams`: `{"streams": [{"name", "common"}…]}`.
pub(crate) async fn streams(
    State(console): State<Arc<Pipelines>>,
    Json(draft): Json<Draft>,
) -> Response {
    match console.data.streams(draft).await {
        Ok(streams) => Json(json!({"streams": streams})).into_response(),
        Err(e) => refused(e),
    }
}

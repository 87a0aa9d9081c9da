//! The pipelines pages: the list at `/` and one pipeline at `/console/pipelines/{id}`, each
//! with a server-sent event stream the page applies in place (no reload, no layout shift).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use futures_util::stream;
use serde_json::json;

use crate::frame::{Chrome, render, unavailable};
use crate::views::{DetailView, PipelineData, RowView, summary};

/// How often an open page is brought up to date.
const LIVE_EVERY: Duration = Duration::from_secs(1);

#[derive(askama::Template)]
#[template(path = "pipelines.html")]
struct ListPage<'a> {
    chrome: &'a Chrome,
    current: &'static str,
    title: String,
    summary: String,
    rows: Vec<RowView>,
}

#[derive(askama::Template)]
#[template(path = "pipeline.html")]
struct DetailPage<'a> {
    chrome: &'a Chrome,
    current: &'static str,
    title: String,
    view: DetailView,
}

/// What the pipelines pages share.
pub(crate) struct Pipelines {
    pub(crate) chrome: Chrome,
    pub(crate) data: Arc<dyn PipelineData>,
}

/// `GET /`.
pub(crate) async fn list(State(console): State<Arc<Pipelines>>) -> Response {
    match console.data.rows().await {
        Ok(rows) => render(&ListPage {
            chrome: &console.chrome,
            current: "pipelines",
            title: "Pipelines".to_owned(),
            summary: summary(&rows),
            rows: rows.iter().map(RowView::of).collect(),
        }),
        Err(e) => unavailable(&console.chrome, &e),
    }
}

/// `GET /console/pipelines/{id}`.
pub(crate) async fn detail(
    State(console): State<Arc<Pipelines>>,
    Path(id): Path<String>,
) -> Response {
    match console.data.detail(&id).await {
        Ok(Some(detail)) => render(&DetailPage {
            chrome: &console.chrome,
            current: "pipelines",
            title: format!("{id} · Pipelines"),
            view: DetailView::of(&detail),
        }),
        Ok(None) => {
            crate::frame::not_found(&console.chrome, &format!("There is no pipeline {id:?}."))
        }
        Err(e) => unavailable(&console.chrome, &e),
    }
}

/// Every `LIVE_EVERY`, the value `next` gives, as an event named `update` (a problem is sent
/// as an `problem` event; the page keeps its numbers and says so).
fn live<F, Fut>(next: F) -> Sse<impl Stream<Item = Result<Event, Infallible>>>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<serde_json::Value, String>> + Send,
{
    let ticks = stream::unfold((next, true), |(next, first)| async move {
        if !first {
            tokio::time::sleep(LIVE_EVERY).await;
        }
        let event = match next().await {
            Ok(value) => Event::default().event("update").data(value.to_string()),
            Err(problem) => Event::default().event("problem").data(problem),
        };
        Some((Ok(event), (next, false)))
    });
    Sse::new(ticks).keep_alive(KeepAlive::default())
}

/// `GET /console/events`: the list, every second.
pub(crate) async fn list_events(State(console): State<Arc<Pipelines>>) -> Response {
    live(move || {
        let console = console.clone();
        async move {
            let rows = console.data.rows().await?;
            let views: Vec<RowView> = rows.iter().map(RowView::of).collect();
            Ok(json!({"summary": summary(&rows), "rows": views}))
        }
    })
    .into_response()
}

/// `GET /console/pipelines/{id}/events`: one pipeline, every second.
pub(crate) async fn detail_events(
    State(console): State<Arc<Pipelines>>,
    Path(id): Path<String>,
) -> Response {
    live(move || {
        let console = console.clone();
        let id = id.clone();
        async move {
            match console.data.detail(&id).await? {
                Some(detail) => {
                    serde_json::to_value(DetailView::of(&detail)).map_err(|e| e.to_string())
                }
                None => Ok(json!({"gone": true})),
            }
        }
    })
    .into_response()
}

//! The console's routes.

use std::sync::Arc;

use axum::routing::{get, post};
use axum::{Form, Router};

use crate::frame::{Chrome, Console};
use crate::pipelines::{self, Pipelines};
use crate::views::{ExplorerData, PipelineData};
use crate::{assets, auth, explorer, pipeline_form, sql_page};

/// The console's routes: `/login`, `/logout`, `/assets/…`, `/explorer…` (`/explorer/sql` when
/// [`Chrome::sql`]), and with
/// `pipelines`, `/` and `/console/…` (the pipelines, and the form that makes and edits them). The host puts its own gate (`sync_web_guard::gate`) in front.
pub fn router(
    chrome: Chrome,
    explorer: Arc<dyn ExplorerData>,
    pipelines: Option<Arc<dyn PipelineData>>,
) -> Router {
    let chrome = Chrome {
        pipelines: pipelines.is_some(),
        ..chrome
    };
    let login_chrome = Arc::new(chrome.clone());
    let form_chrome = login_chrome.clone();
    let mut router = Router::new()
        .route(
            "/login",
            get(move |q| async move { auth::login_form(&login_chrome, q) })
                .post(move |f: Form<auth::LoginForm>| async move { auth::login(&form_chrome, f) }),
        )
        .route("/logout", post(|| async { auth::logout() }))
        .route("/assets/{file}", get(assets::serve))
        .merge(
            Router::new()
                .route("/explorer", get(explorer::index))
                .route("/explorer/tables/{stream}", get(explorer::table))
                .route("/explorer/sql", get(sql_page::page))
                .route("/explorer/sql.csv", get(sql_page::csv))
                .with_state(Arc::new(Console {
                    chrome: chrome.clone(),
                    explorer,
                })),
        );
    if let Some(data) = pipelines {
        router = router.merge(
            Router::new()
                .route("/", get(pipelines::list))
                .route("/console/events", get(pipelines::list_events))
                .route("/console/pipelines/new", get(pipeline_form::new))
                .route("/console/pipelines/{id}", get(pipelines::detail))
                .route("/console/pipelines/{id}/edit", get(pipeline_form::edit))
                .route("/console/check", post(pipeline_form::check))
                .route("/console/streams", post(pipeline_form::streams))
                .route(
                    "/console/pipelines/{id}/events",
                    get(pipelines::detail_events),
                )
                .with_state(Arc::new(Pipelines { chrome, data })),
        );
    }
    router
}

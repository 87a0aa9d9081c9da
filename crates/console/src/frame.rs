//! What every page shares: the frame, rendering, and the error pages (a leaf the pages use;
//! the routes that mount them are in `pages.rs`).

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use crate::sql_reader::SqlReader;
use crate::views::ExplorerData;

/// The frame of every page: which host serves it and what it offers.
#[derive(Debug, Clone)]
pub struct Chrome {
    /// The host's bearer token; `None`: no login.
    pub token: Option<String>,
    /// The host has pipelines (sync-service); sync-engine has the explorer only.
    pub pipelines: bool,
    /// The host's name, shown in the header.
    pub host: &'static str,
    /// The SQL page runs statements: set when the host has a token (pages need a login) or
    /// listens on loopback only and answers no other name (`--allowed-host`), never on a
    /// tokenless server others can reach.
    pub sql: bool,
    /// The login the SQL page runs statements as (`--sql-reader-url`); `None`: each
    /// destination's own, read-only by the transaction.
    pub sql_reader: Option<SqlReader>,
}

/// The explorer's side of the console.
pub(crate) struct Console {
    pub(crate) chrome: Chrome,
    pub(crate) explorer: Arc<dyn ExplorerData>,
}

/// A template's page, or a plain error page when it cannot be rendered.
pub(crate) fn render<T: askama::Template>(page: &T) -> Response {
    render_with(StatusCode::OK, page)
}

/// [`render`] answering `status`.
pub(crate) fn render_with<T: askama::Template>(status: StatusCode, page: &T) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!("a console page failed to render: {e}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page failed to render",
            )
                .into_response()
        }
    }
}

#[derive(askama::Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    chrome: &'a Chrome,
    current: &'static str,
    title: &'a str,
    message: &'a str,
}

/// A page that only says something.
pub(crate) fn message_page(chrome: &Chrome, title: &str, message: &str) -> String {
    let page = MessagePage {
        chrome,
        current: "",
        title,
        message,
    };
    askama::Template::render(&page).unwrap_or_else(|_| message.to_owned())
}

/// The page for an unknown item.
pub(crate) fn not_found(chrome: &Chrome, what: &str) -> Response {
    message(chrome, StatusCode::NOT_FOUND, "Not found", what)
}

/// A page that only says something, answering `status`.
pub(crate) fn message(chrome: &Chrome, status: StatusCode, title: &str, what: &str) -> Response {
    (status, Html(message_page(chrome, title, what))).into_response()
}

/// The page for a host that cannot answer now (its database is down, say).
pub(crate) fn unavailable(chrome: &Chrome, problem: &str) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Html(message_page(chrome, "Unavailable", problem)),
    )
        .into_response()
}

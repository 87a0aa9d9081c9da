//! `/explorer/sql`: one read-only query on a destination, its rows as a table (with each
//! column's type, the row count and the time), and `/explorer/sql.csv`, the same as CSV.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use crate::destinations::{Choice, chosen};
use crate::frame::{Console, message_page, render_with, unavailable};
use crate::link;
use crate::sql::{self, Answer, Refusal};
use crate::table_stats::Destination;

/// The page's query: the statement and the destination it runs on.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct SqlQuery {
    #[serde(default)]
    sql: String,
    /// A destination's label (a pipeline id in sync-service).
    #[serde(default)]
    destination: Option<String>,
}

struct ResultView {
    columns: Vec<(String, String)>,
    rows: Vec<Vec<Option<String>>>,
    count: String,
    millis: String,
    truncated: bool,
}

#[derive(askama::Template)]
#[template(path = "sql.html")]
struct SqlPage<'a> {
    chrome: &'a crate::frame::Chrome,
    current: &'static str,
    title: String,
    sql: String,
    choices: Vec<Choice>,
    result: Option<ResultView>,
    problem: Option<String>,
    csv_href: String,
    page_rows: String,
    timeout_secs: u64,
}

/// The answer when the host runs no SQL (no token and a bind beyond loopback).
fn refused(console: &Console) -> Response {
    (
        StatusCode::FORBIDDEN,
        Html(message_page(
            &console.chrome,
            "SQL unavailable",
            "This server runs no SQL for the console: it has no API token, and others can reach \
             it (it listens beyond loopback, or answers names given with --allowed-host). Start \
             it with --api-token (and log in), or have it listen on 127.0.0.1 only.",
        )),
    )
        .into_response()
}

/// A request another site's page made the browser send (`Sec-Fetch-Site`): an `<img>` or a
/// link elsewhere must not run statements with this server's credentials. Requests without the
/// header (not from a browser, or an old one) pass.
fn from_another_site(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|site| !matches!(site, "same-origin" | "none"))
}

fn cross_site(console: &Console) -> Response {
    (
        StatusCode::FORBIDDEN,
        Html(message_page(
            &console.chrome,
            "SQL refused",
            "Statements run only from this server's own pages (this request came from another \
             site's page). Open the SQL page here and run it from there.",
        )),
    )
        .into_response()
}

/// The destination a statement runs on and the choices, once the request may run SQL at all;
/// else the page that says why not.
async fn admitted(
    console: &Console,
    headers: &HeaderMap,
    wanted: Option<&str>,
) -> Result<(Option<Destination>, Vec<Choice>), Response> {
    if !console.chrome.sql {
        return Err(refused(console));
    }
    if from_another_site(headers) {
        return Err(cross_site(console));
    }
    let (destination, choices, _) = chosen(console, wanted)
        .await
        .map_err(|e| unavailable(&console.chrome, &e))?;
    Ok((destination, choices))
}

/// The connection a statement on `destination` runs on: the server's SQL reader when it has
/// one (refused, `409`, for a destination in another database), else the destination's own.
fn connection(console: &Console, destination: &Destination) -> Result<Destination, String> {
    match &console.chrome.sql_reader {
        Some(reader) => reader.serving(destination),
        None => Ok(destination.clone()),
    }
}

fn no_destination(choices: &[Choice]) -> String {
    if choices.is_empty() {
        "there is no Postgres destination to query (sync-engine serve: --explorer-config naming \
         a pipeline whose destination is Postgres)"
            .to_owned()
    } else {
        "choose the destination to query".to_owned()
    }
}

/// `GET /explorer/sql`.
pub(crate) async fn page(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    Query(query): Query<SqlQuery>,
) -> Response {
    let (destination, choices) =
        match admitted(&console, &headers, query.destination.as_deref()).await {
            Ok(found) => found,
            Err(page) => return page,
        };
    let statement = query.sql.trim();
    let mut status = StatusCode::OK;
    let (result, problem) = match (&destination, statement.is_empty()) {
        (_, true) => (None, None),
        (None, false) => {
            status = StatusCode::BAD_REQUEST;
            (None, Some(no_destination(&choices)))
        }
        (Some(d), false) => match connection(&console, d) {
            Err(why) => {
                status = StatusCode::CONFLICT;
                (None, Some(why))
            }
            Ok(d) => match sql::run(
                &d,
                statement,
                sql::PAGE_ROWS,
                sql::PAGE_BYTES,
                sql::STATEMENT_TIMEOUT,
            )
            .await
            {
                Ok(answer) => (Some(view(answer)), None),
                Err(refusal) => {
                    status = refusal_status(&refusal);
                    (None, Some(refusal.to_string()))
                }
            },
        },
    };
    let csv_href = link::sql_csv(statement, destination.as_ref().map(|d| d.label.as_str()));
    let page = SqlPage {
        chrome: &console.chrome,
        current: "sql",
        title: "SQL".to_owned(),
        sql: statement.to_owned(),
        choices,
        result,
        problem,
        csv_href,
        page_rows: crate::format::count(sql::PAGE_ROWS as i64),
        timeout_secs: sql::STATEMENT_TIMEOUT.as_secs(),
    };
    render_with(status, &page)
}

/// The CSV download's header saying whether rows were left out.
const TRUNCATED_HEADER: &str = "x-stripe-sync-truncated";

fn refusal_status(refusal: &Refusal) -> StatusCode {
    match refusal {
        Refusal::NotAQuery(_) | Refusal::Postgres(_) => StatusCode::BAD_REQUEST,
        Refusal::TimedOut(_) => StatusCode::GATEWAY_TIMEOUT,
        Refusal::Unreachable(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

fn view(answer: Answer) -> ResultView {
    ResultView {
        count: crate::format::count(answer.rows.len() as i64),
        millis: format!("{:.0}", answer.elapsed.as_secs_f64() * 1000.0),
        columns: answer.columns,
        rows: answer.rows,
        truncated: answer.truncated,
    }
}

/// `GET /explorer/sql.csv`: the rows as CSV (a header of column names; NULL as an empty
/// field), at most [`sql::CSV_ROWS`] rows and about [`sql::CSV_BYTES`]; a download cut short
/// says so in the header `x-stripe-sync-truncated: true`. An error is plain text with the
/// status the page gives.
pub(crate) async fn csv(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    Query(query): Query<SqlQuery>,
) -> Response {
    let plain = |status: StatusCode, text: String| {
        (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            text,
        )
            .into_response()
    };
    let (destination, choices) =
        match admitted(&console, &headers, query.destination.as_deref()).await {
            Ok(found) => found,
            Err(page) => return page,
        };
    let Some(destination) = destination else {
        return plain(StatusCode::BAD_REQUEST, no_destination(&choices));
    };
    let destination = match connection(&console, &destination) {
        Ok(d) => d,
        Err(why) => return plain(StatusCode::CONFLICT, why),
    };
    let answer = match sql::run(
        &destination,
        query.sql.trim(),
        sql::CSV_ROWS,
        sql::CSV_BYTES,
        sql::STATEMENT_TIMEOUT,
    )
    .await
    {
        Ok(answer) => answer,
        Err(refusal) => return plain(refusal_status(&refusal), refusal.to_string()),
    };
    match csv_text(&answer) {
        Ok(body) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"query.csv\"",
                ),
                (
                    header::HeaderName::from_static(TRUNCATED_HEADER),
                    if answer.truncated { "true" } else { "false" },
                ),
            ],
            body,
        )
            .into_response(),
        Err(e) => plain(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

fn csv_text(answer: &Answer) -> Result<Vec<u8>, csv::Error> {
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(answer.columns.iter().map(|(name, _)| name))?;
    for row in &answer.rows {
        out.write_record(row.iter().map(|v| v.as_deref().unwrap_or("")))?;
    }
    out.into_inner()
        .map_err(|e| csv::Error::from(std::io::Error::other(e.to_string())))
}

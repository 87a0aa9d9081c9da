#![warn(missing_docs)]
#![warn(unreachable_pub)]
//! `sync-engine serve`: the engine as an HTTP service (axum). Every route is listed once in
//! `route_table::ROUTES`, which builds both the router and the OpenAPI document, so neither can
//! miss a route the other has. Pages (the web explorer) are the binary's to mount: [`serve`]
//! takes them as [`Pages`] and puts its guards in front of them as of its own routes.

// clap turns doc comments into help text, so the flags are documented by their help.
#[allow(missing_docs)]
mod args;
mod auth;
mod ndjson;
mod openapi;
mod route_table;
mod routes;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::Response;
use sync_engine_api::PipelineRequest;
use sync_web_guard::same_site::{AllowedHost, SameSite};

use sync_engine_runtime::local::LocalEngine;
use sync_engine_runtime::resolve::Resolver;
use sync_engine_runtime::{exit, usage};

pub use args::ServeArgs;
use route_table::ROUTES;

/// The `nice` increment of the connectors a server runs.
const CONNECTOR_NICENESS: i32 = 10;

/// What every handler shares.
pub(crate) struct AppState {
    /// The engine that runs the operations.
    pub engine: Arc<LocalEngine>,
    /// Required as a bearer token on every route but /health, when set.
    pub token: Option<String>,
    /// Reported by /health.
    pub hostname: String,
}

/// What the pages a binary mounts beside the API are given.
pub struct Mount {
    /// The engine the server runs its operations with.
    pub engine: Arc<LocalEngine>,
    /// The server's bearer token, when it has one (a login form checks it).
    pub token: Option<String>,
    /// The pipeline of `--explorer-config`, when given: the one whose catalog pages show.
    pub explorer: Option<PipelineRequest>,
    /// The server listens on a loopback address only and answers no other name
    /// (`--allowed-host`): others cannot reach it.
    pub local_only: bool,
    /// `--sql-reader-url`: the login the SQL page runs statements as.
    pub sql_reader_url: Option<String>,
}

/// Builds the routes a binary serves beside the API (say, the web console), once the server
/// knows its engine; behind the same guards as the API (the same-site guard, and the bearer
/// token or the console's session cookie).
pub type Pages = Box<dyn FnOnce(Mount) -> Router + Send>;

pub use sync_engine_api::MAX_BODY_BYTES;

/// The header carrying a fresh id on every response.
pub const REQUEST_ID: &str = "sync-engine-request-id";

/// A random UUID (version 4), formatted.
fn uuid_v4() -> String {
    let mut bytes: [u8; 16] = rand::random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

async fn stamp_request_id(request: Request, next: Next) -> Response {
    let id = uuid_v4();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let mut response = next.run(request).await;
    tracing::debug!(request_id = %id, "{method} {path} → {}", response.status());
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// The routes whose bodies may be NDJSON (a `start` line, then `source_input` lines).
const NDJSON_ROUTES: [&str; 3] = ["/pipeline_sync", "/pipeline_sync_batch", "/pipeline_read"];

/// The guard against pages of other sites for a server listening on `bound`.
fn same_site(bound: SocketAddr, allowed: &[AllowedHost], token_set: bool) -> SameSite {
    SameSite::new(bound, allowed, token_set, ndjson::error_response)
        .ndjson_routes(&NDJSON_ROUTES)
        // Liveness probes ask by whatever name they know.
        .exempt(&["/health"])
}

/// The whole service: the API's routes and `pages`.
fn app(state: Arc<AppState>, same_site: SameSite, pages: Router) -> Router {
    let mut router = Router::new();
    for route in ROUTES {
        router = router.route(route.path, routes::handler(route));
    }
    router
        .with_state(state.clone())
        .merge(pages)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .layer(middleware::from_fn_with_state(
            Arc::new(same_site),
            sync_web_guard::same_site::enforce,
        ))
        .layer(middleware::from_fn(stamp_request_id))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
}

fn default_max_runs() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()) * 4
}

/// Runs the server, with `pages` beside the API, until SIGINT or SIGTERM; running syncs are
/// then cancelled (what their destinations committed stands).
pub async fn serve(args: ServeArgs, pages: Pages) -> Result<u8> {
    let resolver = Resolver::new(&args.resolver).map_err(usage)?;
    let timeout = Duration::from_secs_f64(args.connector_timeout);
    let max_runs = args
        .max_concurrent_runs
        .map_or_else(default_max_runs, |n| n as usize);
    let engine = Arc::new(LocalEngine::new(resolver, timeout).with_max_runs(max_runs));
    // Connectors yield the CPU to the server, so its routes answer quickly under many syncs.
    sync_engine_runtime::set_connector_niceness(CONNECTOR_NICENESS);
    // An empty token (say `--api-token "$TOKEN"` with TOKEN unset) would mean no auth at all.
    if args
        .api_token
        .as_deref()
        .is_some_and(|t| t.trim().is_empty())
    {
        return Err(usage(anyhow::anyhow!(
            "--api-token (or SYNC_ENGINE_API_TOKEN) is empty: give a token, or neither to serve without one"
        )));
    }
    let token = args.api_token;
    if let Some(token) = &token {
        sync_connector::redact::register_secret(token);
    }
    let explorer = match &args.explorer_config {
        Some(path) => {
            let settings =
                sync_engine_runtime::settings::pipeline(&sync_engine_runtime::args::PipelineArgs {
                    config: Some(path.clone()),
                    ..Default::default()
                })
                .with_context(|| format!("--explorer-config {}", path.display()))
                .map_err(usage)?;
            Some(PipelineRequest::from(&settings))
        }
        None => None,
    };
    let state = Arc::new(AppState {
        engine,
        token,
        hostname: hostname(),
    });
    let addr: SocketAddr = format!("{}:{}", args.host, args.port)
        .parse()
        .map_err(|e| usage(anyhow::anyhow!("--host/--port: {e}")))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let bound = listener.local_addr()?;
    let pages = pages(Mount {
        engine: state.engine.clone(),
        token: state.token.clone(),
        explorer,
        local_only: bound.ip().is_loopback() && args.allowed_host.is_empty(),
        sql_reader_url: args.sql_reader_url.clone(),
    });
    let same_site = same_site(bound, &args.allowed_host, state.token.is_some());
    if !bound.ip().is_loopback() && state.token.is_none() {
        tracing::warn!(
            "listening on {bound} without --api-token: anyone who can reach it can run syncs with the credentials they send"
        );
    }
    // The first line on stdout says where it listens, for scripts and tests (port 0).
    println!("listening on http://{bound}");
    tracing::info!("sync-engine serve on http://{bound} (at most {max_runs} syncs at once)");
    // Open responses are dropped on shutdown, which cancels their syncs at once (a graceful
    // shutdown would wait for syncs that may run for hours).
    tokio::select! {
        served = axum::serve(listener, app(state, same_site, pages)) => served.context("the server stopped")?,
        _ = shutdown_signal() => {}
    }
    Ok(exit::OK)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("shutting down: open responses end, their syncs are cancelled");
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn request_ids_are_uuid_v4() {
        let id = super::uuid_v4();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
        assert_ne!(id, super::uuid_v4());
    }
}

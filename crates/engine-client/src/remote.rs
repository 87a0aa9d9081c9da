//! The engine over HTTP: a client of `sync-engine serve` implementing the same interface as
//! the in-process engine. Streamed answers are read line by line as they arrive; dropping the
//! stream closes the connection, which cancels the operation on the server.

use std::time::Duration;

use anyhow::{Result, bail};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde_json::{Value, json};
use sync_protocol::framing::{LineDecoder, Outcome};
use sync_protocol::{Message, Role, Spec, Stamp};
use tokio::sync::oneshot;

use sync_engine_api::wire::{pipeline_json, sync_json};
use sync_engine_api::{
    Emitted, Emitter, Engine, EngineError, EngineResult, Messages, Outbox, PipelineRequest,
    SyncRequest,
};

/// Longest line accepted from the engine.
const MAX_LINE_BYTES: usize = sync_protocol::framing::DEFAULT_MAX_LINE_BYTES;

/// A `sync-engine serve` at a URL.
pub struct RemoteEngine {
    url: String,
    client: reqwest::Client,
}

impl RemoteEngine {
    /// A client of the engine at `url` (`http://host:port`), sending `token` as a bearer token.
    pub fn new(url: &str, token: Option<String>) -> Result<RemoteEngine> {
        let url = url.trim_end_matches('/').to_owned();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            bail!("--engine-url: {url:?} is not an http:// or https:// URL");
        }
        // reqwest is built without a default TLS provider; ring needs no C toolchain.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = token.filter(|t| !t.is_empty()) {
            let mut bearer = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                anyhow::anyhow!("--api-token contains characters not allowed in a header")
            })?;
            bearer.set_sensitive(true);
            headers.insert(AUTHORIZATION, bearer);
        }
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("sync-engine/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        Ok(RemoteEngine { url, client })
    }

    /// The engine's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        path: &str,
    ) -> EngineResult<reqwest::Response> {
        let response = request.send().await.map_err(|e| {
            EngineError::Internal(anyhow::anyhow!(
                "cannot reach the engine at {}: {e}",
                self.url
            ))
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| {
                v.get("error").map(|e| match e {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
            })
            .unwrap_or(text);
        let message = format!(
            "the engine at {} answered {path} with {status}: {message}",
            self.url
        );
        Err(match status {
            StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                EngineError::Invalid(message)
            }
            StatusCode::NOT_FOUND => EngineError::NotFound(message),
            StatusCode::TOO_MANY_REQUESTS => EngineError::Busy(message),
            StatusCode::BAD_GATEWAY => EngineError::Connector(message),
            _ => EngineError::Internal(anyhow::anyhow!(message)),
        })
    }

    /// POSTs a body and streams the NDJSON answer.
    async fn stream(&self, path: &str, body: Value) -> EngineResult<Messages> {
        let request = self.client.post(format!("{}{path}", self.url)).json(&body);
        let response = self.send(request, path).await?;
        let (tx, rx) = Outbox::channel();
        let (cancel_tx, cancel_rx) = oneshot::channel();
        tokio::spawn(read_lines(response, tx, cancel_rx, self.url.clone()));
        Ok(Messages::new(rx, Some(cancel_tx)))
    }
}

/// Reads the answer's lines into messages until it ends or the stream is dropped.
async fn read_lines(
    mut response: reqwest::Response,
    tx: Outbox,
    mut cancel: oneshot::Receiver<()>,
    url: String,
) {
    let mut decoder = LineDecoder::new(MAX_LINE_BYTES);
    let mut pending: Vec<u8> = Vec::new();
    let mut ended = false;
    while !ended {
        let chunk = tokio::select! {
            _ = &mut cancel => return,
            chunk = response.chunk() => chunk,
        };
        match chunk {
            Ok(Some(bytes)) => pending.extend_from_slice(&bytes),
            Ok(None) => ended = true,
            Err(e) => {
                tracing::warn!("the connection to the engine at {url} broke: {e}");
                ended = true;
            }
        }
        let mut at = 0;
        loop {
            let available = if ended || at < pending.len() {
                &pending[at..]
            } else {
                break;
            };
            let (consumed, outcome) = decoder.advance(available);
            at += consumed;
            match outcome {
                Some(Outcome::Line) => match Message::from_slice_stamped(decoder.line()) {
                    Ok((message, stamp)) => {
                        if !tx.forward(as_stamped(message, stamp)) {
                            return;
                        }
                    }
                    Err(e) if e.is_unknown_type() => {}
                    Err(e) => tracing::warn!("the engine at {url} sent an invalid line: {e}"),
                },
                Some(Outcome::Error(e)) => tracing::warn!("the engine at {url}: {e}"),
                Some(Outcome::End) => return,
                None if consumed == 0 => break,
                None => {}
            }
        }
        pending.drain(..at);
    }
}

/// A message as the engine at the other end stamped it; an engine that did not stamp it is
/// taken for its emitter, now.
fn as_stamped(message: Message, stamp: Stamp) -> Emitted {
    let by = stamp
        .emitted_by
        .as_deref()
        .map_or_else(Emitter::engine, Emitter::named);
    let mut emitted = Emitted::new(&by, message);
    if let Some(at) = stamp
        .ts
        .as_deref()
        .and_then(|ts| chrono::DateTime::parse_from_rfc3339(ts).ok())
    {
        emitted.at = at.with_timezone(&chrono::Utc);
    }
    emitted
}

fn only_json(only: Option<Role>) -> Value {
    match only {
        Some(role) => json!(role.as_str()),
        None => Value::Null,
    }
}

fn meta_path(role: Role, name: &str) -> String {
    let kind = match role {
        Role::Source => "sources",
        Role::Destination => "destinations",
    };
    format!("/meta/{kind}/{name}")
}

impl Engine for RemoteEngine {
    async fn spec(&self, role: Role, name: &str) -> EngineResult<Spec> {
        let path = meta_path(role, name);
        let request = self.client.get(format!("{}{path}", self.url));
        let response = self.send(request, &path).await?;
        let body: Value = response.json().await.map_err(|e| {
            EngineError::Internal(anyhow::anyhow!(
                "the engine at {} answered {path} with invalid JSON: {e}",
                self.url
            ))
        })?;
        let mut spec = Spec::new(body.get("config_schema").cloned().unwrap_or(Value::Null));
        spec.source_input = body.get("source_input_schema").cloned();
        Ok(spec)
    }

    async fn check(&self, p: &PipelineRequest, only: Option<Role>) -> EngineResult<Messages> {
        self.stream(
            "/pipeline_check",
            json!({"pipeline": pipeline_json(p), "only": only_json(only)}),
        )
        .await
    }

    async fn discover(&self, p: &PipelineRequest) -> EngineResult<Messages> {
        let mut body = json!({"source": pipeline_json(p)["source"]});
        if let Some(streams) = pipeline_json(p).get("streams") {
            body["streams"] = streams.clone();
        }
        self.stream("/source_discover", body).await
    }

    async fn setup(&self, p: &PipelineRequest, only: Option<Role>) -> EngineResult<Messages> {
        self.stream(
            "/pipeline_setup",
            json!({"pipeline": pipeline_json(p), "only": only_json(only)}),
        )
        .await
    }

    async fn teardown(&self, p: &PipelineRequest, only: Option<Role>) -> EngineResult<Messages> {
        self.stream(
            "/pipeline_teardown",
            json!({"pipeline": pipeline_json(p), "only": only_json(only)}),
        )
        .await
    }

    async fn sync(&self, p: &PipelineRequest, request: SyncRequest) -> EngineResult<Messages> {
        self.stream("/pipeline_sync", sync_json(p, &request)).await
    }
}

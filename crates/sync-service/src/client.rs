//! `sync-service pipelines …`: a client of `serve`. Prints the server's JSON answer on stdout;
//! an error answer goes to stderr with a non-zero exit.

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use serde_json::Value;

/// Where the server is.
#[derive(Args)]
pub struct ClientArgs {
    /// The sync-service API.
    #[arg(long, env = "SERVICE_URL", default_value = "http://127.0.0.1:4020")]
    service_url: String,
    /// Its bearer token.
    #[arg(long, env = "SYNC_SERVICE_API_TOKEN", hide_env_values = true)]
    api_token: Option<String>,
    #[command(subcommand)]
    command: PipelinesCommand,
}

#[derive(Subcommand)]
enum PipelinesCommand {
    /// Every pipeline.
    List,
    /// Create one from a JSON body (inline or a file): {"id"?, "source", "destination",
    /// "streams"?}, and/or from flags (which win over the body's fields).
    Create {
        #[arg(value_name = "JSON|FILE")]
        body: Option<String>,
        /// Do not run check first.
        #[arg(long)]
        skip_check: bool,
        #[command(flatten)]
        fields: CreateFields,
    },
    /// One pipeline.
    Get { id: String },
    /// Change one: a JSON body such as {"status": "paused"}.
    Update {
        id: String,
        #[arg(value_name = "JSON|FILE")]
        body: String,
    },
    /// Delete one (teardown, then forgotten).
    Delete { id: String },
    /// Run a step now.
    Sync { id: String },
    /// Run a step now and print its eof once it ended (the run as `run`).
    SyncBatch {
        id: String,
        /// Give up waiting after this many seconds (the step goes on).
        #[arg(long, default_value_t = 300)]
        timeout_secs: u64,
    },
    /// Read everything again (a full reconcile).
    Reconcile { id: String },
    /// Check the stored configs.
    Check {
        id: String,
        #[arg(long, value_parser = ["source", "destination"])]
        only: Option<String>,
    },
    /// Set the connectors up (a webhook endpoint's secret is stored).
    Setup {
        id: String,
        #[arg(long, value_parser = ["source", "destination"])]
        only: Option<String>,
    },
    /// Tear a paused pipeline's connectors down; its checkpoint is reset.
    Teardown {
        id: String,
        #[arg(long, value_parser = ["source", "destination"])]
        only: Option<String>,
    },
    /// Its last runs.
    Runs { id: String },
}

/// A pipeline's fields as flags.
#[derive(Args)]
struct CreateFields {
    /// The pipeline id (default: generated).
    #[arg(long)]
    id: Option<String>,
    /// source.config.api_key.
    #[arg(long)]
    stripe_api_key: Option<String>,
    /// destination.config.url.
    #[arg(long)]
    postgres_url: Option<String>,
    /// destination.config.schema.
    #[arg(long)]
    schema: Option<String>,
    /// The streams, comma-separated (default: every stream).
    #[arg(long, value_delimiter = ',')]
    streams: Option<Vec<String>>,
}

impl CreateFields {
    /// The body: `base` (or `{}`) with the flags' fields set.
    fn body(self, base: Option<Value>) -> Result<Value> {
        let mut body = base.unwrap_or_else(|| serde_json::json!({}));
        if !body.is_object() {
            bail!("the body must be a JSON object");
        }
        let mut set = |path: &[&str], value: Value| {
            let mut at = &mut body;
            for key in &path[..path.len() - 1] {
                if !at[*key].is_object() {
                    at[*key] = serde_json::json!({});
                }
                at = &mut at[*key];
            }
            at[path[path.len() - 1]] = value;
        };
        if let Some(id) = self.id {
            set(&["id"], Value::String(id));
        }
        if let Some(key) = self.stripe_api_key {
            set(&["source", "config", "api_key"], Value::String(key));
        }
        if let Some(url) = self.postgres_url {
            set(&["destination", "config", "url"], Value::String(url));
        }
        if let Some(schema) = self.schema {
            set(&["destination", "config", "schema"], Value::String(schema));
        }
        if let Some(streams) = self.streams {
            set(&["streams"], serde_json::json!(streams));
        }
        Ok(body)
    }
}

fn only_query(only: Option<String>) -> String {
    only.map(|side| format!("?only={side}")).unwrap_or_default()
}

fn body_of(text: &str) -> Result<Value> {
    let text = if text.trim_start().starts_with('{') {
        text.to_owned()
    } else {
        std::fs::read_to_string(text).with_context(|| format!("reading {text}"))?
    };
    serde_json::from_str(&text).context("the body is not JSON")
}

/// The method, path and body of a command.
fn route(command: PipelinesCommand) -> Result<(&'static str, String, Option<Value>)> {
    Ok(match command {
        PipelinesCommand::List => ("GET", "/pipelines".to_owned(), None),
        PipelinesCommand::Create {
            body,
            skip_check,
            fields,
        } => {
            let query = if skip_check { "?skip_check=true" } else { "" };
            let base = body.as_deref().map(body_of).transpose()?;
            (
                "POST",
                format!("/pipelines{query}"),
                Some(fields.body(base)?),
            )
        }
        PipelinesCommand::Get { id } => ("GET", format!("/pipelines/{id}"), None),
        PipelinesCommand::Update { id, body } => {
            ("PATCH", format!("/pipelines/{id}"), Some(body_of(&body)?))
        }
        PipelinesCommand::Delete { id } => ("DELETE", format!("/pipelines/{id}"), None),
        PipelinesCommand::Sync { id } => ("POST", format!("/pipelines/{id}/sync"), None),
        PipelinesCommand::SyncBatch { id, timeout_secs } => (
            "POST",
            format!("/pipelines/{id}/sync_batch?timeout_secs={timeout_secs}"),
            None,
        ),
        PipelinesCommand::Reconcile { id } => ("POST", format!("/pipelines/{id}/reconcile"), None),
        PipelinesCommand::Check { id, only } => (
            "POST",
            format!("/pipelines/{id}/check{}", only_query(only)),
            None,
        ),
        PipelinesCommand::Setup { id, only } => (
            "POST",
            format!("/pipelines/{id}/setup{}", only_query(only)),
            None,
        ),
        PipelinesCommand::Teardown { id, only } => (
            "POST",
            format!("/pipelines/{id}/teardown{}", only_query(only)),
            None,
        ),
        PipelinesCommand::Runs { id } => ("GET", format!("/pipelines/{id}/runs"), None),
    })
}

/// Runs one client command.
pub async fn run(args: ClientArgs) -> Result<()> {
    let base = args.service_url.trim_end_matches('/');
    let waits_for_a_step = matches!(args.command, PipelinesCommand::SyncBatch { .. });
    let (method, path, body) = route(args.command)?;
    // reqwest is built without a TLS crypto provider of its own; this process picks ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let method: reqwest::Method = method.parse().context("method")?;
    // This API's own JSON answers (check, setup, teardown and sync answer NDJSON otherwise).
    let mut request = client
        .request(method, format!("{base}{path}"))
        .header(reqwest::header::ACCEPT, "application/json");
    if let Some(token) = &args.api_token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = &body {
        request = request.json(body);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("cannot reach {base}"))?;
    let status = response.status();
    let text = response.text().await.context("reading the answer")?;
    if !status.is_success() {
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| sync_engine_api::wire::error_message(&v).map(str::to_owned))
            .unwrap_or(text);
        bail!("{status}: {message}");
    }
    println!("{text}");
    if waits_for_a_step {
        let eof: Value = serde_json::from_str(&text).unwrap_or_default();
        if eof["status"] == "failed" {
            bail!(
                "the step failed: {}",
                eof["error"]["message"]
                    .as_str()
                    .or(eof["run"]["error"].as_str())
                    .unwrap_or("see the runs")
            );
        }
    }
    Ok(())
}

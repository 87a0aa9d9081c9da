//! A tiny connector for tests: a source that emits `records` records per stream with a state
//! after every `state_every`, and a destination that acknowledges states after "committing" the
//! records before them. Knobs make it misbehave on purpose: `fail_after` exits with an error
//! after that many records, `hang_after` stops producing output and never exits, `garbage_after`
//! prints a line that is not JSON, `sleep_ms` paces records. `issue_token` makes the source ask
//! the orchestrator (a `control` message) to store `issued_token` in its config; records carry
//! `issued_token` when the config has one. `check_hangs` makes `check` start a long `sleep` and
//! never answer, as a connector stuck on a network call with a helper process would.

use std::process::ExitCode;
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use sync_connector::{About, Capability, Connector, ConnectorError, InputLines, Output, run};
use sync_protocol::peek::{Peeked, peek};
use sync_protocol::{
    Catalog, ConfiguredCatalog, ConnectionStatus, Message, SourceState, SourceStateSet, Spec,
    Stream, StreamStatusKind,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "default_streams")]
    streams: Vec<String>,
    #[serde(default = "default_records")]
    records: u64,
    #[serde(default = "default_state_every")]
    state_every: u64,
    #[serde(default)]
    fail_after: Option<u64>,
    #[serde(default)]
    hang_after: Option<u64>,
    #[serde(default)]
    garbage_after: Option<u64>,
    #[serde(default)]
    sleep_ms: u64,
    #[serde(default)]
    check_fails: bool,
    #[serde(default)]
    check_hangs: bool,
    #[allow(dead_code)]
    #[serde(default)]
    secret_token: Option<String>,
    #[serde(default)]
    issue_token: Option<String>,
    #[serde(default)]
    issued_token: Option<String>,
}

fn default_streams() -> Vec<String> {
    vec!["items".to_owned()]
}
fn default_records() -> u64 {
    10
}
fn default_state_every() -> u64 {
    5
}

struct Example;

impl Connector for Example {
    type Config = Config;

    fn about(&self) -> About {
        About {
            name: "example-connector",
            version: build_info::VERSION,
            about: "A configurable test connector",
        }
    }

    fn capabilities(&self) -> &'static [Capability] {
        &[
            Capability::Spec,
            Capability::Check,
            Capability::Discover,
            Capability::Read,
            Capability::Write,
        ]
    }

    fn spec(&self) -> Spec {
        Spec::new(json!({
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "streams": {"type": "array", "items": {"type": "string"}},
                "records": {"type": "integer", "minimum": 0},
                "state_every": {"type": "integer", "minimum": 1},
                "fail_after": {"type": "integer", "minimum": 0},
                "hang_after": {"type": "integer", "minimum": 0},
                "garbage_after": {"type": "integer", "minimum": 0},
                "sleep_ms": {"type": "integer", "minimum": 0},
                "check_fails": {"type": "boolean"},
                "check_hangs": {"type": "boolean"},
                "secret_token": {"type": "string", "secret": true},
                "issue_token": {"type": "string"},
                "issued_token": {"type": "string", "secret": true}
            }
        }))
    }

    async fn check(&self, config: Config) -> Result<ConnectionStatus, ConnectorError> {
        tracing::info!(token = ?config.secret_token, "checking");
        if config.check_hangs {
            let helper = std::process::Command::new("sleep").arg("600").spawn();
            tracing::warn!(helper = ?helper.map(|c| c.id()), "hanging on purpose");
            std::future::pending::<()>().await;
        }
        if config.check_fails {
            return Ok(ConnectionStatus::failed(
                format!(
                    "check failed for token {}",
                    config.secret_token.unwrap_or_default()
                ),
                None,
            ));
        }
        Ok(ConnectionStatus::succeeded())
    }

    async fn discover(&self, config: Config) -> Result<Catalog, ConnectorError> {
        let streams = config
            .streams
            .iter()
            .map(|name| {
                let mut s = Stream::new(name);
                s.primary_key = vec![vec!["id".into()]];
                s.newer_than_field = Some("updated".into());
                s.json_schema = Some(json!({"type":"object","properties":{"id":{"type":"string"},"n":{"type":"integer"},"updated":{"type":"integer"}}}));
                s
            })
            .collect();
        Ok(Catalog {
            streams,
            ..Default::default()
        })
    }

    async fn read(
        &self,
        config: Config,
        catalog: ConfiguredCatalog,
        state: SourceStateSet,
        output: Output,
    ) -> Result<(), ConnectorError> {
        let mut emitted = 0u64;
        if let (Some(token), None) = (&config.issue_token, &config.issued_token) {
            let mut updated = json!({"issued_token": token});
            for (k, v) in [
                ("records", json!(config.records)),
                ("state_every", json!(config.state_every)),
            ] {
                updated[k] = v;
            }
            output
                .emit(Message::Control(sync_protocol::Control::SourceConfig(
                    updated,
                )))
                .await?;
        }
        for configured in &catalog.streams {
            let stream = &configured.stream.name;
            let start = state
                .streams
                .get(stream)
                .and_then(|s| s.get("next"))
                .and_then(|n| n.as_u64())
                .unwrap_or(0);
            output
                .stream_status(stream, StreamStatusKind::Start { time_range: None })
                .await?;
            for n in start..config.records {
                if config.fail_after == Some(emitted) {
                    return Err(ConnectorError::system(format!(
                        "failing on purpose after {emitted} records"
                    )));
                }
                if config.hang_after == Some(emitted) {
                    tracing::warn!("hanging on purpose");
                    std::future::pending::<()>().await;
                }
                if config.garbage_after == Some(emitted) {
                    // Bypasses the protocol writer on purpose.
                    println!("this is not JSON");
                }
                if config.sleep_ms > 0 {
                    tokio::time::sleep(Duration::from_millis(config.sleep_ms)).await;
                }
                let mut data =
                    json!({"id": format!("{stream}_{n}"), "n": n, "updated": 1_700_000_000 + n});
                if let Some(token) = &config.issued_token {
                    data["issued_token"] = json!(token);
                }
                output.record(stream, data).await?;
                emitted += 1;
                if (n + 1) % config.state_every == 0 || n + 1 == config.records {
                    output
                        .state(SourceState::stream(stream, json!({"next": n + 1})))
                        .await?;
                }
            }
            output
                .stream_status(stream, StreamStatusKind::Complete {})
                .await?;
        }
        Ok(())
    }

    async fn write(
        &self,
        _config: Config,
        _catalog: ConfiguredCatalog,
        mut input: InputLines,
        output: Output,
    ) -> Result<(), ConnectorError> {
        // Records "committed" since each stream's previous state, and since the previous global state.
        let mut pending: std::collections::HashMap<String, u64> = Default::default();
        let mut since_global = 0u64;
        while let Some(line) = input.next().await {
            let line = line.map_err(|e| ConnectorError::system(e.to_string()))?;
            match peek(&line.bytes)
                .map_err(|e| ConnectorError::system(format!("line {}: {e}", line.number)))?
            {
                Peeked::Record(r) => {
                    *pending.entry(r.stream.into_owned()).or_default() += 1;
                    since_global += 1;
                }
                Peeked::Other(_) => {
                    let message = Message::from_slice(&line.bytes).map_err(|e| {
                        ConnectorError::system(format!("line {}: {e}", line.number))
                    })?;
                    if let Message::SourceState(state) = message {
                        let committed = match state.stream_name() {
                            Some(s) => pending.remove(s).unwrap_or(0),
                            None => std::mem::take(&mut since_global),
                        };
                        output
                            .emit(Message::SourceState(state.with_committed(committed)))
                            .await?;
                    }
                }
            }
        }
        Ok(())
    }
}

fn main() -> ExitCode {
    run(Example)
}

//! The engine a caller drives: in this process, or a `sync-engine serve` at a URL. One type for
//! the CLI and sync-service, so both choose, dispatch and read failures the same way.

use std::time::Duration;

use anyhow::{Result, bail};
use sync_engine_api::{Engine, EngineResult, Messages, PipelineRequest, SyncRequest};
use sync_engine_runtime::args::{DEFAULT_CONNECTOR_TIMEOUT_SECS, PipelineArgs};
use sync_engine_runtime::local::LocalEngine;
use sync_engine_runtime::resolve::Resolver;
use sync_engine_runtime::usage;
use sync_protocol::{FailureType, Message, Role, Spec, Status as CheckStatus};

use crate::remote::RemoteEngine;

/// One of the two engines.
pub enum AnyEngine {
    /// Connectors run as children of this process.
    Local(LocalEngine),
    /// A `sync-engine serve` runs them.
    Remote(RemoteEngine),
}

impl AnyEngine {
    /// The engine the flags ask for (`--engine-url`, else this process). Connector lookup flags
    /// and the connector timeout belong to whoever runs the connectors, so they are refused
    /// with `--engine-url`.
    pub fn choose(args: &PipelineArgs, handle_signals: bool) -> Result<AnyEngine> {
        if let Some(url) = &args.remote.engine_url {
            args.resolver
                .refused_with_engine_url(url)
                .map_err(|e| usage(anyhow::anyhow!(e)))?;
            if args.connector_timeout.is_some() {
                bail!(usage(anyhow::anyhow!(
                    "--engine-url: the engine at {url} runs the connectors, so their timeout is its serve's --connector-timeout"
                )));
            }
            return Ok(AnyEngine::Remote(
                RemoteEngine::new(url, args.remote.api_token.clone()).map_err(usage)?,
            ));
        }
        let resolver = Resolver::new(&args.resolver).map_err(usage)?;
        let timeout = Duration::from_secs_f64(
            args.connector_timeout
                .unwrap_or(DEFAULT_CONNECTOR_TIMEOUT_SECS),
        );
        let engine = LocalEngine::new(resolver, timeout);
        Ok(AnyEngine::Local(if handle_signals {
            engine.handling_signals()
        } else {
            engine
        }))
    }

    /// Whether the engine runs elsewhere.
    pub fn is_remote(&self) -> bool {
        matches!(self, AnyEngine::Remote(_))
    }

    /// For log lines: `this process` or the engine's URL.
    pub fn describe(&self) -> String {
        match self {
            AnyEngine::Local(_) => "this process".to_owned(),
            AnyEngine::Remote(r) => format!("the engine at {}", r.url()),
        }
    }

    /// `teardown` of one side or both: the failures, each naming its connector.
    pub async fn teardown_failures(
        &self,
        p: &PipelineRequest,
        only: Option<Role>,
    ) -> EngineResult<Vec<(Option<FailureType>, String)>> {
        Ok(failures_of(self.teardown(p, only).await?).await)
    }

    /// `check` of one side or both: the failures, each naming its connector, with who must act.
    pub async fn check_failures(
        &self,
        p: &PipelineRequest,
        only: Option<Role>,
    ) -> EngineResult<Vec<(Option<FailureType>, String)>> {
        Ok(failures_of(self.check(p, only).await?).await)
    }

    /// The part of a connector's config update (its complete config, from source-stripe's
    /// setup) a pipeline stores: what differs from the config the run was given, without what
    /// setup finds again (`sync_engine_runtime::config_update_to_keep`). So the stored config, and the
    /// checkpoint's owner derived from it, change by what the connector made (a webhook
    /// endpoint's secret), never by the account it looked up. `None`: nothing to store.
    pub async fn kept_update(
        &self,
        request: &PipelineRequest,
        update: sync_protocol::Control,
    ) -> EngineResult<Option<sync_protocol::Control>> {
        use sync_protocol::Control::{DestinationConfig, SourceConfig};
        let (role, side, wrap): (_, _, fn(serde_json::Value) -> sync_protocol::Control) =
            match update {
                SourceConfig(serde_json::Value::Object(u)) => {
                    (Role::Source, (&request.source, u), SourceConfig)
                }
                DestinationConfig(serde_json::Value::Object(u)) => (
                    Role::Destination,
                    (&request.destination, u),
                    DestinationConfig,
                ),
                _ => return Ok(None),
            };
        let (connector, update) = side;
        let spec = self.spec(role, &connector.name).await?;
        let kept = sync_engine_runtime::config_update_to_keep(&connector.config, &spec, update);
        Ok((!kept.is_empty()).then(|| wrap(serde_json::Value::Object(kept))))
    }
}

impl Engine for AnyEngine {
    async fn spec(&self, role: Role, name: &str) -> EngineResult<Spec> {
        match self {
            AnyEngine::Local(e) => e.spec(role, name).await,
            AnyEngine::Remote(e) => e.spec(role, name).await,
        }
    }

    async fn check(&self, p: &PipelineRequest, only: Option<Role>) -> EngineResult<Messages> {
        match self {
            AnyEngine::Local(e) => e.check(p, only).await,
            AnyEngine::Remote(e) => e.check(p, only).await,
        }
    }

    async fn discover(&self, p: &PipelineRequest) -> EngineResult<Messages> {
        match self {
            AnyEngine::Local(e) => e.discover(p).await,
            AnyEngine::Remote(e) => e.discover(p).await,
        }
    }

    async fn setup(&self, p: &PipelineRequest, only: Option<Role>) -> EngineResult<Messages> {
        match self {
            AnyEngine::Local(e) => e.setup(p, only).await,
            AnyEngine::Remote(e) => e.setup(p, only).await,
        }
    }

    async fn teardown(&self, p: &PipelineRequest, only: Option<Role>) -> EngineResult<Messages> {
        match self {
            AnyEngine::Local(e) => e.teardown(p, only).await,
            AnyEngine::Remote(e) => e.teardown(p, only).await,
        }
    }

    async fn sync(&self, p: &PipelineRequest, request: SyncRequest) -> EngineResult<Messages> {
        match self {
            AnyEngine::Local(e) => e.sync(p, request).await,
            AnyEngine::Remote(e) => e.sync(p, request).await,
        }
    }
}

/// Every message of a run, in order.
pub async fn all_of(mut messages: Messages) -> Vec<Message> {
    let mut all = Vec::new();
    while let Some(message) = messages.next().await {
        all.push(message);
    }
    all
}

/// The failed `connection_status` messages of a run, each naming its connector.
pub async fn failures_of(messages: Messages) -> Vec<(Option<FailureType>, String)> {
    failures_in(&all_of(messages).await)
}

/// The failed `connection_status` messages among these, each naming its connector.
pub fn failures_in(messages: &[Message]) -> Vec<(Option<FailureType>, String)> {
    let mut failures = Vec::new();
    for message in messages {
        if let Message::ConnectionStatus(status) = message
            && status.status == CheckStatus::Failed
        {
            let who = status
                .extra
                .get(sync_engine_api::EMITTED_BY)
                .and_then(|v| v.as_str())
                .unwrap_or("a connector")
                .to_owned();
            let why = status.message.clone().unwrap_or_default();
            failures.push((status.failure_type, format!("{who}: {why}")));
        }
    }
    failures
}

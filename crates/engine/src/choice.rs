//! The engine a CLI command drives: this process, or a `serve` at `--engine-url`.

use std::time::Duration;

use anyhow::{Result, bail};
use sync_protocol::{Role, Spec};

use crate::cli::{DEFAULT_CONNECTOR_TIMEOUT_SECS, PipelineArgs};
use crate::engine::{Engine, EngineResult, Messages, PipelineRequest, SyncRequest};
use crate::local::LocalEngine;
use crate::remote::RemoteEngine;
use crate::resolve::Resolver;
use crate::usage;

/// One of the two engines, chosen by `--engine-url`.
pub(crate) enum AnyEngine {
    /// Connectors run as children of this process.
    Local(LocalEngine),
    /// A `sync-engine serve` runs them.
    Remote(RemoteEngine),
}

impl AnyEngine {
    /// The engine the flags ask for. Connector lookup flags and the connector timeout belong
    /// to whoever runs the connectors, so they are refused with `--engine-url`.
    pub(crate) fn choose(args: &PipelineArgs, handle_signals: bool) -> Result<AnyEngine> {
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
    pub(crate) fn is_remote(&self) -> bool {
        matches!(self, AnyEngine::Remote(_))
    }

    /// For log lines: `this process` or the engine's URL.
    pub(crate) fn describe(&self) -> String {
        match self {
            AnyEngine::Local(_) => "this process".to_owned(),
            AnyEngine::Remote(r) => format!("the engine at {}", r.url()),
        }
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

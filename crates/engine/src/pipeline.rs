//! A pipeline made ready to run: its connectors resolved and opened (their `spec` read), the
//! configs validated against it, and the catalog discovered and narrowed to the chosen streams.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use serde_json::Value;
use sync_protocol::{
    Catalog, ConfiguredCatalog, ConfiguredStream, Message, Role, Status, SyncMode,
};

use crate::connector::{Connector, Dialect};
use crate::engine::{ConnectorConfig, EngineError, EngineResult, PipelineRequest};
use crate::resolve::Resolver;
use crate::settings::StreamChoice;

/// The destination config property that names the sync using its tables.
const SYNC_ID: &str = "sync_id";

/// The pipeline's connectors, opened (spec run) and their configs validated.
pub struct Opened {
    pub source: Connector,
    pub destination: Connector,
    pub source_config: Value,
    pub destination_config: Value,
    pub streams: Option<Vec<StreamChoice>>,
}

/// Resolves a connector, reads its spec and validates its config: an unknown name or a
/// config its spec refuses is [`EngineError::Invalid`], naming the field.
pub async fn open_connector(
    resolver: &Resolver,
    role: Role,
    side: &ConnectorConfig,
    timeout: Duration,
    sync_id: Option<&str>,
) -> EngineResult<(Connector, Value)> {
    let candidates = resolver
        .resolve(role, &side.name)
        .map_err(|e| EngineError::Invalid(format!("{e:#}")))?;
    let mut connector = Connector::open(role, candidates)
        .await
        .map_err(|e| EngineError::Connector(format!("{e:#}")))?;
    connector.timeout = timeout;
    let mut config = side.config.clone();
    if role == Role::Destination
        && let Some(sync_id) = sync_id
        && connector.spec.config["properties"].get(SYNC_ID).is_some()
    {
        // The config's own value, when it has one, wins.
        config
            .entry(SYNC_ID)
            .or_insert_with(|| Value::String(sync_id.to_owned()));
    }
    let config = Value::Object(config);
    connector
        .validate_config(&config)
        .map_err(|e| EngineError::Invalid(format!("{e:#}")))?;
    Ok((connector, config))
}

/// Opens both connectors of a pipeline at once.
pub async fn open(
    resolver: &Resolver,
    pipeline: &PipelineRequest,
    timeout: Duration,
) -> EngineResult<Opened> {
    let ((source, source_config), (destination, destination_config)) = tokio::try_join!(
        open_connector(resolver, Role::Source, &pipeline.source, timeout, None),
        open_connector(
            resolver,
            Role::Destination,
            &pipeline.destination,
            timeout,
            pipeline.sync_id.as_deref(),
        ),
    )?;
    Ok(Opened {
        source,
        destination,
        source_config,
        destination_config,
        streams: pipeline.streams.clone(),
    })
}

/// The source's catalog.
pub async fn discover(source: &Connector, config: &Value) -> Result<Catalog> {
    let config = source.file("source-config.json", config)?;
    let messages = source.run("discover", &[("config", &config)]).await?;
    let mut failure = None;
    for m in messages {
        match m {
            Message::Catalog(c) => return Ok(c),
            Message::ConnectionStatus(s) if s.status == Status::Failed => failure = s.message,
            _ => {}
        }
    }
    Err(anyhow!(
        "{} discover printed no catalog{}",
        source.name(),
        failure.map(|f| format!(": {f}")).unwrap_or_default()
    ))
}

/// The configured catalog of the selected streams; an unknown name is an error listing the others.
pub fn select(
    catalog: Catalog,
    choices: &Option<Vec<StreamChoice>>,
    source_dialect: Dialect,
) -> Result<ConfiguredCatalog> {
    let configure = |stream: sync_protocol::Stream, choice: Option<&StreamChoice>| {
        let mut configured = ConfiguredStream::new(stream);
        // Airbyte sources only checkpoint when asked for incremental streams.
        if source_dialect == Dialect::Airbyte && configured.stream.newer_than_field.is_some() {
            configured.sync_mode = SyncMode::Incremental;
        }
        if let Some(choice) = choice {
            configured.backfill_limit = choice.backfill_limit;
            configured.fields = choice.fields.clone();
        }
        configured
    };
    let Some(choices) = choices else {
        return Ok(ConfiguredCatalog {
            streams: catalog
                .streams
                .into_iter()
                .map(|s| configure(s, None))
                .collect(),
            extra: Default::default(),
        });
    };
    let mut by_name: BTreeMap<String, sync_protocol::Stream> = catalog
        .streams
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect();
    let unknown: Vec<&str> = choices
        .iter()
        .filter(|c| !by_name.contains_key(&c.name))
        .map(|c| c.name.as_str())
        .collect();
    if !unknown.is_empty() {
        let known: Vec<&str> = by_name.keys().map(String::as_str).collect();
        bail!(
            "unknown stream(s) {}; the source offers: {}",
            unknown.join(", "),
            known.join(", ")
        );
    }
    let streams = choices
        .iter()
        .filter_map(|choice| {
            by_name
                .remove(&choice.name)
                .map(|stream| configure(stream, Some(choice)))
        })
        .collect();
    Ok(ConfiguredCatalog {
        streams,
        extra: Default::default(),
    })
}

/// The source's catalog, configured for the selected streams: a failed discover is
/// [`EngineError::Connector`], an unknown stream [`EngineError::Invalid`].
pub async fn selected_catalog(o: &Opened) -> EngineResult<ConfiguredCatalog> {
    let catalog = discover(&o.source, &o.source_config)
        .await
        .map_err(|e| EngineError::Connector(format!("{e:#}")))?;
    select(catalog, &o.streams, o.source.dialect)
        .map_err(|e| EngineError::Invalid(format!("{e:#}")))
}

/// Runs a connector's `setup` (with the catalog) or `teardown`, returning what it printed;
/// connectors without the subcommand (every Airbyte connector) skip it.
pub async fn run_lifecycle(
    connector: &Connector,
    subcommand: &str,
    config: &Value,
    catalog: Option<&ConfiguredCatalog>,
) -> Result<Vec<Message>> {
    if connector.dialect == Dialect::Airbyte {
        return Ok(Vec::new());
    }
    let config = connector.file(&format!("{subcommand}-config.json"), config)?;
    let catalog = catalog
        .map(|c| connector.file(&format!("{subcommand}-catalog.json"), c))
        .transpose()?;
    let mut flags = vec![("config", &config)];
    if let Some(catalog) = &catalog {
        flags.push(("catalog", catalog));
    }
    Ok(connector
        .run_optional(subcommand, &flags)
        .await?
        .unwrap_or_default())
}

/// Fills a connector's config for this run with the keys a config update gives that the
/// config does not set (the caller's values win, as on later runs).
pub fn apply_update(opened: &mut Opened, control: &sync_protocol::Control) {
    let (config, update) = match control {
        sync_protocol::Control::SourceConfig(u) => (&mut opened.source_config, u),
        sync_protocol::Control::DestinationConfig(u) => (&mut opened.destination_config, u),
        sync_protocol::Control::DestinationTables(_) => return,
    };
    if let (Value::Object(config), Value::Object(update)) = (config, update) {
        for (key, value) in update {
            config.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
}

/// Runs the destination's `setup` for the catalog.
pub async fn setup_destination(o: &Opened, catalog: &ConfiguredCatalog) -> Result<Vec<Message>> {
    run_lifecycle(
        &o.destination,
        "setup",
        &o.destination_config,
        Some(catalog),
    )
    .await
}

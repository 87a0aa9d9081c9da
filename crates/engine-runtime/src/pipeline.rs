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
use crate::resolve::Resolver;
use sync_engine_api::StreamChoice;
use sync_engine_api::{ConnectorConfig, EngineError, EngineResult, PipelineRequest};

/// The destination config property that names the sync using its tables.
const SYNC_ID: &str = "sync_id";

/// The pipeline's connectors, opened (spec run) and their configs validated.
pub(crate) struct Opened {
    pub source: Connector,
    pub destination: Connector,
    pub source_config: Value,
    pub destination_config: Value,
    pub streams: Option<Vec<StreamChoice>>,
}

/// Resolves a connector, reads its spec and validates its config: an unknown name or a
/// config its spec refuses is [`EngineError::Invalid`], naming the field.
pub(crate) async fn open_connector(
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
pub(crate) async fn open(
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
pub(crate) async fn discover(source: &Connector, config: &Value) -> Result<Catalog> {
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

/// The name of the objects a stream holds, as its catalog entry gives it
/// (`metadata.resource_name`, e.g. `customer` for `customers`).
fn object_name(stream: &sync_protocol::Stream) -> Option<&str> {
    stream.metadata.as_ref()?.get("resource_name")?.as_str()
}

/// The stream a chosen name names: the stream of that name, else the stream whose objects are
/// named so (`customer`, `checkout.session`, also written `checkout_session`), as the reference
/// system's users write stream names. `Ok(None)`: no such stream; `Err`: several.
pub(crate) fn resolve_name<'a>(
    streams: impl IntoIterator<Item = &'a sync_protocol::Stream>,
    name: &str,
) -> Result<Option<&'a str>> {
    let mut by_object = Vec::new();
    for stream in streams {
        if stream.name == name {
            return Ok(Some(stream.name.as_str()));
        }
        if object_name(stream).is_some_and(|o| o == name || o.replace('.', "_") == name) {
            by_object.push(stream.name.as_str());
        }
    }
    match by_object.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        several => bail!(
            "stream {name:?} is ambiguous: it names the objects of {}; give one of those names",
            several.join(", ")
        ),
    }
}

/// The configured catalog of the selected streams; an unknown name is an error listing the others.
pub(crate) fn select(
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
            if let Some(mode) = choice.sync_mode {
                configured.sync_mode = mode;
            }
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
    let mut resolved: Vec<(String, &StreamChoice)> = Vec::new();
    let mut unknown = Vec::new();
    for choice in choices {
        match resolve_name(&catalog.streams, &choice.name)? {
            Some(name) => {
                if let Some((_, earlier)) = resolved
                    .iter()
                    .find(|(n, c)| n == name && c.name != choice.name)
                {
                    bail!(
                        "streams {:?} and {:?} both name stream {name}; give it once",
                        earlier.name,
                        choice.name
                    );
                }
                resolved.push((name.to_owned(), choice));
            }
            None => unknown.push(choice.name.as_str()),
        }
    }
    let mut by_name: BTreeMap<String, sync_protocol::Stream> = catalog
        .streams
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect();
    if !unknown.is_empty() {
        let known: Vec<&str> = by_name.keys().map(String::as_str).collect();
        bail!(
            "unknown stream(s) {}; the source offers: {}",
            unknown.join(", "),
            known.join(", ")
        );
    }
    let mut streams: Vec<ConfiguredStream> = resolved
        .into_iter()
        .filter_map(|(name, choice)| {
            by_name
                .remove(&name)
                .map(|stream| configure(stream, Some(choice)))
        })
        .collect();
    // A stream that describes the read itself (a Stripe platform's `_accounts`) comes with any
    // choice of the others.
    streams.extend(
        by_name
            .into_values()
            .filter(always_selected)
            .map(|stream| configure(stream, None)),
    );
    Ok(ConfiguredCatalog {
        streams,
        extra: Default::default(),
    })
}

/// Whether the source says a stream is read whatever streams are chosen
/// (`metadata.always_selected`).
fn always_selected(stream: &sync_protocol::Stream) -> bool {
    stream
        .metadata
        .as_ref()
        .and_then(|m| m.get("always_selected"))
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false)
}

/// The selected streams to read from scratch (`sync_mode: full_refresh`), by their names in
/// the catalog.
pub(crate) fn full_refresh_streams(
    catalog: &ConfiguredCatalog,
    choices: &Option<Vec<StreamChoice>>,
) -> Vec<String> {
    let streams: Vec<&sync_protocol::Stream> = catalog.streams.iter().map(|c| &c.stream).collect();
    choices
        .iter()
        .flatten()
        .filter(|c| c.sync_mode == Some(SyncMode::FullRefresh))
        .filter_map(|c| {
            resolve_name(streams.iter().copied(), &c.name)
                .ok()
                .flatten()
                .map(str::to_owned)
        })
        .collect()
}

/// The source's catalog: `prepared` when the caller gives one (an earlier discover's), else
/// what the source's `discover` answers now (its failure is [`EngineError::Connector`]).
pub(crate) async fn source_catalog(
    source: &Connector,
    config: &Value,
    prepared: Option<&Catalog>,
) -> EngineResult<Catalog> {
    match prepared {
        Some(catalog) => Ok(catalog.clone()),
        None => discover(source, config)
            .await
            .map_err(|e| EngineError::Connector(format!("{e:#}"))),
    }
}

/// The source's catalog ([`source_catalog`]), configured for the selected streams: an unknown
/// stream is [`EngineError::Invalid`].
pub(crate) async fn selected_catalog(
    o: &Opened,
    prepared: Option<&Catalog>,
) -> EngineResult<ConfiguredCatalog> {
    let catalog = source_catalog(&o.source, &o.source_config, prepared).await?;
    select(catalog, &o.streams, o.source.dialect)
        .map_err(|e| EngineError::Invalid(format!("{e:#}")))
}

/// Runs a connector's `setup` (with the catalog) or `teardown`, returning what it printed;
/// connectors without the subcommand (every Airbyte connector) skip it.
pub(crate) async fn run_lifecycle(
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

/// Applies a connector's config update to this run: a `control` message carries the
/// connector's complete config, derived from the one it was given (or, from older connectors,
/// only the keys that change), so its keys replace the config's; a new webhook endpoint's
/// secret thus replaces a stale one at once. Keys the spec marks `x-resolved` (the account
/// source-stripe's setup looked up) are left out: every connector process finds them again,
/// and given, they would only cost it a request to check them.
pub(crate) fn apply_update(opened: &mut Opened, control: &sync_protocol::Control) {
    let (config, update, spec) = match control {
        sync_protocol::Control::SourceConfig(u) => {
            (&mut opened.source_config, u, &opened.source.spec)
        }
        sync_protocol::Control::DestinationConfig(u) => {
            (&mut opened.destination_config, u, &opened.destination.spec)
        }
        sync_protocol::Control::DestinationTables(_) => return,
    };
    let resolved = crate::checkpoint::resolved_keys(spec);
    if let (Value::Object(config), Value::Object(update)) = (config, update) {
        for (key, value) in update {
            if !resolved.contains(key) {
                config.insert(key.clone(), value.clone());
            }
        }
    }
}

/// Runs the destination's `setup` for the catalog.
pub(crate) async fn setup_destination(
    o: &Opened,
    catalog: &ConfiguredCatalog,
) -> Result<Vec<Message>> {
    run_lifecycle(
        &o.destination,
        "setup",
        &o.destination_config,
        Some(catalog),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stream(name: &str, object: Option<&str>) -> sync_protocol::Stream {
        let mut s = sync_protocol::Stream::new(name);
        s.metadata = object.map(|o| json!({"resource_name": o}));
        s
    }

    fn catalog(streams: Vec<sync_protocol::Stream>) -> Catalog {
        Catalog {
            streams,
            ..Default::default()
        }
    }

    fn choose(names: &[&str]) -> Option<Vec<StreamChoice>> {
        Some(
            names
                .iter()
                .map(|n| StreamChoice {
                    name: (*n).to_owned(),
                    ..Default::default()
                })
                .collect(),
        )
    }

    fn selected(c: &ConfiguredCatalog) -> Vec<&str> {
        c.streams.iter().map(|s| s.stream.name.as_str()).collect()
    }

    #[test]
    fn a_stream_the_source_always_reads_comes_with_any_choice() {
        let mut roster = stream("_accounts", None);
        roster.metadata = Some(serde_json::json!({"always_selected": true}));
        let c = || {
            catalog(vec![
                roster.clone(),
                stream("customers", None),
                stream("plain", None),
            ])
        };
        let picked = select(c(), &choose(&["customers"]), Dialect::Native).unwrap();
        assert_eq!(selected(&picked), ["customers", "_accounts"]);
        let picked = select(c(), &None, Dialect::Native).unwrap();
        assert_eq!(selected(&picked), ["_accounts", "customers", "plain"]);
    }

    #[test]
    fn a_stream_is_chosen_by_its_name_or_its_objects_name() {
        let c = || {
            catalog(vec![
                stream("checkout_sessions", Some("checkout.session")),
                stream("customers", Some("customer")),
                stream("plain", None),
            ])
        };
        let picked = select(
            c(),
            &choose(&["customer", "checkout_session", "plain"]),
            Dialect::Native,
        )
        .unwrap();
        assert_eq!(
            selected(&picked),
            ["customers", "checkout_sessions", "plain"]
        );
        let picked = select(c(), &choose(&["checkout.session"]), Dialect::Native).unwrap();
        assert_eq!(selected(&picked), ["checkout_sessions"]);
        let e = select(c(), &choose(&["customer", "customers"]), Dialect::Native).unwrap_err();
        assert!(e.to_string().contains("both name stream customers"), "{e}");
        let e = select(c(), &choose(&["customerz"]), Dialect::Native).unwrap_err();
        assert!(
            e.to_string().starts_with("unknown stream(s) customerz"),
            "{e}"
        );
    }

    #[test]
    fn an_object_name_two_streams_share_is_refused_naming_both() {
        let c = catalog(vec![
            stream("items_a", Some("item")),
            stream("items_b", Some("item")),
        ]);
        let e = select(c, &choose(&["item"]), Dialect::Native).unwrap_err();
        assert!(e.to_string().contains("items_a, items_b"), "{e}");
    }

    #[test]
    fn full_refresh_streams_are_named_as_the_catalog_names_them() {
        let c = catalog(vec![
            stream("customers", Some("customer")),
            stream("invoices", Some("invoice")),
        ]);
        let mut choices = choose(&["customer", "invoices"]).unwrap();
        choices[0].sync_mode = Some(SyncMode::FullRefresh);
        choices[1].sync_mode = Some(SyncMode::Incremental);
        let choices = Some(choices);
        let picked = select(c, &choices, Dialect::Native).unwrap();
        assert_eq!(full_refresh_streams(&picked, &choices), ["customers"]);
        assert_eq!(picked.streams[1].sync_mode, SyncMode::Incremental);
    }
}

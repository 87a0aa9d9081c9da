//! A pipeline made ready to run: its connectors resolved and opened (their `spec` read), the
//! configs validated against it, the catalog discovered and narrowed to the chosen streams, the
//! sync's identity and its state store.

use std::collections::BTreeMap;

use anyhow::{Result, anyhow, bail};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use sync_protocol::{Catalog, ConfiguredCatalog, ConfiguredStream, Message, Status, SyncMode};

use crate::builtin;
use crate::cli::PipelineArgs;
use crate::connector::{Connector, Dialect};
use crate::resolve::{Resolver, Role};
use crate::settings::{self, Pipeline, StreamChoice};
use crate::store::{ControlUpdates, Owner, Side, StateStore};
use crate::usage;

/// The pipeline's connectors, opened (spec run) and their configs validated.
pub struct Opened {
    pub pipeline: Pipeline,
    pub source: Connector,
    pub destination: Connector,
    pub source_config: Value,
    pub destination_config: Value,
}

pub async fn open(args: &PipelineArgs) -> Result<Opened> {
    let pipeline = settings::pipeline(args).map_err(usage)?;
    let resolver = Resolver::new(&args.resolver).map_err(usage)?;
    let source = resolver
        .resolve(Role::Source, &pipeline.source.name)
        .map_err(usage)?;
    let destination = resolver
        .resolve(Role::Destination, &pipeline.destination.name)
        .map_err(usage)?;
    let (source, destination) = tokio::try_join!(
        Connector::open(Role::Source, source),
        Connector::open(Role::Destination, destination)
    )?;
    let source_config = Value::Object(pipeline.source.config.clone());
    let destination_config = Value::Object(pipeline.destination.config.clone());
    source.validate_config(&source_config).map_err(usage)?;
    destination
        .validate_config(&destination_config)
        .map_err(usage)?;
    Ok(Opened {
        pipeline,
        source,
        destination,
        source_config,
        destination_config,
    })
}

impl Opened {
    /// What the sync reads and where it writes, without secrets.
    pub fn owner(&self, sync_id: Option<String>) -> Owner {
        let source = builtin::source_identity(
            &self.pipeline.source.name,
            &self.pipeline.source.config,
            &self.source.spec.config,
        );
        let destination = builtin::destination_identity(
            &self.pipeline.destination.name,
            &self.pipeline.destination.config,
            &self.destination.spec.config,
        );
        let sync_id = sync_id.unwrap_or_else(|| {
            derived_sync_id(
                &self.pipeline.source.name,
                &self.pipeline.destination.name,
                &source,
                &destination,
            )
        });
        Owner {
            sync_id,
            source,
            destination,
        }
    }

    /// The state store: `state_file` when given, else the destination's Postgres database,
    /// else a file under `.sync-state/`.
    pub fn state_store(&self, state_file: Option<std::path::PathBuf>, owner: Owner) -> StateStore {
        if let Some(path) = state_file.or_else(|| self.pipeline.state_file.clone()) {
            return StateStore::file(path, owner);
        }
        match builtin::postgres_state_location(
            &self.pipeline.destination.name,
            &self.pipeline.destination.config,
        ) {
            Some(location) => StateStore::postgres(location, owner),
            None => StateStore::file(
                std::path::PathBuf::from(".sync-state").join(format!("{}.json", owner.sync_id)),
                owner,
            ),
        }
    }

    /// Applies the config updates connectors asked for in earlier runs, then validates again.
    /// A key the user's config sets to another value keeps the user's value, with a warning.
    pub fn apply_control(&mut self, updates: &ControlUpdates) -> Result<()> {
        for side in [Side::Source, Side::Destination] {
            let Some(update) = updates.get(side) else {
                continue;
            };
            let (connector, config) = match side {
                Side::Source => (&self.source, &mut self.source_config),
                Side::Destination => (&self.destination, &mut self.destination_config),
            };
            let Value::Object(config) = config else {
                continue;
            };
            let explicit = match side {
                Side::Source => &self.pipeline.source.config,
                Side::Destination => &self.pipeline.destination.config,
            };
            let (applied, kept) = merge_update(config, explicit, update);
            if !applied.is_empty() {
                tracing::info!(
                    "{}: using the config it saved in an earlier run for {}",
                    connector.name(),
                    applied.join(", ")
                );
            }
            if !kept.is_empty() {
                tracing::warn!(
                    "{}: your config sets {} differently from what the connector saved in an earlier run; yours is used",
                    connector.name(),
                    kept.join(", ")
                );
            }
            connector
                .validate_config(&Value::Object(config.clone()))
                .map_err(usage)?;
        }
        Ok(())
    }
}

/// Merges a saved update into a config: keys the user did not set are filled; keys the user
/// set keep the user's value. Returns (applied keys, keys kept as the user set them).
fn merge_update(
    config: &mut Map<String, Value>,
    explicit: &Map<String, Value>,
    update: &Map<String, Value>,
) -> (Vec<String>, Vec<String>) {
    let (mut applied, mut kept) = (Vec::new(), Vec::new());
    for (key, value) in update {
        match explicit.get(key) {
            Some(mine) if mine != value => kept.push(key.clone()),
            Some(_) => {}
            None => {
                config.insert(key.clone(), value.clone());
                applied.push(key.clone());
            }
        }
    }
    (applied, kept)
}

/// The default sync id: the connectors' names and a digest of what the source reads and where
/// the destination writes (a test key and a live key never share a checkpoint).
fn derived_sync_id(source: &str, destination: &str, source_id: &str, dest_id: &str) -> String {
    let mut hasher = Sha256::new();
    for part in [source_id, dest_id] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    let digest: String = hasher
        .finalize()
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{source}-to-{destination}-{digest}")
}

/// The source's catalog.
pub async fn discover(o: &Opened) -> Result<Catalog> {
    let config = o.source.file("source-config.json", &o.source_config)?;
    let messages = o.source.run("discover", &[("config", &config)]).await?;
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
        o.source.name(),
        failure.map(|f| format!(": {f}")).unwrap_or_default()
    ))
}

/// The configured catalog of the selected streams; an unknown name is an error listing the others.
fn select(
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

/// The source's catalog, configured for the selected streams.
pub async fn selected_catalog(o: &Opened) -> Result<ConfiguredCatalog> {
    select(discover(o).await?, &o.pipeline.streams, o.source.dialect).map_err(usage)
}

/// Runs the destination's `setup`; connectors without one (every Airbyte destination) skip it.
pub async fn setup_destination(o: &Opened, catalog: &ConfiguredCatalog) -> Result<()> {
    if o.destination.dialect == Dialect::Airbyte {
        return Ok(());
    }
    let config = o
        .destination
        .file("destination-config.json", &o.destination_config)?;
    let catalog = o.destination.file("catalog.json", catalog)?;
    match o
        .destination
        .run("setup", &[("config", &config), ("catalog", &catalog)])
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if format!("{e:#}").contains("subcommand") => {
            tracing::debug!("{} has no setup: {e:#}", o.destination.name());
            Ok(())
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn saved_updates_fill_but_never_override_the_users_config() {
        let explicit = json!({"api_key": "mine", "rate_limit": 5});
        let explicit = explicit.as_object().unwrap();
        let mut config = explicit.clone();
        let update = json!({"api_key": "theirs", "rate_limit": 5, "webhook_secret": "whsec_1"});
        let (applied, kept) = merge_update(&mut config, explicit, update.as_object().unwrap());
        assert_eq!(applied, vec!["webhook_secret"]);
        assert_eq!(kept, vec!["api_key"]);
        assert_eq!(config["api_key"], "mine");
        assert_eq!(config["webhook_secret"], "whsec_1");
    }

    #[test]
    fn sync_ids_differ_by_what_the_source_reads() {
        let a = derived_sync_id("stripe", "postgres", "stripe (test mode)", "pg");
        let b = derived_sync_id("stripe", "postgres", "stripe (live mode)", "pg");
        assert_ne!(a, b);
        assert!(a.starts_with("stripe-to-postgres-"));
    }
}

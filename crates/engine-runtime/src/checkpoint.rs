//! Where a CLI sync keeps its checkpoint, and whose it is: the sync's identity (what the source
//! reads, where the destination writes), its state store, and the config updates connectors
//! saved in earlier runs. This is the caller's side: the engine itself keeps no state.

use anyhow::Result;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use sync_protocol::{Role, Spec};

use crate::builtin;
use crate::settings::PipelineSettings;
use crate::store::{ControlUpdates, Owner, StateStore};
use crate::usage;
use sync_engine_api::PipelineRequest;

/// What the sync reads and where it writes, without secrets.
pub fn owner(
    pipeline: &PipelineSettings,
    source_spec: &Spec,
    destination_spec: &Spec,
    sync_id: Option<String>,
) -> Owner {
    let source = builtin::source_identity(
        &pipeline.source.name,
        &pipeline.source.config,
        &source_spec.config,
    );
    let destination = builtin::destination_identity(
        &pipeline.destination.name,
        &pipeline.destination.config,
        &destination_spec.config,
    );
    let sync_id = sync_id.unwrap_or_else(|| {
        derived_sync_id(
            &pipeline.source.name,
            &pipeline.destination.name,
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

/// The state store: `state_file` when given, else the destination's Postgres database, else a
/// file under `.sync-state/`.
pub fn state_store(
    pipeline: &PipelineSettings,
    state_file: Option<std::path::PathBuf>,
    owner: Owner,
) -> StateStore {
    if let Some(path) = state_file.or_else(|| pipeline.state_file.clone()) {
        return StateStore::file(path, owner);
    }
    match builtin::postgres_state_location(&pipeline.destination.name, &pipeline.destination.config)
    {
        Some(location) => StateStore::postgres(location, owner),
        None => StateStore::file(
            std::path::PathBuf::from(".sync-state").join(format!("{}.json", owner.sync_id)),
            owner,
        ),
    }
}

/// What a connector's config update is kept against for later runs: the configs this run was
/// given (before saved updates), and the keys each connector's spec marks `"x-resolved": true`
/// (what its setup finds again on every run: for Stripe the account and the API version).
pub struct UpdateBasis {
    source: (Map<String, Value>, Vec<String>),
    destination: (Map<String, Value>, Vec<String>),
}

impl UpdateBasis {
    /// The basis of a request as the user gave it.
    pub fn of(request: &PipelineRequest, [source, destination]: [&Spec; 2]) -> UpdateBasis {
        UpdateBasis {
            source: (request.source.config.clone(), resolved_keys(source)),
            destination: (
                request.destination.config.clone(),
                resolved_keys(destination),
            ),
        }
    }

    /// The part of a connector's config update to save: a `control` message carries the
    /// connector's complete config (as the reference implementation's do), of which only what
    /// differs from the user's config is the connector's own, and of that what setup resolves
    /// again is left out. So a saved update never freezes a key the user sets (a new api_key
    /// is used as given), and never carries what one key resolved (its account) into a run of
    /// another. Left: what setup cannot find again, such as a new webhook endpoint's secret.
    pub fn to_keep(&self, side: Role, update: Map<String, Value>) -> Map<String, Value> {
        let (given, resolved) = match side {
            Role::Source => &self.source,
            Role::Destination => &self.destination,
        };
        kept_part(given, resolved, update)
    }
}

/// Of a connector's config update, what to keep for later runs beside the config it was given
/// (see [`UpdateBasis::to_keep`]); for a caller that keeps configs itself (sync-service).
pub fn config_update_to_keep(
    given: &Map<String, Value>,
    spec: &Spec,
    update: Map<String, Value>,
) -> Map<String, Value> {
    kept_part(given, &resolved_keys(spec), update)
}

fn kept_part(
    given: &Map<String, Value>,
    resolved: &[String],
    update: Map<String, Value>,
) -> Map<String, Value> {
    update
        .into_iter()
        .filter(|(key, value)| given.get(key) != Some(value) && !resolved.contains(key))
        .collect()
}

/// The config keys a spec marks `"x-resolved": true`.
pub fn resolved_keys(spec: &Spec) -> Vec<String> {
    spec.config
        .get("properties")
        .and_then(Value::as_object)
        .map(|properties| {
            properties
                .iter()
                .filter(|(_, p)| p.get("x-resolved").and_then(Value::as_bool) == Some(true))
                .map(|(key, _)| key.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// Applies the config updates connectors asked for in earlier runs, then validates again. A
/// key the user's config sets to another value keeps the user's value, with a warning. Returns
/// what this run's own updates are kept against.
pub fn apply_control(
    request: &mut PipelineRequest,
    explicit: &PipelineSettings,
    updates: &ControlUpdates,
    specs: [&Spec; 2],
) -> Result<UpdateBasis> {
    let basis = UpdateBasis::of(request, specs);
    for (role, spec) in [Role::Source, Role::Destination].into_iter().zip(specs) {
        let Some(update) = updates.get(role) else {
            continue;
        };
        let (connector, config, mine) = match role {
            Role::Source => (
                &request.source.name,
                &mut request.source.config,
                &explicit.source.config,
            ),
            Role::Destination => (
                &request.destination.name,
                &mut request.destination.config,
                &explicit.destination.config,
            ),
        };
        let (applied, kept) = merge_update(config, mine, update);
        if !applied.is_empty() {
            tracing::info!(
                "{connector}: using the config it saved in an earlier run for {}",
                applied.join(", ")
            );
        }
        if !kept.is_empty() {
            tracing::warn!(
                "{connector}: your config sets {} differently from what the connector saved in an earlier run; yours is used",
                kept.join(", ")
            );
        }
        let config = Value::Object(config.clone());
        validate(role, connector, spec, &config)?;
    }
    Ok(basis)
}

/// Validates a config against a connector's spec (and registers its secrets for masking).
pub fn validate(role: Role, connector: &str, spec: &Spec, config: &Value) -> Result<()> {
    if spec.config.is_null() {
        return Ok(());
    }
    sync_connector::redact::register_config_secrets(&spec.config, config);
    sync_connector::validate::validate_config(&spec.config, config)
        .map_err(|e| usage(anyhow::anyhow!("{}-{connector} config: {e}", role.as_str())))
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
    fn of_a_complete_config_only_what_setup_cannot_find_again_is_kept() {
        let spec = Spec::new(json!({"properties": {
            "api_key": {}, "account_id": {"x-resolved": true}, "webhook_secret": {}}}));
        let request = PipelineRequest {
            source: sync_engine_api::ConnectorConfig {
                name: "stripe".into(),
                config: json!({"api_key": "sk_test_1", "rate_limit": 5})
                    .as_object()
                    .unwrap()
                    .clone(),
            },
            destination: sync_engine_api::ConnectorConfig {
                name: "postgres".into(),
                config: Map::new(),
            },
            streams: None,
            sync_id: None,
        };
        let basis = UpdateBasis::of(&request, [&spec, &spec]);
        let complete = json!({"api_key": "sk_test_1", "rate_limit": 5, "account_id": "acct_1",
                              "webhook_secret": "whsec_1"});
        let kept = basis.to_keep(Role::Source, complete.as_object().unwrap().clone());
        assert_eq!(Value::Object(kept), json!({"webhook_secret": "whsec_1"}));
    }

    #[test]
    fn sync_ids_differ_by_what_the_source_reads() {
        let a = derived_sync_id("stripe", "postgres", "stripe (test mode)", "pg");
        let b = derived_sync_id("stripe", "postgres", "stripe (live mode)", "pg");
        assert_ne!(a, b);
        assert!(a.starts_with("stripe-to-postgres-"));
    }
}

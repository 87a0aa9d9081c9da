//! The Stripe source connector: a parallel, resumable backfill of every Stripe resource
//! chosen, then incremental updates from `/v1/events`. [`StripeSource`] implements the
//! connector contract of [`sync_connector`]; the `source-stripe` binary runs it.
//!
//! Layers, each using only the ones before it: `client` (HTTP, rate limits, one retry loop),
//! `pager` (paging a list), `records`/`children`/`backfill`/`events` (the streams), `plan` and
//! `read` (one account's read, end to end), `platform` (a Connect platform's read: several
//! accounts' reads, their states merged).

#![warn(missing_docs)]
#![warn(unreachable_pub)]

mod account;
mod backfill;
mod children;
mod client;
mod config;
mod connected_accounts;
mod discover;
mod error;
mod events;
mod live;
mod origin;
mod pager;
mod plan;
mod platform;
mod provision;
mod push;
mod ranges;
mod read;
mod recent;
mod records;
mod reference;
mod reference_state;
mod shared_rate;
mod state;
mod stream_names;
mod sweep;
mod webhook;

pub use config::DEFAULT_WEBHOOK_TOLERANCE_SECS;
pub use discover::catalog;
pub use origin::{NotOurs, Refusal, admit};
pub use shared_rate::budget_key;
pub use webhook::{InputError, Verified, ingress};

use sync_connector::{About, Capability, Connector, ConnectorError, InputLines, Output};
use sync_protocol::{
    Catalog, ConfiguredCatalog, ConnectionStatus, FailureType, SourceStateSet, Spec,
};

use std::sync::Arc;

use crate::client::StripeClient;
pub use crate::config::Config;
pub use crate::connected_accounts::ConnectedAccounts;

/// The id of the account a config's requests act on: its `account_id` (a connected account)
/// when set, else the key's own, asked with `GET /v1/account` through the source's own client
/// (its headers, retries and rate limit).
pub async fn account_of(config: &Config) -> Result<String, ConnectorError> {
    if let Some(account) = &config.account_id {
        return Ok(account.clone());
    }
    let client = StripeClient::new(config).map_err(ConnectorError::config)?;
    Ok(account::fetch(&client, config).await?.id)
}

/// What a Connect platform's saved state (`connected_accounts`) says of each account:
/// `{"platform", "accounts": [{account_id, is_platform, status, connected_at, deauthorized_at,
/// last_synced_at, error}]}` (as its `_accounts` rows); `None` for a state of one account.
pub fn platform_accounts(state: &SourceStateSet) -> Option<serde_json::Value> {
    platform::accounts(state)
}

/// The Stripe source.
pub struct StripeSource;

impl Connector for StripeSource {
    type Config = Config;

    fn about(&self) -> About {
        About {
            name: "source-stripe",
            version: build_info::VERSION,
            about: "Stripe source: parallel resumable backfill, then incremental updates from events",
        }
    }

    fn capabilities(&self) -> &'static [Capability] {
        &[
            Capability::Spec,
            Capability::Check,
            Capability::Discover,
            Capability::Read,
            Capability::Setup,
            Capability::Teardown,
        ]
    }

    fn spec(&self) -> Spec {
        let mut spec = Spec::new(config::config_schema());
        spec.source_state_stream = Some(serde_json::json!({"anyOf": [
            {"type": "object", "required": ["v", "phase"], "properties": {"v": {"const": 1}, "phase": {"enum": ["ranges", "sequential", "complete"]}}},
            {"description": "A checkpoint of the reference system (stripe/sync-engine), continued", "type": "object", "required": ["remaining"], "properties": {"accounted_range": {"type": "object"}, "remaining": {"type": "array"}}}
        ]}));
        spec.source_input = Some(serde_json::json!({
            "description": "A Stripe event, or a raw webhook {body, headers} verified with webhook_secret (or connect_webhook_secret)",
            "oneOf": [
                {"type": "object", "required": ["object", "id", "type"], "properties": {"object": {"const": "event"}}},
                {"type": "object", "required": ["body", "headers"], "properties": {"body": {"type": "string"}, "headers": {"type": "object"}}}
            ]
        }));
        spec
    }

    async fn check(&self, config: Config) -> Result<ConnectionStatus, ConnectorError> {
        let found = match account::settle(config).await {
            Ok(config) => {
                let client = StripeClient::new(&config).map_err(ConnectorError::config)?;
                account::fetch(&client, &config).await
            }
            Err(e) => Err(e),
        };
        Ok(match found {
            Ok(account) => {
                tracing::info!(account = %account.id, "the key works");
                ConnectionStatus::succeeded()
            }
            Err(ConnectorError::Fatal {
                failure_type,
                message,
            }) => ConnectionStatus::failed(message, Some(failure_type)),
            Err(other) => {
                ConnectionStatus::failed(other.to_string(), Some(FailureType::SystemError))
            }
        })
    }

    async fn discover(&self, config: Config) -> Result<Catalog, ConnectorError> {
        let config = account::settle(config).await?;
        let client = StripeClient::new(&config).map_err(ConnectorError::config)?;
        let account = account::fetch(&client, &config).await?;
        let mut catalog = if config.connected_accounts.any() {
            platform::catalog(&account.id)
        } else {
            discover::catalog(&account.id)
        };
        // Only the key's own: a connected account's `created` is when it was connected.
        if let (None, Some(created)) = (&config.account_id, account.created) {
            discover::stamp_account_created(&mut catalog, created);
        }
        Ok(catalog)
    }

    async fn read(
        &self,
        config: Config,
        catalog: ConfiguredCatalog,
        state: SourceStateSet,
        output: Output,
    ) -> Result<(), ConnectorError> {
        let config = account::settle(config).await?;
        let catalog = stream_names::canonical(catalog)?;
        if config.live && !config.events {
            return Err(ConnectorError::config(
                "live needs the events path: events must not be false",
            ));
        }
        let client = Arc::new(StripeClient::new(&config).map_err(ConnectorError::config)?);
        if config.connected_accounts.any() {
            return platform::read(config, client, catalog, state, output).await;
        }
        let (catalog, state, account) =
            platform::one_account(&config, &client, catalog, state, &output).await?;
        let following =
            read::read_account(&config, client, account, &catalog, &state, output).await?;
        // Live: the backfills are complete; changes keep flowing until the source is stopped.
        match following {
            Some(f) if config.live => live::run(&f.ctx, &config, f.cursor, f.applied).await,
            _ => Ok(()),
        }
    }

    async fn setup(
        &self,
        config: Config,
        catalog: ConfiguredCatalog,
        output: Output,
    ) -> Result<(), ConnectorError> {
        provision::setup(config, &catalog, &output).await
    }

    async fn teardown(&self, config: Config, _output: Output) -> Result<(), ConnectorError> {
        provision::teardown(&account::settle(config).await?).await
    }

    async fn read_input(
        &self,
        config: Config,
        catalog: ConfiguredCatalog,
        state: SourceStateSet,
        input: InputLines,
        output: Output,
    ) -> Result<(), ConnectorError> {
        let config = account::settle(config).await?;
        let catalog = stream_names::canonical(catalog)?;
        if config.connected_accounts.any() {
            return platform::read_input(config, catalog, state, input, output).await;
        }
        push::read_input(config, catalog, state, input, output).await
    }
}

//! `source-stripe`: the Stripe source connector.

mod backfill;
mod children;
mod client;
mod config;
mod discover;
mod error;
mod events;
mod ranges;
mod read;
mod records;
mod state;

use std::process::ExitCode;

use sync_connector::{About, Capability, Connector, ConnectorError, Output, run};
use sync_protocol::{
    Catalog, ConfiguredCatalog, ConnectionStatus, FailureType, SourceStateSet, Spec,
};

use crate::client::StripeClient;
use crate::config::Config;

struct StripeSource;

impl Connector for StripeSource {
    type Config = Config;

    fn about(&self) -> About {
        About {
            name: "source-stripe",
            version: env!("CARGO_PKG_VERSION"),
            about: "Stripe source: parallel resumable backfill, then incremental updates from events",
        }
    }

    fn capabilities(&self) -> &'static [Capability] {
        &[
            Capability::Spec,
            Capability::Check,
            Capability::Discover,
            Capability::Read,
        ]
    }

    fn spec(&self) -> Spec {
        let mut spec = Spec::new(config::config_schema());
        spec.source_state_stream = Some(
            serde_json::json!({"type": "object", "required": ["v", "phase"], "properties": {"v": {"const": 1}, "phase": {"enum": ["ranges", "sequential", "complete"]}}}),
        );
        spec
    }

    async fn check(&self, config: Config) -> Result<ConnectionStatus, ConnectorError> {
        let client = StripeClient::new(&config).map_err(ConnectorError::config)?;
        Ok(match read::account(&client, &config).await {
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
        let client = StripeClient::new(&config).map_err(ConnectorError::config)?;
        let account = read::account(&client, &config).await?;
        Ok(discover::catalog(&account.id))
    }

    async fn read(
        &self,
        config: Config,
        catalog: ConfiguredCatalog,
        state: SourceStateSet,
        output: Output,
    ) -> Result<(), ConnectorError> {
        read::read(config, catalog, state, output).await
    }
}

fn main() -> ExitCode {
    run(StripeSource)
}

//! The Postgres destination connector: records loaded with binary COPY and merged with a
//! stale-write gate, states re-emitted only once every record before them is committed.
//! [`PostgresDestination`] implements the connector contract of [`sync_connector`]; the
//! `dest-postgres` binary runs it.
//!
//! Modules: `router` (stdin to one loader per stream), `loader` (lanes, batches, the commit
//! fence), `record`/`batch`/`copy` (encoding), `merge`/`flush` (the SQL of one batch),
//! `ddl` (the tables; their model is the `pg-tables` crate), `rejected` (records set aside), `connect` (the pool).

#![warn(missing_docs)]
#![warn(unreachable_pub)]

mod batch;
mod config;
mod connect;
mod copy;
mod ddl;
mod ddl_error;
mod flush;
mod flush_error;
mod listing;
mod loader;
mod merge;
mod numeric;
mod record;
mod registry;
mod rejected;
mod router;
mod stream_names;
mod tombstones;

// The tables' model lives in its own crate, shared with the console's explorer.
use pg_tables::{ident, table};

use sync_connector::{About, Capability, Connector, ConnectorError, InputLines, Output};
use sync_protocol::{
    ConfiguredCatalog, ConnectionStatus, Control, FailureType, Log, LogLevel, Message, Spec,
    TableReport,
};

pub use crate::config::{Config, DeleteMode};
use crate::table::TableModel;
use pg_connect::FailureKind;

/// The Postgres destination.
pub struct PostgresDestination;

fn pool(config: &Config) -> Result<deadpool_postgres::Pool, ConnectorError> {
    connect::pool(config).map_err(ConnectorError::config)
}

async fn client(
    config: &Config,
    pool: &deadpool_postgres::Pool,
) -> Result<deadpool_postgres::Client, ConnectorError> {
    pool.get().await.map_err(|e| {
        let (kind, message) = connect::explain_connect_error(&e, &config.url);
        match kind {
            FailureKind::Unreachable => ConnectorError::transient(message),
            _ => ConnectorError::config(message),
        }
    })
}

/// A DDL failure as the connector reports it: the config's fault, or the system's.
fn ddl_error(e: ddl::DdlError) -> ConnectorError {
    if e.is_config_error() {
        ConnectorError::config(e.to_string())
    } else {
        ConnectorError::system(e.to_string())
    }
}

async fn ensure_tables(
    config: &Config,
    pool: &deadpool_postgres::Pool,
    catalog: &ConfiguredCatalog,
) -> Result<ddl::SetupReport, ConnectorError> {
    let tables: Vec<TableModel> = catalog
        .streams
        .iter()
        .map(TableModel::from_stream)
        .collect();
    let mut client = client(config, pool).await?;
    let report = ddl::setup(
        &mut client,
        &config.schema,
        &tables,
        config.fillfactor,
        config.user(),
    )
    .await
    .map_err(ddl_error)?;
    for table in &report.created_tables {
        tracing::info!("created table {}.{table}", config.schema);
    }
    for (table, column) in &report.added_columns {
        tracing::info!("added column {column:?} to {}.{table}", config.schema);
    }
    for (table, column, found, wanted) in &report.type_conflicts {
        tracing::warn!(
            "column {column:?} of {}.{table} stays {found} (the catalog now says {wanted}); its data is kept",
            config.schema
        );
    }
    Ok(report)
}

/// The tables setup left, as the checkpoint's holder ties the checkpoint to them.
async fn tables_control(
    config: &Config,
    pool: &deadpool_postgres::Pool,
    report: &ddl::SetupReport,
) -> Result<Message, ConnectorError> {
    let mut client = client(config, pool).await?;
    let mut tables = std::collections::BTreeMap::new();
    for t in &report.tables {
        let has_rows = ddl::holds_rows(&mut client, &config.schema, &t.table)
            .await
            .map_err(ddl_error)?;
        tables.insert(
            t.stream.clone(),
            TableReport {
                identity: t.generation.clone(),
                has_rows,
                table: Some(format!("{}.{}", config.schema, t.table)),
            },
        );
    }
    Ok(Message::Control(Control::DestinationTables(tables)))
}

impl Connector for PostgresDestination {
    type Config = Config;

    fn about(&self) -> About {
        About {
            name: "dest-postgres",
            version: build_info::VERSION,
            about: "Postgres destination: COPY-fast, crash-safe upserts of stream records",
        }
    }

    fn capabilities(&self) -> &'static [Capability] {
        Capability::DESTINATION
    }

    fn spec(&self) -> Spec {
        Spec::new(config::config_schema())
    }

    async fn check(&self, config: Config) -> Result<ConnectionStatus, ConnectorError> {
        let pool = pool(&config)?;
        let client = match pool.get().await {
            Ok(c) => c,
            Err(e) => {
                let (kind, message) = connect::explain_connect_error(&e, &config.url);
                let failure = if kind == FailureKind::Unreachable {
                    FailureType::TransientError
                } else {
                    FailureType::ConfigError
                };
                return Ok(ConnectionStatus::failed(message, Some(failure)));
            }
        };
        let row = client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1), \
                 COALESCE((SELECT has_schema_privilege(oid, 'CREATE') FROM pg_namespace WHERE nspname = $1), false), \
                 has_database_privilege(current_database(), 'CREATE')",
                &[&config.schema],
            )
            .await
            .map_err(|e| ConnectorError::system(format!("checking privileges: {}", pg_connect::error_text(&e))))?;
        let (exists, can_create_in_schema, can_create_schema): (bool, bool, bool) =
            (row.get(0), row.get(1), row.get(2));
        let target = pg_connect::describe_target(&config.url);
        Ok(if exists && !can_create_in_schema {
            ConnectionStatus::failed(
                format!(
                    "permission denied: the user cannot create tables in schema {:?} at {target}",
                    config.schema
                ),
                Some(FailureType::ConfigError),
            )
        } else if !exists && !can_create_schema {
            ConnectionStatus::failed(
                format!(
                    "permission denied: schema {:?} does not exist at {target} and the user cannot create it",
                    config.schema
                ),
                Some(FailureType::ConfigError),
            )
        } else {
            ConnectionStatus::succeeded()
        })
    }

    async fn setup(
        &self,
        config: Config,
        catalog: ConfiguredCatalog,
        output: Output,
    ) -> Result<(), ConnectorError> {
        let catalog = stream_names::canonical(catalog)?.catalog;
        let pool = pool(&config)?;
        let report = ensure_tables(&config, &pool, &catalog).await?;
        let tables = tables_control(&config, &pool, &report).await?;
        // A closed stdout is the reader's choice; there is nothing to report to.
        let _ = output.emit(tables).await;
        Ok(())
    }

    async fn teardown(&self, config: Config, output: Output) -> Result<(), ConnectorError> {
        let pool = pool(&config)?;
        let mut client = client(&config, &pool).await?;
        let report = ddl::teardown(&mut client, &config.schema, config.user())
            .await
            .map_err(ddl_error)?;
        for table in &report.dropped_tables {
            tracing::info!("dropped table {}.{table}", config.schema);
        }
        for (table, users) in &report.kept_tables {
            let users: Vec<String> = users.iter().map(|u| registry::describe_user(u)).collect();
            let message = format!(
                "kept table {}.{table}: {} still use(s) it",
                config.schema,
                users.join(", ")
            );
            tracing::warn!("{message}");
            let _ = output
                .emit(Message::Log(Log::new(LogLevel::Warn, message)))
                .await;
        }
        match (&report.kept_schema_because, report.dropped_schema) {
            (_, true) => tracing::info!("dropped schema {:?}", config.schema),
            (Some(why), false) => tracing::info!("kept schema {:?}: {why}", config.schema),
            (None, false) => {}
        }
        Ok(())
    }

    async fn write(
        &self,
        config: Config,
        catalog: ConfiguredCatalog,
        input: InputLines,
        output: Output,
    ) -> Result<(), ConnectorError> {
        let stream_names::Canonical { catalog, aliases } = stream_names::canonical(catalog)?;
        let pool = pool(&config)?;
        ensure_tables(&config, &pool, &catalog).await?;
        router::write(config, pool, catalog, &aliases, input, output).await
    }
}

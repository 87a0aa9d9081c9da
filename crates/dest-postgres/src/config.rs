use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How a tombstone (a record with `deleted: true`) is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeleteMode {
    /// Keep the row, with `_deleted = true` and the tombstone as `_raw_data`.
    #[default]
    Soft,
    /// Delete the row.
    Hard,
}

/// The destination's config, as its JSON Schema (printed by `spec`) describes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "Given")]
pub struct Config {
    /// The libpq URL (sslmode, sslrootcert, sslcert, sslkey honoured).
    pub url: String,
    /// The schema holding one table per stream.
    pub schema: String,
    /// Records per stream buffered before a flush.
    pub batch_size: usize,
    /// Longest a buffered record waits for its flush.
    pub flush_interval_ms: u64,
    /// Connections at most, all streams together.
    pub max_connections: usize,
    /// Connections one stream loads through in parallel.
    pub connections_per_stream: usize,
    /// Fillfactor of the tables setup creates.
    pub fillfactor: u8,
    /// How tombstones are applied.
    pub delete_mode: DeleteMode,
    /// PEM of the CA for verify-ca / verify-full.
    pub ssl_ca_pem: Option<String>,
    /// Longest wait for a lock another session holds; 0: no limit.
    pub lock_timeout_ms: u64,
    /// Longest one statement may run; 0: no limit.
    pub statement_timeout_ms: u64,
    /// The sync using the tables (setup registers it, teardown keeps tables others use).
    pub sync_id: Option<String>,
    /// The largest share of the rows a listing covers that its end may mark deleted at once.
    pub sweep_max_share: f64,
}

/// Every key the config takes, as given. `spec` publishes its JSON Schema: these fields, their
/// docs and their defaults.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "Postgres destination",
    description = "The Postgres destination's config: where the tables go and how they are loaded."
)]
struct Given {
    /// Required (or connection_string). libpq connection URL, e.g.
    /// postgres://user:password@host:5432/db?sslmode=verify-full. sslmode disable, prefer
    /// (default), require, verify-ca and verify-full are honoured, and so are sslrootcert (a CA
    /// file; with it, require verifies the chain as in libpq), sslcert and sslkey (a client
    /// certificate).
    #[serde(default)]
    #[schemars(length(min = 1), extend("secret" = true))]
    url: Option<String>,
    /// The reference implementation's name for url; both given must be equal. One of the two is
    /// required.
    #[serde(default)]
    #[schemars(length(min = 1), extend("secret" = true))]
    connection_string: Option<String>,
    /// The reference's RDS IAM authentication: not supported, refused. Give url with the user's
    /// password, or a client certificate (sslcert, sslkey).
    #[serde(default)]
    aws: Option<Value>,
    /// The reference's embedded Postgres (PGlite): not supported, refused. Give url of a
    /// Postgres server.
    #[serde(default)]
    pglite: Option<Value>,
    /// Schema that holds one table per stream; created when missing.
    #[serde(default = "default_schema")]
    #[schemars(length(min = 1, max = 63))]
    schema: String,
    /// Records per stream buffered before a flush (COPY + merge + commit).
    #[serde(default = "default_batch_size")]
    #[schemars(range(min = 1))]
    batch_size: usize,
    /// A stream's buffered records are flushed at most this long after the first of them
    /// arrived, so checkpoints keep moving on slow streams.
    #[serde(default = "default_flush_interval_ms")]
    #[schemars(range(min = 1))]
    flush_interval_ms: u64,
    /// Connections used in parallel; streams load concurrently up to this number.
    #[serde(default = "default_max_connections")]
    #[schemars(range(min = 1, max = 64))]
    max_connections: usize,
    /// Connections one stream loads through in parallel (records are spread by key, so each
    /// key's versions stay in order); at most max_connections.
    #[serde(default = "default_connections_per_stream")]
    #[schemars(range(min = 1, max = 64))]
    connections_per_stream: usize,
    /// How full the pages of the tables setup creates are packed (Postgres' fillfactor; tables
    /// that exist keep theirs). Lower it (75) for streams that are updated often: an update then
    /// mostly stays on its page and skips the index (about 12 % faster updates in the benchmark,
    /// for a third more space).
    #[serde(default = "default_fillfactor")]
    #[schemars(range(min = 10, max = 100))]
    fillfactor: u8,
    /// soft: tombstones set _deleted = true and keep the row; hard: tombstones delete the row.
    #[serde(default)]
    delete_mode: DeleteMode,
    /// PEM certificate(s) of the CA that signed the server's certificate, for sslmode verify-ca
    /// or verify-full. Without it the Mozilla root store is used.
    #[serde(default)]
    ssl_ca_pem: Option<String>,
    /// How long a statement waits for a lock (another session holding a table) before the
    /// stream fails with a message saying so; 0 waits forever.
    #[serde(default = "default_lock_timeout_ms")]
    lock_timeout_ms: u64,
    /// Longest a single statement (a batch's COPY or merge) may run before the stream fails; 0
    /// (the default) sets no limit.
    #[serde(default)]
    statement_timeout_ms: u64,
    /// The sync (pipeline) that uses these tables. Setup registers it as a user of each table it
    /// needs (in the schema's _sync_tables); teardown takes it off and drops only the tables no
    /// other sync uses, naming the ones it keeps. sync-engine fills it with the sync id,
    /// sync-service with the pipeline id; unset, the sync is unnamed.
    #[serde(default)]
    #[schemars(length(min = 1))]
    sync_id: Option<String>,
    /// When a source lists a stream whole (source-stripe: a backfill or reconcile with nothing
    /// narrowing it), the rows it did not return are marked deleted (_deleted, with
    /// _deleted_reason missing_from_listing; removed with delete_mode hard). If they are more
    /// than this share of the rows the listing covers, none is marked and a warning names the
    /// stream and the counts: 1 allows any share, 0 marks nothing.
    #[serde(default = "default_sweep_max_share")]
    #[schemars(range(min = 0, max = 1))]
    sweep_max_share: f64,
}

impl TryFrom<Given> for Config {
    type Error = String;

    fn try_from(g: Given) -> Result<Config, String> {
        if g.aws.is_some() {
            return Err("aws: RDS IAM authentication is not supported; give url (or connection_string) with the database user's password, or a client certificate (sslcert, sslkey)".to_owned());
        }
        if g.pglite.is_some() {
            return Err("pglite: an embedded Postgres is not supported; give url (or connection_string) of a Postgres server".to_owned());
        }
        // Never printed: a URL may hold a password.
        let url = match (g.url, g.connection_string) {
            (Some(url), Some(alias)) if url != alias => {
                return Err("url and connection_string are both given, differently: give one (connection_string is the reference's name for url)".to_owned());
            }
            (Some(url), _) | (None, Some(url)) => url,
            (None, None) => {
                return Err(
                    "url is required: the Postgres URL (connection_string is taken as well)"
                        .to_owned(),
                );
            }
        };
        Ok(Config {
            url,
            schema: g.schema,
            batch_size: g.batch_size,
            flush_interval_ms: g.flush_interval_ms,
            max_connections: g.max_connections,
            connections_per_stream: g.connections_per_stream,
            fillfactor: g.fillfactor,
            delete_mode: g.delete_mode,
            ssl_ca_pem: g.ssl_ca_pem,
            lock_timeout_ms: g.lock_timeout_ms,
            statement_timeout_ms: g.statement_timeout_ms,
            sync_id: g.sync_id,
            sweep_max_share: g.sweep_max_share,
        })
    }
}

impl Config {
    /// Who setup registers as a user of the tables, and teardown takes off.
    pub fn user(&self) -> &str {
        self.sync_id.as_deref().unwrap_or(crate::registry::UNNAMED)
    }

    /// Checks what the JSON Schema cannot say; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        if crate::ddl_error::is_system_schema(&self.schema) {
            return Err(format!(
                "schema: {:?} is a Postgres system schema; choose another",
                self.schema
            ));
        }
        Ok(())
    }
}

fn default_schema() -> String {
    "stripe".to_owned()
}
fn default_batch_size() -> usize {
    10_000
}
fn default_flush_interval_ms() -> u64 {
    1_000
}
fn default_max_connections() -> usize {
    4
}
fn default_connections_per_stream() -> usize {
    2
}
fn default_fillfactor() -> u8 {
    100
}
fn default_sweep_max_share() -> f64 {
    0.2
}
fn default_lock_timeout_ms() -> u64 {
    60_000
}

/// The config's JSON Schema, published by `spec`.
pub(crate) fn config_schema() -> Value {
    sync_connector::config_schema::<Given>()
}

#[cfg(test)]
mod schema_tests {
    use super::*;

    #[test]
    fn the_schema_lists_exactly_the_keys_the_config_takes() {
        let unknown = serde_json::json!({"\u{1}": 0});
        let refusal = serde_json::from_value::<Given>(unknown).unwrap_err();
        test_support::assert_schema_lists_the_fields(&config_schema(), &refusal);
    }
}

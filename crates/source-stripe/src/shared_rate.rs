//! A rate budget shared by every process that syncs one account (several pipelines, several
//! workers): a token bucket in Postgres, one row per key, refilled by the time elapsed since it
//! was last taken from. Tokens are taken a few at a time to save round trips; a taker that
//! finds the bucket in debt waits until its share has accrued, so the total rate over all
//! processes is the budget's.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use tokio::sync::Mutex;

/// `shared_rate_limit` in the source's config.
#[derive(Debug, Clone, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SharedRateLimit {
    /// The Postgres database holding the buckets (a libpq URL).
    #[schemars(length(min = 1), extend("secret" = true))]
    pub url: String,
    /// The bucket: the same for every process syncing the account (sync-service uses a digest
    /// of the key and account).
    #[schemars(length(min = 1))]
    pub key: String,
    /// Requests per second for all of them together; default: rate_limit (or the key's
    /// default).
    #[serde(default)]
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub max_rps: Option<f64>,
    /// The buckets' table, created when missing.
    #[serde(default = "default_table")]
    #[schemars(length(min = 1))]
    pub table: String,
}

fn default_table() -> String {
    "sync_service.rate_buckets".to_owned()
}

/// Why the shared budget cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("shared_rate_limit: {0}")]
pub(crate) struct BudgetError(String);

/// The shared bucket as one process sees it.
pub(crate) struct SharedBudget {
    url: String,
    key: String,
    table: String,
    /// Tokens per second.
    rate: f64,
    /// Tokens taken per round trip (also the bucket's capacity: no burst beyond it).
    batch: u32,
    /// The connection and the tokens taken but not yet spent.
    local: Mutex<Local>,
}

struct Local {
    client: Option<tokio_postgres::Client>,
    tokens: u32,
}

impl SharedBudget {
    /// A budget of `config.max_rps`, else `default_rps`.
    pub(crate) fn new(
        config: &SharedRateLimit,
        default_rps: f64,
    ) -> Result<SharedBudget, BudgetError> {
        let rate = config.max_rps.unwrap_or(default_rps);
        if !(rate.is_finite() && rate > 0.0) {
            return Err(BudgetError(format!(
                "max_rps: {rate} is not a positive rate"
            )));
        }
        let (schema, table) = match config.table.split_once('.') {
            Some((s, t)) => (Some(s), t),
            None => (None, config.table.as_str()),
        };
        let table = match schema {
            Some(s) => format!("{}.{}", quote(s), quote(table)),
            None => quote(table),
        };
        Ok(SharedBudget {
            url: config.url.clone(),
            key: config.key.clone(),
            table,
            rate,
            // About a tenth of a second's worth: few round trips, little burst.
            batch: ((rate / 10.0).floor() as u32).max(1),
            local: Mutex::new(Local {
                client: None,
                tokens: 0,
            }),
        })
    }

    /// Waits until one request may leave.
    pub(crate) async fn acquire(&self) -> Result<(), BudgetError> {
        let mut local = self.local.lock().await;
        if local.tokens == 0 {
            let owed = match self.take(&mut local).await {
                Ok(owed) => owed,
                Err(e) => {
                    // A broken connection is made again on the next call.
                    local.client = None;
                    return Err(e);
                }
            };
            if owed > 0.0 {
                let wait = Duration::try_from_secs_f64(owed / self.rate).map_err(|_| {
                    BudgetError(format!(
                        "{} says {owed} tokens are owed at {} a second: not a wait this process can make; delete the bucket's row to start it again",
                        self.table, self.rate
                    ))
                })?;
                // Holding the lock: this process's other requests wait behind this one.
                tokio::time::sleep(wait).await;
            }
            local.tokens = self.batch;
        }
        local.tokens -= 1;
        Ok(())
    }

    /// Takes a batch from the bucket; the tokens owed (the bucket's debt after the take).
    async fn take(&self, local: &mut Local) -> Result<f64, BudgetError> {
        if local.client.is_none() {
            local.client = Some(self.connect().await?);
        }
        let Some(client) = local.client.as_ref() else {
            return Err(BudgetError("no connection".to_owned()));
        };
        let sql = format!(
            "INSERT INTO {t} AS b (key, tokens, refilled_at)
             VALUES ($1::text, $2::float8 - $3::float8, clock_timestamp())
             ON CONFLICT (key) DO UPDATE SET
                 tokens = least($2::float8, b.tokens
                     + extract(epoch FROM clock_timestamp() - b.refilled_at)::float8 * $4::float8)
                     - $3::float8,
                 refilled_at = clock_timestamp()
             RETURNING tokens",
            t = self.table
        );
        let batch = f64::from(self.batch);
        let row = client
            .query_one(&sql, &[&self.key, &batch, &batch, &self.rate])
            .await
            .map_err(|e| {
                BudgetError(format!(
                    "taking from {}: {}",
                    self.table,
                    pg_connect::error_text(&e)
                ))
            })?;
        let tokens: f64 = row.try_get(0).map_err(|e| {
            BudgetError(format!(
                "{}: its tokens column is not double precision ({e}); drop the table to have it made again",
                self.table
            ))
        })?;
        Ok((-tokens).max(0.0))
    }

    async fn connect(&self) -> Result<tokio_postgres::Client, BudgetError> {
        let client = pg_connect::connect(&self.url, None, "stripe-sync source-stripe rate limit")
            .await
            .map_err(|(_, why)| {
                BudgetError(format!(
                    "cannot connect to {}: {why}",
                    pg_connect::describe_target(&self.url)
                ))
            })?;
        let schema = self
            .table
            .rsplit_once('.')
            .map(|(s, _)| format!("CREATE SCHEMA IF NOT EXISTS {s};"))
            .unwrap_or_default();
        // Serialised: concurrent CREATE … IF NOT EXISTS can still collide.
        let ddl = format!(
            "BEGIN; SELECT pg_advisory_xact_lock(hashtext('stripe-sync rate buckets'));
             {schema}
             CREATE TABLE IF NOT EXISTS {t} (key text PRIMARY KEY, tokens float8 NOT NULL,
                 refilled_at timestamptz NOT NULL);
             COMMIT;",
            t = self.table
        );
        client.batch_execute(&ddl).await.map_err(|e| {
            BudgetError(format!(
                "creating {}: {}",
                self.table,
                pg_connect::error_text(&e)
            ))
        })?;
        Ok(client)
    }
}

fn quote(name: &str) -> String {
    pg_tables::ident::quote(name)
}

/// The bucket key for an account: a digest of the API key and the connected account, so that
/// every process syncing the same account meets in one bucket without the key being stored.
pub fn budget_key(api_key: &str, account_id: Option<&str>) -> String {
    use sha2::{Digest, Sha256};
    let mut digest = Sha256::new();
    digest.update(api_key.as_bytes());
    digest.update(b"\0");
    digest.update(account_id.unwrap_or("").as_bytes());
    let mode = stripe_catalog::KeyMode::of(api_key).name();
    format!("{mode}:{}", &hex::encode(digest.finalize())[..24])
}

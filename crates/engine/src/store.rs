//! Where committed checkpoints live: a `_sync_state` table in the destination database
//! (default, when the destination is Postgres) or a JSON file.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow};
use serde_json::Value;
use sync_protocol::{SourceStateSet, SyncRun, SyncState};
use tokio::sync::Mutex;

const GLOBAL_KEY: &str = "_global";
const RUN_KEY: &str = "_sync_run";

pub enum StateStore {
    File(PathBuf),
    Postgres(Box<PostgresStore>),
}

pub struct PostgresStore {
    url: String,
    ca_pem: Option<String>,
    schema: String,
    sync_id: String,
    client: Mutex<Option<tokio_postgres::Client>>,
    saved: Mutex<BTreeMap<String, Value>>,
}

impl StateStore {
    pub fn postgres(
        url: String,
        ca_pem: Option<String>,
        schema: String,
        sync_id: String,
    ) -> StateStore {
        StateStore::Postgres(Box::new(PostgresStore {
            url,
            ca_pem,
            schema,
            sync_id,
            client: Mutex::new(None),
            saved: Mutex::new(BTreeMap::new()),
        }))
    }

    /// Where the state is, for the summary (no secrets).
    pub fn describe(&self) -> String {
        match self {
            StateStore::File(path) => format!("file {}", path.display()),
            StateStore::Postgres(p) => {
                format!(
                    "table {}._sync_state (sync_id {:?}) at {}",
                    pg_connect::quote_ident(&p.schema),
                    p.sync_id,
                    pg_connect::describe_target(&p.url)
                )
            }
        }
    }

    pub async fn load(&self) -> Result<Option<SyncState>> {
        match self {
            StateStore::File(path) => match std::fs::read_to_string(path) {
                Ok(text) => Ok(Some(serde_json::from_str(&text).with_context(|| {
                    format!("the state file {} is not a sync state", path.display())
                })?)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(anyhow!(
                    "cannot read the state file {}: {e}",
                    path.display()
                )),
            },
            StateStore::Postgres(p) => p.load().await,
        }
    }

    pub async fn reset(&self) -> Result<()> {
        match self {
            StateStore::File(path) => match std::fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(anyhow!(
                    "cannot remove the state file {}: {e}",
                    path.display()
                )),
                _ => Ok(()),
            },
            StateStore::Postgres(p) => p.reset().await,
        }
    }

    /// Saves a whole snapshot (atomically for a file; only the changed rows for Postgres).
    pub async fn save(&self, state: &SyncState) -> Result<()> {
        match self {
            StateStore::File(path) => {
                let tmp = path.with_extension("tmp");
                let text = serde_json::to_vec_pretty(state)?;
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("cannot create {}", dir.display()))?;
                }
                std::fs::write(&tmp, text)
                    .with_context(|| format!("cannot write {}", tmp.display()))?;
                std::fs::rename(&tmp, path)
                    .with_context(|| format!("cannot replace {}", path.display()))
            }
            StateStore::Postgres(p) => p.save(state).await,
        }
    }
}

impl PostgresStore {
    fn table(&self) -> String {
        format!("{}._sync_state", pg_connect::quote_ident(&self.schema))
    }

    async fn with_client<T>(
        &self,
        f: impl AsyncFnOnce(&tokio_postgres::Client) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T> {
        let mut guard = self.client.lock().await;
        if guard.as_ref().is_none_or(|c| c.is_closed()) {
            let client = pg_connect::connect(&self.url, self.ca_pem.as_deref())
                .await
                .map_err(|(_, message)| anyhow!("state store: {message}"))?;
            let ddl = format!(
                "CREATE SCHEMA IF NOT EXISTS {schema}; CREATE TABLE IF NOT EXISTS {table} (sync_id text NOT NULL, stream text NOT NULL, state jsonb NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (sync_id, stream))",
                schema = pg_connect::quote_ident(&self.schema),
                table = self.table()
            );
            client.batch_execute(&ddl).await.map_err(|e| {
                anyhow!(
                    "state store: creating {}: {}",
                    self.table(),
                    pg_connect::error_text(&e)
                )
            })?;
            *guard = Some(client);
        }
        let client = guard.as_ref().context("state store connection")?;
        f(client).await.map_err(|e| {
            anyhow!(
                "state store ({}): {}",
                self.table(),
                pg_connect::error_text(&e)
            )
        })
    }

    async fn load(&self) -> Result<Option<SyncState>> {
        let sql = format!(
            "SELECT stream, state FROM {} WHERE sync_id = $1",
            self.table()
        );
        let rows = self
            .with_client(async |c| c.query(&sql, &[&self.sync_id]).await)
            .await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut state = SyncState {
            source: SourceStateSet::default(),
            ..Default::default()
        };
        let mut saved = self.saved.lock().await;
        for row in rows {
            let (stream, value): (String, Value) = (row.get(0), row.get(1));
            saved.insert(stream.clone(), value.clone());
            match stream.as_str() {
                GLOBAL_KEY => state.source.global = value,
                RUN_KEY => {
                    state.sync_run = serde_json::from_value::<SyncRun>(value).unwrap_or_default()
                }
                _ => {
                    state.source.streams.insert(stream, value);
                }
            }
        }
        Ok(Some(state))
    }

    async fn reset(&self) -> Result<()> {
        let sql = format!("DELETE FROM {} WHERE sync_id = $1", self.table());
        self.with_client(async |c| c.execute(&sql, &[&self.sync_id]).await)
            .await?;
        self.saved.lock().await.clear();
        Ok(())
    }

    async fn save(&self, state: &SyncState) -> Result<()> {
        let mut rows: Vec<(String, Value)> = state
            .source
            .streams
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !(state.source.global.is_null()
            || state
                .source
                .global
                .as_object()
                .is_some_and(|g| g.is_empty()))
        {
            rows.push((GLOBAL_KEY.to_owned(), state.source.global.clone()));
        }
        let mut saved = self.saved.lock().await;
        let changed: Vec<(String, Value)> = rows
            .into_iter()
            .filter(|(k, v)| saved.get(k) != Some(v))
            .collect();
        if changed.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "INSERT INTO {} (sync_id, stream, state, updated_at) SELECT $1, key, value, now() FROM jsonb_each($2) \
             ON CONFLICT (sync_id, stream) DO UPDATE SET state = EXCLUDED.state, updated_at = EXCLUDED.updated_at",
            self.table()
        );
        let batch: serde_json::Map<String, Value> = changed.iter().cloned().collect();
        let batch = tokio_postgres::types::Json(Value::Object(batch));
        self.with_client(async |c| c.execute(&sql, &[&self.sync_id, &batch]).await)
            .await?;
        for (k, v) in changed {
            saved.insert(k, v);
        }
        Ok(())
    }
}

//! The state in a `_sync_state` table of the destination database: one row per stream state,
//! plus the global state, the run's bookkeeping, the owner and the config updates under
//! reserved keys. The table is created under an advisory lock (two first runs at once are
//! safe), and a session advisory lock per sync id keeps a second run out.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Map, Value};
use sync_protocol::{Role, SourceStateSet, SyncRun, SyncState};
use tokio::sync::Mutex;

use super::{ControlUpdates, Loaded, Owner};
use crate::builtin::PostgresStateLocation;

const GLOBAL_KEY: &str = "_global";
const RUN_KEY: &str = "_sync_run";
const OWNER_KEY: &str = "_owner";
const CONTROL_KEY: &str = "_control";
const DESTINATION_KEY: &str = "_destination";
/// First key of the two-part advisory lock that marks a running sync.
const RUN_LOCK_CLASS: i32 = 0x5359_4e43; // "SYNC"

pub(crate) struct PostgresStore {
    location: PostgresStateLocation,
    owner: Owner,
    client: Mutex<Option<tokio_postgres::Client>>,
    /// Whether this store holds the run lock (taken again on a new connection).
    locked: AtomicBool,
    saved: Mutex<BTreeMap<String, Value>>,
    saved_any: AtomicBool,
}

impl PostgresStore {
    pub(crate) fn new(location: PostgresStateLocation, owner: Owner) -> PostgresStore {
        PostgresStore {
            location,
            owner,
            client: Mutex::new(None),
            locked: AtomicBool::new(false),
            saved: Mutex::new(BTreeMap::new()),
            saved_any: AtomicBool::new(false),
        }
    }

    pub(crate) fn owner(&self) -> &Owner {
        &self.owner
    }

    pub(crate) fn describe(&self) -> String {
        format!(
            "table {}._sync_state (sync_id {:?}) at {}",
            pg_tables::ident::quote(&self.location.schema),
            self.owner.sync_id,
            pg_connect::describe_target(&self.location.url)
        )
    }

    fn table(&self) -> String {
        format!(
            "{}._sync_state",
            pg_tables::ident::quote(&self.location.schema)
        )
    }

    /// A connection with the table in place (and the run lock, once taken).
    async fn connected(&self, guard: &mut Option<tokio_postgres::Client>) -> Result<()> {
        if guard.as_ref().is_some_and(|c| !c.is_closed()) {
            return Ok(());
        }
        let mut client = pg_connect::connect(
            &self.location.url,
            self.location.ca_pem.as_deref(),
            "stripe-sync engine state",
        )
        .await
        .map_err(|(_, message)| anyhow!("state store: {message}"))?;
        self.create_table(&mut client).await?;
        if self.locked.load(Ordering::SeqCst) && !self.try_lock(&client).await? {
            bail!(
                "state store: the connection was lost and another run of sync id {:?} started meanwhile",
                self.owner.sync_id
            );
        }
        *guard = Some(client);
        Ok(())
    }

    /// Creates the schema and table if missing, serialised with the destination's own setup.
    async fn create_table(&self, client: &mut tokio_postgres::Client) -> Result<()> {
        let schema = pg_tables::ident::quote(&self.location.schema);
        let lock = format!(
            "SELECT pg_advisory_xact_lock(hashtext('stripe-sync setup ' || {}))",
            pg_tables::ident::literal(&self.location.schema)
        );
        let ddl = format!(
            "CREATE SCHEMA IF NOT EXISTS {schema}; \
             CREATE TABLE IF NOT EXISTS {table} (sync_id text NOT NULL, stream text NOT NULL, state jsonb NOT NULL, \
             updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (sync_id, stream))",
            table = self.table()
        );
        let creating = async {
            let tx = client.transaction().await?;
            tx.batch_execute(&lock).await?;
            tx.batch_execute(&ddl).await?;
            tx.commit().await
        };
        creating.await.map_err(|e| {
            anyhow!(
                "state store: creating {}: {}",
                self.table(),
                pg_connect::error_text(&e)
            )
        })
    }

    async fn try_lock(&self, client: &tokio_postgres::Client) -> Result<bool> {
        let row = client
            .query_one(
                "SELECT pg_try_advisory_lock($1, hashtext($2))",
                &[&RUN_LOCK_CLASS, &self.owner.sync_id],
            )
            .await
            .map_err(|e| {
                anyhow!(
                    "state store: taking the run lock: {}",
                    pg_connect::error_text(&e)
                )
            })?;
        Ok(row.get(0))
    }

    pub(crate) async fn lock(&self) -> Result<()> {
        let mut guard = self.client.lock().await;
        self.connected(&mut guard).await?;
        let client = guard.as_ref().context("state store connection")?;
        if !self.try_lock(client).await? {
            bail!(
                "another sync-engine run of sync id {:?} is in progress on {}; wait for it to end, or stop it",
                self.owner.sync_id,
                pg_connect::describe_target(&self.location.url)
            );
        }
        self.locked.store(true, Ordering::SeqCst);
        Ok(())
    }

    async fn with_client<T>(
        &self,
        f: impl AsyncFnOnce(&tokio_postgres::Client) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T> {
        let mut guard = self.client.lock().await;
        self.connected(&mut guard).await?;
        let client = guard.as_ref().context("state store connection")?;
        f(client).await.map_err(|e| {
            anyhow!(
                "state store ({}): {}",
                self.table(),
                pg_connect::error_text(&e)
            )
        })
    }

    pub(crate) async fn load(&self) -> Result<Loaded> {
        let sql = format!(
            "SELECT stream, state FROM {} WHERE sync_id = $1",
            self.table()
        );
        let rows = self
            .with_client(async |c| c.query(&sql, &[&self.owner.sync_id]).await)
            .await?;
        if rows.is_empty() {
            return Ok(Loaded::default());
        }
        let mut state = SyncState {
            source: SourceStateSet::default(),
            ..Default::default()
        };
        let mut control = ControlUpdates::default();
        let mut owner: Option<Owner> = None;
        let mut saved = self.saved.lock().await;
        for row in rows {
            let (stream, value): (String, Value) = (row.get(0), row.get(1));
            saved.insert(stream.clone(), value.clone());
            match stream.as_str() {
                GLOBAL_KEY => state.source.global = value,
                RUN_KEY => {
                    state.sync_run = serde_json::from_value::<SyncRun>(value).unwrap_or_default()
                }
                OWNER_KEY => owner = serde_json::from_value(value).ok(),
                CONTROL_KEY => control = serde_json::from_value(value).unwrap_or_default(),
                DESTINATION_KEY => {
                    if let Value::Object(destination) = value {
                        state.destination = destination;
                    }
                }
                _ => {
                    state.source.streams.insert(stream, value);
                }
            }
        }
        match owner {
            Some(owner) => self.owner.check(&owner, &self.describe())?,
            None => bail!(
                "the state in {} does not say which sync it belongs to (an earlier version saved it); \
                 resuming it could skip data. Run with --reset to start over",
                self.describe()
            ),
        }
        Ok(Loaded {
            state: Some(state),
            control,
        })
    }

    pub(crate) async fn reset(&self) -> Result<()> {
        let sql = format!("DELETE FROM {} WHERE sync_id = $1", self.table());
        self.with_client(async |c| c.execute(&sql, &[&self.owner.sync_id]).await)
            .await?;
        self.saved.lock().await.clear();
        Ok(())
    }

    /// Removes this sync's rows, then the table when no other sync has any; returns the other
    /// syncs that have.
    pub(crate) async fn remove(&self) -> Result<Vec<String>> {
        self.reset().await?;
        let others = format!("SELECT DISTINCT sync_id FROM {} ORDER BY 1", self.table());
        let rows = self
            .with_client(async |c| c.query(&others, &[]).await)
            .await?;
        let others: Vec<String> = rows.iter().map(|row| row.get(0)).collect();
        if others.is_empty() {
            let sql = format!(
                "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM {t}) THEN DROP TABLE {t}; END IF; END $$",
                t = self.table()
            );
            self.with_client(async |c| c.batch_execute(&sql).await)
                .await?;
        }
        Ok(others)
    }

    /// Upserts the rows that changed since the last save, the owner with the first.
    async fn upsert(&self, mut rows: Vec<(String, Value)>) -> Result<()> {
        let mut saved = self.saved.lock().await;
        if !saved.contains_key(OWNER_KEY) {
            rows.push((OWNER_KEY.to_owned(), serde_json::to_value(&self.owner)?));
        }
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
        let batch: Map<String, Value> = changed.iter().cloned().collect();
        let batch = tokio_postgres::types::Json(Value::Object(batch));
        self.with_client(async |c| c.execute(&sql, &[&self.owner.sync_id, &batch]).await)
            .await?;
        for (k, v) in changed {
            saved.insert(k, v);
        }
        Ok(())
    }

    pub(crate) async fn save(&self, state: &SyncState) -> Result<()> {
        let mut rows: Vec<(String, Value)> = state
            .source
            .streams
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let global = &state.source.global;
        if !(global.is_null() || global.as_object().is_some_and(|g| g.is_empty())) {
            rows.push((GLOBAL_KEY.to_owned(), global.clone()));
        }
        if !state.destination.is_empty() {
            rows.push((
                DESTINATION_KEY.to_owned(),
                Value::Object(state.destination.clone()),
            ));
        }
        self.forget_streams_not_in(state).await?;
        self.upsert(rows).await?;
        self.saved_any.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Deletes the saved states of streams the state no longer has (a stream started over).
    async fn forget_streams_not_in(&self, state: &SyncState) -> Result<()> {
        let mut saved = self.saved.lock().await;
        let gone: Vec<String> = saved
            .keys()
            .filter(|k| !is_reserved(k) && !state.source.streams.contains_key(*k))
            .cloned()
            .collect();
        if gone.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "DELETE FROM {} WHERE sync_id = $1 AND stream = ANY($2)",
            self.table()
        );
        self.with_client(async |c| c.execute(&sql, &[&self.owner.sync_id, &gone]).await)
            .await?;
        for stream in gone {
            saved.remove(&stream);
        }
        Ok(())
    }

    pub(crate) async fn save_control(&self, side: Role, config: Map<String, Value>) -> Result<()> {
        let mut control: ControlUpdates = self
            .saved
            .lock()
            .await
            .get(CONTROL_KEY)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default();
        control.set(side, config);
        self.upsert(vec![(
            CONTROL_KEY.to_owned(),
            serde_json::to_value(control)?,
        )])
        .await
    }

    pub(crate) fn saved_anything(&self) -> bool {
        self.saved_any.load(Ordering::Relaxed)
    }
}

/// Keys of rows that are not a stream's state.
fn is_reserved(key: &str) -> bool {
    [GLOBAL_KEY, RUN_KEY, OWNER_KEY, CONTROL_KEY, DESTINATION_KEY].contains(&key)
}

//! The control database (schema `sync_service`): pipelines, their fenced checkpoints, runs and
//! the webhook inbox. Every query of the service goes through here.

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use serde_json::Value;
use sync_protocol::SyncState;

use crate::pipeline::{Desired, Pipeline, Status};

/// Versioned migrations, applied in order, each once.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("../migrations/0001_control.sql")),
    (
        2,
        include_str!("../migrations/0002_inbox_applied_index.sql"),
    ),
    (3, include_str!("../migrations/0003_run_progress.sql")),
    (4, include_str!("../migrations/0004_account_waiters.sql")),
    (5, include_str!("../migrations/0005_checkpoint_owner.sql")),
    (6, include_str!("../migrations/0006_live_lane_failure.sql")),
    (7, include_str!("../migrations/0007_step_requests.sql")),
];

pub use crate::control_error::ControlError;

/// A claim on a pipeline's checkpoint: the state to resume from and the fence saves carry.
#[derive(Debug, Clone)]
pub struct Claim {
    /// The checkpoint to resume from.
    pub state: SyncState,
    /// The fence every save of this claim carries.
    pub fence: i64,
    /// What the checkpoint was written for; `None`: not known yet.
    pub owner: Option<crate::checkpoint_owner::Owner>,
}

/// The control database.
#[derive(Clone)]
pub struct Control {
    pub(crate) pool: Pool,
}

impl Control {
    /// A pool on `url` (a libpq URL; its TLS parameters are honoured).
    pub fn connect(url: &str) -> Result<Control, ControlError> {
        let target = pg_connect::parse_url(url)
            .map_err(ControlError::Database)?
            .named("stripe-sync sync-service");
        let tls = pg_connect::tls_connector(&target, None).map_err(ControlError::Database)?;
        let manager = Manager::from_config(
            target.pg,
            tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(8)
            .build()
            .map_err(|e| ControlError::Database(e.to_string()))?;
        Ok(Control { pool })
    }

    /// Whether the database answers (a connection and `SELECT 1`).
    pub async fn ping(&self) -> Result<(), ControlError> {
        let client = self.pool.get().await?;
        client.execute("SELECT 1", &[]).await?;
        Ok(())
    }

    /// Takes the step lock of an account for a pipeline when it is free and the pipeline's
    /// turn (see `account_lock`).
    pub async fn take_account_turn(
        &self,
        key: &str,
        pipeline: &str,
    ) -> Result<Option<crate::account_lock::AccountLock>, ControlError> {
        crate::account_lock::take_turn(&self.pool, key, pipeline).await
    }

    /// Applies the migrations not applied yet; returns how many it applied. Concurrent callers
    /// wait for each other (an advisory lock).
    pub async fn migrate(&self) -> Result<usize, ControlError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.batch_execute(
            "SELECT pg_advisory_xact_lock(hashtext('sync_service.migrate'));
             CREATE SCHEMA IF NOT EXISTS sync_service;
             CREATE TABLE IF NOT EXISTS sync_service.migrations (
                 version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());",
        )
        .await?;
        let mut applied = 0;
        for (version, sql) in MIGRATIONS {
            let done = tx
                .query_opt(
                    "SELECT 1 FROM sync_service.migrations WHERE version = $1",
                    &[version],
                )
                .await?
                .is_some();
            if done {
                continue;
            }
            tx.batch_execute(sql).await?;
            tx.execute(
                "INSERT INTO sync_service.migrations (version) VALUES ($1)",
                &[version],
            )
            .await?;
            applied += 1;
        }
        tx.commit().await?;
        Ok(applied)
    }

    /// Stores a new pipeline and its empty checkpoint.
    pub async fn create(&self, p: &Pipeline) -> Result<(), ControlError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let inserted = tx
            .execute(
                "INSERT INTO sync_service.pipelines (id, source, destination, streams)
                 VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
                &[&p.id, &p.source, &p.destination, &p.streams],
            )
            .await?;
        if inserted == 0 {
            return Err(ControlError::Exists(p.id.clone()));
        }
        tx.execute(
            "INSERT INTO sync_service.pipeline_state (pipeline_id) VALUES ($1)",
            &[&p.id],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// One pipeline, as stored (secrets included: redact before showing it).
    pub async fn get(&self, id: &str) -> Result<Pipeline, ControlError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(&format!("{SELECT_PIPELINE} WHERE id = $1"), &[&id])
            .await?
            .ok_or_else(|| ControlError::NotFound(id.to_owned()))?;
        Ok(pipeline_of(&row))
    }

    /// Every pipeline, oldest first.
    pub async fn list(&self) -> Result<Vec<Pipeline>, ControlError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(&format!("{SELECT_PIPELINE} ORDER BY created_at, id"), &[])
            .await?;
        Ok(rows.iter().map(pipeline_of).collect())
    }

    /// Replaces a pipeline's configs and desired status.
    pub async fn update(&self, p: &Pipeline) -> Result<(), ControlError> {
        let client = self.pool.get().await?;
        let n = write_pipeline(&**client, p).await?;
        if n == 0 {
            return Err(ControlError::NotFound(p.id.clone()));
        }
        Ok(())
    }

    /// Merges a connector's config update (a `control` message: the secret of a webhook
    /// endpoint `setup` just made, say) into the stored config of that side, key by key.
    pub async fn merge_config(
        &self,
        id: &str,
        update: &sync_protocol::Control,
    ) -> Result<(), ControlError> {
        let (column, update) = match update {
            sync_protocol::Control::SourceConfig(u) => ("source", u),
            sync_protocol::Control::DestinationConfig(u) => ("destination", u),
            // Not config: the step applies it to the checkpoint.
            sync_protocol::Control::DestinationTables(_) => return Ok(()),
        };
        let client = self.pool.get().await?;
        let sql = format!(
            "UPDATE sync_service.pipelines
             SET {column} = jsonb_set({column}, '{{config}}',
                 coalesce({column}->'config', '{{}}'::jsonb) || $2::jsonb),
                 updated_at = now()
             WHERE id = $1"
        );
        client.execute(&sql, &[&id, update]).await?;
        Ok(())
    }

    /// Records what a pipeline is doing, and why when it failed.
    pub async fn set_status(
        &self,
        id: &str,
        status: Status,
        failure: Option<(&str, &str)>,
    ) -> Result<(), ControlError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE sync_service.pipelines
                 SET status = $2, failure_type = $3, error = $4, updated_at = now()
                 WHERE id = $1",
                &[
                    &id,
                    &status.as_str(),
                    &failure.map(|f| f.0),
                    &failure.map(|f| f.1),
                ],
            )
            .await?;
        Ok(())
    }

    /// Forgets a pipeline (after its teardown): its checkpoint, runs and inbox go with it.
    pub async fn remove(&self, id: &str) -> Result<(), ControlError> {
        let client = self.pool.get().await?;
        client
            .execute("DELETE FROM sync_service.pipelines WHERE id = $1", &[&id])
            .await?;
        Ok(())
    }

    /// Claims a pipeline's checkpoint: every earlier claimant is fenced off from saving.
    pub async fn claim(&self, id: &str) -> Result<Claim, ControlError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "UPDATE sync_service.pipeline_state SET fence = fence + 1
                 WHERE pipeline_id = $1 RETURNING state, fence, owner",
                &[&id],
            )
            .await?
            .ok_or_else(|| ControlError::NotFound(id.to_owned()))?;
        let state: Value = row.get(0);
        let state = serde_json::from_value(state).map_err(|e| {
            ControlError::Database(format!(
                "pipeline {id:?}: the stored checkpoint is unreadable: {e}"
            ))
        })?;
        let owner: Option<Value> = row.get(2);
        Ok(Claim {
            state,
            fence: row.get(1),
            // One this version cannot read is as good as unknown: the step records its own.
            owner: owner.and_then(|o| serde_json::from_value(o).ok()),
        })
    }

    /// The checkpoint as saved, without claiming it (for runs that save none).
    pub async fn current_state(&self, id: &str) -> Result<SyncState, ControlError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT state FROM sync_service.pipeline_state WHERE pipeline_id = $1",
                &[&id],
            )
            .await?
            .ok_or_else(|| ControlError::NotFound(id.to_owned()))?;
        serde_json::from_value(row.get(0)).map_err(|e| {
            ControlError::Database(format!(
                "pipeline {id:?}: the stored checkpoint is unreadable: {e}"
            ))
        })
    }

    /// The checkpoint as shown: `{"state", "saved_at", "saves", "written_for", "reset"}`.
    pub async fn checkpoint(&self, id: &str) -> Result<Value, ControlError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT json_build_object('state', state, 'saved_at', updated_at, 'saves', saves,
                        'written_for', owner,
                        'reset', CASE WHEN reset_at IS NOT NULL THEN
                            json_build_object('at', reset_at, 'reason', reset_reason) END)
                 FROM sync_service.pipeline_state WHERE pipeline_id = $1",
                &[&id],
            )
            .await?
            .ok_or_else(|| ControlError::NotFound(id.to_owned()))?;
        Ok(row.get(0))
    }

    /// Saves a committed checkpoint, unless a newer claim exists.
    pub async fn save_state(
        &self,
        id: &str,
        fence: i64,
        state: &SyncState,
    ) -> Result<(), ControlError> {
        let client = self.pool.get().await?;
        let state = serde_json::to_value(state)
            .map_err(|e| ControlError::Database(format!("checkpoint to JSON: {e}")))?;
        let n = client
            .execute(
                "UPDATE sync_service.pipeline_state
                 SET state = $3, saves = saves + 1, updated_at = now()
                 WHERE pipeline_id = $1 AND fence = $2",
                &[&id, &fence, &state],
            )
            .await?;
        if n == 0 {
            return Err(ControlError::Fenced(id.to_owned()));
        }
        Ok(())
    }

    /// Opens a run of a claim; returns its id.
    pub async fn start_run(&self, id: &str, fence: i64) -> Result<i64, ControlError> {
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                "INSERT INTO sync_service.runs (pipeline_id, fence) VALUES ($1, $2) RETURNING id",
                &[&id, &fence],
            )
            .await?;
        Ok(row.get(0))
    }

    /// Closes a run.
    pub async fn end_run(
        &self,
        run: i64,
        status: &str,
        has_more: bool,
        states: i64,
        error: Option<&str>,
    ) -> Result<(), ControlError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE sync_service.runs
                 SET ended_at = now(), status = $2, has_more = $3, states = $4, error = $5
                 WHERE id = $1",
                &[&run, &status, &has_more, &states, &error],
            )
            .await?;
        Ok(())
    }

    /// A pipeline's runs, newest first.
    pub async fn runs(&self, id: &str, limit: i64) -> Result<Vec<Value>, ControlError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT json_build_object('id', id, 'fence', fence, 'started_at', started_at,
                        'ended_at', ended_at, 'status', status, 'has_more', has_more,
                        'states', states, 'error', error)
                 FROM sync_service.runs WHERE pipeline_id = $1 ORDER BY id DESC LIMIT $2",
                &[&id, &limit],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }
}

impl Control {
    /// Keeps a webhook event durably; false when it was kept already (a duplicate delivery).
    pub async fn inbox_insert(
        &self,
        id: &str,
        event_id: &str,
        payload: &Value,
    ) -> Result<bool, ControlError> {
        let client = self.pool.get().await?;
        let n = client
            .execute(
                "INSERT INTO sync_service.webhook_inbox (pipeline_id, event_id, payload)
                 VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                &[&id, &event_id, payload],
            )
            .await?;
        Ok(n == 1)
    }

    /// Up to `limit` events not applied yet, oldest first: their ids and sizes (as Postgres
    /// prints them, never shorter than their compact JSON), without reading the events.
    pub async fn inbox_sizes(
        &self,
        id: &str,
        limit: i64,
    ) -> Result<Vec<(String, i64)>, ControlError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT event_id, octet_length(payload::text)::bigint
                 FROM sync_service.webhook_inbox
                 WHERE pipeline_id = $1 AND applied_at IS NULL
                 ORDER BY received_at, event_id LIMIT $2",
                &[&id, &limit],
            )
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// The events of these ids not applied yet, oldest first.
    pub async fn inbox_events(
        &self,
        id: &str,
        event_ids: &[String],
    ) -> Result<Vec<(String, Value)>, ControlError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT event_id, payload FROM sync_service.webhook_inbox
                 WHERE pipeline_id = $1 AND event_id = ANY($2) AND applied_at IS NULL
                 ORDER BY received_at, event_id",
                &[&id, &event_ids],
            )
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Records why the live lane cannot apply webhook events (`None`: it applies them again).
    pub async fn set_live_failure(
        &self,
        id: &str,
        failure: Option<(&str, &str)>,
    ) -> Result<(), ControlError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE sync_service.pipelines SET live_failure_type = $2, live_error = $3
                 WHERE id = $1 AND live_error IS DISTINCT FROM $3",
                &[&id, &failure.map(|f| f.0), &failure.map(|f| f.1)],
            )
            .await?;
        Ok(())
    }

    /// Marks events applied, and forgets the pipeline's events applied more than a week ago.
    pub async fn inbox_applied(&self, id: &str, event_ids: &[String]) -> Result<(), ControlError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE sync_service.webhook_inbox SET applied_at = now()
                 WHERE pipeline_id = $1 AND event_id = ANY($2)",
                &[&id, &event_ids],
            )
            .await?;
        // Kept a week after they were applied: long enough to recognise Stripe's redeliveries
        // (it retries for three days), short enough to bound the table.
        client
            .execute(
                "DELETE FROM sync_service.webhook_inbox
                 WHERE pipeline_id = $1 AND applied_at < now() - interval '7 days'",
                &[&id],
            )
            .await?;
        Ok(())
    }
}

/// Replaces a pipeline's configs and desired status, on a connection or in a transaction;
/// returns how many rows changed.
pub(crate) async fn write_pipeline(
    client: &impl tokio_postgres::GenericClient,
    p: &Pipeline,
) -> Result<u64, ControlError> {
    let desired = p.desired.as_str();
    Ok(client
        .execute(
            "UPDATE sync_service.pipelines
             SET source = $2, destination = $3, streams = $4, desired_status = $5,
                 updated_at = now()
             WHERE id = $1",
            &[&p.id, &p.source, &p.destination, &p.streams, &desired],
        )
        .await?)
}

const SELECT_PIPELINE: &str = "SELECT id, source, destination, streams, desired_status, status,
    failure_type, error, live_failure_type, live_error FROM sync_service.pipelines";

fn pipeline_of(row: &tokio_postgres::Row) -> Pipeline {
    let desired: String = row.get(4);
    let status: String = row.get(5);
    let id: String = row.get(0);
    // A value this version does not know (a hand edit) never makes a pipeline run.
    let desired = Desired::parse(&desired).unwrap_or_else(|| {
        tracing::warn!(
            "pipeline {id:?}: desired_status {desired:?} is not active, paused or deleted; taken as paused"
        );
        Desired::Paused
    });
    Pipeline {
        id,
        source: row.get(1),
        destination: row.get(2),
        streams: row.get(3),
        desired,
        status: Status::parse(&status).unwrap_or(Status::Error),
        failure_type: row.get(6),
        error: row.get(7),
        live_failure_type: row.get(8),
        live_error: row.get(9),
    }
}

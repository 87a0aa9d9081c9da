//! Steps asked for through the API, and the messages of the runs serving them (table
//! `step_requests` and `run_messages` of the control database). The API asks; the next step of
//! the workflow takes the request, runs with its settings and records its messages; the API
//! streams them to the caller.

use serde_json::Value;

use crate::control::{Control, ControlError};
use crate::pipeline::{Desired, Status};

/// What a caller asked of the step that serves it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepAsk {
    /// The run's hard time limit in seconds (its graceful one is 0.8 of it).
    pub time_limit: Option<f64>,
    /// Stop gracefully after this many committed states.
    pub state_limit: Option<i64>,
    /// The caller's name for the run.
    pub run_name: Option<String>,
    /// Start from no checkpoint (the result is saved as the pipeline's checkpoint).
    pub reset_state: bool,
}

/// Where a request stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Asked {
    /// No step has taken it yet.
    Waiting,
    /// This run serves it.
    Taken(i64),
    /// The pipeline is gone, or to be deleted.
    Deleted,
    /// The pipeline was paused before a step took it.
    Paused,
    /// A step after the request failed before it could take it; the pipeline's error.
    Failed(String),
}

/// Messages of runs that ended this long ago are forgotten (a caller reads them as they come).
const KEEP_MESSAGES: &str = "1 hour";

impl Control {
    /// Stores a request for a step; its id.
    pub async fn ask_step(&self, pipeline: &str, ask: &StepAsk) -> Result<i64, ControlError> {
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                "INSERT INTO sync_service.step_requests
                     (pipeline_id, time_limit, state_limit, run_name, reset_state)
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
                &[
                    &pipeline,
                    &ask.time_limit,
                    &ask.state_limit,
                    &ask.run_name,
                    &ask.reset_state,
                ],
            )
            .await?;
        Ok(row.get(0))
    }

    /// Takes the pipeline's oldest request not taken yet for `run`, and forgets the messages of
    /// runs that ended long ago.
    pub async fn take_step_request(
        &self,
        pipeline: &str,
        run: i64,
    ) -> Result<Option<StepAsk>, ControlError> {
        let client = self.pool.get().await?;
        client
            .execute(
                &format!(
                    "DELETE FROM sync_service.run_messages WHERE run_id IN (
                         SELECT id FROM sync_service.runs WHERE pipeline_id = $1
                         AND ended_at < now() - interval '{KEEP_MESSAGES}')"
                ),
                &[&pipeline],
            )
            .await?;
        let row = client
            .query_opt(
                "UPDATE sync_service.step_requests SET run = $2
                 WHERE id = (SELECT id FROM sync_service.step_requests
                             WHERE pipeline_id = $1 AND run IS NULL
                             ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
                 RETURNING time_limit, state_limit, run_name, reset_state",
                &[&pipeline, &run],
            )
            .await?;
        Ok(row.map(|r| StepAsk {
            time_limit: r.get(0),
            state_limit: r.get(1),
            run_name: r.get(2),
            reset_state: r.get(3),
        }))
    }

    /// Whether requests wait that no step has taken.
    pub async fn steps_asked(&self, pipeline: &str) -> Result<bool, ControlError> {
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM sync_service.step_requests
                                WHERE pipeline_id = $1 AND run IS NULL)",
                &[&pipeline],
            )
            .await?;
        Ok(row.get(0))
    }

    /// Where a request stands.
    pub async fn asked(&self, request: i64) -> Result<Asked, ControlError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT r.run, p.desired_status, p.status, p.error, p.updated_at >= r.requested_at
                 FROM sync_service.step_requests r
                 JOIN sync_service.pipelines p ON p.id = r.pipeline_id
                 WHERE r.id = $1",
                &[&request],
            )
            .await?;
        let Some(row) = row else {
            return Ok(Asked::Deleted);
        };
        if let Some(run) = row.get::<_, Option<i64>>(0) {
            return Ok(Asked::Taken(run));
        }
        let desired: String = row.get(1);
        let status: String = row.get(2);
        let error: Option<String> = row.get(3);
        let since: bool = row.get(4);
        Ok(match Desired::parse(&desired) {
            Some(Desired::Deleted) => Asked::Deleted,
            Some(Desired::Paused) | None => Asked::Paused,
            Some(Desired::Active) if since && Status::parse(&status) == Some(Status::Error) => {
                Asked::Failed(error.unwrap_or_default())
            }
            Some(Desired::Active) => Asked::Waiting,
        })
    }

    /// Records a message of a run serving a request.
    pub async fn record_message(
        &self,
        run: i64,
        seq: i32,
        message: &Value,
    ) -> Result<(), ControlError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "INSERT INTO sync_service.run_messages (run_id, seq, message) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
                &[&run, &seq, message],
            )
            .await?;
        Ok(())
    }

    /// A run's recorded messages after `seq`, in order, at most `limit`.
    pub async fn run_messages(
        &self,
        run: i64,
        after: i32,
        limit: i64,
    ) -> Result<Vec<(i32, Value)>, ControlError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT seq, message FROM sync_service.run_messages
                 WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                &[&run, &after, &limit],
            )
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// One run as `/runs` shows it, with the pipeline's failure type; `None` when it is gone.
    pub async fn run(&self, run: i64) -> Result<Option<(Value, Option<String>)>, ControlError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT json_build_object('id', r.id, 'fence', r.fence,
                        'started_at', r.started_at, 'ended_at', r.ended_at, 'status', r.status,
                        'has_more', r.has_more, 'states', r.states, 'error', r.error),
                        p.failure_type
                 FROM sync_service.runs r JOIN sync_service.pipelines p ON p.id = r.pipeline_id
                 WHERE r.id = $1",
                &[&run],
            )
            .await?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }
}

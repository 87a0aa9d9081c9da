//! Run progress in the control database: each run's newest progress report, and per pipeline
//! the records committed over all runs, kept as running sums (what the console shows).

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sync_protocol::Progress;

use crate::control::{Control, ControlError};

/// The records a run has reported committed, so each report adds only what is new.
pub(crate) struct RunLedger {
    pipeline: String,
    run: i64,
    written: BTreeMap<String, u64>,
}

impl RunLedger {
    pub(crate) fn new(pipeline: &str, run: i64) -> RunLedger {
        RunLedger {
            pipeline: pipeline.to_owned(),
            run,
            written: BTreeMap::new(),
        }
    }

    /// Stores a progress report. A failure is logged, not raised: progress is for people to
    /// read; the run's checkpoints are what matter.
    pub(crate) async fn record(&mut self, control: &Control, progress: &Progress) {
        let mut added = serde_json::Map::new();
        let mut added_total = 0i64;
        let mut committed_total = 0i64;
        for (stream, p) in &progress.streams {
            committed_total += p.committed_count as i64;
            let before = self.written.get(stream).copied().unwrap_or(0);
            let delta = p.committed_count.saturating_sub(before) as i64;
            if delta > 0 {
                added.insert(stream.clone(), json!(delta));
                added_total += delta;
            }
        }
        let report = match serde_json::to_value(progress) {
            Ok(v) => v,
            Err(_) => return,
        };
        match control
            .record_progress(
                &self.pipeline,
                self.run,
                &report,
                committed_total,
                added_total,
                &Value::Object(added),
            )
            .await
        {
            Ok(()) => {
                for (stream, p) in &progress.streams {
                    let seen = self.written.entry(stream.clone()).or_default();
                    *seen = (*seen).max(p.committed_count);
                }
            }
            Err(e) => {
                tracing::warn!(pipeline = %self.pipeline, run = self.run, "progress not stored: {e}")
            }
        }
    }
}

impl Control {
    /// A run's newest progress report, and what it added to its pipeline's sums.
    async fn record_progress(
        &self,
        pipeline: &str,
        run: i64,
        report: &Value,
        committed: i64,
        added: i64,
        added_per_stream: &Value,
    ) -> Result<(), ControlError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "UPDATE sync_service.runs SET progress = $2, records = $3 WHERE id = $1",
            &[&run, report, &committed],
        )
        .await?;
        if added > 0 {
            tx.execute(
                "UPDATE sync_service.pipeline_state ps
                 SET records = records + $2,
                     stream_records = ps.stream_records || (
                        SELECT coalesce(jsonb_object_agg(d.key,
                                   coalesce((ps.stream_records ->> d.key)::bigint, 0) + d.value::bigint), '{}')
                        FROM jsonb_each_text($3::jsonb) d)
                 WHERE pipeline_id = $1",
                &[&pipeline, &added, added_per_stream],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every pipeline with its sums and the age of its newest checkpoint, oldest first.
    pub(crate) async fn console_rows(&self) -> Result<Vec<tokio_postgres::Row>, ControlError> {
        let client = self.pool.get().await?;
        Ok(client
            .query(
                // As Pipeline::condition shows them: a failing live lane turns ready to error.
                "SELECT p.id,
                        CASE WHEN live.failing THEN 'error' ELSE p.status END,
                        p.desired_status,
                        CASE WHEN live.failing THEN p.live_failure_type ELSE p.failure_type END,
                        CASE WHEN live.failing THEN p.live_error ELSE p.error END,
                        coalesce(s.records, 0),
                        CASE WHEN s.saves > 0 THEN extract(epoch FROM now() - s.updated_at)::float8 END
                 FROM sync_service.pipelines p
                 CROSS JOIN LATERAL (SELECT p.live_error IS NOT NULL
                     AND p.status IN ('ready', 'backfilling') AS failing) live
                 LEFT JOIN sync_service.pipeline_state s ON s.pipeline_id = p.id
                 ORDER BY p.created_at, p.id",
                &[],
            )
            .await?)
    }

    /// One pipeline's sums: records, per stream, checkpoints, when the newest was saved.
    pub(crate) async fn console_sums(
        &self,
        id: &str,
    ) -> Result<Option<tokio_postgres::Row>, ControlError> {
        let client = self.pool.get().await?;
        Ok(client
            .query_opt(
                "SELECT records, stream_records, saves,
                        CASE WHEN saves > 0 THEN to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') END,
                        CASE WHEN saves > 0 THEN extract(epoch FROM now() - updated_at)::float8 END
                 FROM sync_service.pipeline_state WHERE pipeline_id = $1",
                &[&id],
            )
            .await?)
    }

    /// A pipeline's newest runs, with their progress, newest first.
    pub(crate) async fn console_runs(
        &self,
        id: &str,
        limit: i64,
    ) -> Result<Vec<tokio_postgres::Row>, ControlError> {
        let client = self.pool.get().await?;
        Ok(client
            .query(
                "SELECT id, to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
                        extract(epoch FROM ended_at - started_at)::float8, status, records, states,
                        error, progress
                 FROM sync_service.runs WHERE pipeline_id = $1 ORDER BY id DESC LIMIT $2",
                &[&id, &limit],
            )
            .await?)
    }
}

//! The activities: each runs the engine once for a pipeline, bounded in time, and keeps the
//! control database true (status, runs, the fenced checkpoint).

use std::sync::Arc;
use std::time::Duration;

/// A run applying webhook events stops after this long (they stay in the inbox).
const INBOX_TIME_LIMIT_SECS: f64 = 120.0;
/// Heartbeats while a step runs, well inside the workflow's 30 s heartbeat timeout.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
/// Heartbeats of the live lane, well inside its 10 s heartbeat timeout.
const LIVE_HEARTBEAT_EVERY: Duration = Duration::from_secs(2);

use serde::{Deserialize, Serialize};
use sync_engine_api::{Engine, EngineError, Messages, PipelineRequest, SyncRequest};
use sync_protocol::{FailureType, Message, RunStatus, Status as CheckStatus};
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

use crate::budget::{AccountBudget, AccountKeys};
use crate::control::{Control, ControlError};
use crate::inbox::{self, InboxBatch};
use crate::owner::Owner;
use crate::pipeline::{Desired, Pipeline, Status};
use crate::prepared::PreparedCatalogs;
use crate::progress::RunLedger;

/// How a step ended, for the workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StepOutcome {
    /// Cut short by its time limit: run another step at once.
    More,
    /// Everything read: wait for a signal or the reconcile timer.
    Ready,
    /// Failed; the status says why: wait for a signal or the retry timer.
    Failed,
    /// Stopped because the pipeline is to be paused or deleted: wait for that signal.
    Interrupted,
    /// Another pipeline of the same Stripe account is running a step: try again later.
    Busy,
}

/// One step of a pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRequest {
    /// The pipeline the step belongs to.
    pub pipeline_id: String,
    /// Read everything again (a reconcile's first step): the run starts from no checkpoint.
    pub from_scratch: bool,
}

pub use sync_engine_client::{AnyEngine, all_of, failures_in, failures_of};

/// What the worker's activities share (cheap to clone: one per task queue).
#[derive(Clone)]
pub struct PipelineActivities {
    /// The control database.
    pub control: Control,
    /// The engine that runs the steps.
    pub engine: Arc<AnyEngine>,
    /// A step's graceful time limit, in seconds.
    pub step_secs: f64,
    /// The per-account rate budget given to Stripe sources; `None`: each run on its own.
    pub budget: Option<AccountBudget>,
    /// Which account each key acts on (asked once per key).
    pub accounts: Arc<AccountKeys>,
    /// The catalog each pipeline's webhook batches run with, without discover or setup.
    pub catalogs: Arc<PreparedCatalogs>,
}

/// Why a step failed: who must act, and what to tell them.
struct Failure {
    kind: FailureType,
    message: String,
}

/// Who must act on a live-lane run that could not start: an engine that cannot be reached
/// or is busy comes back by itself.
fn live_failure_type(e: &EngineError) -> FailureType {
    match e {
        EngineError::Invalid(_) | EngineError::NotFound(_) => FailureType::ConfigError,
        EngineError::Busy(_) | EngineError::Internal(_) => FailureType::TransientError,
        EngineError::Connector(_) => FailureType::SystemError,
    }
}

/// A failure type's name as the API shows it (`config_error`, …).
pub fn failure_name(kind: FailureType) -> &'static str {
    match kind {
        FailureType::ConfigError => "config_error",
        FailureType::TransientError => "transient_error",
        FailureType::SystemError => "system_error",
    }
}

fn retryable(e: ControlError) -> ActivityError {
    ActivityError::from(anyhow::anyhow!("{e}"))
}

#[activities]
impl PipelineActivities {
    /// One bounded engine run from the pipeline's checkpoint; each committed checkpoint is
    /// saved, fenced, as it comes.
    #[activity(name = "sync_step")]
    pub async fn sync_step(
        self: Arc<Self>,
        ctx: ActivityContext,
        step: StepRequest,
    ) -> Result<StepOutcome, ActivityError> {
        let pipeline_id = step.pipeline_id;
        let pipeline = self.control.get(&pipeline_id).await.map_err(retryable)?;
        let request = match pipeline.request() {
            Ok(request) => request,
            Err(e) => {
                let failure = Failure {
                    kind: FailureType::ConfigError,
                    message: e.to_string(),
                };
                return self.failed(&pipeline_id, None, failure).await;
            }
        };
        let account = self.accounts.of(&request).await;
        let request = self.budgeted(request, account.as_deref());
        // Held until this step ends (dropped with it).
        let _account = match &account {
            Some(key) => match self.control.take_account_turn(key, &pipeline_id).await {
                Ok(Some(lock)) => Some(lock),
                Ok(None) => return Ok(StepOutcome::Busy),
                Err(e) => return Err(retryable(e)),
            },
            None => None,
        };
        let mut claim = self.control.claim(&pipeline_id).await.map_err(retryable)?;
        // A PATCH between the read above and the claim (which fenced off the old place's
        // steps): step again at once with what is stored now.
        let current = self.control.get(&pipeline_id).await.map_err(retryable)?;
        if (&current.source, &current.destination, &current.streams)
            != (&pipeline.source, &pipeline.destination, &pipeline.streams)
        {
            return Ok(StepOutcome::More);
        }
        let run = self
            .control
            .start_run(&pipeline_id, claim.fence)
            .await
            .map_err(retryable)?;
        // A caller of the API asked for this step (and reads its messages).
        let asked = self
            .control
            .take_step_request(&pipeline_id, run)
            .await
            .map_err(retryable)?;
        let reset = match self.own_checkpoint(&pipeline, &mut claim).await? {
            Ok(reset) => reset,
            Err(failure) => return self.failed(&pipeline_id, Some(run), failure).await,
        };
        if step.from_scratch || asked.as_ref().is_some_and(|a| a.reset_state) {
            // Saved at once (fenced): a reconcile interrupted before its first checkpoint
            // resumes as a reconcile instead of being dropped for the old checkpoint.
            claim.state = Default::default();
            self.control
                .save_state(&pipeline_id, claim.fence, &claim.state)
                .await
                .map_err(retryable)?;
        }
        if reset || pipeline.status != Status::Ready {
            self.control
                .set_status(&pipeline_id, Status::Backfilling, None)
                .await
                .map_err(retryable)?;
        }
        let sync = self.step_sync_request(&claim, asked.as_ref());
        let messages = match self.engine.sync(&request, sync).await {
            Ok(messages) => messages,
            Err(e) => {
                let failure = self.classify(&request, e).await;
                return self.failed(&pipeline_id, Some(run), failure).await;
            }
        };
        let recorder = asked.is_some().then(|| Recorder::new(&self.control, run));
        let step = StepRun {
            claim,
            run,
            recorder,
        };
        self.follow(&ctx, &pipeline, &request, step, messages).await
    }

    /// Applies a batch of the webhook events waiting in the inbox (push mode: nothing is
    /// listed; as many as fit one engine request), then marks them applied. A batch that cannot
    /// be applied is recorded as the live lane's failure, shown in the pipeline's status, until
    /// one is.
    #[activity(name = "apply_inbox")]
    pub async fn apply_inbox(
        self: Arc<Self>,
        ctx: ActivityContext,
        pipeline_id: String,
    ) -> Result<InboxBatch, ActivityError> {
        let id = pipeline_id.as_str();
        let pipeline = self.control.get(id).await.map_err(retryable)?;
        let request = match pipeline.request() {
            Ok(request) => request,
            Err(e) => {
                // Nothing to retry until the pipeline is updated; its steps fail the same way.
                self.live_failed(id, FailureType::ConfigError, &e.to_string())
                    .await?;
                return Ok(InboxBatch::default());
            }
        };
        let account = self.accounts.of(&request).await;
        let request = self.budgeted(request, account.as_deref());
        let prepared = self.catalogs.get(id, &request);
        let whole = prepared.is_none();
        let template = SyncRequest {
            state: self.control.current_state(id).await.map_err(retryable)?,
            time_limit: Some(INBOX_TIME_LIMIT_SECS),
            prepared,
            ..Default::default()
        };
        let batch = match inbox::next_batch(&self.control, id, &request, template).await {
            Ok(Some(batch)) => batch,
            Ok(None) => {
                self.control
                    .set_live_failure(id, None)
                    .await
                    .map_err(retryable)?;
                return Ok(InboxBatch::default());
            }
            Err(inbox::BatchError::Control(e)) => return Err(retryable(e)),
            Err(e @ inbox::BatchError::TooLarge { .. }) => {
                let why = e.to_string();
                return Err(self.live_failed(id, FailureType::SystemError, &why).await?);
            }
        };
        let count = batch.ids.len();
        let failed = |why: String| {
            format!(
                "webhook events: {count} event(s) from {} could not be applied: {why}",
                batch.ids[0]
            )
        };
        let messages = match self.engine.sync(&request, batch.sync).await {
            Ok(messages) => messages,
            Err(e) => {
                self.catalogs.forget(id);
                let why = failed(format!("{e:#}"));
                return Err(self.live_failed(id, live_failure_type(&e), &why).await?);
            }
        };
        if let Err((kind, why)) = self.follow_live(&ctx, id, &request, messages).await? {
            // Retried by Temporal, whole (what setup made may be gone); the events stay in the
            // inbox meanwhile.
            self.catalogs.forget(id);
            return Err(self.live_failed(id, kind, &failed(why)).await?);
        }
        self.control
            .inbox_applied(id, &batch.ids)
            .await
            .map_err(retryable)?;
        if whole {
            self.keep_catalog(id, &request).await;
        }
        self.control
            .set_live_failure(id, None)
            .await
            .map_err(retryable)?;
        Ok(InboxBatch {
            applied: count as u64,
            more: batch.more,
        })
    }

    /// Marks a pipeline paused.
    #[activity(name = "pause")]
    pub async fn pause(
        self: Arc<Self>,
        _ctx: ActivityContext,
        pipeline_id: String,
    ) -> Result<(), ActivityError> {
        self.control
            .set_status(&pipeline_id, Status::Paused, None)
            .await
            .map_err(retryable)
    }

    /// Tears the pipeline down (both connectors) and forgets it. A teardown that fails is
    /// reported in the result; the pipeline is forgotten all the same (the user asked).
    #[activity(name = "delete")]
    pub async fn delete(
        self: Arc<Self>,
        _ctx: ActivityContext,
        pipeline_id: String,
    ) -> Result<String, ActivityError> {
        let pipeline = match self.control.get(&pipeline_id).await {
            Ok(p) => p,
            Err(ControlError::NotFound(_)) => return Ok("already gone".to_owned()),
            Err(e) => return Err(retryable(e)),
        };
        self.control
            .set_status(&pipeline_id, Status::TearingDown, None)
            .await
            .map_err(retryable)?;
        let mut outcome = "torn down".to_owned();
        match pipeline.request() {
            Ok(request) => match self.engine.teardown_failures(&request, None).await {
                Ok(failures) if failures.is_empty() => {}
                Ok(failures) => {
                    let why: Vec<_> = failures.into_iter().map(|(_, why)| why).collect();
                    outcome = format!("teardown failed: {}", why.join("; "));
                }
                Err(e) => outcome = format!("teardown failed: {e:#}"),
            },
            Err(e) => outcome = format!("teardown skipped: {e}"),
        }
        if outcome != "torn down" {
            tracing::warn!(pipeline = %pipeline_id, "{outcome}");
        }
        self.control.remove(&pipeline_id).await.map_err(retryable)?;
        Ok(outcome)
    }
}

/// A step's engine run: the checkpoint it claimed, its row in `runs`, and where its messages
/// are recorded when a caller of the API asked for it.
struct StepRun {
    claim: crate::control::Claim,
    run: i64,
    recorder: Option<Recorder>,
}

/// Records the messages of a run that serves an API request, for the API to stream.
struct Recorder {
    control: Control,
    run: i64,
    seq: i32,
}

impl Recorder {
    fn new(control: &Control, run: i64) -> Recorder {
        Recorder {
            control: control.clone(),
            run,
            seq: 0,
        }
    }

    async fn record(&mut self, message: &Message) -> Result<(), ActivityError> {
        let shown = crate::pipeline::shown_message(message);
        self.seq += 1;
        self.control
            .record_message(self.run, self.seq, &shown)
            .await
            .map_err(retryable)
    }
}

/// A step's graceful time limit for a caller's hard one (the reference's 0.8).
fn graceful_limit(hard: f64) -> f64 {
    if hard >= 2.0 { hard * 0.8 } else { hard }
}

impl PipelineActivities {
    /// After a whole webhook batch: the source's catalog, kept for the next batches (which
    /// then run neither discover nor setup). A discover that fails keeps nothing: the next
    /// batch runs whole again.
    async fn keep_catalog(&self, id: &str, request: &PipelineRequest) {
        let catalog = match self.engine.discover(request).await {
            Ok(messages) => all_of(messages).await.into_iter().find_map(|m| match m {
                Message::Catalog(catalog) => Some(catalog),
                _ => None,
            }),
            Err(_) => None,
        };
        match catalog {
            Some(catalog) => self.catalogs.keep(id, request, catalog),
            None => tracing::debug!(pipeline = id, "no catalog kept: the next batch runs setup"),
        }
    }

    /// The engine run of a step: from the claimed checkpoint, bounded by the step's time, or
    /// by what the caller who asked for it gave.
    fn step_sync_request(
        &self,
        claim: &crate::control::Claim,
        asked: Option<&crate::step_requests::StepAsk>,
    ) -> SyncRequest {
        let mut sync = SyncRequest {
            state: claim.state.clone(),
            soft_time_limit: Some(self.step_secs),
            ..Default::default()
        };
        if let Some(asked) = asked {
            if let Some(hard) = asked.time_limit {
                sync.time_limit = Some(hard);
                sync.soft_time_limit = Some(graceful_limit(hard));
            }
            sync.state_limit = asked.state_limit.map(|n| n.max(1) as u64);
            // The engine keeps it in the run's ending state (`sync_run.run_id`) and its logs.
            sync.run_id = asked.run_name.clone();
        }
        sync
    }

    /// The request with the account's shared rate budget, when the worker has one.
    fn budgeted(&self, mut request: PipelineRequest, account: Option<&str>) -> PipelineRequest {
        if let (Some(budget), Some(account)) = (&self.budget, account) {
            budget.apply(&mut request, account);
        }
        request
    }

    /// Makes sure a claimed checkpoint was written for what the pipeline now reads and writes:
    /// one written for another place (a config changed behind the API, or by a PATCH racing
    /// this step) is emptied, saying why, so that the step reads everything into the new place;
    /// one whose owner is not known yet is taken as this place's. Whether it was reset, or why
    /// the owner cannot be told.
    async fn own_checkpoint(
        &self,
        pipeline: &Pipeline,
        claim: &mut crate::control::Claim,
    ) -> Result<Result<bool, Failure>, ActivityError> {
        let id = pipeline.id.as_str();
        let request = match pipeline.request() {
            Ok(request) => request,
            Err(e) => {
                return Ok(Err(Failure {
                    kind: FailureType::ConfigError,
                    message: e.to_string(),
                }));
            }
        };
        let owner = match Owner::of(&self.engine, &request).await {
            Ok(owner) => owner,
            Err(e) => return Ok(Err(self.classify(&request, e).await)),
        };
        let Some(written_for) = &claim.owner else {
            self.control
                .adopt_owner(id, claim.fence, &owner)
                .await
                .map_err(retryable)?;
            claim.owner = Some(owner);
            return Ok(Ok(false));
        };
        let Some(moved) = written_for.moved_to(&owner) else {
            return Ok(Ok(false));
        };
        let reason = format!(
            "{moved}: the checkpoint, written for the old place, was reset when a step claimed it; the step reads everything into the new place"
        );
        tracing::warn!(pipeline = %id, "checkpoint reset: {reason}");
        self.control
            .reset_for_owner(id, claim.fence, &owner, &reason)
            .await
            .map_err(retryable)?;
        claim.state = Default::default();
        claim.owner = Some(owner);
        Ok(Ok(true))
    }

    /// Records why the live lane cannot apply webhook events (shown in the pipeline's status,
    /// logged); the error the activity fails with.
    async fn live_failed(
        &self,
        id: &str,
        kind: FailureType,
        why: &str,
    ) -> Result<ActivityError, ActivityError> {
        let kind = failure_name(kind);
        tracing::warn!(pipeline = %id, failure_type = kind, "live lane: {why}");
        self.control
            .set_live_failure(id, Some((kind, why)))
            .await
            .map_err(retryable)?;
        Ok(ActivityError::from(anyhow::anyhow!("{why}")))
    }

    /// Stores the part of a connector's config update the pipeline keeps.
    async fn store_update(
        &self,
        id: &str,
        request: &PipelineRequest,
        update: sync_protocol::Control,
    ) -> Result<(), ActivityError> {
        let kept = self
            .engine
            .kept_update(request, update)
            .await
            .map_err(|e| ActivityError::from(anyhow::anyhow!("{e}")))?;
        if let Some(kept) = kept {
            self.control
                .merge_config(id, &kept)
                .await
                .map_err(retryable)?;
        }
        Ok(())
    }

    /// Reads a live-lane run to its end, heartbeating (a dead worker is noticed within the
    /// lane's heartbeat timeout); why it failed, if it did.
    async fn follow_live(
        &self,
        ctx: &ActivityContext,
        id: &str,
        request: &PipelineRequest,
        mut messages: Messages,
    ) -> Result<Result<(), (FailureType, String)>, ActivityError> {
        let mut beat = tokio::time::interval(LIVE_HEARTBEAT_EVERY);
        let mut succeeded = false;
        let mut failure = None;
        loop {
            let message = tokio::select! {
                message = messages.next() => message,
                _ = ctx.cancelled() => return Err(ActivityError::cancelled()),
                _ = beat.tick() => {
                    let _ = ctx.record_heartbeat(()).await;
                    continue;
                }
            };
            match message {
                None if succeeded => return Ok(Ok(())),
                None => {
                    return Ok(Err(failure.unwrap_or((
                        FailureType::SystemError,
                        "the run ended without success".to_owned(),
                    ))));
                }
                Some(Message::Eof(eof)) => succeeded = eof.status == RunStatus::Succeeded,
                Some(Message::ConnectionStatus(s)) if s.status == CheckStatus::Failed => {
                    failure = Some((
                        s.failure_type.unwrap_or(FailureType::SystemError),
                        s.message.unwrap_or_default(),
                    ));
                }
                Some(Message::Control(update)) => self.store_update(id, request, update).await?,
                Some(_) => {}
            }
        }
    }

    /// Reads a run's messages to its end: saves each committed checkpoint, heartbeats, and
    /// turns the end into an outcome.
    async fn follow(
        &self,
        ctx: &ActivityContext,
        pipeline: &Pipeline,
        request: &PipelineRequest,
        step: StepRun,
        mut messages: Messages,
    ) -> Result<StepOutcome, ActivityError> {
        let StepRun {
            claim,
            run,
            mut recorder,
        } = step;
        let id = pipeline.id.as_str();
        let mut state = claim.state;
        let mut saved = 0i64;
        let mut beat = tokio::time::interval(HEARTBEAT_EVERY);
        let mut failure: Option<Failure> = None;
        let mut ledger = RunLedger::new(id, run);
        loop {
            let message = tokio::select! {
                message = messages.next() => message,
                _ = ctx.cancelled() => return Err(ActivityError::cancelled()),
                _ = beat.tick() => {
                    let _ = ctx.record_heartbeat(saved).await;
                    if self.wanted_elsewhere(id).await {
                        // Paused or deleted meanwhile: stop now (what is committed stands).
                        drop(messages);
                        self.control
                            .end_run(run, "interrupted", true, saved, None)
                            .await
                            .map_err(retryable)?;
                        return Ok(StepOutcome::Interrupted);
                    }
                    continue;
                }
            };
            let Some(message) = message else { break };
            if let Some(recorder) = &mut recorder {
                recorder.record(&message).await?;
            }
            match message {
                Message::Progress(progress) => ledger.record(&self.control, &progress).await,
                Message::SourceState(committed) => {
                    state.apply(&committed);
                    // A zombie (fenced off) stops here: dropping the messages stops its run.
                    self.control
                        .save_state(id, claim.fence, &state)
                        .await
                        .map_err(retryable)?;
                    saved += 1;
                }
                Message::Control(sync_protocol::Control::DestinationTables(tables)) => {
                    // As the engine did to its copy: streams whose tables changed start over.
                    let resets = state.reconcile_tables(&tables);
                    self.control
                        .save_state(id, claim.fence, &state)
                        .await
                        .map_err(retryable)?;
                    if !resets.is_empty() {
                        self.tables_reset(id, claim.fence, &resets).await?;
                    }
                }
                Message::Control(update) => {
                    // What setup made (a webhook endpoint's secret) outlives this run.
                    self.store_update(id, request, update).await?;
                }
                Message::ConnectionStatus(s) if s.status == CheckStatus::Failed => {
                    failure = Some(Failure {
                        kind: s.failure_type.unwrap_or(FailureType::SystemError),
                        message: s.message.unwrap_or_default(),
                    });
                }
                Message::Eof(eof) => {
                    if let Some(outcome) = self.ended(id, claim.fence, run, saved, &eof).await? {
                        return Ok(outcome);
                    }
                    break;
                }
                _ => {}
            }
        }
        let failure = failure.unwrap_or(Failure {
            kind: FailureType::SystemError,
            message: "the run ended without success".to_owned(),
        });
        self.failed(id, Some(run), failure).await
    }

    /// Says which streams start over because their tables changed: in the worker's log, in the
    /// checkpoint's reset note, and as `backfilling` until the step ends.
    async fn tables_reset(
        &self,
        id: &str,
        fence: i64,
        resets: &[sync_protocol::StreamReset],
    ) -> Result<(), ActivityError> {
        let reason = resets
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        tracing::warn!(pipeline = id, "{reason}");
        self.control
            .note_table_resets(id, fence, &reason)
            .await
            .map_err(retryable)?;
        self.control
            .set_status(id, Status::Backfilling, None)
            .await
            .map_err(retryable)
    }

    /// Records a run's end; the outcome, or `None` when it failed.
    async fn ended(
        &self,
        id: &str,
        fence: i64,
        run: i64,
        saved: i64,
        eof: &sync_protocol::Eof,
    ) -> Result<Option<StepOutcome>, ActivityError> {
        if let Some(ending) = &eof.ending_state {
            self.control
                .save_state(id, fence, ending)
                .await
                .map_err(retryable)?;
        }
        // Started: a time limit stopped it with more to do.
        let (mut outcome, ended) = match eof.status {
            RunStatus::Succeeded => (StepOutcome::Ready, "succeeded"),
            RunStatus::Started => (StepOutcome::More, "time_limit"),
            RunStatus::Failed => return Ok(None),
        };
        self.control
            .end_run(run, ended, eof.has_more, saved, None)
            .await
            .map_err(retryable)?;
        if outcome == StepOutcome::Ready {
            self.control
                .set_status(id, Status::Ready, None)
                .await
                .map_err(retryable)?;
            // Callers asked for steps meanwhile: one each, at once.
            if self.control.steps_asked(id).await.map_err(retryable)? {
                outcome = StepOutcome::More;
            }
        }
        Ok(Some(outcome))
    }

    /// Who must act on an engine run that could not start. A connector failing before the run
    /// (discover, setup) says only that it failed; its `check` says whether the config is at
    /// fault (a revoked key, a wrong password).
    async fn classify(&self, request: &PipelineRequest, e: EngineError) -> Failure {
        let message = format!("{e:#}");
        let kind = match &e {
            EngineError::Invalid(_) | EngineError::NotFound(_) => FailureType::ConfigError,
            EngineError::Busy(_) => FailureType::TransientError,
            EngineError::Connector(_) | EngineError::Internal(_) => {
                let checked = self
                    .engine
                    .check_failures(request, None)
                    .await
                    .unwrap_or_default();
                if let Some((_, why)) = checked
                    .into_iter()
                    .find(|(kind, _)| *kind == Some(FailureType::ConfigError))
                {
                    return Failure {
                        kind: FailureType::ConfigError,
                        message: why,
                    };
                }
                FailureType::SystemError
            }
        };
        Failure { kind, message }
    }

    /// Whether the user wants the pipeline paused or deleted since the step started.
    async fn wanted_elsewhere(&self, id: &str) -> bool {
        match self.control.get(id).await {
            Ok(p) => p.desired != Desired::Active,
            Err(ControlError::NotFound(_)) => true,
            Err(_) => false,
        }
    }

    async fn failed(
        &self,
        id: &str,
        run: Option<i64>,
        failure: Failure,
    ) -> Result<StepOutcome, ActivityError> {
        let kind = failure_name(failure.kind);
        tracing::warn!(pipeline = %id, failure_type = kind, "step failed: {}", failure.message);
        if let Some(run) = run {
            self.control
                .end_run(run, "failed", false, 0, Some(&failure.message))
                .await
                .map_err(retryable)?;
        }
        self.control
            .set_status(id, Status::Error, Some((kind, &failure.message)))
            .await
            .map_err(retryable)?;
        Ok(StepOutcome::Failed)
    }
}

//! The pipeline's workflows. The entity workflow (workflow id = pipeline id) never fails:
//! failures are statuses it leaves on a signal or a timer. Reading from Stripe runs in child
//! workflows (one per catch-up or reconcile) that loop bounded engine steps; webhook events run
//! in the live lane, an activity on its own task queue, even while a child runs. Checkpoints
//! live in the control database, fenced, never in the history.
//!
//! Changing what this code does on replay breaks running workflows: the replay tests
//! (`tests/replay.rs`) run saved histories against it.

use std::time::{Duration, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use temporalio_common::RetryPolicy;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::workflows::select;
use temporalio_sdk::{
    ActivityOptions, ChildWorkflowOptions, ContinueAsNewOptions, SyncWorkflowContext,
    WorkflowContext, WorkflowContextView, WorkflowResult,
};

use crate::activities::{PipelineActivities, StepOutcome, StepRequest};
use crate::pipeline::Desired;

/// The entity workflow type's name in Temporal.
pub const WORKFLOW_TYPE: &str = "pipeline";
/// Children (and live batches) before the entity workflow continues as new (bounded history).
const OPS_PER_RUN: u32 = 200;
/// Steps before a child continues as new.
const STEPS_PER_RUN: u32 = 100;
/// How long a child waits when its account is busy with another pipeline's step.
const BUSY_WAIT: Duration = Duration::from_secs(3);
/// Why a `ring` was sent, when it concerns only the live lane or a reconcile.
pub const RING_WEBHOOK: &str = "webhook";
/// The ring that asks for a reconcile (everything read again).
pub const RING_RECONCILE: &str = "reconcile";

/// What a run of the entity workflow starts with; carried over continue-as-new.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PipelineInput {
    /// The pipeline this workflow runs.
    pub pipeline_id: String,
    /// The desired status last signalled, so continue-as-new loses no signal.
    pub desired: Desired,
    /// Seconds between catch-up steps of a ready pipeline (they read Stripe's events).
    pub poll_secs: u64,
    /// Seconds between full reconciles (everything read again); 0: never.
    pub reconcile_secs: u64,
    /// Seconds before a failed pipeline is tried again (a signal tries at once).
    pub retry_secs: u64,
    /// The task queue of the live lane (webhook events); absent: the workflow's own.
    #[serde(default)]
    pub live_task_queue: Option<String>,
    /// Children started so far (their ids stay unique over continue-as-new).
    #[serde(default)]
    pub children: u64,
    /// When the next reconcile is due, in unix milliseconds (the timer survives
    /// continue-as-new); absent: `reconcile_secs` from the first run's start.
    #[serde(default)]
    pub reconcile_due_ms: Option<u64>,
    /// A reconcile was asked and has not started yet.
    #[serde(default)]
    pub reconcile_asked: bool,
    /// Steps a child runs before continuing as new (tests lower it); 0: the default.
    #[serde(default)]
    pub steps_per_child_run: u32,
    /// Children this workflow runs before continuing as new (tests lower it); 0: the default.
    #[serde(default)]
    pub ops_per_run: u32,
}

/// The entity workflow's state: what signals changed.
#[workflow]
#[derive(Default)]
pub struct PipelineWorkflow {
    desired: Option<Desired>,
    /// Rings asking for a step (updates, sync requests).
    steps_asked: u64,
    /// Rings saying webhook events wait in the inbox.
    events_rung: u64,
    /// A reconcile was asked and has not started yet.
    reconcile_pending: bool,
}

/// What asks for a child: a change of it since it was taken wakes an idle workflow.
type Marks = (Option<Desired>, u64, bool);

impl PipelineWorkflow {
    fn marks(&self) -> Marks {
        (self.desired, self.steps_asked, self.reconcile_pending)
    }
}

/// What a child workflow does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildKind {
    /// From the checkpoint until nothing is left to read (the first backfill, then each poll).
    CatchUp,
    /// Everything read again from the start; the checkpoint is replaced as it goes.
    Reconcile,
}

/// A child workflow's input; carried over its continue-as-new.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChildInput {
    /// The pipeline whose step this child runs.
    pub pipeline_id: String,
    /// What the child does.
    pub kind: ChildKind,
    /// Steps run by earlier runs of this child (a reconcile starts afresh only at step 0).
    pub steps: u64,
    /// Steps one child runs before it continues as new.
    pub steps_per_run: u32,
}

/// Retried without end, backing off up to `max_interval`: infrastructure comes back.
fn retrying(max_interval: Duration) -> RetryPolicy {
    RetryPolicy::builder()
        .initial_interval(Duration::from_secs(1))
        .maximum_interval(max_interval)
        .build()
}

fn step_options() -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(15 * 60))
        .heartbeat_timeout(Duration::from_secs(30))
        .retry_policy(retrying(Duration::from_secs(60)))
        .build()
}

fn short_options() -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(180))
        .retry_policy(retrying(Duration::from_secs(30)))
        .build()
}

/// The live lane: a few attempts, then the events wait in the inbox for the next ring or loop
/// (so a poisoned batch cannot hold the pipeline); a short heartbeat timeout, so that a dead
/// worker delays events by seconds.
fn live_options(queue: Option<String>) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(180))
        .heartbeat_timeout(Duration::from_secs(10))
        .maybe_task_queue(queue)
        .retry_policy(
            RetryPolicy::builder()
                .initial_interval(Duration::from_secs(1))
                .maximum_interval(Duration::from_secs(10))
                .maximum_attempts(3)
                .build(),
        )
        .build()
}

/// The workflow's clock (deterministic on replay).
fn unix_ms(ctx: &WorkflowContext<PipelineWorkflow>) -> u64 {
    ctx.workflow_time()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as u64)
}

#[workflow_methods]
impl PipelineWorkflow {
    #[run(name = "pipeline")]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        input: PipelineInput,
    ) -> WorkflowResult<String> {
        let ctx: &WorkflowContext<Self> = ctx;
        let id = input.pipeline_id.clone();
        let mut carry = input;
        if carry.reconcile_due_ms.is_none() && carry.reconcile_secs > 0 {
            carry.reconcile_due_ms = Some(unix_ms(ctx) + carry.reconcile_secs * 1000);
        }
        let mut ops = 0u32;
        // None: drain the inbox once at start (events may have come while nothing ran).
        let mut events_seen: Option<u64> = None;
        loop {
            carry.desired = ctx.state(|s| s.desired).unwrap_or(carry.desired);
            match carry.desired {
                Desired::Deleted => {
                    ctx.execute_activity(PipelineActivities::delete, id.clone(), short_options())
                        .await?;
                    return Ok(format!("pipeline {id} deleted"));
                }
                Desired::Paused => {
                    ctx.execute_activity(PipelineActivities::pause, id.clone(), short_options())
                        .await?;
                    ctx.wait_condition(|s| s.desired.is_some_and(|d| d != Desired::Paused))
                        .await?;
                    continue;
                }
                Desired::Active => {}
            }
            drain_inbox(ctx, &carry, &mut events_seen).await;
            let kind = next_child(ctx, &mut carry);
            let marks = ctx.state(|s| s.marks());
            let outcome = run_child(ctx, &mut carry, kind, &mut events_seen).await?;
            // Events whose ring went unserved (their worker died mid-batch) wait no longer.
            events_seen = None;
            drain_inbox(ctx, &carry, &mut events_seen).await;
            ops += 1;
            let wait = match outcome {
                // A child returns More only when its step was cut and it must be run again.
                StepOutcome::More => 0,
                StepOutcome::Ready => carry.poll_secs,
                StepOutcome::Failed => carry.retry_secs,
                // A child waits out a busy account itself; never returned.
                StepOutcome::Busy => 0,
                // The signal that interrupted it is on its way.
                StepOutcome::Interrupted => 5,
            };
            idle(ctx, &carry, marks, wait, &mut events_seen).await?;
            // After the wait, so that the next run starts with what woke this one.
            let per_run = match carry.ops_per_run {
                0 => OPS_PER_RUN,
                n => n,
            };
            if ops >= per_run || ctx.continue_as_new_suggested() {
                carry.desired = ctx.state(|s| s.desired).unwrap_or(carry.desired);
                carry.reconcile_asked |= ctx.state(|s| s.reconcile_pending);
                match ctx.continue_as_new(carry.clone(), ContinueAsNewOptions::default())? {}
            }
        }
    }

    /// The user changed the desired status.
    #[signal(name = "desire")]
    pub fn desire(&mut self, _ctx: &mut SyncWorkflowContext<Self>, desired: Desired) {
        // A deletion is final.
        if self.desired != Some(Desired::Deleted) {
            self.desired = Some(desired);
        }
        // Sent on every update (a new key, say): try again at once.
        self.steps_asked += 1;
    }

    /// Something changed: webhook events wait (`webhook`), a reconcile is asked
    /// (`reconcile`), or anything else (config, a sync request): run a step soon.
    #[signal(name = "ring")]
    pub fn ring(&mut self, _ctx: &mut SyncWorkflowContext<Self>, reason: String) {
        match reason.as_str() {
            RING_WEBHOOK => self.events_rung += 1,
            RING_RECONCILE => self.reconcile_pending = true,
            _ => self.steps_asked += 1,
        }
    }

    /// How many step and webhook rings the workflow got.
    #[query]
    pub fn rung(&self, _ctx: &WorkflowContextView) -> u64 {
        self.steps_asked + self.events_rung
    }
}

/// What the next child does: a reconcile when one was asked or falls due (the due time then
/// moves on), else a catch-up.
fn next_child(ctx: &WorkflowContext<PipelineWorkflow>, carry: &mut PipelineInput) -> ChildKind {
    let now = unix_ms(ctx);
    let asked = ctx.state_mut(|s| std::mem::take(&mut s.reconcile_pending));
    let asked = std::mem::take(&mut carry.reconcile_asked) || asked;
    let due = carry.reconcile_due_ms.is_some_and(|due| now >= due);
    if !asked && !due {
        return ChildKind::CatchUp;
    }
    if carry.reconcile_secs > 0 {
        carry.reconcile_due_ms = Some(now + carry.reconcile_secs * 1000);
    }
    ChildKind::Reconcile
}

/// Applies the webhook events waiting in the inbox when a `webhook` ring came since the last
/// drain, batch after batch. A batch that fails stays in the inbox for the next ring or loop.
async fn drain_inbox(
    ctx: &WorkflowContext<PipelineWorkflow>,
    carry: &PipelineInput,
    events_seen: &mut Option<u64>,
) {
    let rung = ctx.state(|s| s.events_rung);
    if *events_seen == Some(rung) {
        return;
    }
    *events_seen = Some(rung);
    loop {
        let applied = ctx
            .execute_activity(
                PipelineActivities::apply_inbox,
                carry.pipeline_id.clone(),
                live_options(carry.live_task_queue.clone()),
            )
            .await;
        match applied {
            Ok(batch) if batch.more => continue,
            _ => return,
        }
    }
}

/// Runs a child workflow to its end, serving the live lane meanwhile.
async fn run_child(
    ctx: &WorkflowContext<PipelineWorkflow>,
    carry: &mut PipelineInput,
    kind: ChildKind,
    events_seen: &mut Option<u64>,
) -> WorkflowResult<StepOutcome> {
    let name = match kind {
        ChildKind::CatchUp => "sync",
        ChildKind::Reconcile => "reconcile",
    };
    let child_id = format!("{}.{name}-{}", carry.pipeline_id, carry.children);
    carry.children += 1;
    let input = ChildInput {
        pipeline_id: carry.pipeline_id.clone(),
        kind,
        steps: 0,
        steps_per_run: carry.steps_per_child_run,
    };
    // A child that cannot start or fails (terminated by an operator, say) is a failed step:
    // the pipeline retries on its timer rather than failing.
    let started = match ctx
        .start_child_workflow(
            SyncWorkflow::run,
            input,
            ChildWorkflowOptions::workflow_id(child_id),
        )
        .await
    {
        Ok(started) => started,
        Err(_) => return Ok(StepOutcome::Failed),
    };
    let mut result = std::pin::pin!(started.result());
    loop {
        let seen = *events_seen;
        select! {
            outcome = &mut result => return Ok(outcome.unwrap_or(StepOutcome::Failed)),
            woke = ctx.wait_condition(move |s| Some(s.events_rung) != seen) => {
                woke?;
                drain_inbox(ctx, carry, events_seen).await;
            }
        };
    }
}

/// Waits after a child: until a signal asks for something, the timer fires (`wait` seconds,
/// or the reconcile falls due), serving the live lane meanwhile.
async fn idle(
    ctx: &WorkflowContext<PipelineWorkflow>,
    carry: &PipelineInput,
    marks: Marks,
    wait: u64,
    events_seen: &mut Option<u64>,
) -> WorkflowResult<()> {
    let asked = move |s: &PipelineWorkflow| s.marks() != marks;
    if wait == 0 || ctx.state(asked) {
        return Ok(());
    }
    let mut deadline = unix_ms(ctx) + wait * 1000;
    if let Some(due) = carry.reconcile_due_ms {
        deadline = deadline.min(due);
    }
    loop {
        let left = deadline.saturating_sub(unix_ms(ctx));
        if left == 0 {
            return Ok(());
        }
        let seen = *events_seen;
        select! {
            woke = ctx.wait_condition(move |s| asked(s) || Some(s.events_rung) != seen) => {
                woke?;
                if ctx.state(asked) {
                    return Ok(());
                }
                drain_inbox(ctx, carry, events_seen).await;
            }
            _ = ctx.timer(Duration::from_millis(left.max(1000))) => return Ok(()),
        };
    }
}

/// A child: bounded engine steps until the pipeline has read everything (or fails, or is
/// paused or deleted meanwhile). Continues as new every `steps_per_run` steps.
#[workflow]
#[derive(Default)]
pub struct SyncWorkflow;

#[workflow_methods]
impl SyncWorkflow {
    #[run(name = "sync")]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        input: ChildInput,
    ) -> WorkflowResult<StepOutcome> {
        let per_run = match input.steps_per_run {
            0 => STEPS_PER_RUN,
            n => n,
        };
        let mut steps = input.steps;
        for _ in 0..per_run {
            let request = StepRequest {
                pipeline_id: input.pipeline_id.clone(),
                from_scratch: input.kind == ChildKind::Reconcile && steps == 0,
            };
            let outcome = ctx
                .execute_activity(PipelineActivities::sync_step, request, step_options())
                .await?;
            match outcome {
                // The account is busy with another pipeline's step: wait here, holding no
                // worker slot.
                StepOutcome::Busy => {
                    ctx.timer(BUSY_WAIT).await;
                    continue;
                }
                StepOutcome::More => steps += 1,
                _ => return Ok(outcome),
            }
        }
        match ctx.continue_as_new(
            ChildInput { steps, ..input },
            ContinueAsNewOptions::default(),
        )? {}
    }
}

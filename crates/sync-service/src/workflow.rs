//! The pipeline's entity workflow (workflow id = pipeline id). It never fails: failures are
//! statuses it leaves on a signal or a timer. Each step is one bounded engine run (an
//! activity); the checkpoint lives in the control database, fenced, never in the history.
//!
//! Changing what this code does on replay breaks running workflows: the replay tests
//! (`tests/replay.rs`) run saved histories against it.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use temporalio_common::RetryPolicy;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::workflows::select;
use temporalio_sdk::{
    ActivityOptions, ContinueAsNewOptions, SyncWorkflowContext, WorkflowContext,
    WorkflowContextView, WorkflowResult,
};

use crate::activities::{PipelineActivities, StepOutcome};
use crate::pipeline::Desired;

/// The workflow type's name in Temporal.
pub const WORKFLOW_TYPE: &str = "pipeline";
/// Steps before the workflow continues as new (bounded history).
const STEPS_PER_RUN: u32 = 100;

/// What a run of the workflow starts with; carried over continue-as-new.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PipelineInput {
    pub pipeline_id: String,
    /// The desired status last signalled, so continue-as-new loses no signal.
    pub desired: Desired,
    /// Seconds between reconciles of a ready pipeline (a step that finds what changed).
    pub reconcile_secs: u64,
    /// Seconds before a failed pipeline is tried again (a signal tries at once).
    pub retry_secs: u64,
}

/// The workflow's state: what signals changed.
#[workflow]
#[derive(Default)]
pub struct PipelineWorkflow {
    desired: Option<Desired>,
    /// Counts `ring` signals (updates, webhooks, sync requests): a change wakes the workflow.
    rung: u64,
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

#[workflow_methods]
impl PipelineWorkflow {
    #[run(name = "pipeline")]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        input: PipelineInput,
    ) -> WorkflowResult<String> {
        let id = input.pipeline_id.clone();
        let mut steps = 0u32;
        loop {
            let desired = ctx.state(|s| s.desired).unwrap_or(input.desired);
            match desired {
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
            let rung = ctx.state(|s| s.rung);
            // Webhook events first: they are the freshest changes.
            ctx.execute_activity(PipelineActivities::apply_inbox, id.clone(), short_options())
                .await?;
            let outcome = ctx
                .execute_activity(PipelineActivities::sync_step, id.clone(), step_options())
                .await?;
            steps += 1;
            if steps >= STEPS_PER_RUN {
                let desired = ctx.state(|s| s.desired).unwrap_or(input.desired);
                ctx.continue_as_new(
                    PipelineInput {
                        desired,
                        ..input.clone()
                    },
                    ContinueAsNewOptions::default(),
                )?;
            }
            let wait = match outcome {
                StepOutcome::More => continue,
                StepOutcome::Ready => input.reconcile_secs,
                StepOutcome::Failed => input.retry_secs,
                // The signal that interrupted it is on its way.
                StepOutcome::Interrupted => 5,
            };
            // Until a signal arrives (since the step started) or the timer fires.
            select! {
                woke = ctx.wait_condition(move |s| s.rung != rung || s.desired.is_some_and(|d| d != Desired::Active)) => {
                    woke?;
                }
                _ = ctx.timer(Duration::from_secs(wait.max(1))) => {}
            };
        }
    }

    /// The user changed the desired status.
    #[signal(name = "desire")]
    pub fn desire(&mut self, _ctx: &mut SyncWorkflowContext<Self>, desired: Desired) {
        // A deletion is final.
        if self.desired != Some(Desired::Deleted) {
            self.desired = Some(desired);
        }
        self.rung += 1;
    }

    /// Something changed (config, webhooks, a sync request): run a step soon.
    #[signal(name = "ring")]
    pub fn ring(&mut self, _ctx: &mut SyncWorkflowContext<Self>, _reason: String) {
        self.rung += 1;
    }

    /// How many signals woke the workflow.
    #[query]
    pub fn rung(&self, _ctx: &WorkflowContextView) -> u64 {
        self.rung
    }
}

//! The service's side of Temporal: a client that starts and signals pipeline workflows, and the
//! worker that runs them.

use anyhow::{Context, Result, anyhow};
use temporalio_client::{
    Client, ClientOptions, Connection, ConnectionOptions, Url, WorkflowFetchHistoryOptions,
    WorkflowGetResultOptions, WorkflowStartOptions,
};
use temporalio_sdk::{Runtime, Worker, WorkerOptions};

use crate::activities::PipelineActivities;
use crate::pipeline::Desired;
use crate::workflow::{PipelineInput, PipelineWorkflow, SyncWorkflow};

/// Where Temporal is and which queues the pipelines run on.
#[derive(Debug, Clone)]
pub struct TemporalArgs {
    /// `host:port` (as the temporal CLI takes it) or a URL.
    pub address: String,
    /// The Temporal namespace.
    pub namespace: String,
    /// Workflows and their backfill steps.
    pub task_queue: String,
    /// The live lane: webhook events.
    pub live_task_queue: String,
}

/// What a worker process serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lanes {
    /// Workflows and their steps (`--task-queue`).
    pub backfill: bool,
    /// Webhook events (`--live-task-queue`).
    pub live: bool,
}

/// Slots of the backfill lane: at most `steps` activities at once (each runs the engine), the
/// SDK's default for workflow tasks (cheap).
fn step_slots(steps: usize) -> temporalio_sdk::runtime::worker_tuner::WorkerTuner {
    use temporalio_sdk::runtime::worker_tuner::{FixedSizeSlotSupplier, TunerHolder};
    TunerHolder::builder()
        .workflow_task_slot_supplier(FixedSizeSlotSupplier::new(100))
        .activity_task_slot_supplier(FixedSizeSlotSupplier::new(steps.max(1)))
        .local_activity_task_slot_supplier(FixedSizeSlotSupplier::new(100))
        .nexus_task_slot_supplier(FixedSizeSlotSupplier::new(100))
        .build()
        .into()
}

/// A connected client.
#[derive(Clone)]
pub struct Temporal {
    client: Client,
    task_queue: String,
    live_task_queue: String,
}

impl Temporal {
    /// Connects to the Temporal frontend the arguments name.
    pub async fn connect(args: &TemporalArgs) -> Result<Temporal> {
        let url = if args.address.contains("://") {
            args.address.clone()
        } else {
            format!("http://{}", args.address)
        };
        let url = Url::parse(&url).with_context(|| format!("--temporal-address {url:?}"))?;
        let connection = Connection::connect(
            ConnectionOptions::new(url)
                .identity(format!("sync-service@{}", std::process::id()))
                .build(),
        )
        .await
        .map_err(|e| anyhow!("cannot reach Temporal at {}: {e}", args.address))?;
        let client = Client::new(
            connection,
            ClientOptions::new(args.namespace.clone()).build(),
        )
        .map_err(|e| anyhow!("Temporal client: {e}"))?;
        Ok(Temporal {
            client,
            task_queue: args.task_queue.clone(),
            live_task_queue: args.live_task_queue.clone(),
        })
    }

    /// The underlying client (for workers of other activity implementations, as in tests).
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn start_options(&self, id: &str) -> WorkflowStartOptions {
        WorkflowStartOptions::new(self.task_queue.clone(), id.to_owned()).build()
    }

    /// Wakes the pipeline's workflow, starting it when it does not run (signal-with-start).
    pub async fn ring(&self, input: PipelineInput, reason: &str) -> Result<()> {
        let id = input.pipeline_id.clone();
        self.client
            .signal_with_start_workflow(
                PipelineWorkflow::run,
                input,
                PipelineWorkflow::ring,
                reason.to_owned(),
                self.start_options(&id),
            )
            .await
            .map_err(|e| anyhow!("Temporal: cannot signal pipeline {id}: {e}"))?;
        Ok(())
    }

    /// Tells the pipeline's workflow what the user wants, starting it when it does not run.
    pub async fn desire(&self, input: PipelineInput, desired: Desired) -> Result<()> {
        let id = input.pipeline_id.clone();
        self.client
            .signal_with_start_workflow(
                PipelineWorkflow::run,
                input,
                PipelineWorkflow::desire,
                desired,
                self.start_options(&id),
            )
            .await
            .map_err(|e| anyhow!("Temporal: cannot signal pipeline {id}: {e}"))?;
        Ok(())
    }

    /// Waits for a pipeline's workflow to end (only a deletion ends it); its result.
    pub async fn wait_for_end(&self, id: &str) -> Result<String> {
        self.client
            .get_workflow_handle::<PipelineWorkflow>(id.to_owned())
            .get_result(WorkflowGetResultOptions::default())
            .await
            .map_err(|e| anyhow!("Temporal: result of {id}: {e}"))
    }

    /// The history of a pipeline's latest workflow run, as the SDK's replayer reads it.
    pub async fn history_json(&self, id: &str) -> Result<Vec<u8>> {
        let history = self
            .client
            .get_workflow_handle::<PipelineWorkflow>(id.to_owned())
            .fetch_history(WorkflowFetchHistoryOptions::default())
            .to_json()
            .await
            .map_err(|e| anyhow!("Temporal: history of {id}: {e}"))?;
        Ok(history)
    }

    /// Runs the workers of `lanes` (one per task queue, each with its own slots, so webhook
    /// events never wait for a free backfill slot) until SIGINT or SIGTERM.
    pub async fn run_worker(
        self,
        activities: PipelineActivities,
        lanes: Lanes,
        max_concurrent_steps: usize,
    ) -> Result<()> {
        let runtime = Runtime::from_current_tokio(Default::default())
            .map_err(|e| anyhow!("Temporal runtime: {e}"))?;
        let mut workers = Vec::new();
        if lanes.backfill {
            let options = WorkerOptions::new(self.task_queue.clone())
                .register_workflow::<PipelineWorkflow>()
                .map_err(|e| anyhow!("registering the pipeline workflow: {e}"))?
                .register_workflow::<SyncWorkflow>()
                .map_err(|e| anyhow!("registering the sync workflow: {e}"))?
                .register_activities(activities.clone())
                .tuner(step_slots(max_concurrent_steps))
                .build();
            workers.push(
                Worker::new(&runtime, self.client.clone(), options)
                    .map_err(|e| anyhow!("Temporal worker: {e}"))?,
            );
        }
        if lanes.live && (!lanes.backfill || self.live_task_queue != self.task_queue) {
            let options = WorkerOptions::new(self.live_task_queue.clone())
                .register_activities(activities)
                .build();
            workers.push(
                Worker::new(&runtime, self.client.clone(), options)
                    .map_err(|e| anyhow!("Temporal live worker: {e}"))?,
            );
        }
        let shutdowns: Vec<_> = workers.iter().map(|w| w.shutdown_handle()).collect();
        tokio::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            if let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
                tracing::info!("worker: stopping");
                for shutdown in shutdowns {
                    shutdown();
                }
            }
        });
        let runs = workers.iter_mut().map(|w| w.run());
        for result in futures::future::join_all(runs).await {
            result.map_err(|e| anyhow!("Temporal worker: {e}"))?;
        }
        Ok(())
    }
}

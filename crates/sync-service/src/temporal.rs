//! The service's side of Temporal: a client that starts and signals pipeline workflows, and the
//! worker that runs them.

use anyhow::{Context, Result, anyhow};
use temporalio_client::{
    Client, ClientOptions, Connection, ConnectionOptions, Url, WorkflowFetchHistoryOptions,
    WorkflowStartOptions,
};
use temporalio_sdk::{Runtime, Worker, WorkerOptions};

use crate::activities::PipelineActivities;
use crate::pipeline::Desired;
use crate::workflow::{PipelineInput, PipelineWorkflow};

/// Where Temporal is and which queue the pipelines run on.
#[derive(Debug, Clone)]
pub struct TemporalArgs {
    /// `host:port` (as the temporal CLI takes it) or a URL.
    pub address: String,
    pub namespace: String,
    pub task_queue: String,
}

/// A connected client.
#[derive(Clone)]
pub struct Temporal {
    client: Client,
    task_queue: String,
}

impl Temporal {
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
        })
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

    /// Runs a worker for the pipeline workflows and their activities until SIGINT or SIGTERM.
    pub async fn run_worker(self, activities: PipelineActivities) -> Result<()> {
        let runtime = Runtime::from_current_tokio(Default::default())
            .map_err(|e| anyhow!("Temporal runtime: {e}"))?;
        let options = WorkerOptions::new(self.task_queue.clone())
            .register_workflow::<PipelineWorkflow>()
            .map_err(|e| anyhow!("registering the pipeline workflow: {e}"))?
            .register_activities(activities)
            .build();
        let mut worker = Worker::new(&runtime, self.client, options)
            .map_err(|e| anyhow!("Temporal worker: {e}"))?;
        let shutdown = worker.shutdown_handle();
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
                shutdown();
            }
        });
        worker
            .run()
            .await
            .map_err(|e| anyhow!("Temporal worker: {e}"))
    }
}

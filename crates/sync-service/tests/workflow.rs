//! Unit tests of the workflows: the real `PipelineWorkflow` and `SyncWorkflow` on a Temporal dev
//! server of the test's own (what the SDK's `WorkflowEnvironment::start_local` runs too), with
//! scripted activities in place of the engine, so each test decides what every step returns
//! and sees every call the workflows make.

// The activity markers `#[activities]` makes for the scripted activities go unused: the
// workflows call them by name, through `PipelineActivities`' markers.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sync_service::activities::{StepOutcome, StepRequest};
use sync_service::pipeline::Desired;
use sync_service::temporal::{Temporal, TemporalArgs};
use sync_service::workflow::{
    PipelineInput, PipelineWorkflow, RING_RECONCILE, RING_WEBHOOK, SyncWorkflow,
};
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use temporalio_sdk::{Runtime, Worker, WorkerOptions};
use test_support::process::free_port;
use test_support::temporal::DevServer;
use tokio::sync::Semaphore;

/// What the scripted activities were asked, and what they answer.
#[derive(Default)]
struct Script {
    calls: Mutex<Vec<String>>,
    /// What `sync_step` returns, in order; `Ready` once empty.
    outcomes: Mutex<VecDeque<StepOutcome>>,
    /// When set, each `sync_step` waits for a permit first.
    gate: Option<Semaphore>,
}

impl Script {
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    fn record(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }
}

struct ScriptedActivities {
    script: Arc<Script>,
}

#[activities]
impl ScriptedActivities {
    #[activity(name = "sync_step")]
    async fn sync_step(
        self: Arc<Self>,
        _ctx: ActivityContext,
        step: StepRequest,
    ) -> Result<StepOutcome, ActivityError> {
        let kind = if step.from_scratch {
            "sync_step(from scratch)"
        } else {
            "sync_step"
        };
        self.script.record(format!("{kind} started"));
        if let Some(gate) = &self.script.gate {
            gate.acquire().await.unwrap().forget();
        }
        let outcome = self.script.outcomes.lock().unwrap().pop_front();
        let outcome = outcome.unwrap_or(StepOutcome::Ready);
        self.script.record(format!("{kind} -> {outcome:?}"));
        Ok(outcome)
    }

    #[activity(name = "apply_inbox")]
    async fn apply_inbox(
        self: Arc<Self>,
        ctx: ActivityContext,
        _pipeline_id: String,
    ) -> Result<u64, ActivityError> {
        self.script
            .record(format!("apply_inbox on {}", ctx.info().task_queue));
        Ok(0)
    }

    #[activity(name = "pause")]
    async fn pause(
        self: Arc<Self>,
        _ctx: ActivityContext,
        _pipeline_id: String,
    ) -> Result<(), ActivityError> {
        self.script.record("pause".to_owned());
        Ok(())
    }

    #[activity(name = "delete")]
    async fn delete(
        self: Arc<Self>,
        _ctx: ActivityContext,
        _pipeline_id: String,
    ) -> Result<String, ActivityError> {
        self.script.record("delete".to_owned());
        Ok("torn down".to_owned())
    }
}

/// A dev server, a worker on both queues running the real workflows with the script, and a
/// client.
struct Harness {
    _server: DevServer,
    script: Arc<Script>,
    args: TemporalArgs,
    runtime: tokio::runtime::Runtime,
    stop: Option<std::sync::mpsc::Sender<()>>,
}

impl Harness {
    fn start(script: Script) -> Harness {
        let server = DevServer::start();
        let queue = format!("wf-{}", free_port());
        let args = TemporalArgs {
            address: server.address(),
            namespace: "default".to_owned(),
            task_queue: queue.clone(),
            live_task_queue: format!("{queue}-live"),
        };
        let script = Arc::new(script);
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let worker_args = args.clone();
        let worker_script = script.clone();
        // The worker's futures are not Send: it gets a thread and a runtime of its own.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(run_worker(worker_args, worker_script, stop_rx));
        });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        Harness {
            _server: server,
            script,
            args,
            runtime,
            stop: Some(stop_tx),
        }
    }

    fn temporal(&self) -> Temporal {
        self.runtime
            .block_on(Temporal::connect(&self.args))
            .unwrap()
    }

    fn input(&self, id: &str, steps_per_child_run: u32) -> PipelineInput {
        PipelineInput {
            pipeline_id: id.to_owned(),
            desired: Desired::Active,
            poll_secs: 3600,
            reconcile_secs: 0,
            retry_secs: 3600,
            live_task_queue: Some(self.args.live_task_queue.clone()),
            steps_per_child_run,
            ..Default::default()
        }
    }

    fn ring(&self, input: &PipelineInput, reason: &str) {
        let temporal = self.temporal();
        self.runtime
            .block_on(temporal.ring(input.clone(), reason))
            .unwrap();
    }

    fn desire(&self, input: &PipelineInput, desired: Desired) {
        let temporal = self.temporal();
        self.runtime
            .block_on(temporal.desire(input.clone(), desired))
            .unwrap();
    }

    /// Waits until the calls so far satisfy `done`.
    fn wait_calls(&self, what: &str, done: impl Fn(&[String]) -> bool) {
        let started = Instant::now();
        loop {
            let calls = self.script.calls();
            if done(&calls) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "waited a minute for {what}; calls: {calls:#?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn count(&self, call: &str) -> usize {
        self.script.calls().iter().filter(|c| *c == call).count()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn run_worker(args: TemporalArgs, script: Arc<Script>, stop: std::sync::mpsc::Receiver<()>) {
    let temporal = Temporal::connect(&args).await.unwrap();
    let runtime = Runtime::from_current_tokio(Default::default()).unwrap();
    let backfill = WorkerOptions::new(args.task_queue.clone())
        .register_workflow::<PipelineWorkflow>()
        .unwrap()
        .register_workflow::<SyncWorkflow>()
        .unwrap()
        .register_activities(ScriptedActivities {
            script: script.clone(),
        })
        .build();
    let live = WorkerOptions::new(args.live_task_queue.clone())
        .register_activities(ScriptedActivities { script })
        .build();
    let mut backfill = Worker::new(&runtime, temporal.client().clone(), backfill).unwrap();
    let mut live = Worker::new(&runtime, temporal.client().clone(), live).unwrap();
    let shutdowns = [backfill.shutdown_handle(), live.shutdown_handle()];
    std::thread::spawn(move || {
        let _ = stop.recv();
        for shutdown in shutdowns {
            shutdown();
        }
    });
    let (a, b) = tokio::join!(backfill.run(), live.run());
    a.unwrap();
    b.unwrap();
}

#[test]
fn a_child_loops_steps_across_continue_as_new_until_ready_then_the_pipeline_waits_for_a_ring() {
    let h = Harness::start(Script {
        outcomes: Mutex::new(
            [
                StepOutcome::Busy,
                StepOutcome::More,
                StepOutcome::More,
                StepOutcome::More,
                StepOutcome::Ready,
            ]
            .into(),
        ),
        ..Script::default()
    });
    // A busy account first (the child waits on a timer and tries again), then two steps per
    // child run: four steps need two continue-as-new.
    let input = h.input("wf-1", 2);
    h.ring(&input, "created");
    h.wait_calls("five steps", |c| {
        c.iter().filter(|c| c.starts_with("sync_step ->")).count() == 5
    });
    // Ready: it waits (the poll timer is an hour) instead of stepping again.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(h.count("sync_step started"), 5, "{:#?}", h.script.calls());
    let backfill_queue = format!("apply_inbox on {}", h.args.task_queue);
    assert_eq!(
        h.count(&backfill_queue),
        0,
        "the live lane has its own queue"
    );
    // The inbox is drained at start and after the child, on the live queue.
    let live = format!("apply_inbox on {}", h.args.live_task_queue);
    assert_eq!(h.count(&live), 2, "{:#?}", h.script.calls());
    // A sync request runs a new child at once.
    h.ring(&input, "sync requested");
    h.wait_calls("a sixth step", |c| {
        c.iter().filter(|c| c.starts_with("sync_step ->")).count() == 6
    });
    // A reconcile starts afresh.
    h.ring(&input, RING_RECONCILE);
    h.wait_calls("a reconcile", |c| {
        c.contains(&"sync_step(from scratch) -> Ready".to_owned())
    });
}

#[test]
fn webhook_rings_reach_the_live_lane_while_a_step_runs() {
    let h = Harness::start(Script {
        gate: Some(Semaphore::new(0)),
        ..Script::default()
    });
    let input = h.input("wf-2", 0);
    let live = format!("apply_inbox on {}", h.args.live_task_queue);
    h.ring(&input, "created");
    h.wait_calls("the step to start", |c| {
        c.contains(&"sync_step started".to_owned())
    });
    for n in 2..=3 {
        h.ring(&input, RING_WEBHOOK);
        h.wait_calls("the live lane", |c| {
            c.iter().filter(|c| **c == live).count() == n
        });
    }
    // The step has not ended meanwhile.
    assert_eq!(h.count("sync_step -> Ready"), 0, "{:#?}", h.script.calls());
    h.script.gate.as_ref().unwrap().add_permits(1);
    h.wait_calls("the step to end", |c| {
        c.contains(&"sync_step -> Ready".to_owned())
    });
}

#[test]
fn a_failed_step_waits_for_an_update_and_pause_resume_and_delete_are_obeyed() {
    let h = Harness::start(Script {
        outcomes: Mutex::new([StepOutcome::Failed].into()),
        ..Script::default()
    });
    let input = h.input("wf-3", 0);
    h.ring(&input, "created");
    h.wait_calls("the failed step", |c| {
        c.contains(&"sync_step -> Failed".to_owned())
    });
    // The retry timer is an hour: nothing runs until the pipeline is updated.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(h.count("sync_step started"), 1);
    h.desire(&input, Desired::Active);
    h.wait_calls("the retry", |c| {
        c.contains(&"sync_step -> Ready".to_owned())
    });

    h.desire(&input, Desired::Paused);
    h.wait_calls("the pause", |c| c.contains(&"pause".to_owned()));
    let steps = h.count("sync_step started");
    h.ring(&input, "sync requested");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(h.count("sync_step started"), steps, "paused: no step");
    h.desire(&input, Desired::Active);
    h.wait_calls("a step after resume", |c| {
        c.iter().filter(|c| *c == "sync_step started").count() > steps
    });

    h.desire(&input, Desired::Deleted);
    let temporal = h.temporal();
    let result = h.runtime.block_on(temporal.wait_for_end("wf-3")).unwrap();
    assert_eq!(result, "pipeline wf-3 deleted");
    assert_eq!(h.count("delete"), 1);
}

#[test]
fn the_reconcile_timer_survives_continue_as_new() {
    let h = Harness::start(Script::default());
    // One child per run, a reconcile every 4 s: each reconcile comes from a later run.
    let mut input = h.input("wf-4", 0);
    input.ops_per_run = 1;
    input.reconcile_secs = 4;
    h.ring(&input, "created");
    h.wait_calls("two reconciles", |c| {
        c.iter()
            .filter(|c| *c == "sync_step(from scratch) -> Ready")
            .count()
            >= 2
    });
    // The first catch-up is not repeated by each new run: runs wait for the timer they carry.
    assert_eq!(h.count("sync_step started"), 1, "{:#?}", h.script.calls());
    // Continued as new at least twice: the latest run is not the first.
    let temporal = h.temporal();
    let history = h.runtime.block_on(temporal.history_json("wf-4")).unwrap();
    let history: serde_json::Value = serde_json::from_slice(&history).unwrap();
    let started = &history["events"][0]["attributes"]["WorkflowExecutionStartedEventAttributes"];
    assert_ne!(
        started["continued_execution_run_id"], "",
        "the latest run was continued from another: {started}"
    );
}

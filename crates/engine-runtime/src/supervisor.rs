//! One sync run's processes: spawn `read` and `write`, run the pump, save what the destination
//! acknowledges, and stop cleanly on limits, signals, crashes and hangs.
//!
//! Every wait is part of one select loop, so a second Ctrl-C kills at once whatever the run is
//! waiting for. A connector is blamed for a hang only when it is the one being waited for: the
//! source while the pump waits for its next line (not while the destination holds the pump
//! up), the destination while the pump cannot write to it, while a state it was sent waits for
//! its acknowledgement, or after its input ended.

use std::collections::VecDeque;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::Value;
use sync_protocol::airbyte;
use sync_protocol::{ConfiguredCatalog, Eof, EofReason, Message, RunStatus, SyncState};
use tokio::io::{AsyncBufReadExt, BufReader, BufWriter};
use tokio::process::Child;
use tokio::sync::{mpsc, oneshot};

use crate::connector::{Connector, Dialect, signal_group, tail};
use crate::pump::{Clock, DestInput, Shared, Stop, pump, read_destination};
use crate::tracker::FailureCode;
use crate::tracker::Tracker;
use sync_engine_api::{Emitter, Outbox};

/// How long a stopped source may take to exit before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);
const STDERR_TAIL_LINES: usize = 20;

pub(crate) struct RunSpec<'a> {
    pub source: &'a Connector,
    pub destination: &'a Connector,
    pub source_config: Value,
    pub destination_config: Value,
    pub catalog: ConfiguredCatalog,
    pub initial: SyncState,
    /// Where the run reports committed states, statuses, config updates, logs and progress.
    pub events: Outbox,
    /// Who the source's messages are from (`source/stripe`).
    pub source_by: Emitter,
    /// Who the destination's messages are from (`destination/postgres`).
    pub destination_by: Emitter,
    /// Resolves (or is dropped) when whoever asked for the run goes away: both connectors are
    /// killed at once.
    pub cancel: oneshot::Receiver<()>,
    /// The source is stopped gracefully then; the destination commits what it has.
    pub soft_deadline: Option<Instant>,
    /// Both connectors are killed then; what is committed stands.
    pub hard_deadline: Option<Instant>,
    pub state_limit: Option<u64>,
    pub connector_timeout: Duration,
    /// Push-mode input for the source, written to its stdin as `source_input` lines.
    pub input: Vec<Value>,
}

/// Collects a child's stderr: kept for error messages, relayed to the engine's log.
fn collect_stderr(
    name: String,
    stderr: tokio::process::ChildStderr,
) -> Arc<Mutex<VecDeque<String>>> {
    let tail = Arc::new(Mutex::new(VecDeque::new()));
    let keep = tail.clone();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let line = sync_connector::redact::redact(&line).into_owned();
            if line.contains("ERROR") || line.contains("WARN") {
                tracing::warn!(connector = %name, "{line}");
            } else {
                tracing::debug!(connector = %name, "{line}");
            }
            let mut t = keep.lock().unwrap_or_else(|e| e.into_inner());
            if t.len() == STDERR_TAIL_LINES {
                t.pop_front();
            }
            t.push_back(line);
        }
    });
    tail
}

fn tail_of(buffer: &Arc<Mutex<VecDeque<String>>>) -> String {
    let lines: Vec<String> = buffer
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .cloned()
        .collect();
    tail(&lines.join("\n"), 8)
}

/// A connector process and what became of it.
struct Process {
    child: Child,
    pid: Option<u32>,
    status: Option<ExitStatus>,
    exited_at: Option<Instant>,
    /// We killed it (its exit is then ours, not a failure).
    killed: bool,
}

impl Process {
    fn new(child: Child) -> Process {
        Process {
            pid: child.id(),
            child,
            status: None,
            exited_at: None,
            killed: false,
        }
    }

    fn exited(&mut self, status: Option<ExitStatus>) {
        self.status = Some(status.unwrap_or_else(failed_status));
        self.exited_at = Some(Instant::now());
    }

    /// Kills what the connector left running in its group once it has been gone a while: a
    /// child that holds its output open would keep the run waiting.
    fn kill_leftovers(&self) {
        if let (Some(pid), Some(at)) = (self.pid, self.exited_at)
            && at.elapsed() > STOP_GRACE
        {
            signal_group(pid, libc::SIGKILL);
        }
    }

    fn running(&self) -> bool {
        self.status.is_none()
    }

    /// Signals the connector's process group (it runs in its own, with whatever it started).
    fn signal(&self, signal: i32) {
        if let Some(pid) = self.pid.filter(|_| self.running()) {
            signal_group(pid, signal);
        }
    }

    fn kill(&mut self) {
        if self.running() {
            self.signal(libc::SIGKILL);
            let _ = self.child.start_kill();
            self.killed = true;
        }
    }
}

/// Files the connectors read for this run.
struct RunFiles {
    source_config: std::path::PathBuf,
    dest_config: std::path::PathBuf,
    source_catalog: std::path::PathBuf,
    dest_catalog: std::path::PathBuf,
    state: Option<std::path::PathBuf>,
    /// Push-mode input, NDJSON `source_input` messages.
    input: Option<std::path::PathBuf>,
}

fn run_files(spec: &RunSpec<'_>) -> Result<RunFiles> {
    let catalog_file = |connector: &Connector| match connector.dialect {
        Dialect::Native => connector.file("catalog.json", &spec.catalog),
        Dialect::Airbyte => connector.file(
            "catalog.json",
            &airbyte::configured_catalog_to_airbyte(&spec.catalog),
        ),
    };
    let state = match spec.source.dialect {
        Dialect::Native => Some(spec.source.file("state.json", &spec.initial.source)?),
        Dialect::Airbyte => {
            let states = airbyte::state_to_airbyte_input(&spec.initial.source);
            if states.is_empty() {
                None
            } else {
                Some(spec.source.file("state.json", &states)?)
            }
        }
    };
    Ok(RunFiles {
        source_config: spec
            .source
            .file("source-config.json", &spec.source_config)?,
        dest_config: spec
            .destination
            .file("destination-config.json", &spec.destination_config)?,
        source_catalog: catalog_file(spec.source)?,
        dest_catalog: catalog_file(spec.destination)?,
        state,
        input: input_file(spec)?,
    })
}

/// The push-mode input as a file of `source_input` lines, when there is any.
fn input_file(spec: &RunSpec<'_>) -> Result<Option<std::path::PathBuf>> {
    if spec.input.is_empty() {
        return Ok(None);
    }
    let mut text = String::new();
    for item in &spec.input {
        text.push_str(&Message::SourceInput(item.clone()).to_line());
        text.push('\n');
    }
    Ok(Some(
        spec.source.file_bytes("input.ndjson", text.as_bytes())?,
    ))
}

/// What the watchdog knows of the run's phases.
#[derive(Default)]
struct Phases {
    pump_done_at: Option<u64>,
    dest_reader_done: bool,
    /// When the source was asked to stop.
    stop_sent_at: Option<u64>,
    signals: u32,
}

/// Both connector processes of a run and the tails of their stderr.
struct Pair {
    source: Process,
    destination: Process,
    source_tail: Arc<Mutex<VecDeque<String>>>,
    dest_tail: Arc<Mutex<VecDeque<String>>>,
}

/// Starts `write`, then `read`; the destination is killed when the source cannot start.
fn spawn_pair(spec: &RunSpec<'_>, files: &RunFiles) -> Result<Pair> {
    let mut destination = Process::new(spec.destination.spawn(
        "write",
        &[
            ("config", &files.dest_config),
            ("catalog", &files.dest_catalog),
        ],
        Stdio::piped(),
    )?);
    let mut read_flags = vec![
        ("config", &files.source_config),
        ("catalog", &files.source_catalog),
    ];
    if let Some(state) = &files.state {
        read_flags.push(("state", state));
    }
    if let Some(input) = &files.input {
        read_flags.push(("input", input));
    }
    let mut source = match spec.source.spawn("read", &read_flags, Stdio::null()) {
        Ok(s) => Process::new(s),
        Err(e) => {
            destination.kill();
            return Err(e);
        }
    };
    let source_tail = collect_stderr(
        spec.source.name().to_owned(),
        source.child.stderr.take().context("stderr")?,
    );
    let dest_tail = collect_stderr(
        spec.destination.name().to_owned(),
        destination.child.stderr.take().context("stderr")?,
    );
    Ok(Pair {
        source,
        destination,
        source_tail,
        dest_tail,
    })
}

/// The state shared with the pump.
fn start_shared(
    spec: &RunSpec<'_>,
    tracker: &Arc<Tracker>,
    streams: Vec<String>,
) -> (Arc<Shared>, mpsc::UnboundedReceiver<EofReason>) {
    let (stop_tx, stop_rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        tracker: tracker.clone(),
        stop: Stop::default(),
        clock: Clock::new(),
        source_wait_since: Default::default(),
        dest_write_since: Default::default(),
        ack_wait_since: Default::default(),
        dest_activity: Default::default(),
        destination_failed: Default::default(),
        source_name: spec.source.name().to_owned(),
        destination_name: spec.destination.name().to_owned(),
        source_dialect: spec.source.dialect,
        destination_dialect: spec.destination.dialect,
        streams: streams.into_iter().collect(),
        state_limit: spec.state_limit,
        events: spec.events.clone(),
        source_by: spec.source_by.clone(),
        destination_by: spec.destination_by.clone(),
        stop_requests: stop_tx,
    });
    (shared, stop_rx)
}

/// The engine's own SIGINT and SIGTERM, counted.
pub(crate) struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    /// Handles the engine's SIGINT and SIGTERM from now on (the CLI's runs; a server keeps its
    /// own).
    pub(crate) fn install() -> Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    async fn next(signals: &mut Option<Signals>) {
        match signals {
            Some(s) => {
                tokio::select! {
                    _ = s.interrupt.recv() => {}
                    _ = s.terminate.recv() => {}
                }
            }
            None => std::future::pending().await,
        }
    }
}

/// Runs the sync to its end and returns the final eof (also on failure); what happens on the
/// way goes to `spec.events`.
pub(crate) async fn run(
    mut spec: RunSpec<'_>,
    mut signals: Option<Signals>,
) -> Result<(Eof, Arc<Tracker>)> {
    let streams: Vec<String> = spec
        .catalog
        .streams
        .iter()
        .map(|s| s.stream.name.clone())
        .collect();
    let check_counts = spec.destination.dialect == Dialect::Native;
    let tracker = Arc::new(Tracker::new(
        streams.clone(),
        spec.initial.clone(),
        check_counts,
    ));
    let files = run_files(&spec)?;
    let mut pair = spawn_pair(&spec, &files)?;
    let (shared, stop_rx) = start_shared(&spec, &tracker, streams);
    let dest_in = DestInput {
        out: BufWriter::with_capacity(
            256 * 1024,
            pair.destination.child.stdin.take().context("stdin")?,
        ),
        dialect: spec.destination.dialect,
    };
    let tasks = Tasks {
        pump: tokio::spawn(pump(
            shared.clone(),
            pair.source.child.stdout.take().context("stdout")?,
            dest_in,
        )),
        dest_reader: tokio::spawn(read_destination(
            shared.clone(),
            pair.destination.child.stdout.take().context("stdout")?,
        )),
    };
    let watchdog = Watchdog {
        timeout_ms: spec.connector_timeout.as_millis() as u64,
        soft_deadline: spec.soft_deadline,
        hard_deadline: spec.hard_deadline,
    };
    let waits = Waits {
        stop_rx,
        signals: &mut signals,
        cancel: &mut spec.cancel,
    };
    supervise(&shared, &mut pair, tasks, waits, &watchdog).await;
    let stopped = shared.stop.reason();
    drop(shared);
    conclude(&spec, &tracker, &pair, stopped);
    let progress = tracker.progress();
    // A source stopped after it completed every stream (a live one, signalled to end) that
    // then ended cleanly, its last state committed, finished its work: the run succeeded.
    let stopped = match stopped {
        Some(EofReason::Aborted) if ended_cleanly(&pair, &progress) => None,
        other => other,
    };
    Ok((eof(&tracker, progress, stopped), tracker))
}

fn ended_cleanly(pair: &Pair, progress: &sync_protocol::Progress) -> bool {
    let exited_0 = |p: &Process| !p.killed && p.status.is_some_and(|s| s.success());
    exited_0(&pair.source)
        && exited_0(&pair.destination)
        && !progress.streams.is_empty()
        && progress.streams.values().all(|s| {
            matches!(
                s.status,
                sync_protocol::StreamProgressStatus::Completed
                    | sync_protocol::StreamProgressStatus::Skipped
            )
        })
}

/// What the supervisor waits for besides the processes and tasks.
struct Waits<'a> {
    stop_rx: mpsc::UnboundedReceiver<EofReason>,
    signals: &'a mut Option<Signals>,
    cancel: &'a mut oneshot::Receiver<()>,
}

/// The pump and the reader of the destination's output.
struct Tasks {
    pump: tokio::task::JoinHandle<()>,
    dest_reader: tokio::task::JoinHandle<()>,
}

/// Waits until both tasks ended and both processes exited, reacting to stop requests,
/// signals, hangs and limits meanwhile.
async fn supervise(
    shared: &Shared,
    pair: &mut Pair,
    mut tasks: Tasks,
    mut waits: Waits<'_>,
    watchdog: &Watchdog,
) {
    let Pair {
        source,
        destination,
        ..
    } = pair;
    let mut ticker = tokio::time::interval(Duration::from_millis(250));
    let mut phases = Phases::default();
    let mut progress = ProgressReports::default();
    let mut cancelled = false;
    while phases.pump_done_at.is_none()
        || !phases.dest_reader_done
        || source.running()
        || destination.running()
    {
        tokio::select! {
            _ = &mut tasks.pump, if phases.pump_done_at.is_none() => {
                phases.pump_done_at = Some(shared.clock.now());
            }
            _ = &mut tasks.dest_reader, if !phases.dest_reader_done => phases.dest_reader_done = true,
            status = source.child.wait(), if source.running() => source.exited(status.ok()),
            status = destination.child.wait(), if destination.running() => {
                destination.exited(status.ok());
            }
            Some(_) = waits.stop_rx.recv() => {
                if source.running() && phases.stop_sent_at.is_none() {
                    tracing::info!("stopping {} ({:?})", shared.source_name, shared.stop.reason());
                    source.signal(libc::SIGTERM);
                    phases.stop_sent_at = Some(shared.clock.now());
                }
            }
            _ = Signals::next(waits.signals) => phases.signals += 1,
            _ = &mut *waits.cancel, if !cancelled => {
                cancelled = true;
                tracing::warn!("the caller went away: stopping both connectors; what is committed stands");
                shared.stop.request(EofReason::Aborted);
                source.kill();
                destination.kill();
            }
            _ = ticker.tick() => {
                progress.tick(shared);
                watchdog.check(shared, &mut phases, source, destination);
            }
        }
        on_signals(shared, phases.signals, source, destination);
    }
}

/// The first signal stops the source so the destination commits what it has; the second
/// kills both.
fn on_signals(shared: &Shared, signals: u32, source: &mut Process, destination: &mut Process) {
    match signals {
        0 => {}
        1 => {
            if shared.stop.reason().is_none() {
                tracing::warn!(
                    "stopping: the destination commits what it has, then the run ends (signal again to kill)"
                );
                shared.stop_source(EofReason::Aborted);
            }
        }
        _ => {
            if source.running() || destination.running() {
                tracing::warn!("killing both connectors");
            }
            shared.stop.request(EofReason::Aborted);
            source.kill();
            destination.kill();
        }
    }
}

/// Judges how each connector ended once both are gone.
fn conclude(spec: &RunSpec<'_>, tracker: &Tracker, pair: &Pair, stopped: Option<EofReason>) {
    let (source, destination) = (&pair.source, &pair.destination);
    // A source we stopped ends however the signal ends it; that is not a failure.
    check_exit(
        tracker,
        spec.source.name(),
        source.status,
        &pair.source_tail,
        stopped.is_some() || source.killed,
    );
    // A destination we killed (an abort, the hard time limit) ends however the kill ends it.
    check_exit(
        tracker,
        spec.destination.name(),
        destination.status,
        &pair.dest_tail,
        destination.killed && matches!(stopped, Some(EofReason::Aborted | EofReason::TimeLimit)),
    );
    // A source that ended by itself, successfully, read everything it had: streams it never
    // reported on are complete.
    if stopped.is_none() && source.status.is_some_and(|s| s.success()) {
        tracker.complete_open_streams();
    }
    if destination.status.is_some_and(|s| s.success()) {
        let unacknowledged = tracker.unacknowledged();
        if !unacknowledged.is_empty() {
            tracker.fail_as(
                FailureCode::InvariantViolation,
                format!(
                    "{} exited without acknowledging every state it was sent: {}",
                    spec.destination.name(),
                    unacknowledged.join(", ")
                ),
            );
        }
    }
}

fn failed_status() -> ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    ExitStatus::from_raw(1 << 8)
}

/// The hang and limit checks, every tick.
struct Watchdog {
    timeout_ms: u64,
    soft_deadline: Option<Instant>,
    hard_deadline: Option<Instant>,
}

/// Progress reports: at most one a second, and only when something moved.
#[derive(Default)]
struct ProgressReports {
    ticks: u64,
    last: Option<(u64, u64)>,
}

impl ProgressReports {
    fn tick(&mut self, shared: &Shared) {
        self.ticks += 1;
        if !self.ticks.is_multiple_of(4) {
            return;
        }
        let progress = shared.tracker.progress();
        let moved = (
            progress.derived.total_record_count,
            progress.derived.total_state_count,
        );
        if self.last != Some(moved) {
            self.last = Some(moved);
            shared
                .events
                .send(&Emitter::engine(), Message::Progress(Box::new(progress)));
        }
    }
}

impl Watchdog {
    /// Stops the source at the soft time limit, and both connectors at the hard one.
    fn time_limits(&self, shared: &Shared, source: &mut Process, destination: &mut Process) {
        if self.soft_deadline.is_some_and(|d| Instant::now() >= d) && source.running() {
            shared.stop_source(EofReason::TimeLimit);
        }
        if self.hard_deadline.is_some_and(|d| Instant::now() >= d)
            && (source.running() || destination.running())
        {
            tracing::warn!("the hard time limit is reached: stopping both connectors");
            shared.stop.request(EofReason::TimeLimit);
            source.kill();
            destination.kill();
        }
    }

    /// What a running destination has failed to do for longer than the timeout, if anything.
    fn destination_hung(&self, shared: &Shared, phases: &Phases, now: u64) -> Option<String> {
        let waited = |since: u64| since > 0 && now.saturating_sub(since) > self.timeout_ms;
        let secs = self.timeout_ms / 1000;
        let input_ended_long_ago = phases
            .pump_done_at
            .is_some_and(|closed| waited(closed.max(shared.dest_activity.load(Ordering::Relaxed))));
        if waited(shared.dest_write_since.load(Ordering::Relaxed)) {
            Some(format!("read nothing of its input for {secs}s"))
        } else if input_ended_long_ago {
            Some(format!(
                "neither wrote nor exited for {secs}s after its input ended"
            ))
        } else if waited(shared.ack_wait_since.load(Ordering::Relaxed)) {
            Some(format!(
                "acknowledged no state for {secs}s (a state it was sent is still not committed)"
            ))
        } else {
            None
        }
    }

    fn check(
        &self,
        shared: &Shared,
        phases: &mut Phases,
        source: &mut Process,
        destination: &mut Process,
    ) {
        let now = shared.clock.now();
        let waited = |since: u64| since > 0 && now.saturating_sub(since) > self.timeout_ms;
        let secs = self.timeout_ms / 1000;
        let tracker = &shared.tracker;
        self.time_limits(shared, source, destination);
        if source.running()
            && !shared.stop.requested()
            && waited(shared.source_wait_since.load(Ordering::Relaxed))
        {
            tracker.fail_as(FailureCode::ConnectorTimeout, format!(
                "{} wrote nothing for {secs}s while the engine waited for it, and did not exit: stopped as hung",
                shared.source_name
            ));
            shared.stop_source(EofReason::Error);
            source.kill();
        }
        if destination.running()
            && let Some(what) = self.destination_hung(shared, phases, now)
        {
            tracker.fail_as(
                FailureCode::ConnectorTimeout,
                format!("{} {what}: stopped as hung", shared.destination_name),
            );
            destination.kill();
            shared.stop_source(EofReason::Error);
        }
        // A source asked to stop gets a grace period, then is killed.
        if let Some(sent) = phases.stop_sent_at
            && source.running()
            && now.saturating_sub(sent) > STOP_GRACE.as_millis() as u64
        {
            source.kill();
        }
        // A source that closed its output must exit; one that exited must close it (a child it
        // left behind may hold it open).
        if let Some(done) = phases.pump_done_at
            && source.running()
            && !shared.stop.requested()
            && now.saturating_sub(done) > self.timeout_ms
        {
            tracker.fail(format!(
                "{} closed its output but did not exit for {secs}s: killed",
                shared.source_name
            ));
            source.kill();
        }
        if !source.running() && phases.pump_done_at.is_none() {
            source.kill_leftovers();
        }
        if !destination.running() && !phases.dest_reader_done {
            destination.kill_leftovers();
        }
    }
}

/// Records a failure for a connector that exited badly.
fn check_exit(
    tracker: &Tracker,
    name: &str,
    status: Option<ExitStatus>,
    stderr: &Arc<Mutex<VecDeque<String>>>,
    stopped_by_us: bool,
) {
    if status.is_some_and(|s| s.success()) || stopped_by_us {
        return;
    }
    let what = match status {
        Some(s) => match s.code() {
            Some(code) => format!("exited with status {code}"),
            None => format!("was killed by a signal ({s})"),
        },
        None => "could not be waited for".to_owned(),
    };
    let tail = tail_of(stderr);
    tracker.fail(if tail.is_empty() {
        format!("{name} {what}")
    } else {
        format!("{name} {what}; the end of its stderr:\n{tail}")
    });
}

/// The run's end as it is: succeeded only when every stream completed (or was skipped) with no
/// failure; `has_more` whenever anything is left for a rerun.
pub(crate) fn eof(
    tracker: &Tracker,
    progress: sync_protocol::Progress,
    stopped: Option<EofReason>,
) -> Eof {
    let failed = !tracker.failures().is_empty()
        || progress
            .streams
            .values()
            .any(|s| s.status == sync_protocol::StreamProgressStatus::Errored);
    let (status, reason) = match stopped {
        Some(EofReason::Aborted) => (RunStatus::Failed, EofReason::Aborted),
        _ if failed => (RunStatus::Failed, EofReason::Error),
        Some(limit) => (RunStatus::Started, limit),
        None => (RunStatus::Succeeded, EofReason::Complete),
    };
    let error = if reason == EofReason::Error {
        tracker.error(&progress)
    } else {
        None
    };
    Eof {
        status,
        reason: Some(reason),
        has_more: status != RunStatus::Succeeded,
        ending_state: Some(tracker.state()),
        run_progress: Some(progress.clone()),
        request_progress: Some(progress),
        error,
        extra: Default::default(),
    }
}

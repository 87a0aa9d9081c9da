//! One sync run: spawn `read` and `write`, forward the source's records and states to the
//! destination with backpressure (record lines byte for byte), persist only the states the
//! destination re-emits after committing, and stop cleanly on limits, signals, crashes and hangs.

use std::collections::{HashSet, VecDeque};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::Value;
use sync_protocol::airbyte::{self, AirbyteMessage};
use sync_protocol::framing::DEFAULT_MAX_LINE_BYTES;
use sync_protocol::peek::{Peeked, peek};
use sync_protocol::{
    ConfiguredCatalog, Eof, EofReason, LogLevel, Message, RunStatus, SourceState, SyncState,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::process::{Child, ChildStdin};
use tokio::sync::watch;

use crate::connector::{Connector, Dialect, airbyte_role, tail};
use crate::lines::LineReader;
use crate::report::Reporter;
use crate::resolve::Role;
use crate::store::StateStore;
use crate::tracker::Tracker;

/// How long a stopped source may take to exit before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);
const STDERR_TAIL_LINES: usize = 20;

pub struct RunSpec<'a> {
    pub source: &'a Connector,
    pub destination: &'a Connector,
    pub source_config: Value,
    pub destination_config: Value,
    pub catalog: ConfiguredCatalog,
    pub initial: SyncState,
    pub store: Arc<StateStore>,
    pub time_limit: Option<Duration>,
    pub state_limit: Option<u64>,
    pub connector_timeout: Duration,
}

/// Why the run stops before the source is exhausted; the first reason wins.
#[derive(Default)]
struct Stop {
    reason: Mutex<Option<EofReason>>,
    requested: AtomicBool,
}

impl Stop {
    fn request(&self, reason: EofReason) -> bool {
        let mut r = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        if r.is_none() {
            *r = Some(reason);
            self.requested.store(true, Ordering::SeqCst);
            return true;
        }
        false
    }

    fn reason(&self) -> Option<EofReason> {
        *self.reason.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Milliseconds since the run started, for activity clocks.
struct Clock(Instant);

impl Clock {
    fn now(&self) -> u64 {
        self.0.elapsed().as_millis() as u64
    }
}

struct Shared {
    tracker: Arc<Tracker>,
    stop: Stop,
    clock: Clock,
    source_activity: AtomicU64,
    /// When the pump started waiting on the destination's stdin (0: not waiting).
    dest_write_since: AtomicU64,
    source_name: String,
    destination_name: String,
    source_dialect: Dialect,
    destination_dialect: Dialect,
    streams: HashSet<String>,
    state_limit: Option<u64>,
    saver: watch::Sender<Option<SyncState>>,
    source_pid: Option<u32>,
    /// Set once the source is reaped: its pid may then belong to another process.
    source_exited: AtomicBool,
    /// When the destination last printed a line.
    dest_activity: AtomicU64,
}

impl Shared {
    fn signal_source(&self, signal: i32) {
        if let Some(pid) = self
            .source_pid
            .filter(|_| !self.source_exited.load(Ordering::SeqCst))
        {
            // SAFETY: kill(2) with a pid we spawned; at worst the process is already gone.
            unsafe {
                libc::kill(pid as i32, signal);
            }
        }
    }

    fn stop_source(&self, reason: EofReason) {
        if self.stop.request(reason) {
            tracing::info!("stopping {} ({reason:?})", self.source_name);
            self.signal_source(libc::SIGTERM);
        }
    }
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

fn relay_log(connector: &str, log: &sync_protocol::Log) {
    let message = sync_connector::redact::redact(&log.message);
    match log.level {
        LogLevel::Error => tracing::error!(connector, "{message}"),
        LogLevel::Warn => tracing::warn!(connector, "{message}"),
        LogLevel::Info => tracing::info!(connector, "{message}"),
        LogLevel::Debug => tracing::debug!(connector, "{message}"),
    }
}

/// The destination's stdin, in its dialect.
struct DestInput {
    out: BufWriter<ChildStdin>,
    dialect: Dialect,
}

impl DestInput {
    async fn write_line(
        &mut self,
        shared: &Shared,
        line: &[u8],
        flush: bool,
    ) -> std::io::Result<()> {
        shared
            .dest_write_since
            .store(shared.clock.now().max(1), Ordering::Relaxed);
        let mut result = self.out.write_all(line).await;
        if result.is_ok() {
            result = self.out.write_all(b"\n").await;
        }
        if result.is_ok() && flush {
            result = self.out.flush().await;
        }
        shared.dest_write_since.store(0, Ordering::Relaxed);
        result
    }

    async fn write_message(&mut self, shared: &Shared, message: &Message) -> std::io::Result<()> {
        let flush = !matches!(message, Message::Record(_));
        let line = match self.dialect {
            Dialect::Native => message.to_line(),
            Dialect::Airbyte => match airbyte::to_airbyte(message) {
                Some(m) => m.to_line(),
                None => return Ok(()),
            },
        };
        self.write_line(shared, line.as_bytes(), flush).await
    }
}

/// Forwards the source's output to the destination until the source's stdout ends.
async fn pump(shared: Arc<Shared>, source_out: tokio::process::ChildStdout, mut dest: DestInput) {
    let mut reader = LineReader::new(
        BufReader::with_capacity(256 * 1024, source_out),
        DEFAULT_MAX_LINE_BYTES,
    );
    let mut unknown_streams: HashSet<String> = HashSet::new();
    let native_to_native =
        shared.source_dialect == Dialect::Native && dest.dialect == Dialect::Native;
    loop {
        if reader.drained() && dest.out.flush().await.is_err() {
            break;
        }
        let (number, line) = match reader.next_line().await {
            None => break,
            Some(Ok(l)) => l,
            Some(Err(e)) => {
                shared.tracker.fail(format!("{}: {e}", shared.source_name));
                shared.stop_source(EofReason::Error);
                break;
            }
        };
        shared
            .source_activity
            .store(shared.clock.now(), Ordering::Relaxed);
        let messages: Vec<Message> = match shared.source_dialect {
            Dialect::Native => match peek(line) {
                // Native records to a native destination go through as the original bytes.
                Ok(Peeked::Record(r)) if native_to_native => {
                    if !shared.streams.contains(r.stream.as_ref()) {
                        if unknown_streams.insert(r.stream.to_string()) {
                            tracing::warn!(
                                "dropping records of stream {:?}, which is not in the catalog",
                                r.stream
                            );
                        }
                        continue;
                    }
                    shared.tracker.forwarded(&r.stream);
                    if dest.write_line(&shared, line, false).await.is_err() {
                        shared.stop_source(EofReason::Error);
                        break;
                    }
                    continue;
                }
                Ok(_) => match Message::from_slice(line) {
                    Ok(m) => vec![m],
                    Err(e) => {
                        shared.tracker.fail(format!(
                            "{} printed an invalid line {number}: {e}",
                            shared.source_name
                        ));
                        shared.stop_source(EofReason::Error);
                        break;
                    }
                },
                Err(e) if e.is_unknown_type() => {
                    tracing::warn!("{}: skipping line {number}: {e}", shared.source_name);
                    continue;
                }
                Err(e) => {
                    shared.tracker.fail(format!(
                        "{} printed an invalid line {number}: {e}",
                        shared.source_name
                    ));
                    shared.stop_source(EofReason::Error);
                    break;
                }
            },
            // Airbyte connectors may print non-protocol lines; the Airbyte platform logs them.
            Dialect::Airbyte => match AirbyteMessage::from_slice(line) {
                Ok(m) => airbyte::from_airbyte(m, airbyte_role(Role::Source)),
                Err(_) => {
                    tracing::debug!(connector = %shared.source_name, "{}", sync_connector::redact::redact(&String::from_utf8_lossy(line)));
                    continue;
                }
            },
        };
        let mut broken = false;
        for message in messages {
            if !handle_source_message(&shared, &mut dest, message, &mut unknown_streams).await {
                // The destination is gone; its exit status says why.
                shared.stop_source(EofReason::Error);
                broken = true;
                break;
            }
        }
        if broken {
            break;
        }
    }
    // Closing stdin tells the destination to flush and acknowledge what it has.
    let _ = dest.out.flush().await;
    let _ = dest.out.shutdown().await;
}

/// Handles one non-forwarded-as-bytes source message; false when the destination is gone.
async fn handle_source_message(
    shared: &Shared,
    dest: &mut DestInput,
    message: Message,
    unknown: &mut HashSet<String>,
) -> bool {
    match message {
        Message::Record(record) => {
            if !shared.streams.contains(&record.stream) {
                if unknown.insert(record.stream.clone()) {
                    tracing::warn!(
                        "dropping records of stream {:?}, which is not in the catalog",
                        record.stream
                    );
                }
                return true;
            }
            shared.tracker.forwarded(&record.stream);
            dest.write_message(shared, &Message::Record(record))
                .await
                .is_ok()
        }
        Message::SourceState(state) => {
            if let Some(stream) = state.stream_name()
                && !shared.streams.contains(stream)
            {
                tracing::warn!(
                    "dropping a state of stream {stream:?}, which is not in the catalog"
                );
                return true;
            }
            let count = shared.tracker.state_forwarded(&state);
            let ok = dest
                .write_message(shared, &Message::SourceState(state))
                .await
                .is_ok();
            if shared.state_limit.is_some_and(|limit| count >= limit) {
                shared.stop_source(EofReason::StateLimit);
            }
            ok
        }
        Message::StreamStatus(status) => {
            shared.tracker.stream_status(&status);
            true
        }
        Message::Log(log) => {
            relay_log(&shared.source_name, &log);
            true
        }
        Message::ConnectionStatus(status) => {
            shared.tracker.connection_status(status);
            true
        }
        Message::Control(_) => {
            tracing::warn!(
                "{} asked to replace its config; the engine does not store configs, so update yours",
                shared.source_name
            );
            true
        }
        other => {
            tracing::debug!(
                "{}: ignoring a {} message",
                shared.source_name,
                other.message_type()
            );
            true
        }
    }
}

/// Reads what the destination says: acknowledged states, stream errors, logs.
async fn read_destination(shared: Arc<Shared>, dest_out: tokio::process::ChildStdout) {
    let mut reader = LineReader::new(BufReader::new(dest_out), DEFAULT_MAX_LINE_BYTES);
    while let Some(item) = reader.next_line().await {
        let (number, line) = match item {
            Ok(l) => l,
            Err(e) => {
                shared
                    .tracker
                    .fail(format!("{}: {e}", shared.destination_name));
                break;
            }
        };
        shared
            .dest_activity
            .store(shared.clock.now(), Ordering::Relaxed);
        let messages = match shared.destination_dialect {
            Dialect::Native => match Message::from_slice(line) {
                Ok(m) => vec![m],
                Err(e) if e.is_unknown_type() => continue,
                Err(e) => {
                    shared.tracker.fail(format!(
                        "{} printed an invalid line {number}: {e}",
                        shared.destination_name
                    ));
                    continue;
                }
            },
            Dialect::Airbyte => match AirbyteMessage::from_slice(line) {
                Ok(m) => airbyte::from_airbyte(m, airbyte_role(Role::Destination)),
                Err(_) => continue,
            },
        };
        for message in messages {
            match message {
                Message::SourceState(state) => acknowledge(&shared, &state),
                Message::StreamStatus(status) => shared.tracker.stream_status(&status),
                Message::ConnectionStatus(status) => shared.tracker.connection_status(status),
                Message::Log(log) => relay_log(&shared.destination_name, &log),
                _ => {}
            }
        }
    }
}

fn acknowledge(shared: &Shared, state: &SourceState) {
    match shared.tracker.committed(state) {
        Ok(snapshot) => {
            shared.saver.send_replace(Some(snapshot));
        }
        Err(mismatch) => {
            shared
                .tracker
                .fail(format!("{}: {}", shared.destination_name, mismatch.0));
            shared.stop_source(EofReason::Error);
        }
    }
}

/// Waits for a child, killing it after `limit`. Returns its status and whether it was killed.
async fn wait_or_kill(child: &mut Child, limit: Duration) -> (Option<ExitStatus>, bool) {
    match tokio::time::timeout(limit, child.wait()).await {
        Ok(status) => (status.ok(), false),
        Err(_) => {
            let _ = child.start_kill();
            (child.wait().await.ok(), true)
        }
    }
}

/// Runs the sync to its end and returns the final eof (also on failure).
pub async fn run(spec: RunSpec<'_>, reporter: &mut Reporter) -> Result<(Eof, Arc<Tracker>)> {
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

    // Files the connectors read.
    let source_config = spec
        .source
        .file("source-config.json", &spec.source_config)?;
    let dest_config = spec
        .destination
        .file("destination-config.json", &spec.destination_config)?;
    let (source_catalog, dest_catalog) = (
        catalog_file(spec.source, &spec.catalog)?,
        catalog_file(spec.destination, &spec.catalog)?,
    );
    let state_file = match spec.source.dialect {
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

    // Handlers before the children exist, so no signal meant for the engine is missed.
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut destination = spec.destination.spawn(
        "write",
        &[("config", &dest_config), ("catalog", &dest_catalog)],
        Stdio::piped(),
    )?;
    let mut read_flags = vec![("config", &source_config), ("catalog", &source_catalog)];
    if let Some(state) = &state_file {
        read_flags.push(("state", state));
    }
    let mut source = match spec.source.spawn("read", &read_flags, Stdio::null()) {
        Ok(s) => s,
        Err(e) => {
            let _ = destination.start_kill();
            return Err(e);
        }
    };
    let source_tail = collect_stderr(
        spec.source.name().to_owned(),
        source.stderr.take().context("stderr")?,
    );
    let dest_tail = collect_stderr(
        spec.destination.name().to_owned(),
        destination.stderr.take().context("stderr")?,
    );

    let (saver_tx, mut saver_rx) = watch::channel::<Option<SyncState>>(None);
    let store = spec.store.clone();
    let save_tracker = tracker.clone();
    let saver = tokio::spawn(async move {
        loop {
            let closed = saver_rx.changed().await.is_err();
            let snapshot = saver_rx.borrow_and_update().clone();
            if let Some(state) = snapshot
                && let Err(e) = store.save(&state).await
            {
                save_tracker.fail(format!("saving the state failed: {e:#}"));
            }
            if closed {
                break;
            }
        }
    });

    let shared = Arc::new(Shared {
        tracker: tracker.clone(),
        stop: Stop::default(),
        clock: Clock(Instant::now()),
        source_activity: AtomicU64::new(0),
        dest_write_since: AtomicU64::new(0),
        source_name: spec.source.name().to_owned(),
        destination_name: spec.destination.name().to_owned(),
        source_dialect: spec.source.dialect,
        destination_dialect: spec.destination.dialect,
        streams: streams.into_iter().collect(),
        state_limit: spec.state_limit,
        saver: saver_tx,
        source_pid: source.id(),
        source_exited: AtomicBool::new(false),
        dest_activity: AtomicU64::new(0),
    });
    let dest_in = DestInput {
        out: BufWriter::with_capacity(256 * 1024, destination.stdin.take().context("stdin")?),
        dialect: spec.destination.dialect,
    };
    let mut pump_task = tokio::spawn(pump(
        shared.clone(),
        source.stdout.take().context("stdout")?,
        dest_in,
    ));
    let mut dest_task = tokio::spawn(read_destination(
        shared.clone(),
        destination.stdout.take().context("stdout")?,
    ));

    let mut ticker = tokio::time::interval(Duration::from_millis(250));
    let deadline = spec.time_limit.map(|t| Instant::now() + t);
    let timeout_ms = spec.connector_timeout.as_millis() as u64;
    let mut signals = 0;
    let (mut pump_done, mut dest_done) = (false, false);
    let mut source_status: Option<ExitStatus> = None;
    let mut source_killed = false;
    let mut stop_started: Option<Instant> = None;
    let mut input_closed_at: Option<u64> = None;
    while !(pump_done && dest_done) {
        tokio::select! {
            _ = &mut pump_task, if !pump_done => {
                pump_done = true;
                input_closed_at = Some(shared.clock.now());
            }
            _ = &mut dest_task, if !dest_done => dest_done = true,
            status = source.wait(), if source_status.is_none() => {
                source_status = status.ok();
                shared.source_exited.store(true, Ordering::SeqCst);
            }
            _ = sigint.recv() => signals += 1,
            _ = sigterm.recv() => signals += 1,
            _ = ticker.tick() => {
                reporter.tick(&tracker.progress());
                let now = shared.clock.now();
                if deadline.is_some_and(|d| Instant::now() >= d) && source_status.is_none() {
                    shared.stop_source(EofReason::TimeLimit);
                }
                if source_status.is_none() && !shared.stop.requested.load(Ordering::SeqCst) && now.saturating_sub(shared.source_activity.load(Ordering::Relaxed)) > timeout_ms {
                    tracker.fail(format!("{} wrote nothing for {}s and did not exit: stopped as hung", shared.source_name, timeout_ms / 1000));
                    shared.stop_source(EofReason::Error);
                }
                let since = shared.dest_write_since.load(Ordering::Relaxed);
                if since > 0 && now.saturating_sub(since) > timeout_ms {
                    tracker.fail(format!("{} read nothing for {}s: stopped as hung", shared.destination_name, timeout_ms / 1000));
                    let _ = destination.start_kill();
                    shared.stop_source(EofReason::Error);
                }
                // After its input ended, the destination must finish: print or exit in time.
                if let Some(closed) = input_closed_at
                    && !dest_done
                    && now.saturating_sub(closed.max(shared.dest_activity.load(Ordering::Relaxed))) > timeout_ms
                {
                    tracker.fail(format!("{} neither wrote nor exited for {}s after its input ended: stopped as hung", shared.destination_name, timeout_ms / 1000));
                    let _ = destination.start_kill();
                }
            }
        }
        if signals == 1 && shared.stop.reason().is_none() && source_status.is_none() {
            tracing::warn!(
                "stopping: the destination commits what it has, then the run ends (signal again to kill)"
            );
            shared.stop_source(EofReason::Aborted);
        }
        if signals >= 2 {
            tracing::warn!("killing both connectors");
            let _ = source.start_kill();
            let _ = destination.start_kill();
            source_killed = true;
            signals = 1;
            shared.stop.request(EofReason::Aborted);
        }
        if shared.stop.requested.load(Ordering::SeqCst) && source_status.is_none() {
            let started = *stop_started.get_or_insert_with(Instant::now);
            if started.elapsed() > STOP_GRACE && !source_killed {
                let _ = source.start_kill();
                source_killed = true;
            }
        }
        if pump_done && source_status.is_none() && !shared.stop.requested.load(Ordering::SeqCst) {
            // The source closed stdout; it should exit now.
            let (status, killed) = wait_or_kill(&mut source, spec.connector_timeout).await;
            source_status = status;
            source_killed |= killed;
        }
    }
    if source_status.is_none() {
        let (status, killed) = wait_or_kill(&mut source, STOP_GRACE).await;
        source_status = status;
        source_killed |= killed;
    }
    let (dest_status, _) = wait_or_kill(&mut destination, spec.connector_timeout).await;
    let stopped = shared.stop.reason();
    drop(shared);
    let _ = saver.await;

    // A source we stopped ends however the signal ends it; that is not a failure.
    check_exit(
        &tracker,
        spec.source.name(),
        source_status,
        &source_tail,
        stopped.is_some() || source_killed,
    );
    check_exit(
        &tracker,
        spec.destination.name(),
        dest_status,
        &dest_tail,
        false,
    );
    // A source that ended by itself, successfully, read everything it had: streams it never
    // reported on are complete.
    if stopped.is_none() && source_status.is_some_and(|s| s.success()) {
        tracker.complete_open_streams();
    }
    if dest_status.is_some_and(|s| s.success()) {
        let unacknowledged = tracker.unacknowledged();
        if !unacknowledged.is_empty() {
            tracker.fail(format!(
                "{} exited without acknowledging every state it was sent: {}",
                spec.destination.name(),
                unacknowledged.join(", ")
            ));
        }
    }
    let progress = tracker.progress();
    reporter.tick(&progress);
    Ok((eof(&tracker, progress, stopped), tracker))
}

fn catalog_file(connector: &Connector, catalog: &ConfiguredCatalog) -> Result<std::path::PathBuf> {
    match connector.dialect {
        Dialect::Native => connector.file("catalog.json", catalog),
        Dialect::Airbyte => connector.file(
            "catalog.json",
            &airbyte::configured_catalog_to_airbyte(catalog),
        ),
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

fn eof(tracker: &Tracker, progress: sync_protocol::Progress, stopped: Option<EofReason>) -> Eof {
    let failed = !tracker.failures().is_empty()
        || progress
            .streams
            .values()
            .any(|s| s.status == sync_protocol::StreamProgressStatus::Errored);
    let (status, reason) = match stopped {
        _ if failed => (RunStatus::Failed, EofReason::Error),
        Some(limit) => (RunStatus::Started, limit),
        None => (RunStatus::Succeeded, EofReason::Complete),
    };
    let has_more = status == RunStatus::Started;
    Eof {
        status,
        reason: Some(reason),
        has_more,
        ending_state: Some(tracker.state()),
        run_progress: Some(progress.clone()),
        request_progress: Some(progress),
        extra: Default::default(),
    }
}

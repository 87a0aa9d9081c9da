//! The messages of one run: the source's output forwarded to the destination with
//! backpressure (native record lines byte for byte), the destination's acknowledgements
//! turned into committed snapshots for the saver, and `control` config updates handed to the
//! store. What happens to the processes is the supervisor's business ([`crate::supervisor`]).

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use serde_json::Value;
use sync_protocol::airbyte::{self, AirbyteMessage};
use sync_protocol::framing::DEFAULT_MAX_LINE_BYTES;
use sync_protocol::peek::{Peeked, peek};
use sync_protocol::{Control, EofReason, LogLevel, Message, StreamStatusKind};
use tokio::io::{AsyncWriteExt, BufReader, BufWriter};
use tokio::process::ChildStdin;
use tokio::sync::mpsc;

use crate::connector::Dialect;
use crate::lines::LineReader;
use crate::resolve::Role;
use crate::tracker::Tracker;
use sync_engine_api::{Emitter, Outbox};

/// Why the run stops before the source is exhausted; the first reason wins.
#[derive(Default)]
pub(crate) struct Stop {
    reason: Mutex<Option<EofReason>>,
    requested: AtomicBool,
}

impl Stop {
    pub(crate) fn request(&self, reason: EofReason) -> bool {
        let mut r = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        if r.is_none() {
            *r = Some(reason);
            self.requested.store(true, Ordering::SeqCst);
            return true;
        }
        false
    }

    pub(crate) fn reason(&self) -> Option<EofReason> {
        *self.reason.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }
}

/// Milliseconds since the run started, for activity clocks (0 means "never").
pub(crate) struct Clock(Instant);

impl Clock {
    pub(crate) fn new() -> Clock {
        Clock(Instant::now())
    }

    pub(crate) fn now(&self) -> u64 {
        (self.0.elapsed().as_millis() as u64).max(1)
    }
}

/// What the pump, the destination reader and the supervisor share.
pub(crate) struct Shared {
    pub tracker: std::sync::Arc<Tracker>,
    pub stop: Stop,
    pub clock: Clock,
    /// Since when the pump waits for the source's next line (0: it is not waiting for it).
    pub source_wait_since: AtomicU64,
    /// Since when the pump waits to write to the destination's stdin (0: it is not).
    pub dest_write_since: AtomicU64,
    /// Since when the oldest unacknowledged state waits for the destination (0: none waits).
    pub ack_wait_since: AtomicU64,
    /// When the destination last printed a line.
    pub dest_activity: AtomicU64,
    /// The first stream the destination reported failed.
    pub destination_failed: std::sync::OnceLock<String>,
    pub source_name: String,
    pub destination_name: String,
    pub source_dialect: Dialect,
    pub destination_dialect: Dialect,
    pub streams: HashSet<String>,
    pub state_limit: Option<u64>,
    /// What the run reports: committed states, statuses, config updates, logs, progress.
    pub events: Outbox,
    /// Who the source's messages are from (`source/stripe`).
    pub source_by: Emitter,
    /// Who the destination's messages are from (`destination/postgres`).
    pub destination_by: Emitter,
    /// Asks the source to stop (the supervisor signals it).
    pub stop_requests: mpsc::UnboundedSender<EofReason>,
}

impl Shared {
    /// Records why the run stops and asks the supervisor to stop the source.
    pub(crate) fn stop_source(&self, reason: EofReason) {
        if self.stop.request(reason) {
            let _ = self.stop_requests.send(reason);
        }
    }

    /// Stops the source when a global state waits behind a stream the destination failed: a
    /// global state covers every stream's records, and the failed stream's are dropped, so it
    /// and every later checkpoint can never be acknowledged. Waiting would only end at
    /// --connector-timeout, and a live source never ends by itself.
    fn stop_if_checkpoints_blocked(&self) {
        let Some(stream) = self.destination_failed.get() else {
            return;
        };
        if self.tracker.pending_global_states() > 0 && !self.stop.requested() {
            tracing::error!(
                "{} failed stream {stream:?}: no later checkpoint can be committed, so the run stops",
                self.destination_name
            );
            self.stop_source(EofReason::Error);
        }
    }
}

/// Writes a connector's in-band log line to the engine's log, secrets masked.
pub fn relay_log(connector: &str, log: &sync_protocol::Log) {
    let message = sync_connector::redact::redact(&log.message);
    match log.level {
        LogLevel::Error => tracing::error!(connector, "{message}"),
        LogLevel::Warn => tracing::warn!(connector, "{message}"),
        LogLevel::Info => tracing::info!(connector, "{message}"),
        LogLevel::Debug => tracing::debug!(connector, "{message}"),
    }
}

/// The destination's stdin, in its dialect.
pub(crate) struct DestInput {
    pub out: BufWriter<ChildStdin>,
    pub dialect: Dialect,
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
            .store(shared.clock.now(), Ordering::Relaxed);
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

/// What to do with one line of the source's output.
enum SourceLine<'a> {
    /// A native record (of this stream) for a native destination: forwarded as the original
    /// bytes.
    Forward(std::borrow::Cow<'a, str>),
    Messages(Vec<Message>),
    Skip,
    /// The source broke the protocol; the run fails with this.
    Invalid(String),
}

fn classify_source_line<'a>(
    shared: &Shared,
    number: u64,
    line: &'a [u8],
    native_to_native: bool,
) -> SourceLine<'a> {
    let invalid = |e: &dyn std::fmt::Display| {
        SourceLine::Invalid(format!(
            "{} printed an invalid line {number}: {e}",
            shared.source_name
        ))
    };
    match shared.source_dialect {
        Dialect::Native => match peek(line) {
            Ok(Peeked::Record(r)) if native_to_native => SourceLine::Forward(r.stream),
            Ok(_) => match Message::from_slice(line) {
                Ok(m) => SourceLine::Messages(vec![m]),
                Err(e) => invalid(&e),
            },
            Err(e) if e.is_unknown_type() => {
                tracing::warn!("{}: skipping line {number}: {e}", shared.source_name);
                SourceLine::Skip
            }
            Err(e) => invalid(&e),
        },
        // Airbyte connectors may print non-protocol lines; the Airbyte platform logs them.
        Dialect::Airbyte => match AirbyteMessage::from_slice(line) {
            Ok(m) => SourceLine::Messages(airbyte::from_airbyte(m, Role::Source)),
            Err(_) => {
                tracing::debug!(connector = %shared.source_name, "{}", sync_connector::redact::redact(&String::from_utf8_lossy(line)));
                SourceLine::Skip
            }
        },
    }
}

/// Whether records of `stream` go on; the first record of a stream outside the catalog is
/// reported.
fn admit_records(shared: &Shared, unknown: &mut HashSet<String>, stream: &str) -> bool {
    if shared.streams.contains(stream) {
        return true;
    }
    if unknown.insert(stream.to_owned()) {
        tracing::warn!("dropping records of stream {stream:?}, which is not in the catalog");
    }
    false
}

/// Forwards the source's output to the destination until the source's stdout ends.
pub(crate) async fn pump(
    shared: std::sync::Arc<Shared>,
    source_out: tokio::process::ChildStdout,
    mut dest: DestInput,
) {
    let mut reader = LineReader::new(
        BufReader::with_capacity(256 * 1024, source_out),
        DEFAULT_MAX_LINE_BYTES,
    );
    let mut unknown_streams: HashSet<String> = HashSet::new();
    let native_to_native =
        shared.source_dialect == Dialect::Native && dest.dialect == Dialect::Native;
    'lines: loop {
        if reader.drained() && dest.out.flush().await.is_err() {
            break;
        }
        // The source is on the clock only while the pump waits for it: a source blocked by
        // a slow destination is not hung.
        shared
            .source_wait_since
            .store(shared.clock.now(), Ordering::Relaxed);
        let next = reader.next_line().await;
        shared.source_wait_since.store(0, Ordering::Relaxed);
        let (number, line) = match next {
            None => break,
            Some(Ok(l)) => l,
            Some(Err(e)) => {
                shared.tracker.fail(format!("{}: {e}", shared.source_name));
                shared.stop_source(EofReason::Error);
                break;
            }
        };
        match classify_source_line(&shared, number, line, native_to_native) {
            SourceLine::Skip => {}
            SourceLine::Invalid(why) => {
                shared.tracker.fail(why);
                shared.stop_source(EofReason::Error);
                break;
            }
            SourceLine::Forward(stream) => {
                if !admit_records(&shared, &mut unknown_streams, &stream) {
                    continue;
                }
                shared.tracker.forwarded(&stream);
                if dest.write_line(&shared, line, false).await.is_err() {
                    shared.stop_source(EofReason::Error);
                    break;
                }
            }
            SourceLine::Messages(messages) => {
                for message in messages {
                    if !handle_source_message(&shared, &mut dest, message, &mut unknown_streams)
                        .await
                    {
                        // The destination is gone; its exit status says why.
                        shared.stop_source(EofReason::Error);
                        break 'lines;
                    }
                }
            }
        }
    }
    // Closing stdin tells the destination to flush and acknowledge what it has.
    let _ = dest.out.flush().await;
    let _ = dest.out.shutdown().await;
}

/// Reports a connector's config update; whoever runs the sync saves it.
fn report_control(shared: &Shared, connector: &str, by: &Emitter, control: Control) {
    let config = match &control {
        Control::SourceConfig(config) | Control::DestinationConfig(config) => config,
        Control::DestinationTables(_) => {
            // Tables are reported by setup, before the checkpoint is handed to the source.
            tracing::debug!("{connector} reported its tables during the run; ignored");
            return;
        }
    };
    match config {
        Value::Object(map) => {
            tracing::info!(
                "{connector} updated its config (keys: {}); it is saved and applied from the next run",
                map.keys().cloned().collect::<Vec<_>>().join(", ")
            );
            shared.events.send(by, Message::Control(control));
        }
        _ => tracing::warn!("{connector} sent a config update that is not a JSON object; ignored"),
    }
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
            if !admit_records(shared, unknown, &record.stream) {
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
            let _ = shared.ack_wait_since.compare_exchange(
                0,
                shared.clock.now(),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
            let ok = dest
                .write_message(shared, &Message::SourceState(state))
                .await
                .is_ok();
            if shared.state_limit.is_some_and(|limit| count >= limit) {
                shared.stop_source(EofReason::StateLimit);
            }
            shared.stop_if_checkpoints_blocked();
            ok
        }
        Message::StreamStatus(status) => {
            shared.tracker.stream_status(&status);
            shared
                .events
                .send(&shared.source_by, Message::StreamStatus(status));
            true
        }
        Message::Log(log) => {
            relay_log(&shared.source_name, &log);
            shared.events.send(&shared.source_by, Message::Log(log));
            true
        }
        Message::ConnectionStatus(status) => {
            shared
                .tracker
                .connection_status(status, shared.source_by.as_str());
            true
        }
        Message::Control(control) => {
            report_control(shared, &shared.source_name, &shared.source_by, control);
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

/// Reads what the destination says: acknowledged states, stream errors, logs, config updates.
pub(crate) async fn read_destination(
    shared: std::sync::Arc<Shared>,
    dest_out: tokio::process::ChildStdout,
) {
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
                Ok(m) => airbyte::from_airbyte(m, Role::Destination),
                Err(_) => continue,
            },
        };
        for message in messages {
            match message {
                Message::SourceState(state) => acknowledge(&shared, state),
                Message::StreamStatus(status) => {
                    shared.tracker.stream_status(&status);
                    if matches!(status.kind, StreamStatusKind::Error { .. }) {
                        let _ = shared.destination_failed.set(status.stream.clone());
                        shared.stop_if_checkpoints_blocked();
                    }
                    shared
                        .events
                        .send(&shared.destination_by, Message::StreamStatus(status));
                }
                Message::ConnectionStatus(status) => shared
                    .tracker
                    .connection_status(status, shared.destination_by.as_str()),
                Message::Log(log) => {
                    relay_log(&shared.destination_name, &log);
                    shared
                        .events
                        .send(&shared.destination_by, Message::Log(log));
                }
                Message::Control(control) => report_control(
                    &shared,
                    &shared.destination_name,
                    &shared.destination_by,
                    control,
                ),
                _ => {}
            }
        }
    }
}

fn acknowledge(shared: &Shared, state: sync_protocol::SourceState) {
    match shared.tracker.committed(&state) {
        Ok(()) => {
            // Progress: the clock restarts for the next state still waiting, if any.
            let next = if shared.tracker.pending_states() > 0 {
                shared.clock.now()
            } else {
                0
            };
            shared.ack_wait_since.store(next, Ordering::Relaxed);
            shared
                .events
                .send(&shared.destination_by, Message::SourceState(state));
        }
        Err(mismatch) => {
            shared.tracker.fail_as(
                crate::tracker::FailureCode::InvariantViolation,
                format!("{}: {}", shared.destination_name, mismatch.0),
            );
            shared.stop_source(EofReason::Error);
        }
    }
}

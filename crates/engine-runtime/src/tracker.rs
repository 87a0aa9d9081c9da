//! The run's bookkeeping: records forwarded and committed per stream, the commit check, stream
//! statuses, failures, and the committed state.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::Instant;

use sync_protocol::{
    ConnectionStatus, DerivedProgress, EofError, Progress, RunStatus, SourceState, Status,
    StreamProgress, StreamProgressStatus, StreamStatus, StreamStatusKind, SyncState, TimeRange,
};

#[derive(Debug, Default, Clone)]
pub(crate) struct StreamTrack {
    pub forwarded: u64,
    since_state: u64,
    /// For each forwarded state waiting for the destination's acknowledgement: the records it
    /// covers since the previous one, and the stream's forwarded count when it was sent.
    expected: VecDeque<(u64, u64)>,
    /// Records known committed: the forwarded count at the last acknowledged state (of this
    /// stream, or a global one).
    pub committed: u64,
    /// Records the destination could not store and set aside (reported with its states).
    pub rejected: u64,
    pub states: u64,
    pub status: StreamProgressStatus,
    pub message: Option<String>,
    total_range: Option<TimeRange>,
    completed_ranges: Vec<TimeRange>,
}

#[derive(Debug, Default)]
struct Inner {
    streams: BTreeMap<String, StreamTrack>,
    global_since: u64,
    /// Like `StreamTrack::expected`, with every stream's forwarded count.
    global_expected: VecDeque<(u64, Vec<(String, u64)>)>,
    global_states: u64,
    source_states: u64,
    failures: Vec<Failure>,
    connection_status: Option<ConnectionStatus>,
    state: SyncState,
}

pub(crate) struct Tracker {
    inner: Mutex<Inner>,
    started: Instant,
    started_at: String,
    /// Whether destination acknowledgements carry counts to check.
    check_counts: bool,
}

/// A committed state that does not match what was sent.
#[derive(Debug)]
pub(crate) struct Mismatch(pub String);

/// What kind of failure ended a run: `eof.error.code` (listed in docs/protocol.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureCode {
    /// A connector exited with an error, reported a fatal failure, or broke the protocol.
    ConnectorFailed,
    /// A connector reported a failure only a change of its config can fix (a bad key).
    ConfigError,
    /// A connector stopped answering for longer than the connector timeout and was stopped.
    ConnectorTimeout,
    /// The destination's acknowledgements did not match what it was sent.
    InvariantViolation,
    /// No failure of the run as a whole, but at least one stream failed.
    StreamFailed,
    /// The engine itself failed.
    Internal,
}

impl FailureCode {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            FailureCode::ConnectorFailed => "connector_failed",
            FailureCode::ConfigError => "config_error",
            FailureCode::ConnectorTimeout => "connector_timeout",
            FailureCode::InvariantViolation => "invariant_violation",
            FailureCode::StreamFailed => "stream_failed",
            FailureCode::Internal => "internal",
        }
    }

    /// The error an eof carries.
    pub fn error(self, message: impl Into<String>) -> EofError {
        EofError {
            code: self.as_str().to_owned(),
            message: message.into(),
        }
    }
}

/// One failure of the run.
#[derive(Debug)]
struct Failure {
    code: FailureCode,
    /// As the connector or the engine said it (the `connection_status` the run ends with).
    message: String,
    /// With the connector that reported it named, for `eof.error`.
    named: String,
}

impl Tracker {
    pub(crate) fn new(
        streams: impl IntoIterator<Item = String>,
        state: SyncState,
        check_counts: bool,
    ) -> Tracker {
        let streams = streams
            .into_iter()
            .map(|s| (s, StreamTrack::default()))
            .collect();
        Tracker {
            inner: Mutex::new(Inner {
                streams,
                state,
                ..Default::default()
            }),
            started: Instant::now(),
            started_at: sync_protocol::time::now_rfc3339(),
            check_counts,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A record of `stream` went to the destination.
    pub(crate) fn forwarded(&self, stream: &str) {
        let mut inner = self.lock();
        inner.global_since += 1;
        if let Some(t) = inner.streams.get_mut(stream) {
            t.forwarded += 1;
            t.since_state += 1;
        }
    }

    /// A source state went to the destination; returns the number of source states so far.
    pub(crate) fn state_forwarded(&self, state: &SourceState) -> u64 {
        let mut inner = self.lock();
        match state.stream_name() {
            Some(stream) => {
                if let Some(t) = inner.streams.get_mut(stream) {
                    let covered = std::mem::take(&mut t.since_state);
                    t.expected.push_back((covered, t.forwarded));
                }
            }
            None => {
                let covered = std::mem::take(&mut inner.global_since);
                let marks = inner
                    .streams
                    .iter()
                    .map(|(name, t)| (name.clone(), t.forwarded))
                    .collect();
                inner.global_expected.push_back((covered, marks));
            }
        }
        inner.source_states += 1;
        inner.source_states
    }

    /// The destination acknowledged a state. Checks its count against what was sent and applies
    /// it ([`Tracker::state`] is then the committed state).
    pub(crate) fn committed(&self, state: &SourceState) -> Result<(), Mismatch> {
        let mut inner = self.lock();
        // Records the destination set aside were delivered too: they count against what was sent.
        let reported = state.destination_stats().map(|s| s.committed + s.rejected);
        let rejected = state.destination_stats().map_or(0, |s| s.rejected);
        let (expected, label) = match state.stream_name() {
            Some(stream) => {
                let Some(t) = inner.streams.get_mut(stream) else {
                    return Err(Mismatch(format!(
                        "the destination acknowledged a state of stream {stream:?}, which was never sent"
                    )));
                };
                let expected = t.expected.pop_front();
                t.states += 1;
                t.rejected += rejected;
                if let Some((_, mark)) = expected {
                    t.committed = t.committed.max(mark);
                }
                (
                    expected.map(|(covered, _)| covered),
                    format!("stream {stream:?}"),
                )
            }
            None => {
                inner.global_states += 1;
                let expected = inner.global_expected.pop_front();
                if let Some((_, marks)) = &expected {
                    for (name, mark) in marks {
                        if let Some(t) = inner.streams.get_mut(name) {
                            t.committed = t.committed.max(*mark);
                        }
                    }
                }
                (
                    expected.map(|(covered, _)| covered),
                    "the global state".to_owned(),
                )
            }
        };
        let Some(expected) = expected else {
            return Err(Mismatch(format!(
                "the destination acknowledged a state of {label} that was never sent"
            )));
        };
        if self.check_counts
            && let Some(reported) = reported
            && reported != expected
        {
            return Err(Mismatch(format!(
                "the destination reported {reported} records committed or rejected for {label}, but {expected} were sent before that state"
            )));
        }
        inner.state.apply(state);
        Ok(())
    }

    pub(crate) fn stream_status(&self, status: &StreamStatus) {
        let mut inner = self.lock();
        let t = inner.streams.entry(status.stream.clone()).or_default();
        match &status.kind {
            StreamStatusKind::Start { time_range } => {
                if t.status == StreamProgressStatus::NotStarted {
                    t.status = StreamProgressStatus::Started;
                }
                t.total_range = time_range.clone();
            }
            StreamStatusKind::RangeComplete { range_complete } => {
                t.completed_ranges.push(range_complete.clone())
            }
            StreamStatusKind::Complete {} => {
                if t.status != StreamProgressStatus::Errored {
                    t.status = StreamProgressStatus::Completed;
                }
            }
            StreamStatusKind::Skip { reason } => {
                t.status = StreamProgressStatus::Skipped;
                t.message = Some(reason.clone());
            }
            StreamStatusKind::Error { error } => {
                t.status = StreamProgressStatus::Errored;
                t.message = Some(error.clone());
            }
        }
    }

    /// A connector's `connection_status`; `by` names it (`source/stripe`).
    pub(crate) fn connection_status(&self, status: ConnectionStatus, by: &str) {
        let mut inner = self.lock();
        if status.status == Status::Failed {
            let message = status
                .message
                .clone()
                .unwrap_or_else(|| "a connector failed".into());
            let code = match status.failure_type {
                Some(sync_protocol::FailureType::ConfigError) => FailureCode::ConfigError,
                _ => FailureCode::ConnectorFailed,
            };
            inner.failures.push(Failure {
                code,
                named: format!("{by}: {message}"),
                message,
            });
        }
        inner.connection_status = Some(status);
    }

    /// A failure that ends the run as failed: a connector's (its name is in the message).
    pub(crate) fn fail(&self, message: impl Into<String>) {
        self.fail_as(FailureCode::ConnectorFailed, message);
    }

    /// A failure of a kind that ends the run as failed.
    pub(crate) fn fail_as(&self, code: FailureCode, message: impl Into<String>) {
        let message = message.into();
        self.lock().failures.push(Failure {
            code,
            named: message.clone(),
            message,
        });
    }

    /// What ended the run, for its `eof`: the first failure's kind with every failure's message,
    /// else the streams that failed; `None` when nothing did.
    pub(crate) fn error(&self, progress: &Progress) -> Option<EofError> {
        let inner = self.lock();
        if let Some(first) = inner.failures.first() {
            let messages: Vec<&str> = inner.failures.iter().map(|f| f.named.as_str()).collect();
            return Some(first.code.error(messages.join("\n")));
        }
        let failed: Vec<String> = progress
            .streams
            .iter()
            .filter(|(_, p)| p.status == StreamProgressStatus::Errored)
            .map(|(name, p)| {
                format!(
                    "stream {name:?}: {}",
                    p.message.as_deref().unwrap_or("failed")
                )
            })
            .collect();
        (!failed.is_empty()).then(|| FailureCode::StreamFailed.error(failed.join("\n")))
    }

    /// How the failures should be treated: as the connector said, else a system error.
    pub(crate) fn failure_type(&self) -> Option<sync_protocol::FailureType> {
        let reported = self
            .lock()
            .connection_status
            .as_ref()
            .and_then(|s| s.failure_type);
        Some(reported.unwrap_or(sync_protocol::FailureType::SystemError))
    }

    pub(crate) fn failures(&self) -> Vec<String> {
        self.lock()
            .failures
            .iter()
            .map(|f| f.message.clone())
            .collect()
    }

    pub(crate) fn state(&self) -> SyncState {
        self.lock().state.clone()
    }

    /// States sent to the destination and never acknowledged, per stream (streams that failed
    /// are left out: their states are dropped on purpose).
    pub(crate) fn unacknowledged(&self) -> Vec<String> {
        let inner = self.lock();
        let mut out: Vec<String> = inner
            .streams
            .iter()
            .filter(|(_, t)| t.status != StreamProgressStatus::Errored && !t.expected.is_empty())
            .map(|(name, t)| format!("{} state(s) of stream {name:?}", t.expected.len()))
            .collect();
        if !inner.global_expected.is_empty()
            && !inner
                .streams
                .values()
                .any(|t| t.status == StreamProgressStatus::Errored)
        {
            out.push(format!("{} global state(s)", inner.global_expected.len()));
        }
        out
    }

    /// States forwarded and not acknowledged yet, all streams and global.
    pub(crate) fn pending_states(&self) -> usize {
        let inner = self.lock();
        inner
            .streams
            .values()
            .map(|t| t.expected.len())
            .sum::<usize>()
            + inner.global_expected.len()
    }

    /// Global states forwarded and not yet acknowledged.
    pub(crate) fn pending_global_states(&self) -> usize {
        self.lock().global_expected.len()
    }

    /// Marks every stream still waiting or running as completed.
    pub(crate) fn complete_open_streams(&self) {
        for t in self.lock().streams.values_mut() {
            if matches!(
                t.status,
                StreamProgressStatus::NotStarted | StreamProgressStatus::Started
            ) {
                t.status = StreamProgressStatus::Completed;
            }
        }
    }

    pub(crate) fn progress(&self) -> Progress {
        let inner = self.lock();
        let elapsed = self.started.elapsed();
        let secs = elapsed.as_secs_f64().max(1e-3);
        let total_records: u64 = inner.streams.values().map(|t| t.forwarded).sum();
        let total_states: u64 =
            inner.streams.values().map(|t| t.states).sum::<u64>() + inner.global_states;
        let streams: BTreeMap<String, StreamProgress> = inner
            .streams
            .iter()
            .map(|(name, t)| {
                (
                    name.clone(),
                    StreamProgress {
                        status: t.status,
                        state_count: t.states,
                        record_count: t.forwarded,
                        committed_count: t.committed.saturating_sub(t.rejected),
                        rejected_count: t.rejected,
                        message: t.message.clone(),
                        total_range: t.total_range.clone(),
                        completed_ranges: t.completed_ranges.clone(),
                        extra: Default::default(),
                    },
                )
            })
            .collect();
        let any_running = streams.values().any(|s| {
            matches!(
                s.status,
                StreamProgressStatus::Started | StreamProgressStatus::NotStarted
            )
        });
        let any_errored = streams
            .values()
            .any(|s| s.status == StreamProgressStatus::Errored);
        let status = if !inner.failures.is_empty() {
            RunStatus::Failed
        } else if any_running {
            RunStatus::Started
        } else if any_errored {
            RunStatus::Failed
        } else {
            RunStatus::Succeeded
        };
        Progress {
            started_at: self.started_at.clone(),
            elapsed_ms: elapsed.as_millis() as u64,
            global_state_count: inner.global_states,
            connection_status: inner.connection_status.clone(),
            derived: DerivedProgress {
                status,
                records_per_second: total_records as f64 / secs,
                states_per_second: total_states as f64 / secs,
                total_record_count: total_records,
                total_state_count: total_states,
                extra: Default::default(),
            },
            streams,
            extra: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn acknowledgements_are_checked_against_what_was_sent() {
        let t = Tracker::new(["a".to_owned(), "b".to_owned()], SyncState::default(), true);
        for _ in 0..3 {
            t.forwarded("a");
        }
        t.forwarded("b");
        let s1 = SourceState::stream("a", json!({"n": 3}));
        t.state_forwarded(&s1);
        let g = SourceState::global(json!({"c": 1}));
        t.state_forwarded(&g);
        t.committed(&s1.clone().with_committed(3)).unwrap();
        assert_eq!(t.state().source.streams["a"], json!({"n": 3}));
        assert!(t.committed(&g.clone().with_committed(4)).is_ok());
        t.forwarded("b");
        let s2 = SourceState::stream("b", json!({"n": 2}));
        t.state_forwarded(&s2);
        assert_eq!(
            t.progress().streams["b"].committed_count,
            1,
            "the global state committed b's first record"
        );
        let err = t.committed(&s2.with_committed(1)).unwrap_err();
        assert!(
            err.0.contains("reported 1") && err.0.contains("2 were sent"),
            "{}",
            err.0
        );
        assert!(
            t.committed(&SourceState::stream("a", json!({}))).is_err(),
            "never sent"
        );
    }
}

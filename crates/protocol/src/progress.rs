use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{ConnectionStatus, JsonMap, SyncState, TimeRange};

/// Where a run stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Running, or stopped with more to do.
    #[default]
    Started,
    /// Every stream completed or was skipped, with no failure.
    Succeeded,
    /// A failure or an abort ended it.
    Failed,
}

/// Where one stream stands in a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamProgressStatus {
    /// Nothing read yet.
    #[default]
    NotStarted,
    /// Being read.
    Started,
    /// Read to its end.
    Completed,
    /// The source skipped it.
    Skipped,
    /// It failed.
    Errored,
}

/// A full snapshot of a run's progress, emitted by the engine only.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// When the run started, RFC 3339.
    pub started_at: String,
    /// Milliseconds since then.
    pub elapsed_ms: u64,
    /// Global states the destination acknowledged.
    #[serde(default)]
    pub global_state_count: u64,
    /// The fatal failure, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_status: Option<ConnectionStatus>,
    /// Totals and rates.
    pub derived: DerivedProgress,
    /// Each stream's progress, by name.
    #[serde(default)]
    pub streams: BTreeMap<String, StreamProgress>,
    /// Fields this version does not know, kept for round trips.
    #[serde(flatten)]
    pub extra: JsonMap,
}

/// Figures computed from the streams' counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DerivedProgress {
    /// The run's status.
    pub status: RunStatus,
    /// Records per second since the start.
    pub records_per_second: f64,
    /// Acknowledged states per second since the start.
    pub states_per_second: f64,
    /// Records forwarded, all streams.
    pub total_record_count: u64,
    /// States acknowledged, all streams.
    pub total_state_count: u64,
    /// Fields this version does not know, kept for round trips.
    #[serde(flatten)]
    pub extra: JsonMap,
}

/// One stream's counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamProgress {
    /// Where it stands.
    pub status: StreamProgressStatus,
    /// States the destination acknowledged.
    #[serde(default)]
    pub state_count: u64,
    /// Records the source emitted (and the engine forwarded).
    #[serde(default)]
    pub record_count: u64,
    /// Records the destination reported committed.
    #[serde(default)]
    pub committed_count: u64,
    /// Records the destination could not store and set aside (they are not in `committed_count`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rejected_count: u64,
    /// Why it failed or was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The created-time range the backfill covers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_range: Option<TimeRange>,
    /// Sub-ranges fully read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub completed_ranges: Vec<TimeRange>,
    /// Fields this version does not know, kept for round trips.
    #[serde(flatten)]
    pub extra: JsonMap,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EofReason {
    /// The source had nothing more to read.
    Complete,
    /// `--time-limit` was reached.
    TimeLimit,
    /// `--state-limit` was reached.
    StateLimit,
    /// Stopped by a signal or a caller.
    Aborted,
    /// A failure ended it.
    Error,
}

/// The engine's last message of a run, emitted exactly once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Eof {
    /// How the run ended.
    pub status: RunStatus,
    /// Why the run ended; older engines did not send it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<EofReason>,
    /// True when the run was cut short and a rerun has more to do.
    pub has_more: bool,
    /// The checkpoint to resume from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ending_state: Option<SyncState>,
    /// Progress of the whole run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_progress: Option<Progress>,
    /// Progress of this request (for `sync`, the whole run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_progress: Option<Progress>,
    /// What failed, when `reason` is `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<EofError>,
    /// Fields this version does not know, kept for round trips.
    #[serde(flatten)]
    pub extra: JsonMap,
}

/// Why a run failed, on an `eof` whose `reason` is `error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EofError {
    /// A stable word a program can branch on; the engine's codes are listed in
    /// docs/protocol.md. Kept as text so that an engine's new code still parses.
    pub code: String,
    /// What failed, for people.
    pub message: String,
}

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{ConnectionStatus, JsonMap, SyncState, TimeRange};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    #[default]
    Started,
    Succeeded,
    Failed,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamProgressStatus {
    #[default]
    NotStarted,
    Started,
    Completed,
    Skipped,
    Errored,
}

/// A full snapshot of a run's progress, emitted by the engine only.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub started_at: String,
    pub elapsed_ms: u64,
    #[serde(default)]
    pub global_state_count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_status: Option<ConnectionStatus>,
    pub derived: DerivedProgress,
    #[serde(default)]
    pub streams: BTreeMap<String, StreamProgress>,
    #[serde(flatten)]
    pub extra: JsonMap,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DerivedProgress {
    pub status: RunStatus,
    pub records_per_second: f64,
    pub states_per_second: f64,
    pub total_record_count: u64,
    pub total_state_count: u64,
    #[serde(flatten)]
    pub extra: JsonMap,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamProgress {
    pub status: StreamProgressStatus,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_range: Option<TimeRange>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub completed_ranges: Vec<TimeRange>,
    #[serde(flatten)]
    pub extra: JsonMap,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EofReason {
    /// The source had nothing more to read.
    Complete,
    TimeLimit,
    StateLimit,
    /// Stopped by a signal or a caller.
    Aborted,
    Error,
}

/// The engine's last message of a run, emitted exactly once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Eof {
    pub status: RunStatus,
    /// Why the run ended; older engines did not send it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<EofReason>,
    /// True when the run was cut short and a rerun has more to do.
    pub has_more: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ending_state: Option<SyncState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_progress: Option<Progress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_progress: Option<Progress>,
    #[serde(flatten)]
    pub extra: JsonMap,
}

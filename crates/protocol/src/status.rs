use serde::{Deserialize, Serialize};

use crate::{JsonMap, TimeRange};

/// Whether a check passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// It passed.
    Succeeded,
    /// It failed.
    Failed,
}

/// How a fatal failure should be treated by whoever retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureType {
    /// The user must change the config (bad key, unreachable host): retrying will not help.
    ConfigError,
    /// Retrying later may succeed.
    TransientError,
    /// A bug or an unexpected condition.
    SystemError,
}

/// The result of `check`, and the fatal-failure signal during `read` and `write`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectionStatus {
    /// Passed or failed.
    pub status: Status,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Who must act: the user, time, or a developer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_type: Option<FailureType>,
    /// Fields this version does not know, kept for round trips.
    #[serde(flatten)]
    pub extra: JsonMap,
}

impl ConnectionStatus {
    /// A passed check.
    pub fn succeeded() -> ConnectionStatus {
        ConnectionStatus {
            status: Status::Succeeded,
            message: None,
            failure_type: None,
            extra: JsonMap::new(),
        }
    }

    /// A failure, with its type when known.
    pub fn failed(
        message: impl Into<String>,
        failure_type: Option<FailureType>,
    ) -> ConnectionStatus {
        ConnectionStatus {
            status: Status::Failed,
            message: Some(message.into()),
            failure_type,
            extra: JsonMap::new(),
        }
    }
}

/// One stream's lifecycle event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamStatus {
    /// The stream.
    pub stream: String,
    /// What happened (`status` and its fields, flattened).
    #[serde(flatten)]
    pub kind: StreamStatusKind,
}

/// The `status` of a [`StreamStatus`], with the fields each status carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum StreamStatusKind {
    /// Reading began.
    Start {
        /// The created-time range the backfill covers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        time_range: Option<TimeRange>,
    },
    /// Progress telemetry: a sub-range of the stream is fully read.
    RangeComplete {
        /// The sub-range.
        range_complete: TimeRange,
    },
    /// Read to its end.
    Complete {},
    /// It failed; the other streams go on.
    Error {
        /// What failed.
        error: String,
    },
    /// It was not read.
    Skip {
        /// Why.
        reason: String,
    },
}

impl StreamStatus {
    /// A status of `stream`.
    pub fn new(stream: impl Into<String>, kind: StreamStatusKind) -> StreamStatus {
        StreamStatus {
            stream: stream.into(),
            kind,
        }
    }

    /// `complete`, `error` and `skip` end a stream.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self.kind,
            StreamStatusKind::Complete {}
                | StreamStatusKind::Error { .. }
                | StreamStatusKind::Skip { .. }
        )
    }
}

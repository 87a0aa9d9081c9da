use serde::{Deserialize, Serialize};

use crate::{JsonMap, TimeRange};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Succeeded,
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
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_type: Option<FailureType>,
    #[serde(flatten)]
    pub extra: JsonMap,
}

impl ConnectionStatus {
    pub fn succeeded() -> ConnectionStatus {
        ConnectionStatus {
            status: Status::Succeeded,
            message: None,
            failure_type: None,
            extra: JsonMap::new(),
        }
    }

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
    pub stream: String,
    #[serde(flatten)]
    pub kind: StreamStatusKind,
}

/// The `status` of a [`StreamStatus`], with the fields each status carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum StreamStatusKind {
    Start {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        time_range: Option<TimeRange>,
    },
    /// Progress telemetry: a sub-range of the stream is fully read.
    RangeComplete {
        range_complete: TimeRange,
    },
    Complete {},
    Error {
        error: String,
    },
    Skip {
        reason: String,
    },
}

impl StreamStatus {
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

    pub fn status_name(&self) -> &'static str {
        match self.kind {
            StreamStatusKind::Start { .. } => "start",
            StreamStatusKind::RangeComplete { .. } => "range_complete",
            StreamStatusKind::Complete {} => "complete",
            StreamStatusKind::Error { .. } => "error",
            StreamStatusKind::Skip { .. } => "skip",
        }
    }
}

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::JsonMap;

/// How much a log line matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Detail for debugging.
    Debug,
    /// Normal progress.
    Info,
    /// Something is off but the run goes on.
    Warn,
    /// Something failed.
    Error,
}

/// A log line carried in-band (connectors normally log to stderr; the engine routes these).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Log {
    /// How much it matters.
    pub level: LogLevel,
    /// The text, secrets masked.
    pub message: String,
    /// Structured details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    /// Fields this version does not know, kept for round trips.
    #[serde(flatten)]
    pub extra: JsonMap,
}

impl Log {
    /// A log line with no details.
    pub fn new(level: LogLevel, message: impl Into<String>) -> Log {
        Log {
            level,
            message: message.into(),
            data: None,
            extra: JsonMap::new(),
        }
    }
}

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::JsonMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

/// A log line carried in-band (connectors normally log to stderr; the engine routes these).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Log {
    pub level: LogLevel,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    #[serde(flatten)]
    pub extra: JsonMap,
}

impl Log {
    pub fn new(level: LogLevel, message: impl Into<String>) -> Log {
        Log {
            level,
            message: message.into(),
            data: None,
            extra: JsonMap::new(),
        }
    }
}

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::JsonMap;

/// A data record: one object of one stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The stream it belongs to.
    pub stream: String,
    /// The object itself, a JSON object.
    pub data: Value,
    /// When the source emitted it, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emitted_at: Option<String>,
    /// Fields this version does not know, kept for round trips.
    #[serde(flatten)]
    pub extra: JsonMap,
}

impl Record {
    /// A record emitted now.
    pub fn new(stream: impl Into<String>, data: Value) -> Record {
        Record {
            stream: stream.into(),
            data,
            emitted_at: Some(crate::time::now_rfc3339()),
            extra: JsonMap::new(),
        }
    }
}

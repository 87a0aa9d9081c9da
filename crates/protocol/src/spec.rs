use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::JsonMap;

/// A connector's self-description, the output of `spec`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    /// JSON Schema of the connector's config.
    pub config: Value,
    /// JSON Schema of one stream's state, when the source publishes one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_state_stream: Option<Value>,
    /// JSON Schema of push-mode input (`source_input`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_input: Option<Value>,
    /// Share of the API rate limit the connector aims to stay under (no built-in connector reads it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soft_limit_fraction: Option<f64>,
    /// Fields this version does not know, kept for round trips.
    #[serde(flatten)]
    pub extra: JsonMap,
}

impl Spec {
    /// A spec with this config schema and nothing else.
    pub fn new(config: Value) -> Spec {
        Spec {
            config,
            source_state_stream: None,
            source_input: None,
            soft_limit_fraction: None,
            extra: JsonMap::new(),
        }
    }
}

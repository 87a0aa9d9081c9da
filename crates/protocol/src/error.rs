use thiserror::Error;

/// Why a line could not be turned into a message.
#[derive(Debug, Error)]
pub enum ParseError {
    /// The line is not valid JSON, or not a JSON object.
    #[error("invalid JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// The object has no string `type` field.
    #[error("missing string field `type`")]
    MissingType,
    /// The `type` names no message of this dialect. Orchestrators log and skip these.
    #[error("unknown message type {0:?}")]
    UnknownType(String),
    /// The envelope lacks the payload key its `type` names.
    #[error("message of type {kind:?} has no {key:?} payload")]
    MissingPayload {
        /// The message `type`.
        kind: String,
        /// The payload key it names.
        key: &'static str,
    },
    /// The payload does not have the shape its type requires.
    #[error("invalid {kind} payload: {source}")]
    InvalidPayload {
        /// The message `type`.
        kind: String,
        /// What serde said about the payload.
        #[source]
        source: serde_json::Error,
    },
}

impl ParseError {
    /// True when the line was well-formed JSON but its `type` is not one this dialect knows.
    pub fn is_unknown_type(&self) -> bool {
        matches!(self, ParseError::UnknownType(_))
    }
}

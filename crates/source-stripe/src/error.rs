use std::fmt;

use sync_connector::{EmitError, OutputClosed};
use sync_protocol::framing::FramingError;

/// Why reading a stream (or the events feed) stopped early.
#[derive(Debug)]
pub enum ReadError {
    /// Stripe answered with an error, after retries.
    Stripe(StripeError),
    /// Whoever reads stdout went away.
    Output(OutputClosed),
    /// A record could not be framed as one line.
    Framing(FramingError),
}

impl From<StripeError> for ReadError {
    fn from(e: StripeError) -> Self {
        ReadError::Stripe(e)
    }
}

impl From<OutputClosed> for ReadError {
    fn from(e: OutputClosed) -> Self {
        ReadError::Output(e)
    }
}

impl From<EmitError> for ReadError {
    fn from(e: EmitError) -> Self {
        match e {
            EmitError::Closed(c) => ReadError::Output(c),
            EmitError::Framing(f) => ReadError::Framing(f),
        }
    }
}

/// A failed Stripe request, after retries.
#[derive(Debug, Clone)]
pub struct StripeError {
    pub status: Option<u16>,
    /// Stripe's `error.code` when it sent one.
    pub code: Option<String>,
    pub message: String,
    /// `GET /v1/customers`, for messages.
    pub request: String,
}

/// Messages Stripe gives when a product is not enabled for the account, or a restricted key
/// may not use it: the stream is skipped with the reason, not failed.
const NOT_ENABLED: [&str; 14] = [
    "not set up to use",
    "not enabled",
    "only available in testmode",
    "only available in live mode",
    "isn't available in test mode",
    "is not available in test mode",
    "have you onboarded",
    "unrecognized request url",
    "does not have the required permissions",
    "does not have access",
    "not authorized to",
    "api surface is not enabled",
    "not available for your account",
    "must be enabled",
];

impl StripeError {
    /// An error found on this side (no HTTP status): an unusable answer, a failed task.
    pub fn local(message: impl Into<String>, request: impl Into<String>) -> StripeError {
        StripeError {
            status: None,
            code: None,
            message: message.into(),
            request: request.into(),
        }
    }

    /// The object asked for does not exist (or no longer does).
    pub fn is_not_found(&self) -> bool {
        self.status == Some(404)
    }

    pub fn is_unauthorized(&self) -> bool {
        self.status == Some(401)
    }

    /// The reason to skip the stream, when the error says the feature is unavailable here.
    pub fn skip_reason(&self) -> Option<&str> {
        let status = self.status?;
        if ![400, 403, 404].contains(&status) {
            return None;
        }
        let lower = self.message.to_ascii_lowercase();
        NOT_ENABLED
            .iter()
            .any(|p| lower.contains(p))
            .then_some(self.message.as_str())
    }
}

impl fmt::Display for StripeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.status, &self.code) {
            (Some(status), Some(code)) => {
                write!(f, "{} [{} ({status} {code})]", self.message, self.request)
            }
            (Some(status), None) => write!(f, "{} [{} ({status})]", self.message, self.request),
            (None, _) => write!(f, "{} [{}]", self.message, self.request),
        }
    }
}

impl std::error::Error for StripeError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(status: u16, message: &str) -> StripeError {
        StripeError {
            status: Some(status),
            code: None,
            message: message.into(),
            request: "GET /v1/issuing/cards".into(),
        }
    }

    #[test]
    fn classifies_skippable_errors() {
        assert!(
            err(
                400,
                "Your account is not set up to use Issuing. Please visit …"
            )
            .skip_reason()
            .is_some()
        );
        assert!(
            err(400, "This endpoint is only available in testmode.")
                .skip_reason()
                .is_some()
        );
        assert!(err(403, "The provided key 'rk_test_…' does not have the required permissions for this endpoint").skip_reason().is_some());
        assert!(
            err(404, "Unrecognized request URL (GET: /v1/foo).")
                .skip_reason()
                .is_some()
        );
        assert!(
            err(400, "Authentication failed: must provide a valid API key")
                .skip_reason()
                .is_none(),
            "a near miss is an error"
        );
        assert!(err(500, "not enabled").skip_reason().is_none());
        assert!(err(401, "Invalid API Key provided").is_unauthorized());
        assert_eq!(
            err(404, "No such thing").to_string(),
            "No such thing [GET /v1/issuing/cards (404)]"
        );
    }
}

//! Errors of the Stripe source: a failed request, classified once, when it is made, by what
//! Stripe answered (status, error type and code; for "not enabled" answers, which have no code
//! of their own, the message), and why a stream's read stopped.

use std::fmt;

use sync_connector::{ConnectorError, EmitError, OutputClosed};
use sync_protocol::framing::FramingError;

/// What kind of failure a request ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    /// 401: the key is wrong or revoked.
    Unauthorized,
    /// The product is not enabled for the account, or the key may not use it: skip the stream.
    Unavailable,
    /// 403 for another reason.
    Forbidden,
    /// 404: no such object (or URL).
    NotFound,
    /// 429, after retries.
    RateLimited,
    /// 5xx, after retries.
    Server,
    /// No answer: timeouts, refused or dropped connections, after retries.
    Network,
    /// Any other 4xx.
    Invalid,
    /// Found on this side: an unusable answer, a failed task.
    Local,
}

/// Messages Stripe gives when a product is not enabled for the account, or a restricted key may
/// not use it: Stripe has no error code for these, so the message is all there is.
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

/// A failed Stripe request, after retries.
#[derive(Debug, Clone)]
pub(crate) struct StripeError {
    pub kind: ErrorKind,
    pub status: Option<u16>,
    /// Stripe's `error.code` when it sent one.
    pub code: Option<String>,
    pub message: String,
    /// `GET /v1/customers/cus_1`, for messages.
    pub request: String,
    /// The endpoint's path template (`/v1/customers/{id}`), which names what was asked for.
    pub endpoint: String,
}

impl StripeError {
    /// The error for an HTTP answer that is not a success.
    pub(crate) fn from_answer(
        status: u16,
        code: Option<String>,
        message: String,
        request: String,
        endpoint: &str,
    ) -> StripeError {
        let unavailable = || {
            let lower = message.to_ascii_lowercase();
            NOT_ENABLED.iter().any(|p| lower.contains(p))
        };
        let kind = match status {
            401 => ErrorKind::Unauthorized,
            400 | 403 | 404 if unavailable() => ErrorKind::Unavailable,
            403 => ErrorKind::Forbidden,
            404 => ErrorKind::NotFound,
            429 => ErrorKind::RateLimited,
            500.. => ErrorKind::Server,
            _ => ErrorKind::Invalid,
        };
        StripeError {
            kind,
            status: Some(status),
            code,
            message,
            request,
            endpoint: endpoint.to_owned(),
        }
    }

    /// A request that got no answer.
    pub(crate) fn network(
        message: impl Into<String>,
        request: impl Into<String>,
        endpoint: &str,
    ) -> StripeError {
        StripeError {
            kind: ErrorKind::Network,
            status: None,
            code: None,
            message: message.into(),
            request: request.into(),
            endpoint: endpoint.to_owned(),
        }
    }

    /// An error found on this side (no HTTP status): an unusable answer, a failed task.
    pub(crate) fn local(message: impl Into<String>, request: impl Into<String>) -> StripeError {
        let request = request.into();
        StripeError {
            kind: ErrorKind::Local,
            status: None,
            code: None,
            message: message.into(),
            endpoint: request.trim_start_matches("GET ").to_owned(),
            request,
        }
    }

    pub(crate) fn is_not_found(&self) -> bool {
        self.kind == ErrorKind::NotFound
    }

    pub(crate) fn is_unauthorized(&self) -> bool {
        self.kind == ErrorKind::Unauthorized
    }

    /// Whether retrying later may succeed.
    pub(crate) fn is_transient(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::RateLimited | ErrorKind::Server | ErrorKind::Network
        )
    }

    /// The reason to skip the stream, when the error says the feature is unavailable here.
    pub(crate) fn skip_reason(&self) -> Option<&str> {
        (self.kind == ErrorKind::Unavailable).then_some(self.message.as_str())
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

/// Why reading a stream (or the events feed) stopped early.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// Stripe answered with an error, after retries.
    Stripe(StripeError),
    /// Whoever reads stdout went away.
    Output(OutputClosed),
    /// A record could not be framed as one line.
    Framing(FramingError),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Stripe(e) => e.fmt(f),
            ReadError::Output(_) => f.write_str("standard output is closed"),
            ReadError::Framing(e) => e.fmt(f),
        }
    }
}

impl ReadError {
    /// The connector's error when this ends the read, `doing` saying what it was doing: a
    /// closed stdout ends it quietly, Stripe's refusal as [`fatal`] classifies it.
    pub(crate) fn ending(self, doing: &str) -> ConnectorError {
        match self {
            ReadError::Output(closed) => closed.into(),
            ReadError::Stripe(e) => fatal(&e, doing),
            ReadError::Framing(e) => ConnectorError::system(format!("{doing}: {e}")),
        }
    }
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

/// The connector error for a failure that stops everything. A refused key names the config
/// field, as every config error does, so a form can show it there.
pub(crate) fn fatal(e: &StripeError, doing: &str) -> ConnectorError {
    let refused_account = e.kind == ErrorKind::Forbidden && e.endpoint == "/v1/account";
    if e.is_unauthorized() {
        ConnectorError::config(format!("api_key: {doing}: {e}"))
    } else if refused_account {
        ConnectorError::config(format!("{doing}: {e}"))
    } else if e.is_transient() {
        ConnectorError::transient(format!("{doing}: {e}"))
    } else {
        ConnectorError::system(format!("{doing}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(status: u16, message: &str) -> StripeError {
        StripeError::from_answer(
            status,
            None,
            message.into(),
            "GET /v1/issuing/cards".into(),
            "/v1/issuing/cards",
        )
    }

    #[test]
    fn a_refused_key_names_its_field() {
        let refused = fatal(&err(401, "Invalid API Key provided"), "reading the account");
        assert!(
            refused
                .to_string()
                .starts_with("api_key: reading the account: "),
            "{refused}"
        );
        let forbidden = fatal(&err(403, "no access"), "listing");
        assert!(!forbidden.to_string().starts_with("api_key"), "{forbidden}");
    }

    #[test]
    fn classifies_answers_once() {
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
        assert_eq!(err(500, "not enabled").kind, ErrorKind::Server);
        assert!(err(500, "x").is_transient() && err(429, "x").is_transient());
        assert!(err(401, "Invalid API Key provided").is_unauthorized());
        assert_eq!(err(403, "Forbidden").kind, ErrorKind::Forbidden);
        assert!(err(404, "No such customer").is_not_found());
        assert_eq!(
            err(404, "No such thing").to_string(),
            "No such thing [GET /v1/issuing/cards (404)]"
        );
    }
}

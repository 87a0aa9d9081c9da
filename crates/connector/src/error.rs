use std::fmt;
use std::process::ExitCode;

use sync_protocol::FailureType;

/// Exit codes of the connector CLI contract.
pub mod exit {
    /// Success, including a `check` that reports a failure and a reader that went away.
    pub const OK: u8 = 0;
    /// A fatal `read`/`write` failure (after `connection_status failed` was emitted).
    pub const FAILED: u8 = 1;
    /// Bad usage or an invalid config.
    pub const USAGE: u8 = 2;
}

/// Why a connector operation stopped.
#[derive(Debug)]
pub enum ConnectorError {
    /// A fatal failure, reported as `connection_status failed` with this failure type.
    Fatal {
        failure_type: FailureType,
        message: String,
    },
    /// Whoever read stdout went away: a quiet, clean exit.
    OutputClosed,
    /// The invocation itself is wrong (bad flag value, invalid config): exit 2.
    Usage(String),
}

impl ConnectorError {
    pub fn config(message: impl Into<String>) -> ConnectorError {
        ConnectorError::Fatal {
            failure_type: FailureType::ConfigError,
            message: message.into(),
        }
    }

    pub fn transient(message: impl Into<String>) -> ConnectorError {
        ConnectorError::Fatal {
            failure_type: FailureType::TransientError,
            message: message.into(),
        }
    }

    pub fn system(message: impl Into<String>) -> ConnectorError {
        ConnectorError::Fatal {
            failure_type: FailureType::SystemError,
            message: message.into(),
        }
    }

    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            ConnectorError::Fatal { .. } => exit::FAILED,
            ConnectorError::OutputClosed => exit::OK,
            ConnectorError::Usage(_) => exit::USAGE,
        })
    }
}

impl fmt::Display for ConnectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectorError::Fatal { message, .. } | ConnectorError::Usage(message) => {
                f.write_str(message)
            }
            ConnectorError::OutputClosed => f.write_str("stdout was closed"),
        }
    }
}

impl std::error::Error for ConnectorError {}

impl From<anyhow::Error> for ConnectorError {
    fn from(err: anyhow::Error) -> ConnectorError {
        if let Some(e) = err.downcast_ref::<ConnectorError>() {
            return match e {
                ConnectorError::Fatal {
                    failure_type,
                    message,
                } => ConnectorError::Fatal {
                    failure_type: *failure_type,
                    message: message.clone(),
                },
                ConnectorError::OutputClosed => ConnectorError::OutputClosed,
                ConnectorError::Usage(m) => ConnectorError::Usage(m.clone()),
            };
        }
        ConnectorError::system(format!("{err:#}"))
    }
}

impl From<crate::output::OutputClosed> for ConnectorError {
    fn from(_: crate::output::OutputClosed) -> ConnectorError {
        ConnectorError::OutputClosed
    }
}

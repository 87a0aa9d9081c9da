use std::fmt;
use std::process::ExitCode;

use sync_protocol::FailureType;

pub use sync_protocol::exit;

/// Why a connector operation stopped.
#[derive(Debug)]
pub enum ConnectorError {
    /// A fatal failure, reported as `connection_status failed` with this failure type.
    Fatal {
        /// Who is to blame: the config, a transient outage, or the system.
        failure_type: FailureType,
        /// What went wrong, for the user.
        message: String,
    },
    /// Whoever read stdout went away: a quiet, clean exit.
    OutputClosed,
    /// The invocation itself is wrong (bad flag value, invalid config): exit 2.
    Usage(String),
}

impl ConnectorError {
    /// The config is wrong (bad credentials, an unknown stream…).
    pub fn config(message: impl Into<String>) -> ConnectorError {
        ConnectorError::Fatal {
            failure_type: FailureType::ConfigError,
            message: message.into(),
        }
    }

    /// A failure a later attempt may not meet (network, rate limits).
    pub fn transient(message: impl Into<String>) -> ConnectorError {
        ConnectorError::Fatal {
            failure_type: FailureType::TransientError,
            message: message.into(),
        }
    }

    /// Anything else: the connector or what it talks to failed.
    pub fn system(message: impl Into<String>) -> ConnectorError {
        ConnectorError::Fatal {
            failure_type: FailureType::SystemError,
            message: message.into(),
        }
    }

    /// The process exit code this ending maps to.
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

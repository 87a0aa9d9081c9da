use thiserror::Error;

/// Why a library call on the simulator failed.
#[derive(Debug, Error)]
pub enum FakeError {
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    #[error("unknown stream '{0}'")]
    UnknownStream(String),
    #[error("unknown account '{0}'")]
    UnknownAccount(String),
    #[error("no such {object}: '{id}'")]
    NotFound { object: String, id: String },
    #[error("{stream} objects cannot be deleted")]
    NotDeletable { stream: String },
    #[error("{stream} objects cannot be created or updated directly")]
    NotMutable { stream: String },
    #[error("{object} '{id}' already exists")]
    AlreadyExists { object: String, id: String },
    #[error("invalid fields: {0}")]
    InvalidFields(String),
    #[error("could not start the server: {0}")]
    Io(#[from] std::io::Error),
}

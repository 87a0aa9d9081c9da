use thiserror::Error;

/// Why a library call on the simulator failed.
#[derive(Debug, Error)]
pub enum FakeError {
    /// The configuration cannot be used; says why.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// No stream has this name.
    #[error("unknown stream '{0}'")]
    UnknownStream(String),
    /// No account has this id.
    #[error("unknown account '{0}'")]
    UnknownAccount(String),
    /// No object has this id.
    #[error("no such {object}: '{id}'")]
    NotFound {
        /// The object type.
        object: String,
        /// The id asked for.
        id: String,
    },
    /// The stream's objects cannot be deleted.
    #[error("{stream} objects cannot be deleted")]
    NotDeletable {
        /// The stream.
        stream: String,
    },
    /// The stream's objects are made by Stripe, not by API calls.
    #[error("{stream} objects cannot be created or updated directly")]
    NotMutable {
        /// The stream.
        stream: String,
    },
    /// An object with this id exists.
    #[error("{object} '{id}' already exists")]
    AlreadyExists {
        /// The object type.
        object: String,
        /// The id asked for.
        id: String,
    },
    /// The fields cannot be applied; says why.
    #[error("invalid fields: {0}")]
    InvalidFields(String),
    /// The server could not bind or serve.
    #[error("could not start the server: {0}")]
    Io(#[from] std::io::Error),
}

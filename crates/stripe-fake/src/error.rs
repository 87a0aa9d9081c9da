use thiserror::Error;

/// Why a library call on the simulator failed.
#[derive(Debug, Error)]
pub enum FakeError {
    /// The configuration cannot be used; says why.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The catalog has no stream of this name.
    #[error("unknown stream '{0}'")]
    UnknownStream(String),
    /// Neither the platform nor a connected account has this id.
    #[error("unknown account '{0}'")]
    UnknownAccount(String),
    /// No object of this type has this id (deleted ones are gone).
    #[error("no such {object}: '{id}'")]
    NotFound {
        /// The object type (`customer`).
        object: String,
        /// The id asked for.
        id: String,
    },
    /// The catalog marks the stream's objects as not deletable.
    #[error("{stream} objects cannot be deleted")]
    NotDeletable {
        /// The stream.
        stream: String,
    },
    /// Nested items and events, which change only with their parent or as a side effect.
    #[error("{stream} objects cannot be created or updated directly")]
    NotMutable {
        /// The stream.
        stream: String,
    },
    /// The id asked for a new object is taken.
    #[error("{object} '{id}' already exists")]
    AlreadyExists {
        /// The object type (`customer`).
        object: String,
        /// The id asked for.
        id: String,
    },
    /// The fields (or the object's state) do not allow the change; says why.
    #[error("invalid fields: {0}")]
    InvalidFields(String),
    /// The server could not bind, start its runtime or serve.
    #[error("could not start the server: {0}")]
    Io(#[from] std::io::Error),
}

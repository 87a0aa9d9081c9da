//! Why a control-database operation failed (a leaf: the control database's modules share it).

/// Why a control-database operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The database could not be reached or refused the statement.
    #[error("control database: {0}")]
    Database(String),
    /// No pipeline has this id.
    #[error("no pipeline {0:?}")]
    NotFound(String),
    /// A pipeline with this id exists already.
    #[error("a pipeline {0:?} exists already")]
    Exists(String),
    /// A newer claim owns the pipeline's checkpoint: this claimant must stop.
    #[error("pipeline {0:?}: a newer run owns the checkpoint (this one was fenced off)")]
    Fenced(String),
}

impl From<tokio_postgres::Error> for ControlError {
    fn from(e: tokio_postgres::Error) -> Self {
        ControlError::Database(pg_connect::error_text(&e))
    }
}

impl From<deadpool_postgres::PoolError> for ControlError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => e.into(),
            other => ControlError::Database(other.to_string()),
        }
    }
}

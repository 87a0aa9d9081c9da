#![warn(missing_docs)]
#![warn(unreachable_pub)]
//! Plumbing shared by every connector binary, written once.
//!
//! A connector implements [`Connector`] and calls [`run`] from `main`. The plumbing gives it the
//! CLI contract (subcommands by capability, `--config`/`--catalog`/`--state` as inline JSON or a
//! file path), validates the config against the connector's own JSON Schema before any I/O
//! (exit 2 naming the field), logs to stderr through tracing (`--log-format`, `--log-level`,
//! `RUST_LOG`), masks secrets in logs, messages, errors and panics, owns stdout (protocol
//! messages only, flushed at checkpoints and when idle), treats a closed stdout as a quiet clean
//! exit, and maps outcomes to the exit codes of [`error::exit`].

pub mod backoff;
pub mod binary;
mod config_schema;
mod connector;
/// Connector errors and the exit codes they map to.
pub mod error;
mod input;
/// `--config`/`--catalog`/`--state` given inline or as a file path.
pub mod json_arg;
/// Logging to stderr through tracing.
pub mod logging;
mod output;
/// Masking of secrets in every text that leaves the process.
pub mod redact;
/// Config validation against the connector's JSON Schema.
pub mod validate;

pub use config_schema::config_schema;
pub use connector::{About, Capability, Connector, run, run_capability};
pub use error::ConnectorError;
pub use input::{InputLine, InputLines};
pub use output::{EmitError, Outgoing, Output, OutputClosed, OutputThread};

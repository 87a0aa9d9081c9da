#![warn(missing_docs)]
#![warn(unreachable_pub)]
//! The engine's runtime: resolves a source and a destination connector, runs them as child
//! processes joined by the engine, and reports only the checkpoints the destination has
//! committed ([`local::LocalEngine`], the in-process [`sync_engine_api::Engine`]); and the
//! checkpoint stores a CLI sync keeps its state in ([`store`], [`checkpoint`]).

// clap turns doc comments into help text, so the flags are documented by their help.
#[allow(missing_docs)]
pub mod args;
pub mod builtin;
pub mod checkpoint;
mod connector;
mod lines;
pub mod local;
mod pipeline;
mod pipeline_file;
mod pump;
pub mod resolve;
pub mod settings;
mod single;
pub mod store;
mod supervisor;
mod tracker;

pub use builtin::{destination_identity, live_config, source_identity};
pub use checkpoint::config_update_to_keep;
pub use connector::{clean_stale_run_dirs, set_connector_niceness};
pub use pump::relay_log;
pub use sync_protocol::exit;
pub use tracker::FailureCode;

/// An error in what the user asked for (flags, configs, stream names): exit 2.
#[derive(Debug)]
pub struct Usage(String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// Marks an error as the user's (exit 2).
pub fn usage(e: anyhow::Error) -> anyhow::Error {
    anyhow::Error::new(Usage(format!("{e:#}")))
}

#![warn(missing_docs)]
#![warn(unreachable_pub)]
//! `sync-engine`: resolves a source and a destination connector, runs them as child processes
//! joined by the engine, and reports only the checkpoints the destination has committed. The
//! same operations run in-process ([`local::LocalEngine`]), over HTTP ([`remote::RemoteEngine`])
//! and as a server of them ([`http`]).

mod builtin;
mod checkpoint;
mod choice;
// clap turns doc comments into help text, so the flags are documented by their help.
#[allow(missing_docs)]
pub mod cli;
pub mod commands;
mod connector;
pub mod engine;
pub mod http;
mod lines;
pub mod local;
mod pipeline;
mod pipeline_file;
mod pump;
pub mod remote;
mod report;
mod resolve;
pub mod settings;
mod single;
mod store;
mod stream_choice;
mod supervisor;
mod tracker;
pub mod wire;

pub use builtin::{destination_identity, source_identity};
pub use checkpoint::config_update_to_keep;
pub use connector::{clean_stale_run_dirs, set_connector_niceness};
pub use sync_protocol::exit;

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

//! `sync-engine`: resolves a source and a destination connector, runs them as child processes
//! joined by the engine, and persists only the checkpoints the destination has committed.

mod builtin;
mod cli;
mod commands;
mod connector;
mod lines;
mod pipeline;
mod pump;
mod report;
mod resolve;
mod settings;
mod store;
mod supervisor;
mod tracker;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;

use sync_protocol::exit;

/// An error in what the user asked for (flags, configs, stream names): exit 2.
#[derive(Debug)]
struct Usage(String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

fn usage(e: anyhow::Error) -> anyhow::Error {
    anyhow::Error::new(Usage(format!("{e:#}")))
}

fn main() -> ExitCode {
    sync_connector::redact::install_panic_hook();
    let cli = Cli::parse();
    sync_connector::logging::init(cli.log_format, cli.log_level.as_deref());
    connector::clean_stale_run_dirs();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::FAILED);
        }
    };
    match runtime.block_on(commands::dispatch(cli.command)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let message = sync_connector::redact::redact(&format!("{e:#}")).into_owned();
            eprintln!("error: {message}");
            ExitCode::from(if e.downcast_ref::<Usage>().is_some() {
                exit::USAGE
            } else {
                exit::FAILED
            })
        }
    }
}

//! `sync-engine`: the command line over the engine library.

use std::process::ExitCode;

use clap::Parser;
use sync_engine::cli::Cli;
use sync_engine::{Usage, clean_stale_run_dirs, commands, exit};

fn main() -> ExitCode {
    sync_connector::redact::install_panic_hook();
    let cli = Cli::parse();
    if let Err(e) = sync_connector::logging::init(cli.log_format, cli.log_level.as_deref()) {
        eprintln!("error: {e}");
        return ExitCode::from(exit::USAGE);
    }
    clean_stale_run_dirs();
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

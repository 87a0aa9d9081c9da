//! `sync-engine`: the command line over the engine library.

use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches};
mod cli;
mod commands;
mod explorer;
mod report;

use cli::{Cli, Command};
use sync_engine_runtime::{Usage, clean_stale_run_dirs, exit};

fn main() -> ExitCode {
    sync_connector::redact::install_panic_hook();
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // Without a subcommand it serves, as the reference implementation documents, once a port is
    // given (--port, or PORT); otherwise the help, as before.
    let port_given = matches!(
        matches.value_source("port"),
        Some(ValueSource::CommandLine | ValueSource::EnvVariable)
    );
    let command = match cli.command {
        Some(command) => {
            // Flags before the subcommand are the engine's global ones (log level and format);
            // a serve flag there would be silently dropped.
            if let Some(flag) = serve_flag_given(&matches) {
                eprintln!(
                    "error: --{flag} belongs to serving (`sync-engine --port N` or `sync-engine serve …`); put the subcommand's own flags after it"
                );
                return ExitCode::from(exit::USAGE);
            }
            command
        }
        None if port_given => Command::Serve(cli.serve),
        None => {
            eprintln!("{}", Cli::command().render_help());
            return ExitCode::from(exit::USAGE);
        }
    };
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
    match runtime.block_on(commands::dispatch(command)) {
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

/// A serve flag given on the command line before a subcommand, if any.
fn serve_flag_given(matches: &clap::ArgMatches) -> Option<String> {
    Cli::command()
        .get_arguments()
        .filter(|arg| !arg.is_global_set())
        .find(|arg| {
            matches!(
                matches.value_source(arg.get_id().as_str()),
                Some(ValueSource::CommandLine)
            )
        })
        .map(|arg| arg.get_long().unwrap_or(arg.get_id().as_str()).to_owned())
}

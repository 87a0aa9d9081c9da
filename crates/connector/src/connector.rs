use std::future::Future;
use std::io::{self, Write};
use std::process::ExitCode;

use clap::{Arg, ArgAction, ArgMatches, Command};
use serde::de::DeserializeOwned;
use serde_json::Value;
use sync_protocol::framing::DEFAULT_MAX_LINE_BYTES;
use sync_protocol::{
    Catalog, ConfiguredCatalog, ConnectionStatus, FailureType, Message, SourceStateSet, Spec,
};

use crate::error::{ConnectorError, exit};
use crate::input::InputLines;
use crate::logging::{self, LogFormat};
use crate::output::Output;
use crate::redact;
use crate::validate::validate_config;

/// A subcommand a connector may offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// Prints the connector's spec (its config's JSON Schema).
    Spec,
    /// Tries the config: credentials, reachability.
    Check,
    /// Prints the catalog of streams.
    Discover,
    /// Reads records and states to stdout.
    Read,
    /// Writes records from stdin, acknowledging states once committed.
    Write,
    /// Creates what the connector needs before the first run.
    Setup,
    /// Removes what setup created.
    Teardown,
}

impl Capability {
    /// The subcommand's name on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            Capability::Spec => "spec",
            Capability::Check => "check",
            Capability::Discover => "discover",
            Capability::Read => "read",
            Capability::Write => "write",
            Capability::Setup => "setup",
            Capability::Teardown => "teardown",
        }
    }

    /// Sources: spec, check, discover, read, setup, teardown.
    pub const SOURCE: &'static [Capability] = &[
        Capability::Spec,
        Capability::Check,
        Capability::Discover,
        Capability::Read,
        Capability::Setup,
        Capability::Teardown,
    ];
    /// Destinations: spec, check, write, setup, teardown.
    pub const DESTINATION: &'static [Capability] = &[
        Capability::Spec,
        Capability::Check,
        Capability::Write,
        Capability::Setup,
        Capability::Teardown,
    ];
}

/// Who the connector is, for `--help` and `--version`.
#[derive(Debug, Clone, Copy)]
pub struct About {
    /// The executable's name.
    pub name: &'static str,
    /// The connector's version.
    pub version: &'static str,
    /// One line on what it does.
    pub about: &'static str,
}

fn unsupported<T>(capability: Capability) -> Result<T, ConnectorError> {
    Err(ConnectorError::Usage(format!(
        "this connector does not support `{}`",
        capability.name()
    )))
}

/// A connector: implement the operations listed in [`Connector::capabilities`] and hand it to [`run`].
pub trait Connector: Send + Sync + 'static {
    /// The typed config, read after the raw config passed the JSON Schema of [`Connector::spec`].
    type Config: DeserializeOwned + Send + Sync + 'static;

    /// Name, version and description.
    fn about(&self) -> About;
    /// The subcommands it offers ([`Capability::SOURCE`], [`Capability::DESTINATION`] or its own).
    fn capabilities(&self) -> &'static [Capability];
    /// Its spec; the config is validated against `connection_specification` before any I/O.
    fn spec(&self) -> Spec;

    /// Tries the config.
    fn check(
        &self,
        config: Self::Config,
    ) -> impl Future<Output = Result<ConnectionStatus, ConnectorError>> + Send {
        let _ = config;
        async { unsupported(Capability::Check) }
    }

    /// The streams the source offers.
    fn discover(
        &self,
        config: Self::Config,
    ) -> impl Future<Output = Result<Catalog, ConnectorError>> + Send {
        let _ = config;
        async { unsupported(Capability::Discover) }
    }

    /// Emits records and states for the configured streams, resuming from `state`.
    fn read(
        &self,
        config: Self::Config,
        catalog: ConfiguredCatalog,
        state: SourceStateSet,
        output: Output,
    ) -> impl Future<Output = Result<(), ConnectorError>> + Send {
        let _ = (config, catalog, state, output);
        async { unsupported(Capability::Read) }
    }

    /// `read --input`: turns pushed input (`source_input` messages, in order) into records;
    /// connectors that take none refuse it.
    fn read_input(
        &self,
        config: Self::Config,
        catalog: ConfiguredCatalog,
        state: SourceStateSet,
        input: InputLines,
        output: Output,
    ) -> impl Future<Output = Result<(), ConnectorError>> + Send {
        let _ = (config, catalog, state, input, output);
        async {
            Err(ConnectorError::Usage(
                "this connector takes no --input".to_owned(),
            ))
        }
    }

    /// Writes the records read from `input`; re-emits each state once what precedes it is
    /// committed.
    fn write(
        &self,
        config: Self::Config,
        catalog: ConfiguredCatalog,
        input: InputLines,
        output: Output,
    ) -> impl Future<Output = Result<(), ConnectorError>> + Send {
        let _ = (config, catalog, input, output);
        async { unsupported(Capability::Write) }
    }

    /// Creates what the connector needs for `catalog`; idempotent.
    fn setup(
        &self,
        config: Self::Config,
        catalog: ConfiguredCatalog,
        output: Output,
    ) -> impl Future<Output = Result<(), ConnectorError>> + Send {
        let _ = (config, catalog, output);
        async { unsupported(Capability::Setup) }
    }

    /// Removes what setup created.
    fn teardown(
        &self,
        config: Self::Config,
        output: Output,
    ) -> impl Future<Output = Result<(), ConnectorError>> + Send {
        let _ = (config, output);
        async { unsupported(Capability::Teardown) }
    }
}

fn json_flag(name: &'static str, help: &'static str, required: bool) -> Arg {
    Arg::new(name)
        .long(name)
        .value_name("JSON|FILE")
        .help(help)
        .required(required)
        .action(ArgAction::Set)
}

fn command(about: About, capabilities: &[Capability]) -> Command {
    let config = || {
        json_flag(
            "config",
            "Connector config: inline JSON or a path to a JSON file",
            true,
        )
    };
    let catalog = |required| {
        json_flag(
            "catalog",
            "Configured catalog: inline JSON or a path to a JSON file",
            required,
        )
    };
    let mut cmd = Command::new(about.name)
        .version(about.version)
        .about(about.about)
        .subcommand_required(true)
        .arg_required_else_help(true)
        .arg(
            Arg::new("log-format")
                .long("log-format")
                .global(true)
                .value_parser(clap::value_parser!(LogFormat))
                .default_value("human")
                .help("Format of the logs written to stderr"),
        )
        .arg(
            Arg::new("log-level")
                .long("log-level")
                .global(true)
                .help("Log level or filter (default: RUST_LOG, else info)"),
        );
    for capability in capabilities {
        let sub = Command::new(capability.name());
        cmd = cmd.subcommand(match capability {
            Capability::Spec => sub.about("Print the connector's spec (its config JSON Schema)"),
            Capability::Check => sub
                .about("Check that the config works (exits 0 whatever it reports)")
                .arg(config()),
            Capability::Discover => sub.about("Print the catalog of streams").arg(config()),
            Capability::Read => sub
                .about("Read records and states to stdout")
                .arg(config())
                .arg(catalog(true))
                .arg(json_flag(
                    "state",
                    "State to resume from: inline JSON or a path",
                    false,
                ))
                .arg(
                    Arg::new("input")
                        .long("input")
                        .value_name("FILE|-")
                        .help("Push mode: read source_input messages (NDJSON) from this file, or - for stdin, instead of reading the API")
                        .action(ArgAction::Set),
                ),
            Capability::Write => sub
                .about("Write the messages read from stdin")
                .arg(config())
                .arg(catalog(true)),
            Capability::Setup => sub
                .about("Create what the connector needs (idempotent)")
                .arg(config())
                .arg(catalog(false)),
            Capability::Teardown => sub.about("Remove what setup created").arg(config()),
        });
    }
    cmd
}

/// Parses the command line, runs the connector and returns the process exit code.
pub fn run<C: Connector>(connector: C) -> ExitCode {
    redact::install_panic_hook();
    let about = connector.about();
    let matches = match command(about, connector.capabilities()).try_get_matches() {
        Ok(m) => m,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    let format = matches
        .get_one::<LogFormat>("log-format")
        .copied()
        .unwrap_or(LogFormat::Human);
    if let Err(e) = logging::init(
        format,
        matches.get_one::<String>("log-level").map(String::as_str),
    ) {
        eprintln!("error: {e}");
        return ExitCode::from(exit::USAGE);
    }
    let Some((name, sub)) = matches.subcommand() else {
        return ExitCode::from(exit::USAGE);
    };
    let Some(capability) = connector
        .capabilities()
        .iter()
        .copied()
        .find(|c| c.name() == name)
    else {
        return ExitCode::from(exit::USAGE);
    };
    run_capability(
        connector,
        capability,
        sub,
        raw_stdout(),
        io::BufReader::with_capacity(256 * 1024, io::stdin()),
    )
}

/// stdout without std's line buffering, so records are written in large blocks; the protocol
/// writer does its own buffering and flushing.
fn raw_stdout() -> Box<dyn Write + Send> {
    use std::os::fd::AsFd;
    match io::stdout().as_fd().try_clone_to_owned() {
        Ok(fd) => Box::new(std::fs::File::from(fd)),
        Err(_) => Box::new(io::stdout()),
    }
}

fn usage_failure(output: &Output, message: &str) -> ConnectorError {
    let _ = output.emit_blocking(Message::ConnectionStatus(ConnectionStatus::failed(
        message,
        Some(FailureType::ConfigError),
    )));
    ConnectorError::Usage(message.to_owned())
}

/// Reads the flags of one subcommand into the connector's inputs.
struct Invocation<C: Connector> {
    config: C::Config,
    catalog: ConfiguredCatalog,
    state: SourceStateSet,
    /// `--input`: a path, or `-` for stdin.
    input: Option<String>,
}

fn invocation<C: Connector>(
    connector: &C,
    args: &ArgMatches,
    output: &Output,
) -> Result<Invocation<C>, ConnectorError> {
    let spec = connector.spec();
    let raw_config = match args.get_one::<String>("config") {
        Some(text) => {
            crate::json_arg::json_or_file("config", text).map_err(|e| usage_failure(output, &e))?
        }
        None => Value::Object(Default::default()),
    };
    redact::register_config_secrets(&spec.config, &raw_config);
    validate_config(&spec.config, &raw_config).map_err(|e| usage_failure(output, &e))?;
    let config: C::Config = serde_json::from_value(raw_config).map_err(|e| {
        usage_failure(
            output,
            &format!("invalid config: {}", redact::redact(&e.to_string())),
        )
    })?;
    let catalog = match args.try_get_one::<String>("catalog").ok().flatten() {
        Some(text) => {
            let mut value = crate::json_arg::json_or_file("catalog", text)
                .map_err(|e| usage_failure(output, &e))?;
            // `discover > catalog.json` writes a catalog message; accept it as the catalog.
            if value.get("type").and_then(Value::as_str) == Some("catalog")
                && let Some(inner) = value.get_mut("catalog").map(Value::take)
            {
                value = inner;
            }
            serde_json::from_value(value)
                .map_err(|e| usage_failure(output, &format!("--catalog: {e}")))?
        }
        None => ConfiguredCatalog::default(),
    };
    let state = match args.try_get_one::<String>("state").ok().flatten() {
        Some(text) => {
            let value = crate::json_arg::json_or_file("state", text)
                .map_err(|e| usage_failure(output, &e))?;
            SourceStateSet::from_value_lenient(value)
                .map_err(|e| usage_failure(output, &format!("--state: {e}")))?
        }
        None => SourceStateSet::default(),
    };
    let input = args.try_get_one::<String>("input").ok().flatten().cloned();
    Ok(Invocation {
        config,
        catalog,
        state,
        input,
    })
}

/// Runs one capability with the given stdout and stdin; separate from [`run`] for tests.
pub fn run_capability<C: Connector, W: Write + Send + 'static, R: io::BufRead + Send + 'static>(
    connector: C,
    capability: Capability,
    args: &ArgMatches,
    stdout: W,
    stdin: R,
) -> ExitCode {
    let (output, thread) = Output::spawn(stdout);
    if capability == Capability::Spec {
        let _ = output.emit_blocking(Message::Spec(connector.spec()));
        thread.finish(output);
        return ExitCode::from(exit::OK);
    }
    let result = invocation(&connector, args, &output).and_then(|inv| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| ConnectorError::system(format!("cannot start the async runtime: {e}")))?;
        let result = runtime.block_on(dispatch(&connector, capability, inv, output.clone(), stdin));
        runtime.shutdown_timeout(std::time::Duration::from_secs(1));
        result
    });
    let code = match result {
        Ok(()) => ExitCode::from(exit::OK),
        Err(ConnectorError::OutputClosed) => ExitCode::from(exit::OK),
        Err(ConnectorError::Usage(message)) => {
            tracing::error!("{message}");
            ExitCode::from(exit::USAGE)
        }
        Err(ConnectorError::Fatal {
            failure_type,
            message,
        }) => {
            tracing::error!("{message}");
            let _ = output.emit_blocking(Message::ConnectionStatus(ConnectionStatus::failed(
                message,
                Some(failure_type),
            )));
            // A failed check is still a completed check.
            ExitCode::from(if capability == Capability::Check {
                exit::OK
            } else {
                exit::FAILED
            })
        }
    };
    thread.finish(output);
    code
}

async fn dispatch<C: Connector, R: io::BufRead + Send + 'static>(
    connector: &C,
    capability: Capability,
    inv: Invocation<C>,
    output: Output,
    stdin: R,
) -> Result<(), ConnectorError> {
    match capability {
        Capability::Spec => Ok(()),
        Capability::Check => {
            let status = connector.check(inv.config).await?;
            Ok(output.emit(Message::ConnectionStatus(status)).await?)
        }
        Capability::Discover => {
            let catalog = connector.discover(inv.config).await?;
            Ok(output.emit(Message::Catalog(catalog)).await?)
        }
        Capability::Read => match inv.input.as_deref() {
            None => {
                connector
                    .read(inv.config, inv.catalog, inv.state, output)
                    .await
            }
            Some(path) => {
                let input = if path == "-" {
                    InputLines::spawn(stdin, DEFAULT_MAX_LINE_BYTES)
                } else {
                    let file = std::fs::File::open(path)
                        .map_err(|e| ConnectorError::Usage(format!("--input {path}: {e}")))?;
                    InputLines::spawn(io::BufReader::new(file), DEFAULT_MAX_LINE_BYTES)
                };
                connector
                    .read_input(inv.config, inv.catalog, inv.state, input, output)
                    .await
            }
        },
        Capability::Write => {
            let input = InputLines::spawn(stdin, DEFAULT_MAX_LINE_BYTES);
            connector
                .write(inv.config, inv.catalog, input, output)
                .await
        }
        Capability::Setup => connector.setup(inv.config, inv.catalog, output).await,
        Capability::Teardown => connector.teardown(inv.config, output).await,
    }
}

use tracing_subscriber::EnvFilter;

use crate::redact::RedactingStderr;

/// How log lines on stderr look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One readable line per event.
    Human,
    /// One JSON object per event.
    Json,
}

/// Sends tracing to stderr through the redactor. The level comes from `--log-level`, else
/// `RUST_LOG`, else `info`; one that does not parse is an error naming where it came from.
pub fn init(format: LogFormat, level: Option<&str>) -> Result<(), String> {
    let filter = match level {
        Some(level) => {
            EnvFilter::try_new(level).map_err(|e| format!("--log-level {level:?}: {e}"))?
        }
        None => match std::env::var("RUST_LOG") {
            Ok(value) if !value.trim().is_empty() => {
                EnvFilter::try_new(&value).map_err(|e| format!("RUST_LOG {value:?}: {e}"))?
            }
            _ => EnvFilter::new("info"),
        },
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(RedactingStderr::default)
        .with_target(false);
    let result = match format {
        LogFormat::Human => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    // A second init (tests running several connectors in one process) keeps the first.
    drop(result);
    Ok(())
}

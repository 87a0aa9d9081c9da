//! A resolved connector: its dialect (native or Airbyte, told by its `spec`), its published
//! config schema, and running its short subcommands (spec, check, discover, setup, teardown).
//! Configs, catalogs and states reach connectors as 0600 files, never on the command line,
//! where other users of the machine could read them.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;
use sync_protocol::airbyte::{self, AirbyteMessage};
use sync_protocol::{Message, Spec, Status};
use tokio::io::AsyncReadExt;
use tokio::process::Command;

use crate::resolve::{Resolved, Role};

/// Which protocol a connector speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Native,
    Airbyte,
}

pub(crate) struct Connector {
    pub role: Role,
    pub resolved: Resolved,
    pub dialect: Dialect,
    pub spec: Spec,
    files: tempfile::TempDir,
    /// How long a short subcommand may take (`--connector-timeout` where the command has it).
    pub timeout: Duration,
}

/// How much lower than the engine's the connectors' CPU priority is (`nice`); a server raises
/// it so its API stays responsive while many syncs run.
static CONNECTOR_NICENESS: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// Runs every connector started from now on at this `nice` increment.
pub fn set_connector_niceness(increment: i32) {
    CONNECTOR_NICENESS.store(increment, std::sync::atomic::Ordering::Relaxed);
}

/// What `spec` answered, by role and command line: a connector is asked once per process.
type SpecCache = std::sync::Mutex<std::collections::HashMap<(Role, String), (Spec, Dialect)>>;

fn spec_cache() -> &'static SpecCache {
    static CACHE: std::sync::OnceLock<SpecCache> = std::sync::OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// Run directories (configs with secrets, catalogs, states) are named after the engine's pid.
const RUN_DIR_PREFIX: &str = "sync-engine-";

/// Removes the run directories of engines that died without cleaning up (kill -9): they hold
/// configs with secrets. Only directories of this user whose engine is gone are touched.
pub fn clean_stale_run_dirs() {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    // SAFETY: getuid has no preconditions and cannot fail.
    let me = unsafe { libc::getuid() };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(RUN_DIR_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<i32>().ok())
        else {
            continue;
        };
        let ours = entry.metadata().is_ok_and(|m| m.is_dir() && m.uid() == me);
        // SAFETY: signal 0 only asks whether the process exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        if ours && !alive {
            match std::fs::remove_dir_all(entry.path()) {
                Ok(()) => {
                    tracing::debug!("removed the stale run directory {}", entry.path().display())
                }
                Err(e) => tracing::warn!(
                    "cannot remove the stale run directory {}: {e}",
                    entry.path().display()
                ),
            }
        }
    }
}

/// How long a short subcommand (spec, check, discover, setup, teardown) may take by default.
const SHORT_COMMAND_TIMEOUT: Duration = Duration::from_secs(300);

/// The last lines of a stderr, for error messages.
pub(crate) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl Connector {
    /// Opens the first candidate that answers `spec` (a registry name has one per launcher);
    /// fails naming every candidate tried and its error.
    pub(crate) async fn open(role: Role, candidates: Vec<Resolved>) -> Result<Connector> {
        let mut errors = Vec::new();
        let several = candidates.len() > 1;
        for resolved in candidates {
            let origin = resolved.origin.clone();
            if let crate::resolve::Origin::Registry(launcher, package) = &origin {
                tracing::info!(
                    "fetching {package} with {launcher} (the first run installs it; this may take a while)"
                );
            }
            match Connector::open_one(role, resolved).await {
                Ok(connector) => return Ok(connector),
                Err(e) if several => {
                    tracing::info!("{origin}: {e:#}");
                    errors.push(format!("{origin}: {e:#}"));
                }
                Err(e) => return Err(e),
            }
        }
        bail!(
            "no candidate for the {} connector answered spec: {}",
            role.as_str(),
            errors.join("; ")
        )
    }

    /// Runs `spec` to learn the dialect and the config schema.
    async fn open_one(role: Role, resolved: Resolved) -> Result<Connector> {
        let files = tempfile::Builder::new()
            .prefix(&format!("{RUN_DIR_PREFIX}{}-", std::process::id()))
            .tempdir()
            .context("cannot create a temporary directory")?;
        let key = (role, resolved.command_line());
        let cached = spec_cache()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        let mut connector = Connector {
            role,
            resolved,
            dialect: Dialect::Native,
            spec: Spec::new(Value::Null),
            files,
            timeout: SHORT_COMMAND_TIMEOUT,
        };
        if let Some((spec, dialect)) = cached {
            connector.spec = spec;
            connector.dialect = dialect;
            return Ok(connector);
        }
        connector.read_spec().await?;
        spec_cache()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, (connector.spec.clone(), connector.dialect));
        Ok(connector)
    }

    /// Runs `spec`: the dialect it answers in, and the config schema.
    async fn read_spec(&mut self) -> Result<()> {
        let role = self.role;
        let connector = self;
        let (stdout, _) = connector.run_raw("spec", &[]).await?;
        for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
            if let Ok(Message::Spec(spec)) = Message::from_str_line(line) {
                connector.spec = spec;
                return Ok(());
            }
            if let Ok(message @ AirbyteMessage::Spec(_)) =
                AirbyteMessage::from_slice(line.as_bytes())
            {
                connector.dialect = Dialect::Airbyte;
                if let Some(Message::Spec(spec)) = airbyte::from_airbyte(message, role).pop() {
                    connector.spec = spec;
                    return Ok(());
                }
            }
        }
        bail!(
            "{} printed no spec message (ran `{} spec`)",
            connector.name(),
            connector.resolved.command_line()
        )
    }

    pub(crate) fn name(&self) -> &str {
        &self.resolved.display
    }

    /// Validates a config against the connector's published JSON Schema, before any I/O.
    pub(crate) fn validate_config(&self, config: &Value) -> Result<()> {
        if self.spec.config.is_null() {
            return Ok(());
        }
        sync_connector::redact::register_config_secrets(&self.spec.config, config);
        sync_connector::validate::validate_config(&self.spec.config, config)
            .map_err(|e| anyhow!("{} config: {e}", self.name()))
    }

    /// Writes a JSON document to a private file and returns its path.
    pub(crate) fn file(&self, name: &str, value: &impl serde::Serialize) -> Result<PathBuf> {
        self.file_bytes(name, &serde_json::to_vec(value)?)
    }

    /// Writes bytes to a private file (mode 0600) and returns its path.
    pub(crate) fn file_bytes(&self, name: &str, bytes: &[u8]) -> Result<PathBuf> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.files.path().join(name);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        file.write_all(bytes)?;
        file.flush()?;
        Ok(path)
    }

    /// A command for a subcommand with `--flag path` arguments.
    pub(crate) fn command(&self, subcommand: &str, flags: &[(&str, &PathBuf)]) -> Command {
        let mut cmd = Command::new(&self.resolved.program);
        cmd.args(&self.resolved.args).arg(subcommand);
        for (flag, path) in flags {
            cmd.arg(format!("--{flag}")).arg(path);
        }
        cmd.kill_on_drop(true);
        // Its own process group: a Ctrl-C at the terminal reaches only the engine, which stops
        // the source gracefully and lets the destination commit.
        cmd.process_group(0);
        // A connector must not outlive a killed engine (nothing would read or feed it).
        let niceness = CONNECTOR_NICENESS.load(std::sync::atomic::Ordering::Relaxed);
        // SAFETY: prctl and setpriority are async-signal-safe and touch only the child being
        // started.
        unsafe {
            cmd.pre_exec(move || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                if niceness > 0 {
                    libc::setpriority(libc::PRIO_PROCESS, 0, niceness);
                }
                Ok(())
            });
        }
        cmd
    }

    /// Starts a subcommand with piped stdout and stderr.
    pub(crate) fn spawn(
        &self,
        subcommand: &str,
        flags: &[(&str, &PathBuf)],
        stdin: Stdio,
    ) -> Result<tokio::process::Child> {
        self.command(subcommand, flags)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| {
                format!(
                    "cannot start {} (`{}`)",
                    self.name(),
                    self.resolved.command_line()
                )
            })
    }

    async fn run_raw(
        &self,
        subcommand: &str,
        flags: &[(&str, &PathBuf)],
    ) -> Result<(String, std::process::ExitStatus)> {
        let finished = self.run_unchecked(subcommand, flags).await?;
        finished.checked(self, subcommand)
    }

    /// Runs a subcommand to its end, whatever its exit status.
    async fn run_unchecked(
        &self,
        subcommand: &str,
        flags: &[(&str, &PathBuf)],
    ) -> Result<Finished> {
        let mut child = self.spawn(subcommand, flags, Stdio::null())?;
        let mut stdout = child.stdout.take().context("stdout is piped")?;
        let mut stderr = child.stderr.take().context("stderr is piped")?;
        let work = async {
            let (mut out, mut err) = (String::new(), String::new());
            let _ = tokio::join!(
                stdout.read_to_string(&mut out),
                stderr.read_to_string(&mut err)
            );
            let status = child.wait().await?;
            Ok::<_, std::io::Error>((out, err, status))
        };
        let Ok(finished) = tokio::time::timeout(self.timeout, work).await else {
            kill_and_reap(&mut child).await;
            bail!(
                "{} {subcommand} did not finish within {}s: stopped as hung",
                self.name(),
                self.timeout.as_secs()
            );
        };
        let (out, err, status) = finished?;
        for line in err.lines().filter(|l| !l.trim().is_empty()) {
            tracing::debug!(
                connector = self.name(),
                "{}",
                sync_connector::redact::redact(line)
            );
        }
        Ok(Finished { out, err, status })
    }

    /// Runs an optional subcommand (`setup`, `teardown`); `None` when the connector says it
    /// has no such subcommand: a usage exit (2) with nothing on stdout and the subcommand named
    /// on stderr, as argparse, clap and hand-written CLIs answer an unknown command.
    pub(crate) async fn run_optional(
        &self,
        subcommand: &str,
        flags: &[(&str, &PathBuf)],
    ) -> Result<Option<Vec<Message>>> {
        let finished = self.run_unchecked(subcommand, flags).await?;
        let unknown = finished.status.code() == Some(2)
            && finished.out.trim().is_empty()
            && finished.err.contains(subcommand);
        if unknown {
            tracing::debug!("{} has no {subcommand}", self.name());
            return Ok(None);
        }
        let (out, _) = finished.checked(self, subcommand)?;
        Ok(Some(parse_output(&out, self.dialect, self.role)))
    }

    /// Runs a short subcommand and returns its messages in the native dialect.
    pub(crate) async fn run(
        &self,
        subcommand: &str,
        flags: &[(&str, &PathBuf)],
    ) -> Result<Vec<Message>> {
        let (out, _) = self.run_raw(subcommand, flags).await?;
        Ok(parse_output(&out, self.dialect, self.role))
    }
}

/// Signals the process group a connector leads or led (it runs in its own, with whatever it
/// started); at worst the group is empty.
pub(crate) fn signal_group(pid: u32, signal: i32) {
    // SAFETY: kill(2) has no memory effects; the group is one a connector of ours leads.
    unsafe {
        libc::kill(-(pid as i32), signal);
    }
}

/// Kills a hung connector with whatever it started (it leads its own process group), and waits
/// for it: the error is reported only once nothing of it is left running.
async fn kill_and_reap(child: &mut tokio::process::Child) {
    if let Some(pid) = child.id() {
        signal_group(pid, libc::SIGKILL);
    }
    if let Err(e) = child.kill().await {
        tracing::debug!("could not reap a killed connector: {e}");
    }
}

/// What a short subcommand printed and how it exited.
struct Finished {
    out: String,
    err: String,
    status: std::process::ExitStatus,
}

impl Finished {
    /// stdout and the status, or an error with the failure's message when it failed (`check`
    /// reports failures in its output instead).
    fn checked(
        self,
        connector: &Connector,
        subcommand: &str,
    ) -> Result<(String, std::process::ExitStatus)> {
        if !self.status.success() && subcommand != "check" {
            let failure = failure_message(&self.out, connector.dialect, connector.role);
            let detail = failure.unwrap_or_else(|| tail(&self.err, 8));
            bail!(
                "{} {subcommand} exited with {}: {}",
                connector.name(),
                self.status,
                sync_connector::redact::redact(&detail)
            );
        }
        Ok((self.out, self.status))
    }
}

/// Parses a connector's whole stdout; lines that are not messages are logged and skipped.
pub(crate) fn parse_output(out: &str, dialect: Dialect, role: Role) -> Vec<Message> {
    let mut messages = Vec::new();
    for line in out.lines().filter(|l| !l.trim().is_empty()) {
        match dialect {
            Dialect::Native => match Message::from_str_line(line) {
                Ok(m) => messages.push(m),
                Err(e) => tracing::warn!("skipping a line that is not a message ({e})"),
            },
            // Airbyte connectors may print anything; the Airbyte platform treats it as logs.
            Dialect::Airbyte => match AirbyteMessage::from_slice(line.as_bytes()) {
                Ok(m) => messages.extend(airbyte::from_airbyte(m, role)),
                Err(_) => tracing::debug!("{}", sync_connector::redact::redact(line)),
            },
        }
    }
    messages
}

/// The message of a failed `connection_status` among the output, if any.
pub(crate) fn failure_message(out: &str, dialect: Dialect, role: Role) -> Option<String> {
    parse_output(out, dialect, role)
        .into_iter()
        .find_map(|m| match m {
            Message::ConnectionStatus(s) if s.status == Status::Failed => {
                Some(s.message.unwrap_or_else(|| "failed".into()))
            }
            _ => None,
        })
}

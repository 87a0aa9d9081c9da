//! `start --foreground`: the Temporal dev server (its SQLite file in the data directory), then
//! `sync-service migrate`, `serve` and `worker`; each restarted with backoff when it exits; on
//! SIGTERM or SIGINT, stopped in order (the API first, Temporal last).

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::process::{Child, Command};

use crate::layout::{Layout, Ports, Settings};

/// Restarts wait this long at first, doubling up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A process that ran this long before exiting starts again at the first backoff.
const STABLE_AFTER: Duration = Duration::from_secs(60);

/// One supervised process.
struct Managed {
    name: &'static str,
    args: Vec<String>,
    program: std::path::PathBuf,
    env: Vec<(&'static str, String)>,
    child: Option<Child>,
    started_at: Instant,
    /// When it exited, and how long it waits before starting again.
    down_since: Option<Instant>,
    backoff: Duration,
    /// How long a graceful stop may take before SIGKILL.
    stop_within: Duration,
}

impl Managed {
    fn spawn(&mut self, layout: &Layout) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(layout.log_path(self.name))
            .with_context(|| format!("opening the log of {}", self.name))?;
        let child = Command::new(&self.program)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // A start that fails half-way (Temporal never serves, migrate fails) leaves nothing
            // running behind it.
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {} ({})", self.name, self.program.display()))?;
        tracing::info!(pid = child.id(), "{} started", self.name);
        self.child = Some(child);
        self.started_at = Instant::now();
        self.down_since = None;
        Ok(())
    }

    /// Notices an exit, and starts the process again once its backoff has passed.
    fn watch(&mut self, layout: &Layout) {
        if let Some(child) = &mut self.child
            && let Ok(Some(status)) = child.try_wait()
        {
            self.child = None;
            if self.started_at.elapsed() >= STABLE_AFTER {
                self.backoff = FIRST_BACKOFF;
            }
            tracing::warn!(
                "{} exited ({status}); starting it again in {:?} (see {})",
                self.name,
                self.backoff,
                layout.log_path(self.name).display()
            );
            self.down_since = Some(Instant::now());
        }
        if let Some(since) = self.down_since
            && since.elapsed() >= self.backoff
        {
            self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
            if let Err(e) = self.spawn(layout) {
                tracing::error!("{e:#}");
                self.down_since = Some(Instant::now());
            }
        }
    }

    /// SIGTERM, then SIGKILL if it is still running after `stop_within`.
    async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = child.id() {
            crate::layout::signal(pid, libc::SIGTERM);
        }
        if tokio::time::timeout(self.stop_within, child.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "{} did not stop within {:?}: killed",
                self.name,
                self.stop_within
            );
            let _ = child.kill().await;
        }
        tracing::info!("{} stopped", self.name);
    }
}

fn managed(
    name: &'static str,
    program: &std::path::Path,
    args: &[&str],
    env: Vec<(&'static str, String)>,
    stop_within: Duration,
) -> Managed {
    Managed {
        name,
        args: args.iter().map(|a| a.to_string()).collect(),
        program: program.to_owned(),
        env,
        child: None,
        started_at: Instant::now(),
        down_since: None,
        backoff: FIRST_BACKOFF,
        stop_within,
    }
}

/// Runs the bundle until SIGTERM or SIGINT.
pub async fn run(layout: &Layout, settings: &Settings, ports: &Ports) -> Result<()> {
    let address = format!("127.0.0.1:{}", ports.temporal);
    let db = layout.temporal_db().display().to_string();
    let (port, http, metrics) = (
        ports.temporal.to_string(),
        ports.temporal_http.to_string(),
        ports.temporal_metrics.to_string(),
    );
    let mut temporal = managed(
        "temporal",
        &settings.temporal,
        &[
            "server",
            "start-dev",
            "--headless",
            "--ip",
            "127.0.0.1",
            "--port",
            &port,
            "--http-port",
            &http,
            "--metrics-port",
            &metrics,
            "--log-level",
            "warn",
            "--db-filename",
            &db,
        ],
        Vec::new(),
        Duration::from_secs(10),
    );
    temporal.spawn(layout)?;
    wait_for_temporal(settings, &address, &mut temporal).await?;

    // The database URL goes by environment, not argv: `ps` shows arguments to everyone.
    let env = vec![
        ("SYNC_SERVICE_DATABASE_URL", settings.database_url.clone()),
        ("TEMPORAL_ADDRESS", address.clone()),
    ];
    migrate(settings, &env).await?;
    let listen = format!("127.0.0.1:{}", ports.api);
    let mut serve = managed(
        "serve",
        &settings.sync_service,
        &["serve", "--listen", &listen],
        env.clone(),
        Duration::from_secs(10),
    );
    let mut worker = managed(
        "worker",
        &settings.sync_service,
        &["worker"],
        env,
        Duration::from_secs(30),
    );
    worker.spawn(layout)?;
    serve.spawn(layout)?;
    println!(
        "stripe-sync: API http://{listen}  console http://{listen}/  Temporal {address}  data {}",
        layout.dir.display()
    );

    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = tick.tick() => {
                for process in [&mut temporal, &mut worker, &mut serve] {
                    process.watch(layout);
                }
            }
        }
    }
    tracing::info!("stopping: serve, worker, then temporal");
    serve.stop().await;
    worker.stop().await;
    temporal.stop().await;
    Ok(())
}

/// Waits until Temporal's frontend serves (a minute at most).
async fn wait_for_temporal(
    settings: &Settings,
    address: &str,
    temporal: &mut Managed,
) -> Result<()> {
    let started = Instant::now();
    loop {
        let health = Command::new(&settings.temporal)
            .args(["operator", "cluster", "health", "--address", address])
            .output()
            .await;
        if health.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("SERVING")) {
            return Ok(());
        }
        if let Some(child) = &mut temporal.child
            && let Ok(Some(status)) = child.try_wait()
        {
            bail!("the Temporal dev server exited ({status}): see its log");
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("the Temporal dev server at {address} is not serving after a minute");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn migrate(settings: &Settings, env: &[(&'static str, String)]) -> Result<()> {
    let out = Command::new(&settings.sync_service)
        .arg("migrate")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .await
        .with_context(|| format!("running {} migrate", settings.sync_service.display()))?;
    if !out.status.success() {
        bail!(
            "sync-service migrate failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

//! `start --foreground`: the Temporal dev server (its SQLite file in the data directory), then
//! `sync-service migrate`, `serve` and `worker`; each restarted with backoff when it exits; on
//! SIGTERM or SIGINT, stopped in order (the API first, Temporal last). Should the supervisor
//! itself die, its processes get SIGTERM from the kernel, and a reaper stops whatever else
//! they started (see [`crate::processes`]).

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::process::{Child, Command};

use crate::layout::{Layout, Ports, Settings, signal_group};
use crate::processes;

/// Restarts wait about this long at first, doubling up to [`MAX_BACKOFF`] (the house's
/// policy, `sync_connector::backoff`).
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
    /// The bundle's mark (its data directory), which every process of it carries.
    mark: String,
    child: Option<Child>,
    started_at: Instant,
    /// When it exited, and how long it waits before starting again.
    down_since: Option<Instant>,
    wait: Duration,
    /// The waits of the restarts to come; started over once a run was stable.
    restarts: Box<dyn Iterator<Item = Duration> + Send>,
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
        let mut command = Command::new(&self.program);
        processes::supervised(&mut command, &self.mark)?;
        let child = command
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
                self.restarts = restart_waits();
            }
            self.wait = self.restarts.next().unwrap_or(MAX_BACKOFF);
            tracing::warn!(
                "{} exited ({status}); starting it again in {:?} (see {})",
                self.name,
                self.wait,
                layout.log_path(self.name).display()
            );
            self.down_since = Some(Instant::now());
        }
        if let Some(since) = self.down_since
            && since.elapsed() >= self.wait
            && let Err(e) = self.spawn(layout)
        {
            tracing::error!("{e:#}");
            self.wait = self.restarts.next().unwrap_or(MAX_BACKOFF);
            self.down_since = Some(Instant::now());
        }
    }

    /// SIGTERM to its process group (it and what it started), then SIGKILL to what is still
    /// running after `stop_within`.
    async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let Some(pid) = child.id() else {
            return;
        };
        // The group is named by the pid of the process that leads it, which stays reserved
        // while any member runs.
        signal_group(pid, libc::SIGTERM);
        let ended = async {
            let _ = child.wait().await;
            while signal_group(pid, 0) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        if tokio::time::timeout(self.stop_within, ended).await.is_err() {
            tracing::warn!(
                "{} did not stop within {:?}: killed",
                self.name,
                self.stop_within
            );
            signal_group(pid, libc::SIGKILL);
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
    mark: &str,
    stop_within: Duration,
) -> Managed {
    Managed {
        name,
        args: args.iter().map(|a| a.to_string()).collect(),
        program: program.to_owned(),
        env,
        mark: mark.to_owned(),
        child: None,
        started_at: Instant::now(),
        down_since: None,
        wait: FIRST_BACKOFF,
        restarts: restart_waits(),
        stop_within,
    }
}

fn restart_waits() -> Box<dyn Iterator<Item = Duration> + Send> {
    Box::new(sync_connector::backoff::backoff(FIRST_BACKOFF, MAX_BACKOFF))
}

/// Runs the bundle until SIGTERM or SIGINT, with a reaper that stops whatever is left should
/// this process end without doing so.
pub async fn run(layout: &Layout, settings: &Settings, ports: &Ports) -> Result<()> {
    let mark = processes::mark(layout);
    let mut reaper = Command::new(std::env::current_exe()?)
        .args(["reap", "--data-dir"])
        .arg(&layout.dir)
        .env_remove(processes::MARK)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .context("starting the reaper (stripe-sync reap)")?;
    // Its end of the pipe closes when this process ends, however it ends.
    let lifeline = reaper.stdin.take();
    let outcome = supervise(layout, settings, ports, &mark).await;
    drop(lifeline);
    // After a failed start it stops what the Temporal CLI may have left.
    if let Err(e) = reaper.wait().await {
        tracing::warn!("waiting for the reaper: {e}");
    }
    outcome
}

/// The three long-running processes, in the order they start.
struct Bundle {
    temporal: Managed,
    worker: Managed,
    serve: Managed,
}

async fn supervise(layout: &Layout, settings: &Settings, ports: &Ports, mark: &str) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    // Listened for from the first moment: a stop that comes while starting stops what started
    // (serve may answer before this process notices that it listens).
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let address = format!("127.0.0.1:{}", ports.temporal);
    let mut bundle = bundle(layout, settings, ports, mark, &address);
    let started = tokio::select! {
        started = start(&mut bundle, layout, settings, ports, mark, &address) => Some(started),
        _ = term.recv() => None,
        _ = int.recv() => None,
    };
    match started {
        Some(Ok(())) => {
            println!(
                "stripe-sync: API http://127.0.0.1:{api}  console http://127.0.0.1:{api}/  Temporal {address}  data {}",
                layout.dir.display(),
                api = ports.api
            );
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            loop {
                tokio::select! {
                    _ = term.recv() => break,
                    _ = int.recv() => break,
                    _ = tick.tick() => {
                        for process in [&mut bundle.temporal, &mut bundle.worker, &mut bundle.serve] {
                            process.watch(layout);
                        }
                    }
                }
            }
        }
        Some(Err(e)) => {
            stop(&mut bundle).await;
            return Err(e);
        }
        None => tracing::info!("asked to stop while starting"),
    }
    stop(&mut bundle).await;
    Ok(())
}

fn bundle(
    layout: &Layout,
    settings: &Settings,
    ports: &Ports,
    mark: &str,
    address: &str,
) -> Bundle {
    let db = layout.temporal_db().display().to_string();
    let (port, http, metrics) = (
        ports.temporal.to_string(),
        ports.temporal_http.to_string(),
        ports.temporal_metrics.to_string(),
    );
    let temporal = managed(
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
        mark,
        Duration::from_secs(10),
    );
    // The database URL goes by environment, not argv: `ps` shows arguments to everyone.
    let mut env = vec![("TEMPORAL_ADDRESS", address.to_owned())];
    match &settings.database_url {
        Some(url) => env.push(("SYNC_SERVICE_DATABASE_URL", url.clone())),
        // sync-service finds it as libpq does, from the variables kept at the first start.
        None => env.extend(
            crate::layout::LIBPQ_VARIABLES
                .iter()
                .filter_map(|name| Some((*name, settings.database_env.get(*name)?.clone()))),
        ),
    }
    let listen = format!("127.0.0.1:{}", ports.api);
    let serve = managed(
        "serve",
        &settings.sync_service,
        &["serve", "--listen", &listen],
        env.clone(),
        mark,
        Duration::from_secs(10),
    );
    let worker = managed(
        "worker",
        &settings.sync_service,
        &["worker"],
        env,
        mark,
        Duration::from_secs(30),
    );
    Bundle {
        temporal,
        worker,
        serve,
    }
}

/// Temporal until it serves, the control database's migrations, then the worker and serve,
/// until serve listens.
async fn start(
    bundle: &mut Bundle,
    layout: &Layout,
    settings: &Settings,
    ports: &Ports,
    mark: &str,
    address: &str,
) -> Result<()> {
    bundle.temporal.spawn(layout)?;
    wait_for_temporal(settings, address, &mut bundle.temporal, mark).await?;
    migrate(settings, &bundle.worker.env, mark).await?;
    bundle.worker.spawn(layout)?;
    bundle.serve.spawn(layout)?;
    wait_for_serve(layout, ports.api, &mut bundle.serve).await
}

/// Serve, the worker, then Temporal.
async fn stop(bundle: &mut Bundle) {
    tracing::info!("stopping: serve, worker, then temporal");
    bundle.serve.stop().await;
    bundle.worker.stop().await;
    bundle.temporal.stop().await;
}

/// Waits until Temporal's frontend serves (a minute at most).
async fn wait_for_temporal(
    settings: &Settings,
    address: &str,
    temporal: &mut Managed,
    mark: &str,
) -> Result<()> {
    let started = Instant::now();
    loop {
        let mut probe = Command::new(&settings.temporal);
        processes::supervised(&mut probe, mark)?;
        let health = probe
            .args(["operator", "cluster", "health", "--address", address])
            .kill_on_drop(true)
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

/// Waits until serve accepts connections on the API's port (a minute at most), so that
/// nothing is reported as started before it is; fails with the end of its log if it exits.
async fn wait_for_serve(layout: &Layout, port: u16, serve: &mut Managed) -> Result<()> {
    let started = Instant::now();
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        if let Some(child) = &mut serve.child
            && let Ok(Some(status)) = child.try_wait()
        {
            let log = std::fs::read_to_string(layout.log_path("serve")).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            bail!(
                "sync-service serve exited ({status}) before listening on 127.0.0.1:{port}; the end of {}:\n{}",
                layout.log_path("serve").display(),
                lines[lines.len().saturating_sub(10)..].join("\n")
            );
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!(
                "sync-service serve is not listening on 127.0.0.1:{port} after a minute: see {}",
                layout.log_path("serve").display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn migrate(settings: &Settings, env: &[(&'static str, String)], mark: &str) -> Result<()> {
    let mut command = Command::new(&settings.sync_service);
    processes::supervised(&mut command, mark)?;
    let out = command
        .arg("migrate")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .kill_on_drop(true)
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

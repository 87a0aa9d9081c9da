//! The data directory: what `start` keeps between runs (settings, ports, the Temporal
//! database, logs) and how the other commands find a running bundle.

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
    /// The control database (may hold a password: the file is private to its owner).
    pub database_url: String,
    /// The API's port.
    pub port: u16,
    /// The Temporal CLI.
    pub temporal: PathBuf,
    /// The `sync-service` binary.
    pub sync_service: PathBuf,
}

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
/// (exited, not yet reaped by its parent) does not count.
pub fn alive(pid: u32) -> bool {
    // SAFETY: kill(2) with signal 0 only checks that the pid exists.
    let exists = unsafe { libc::kill(pid as i32, 0) == 0 };
    exists && !zombie(pid)
}

/// Linux's /proc says `Z` in the state field of a zombie; elsewhere this is never known.
fn zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // The state follows the parenthesised command name, which may hold spaces.
            let after = stat.rsplit_once(')')?.1;
            after.split_whitespace().next().map(|state| state == "Z")
        })
        .unwrap_or(false)
}

/// Sends `signal` to `pid`; false when there is no such process.
pub fn signal(pid: u32, signal: i32) -> bool {
    // SAFETY: kill(2) on a pid this bundle started (read from its own ports.json).
    unsafe { libc::kill(pid as i32, signal) == 0 }
}

/// A port no one listens on now.
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
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
}

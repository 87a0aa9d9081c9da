//! The state as a JSON file: `{"version", "owner", "state", "control"}`, replaced atomically and
//! durably (temporary file, fsync, rename, fsync of the directory) on blocking threads, and
//! guarded by an exclusive lock on `<file>.lock` for the run.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sync_protocol::Role;
use sync_protocol::SyncState;

use super::{ControlUpdates, Loaded, Owner};

const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct FileContents {
    version: u32,
    owner: Owner,
    #[serde(default)]
    state: SyncState,
    #[serde(default)]
    control: ControlUpdates,
}

pub(crate) struct FileStore {
    path: PathBuf,
    owner: Owner,
    /// The lock file, held open (and locked) for the run.
    lock: Mutex<Option<File>>,
    /// What the file holds, kept to rewrite it whole.
    contents: Mutex<(SyncState, ControlUpdates)>,
    saved: AtomicBool,
}

impl FileStore {
    pub(crate) fn new(path: PathBuf, owner: Owner) -> FileStore {
        FileStore {
            path,
            owner,
            lock: Mutex::new(None),
            contents: Mutex::new(Default::default()),
            saved: AtomicBool::new(false),
        }
    }

    pub(crate) fn owner(&self) -> &Owner {
        &self.owner
    }

    pub(crate) fn describe(&self) -> String {
        format!("file {}", self.path.display())
    }

    fn lock_path(&self) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(".lock");
        PathBuf::from(name)
    }

    pub(crate) async fn lock(&self) -> Result<()> {
        let path = self.lock_path();
        let file = tokio::task::spawn_blocking(move || take_lock(&path)).await??;
        *self.lock.lock().unwrap_or_else(|e| e.into_inner()) = Some(file);
        Ok(())
    }

    pub(crate) async fn load(&self) -> Result<Loaded> {
        let path = self.path.clone();
        let text = tokio::task::spawn_blocking(move || match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(anyhow!(
                "cannot read the state file {}: {e}",
                path.display()
            )),
        })
        .await??;
        let Some(text) = text else {
            return Ok(Loaded::default());
        };
        let contents: FileContents = match serde_json::from_str::<Value>(&text) {
            Ok(value) if value.get("version").is_some() => serde_json::from_value(value)
                .with_context(|| {
                    format!("the state file {} is not a sync state", self.path.display())
                })?,
            Ok(_) => bail!(
                "the state file {} does not say which sync it belongs to (an earlier version wrote it); \
                 resuming it could skip data. Run with --reset to start over",
                self.path.display()
            ),
            Err(e) => bail!("the state file {} is not JSON ({e})", self.path.display()),
        };
        if contents.version != VERSION {
            bail!(
                "the state file {} has version {}, this engine writes {VERSION}",
                self.path.display(),
                contents.version
            );
        }
        self.owner.check(&contents.owner, &self.describe())?;
        *self.contents.lock().unwrap_or_else(|e| e.into_inner()) =
            (contents.state.clone(), contents.control.clone());
        Ok(Loaded {
            state: Some(contents.state),
            control: contents.control,
        })
    }

    pub(crate) async fn reset(&self) -> Result<()> {
        *self.contents.lock().unwrap_or_else(|e| e.into_inner()) = Default::default();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(anyhow!(
                "cannot remove the state file {}: {e}",
                path.display()
            )),
            _ => Ok(()),
        })
        .await?
    }

    pub(crate) async fn save(&self, state: &SyncState) -> Result<()> {
        let contents = {
            let mut held = self.contents.lock().unwrap_or_else(|e| e.into_inner());
            held.0 = state.clone();
            self.serialise(&held)?
        };
        self.write(contents).await?;
        self.saved.store(true, Ordering::Relaxed);
        Ok(())
    }

    pub(crate) async fn save_control(&self, side: Role, config: Map<String, Value>) -> Result<()> {
        let contents = {
            let mut held = self.contents.lock().unwrap_or_else(|e| e.into_inner());
            held.1.set(side, config);
            self.serialise(&held)?
        };
        self.write(contents).await
    }

    pub(crate) fn saved_anything(&self) -> bool {
        self.saved.load(Ordering::Relaxed)
    }

    fn serialise(&self, held: &(SyncState, ControlUpdates)) -> Result<Vec<u8>> {
        Ok(serde_json::to_vec_pretty(&FileContents {
            version: VERSION,
            owner: self.owner.clone(),
            state: held.0.clone(),
            control: held.1.clone(),
        })?)
    }

    async fn write(&self, contents: Vec<u8>) -> Result<()> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || replace_durably(&path, &contents)).await?
    }
}

/// Writes `contents` to `path` so that a crash leaves either the old file or the new one:
/// a private temporary file, fsync, rename over the target, fsync of the directory.
fn replace_durably(path: &Path, contents: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            dir.to_path_buf()
        }
        None => PathBuf::from("."),
    };
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    drop(file);
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))?;
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync the directory {}", dir.display()))
}

/// An exclusive, non-blocking lock on the lock file, released when the file is closed (also
/// when the process dies). The file names the holder, for the message a second run gets.
fn take_lock(path: &Path) -> Result<File> {
    use std::io::{Read, Seek};
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot open the lock file {}", path.display()))?;
    // SAFETY: flock on a descriptor this function owns; it does not touch memory.
    let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
    if !locked {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        bail!(
            "another sync-engine run is using the state file {} ({}); wait for it to end, or stop it",
            path.with_extension("").display(),
            match holder.trim() {
                "" => "its process id is unknown".to_owned(),
                pid => format!("process {pid}"),
            }
        );
    }
    file.set_len(0)?;
    file.rewind()?;
    write!(file, "{}", std::process::id())?;
    file.sync_all()?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(id: &str) -> Owner {
        Owner {
            sync_id: id.into(),
            source: "stripe (test mode)".into(),
            destination: "postgres h:5432/db schema s".into(),
        }
    }

    #[tokio::test]
    async fn a_file_for_another_sync_is_refused_and_a_second_run_is_locked_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let store = FileStore::new(path.clone(), owner("a"));
        store.lock().await.unwrap();
        let mut state = SyncState::default();
        state.source.global = serde_json::json!({"cursor": 1});
        store.save(&state).await.unwrap();
        assert_eq!(store.load().await.unwrap().state, Some(state));

        let second = FileStore::new(path.clone(), owner("a"));
        let err = second.lock().await.unwrap_err().to_string();
        assert!(
            err.contains("another sync-engine run")
                && err.contains(&std::process::id().to_string()),
            "{err}"
        );

        let other = FileStore::new(path.clone(), owner("b"));
        let err = other.load().await.unwrap_err().to_string();
        assert!(
            err.contains("belongs to another sync") && err.contains("--reset"),
            "{err}"
        );

        std::fs::write(&path, r#"{"source":{"streams":{}}}"#).unwrap();
        let err = store.load().await.unwrap_err().to_string();
        assert!(err.contains("does not say which sync"), "{err}");
        assert!(!dir.path().join("state.json.tmp").exists());
    }
}

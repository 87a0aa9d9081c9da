//! Where committed checkpoints live: a `_sync_state` table in the destination database
//! (default, when the destination is Postgres) or a JSON file.
//!
//! A saved state carries what it belongs to: the sync id and the identities of its source and
//! destination ([`Owner`]). Loading it for anything else is an error, never a silent resume. A
//! store also holds the run lock (one run per sync id at a time) and the config updates
//! connectors asked for (`control` messages), which the next run applies.

mod file;
mod postgres;

use std::path::PathBuf;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sync_protocol::SyncState;

pub(crate) use file::FileStore;
pub(crate) use postgres::PostgresStore;

use crate::builtin::PostgresStateLocation;

/// What a state belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Owner {
    pub sync_id: String,
    /// [`crate::builtin::source_identity`].
    pub source: String,
    /// [`crate::builtin::destination_identity`].
    pub destination: String,
}

impl Owner {
    /// An error unless `saved` is this owner.
    fn check(&self, saved: &Owner, location: &str) -> Result<()> {
        if saved == self {
            return Ok(());
        }
        let mut differences = Vec::new();
        if saved.sync_id != self.sync_id {
            differences.push(format!(
                "it was saved for sync id {:?}, this is {:?}",
                saved.sync_id, self.sync_id
            ));
        }
        if saved.source != self.source {
            differences.push(format!(
                "it was read from {}, this run reads {}",
                saved.source, self.source
            ));
        }
        if saved.destination != self.destination {
            differences.push(format!(
                "it was written to {}, this run writes to {}",
                saved.destination, self.destination
            ));
        }
        bail!(
            "the state in {location} belongs to another sync: {}. Resuming it would skip data. \
             Run with --reset to start this sync over (the saved state is replaced), or use another \
             --sync-id or --state-file",
            differences.join("; ")
        )
    }
}

/// Config updates connectors asked for, by side.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct ControlUpdates {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<Map<String, Value>>,
}

/// Which connector a config update came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Source,
    Destination,
}

impl ControlUpdates {
    pub(crate) fn set(&mut self, side: Side, config: Map<String, Value>) {
        match side {
            Side::Source => self.source = Some(config),
            Side::Destination => self.destination = Some(config),
        }
    }

    pub(crate) fn get(&self, side: Side) -> Option<&Map<String, Value>> {
        match side {
            Side::Source => self.source.as_ref(),
            Side::Destination => self.destination.as_ref(),
        }
    }
}

/// What a store held.
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    pub state: Option<SyncState>,
    pub control: ControlUpdates,
}

pub(crate) enum StateStore {
    File(Box<FileStore>),
    Postgres(Box<PostgresStore>),
    /// `--no-state`: nothing is read or saved, and no run lock is taken.
    Nowhere(Owner),
}

impl StateStore {
    pub(crate) fn file(path: PathBuf, owner: Owner) -> StateStore {
        StateStore::File(Box::new(FileStore::new(path, owner)))
    }

    pub(crate) fn postgres(location: PostgresStateLocation, owner: Owner) -> StateStore {
        StateStore::Postgres(Box::new(PostgresStore::new(location, owner)))
    }

    /// The sync the state belongs to.
    pub(crate) fn sync_id(&self) -> &str {
        match self {
            StateStore::File(f) => &f.owner().sync_id,
            StateStore::Postgres(p) => &p.owner().sync_id,
            StateStore::Nowhere(owner) => &owner.sync_id,
        }
    }

    /// Where the state is, for messages (no secrets).
    pub(crate) fn describe(&self) -> String {
        match self {
            StateStore::File(f) => f.describe(),
            StateStore::Postgres(p) => p.describe(),
            StateStore::Nowhere(_) => "no store (--no-state)".to_owned(),
        }
    }

    /// Takes the run lock: a second run of the same sync fails here with a message saying so.
    pub(crate) async fn lock(&self) -> Result<()> {
        match self {
            StateStore::File(f) => f.lock().await,
            StateStore::Postgres(p) => p.lock().await,
            StateStore::Nowhere(_) => Ok(()),
        }
    }

    /// The saved state and config updates; an error when they belong to another sync.
    pub(crate) async fn load(&self) -> Result<Loaded> {
        match self {
            StateStore::File(f) => f.load().await,
            StateStore::Postgres(p) => p.load().await,
            StateStore::Nowhere(_) => Ok(Loaded::default()),
        }
    }

    /// Forgets the saved state and config updates.
    pub(crate) async fn reset(&self) -> Result<()> {
        match self {
            StateStore::File(f) => f.reset().await,
            StateStore::Postgres(p) => p.reset().await,
            StateStore::Nowhere(_) => Ok(()),
        }
    }

    /// Saves a committed state (durably, before returning).
    pub(crate) async fn save(&self, state: &SyncState) -> Result<()> {
        match self {
            StateStore::File(f) => f.save(state).await,
            StateStore::Postgres(p) => p.save(state).await,
            StateStore::Nowhere(_) => Ok(()),
        }
    }

    /// Saves the config a connector asked for.
    pub(crate) async fn save_control(&self, side: Side, config: Map<String, Value>) -> Result<()> {
        match self {
            StateStore::File(f) => f.save_control(side, config).await,
            StateStore::Postgres(p) => p.save_control(side, config).await,
            StateStore::Nowhere(_) => Ok(()),
        }
    }

    /// Whether a state was saved by this run.
    pub(crate) fn saved_anything(&self) -> bool {
        match self {
            StateStore::File(f) => f.saved_anything(),
            StateStore::Postgres(p) => p.saved_anything(),
            StateStore::Nowhere(_) => false,
        }
    }

    /// Whether this is `--no-state`'s store, which keeps nothing.
    pub(crate) fn keeps_nothing(&self) -> bool {
        matches!(self, StateStore::Nowhere(_))
    }

    /// Removes this sync's state (teardown); for Postgres, the table too once no sync is left.
    /// Returns the other syncs whose state stays.
    pub(crate) async fn remove(&self) -> Result<Vec<String>> {
        match self {
            StateStore::File(f) => f.reset().await.map(|()| Vec::new()),
            StateStore::Postgres(p) => p.remove().await,
            StateStore::Nowhere(_) => Ok(Vec::new()),
        }
    }
}

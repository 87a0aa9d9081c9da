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
use sync_protocol::{Role, SyncState};

use file::FileStore;
use postgres::PostgresStore;

use crate::builtin::PostgresStateLocation;

/// What a state belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// The sync's id (`--sync-id`, or derived from the two connectors and their identities).
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
pub struct ControlUpdates {
    /// The source's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Map<String, Value>>,
    /// The destination's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<Map<String, Value>>,
}

impl ControlUpdates {
    /// Keeps `config` as `side`'s update.
    pub fn set(&mut self, side: Role, config: Map<String, Value>) {
        match side {
            Role::Source => self.source = Some(config),
            Role::Destination => self.destination = Some(config),
        }
    }

    /// `side`'s update, if any.
    pub fn get(&self, side: Role) -> Option<&Map<String, Value>> {
        match side {
            Role::Source => self.source.as_ref(),
            Role::Destination => self.destination.as_ref(),
        }
    }
}

/// What a store held.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The last committed state, if any.
    pub state: Option<SyncState>,
    /// The config updates connectors asked for.
    pub control: ControlUpdates,
}

/// Where one sync's checkpoint is kept.
pub struct StateStore(Kind);

enum Kind {
    File(Box<FileStore>),
    Postgres(Box<PostgresStore>),
    /// `--no-state`: nothing is read or saved, and no run lock is taken.
    Nowhere(Owner),
}

impl StateStore {
    /// A JSON file at `path`.
    pub fn file(path: PathBuf, owner: Owner) -> StateStore {
        StateStore(Kind::File(Box::new(FileStore::new(path, owner))))
    }

    /// The `_sync_state` table of a Postgres database.
    pub fn postgres(location: PostgresStateLocation, owner: Owner) -> StateStore {
        StateStore(Kind::Postgres(Box::new(PostgresStore::new(
            location, owner,
        ))))
    }

    /// `--no-state`: nothing is read or saved, and no run lock is taken.
    pub fn nowhere(owner: Owner) -> StateStore {
        StateStore(Kind::Nowhere(owner))
    }

    /// The sync the state belongs to.
    pub fn sync_id(&self) -> &str {
        match &self.0 {
            Kind::File(f) => &f.owner().sync_id,
            Kind::Postgres(p) => &p.owner().sync_id,
            Kind::Nowhere(owner) => &owner.sync_id,
        }
    }

    /// Where the state is, for messages (no secrets).
    pub fn describe(&self) -> String {
        match &self.0 {
            Kind::File(f) => f.describe(),
            Kind::Postgres(p) => p.describe(),
            Kind::Nowhere(_) => "no store (--no-state)".to_owned(),
        }
    }

    /// Takes the run lock: a second run of the same sync fails here with a message saying so.
    pub async fn lock(&self) -> Result<()> {
        match &self.0 {
            Kind::File(f) => f.lock().await,
            Kind::Postgres(p) => p.lock().await,
            Kind::Nowhere(_) => Ok(()),
        }
    }

    /// The saved state and config updates; an error when they belong to another sync.
    pub async fn load(&self) -> Result<Loaded> {
        match &self.0 {
            Kind::File(f) => f.load().await,
            Kind::Postgres(p) => p.load().await,
            Kind::Nowhere(_) => Ok(Loaded::default()),
        }
    }

    /// Forgets the saved state and config updates.
    pub async fn reset(&self) -> Result<()> {
        match &self.0 {
            Kind::File(f) => f.reset().await,
            Kind::Postgres(p) => p.reset().await,
            Kind::Nowhere(_) => Ok(()),
        }
    }

    /// Saves a committed state (durably, before returning).
    pub async fn save(&self, state: &SyncState) -> Result<()> {
        match &self.0 {
            Kind::File(f) => f.save(state).await,
            Kind::Postgres(p) => p.save(state).await,
            Kind::Nowhere(_) => Ok(()),
        }
    }

    /// Saves the config a connector asked for.
    pub async fn save_control(&self, side: Role, config: Map<String, Value>) -> Result<()> {
        match &self.0 {
            Kind::File(f) => f.save_control(side, config).await,
            Kind::Postgres(p) => p.save_control(side, config).await,
            Kind::Nowhere(_) => Ok(()),
        }
    }

    /// Whether a state was saved by this run.
    pub fn saved_anything(&self) -> bool {
        match &self.0 {
            Kind::File(f) => f.saved_anything(),
            Kind::Postgres(p) => p.saved_anything(),
            Kind::Nowhere(_) => false,
        }
    }

    /// Whether this is `--no-state`'s store, which keeps nothing.
    pub fn keeps_nothing(&self) -> bool {
        matches!(self.0, Kind::Nowhere(_))
    }

    /// Removes this sync's state (teardown); for Postgres, the table too once no sync is left.
    /// Returns the other syncs whose state stays.
    pub async fn remove(&self) -> Result<Vec<String>> {
        match &self.0 {
            Kind::File(f) => f.reset().await.map(|()| Vec::new()),
            Kind::Postgres(p) => p.remove().await,
            Kind::Nowhere(_) => Ok(Vec::new()),
        }
    }
}

//! A load for latency tests: objects of one stream updated at a steady rate through the same
//! path as API updates (so each makes an event and a webhook). Every update stamps
//! `metadata.load_seq` (a counter, from 1) and `metadata.load_at_ms` (when, Unix milliseconds),
//! so a reader can tell how long the change took to reach it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::FakeError;
use crate::running_load::Load;
use crate::simulator::{Scope, Simulator};

/// What `POST /_fake/load` accepts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadSpec {
    /// Updates per second.
    pub rate: f64,
    /// The stream whose objects change (platform, test mode).
    #[serde(default = "default_stream")]
    pub stream: String,
    /// Stop after this long; absent: until stopped.
    #[serde(default)]
    pub seconds: Option<f64>,
}

fn default_stream() -> String {
    "customers".to_owned()
}

/// What `GET /_fake/load` answers.
#[derive(Debug, Clone, Serialize)]
pub struct LoadStatus {
    /// Whether a load runs.
    pub running: bool,
    /// Updates made by the current or last load.
    pub mutations: u64,
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Simulator {
    /// Starts a load (replacing a running one); needs a Tokio runtime.
    pub fn start_load(self: &Arc<Self>, spec: LoadSpec) -> Result<(), FakeError> {
        if !(spec.rate.is_finite() && spec.rate > 0.0 && spec.rate <= 10_000.0) {
            return Err(FakeError::InvalidConfig(format!(
                "rate must be between 0 and 10000 per second, got {}",
                spec.rate
            )));
        }
        let ids: Vec<String> = self
            .objects(Scope::test(None), &spec.stream)?
            .iter()
            .filter_map(|o| o["id"].as_str().map(str::to_owned))
            .collect();
        if ids.is_empty() {
            return Err(FakeError::InvalidConfig(format!(
                "the stream {} has no objects to update",
                spec.stream
            )));
        }
        let mutations = Arc::new(AtomicU64::new(0));
        let (sim, counter) = (self.clone(), mutations.clone());
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / spec.rate));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let until = spec
                .seconds
                .map(|s| tokio::time::Instant::now() + Duration::from_secs_f64(s));
            loop {
                tick.tick().await;
                if until.is_some_and(|u| tokio::time::Instant::now() >= u) {
                    return;
                }
                let seq = counter.fetch_add(1, Ordering::Relaxed) + 1;
                // A stride through the objects spreads the updates over all of them.
                let id = &ids[(seq as usize * 7919) % ids.len()];
                let fields = json!({"metadata": {"load_seq": seq.to_string(), "load_at_ms": unix_ms().to_string()}});
                if let Err(e) = sim.update(Scope::test(None), &spec.stream, id, fields) {
                    tracing::warn!("load: updating {id}: {e}");
                }
            }
        });
        *self
            .load
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Load { task, mutations });
        Ok(())
    }

    /// Stops the load, if one runs.
    pub fn stop_load(&self) {
        if let Some(load) = self
            .load
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
        {
            load.task.abort();
        }
    }

    /// Whether a load runs, and how many updates it made.
    pub fn load_status(&self) -> LoadStatus {
        match self
            .load
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
        {
            Some(load) => LoadStatus {
                running: !load.task.is_finished(),
                mutations: load.mutations.load(Ordering::Relaxed),
            },
            None => LoadStatus {
                running: false,
                mutations: 0,
            },
        }
    }
}

//! What the web console (crate `sync-console`) shows of this service: the pipelines from the
//! control database, the pipeline form's checks and streams (`drafts`), and for the explorer
//! the Stripe catalog and the pipelines' Postgres destinations.

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

use futures_util::future::BoxFuture;
use serde_json::Value;
use sync_console::{
    AccountLine, ConnectorForm, Destination, Draft, ExplorerData, PipelineData, PipelineDetail,
    PipelineRow, RunLine, SideCheck, StoredPipeline, StreamLine, StreamOffer,
};
use sync_protocol::{Catalog, Progress};

use crate::api_state::Api;
use crate::control::{Control, ControlError};

/// How many runs a pipeline's page lists.
const RUNS_SHOWN: i64 = 20;

/// The console's data source.
pub struct ConsoleData {
    /// The API's state: its control database, and the engine the form's checks and discovers
    /// run on.
    api: Arc<Api>,
}

impl ConsoleData {
    /// Over the API's control database and engine.
    pub fn new(api: Arc<Api>) -> ConsoleData {
        ConsoleData { api }
    }

    fn control(&self) -> &Control {
        &self.api.control
    }
}

fn text(e: ControlError) -> String {
    e.to_string()
}

impl PipelineData for ConsoleData {
    fn rows(&self) -> BoxFuture<'_, Result<Vec<PipelineRow>, String>> {
        Box::pin(async move {
            let rows = self.control().console_rows().await.map_err(text)?;
            Ok(rows
                .iter()
                .map(|r| PipelineRow {
                    id: r.get(0),
                    status: r.get(1),
                    desired: r.get(2),
                    failure_type: r.get(3),
                    error: r.get(4),
                    records: r.get(5),
                    checkpoint_age_secs: r.get(6),
                })
                .collect())
        })
    }

    fn detail<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<PipelineDetail>, String>> {
        Box::pin(async move {
            let pipeline = match self.control().get(id).await {
                Ok(p) => p,
                Err(ControlError::NotFound(_)) => return Ok(None),
                Err(e) => return Err(text(e)),
            };
            let Some(sums) = self.control().console_sums(id).await.map_err(text)? else {
                return Ok(None);
            };
            let runs = self
                .control()
                .console_runs(id, RUNS_SHOWN)
                .await
                .map_err(text)?;
            let stream_records: Value = sums.get(1);
            let newest = runs.first().map(|r| {
                let progress: Option<Value> = r.get(7);
                let running = r.get::<_, Option<f64>>(2).is_none();
                (
                    progress.and_then(|p| serde_json::from_value::<Progress>(p).ok()),
                    running,
                )
            });
            let checkpoint = self.control().checkpoint(id).await.map_err(text)?;
            let destination = &pipeline.destination;
            let (status, failure_type, error) = pipeline.condition();
            Ok(Some(PipelineDetail {
                row: PipelineRow {
                    id: pipeline.id.clone(),
                    status: status.as_str().to_owned(),
                    desired: pipeline.desired.as_str().to_owned(),
                    records: sums.get(0),
                    checkpoint_age_secs: sums.get(4),
                    failure_type: failure_type.map(str::to_owned),
                    error: error.map(str::to_owned),
                },
                source: pipeline.source["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                destination: format!(
                    "{} (schema {})",
                    destination["name"].as_str().unwrap_or_default(),
                    destination["config"]["schema"].as_str().unwrap_or("stripe")
                ),
                saves: sums.get(2),
                saved_at: sums.get(3),
                streams: stream_lines(&stream_records, configured(&pipeline.streams), newest),
                accounts: account_lines(&checkpoint["state"]["source"]),
                runs: runs
                    .iter()
                    .map(|r| RunLine {
                        id: r.get(0),
                        started_at: r.get(1),
                        duration_secs: r.get(2),
                        status: r.get(3),
                        records: r.get(4),
                        states: r.get(5),
                        error: r.get(6),
                    })
                    .collect(),
            }))
        })
    }

    fn connectors(&self) -> BoxFuture<'_, Result<[ConnectorForm; 2], String>> {
        Box::pin(crate::drafts::connectors(&self.api))
    }

    fn stored<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<StoredPipeline>, String>> {
        Box::pin(crate::drafts::stored(&self.api, id))
    }

    fn check(&self, draft: Draft) -> BoxFuture<'_, Result<Vec<SideCheck>, String>> {
        Box::pin(async move { crate::drafts::check(&self.api, &draft).await })
    }

    fn streams(&self, draft: Draft) -> BoxFuture<'_, Result<Vec<StreamOffer>, String>> {
        Box::pin(async move { crate::drafts::streams(&self.api, &draft).await })
    }
}

/// The pipeline's chosen streams (none when it syncs all).
fn configured(streams: &Option<Value>) -> Vec<String> {
    crate::pipeline::stream_names(streams)
}

/// Per stream (the chosen ones from the start, so rows do not appear one by one): the records
/// of all runs, and the newest run's status, rate and ranges.
fn stream_lines(
    records: &Value,
    chosen: Vec<String>,
    newest: Option<(Option<Progress>, bool)>,
) -> Vec<StreamLine> {
    let (progress, running) = match newest {
        Some((Some(p), running)) => (Some(p), running),
        _ => (None, false),
    };
    let mut names: BTreeSet<String> = chosen.into_iter().collect();
    names.extend(
        records
            .as_object()
            .into_iter()
            .flat_map(|m| m.keys().cloned()),
    );
    if let Some(p) = &progress {
        names.extend(p.streams.keys().cloned());
    }
    names
        .into_iter()
        .map(|name| {
            let now = progress
                .as_ref()
                .and_then(|p| p.streams.get(&name).map(|s| (p, s)));
            let elapsed = progress
                .as_ref()
                .map_or(0.0, |p| p.elapsed_ms as f64 / 1000.0);
            StreamLine {
                records: records[&name].as_i64().unwrap_or(0),
                status: now
                    .and_then(|(_, s)| serde_json::to_value(s.status).ok())
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_else(|| "—".to_owned()),
                rate: now
                    .filter(|_| running && elapsed > 0.0)
                    .map(|(_, s)| s.record_count as f64 / elapsed),
                total_range: now.and_then(|(_, s)| s.total_range.clone()),
                completed_ranges: now
                    .map(|(_, s)| s.completed_ranges.clone())
                    .unwrap_or_default(),
                name,
            }
        })
        .collect()
}

impl ExplorerData for ConsoleData {
    fn catalog(&self) -> BoxFuture<'_, Result<Arc<Catalog>, String>> {
        static CATALOG: OnceLock<Arc<Catalog>> = OnceLock::new();
        // The Stripe source's own catalog; the account stamped in `_account_id`'s schema does
        // not change the tables.
        let catalog = CATALOG.get_or_init(|| Arc::new(source_stripe::catalog("acct_any")));
        Box::pin(std::future::ready(Ok(catalog.clone())))
    }

    fn destinations(&self) -> BoxFuture<'_, Result<Vec<Destination>, String>> {
        Box::pin(async move {
            let pipelines = self.control().list().await.map_err(text)?;
            Ok(pipelines
                .iter()
                .filter(|p| p.destination["name"] == "postgres")
                .filter_map(|p| {
                    let config = &p.destination["config"];
                    Some(Destination {
                        label: p.id.clone(),
                        url: config["url"].as_str()?.to_owned(),
                        schema: config["schema"].as_str().unwrap_or("stripe").to_owned(),
                    })
                })
                .collect())
        })
    }
}

/// A Connect platform's accounts as its checkpoint holds them (the platform first); none for a
/// pipeline of one account.
fn account_lines(source_state: &Value) -> Vec<AccountLine> {
    let Ok(state) = serde_json::from_value::<sync_protocol::SourceStateSet>(source_state.clone())
    else {
        return Vec::new();
    };
    let Some(accounts) = source_stripe::platform_accounts(&state) else {
        return Vec::new();
    };
    let time = |v: &Value| v.as_i64().and_then(sync_protocol::time::unix_to_rfc3339);
    let mut lines: Vec<AccountLine> = accounts["accounts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| AccountLine {
            id: a["account_id"].as_str().unwrap_or_default().to_owned(),
            is_platform: a["is_platform"].as_bool().unwrap_or(false),
            status: a["status"].as_str().unwrap_or_default().to_owned(),
            last_synced_at: time(&a["last_synced_at"]),
            deauthorized_at: time(&a["deauthorized_at"]),
            error: a["error"].as_str().map(str::to_owned),
        })
        .collect();
    lines.sort_by(|a, b| b.is_platform.cmp(&a.is_platform).then(a.id.cmp(&b.id)));
    lines
}

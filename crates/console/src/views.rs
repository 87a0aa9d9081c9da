//! What a host tells the console about its pipelines, and how the pages show it: the same view
//! structs fill the templates and the live updates, so a page and its updates never disagree.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde::Serialize;
use serde_json::Value;
use sync_protocol::{Catalog, TimeRange};

use crate::format;
use crate::table_stats::Destination;

/// One pipeline, as the host knows it.
#[derive(Debug, Clone, Default)]
pub struct PipelineRow {
    /// Its id.
    pub id: String,
    /// What it is doing (`backfilling`, `ready`, `paused`, `error`, …).
    pub status: String,
    /// What the user asked (`active`, `paused`, `deleted`).
    pub desired: String,
    /// Records committed to the destination, over all runs.
    pub records: i64,
    /// Seconds since the newest committed checkpoint; `None` before the first.
    pub checkpoint_age_secs: Option<f64>,
    /// The failure's class, when it failed.
    pub failure_type: Option<String>,
    /// The failure's message.
    pub error: Option<String>,
}

/// One stream of a pipeline.
#[derive(Debug, Clone, Default)]
pub struct StreamLine {
    /// The stream.
    pub name: String,
    /// Its status in the newest run.
    pub status: String,
    /// Records committed over all runs.
    pub records: i64,
    /// Records a second in the newest run, while it runs.
    pub rate: Option<f64>,
    /// The time range the backfill covers, and the ranges done (the newest run's progress).
    pub total_range: Option<TimeRange>,
    /// The ranges done.
    pub completed_ranges: Vec<TimeRange>,
}

/// One account of a Connect platform's pipeline (`connected_accounts`).
#[derive(Debug, Clone, Default)]
pub struct AccountLine {
    /// The account (`acct_…`).
    pub id: String,
    /// Whether it is the platform's own.
    pub is_platform: bool,
    /// `active`, `unavailable`, `deauthorized` or `failed`.
    pub status: String,
    /// When its last read that completed every stream began, RFC 3339.
    pub last_synced_at: Option<String>,
    /// When it deauthorized the platform, RFC 3339.
    pub deauthorized_at: Option<String>,
    /// Why it is unavailable or failed.
    pub error: Option<String>,
}

/// One run of a pipeline.
#[derive(Debug, Clone, Default)]
pub struct RunLine {
    /// Its id.
    pub id: i64,
    /// When it started, RFC 3339.
    pub started_at: String,
    /// How long it ran; `None` while it runs.
    pub duration_secs: Option<f64>,
    /// `started`, `succeeded`, `time_limit`, `failed`, `interrupted`.
    pub status: String,
    /// Records committed.
    pub records: i64,
    /// Checkpoints saved.
    pub states: i64,
    /// Why it failed.
    pub error: Option<String>,
}

/// A pipeline's page.
#[derive(Debug, Clone, Default)]
pub struct PipelineDetail {
    /// The list's row.
    pub row: PipelineRow,
    /// The source connector's name.
    pub source: String,
    /// The destination connector's name and schema.
    pub destination: String,
    /// Checkpoints saved in all.
    pub saves: i64,
    /// When the newest checkpoint was saved, RFC 3339.
    pub saved_at: Option<String>,
    /// Per stream.
    pub streams: Vec<StreamLine>,
    /// A Connect platform's pipeline: each account (the platform first); empty otherwise.
    pub accounts: Vec<AccountLine>,
    /// Newest first.
    pub runs: Vec<RunLine>,
}

/// A connector a pipeline is made with: its name and its config's JSON Schema, secret
/// properties marked `"writeOnly": true`.
#[derive(Debug, Clone)]
pub struct ConnectorForm {
    /// The connector's name (`stripe`, `postgres`).
    pub name: String,
    /// Its config's JSON Schema.
    pub schema: Value,
}

/// A pipeline as stored, every value as the API shows it (secrets masked).
#[derive(Debug, Clone)]
pub struct StoredPipeline {
    /// `{"name", "config"}`.
    pub source: Value,
    /// `{"name", "config"}`.
    pub destination: Value,
    /// The chosen streams as stored (names, or objects with a name and their settings);
    /// `null`: every stream.
    pub streams: Value,
}

/// A pipeline being made or edited, as the form sends it: `source` and `destination` as in
/// `POST /pipelines`, or (with `pipeline`, an edit) only what changes, as in `PATCH`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Draft {
    /// The pipeline edited; `None`: a new one.
    #[serde(default)]
    pub pipeline: Option<String>,
    /// The source side.
    #[serde(default)]
    pub source: Value,
    /// The destination side.
    #[serde(default)]
    pub destination: Value,
}

/// One side's answer to a check.
#[derive(Debug, Clone, Serialize)]
pub struct SideCheck {
    /// `source` or `destination`.
    pub side: String,
    /// The connector said its config works.
    pub ok: bool,
    /// What it said.
    pub message: String,
}

/// A stream the source offers.
#[derive(Debug, Clone, Serialize)]
pub struct StreamOffer {
    /// Its name.
    pub name: String,
    /// One most users want: chosen before the user chooses.
    pub common: bool,
}

/// Where the pipelines pages get their data.
pub trait PipelineData: Send + Sync + 'static {
    /// Every pipeline, in the order to show.
    fn rows(&self) -> BoxFuture<'_, Result<Vec<PipelineRow>, String>>;
    /// One pipeline; `None` when there is none by that id.
    fn detail<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<PipelineDetail>, String>>;
    /// The source and destination a new pipeline is made with.
    fn connectors(&self) -> BoxFuture<'_, Result<[ConnectorForm; 2], String>>;
    /// One pipeline as stored; `None` when there is none by that id.
    fn stored<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<StoredPipeline>, String>>;
    /// Both sides' check of a draft; `Err`: the draft itself is wrong (the message names the
    /// field, as the API's 400s do).
    fn check(&self, draft: Draft) -> BoxFuture<'_, Result<Vec<SideCheck>, String>>;
    /// The streams a draft's source offers; `Err` as for [`PipelineData::check`].
    fn streams(&self, draft: Draft) -> BoxFuture<'_, Result<Vec<StreamOffer>, String>>;
}

/// Where the explorer gets its catalog and the destinations it can count rows in.
pub trait ExplorerData: Send + Sync + 'static {
    /// The catalog to show.
    fn catalog(&self) -> BoxFuture<'_, Result<Arc<Catalog>, String>>;
    /// The destinations the user can choose from.
    fn destinations(&self) -> BoxFuture<'_, Result<Vec<Destination>, String>>;
}

/// A row of the pipelines list, every field as shown.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RowView {
    pub(crate) id: String,
    pub(crate) status: String,
    pub(crate) records: String,
    pub(crate) lag: String,
    pub(crate) failure_type: String,
    pub(crate) error: String,
}

impl RowView {
    /// The pipeline's page.
    pub(crate) fn page(&self) -> String {
        crate::link::pipeline_page(&self.id)
    }

    /// The pipeline's edit form.
    pub(crate) fn edit(&self) -> String {
        crate::link::pipeline_edit(&self.id)
    }

    /// The explorer with row counts from the pipeline's destination.
    pub(crate) fn explorer(&self) -> String {
        format!("/explorer?destination={}", crate::link::component(&self.id))
    }

    /// How a row is shown.
    pub(crate) fn of(row: &PipelineRow) -> RowView {
        RowView {
            id: row.id.clone(),
            status: row.status.clone(),
            records: format::count(row.records),
            lag: row
                .checkpoint_age_secs
                .map_or_else(|| "—".to_owned(), format::age),
            failure_type: row.failure_type.clone().unwrap_or_default(),
            error: row.error.clone().unwrap_or_default(),
        }
    }
}

/// The list's summary line: how many pipelines in each status.
pub(crate) fn summary(rows: &[PipelineRow]) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for row in rows {
        match counts.iter_mut().find(|(s, _)| *s == row.status) {
            Some((_, n)) => *n += 1,
            None => counts.push((&row.status, 1)),
        }
    }
    counts.sort();
    let parts: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
    match rows.len() {
        0 => "No pipelines".to_owned(),
        1 => format!("1 pipeline: {}", parts.join(", ")),
        n => format!("{n} pipelines: {}", parts.join(", ")),
    }
}

/// A stream line as shown.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct StreamView {
    pub(crate) name: String,
    pub(crate) status: String,
    pub(crate) records: String,
    pub(crate) rate: String,
    pub(crate) ranges: String,
}

impl StreamView {
    fn of(line: &StreamLine) -> StreamView {
        StreamView {
            name: line.name.clone(),
            status: line.status.replace('_', " "),
            records: format::count(line.records),
            rate: line.rate.map_or_else(|| "—".to_owned(), format::rate),
            ranges: ranges_done(line),
        }
    }
}

/// `63 % (5 ranges)`, `all` once complete, `—` without a backfill plan.
fn ranges_done(line: &StreamLine) -> String {
    let done = line.completed_ranges.len();
    let Some(total) = &line.total_range else {
        return if line.status == "completed" {
            "all".to_owned()
        } else {
            "—".to_owned()
        };
    };
    let share = coverage(total, &line.completed_ranges);
    let plural = if done == 1 { "range" } else { "ranges" };
    match share {
        Some(s) if s >= 0.9995 => format!("all ({done} {plural})"),
        Some(s) => format!("{:.0} % ({done} {plural})", s * 100.0),
        None => format!("{done} {plural}"),
    }
}

/// The share of `total` the ranges cover (they do not overlap); `None` when a bound is open or
/// not a timestamp.
pub(crate) fn coverage(total: &TimeRange, done: &[TimeRange]) -> Option<f64> {
    let seconds = |r: &TimeRange| -> Option<f64> {
        let at = |t: &Option<String>| {
            t.as_deref()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.timestamp() as f64)
        };
        Some((at(&r.lt)? - at(&r.gte)?).max(0.0))
    };
    let whole = seconds(total)?;
    if whole <= 0.0 {
        return None;
    }
    let covered: f64 = done.iter().map(seconds).sum::<Option<f64>>()?;
    Some((covered / whole).min(1.0))
}

/// A run as shown.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RunView {
    pub(crate) id: i64,
    pub(crate) started_at: String,
    pub(crate) duration: String,
    pub(crate) status: String,
    pub(crate) records: String,
    pub(crate) states: String,
    pub(crate) error: String,
}

impl RunView {
    fn of(run: &RunLine) -> RunView {
        RunView {
            id: run.id,
            started_at: run.started_at.replace('T', " "),
            duration: run
                .duration_secs
                .map_or_else(|| "running".to_owned(), format::age),
            status: run.status.replace('_', " "),
            records: format::count(run.records),
            states: format::count(run.states),
            error: run.error.clone().unwrap_or_default(),
        }
    }
}

/// One account as shown.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct AccountView {
    pub(crate) id: String,
    pub(crate) status: String,
    pub(crate) last_synced_at: String,
    pub(crate) error: String,
}

impl AccountView {
    fn of(line: &AccountLine) -> AccountView {
        let when = |t: &Option<String>| t.as_deref().map(|t| t.replace('T', " "));
        AccountView {
            id: if line.is_platform {
                format!("{} (platform)", line.id)
            } else {
                line.id.clone()
            },
            status: match (line.status.as_str(), when(&line.deauthorized_at)) {
                ("deauthorized", Some(at)) => format!("deauthorized {at}"),
                (status, _) => status.to_owned(),
            },
            last_synced_at: when(&line.last_synced_at).unwrap_or_else(|| "never".to_owned()),
            error: line.error.clone().unwrap_or_default(),
        }
    }
}

/// A pipeline's page as shown, and its live update.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DetailView {
    pub(crate) row: RowView,
    pub(crate) desired: String,
    pub(crate) source: String,
    pub(crate) destination: String,
    pub(crate) saves: String,
    pub(crate) saved_at: String,
    pub(crate) streams: Vec<StreamView>,
    pub(crate) accounts: Vec<AccountView>,
    pub(crate) runs: Vec<RunView>,
}

impl DetailView {
    /// How a pipeline's page shows it.
    pub(crate) fn of(detail: &PipelineDetail) -> DetailView {
        DetailView {
            row: RowView::of(&detail.row),
            desired: detail.row.desired.clone(),
            source: detail.source.clone(),
            destination: detail.destination.clone(),
            saves: format::count(detail.saves),
            saved_at: detail
                .saved_at
                .clone()
                .map_or_else(|| "never".to_owned(), |t| t.replace('T', " ")),
            streams: detail.streams.iter().map(StreamView::of).collect(),
            accounts: detail.accounts.iter().map(AccountView::of).collect(),
            runs: detail.runs.iter().map(RunView::of).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(gte: &str, lt: &str) -> TimeRange {
        TimeRange {
            gte: Some(gte.to_owned()),
            lt: Some(lt.to_owned()),
        }
    }

    #[test]
    fn accounts_are_shown_with_their_times() {
        let platform = AccountView::of(&AccountLine {
            id: "acct_p".into(),
            is_platform: true,
            status: "active".into(),
            last_synced_at: Some("2026-12-08T01:02:03Z".into()),
            ..Default::default()
        });
        assert_eq!(platform.id, "acct_p (platform)");
        assert_eq!(platform.last_synced_at, "2026-12-08 01:02:03Z");
        let gone = AccountView::of(&AccountLine {
            id: "acct_c".into(),
            status: "deauthorized".into(),
            deauthorized_at: Some("2026-12-08T04:05:06Z".into()),
            ..Default::default()
        });
        assert_eq!(gone.status, "deauthorized 2026-12-08 04:05:06Z");
        assert_eq!(gone.last_synced_at, "never");
    }

    #[test]
    fn ranges_are_shown_as_a_share() {
        let mut line = StreamLine {
            status: "started".into(),
            total_range: Some(range("2020-01-01T00:00:00Z", "2020-01-05T00:00:00Z")),
            completed_ranges: vec![range("2020-01-01T00:00:00Z", "2020-01-02T00:00:00Z")],
            ..Default::default()
        };
        assert_eq!(ranges_done(&line), "25 % (1 range)");
        line.completed_ranges
            .push(range("2020-01-02T00:00:00Z", "2020-01-05T00:00:00Z"));
        assert_eq!(ranges_done(&line), "all (2 ranges)");
        line.total_range = None;
        assert_eq!(ranges_done(&line), "—");
        line.status = "completed".into();
        assert_eq!(ranges_done(&line), "all");
    }

    #[test]
    fn the_summary_counts_statuses() {
        let row = |s: &str| PipelineRow {
            status: s.into(),
            ..Default::default()
        };
        assert_eq!(summary(&[]), "No pipelines");
        assert_eq!(
            summary(&[row("ready"), row("error"), row("ready")]),
            "3 pipelines: 1 error, 2 ready"
        );
    }
}

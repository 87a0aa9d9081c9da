//! One stream's loader: records are spread over lanes by key (so each key's versions stay in
//! order), each lane buffers COPY rows and flushes on its own connection, at most one flush in
//! flight per lane. A state (or a barrier for a global state) waits until every lane has
//! committed every record that came before it, then is re-emitted (or reported reached), in
//! arrival order.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use deadpool_postgres::Pool;
use sync_connector::Output;
use sync_protocol::{ListingPhase, LogLevel, Message, SourceState, StreamStatusKind};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::batch::Batch;
use crate::config::{Config, DeleteMode};
use crate::flush::{BatchData, FlushError, Load, flush, target_has_rows};
use crate::merge::MergeSql;
use crate::record::{Rejection, RowPlan};
use crate::rejected::RejectedRecord;
use crate::table::TableModel;

/// A lane's buffer is flushed when it holds this many bytes, whatever `batch_size` says.
const MAX_BATCH_BYTES: usize = 16 * 1024 * 1024;
/// All streams' buffers and batches in flight together; above it, the lane that adds a record
/// flushes (after its batch in flight, if any, has landed).
const MAX_BUFFERED_BYTES: usize = 64 * 1024 * 1024;
/// Rejected records reported one by one per stream; after that, one line per thousand.
const REJECTIONS_DETAILED: u64 = 20;

/// What the router sends a loader.
pub(crate) enum ToLoader {
    /// A record line, and where its `data` object lies in it.
    Record {
        line: u64,
        bytes: Vec<u8>,
        data: Range<usize>,
    },
    State(SourceState),
    /// Report [`LoaderNote::Reached`] once every record before this is committed.
    Barrier(u64),
}

/// A loader's report to the router.
pub(crate) enum LoaderNote {
    Reached {
        stream: usize,
        barrier: u64,
    },
    Failed {
        stream: usize,
    },
    /// No connection could be had or kept, after retries: every stream would meet it.
    DatabaseDown {
        message: String,
    },
}

/// Shared by the router and the loaders.
pub(crate) struct Shared {
    pub pool: Pool,
    pub output: Output,
    pub config: Config,
    pub buffered: AtomicUsize,
    /// Set on a fatal input error: loaders then commit only what states cover.
    pub aborting: AtomicBool,
    /// Set when a flush found the database gone: loaders flush nothing more.
    pub database_down: AtomicBool,
    pub notes: mpsc::UnboundedSender<LoaderNote>,
}

struct Lane {
    batch: Batch,
    busy: bool,
    /// Records given to this lane, and records committed, since the loader started.
    enqueued: u64,
    committed: u64,
}

enum Waiting {
    State(SourceState),
    Barrier(u64),
}

/// A state or barrier, and each lane's record count when it arrived.
struct Pending {
    marks: Vec<u64>,
    what: Waiting,
}

/// A batch's bytes stay counted in [`Shared::buffered`] until its flush ends, however it ends,
/// so that batches waiting for a connection count against [`MAX_BUFFERED_BYTES`] too.
struct InFlight {
    shared: Arc<Shared>,
    bytes: usize,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.shared
            .buffered
            .fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// A flush that landed: (lane, records, whether later batches may still go straight in).
type Flight = (usize, u64, Result<bool, FlushError>);

pub(crate) struct StreamLoader {
    index: usize,
    table: TableModel,
    plan: RowPlan,
    sql: Arc<MergeSql>,
    shared: Arc<Shared>,
    lanes: Vec<Lane>,
    pending: VecDeque<Pending>,
    flights: JoinSet<Flight>,
    /// Whether batches may go straight into the target: decided at the first flush.
    direct: Option<bool>,
    since_state: u64,
    rejected_since_state: u64,
    rejected_total: u64,
    first_at: Option<Instant>,
    failed: bool,
    /// The stream's open listings whose flushes record the keys they write.
    listings: Vec<crate::listing::OpenListing>,
}

impl StreamLoader {
    pub(crate) fn new(
        index: usize,
        table: TableModel,
        shared: Arc<Shared>,
        lanes: usize,
    ) -> StreamLoader {
        let sql = Arc::new(MergeSql::new(
            &shared.config.schema,
            &table,
            shared.config.delete_mode,
        ));
        StreamLoader {
            index,
            plan: RowPlan::new(&table),
            table,
            sql,
            shared,
            lanes: (0..lanes.max(1))
                .map(|_| Lane {
                    batch: Batch::new(),
                    busy: false,
                    enqueued: 0,
                    committed: 0,
                })
                .collect(),
            pending: VecDeque::new(),
            flights: JoinSet::new(),
            direct: None,
            since_state: 0,
            rejected_since_state: 0,
            rejected_total: 0,
            first_at: None,
            failed: false,
            listings: Vec::new(),
        }
    }

    pub(crate) async fn run(mut self, mut rx: mpsc::Receiver<ToLoader>) {
        let interval = Duration::from_millis(self.shared.config.flush_interval_ms);
        loop {
            let deadline = self.first_at.map(|t| t + interval);
            tokio::select! {
                message = rx.recv() => match message {
                    Some(ToLoader::Record { line, bytes, data }) => self.add_record(line, &bytes[data]).await,
                    Some(ToLoader::State(state)) => self.add_state(state).await,
                    Some(ToLoader::Barrier(id)) => self.add(Waiting::Barrier(id)).await,
                    None => break,
                },
                Some(landed) = self.flights.join_next(), if !self.flights.is_empty() => {
                    self.landed(landed).await;
                }
                _ = sleep_until(deadline) => self.flush_all().await,
            }
        }
        if self.shared.aborting.load(Ordering::SeqCst) {
            // Commit what the last state covers, nothing beyond it.
            for lane in &mut self.lanes {
                let before = lane.batch.bytes();
                lane.batch.cut_to_last_state();
                self.shared
                    .buffered
                    .fetch_sub(before - lane.batch.bytes(), Ordering::Relaxed);
            }
        }
        self.flush_all().await;
        while let Some(landed) = self.flights.join_next().await {
            self.landed(landed).await;
        }
        for lane in &mut self.lanes {
            let bytes = lane.batch.bytes();
            self.shared.buffered.fetch_sub(bytes, Ordering::Relaxed);
            lane.batch = Batch::new();
        }
    }

    async fn add_record(&mut self, line: u64, data: &[u8]) {
        if self.failed {
            return;
        }
        let prepared = match std::str::from_utf8(data) {
            Ok(text) => self.plan.prepare(text),
            Err(e) => Err(Rejection {
                key: None,
                field: None,
                reason: format!("the record data is not UTF-8: {e}"),
            }),
        };
        let (lane, added) = match prepared {
            Ok(record) => {
                let lane = (record.key_hash % self.lanes.len() as u64) as usize;
                let batch = &mut self.lanes[lane].batch;
                let before = batch.bytes();
                record.write(&mut batch.rows);
                batch.noted(record.key_hash, record.tombstone);
                self.since_state += 1;
                (lane, batch.bytes() - before)
            }
            Err(rejection) => {
                self.reject(line, data, rejection).await;
                (0, data.len())
            }
        };
        self.lanes[lane].enqueued += 1;
        self.first_at.get_or_insert_with(Instant::now);
        let total = self.shared.buffered.fetch_add(added, Ordering::Relaxed) + added;
        let per_lane = (self.shared.config.batch_size / self.lanes.len()).max(1);
        let batch = &self.lanes[lane].batch;
        if batch.records() >= per_lane
            || batch.bytes() >= MAX_BATCH_BYTES
            || total >= MAX_BUFFERED_BYTES
        {
            self.flush_lane(lane).await;
        }
    }

    /// Sets a record aside: kept verbatim (with the first lane's batch), reported in-band,
    /// counted with the next state.
    async fn reject(&mut self, line: u64, data: &[u8], rejection: Rejection) {
        self.rejected_since_state += 1;
        self.rejected_total += 1;
        let key = rejection
            .key
            .as_deref()
            .map(|k| format!(" (key {k:?})"))
            .unwrap_or_default();
        let message = format!(
            "stream {:?}: the record on line {line}{key} was rejected and kept in {}.{}: {rejection}",
            self.table.stream,
            self.shared.config.schema,
            crate::rejected::TABLE
        );
        let n = self.rejected_total;
        if n <= REJECTIONS_DETAILED || n.is_multiple_of(1000) {
            let suffix = if n == REJECTIONS_DETAILED {
                "; further rejections of this stream are reported every thousand"
            } else {
                ""
            };
            tracing::warn!("{message}{suffix}");
            let _ = self
                .shared
                .output
                .log(sync_protocol::LogLevel::Warn, format!("{message}{suffix}"))
                .await;
        }
        self.lanes[0].batch.rejected.push(RejectedRecord {
            stream: self.table.stream.clone(),
            line,
            reason: rejection.to_string(),
            key: rejection.key,
            data: data.to_vec(),
        });
    }

    async fn add_state(&mut self, state: SourceState) {
        if let Some(listing) = state.listing().cloned() {
            self.fence(&listing).await;
        }
        let state = state.with_stats(
            std::mem::take(&mut self.since_state),
            std::mem::take(&mut self.rejected_since_state),
        );
        self.add(Waiting::State(state)).await;
    }

    /// A listing's start or end, once every record before it is committed (its state then
    /// waits behind nothing). A failure fails the stream: the state is not acknowledged, so
    /// the source lists again from the last one that was.
    async fn fence(&mut self, listing: &sync_protocol::Listing) {
        self.drain().await;
        if self.failed {
            return;
        }
        let (pool, config) = (&self.shared.pool, &self.shared.config);
        match listing.phase {
            ListingPhase::Started => {
                match crate::listing::start(pool, config, &self.table, listing).await {
                    Ok(Some(open)) => {
                        self.listings.retain(|l| l.id != open.id);
                        self.listings.push(open);
                        // Its keys are recorded through the staging table.
                        self.direct = Some(false);
                    }
                    Ok(None) => {}
                    Err(e) => self.fail(&e.message).await,
                }
            }
            ListingPhase::Complete => {
                self.listings.retain(|l| l.id != listing.id);
                match crate::listing::end(pool, config, &self.table, listing).await {
                    Ok(ended) => self.report_end(listing, ended).await,
                    Err(e) => self.fail(&e.message).await,
                }
            }
        }
    }

    async fn report_end(&self, listing: &sync_protocol::Listing, ended: crate::listing::Ended) {
        let stream = &self.table.stream;
        let table = format!("{}.{}", self.shared.config.schema, self.table.table);
        let (level, message) = match ended {
            crate::listing::Ended::Marked(0) => (
                LogLevel::Info,
                format!(
                    "stream {stream:?}: its whole listing returned every row of {table} it covers"
                ),
            ),
            crate::listing::Ended::Marked(n) => (
                LogLevel::Info,
                format!(
                    "stream {stream:?}: {n} row(s) of {table} its whole listing did not return were marked deleted (_deleted_reason {:?})",
                    crate::table::MISSING_FROM_LISTING
                ),
            ),
            crate::listing::Ended::Refused { missing, live } => (
                LogLevel::Warn,
                format!(
                    "stream {stream:?}: its whole listing did not return {missing} of the {live} row(s) of {table} it covers, more than sweep_max_share {} allows: none was marked (set sweep_max_share to 1 to allow it)",
                    self.shared.config.sweep_max_share
                ),
            ),
            crate::listing::Ended::Nothing(why) => (
                LogLevel::Debug,
                format!(
                    "stream {stream:?}: listing {}: nothing marked: {why}",
                    listing.id
                ),
            ),
        };
        match level {
            LogLevel::Warn => tracing::warn!("{message}"),
            LogLevel::Info => tracing::info!("{message}"),
            _ => tracing::debug!("{message}"),
        }
        if level != LogLevel::Debug {
            let _ = self.shared.output.log(level, message).await;
        }
    }

    /// Flushes every lane and waits until every batch has landed.
    async fn drain(&mut self) {
        self.flush_all().await;
        while let Some(landed) = self.flights.join_next().await {
            self.landed(landed).await;
        }
    }

    /// Queues a state or barrier behind every record before it.
    async fn add(&mut self, what: Waiting) {
        if self.failed {
            return;
        }
        for lane in &mut self.lanes {
            lane.batch.mark_covered();
        }
        self.pending.push_back(Pending {
            marks: self.lanes.iter().map(|l| l.enqueued).collect(),
            what,
        });
        self.emit_ready().await;
    }

    /// Emits the states (and reports the barriers) whose records are all committed, in order.
    async fn emit_ready(&mut self) {
        while let Some(front) = self.pending.front() {
            let ready = front
                .marks
                .iter()
                .zip(&self.lanes)
                .all(|(mark, lane)| lane.committed >= *mark);
            if !ready || self.failed {
                break;
            }
            let Some(pending) = self.pending.pop_front() else {
                break;
            };
            match pending.what {
                Waiting::State(state) => {
                    let _ = self.shared.output.emit(Message::SourceState(state)).await;
                }
                Waiting::Barrier(barrier) => {
                    let _ = self.shared.notes.send(LoaderNote::Reached {
                        stream: self.index,
                        barrier,
                    });
                }
            }
        }
    }

    async fn flush_all(&mut self) {
        for lane in 0..self.lanes.len() {
            self.flush_lane(lane).await;
        }
        self.first_at = None;
    }

    /// Starts loading a lane's batch, after its previous one landed.
    async fn flush_lane(&mut self, lane: usize) {
        while self.lanes[lane].busy {
            match self.flights.join_next().await {
                Some(landed) => self.landed(landed).await,
                None => self.lanes[lane].busy = false,
            }
        }
        let database_down = self.shared.database_down.load(Ordering::SeqCst);
        if self.failed || database_down || self.lanes[lane].batch.is_empty() {
            return;
        }
        let load = self.load_for(lane).await;
        let batch = std::mem::replace(&mut self.lanes[lane].batch, Batch::new());
        let budget = InFlight {
            shared: self.shared.clone(),
            bytes: batch.bytes(),
        };
        let records = batch.records() as u64;
        let data = BatchData {
            row_count: batch.rows.len() as u64,
            rows: batch.rows.framed(),
            rejected: batch.rejected,
            seen_by: self.listings.clone(),
        };
        let (shared, sql, stream) = (
            self.shared.clone(),
            self.sql.clone(),
            self.table.stream.clone(),
        );
        self.lanes[lane].busy = true;
        self.flights.spawn(async move {
            let _budget = budget;
            let result = match flush(&shared.pool, &sql, &data, load, &stream).await {
                Ok(loaded) if loaded.rows != data.row_count => Err(FlushError {
                    message: format!(
                        "COPY loaded {} rows of a batch of {}",
                        loaded.rows, data.row_count
                    ),
                    retryable: false,
                    database_down: false,
                }),
                Ok(loaded) => Ok(loaded.direct_ok),
                Err(e) => Err(e),
            };
            (lane, records, result)
        });
    }

    /// How a lane's batch reaches the target: straight in while the stream only brings new
    /// keys into a table that was empty when it started; never with repeated keys, nor with
    /// tombstones that must delete.
    async fn load_for(&mut self, lane: usize) -> Load {
        if self.direct.is_none() {
            let empty = target_has_rows(&self.shared.pool, &self.sql)
                .await
                .map(|has| !has)
                .unwrap_or(false);
            self.direct = Some(empty);
        }
        let batch = &self.lanes[lane].batch;
        let hard_tombstones =
            batch.tombstones && self.shared.config.delete_mode == DeleteMode::Hard;
        match self.direct {
            Some(true) if !batch.duplicates && !hard_tombstones => Load::Direct,
            _ => Load::Merge {
                dedupe: batch.duplicates,
            },
        }
    }

    async fn landed(&mut self, landed: Result<Flight, tokio::task::JoinError>) {
        let (lane, records, result) = match landed {
            Ok(flight) => flight,
            Err(e) => {
                self.fail(&format!("a load task failed: {e}")).await;
                return;
            }
        };
        self.lanes[lane].busy = false;
        match result {
            Ok(direct_ok) => {
                // Once a batch had to merge, the target holds this stream's keys.
                if !direct_ok {
                    self.direct = Some(false);
                }
                self.lanes[lane].committed += records;
                self.emit_ready().await;
            }
            Err(e) => {
                if e.database_down {
                    self.shared.database_down.store(true, Ordering::SeqCst);
                    let _ = self.shared.notes.send(LoaderNote::DatabaseDown {
                        message: e.message.clone(),
                    });
                }
                self.fail(&e.message).await;
            }
        }
    }

    /// The stream stops: its later records and states are dropped, the other streams go on.
    async fn fail(&mut self, cause: &str) {
        if self.failed {
            return;
        }
        self.failed = true;
        for lane in &mut self.lanes {
            self.shared
                .buffered
                .fetch_sub(lane.batch.bytes(), Ordering::Relaxed);
            lane.batch = Batch::new();
        }
        let error = format!(
            "stream {:?} (table {}.{}): {cause}",
            self.table.stream, self.shared.config.schema, self.table.table
        );
        tracing::error!("{error}");
        let _ = self
            .shared
            .notes
            .send(LoaderNote::Failed { stream: self.index });
        let _ = self
            .shared
            .output
            .stream_status(&self.table.stream, StreamStatusKind::Error { error })
            .await;
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

//! `write`: routes stdin records to one loader per stream, which buffers them as COPY rows and
//! flushes by size, by age and at end of input; each stream's states are re-emitted only after
//! every record before them is committed, and a global state only after every stream's records
//! before it are.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use deadpool_postgres::Pool;
use sync_connector::{ConnectorError, InputLines, Output};
use sync_protocol::peek::{Peeked, peek};
use sync_protocol::{ConfiguredCatalog, GlobalState, Message, SourceState, StreamStatusKind};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::Config;
use crate::copy::CopyRows;
use crate::flush::{BatchData, Load, flush};
use crate::merge::MergeSql;
use crate::record::{Rejection, RowPlan};
use crate::rejected::RejectedRecord;
use crate::table::TableModel;

/// A stream's buffer is flushed when it holds this many bytes, whatever `batch_size` says.
const MAX_BATCH_BYTES: usize = 16 * 1024 * 1024;
/// All streams' buffers together; above it, the stream that adds a record flushes.
const MAX_BUFFERED_BYTES: usize = 64 * 1024 * 1024;
const WORKER_QUEUE: usize = 1024;
/// Rejected records reported one by one per stream; after that, one line per thousand.
const REJECTIONS_DETAILED: u64 = 20;

enum ToLoader {
    /// A record line, and where its `data` object lies in it (the router found it already).
    Record {
        line: u64,
        bytes: Vec<u8>,
        data: Range<usize>,
    },
    State(SourceState),
}

/// A loader's report to the router: records committed (or the stream failed).
enum LoaderNote {
    Committed { stream: usize, records: u64 },
    Failed { stream: usize },
}

/// Shared by the router and the loaders.
struct Shared {
    pool: Pool,
    output: Output,
    config: Config,
    buffered: AtomicUsize,
    /// Set on a fatal input error: loaders then drop their buffers instead of flushing them.
    aborting: AtomicBool,
    notes: mpsc::UnboundedSender<LoaderNote>,
}

struct Route {
    tx: Option<mpsc::Sender<ToLoader>>,
    routed: u64,
    committed: u64,
    failed: bool,
}

struct PendingGlobal {
    state: GlobalState,
    /// Records each stream had been sent when the state arrived.
    watermarks: Vec<(usize, u64)>,
    committed: u64,
}

pub async fn write(
    config: Config,
    pool: Pool,
    catalog: ConfiguredCatalog,
    mut input: InputLines,
    output: Output,
) -> Result<(), ConnectorError> {
    let tables: Vec<TableModel> = catalog
        .streams
        .iter()
        .map(TableModel::from_stream)
        .collect();
    let (notes_tx, mut notes_rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        pool,
        output: output.clone(),
        config,
        buffered: AtomicUsize::new(0),
        aborting: AtomicBool::new(false),
        notes: notes_tx,
    });
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut routes = Vec::new();
    let mut handles: Vec<JoinHandle<()>> = Vec::new();
    let names: Vec<String> = tables.iter().map(|t| t.stream.clone()).collect();
    for (i, table) in tables.into_iter().enumerate() {
        let (tx, rx) = mpsc::channel(WORKER_QUEUE);
        index.insert(table.stream.clone(), i);
        routes.push(Route {
            tx: Some(tx),
            routed: 0,
            committed: 0,
            failed: false,
        });
        handles.push(tokio::spawn(
            StreamLoader::new(i, table, shared.clone()).run(rx),
        ));
    }
    let mut unknown_reported: HashSet<String> = HashSet::new();
    let mut pending_globals: VecDeque<PendingGlobal> = VecDeque::new();
    let mut since_global = 0u64;
    let mut fatal: Option<String> = None;

    loop {
        tokio::select! {
            biased;
            Some(note) = notes_rx.recv() => {
                apply_note(&mut routes, note);
                emit_ready_globals(&mut pending_globals, &routes, &output).await?;
            }
            line = input.next() => {
                let Some(line) = line else { break };
                let line = match line {
                    Ok(line) => line,
                    Err(e) => { fatal = Some(e.to_string()); break; }
                };
                match peek(&line.bytes) {
                    Ok(Peeked::Record(record)) => {
                        let Some(&i) = index.get(record.stream.as_ref()) else {
                            if unknown_reported.insert(record.stream.to_string()) {
                                let error = format!("stream {:?} is not in the catalog; its records are dropped (first at line {})", record.stream, line.number);
                                tracing::error!("{error}");
                                output.stream_status(&record.stream, StreamStatusKind::Error { error }).await?;
                            }
                            continue;
                        };
                        let data = span_within(&line.bytes, record.data.get());
                        let route = &mut routes[i];
                        route.routed += 1;
                        since_global += 1;
                        if let Some(tx) = &route.tx
                            && tx.send(ToLoader::Record { line: line.number, bytes: line.bytes, data }).await.is_err()
                        {
                            route.tx = None;
                        }
                    }
                    Ok(Peeked::Other(_)) => match Message::from_slice(&line.bytes) {
                        Ok(Message::SourceState(SourceState::Stream(state))) => match index.get(&state.stream) {
                            Some(&i) => {
                                if let Some(tx) = &routes[i].tx {
                                    let _ = tx.send(ToLoader::State(SourceState::Stream(state))).await;
                                }
                            }
                            None => tracing::warn!(line = line.number, "dropping a state of stream {:?}, which is not in the catalog", state.stream),
                        },
                        Ok(Message::SourceState(SourceState::Global(state))) => {
                            let watermarks = routes.iter().enumerate().map(|(i, r)| (i, r.routed)).collect();
                            pending_globals.push_back(PendingGlobal { state, watermarks, committed: std::mem::take(&mut since_global) });
                            emit_ready_globals(&mut pending_globals, &routes, &output).await?;
                        }
                        Ok(other) => tracing::debug!(line = line.number, "ignoring a {} message", other.message_type()),
                        Err(e) => { fatal = Some(format!("line {}: {e}", line.number)); break; }
                    },
                    Err(e) if e.is_unknown_type() => tracing::warn!(line = line.number, "skipping a line: {e}"),
                    Err(e) => { fatal = Some(format!("line {}: {e}", line.number)); break; }
                }
            }
        }
    }

    if fatal.is_some() {
        shared.aborting.store(true, Ordering::SeqCst);
    }
    for route in &mut routes {
        route.tx = None;
    }
    for (index, handle) in handles.into_iter().enumerate() {
        if let Err(e) = handle.await {
            // A loader that panicked: its stream failed, whatever it had buffered is not committed.
            let stream = names[index].clone();
            let error = format!("stream {stream:?}: its loader stopped unexpectedly ({e})");
            tracing::error!("{error}");
            apply_note(&mut routes, LoaderNote::Failed { stream: index });
            output
                .stream_status(&stream, StreamStatusKind::Error { error })
                .await?;
        }
    }
    drop(shared);
    while let Some(note) = notes_rx.recv().await {
        apply_note(&mut routes, note);
    }
    emit_ready_globals(&mut pending_globals, &routes, &output).await?;
    if let Some(message) = fatal {
        return Err(ConnectorError::system(format!(
            "invalid input, nothing after the last acknowledged state was committed: {message}"
        )));
    }
    if !pending_globals.is_empty() {
        tracing::warn!(
            "{} global state(s) not acknowledged: a stream before them failed",
            pending_globals.len()
        );
    }
    Ok(())
}

/// Where `part`, a slice borrowed from `whole`, lies in it; an empty range if it is not in it.
fn span_within(whole: &[u8], part: &str) -> Range<usize> {
    let start = (part.as_ptr() as usize).wrapping_sub(whole.as_ptr() as usize);
    match start.checked_add(part.len()) {
        Some(end) if end <= whole.len() => start..end,
        _ => 0..0,
    }
}

fn apply_note(routes: &mut [Route], note: LoaderNote) {
    match note {
        LoaderNote::Committed { stream, records } => routes[stream].committed += records,
        LoaderNote::Failed { stream } => routes[stream].failed = true,
    }
}

async fn emit_ready_globals(
    pending: &mut VecDeque<PendingGlobal>,
    routes: &[Route],
    output: &Output,
) -> Result<(), ConnectorError> {
    while let Some(front) = pending.front() {
        let ready = front
            .watermarks
            .iter()
            .all(|&(i, routed)| !routes[i].failed && routes[i].committed >= routed);
        if !ready {
            break;
        }
        let Some(global) = pending.pop_front() else {
            break;
        };
        output
            .emit(Message::SourceState(
                SourceState::Global(global.state).with_committed(global.committed),
            ))
            .await?;
    }
    Ok(())
}

/// One stream's buffer of encoded rows and the states that follow them.
struct Batch {
    rows: CopyRows,
    /// Records set aside, kept with the batch.
    rejected: Vec<RejectedRecord>,
    key_hashes: HashSet<u64>,
    duplicates: bool,
    /// Some record of the batch is a tombstone.
    tombstones: bool,
    states: Vec<SourceState>,
    /// Rows, bytes and rejected records when the last state arrived: what the states cover.
    covered: (usize, usize, usize),
    first_at: Option<Instant>,
}

impl Batch {
    fn new() -> Batch {
        Batch {
            rows: CopyRows::new(),
            rejected: Vec::new(),
            key_hashes: HashSet::new(),
            duplicates: false,
            tombstones: false,
            states: Vec::new(),
            covered: (0, 0, 0),
            first_at: None,
        }
    }

    fn is_empty(&self) -> bool {
        self.rows.is_empty() && self.rejected.is_empty()
    }

    fn records(&self) -> usize {
        self.rows.len() + self.rejected.len()
    }

    /// Bytes held: encoded rows and the text of rejected records.
    fn bytes(&self) -> usize {
        self.rows.bytes() + self.rejected.iter().map(|r| r.data.len()).sum::<usize>()
    }

    /// Drops the records no state covers yet.
    fn cut_to_last_state(&mut self) {
        let (rows, bytes, rejected) = self.covered;
        self.rows.truncate(rows, bytes);
        self.rejected.truncate(rejected);
    }
}

struct StreamLoader {
    index: usize,
    table: TableModel,
    plan: RowPlan,
    sql: Arc<MergeSql>,
    shared: Arc<Shared>,
    since_state: u64,
    rejected_since_state: u64,
    rejected_total: u64,
    batch: Batch,
    in_flight: Option<JoinHandle<Result<bool, String>>>,
    /// Whether batches may go straight into the target: unknown until the first flush.
    direct: Option<bool>,
    failed: bool,
}

impl StreamLoader {
    fn new(index: usize, table: TableModel, shared: Arc<Shared>) -> StreamLoader {
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
            direct: None,
            since_state: 0,
            rejected_since_state: 0,
            rejected_total: 0,
            batch: Batch::new(),
            in_flight: None,
            failed: false,
        }
    }

    async fn run(mut self, mut rx: mpsc::Receiver<ToLoader>) {
        let interval = Duration::from_millis(self.shared.config.flush_interval_ms);
        loop {
            let deadline = self.batch.first_at.map(|t| t + interval);
            let message = tokio::select! {
                m = rx.recv() => m,
                _ = sleep_until(deadline) => {
                    self.flush().await;
                    continue;
                }
            };
            match message {
                Some(ToLoader::Record { line, bytes, data }) => {
                    self.add_record(line, &bytes, data).await
                }
                Some(ToLoader::State(state)) => self.add_state(state).await,
                None => break,
            }
        }
        if self.shared.aborting.load(Ordering::SeqCst) {
            // Commit what the last state covers, nothing beyond it.
            let before = self.batch.bytes();
            self.batch.cut_to_last_state();
            self.shared
                .buffered
                .fetch_sub(before - self.batch.bytes(), Ordering::Relaxed);
        }
        self.flush().await;
        self.wait_in_flight().await;
        self.release_buffer();
    }

    async fn add_record(&mut self, line: u64, bytes: &[u8], data: Range<usize>) {
        if self.failed {
            return;
        }
        let before = self.batch.bytes();
        let data = &bytes[data];
        let encoded = match std::str::from_utf8(data) {
            Ok(text) => self.plan.encode(text, &mut self.batch.rows),
            Err(e) => Err(Rejection {
                key: None,
                field: None,
                reason: format!("the record data is not UTF-8: {e}"),
            }),
        };
        match encoded {
            Ok(encoded) => {
                self.batch.tombstones |= encoded.tombstone;
                if !self.batch.key_hashes.insert(encoded.key_hash) {
                    self.batch.duplicates = true;
                }
                self.since_state += 1;
            }
            Err(rejection) => self.reject(line, data, rejection).await,
        }
        self.batch.first_at.get_or_insert_with(Instant::now);
        let added = self.batch.bytes() - before;
        let total = self.shared.buffered.fetch_add(added, Ordering::Relaxed) + added;
        if self.batch.records() >= self.shared.config.batch_size
            || self.batch.bytes() >= MAX_BATCH_BYTES
            || total >= MAX_BUFFERED_BYTES
        {
            self.flush().await;
        }
    }

    /// Sets a record aside: kept verbatim with the batch, reported in-band, counted with the
    /// next state.
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
        self.batch.rejected.push(RejectedRecord {
            stream: self.table.stream.clone(),
            line,
            reason: rejection.to_string(),
            key: rejection.key,
            data: data.to_vec(),
        });
    }

    async fn add_state(&mut self, state: SourceState) {
        if self.failed {
            return;
        }
        let state = state.with_stats(
            std::mem::take(&mut self.since_state),
            std::mem::take(&mut self.rejected_since_state),
        );
        if !self.batch.is_empty() {
            self.batch.states.push(state);
            self.batch.covered = (
                self.batch.rows.len(),
                self.batch.rows.bytes(),
                self.batch.rejected.len(),
            );
            return;
        }
        // Every record before this state is committed or in the load in flight.
        self.wait_in_flight().await;
        if !self.failed {
            let _ = self.shared.output.emit(Message::SourceState(state)).await;
        }
    }

    fn release_buffer(&mut self) {
        let bytes = self.batch.bytes();
        self.shared.buffered.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// Starts loading the current batch; at most one load per stream is in flight, so the next
    /// batch is encoded while the previous one is merged.
    async fn flush(&mut self) {
        self.wait_in_flight().await;
        if self.failed {
            return;
        }
        if self.batch.is_empty() {
            let states = std::mem::take(&mut self.batch.states);
            self.emit_states(states).await;
            self.batch.first_at = None;
            return;
        }
        self.release_buffer();
        let batch = std::mem::replace(&mut self.batch, Batch::new());
        let records = batch.rows.len() as u64;
        let rejected = batch.records() as u64 - records;
        // Straight into the target while the stream only brings new keys (a first load); never
        // with repeated keys, nor with tombstones that must delete.
        let hard_tombstones =
            batch.tombstones && self.shared.config.delete_mode == crate::config::DeleteMode::Hard;
        let load = match self.direct {
            Some(false) => Load::Merge {
                dedupe: batch.duplicates,
            },
            _ if batch.duplicates || hard_tombstones => Load::Merge {
                dedupe: batch.duplicates,
            },
            Some(true) => Load::Direct,
            None => Load::DirectIfEmpty,
        };
        let data = BatchData {
            rows: batch.rows.framed(),
            row_count: records,
            rejected: batch.rejected,
        };
        let states = batch.states;
        let (shared, sql, stream, index) = (
            self.shared.clone(),
            self.sql.clone(),
            self.table.stream.clone(),
            self.index,
        );
        self.in_flight = Some(tokio::spawn(async move {
            match flush(&shared.pool, &sql, &data, load, &stream).await {
                Ok(loaded) if loaded.rows != records => Err(format!(
                    "COPY loaded {} rows of a batch of {records}",
                    loaded.rows
                )),
                Ok(loaded) => {
                    // The stream's own states first, so a global state never overtakes one
                    // that came before it.
                    for state in states {
                        if shared
                            .output
                            .emit(Message::SourceState(state))
                            .await
                            .is_err()
                        {
                            break;
                        }
                    }
                    let _ = shared.notes.send(LoaderNote::Committed {
                        stream: index,
                        records: records + rejected,
                    });
                    Ok(loaded.direct_ok)
                }
                Err(e) => Err(e.message),
            }
        }));
    }

    async fn wait_in_flight(&mut self) {
        let Some(handle) = self.in_flight.take() else {
            return;
        };
        let error = match handle.await {
            Ok(Ok(direct_ok)) => {
                // Once a batch had to merge, the target holds this stream's keys: merge from now on.
                if !direct_ok || self.direct.is_none() {
                    self.direct = Some(direct_ok);
                }
                return;
            }
            Ok(Err(message)) => message,
            Err(e) => format!("the load task failed: {e}"),
        };
        self.fail(&error).await;
    }

    async fn emit_states(&mut self, states: Vec<SourceState>) {
        for state in states {
            let _ = self.shared.output.emit(Message::SourceState(state)).await;
        }
    }

    /// The stream stops: its later records and states are dropped, the other streams go on.
    async fn fail(&mut self, cause: &str) {
        if self.failed {
            return;
        }
        self.failed = true;
        self.release_buffer();
        self.batch = Batch::new();
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

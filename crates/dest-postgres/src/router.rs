//! `write`: reads stdin and routes each stream's records and states to its loader
//! ([`crate::loader`]); a global state is re-emitted once every stream has committed every
//! record before it (a barrier each loader reports reaching).

use std::collections::{HashMap, HashSet, VecDeque};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use deadpool_postgres::Pool;
use sync_connector::{ConnectorError, InputLines, Output};
use sync_protocol::peek::{Peeked, peek};
use sync_protocol::{ConfiguredCatalog, GlobalState, Message, SourceState, StreamStatusKind};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::loader::{LoaderNote, Shared, StreamLoader, ToLoader};
use crate::table::TableModel;

const LOADER_QUEUE: usize = 1024;

struct Route {
    tx: Option<mpsc::Sender<ToLoader>>,
    failed: bool,
}

struct PendingGlobal {
    barrier: u64,
    state: GlobalState,
    /// Streams that have not reached the barrier yet.
    waiting: HashSet<usize>,
    /// Records routed since the previous global state.
    committed: u64,
}

/// Where a record's `data` lies in its line.
fn span_within(whole: &[u8], part: &str) -> Range<usize> {
    let start = (part.as_ptr() as usize).wrapping_sub(whole.as_ptr() as usize);
    match start.checked_add(part.len()) {
        Some(end) if end <= whole.len() => start..end,
        _ => 0..0,
    }
}

/// The router's view of the streams and of the global states in flight.
struct Router {
    index: HashMap<String, usize>,
    routes: Vec<Route>,
    globals: VecDeque<PendingGlobal>,
    next_barrier: u64,
    since_global: u64,
    unknown_reported: HashSet<String>,
    output: Output,
    /// Why the database is gone, once a loader found it so.
    database_down: Option<String>,
}

impl Router {
    fn note(&mut self, note: LoaderNote) {
        match note {
            LoaderNote::Reached { stream, barrier } => {
                if let Some(g) = self.globals.iter_mut().find(|g| g.barrier == barrier) {
                    g.waiting.remove(&stream);
                }
            }
            LoaderNote::Failed { stream } => self.routes[stream].failed = true,
            LoaderNote::DatabaseDown { message } => {
                self.database_down.get_or_insert(message);
            }
        }
    }

    /// Emits the global states every stream has reached, in order; none after a failed stream.
    async fn emit_ready_globals(&mut self) -> Result<(), ConnectorError> {
        while let Some(front) = self.globals.front() {
            let blocked = front.waiting.iter().any(|&i| self.routes[i].failed);
            if !front.waiting.is_empty() || blocked {
                break;
            }
            let Some(global) = self.globals.pop_front() else {
                break;
            };
            self.output
                .emit(Message::SourceState(
                    SourceState::Global(global.state).with_committed(global.committed),
                ))
                .await?;
        }
        Ok(())
    }

    async fn send(&mut self, stream: usize, message: ToLoader) {
        let route = &mut self.routes[stream];
        if let Some(tx) = &route.tx
            && tx.send(message).await.is_err()
        {
            route.tx = None;
        }
    }

    /// Routes one input line; `Err` is a fatal input error (its message names the line).
    async fn route(&mut self, number: u64, bytes: Vec<u8>) -> Result<(), String> {
        match peek(&bytes) {
            Ok(Peeked::Record(record)) => {
                let Some(&i) = self.index.get(record.stream.as_ref()) else {
                    if self.unknown_reported.insert(record.stream.to_string()) {
                        let error = format!(
                            "stream {:?} is not in the catalog; its records are dropped (first at line {number})",
                            record.stream
                        );
                        tracing::error!("{error}");
                        let _ = self
                            .output
                            .stream_status(&record.stream, StreamStatusKind::Error { error })
                            .await;
                    }
                    return Ok(());
                };
                let data = span_within(&bytes, record.data.get());
                self.since_global += 1;
                self.send(
                    i,
                    ToLoader::Record {
                        line: number,
                        bytes,
                        data,
                    },
                )
                .await;
                Ok(())
            }
            Ok(Peeked::Other(_)) => match Message::from_slice(&bytes) {
                Ok(Message::SourceState(SourceState::Stream(state))) => {
                    match self.index.get(&state.stream) {
                        Some(&i) => {
                            self.send(i, ToLoader::State(SourceState::Stream(state)))
                                .await
                        }
                        None => tracing::warn!(
                            line = number,
                            "dropping a state of stream {:?}, which is not in the catalog",
                            state.stream
                        ),
                    }
                    Ok(())
                }
                Ok(Message::SourceState(SourceState::Global(state))) => {
                    let barrier = self.next_barrier;
                    self.next_barrier += 1;
                    self.globals.push_back(PendingGlobal {
                        barrier,
                        state,
                        waiting: (0..self.routes.len()).collect(),
                        committed: std::mem::take(&mut self.since_global),
                    });
                    for i in 0..self.routes.len() {
                        self.send(i, ToLoader::Barrier(barrier)).await;
                    }
                    Ok(())
                }
                Ok(other) => {
                    tracing::debug!(line = number, "ignoring a {} message", other.message_type());
                    Ok(())
                }
                Err(e) => Err(format!("line {number}: {e}")),
            },
            Err(e) if e.is_unknown_type() => {
                tracing::warn!(line = number, "skipping a line: {e}");
                Ok(())
            }
            Err(e) => Err(format!("line {number}: {e}")),
        }
    }
}

impl Router {
    fn new(output: Output) -> Router {
        Router {
            index: HashMap::new(),
            routes: Vec::new(),
            globals: VecDeque::new(),
            next_barrier: 0,
            since_global: 0,
            unknown_reported: HashSet::new(),
            output,
            database_down: None,
        }
    }

    /// Starts one loader per stream of the catalog.
    fn start_loaders(
        &mut self,
        catalog: &ConfiguredCatalog,
        shared: &Arc<Shared>,
    ) -> Vec<(String, JoinHandle<()>)> {
        let lanes = shared
            .config
            .connections_per_stream
            .min(shared.config.max_connections)
            .max(1);
        let mut handles = Vec::new();
        for (i, stream) in catalog.streams.iter().enumerate() {
            let table = TableModel::from_stream(stream);
            let (tx, rx) = mpsc::channel(LOADER_QUEUE);
            self.index.insert(table.stream.clone(), i);
            self.routes.push(Route {
                tx: Some(tx),
                failed: false,
            });
            let name = table.stream.clone();
            let loader = StreamLoader::new(i, table, shared.clone(), lanes);
            handles.push((name, tokio::spawn(loader.run(rx))));
        }
        handles
    }

    /// Closes every loader's input and waits for them; a loader that panicked fails its stream.
    async fn finish_loaders(
        &mut self,
        handles: Vec<(String, JoinHandle<()>)>,
    ) -> Result<(), ConnectorError> {
        for route in &mut self.routes {
            route.tx = None;
        }
        for (index, (stream, handle)) in handles.into_iter().enumerate() {
            if let Err(e) = handle.await {
                // Whatever that loader had buffered is not committed.
                let error = format!("stream {stream:?}: its loader stopped unexpectedly ({e})");
                tracing::error!("{error}");
                self.note(LoaderNote::Failed { stream: index });
                self.output
                    .stream_status(&stream, StreamStatusKind::Error { error })
                    .await?;
            }
        }
        Ok(())
    }
}

pub(crate) async fn write(
    config: Config,
    pool: Pool,
    catalog: ConfiguredCatalog,
    aliases: &[(String, String)],
    mut input: InputLines,
    output: Output,
) -> Result<(), ConnectorError> {
    let (notes_tx, mut notes_rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        pool,
        output: output.clone(),
        config,
        buffered: AtomicUsize::new(0),
        aborting: AtomicBool::new(false),
        database_down: AtomicBool::new(false),
        notes: notes_tx,
    });
    let mut router = Router::new(output);
    let handles = router.start_loaders(&catalog, &shared);
    for (given, stream) in aliases {
        if let Some(&i) = router.index.get(stream) {
            router.index.insert(given.clone(), i);
        }
    }

    let mut fatal: Option<String> = None;
    loop {
        tokio::select! {
            biased;
            Some(note) = notes_rx.recv() => {
                router.note(note);
                if router.database_down.is_some() {
                    // Every stream writes there: going on would only fail them one by one
                    // while the source keeps reading (forever, when it is live).
                    break;
                }
                router.emit_ready_globals().await?;
            }
            line = input.next() => {
                let Some(line) = line else { break };
                let routed = match line {
                    Ok(line) => router.route(line.number, line.bytes).await,
                    Err(e) => Err(e.to_string()),
                };
                if let Err(message) = routed {
                    fatal = Some(message);
                    break;
                }
            }
        }
    }

    if fatal.is_some() || router.database_down.is_some() {
        shared.aborting.store(true, Ordering::SeqCst);
    }
    router.finish_loaders(handles).await?;
    drop(shared);
    while let Some(note) = notes_rx.recv().await {
        router.note(note);
    }
    router.emit_ready_globals().await?;
    if let Some(message) = router.database_down {
        return Err(ConnectorError::transient(format!(
            "Postgres failed, after retries: {message}; every stream writes there, so the write stops (nothing after the last acknowledged state was committed)"
        )));
    }
    if let Some(message) = fatal {
        return Err(ConnectorError::system(format!(
            "invalid input, nothing after the last acknowledged state was committed: {message}"
        )));
    }
    if !router.globals.is_empty() {
        tracing::warn!(
            "{} global state(s) not acknowledged: a stream before them failed",
            router.globals.len()
        );
    }
    Ok(())
}

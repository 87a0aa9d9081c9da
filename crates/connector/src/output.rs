//! stdout carries protocol messages only. One thread owns it: it serialises messages in order,
//! flushes at every non-record message and whenever its queue runs dry, and turns a closed
//! stdout (EPIPE) into [`OutputClosed`] for every sender instead of an error.

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use serde_json::Value;
use sync_protocol::framing::{FramingError, MessageWriter, record_line};
use sync_protocol::{Log, LogLevel, Message, Record, SourceState, StreamStatus, StreamStatusKind};
use tokio::sync::mpsc;

use crate::redact::redact;

/// The reader of stdout went away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputClosed;

impl std::fmt::Display for OutputClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stdout was closed")
    }
}

impl std::error::Error for OutputClosed {}

/// Why a record was not emitted.
#[derive(Debug, thiserror::Error)]
pub enum EmitError {
    /// Whoever read stdout went away.
    #[error(transparent)]
    Closed(#[from] OutputClosed),
    /// The record's text would break the framing; it names the stream.
    #[error(transparent)]
    Framing(#[from] FramingError),
}

const QUEUE: usize = 1024;

/// What an [`Output`] carries: a message, or a record line serialised by the caller.
#[derive(Debug)]
pub enum Outgoing {
    /// A message (already redacted).
    Message(Message),
    /// One record, as its whole line.
    RecordLine(String),
}

/// A cheap, cloneable handle that emits messages on stdout.
#[derive(Clone)]
pub struct Output {
    tx: mpsc::Sender<Outgoing>,
    closed: Arc<AtomicBool>,
}

/// Owns the stdout thread; [`OutputThread::finish`] waits until everything is written.
pub struct OutputThread {
    handle: JoinHandle<()>,
    closed: Arc<AtomicBool>,
}

impl Output {
    /// Starts the writer thread over `out` (stdout in the binaries, a buffer in tests).
    pub fn spawn<W: Write + Send + 'static>(out: W) -> (Output, OutputThread) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let closed = Arc::new(AtomicBool::new(false));
        let flag = closed.clone();
        let handle = std::thread::Builder::new()
            .name("stdout".into())
            .spawn(move || write_loop(rx, out, &flag))
            .unwrap_or_else(|e| panic!("cannot start the stdout thread: {e}"));
        (
            Output {
                tx,
                closed: closed.clone(),
            },
            OutputThread { handle, closed },
        )
    }

    /// Emits a message, waiting while the queue is full (backpressure from the reader).
    pub async fn emit(&self, message: Message) -> Result<(), OutputClosed> {
        let message = redact_message(message);
        self.tx
            .send(Outgoing::Message(message))
            .await
            .map_err(|_| OutputClosed)
    }

    /// Emits from synchronous code.
    pub fn emit_blocking(&self, message: Message) -> Result<(), OutputClosed> {
        self.tx
            .blocking_send(Outgoing::Message(redact_message(message)))
            .map_err(|_| OutputClosed)
    }

    /// Emits a record whose data is already compact JSON text (an object), without parsing it
    /// again. Text holding a raw line break is refused, naming the stream.
    pub async fn raw_record(&self, stream: &str, data_json: &str) -> Result<(), EmitError> {
        let line = record_line(stream, data_json, &sync_protocol::time::now_rfc3339())?;
        self.tx
            .send(Outgoing::RecordLine(line))
            .await
            .map_err(|_| EmitError::Closed(OutputClosed))
    }

    /// Emits a record of `stream`.
    pub async fn record(&self, stream: &str, data: Value) -> Result<(), OutputClosed> {
        self.emit(Message::Record(Record::new(stream, data))).await
    }

    /// Emits a state (stdout is flushed at every state).
    pub async fn state(&self, state: SourceState) -> Result<(), OutputClosed> {
        self.emit(Message::SourceState(state)).await
    }

    /// Emits a stream's status.
    pub async fn stream_status(
        &self,
        stream: &str,
        kind: StreamStatusKind,
    ) -> Result<(), OutputClosed> {
        self.emit(Message::StreamStatus(StreamStatus::new(stream, kind)))
            .await
    }

    /// Emits a log message on stdout (for the engine to relay), not on stderr.
    pub async fn log(
        &self,
        level: LogLevel,
        message: impl Into<String>,
    ) -> Result<(), OutputClosed> {
        self.emit(Message::Log(Log::new(level, message))).await
    }

    /// An output whose messages come out of the returned receiver, in order, instead of going
    /// to stdout: for a connector that rewrites some of them (a source reading several
    /// accounts merges their states) and hands the rest on with [`Output::pass`].
    pub fn relay(&self, capacity: usize) -> (Output, mpsc::Receiver<Outgoing>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let relay = Output {
            tx,
            closed: self.closed.clone(),
        };
        (relay, rx)
    }

    /// Hands on what a relay ([`Output::relay`]) received.
    pub async fn pass(&self, outgoing: Outgoing) -> Result<(), OutputClosed> {
        self.tx.send(outgoing).await.map_err(|_| OutputClosed)
    }

    /// Whether whoever read stdout went away.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }
}

impl OutputThread {
    /// Waits for every queued message to be written. Returns whether stdout was closed early.
    pub fn finish(self, output: Output) -> bool {
        drop(output);
        let _ = self.handle.join();
        self.closed.load(Ordering::Relaxed)
    }
}

/// Masks secrets in the human-readable parts of a message. Records are data and control
/// messages carry configs on purpose; both pass untouched.
fn redact_message(message: Message) -> Message {
    match message {
        Message::Log(mut log) => {
            log.message = redact(&log.message).into_owned();
            Message::Log(log)
        }
        Message::ConnectionStatus(mut status) => {
            status.message = status.message.map(|m| redact(&m).into_owned());
            Message::ConnectionStatus(status)
        }
        Message::StreamStatus(mut status) => {
            match &mut status.kind {
                StreamStatusKind::Error { error } => *error = redact(error).into_owned(),
                StreamStatusKind::Skip { reason } => *reason = redact(reason).into_owned(),
                _ => {}
            }
            Message::StreamStatus(status)
        }
        other => other,
    }
}

fn write_loop<W: Write>(mut rx: mpsc::Receiver<Outgoing>, out: W, closed: &AtomicBool) {
    let mut writer = MessageWriter::new(out);
    loop {
        let message = match rx.try_recv() {
            Ok(m) => m,
            Err(mpsc::error::TryRecvError::Empty) => {
                if flush_or_close(writer.flush(), closed) {
                    return;
                }
                match rx.blocking_recv() {
                    Some(m) => m,
                    None => break,
                }
            }
            Err(mpsc::error::TryRecvError::Disconnected) => break,
        };
        let written = match &message {
            Outgoing::Message(m) => writer.write(m),
            Outgoing::RecordLine(line) => writer.write_line(line.as_bytes(), false),
        };
        if let Err(e) = &written
            && e.kind() == io::ErrorKind::InvalidData
        {
            // Refused before a byte was written: the framing holds, the line is lost loudly.
            tracing::error!("{e}");
            continue;
        }
        if flush_or_close(written, closed) {
            return;
        }
    }
    flush_or_close(writer.flush(), closed);
}

/// True when stdout is gone (the receiver is then dropped, so senders see [`OutputClosed`]).
fn flush_or_close(result: io::Result<()>, closed: &AtomicBool) -> bool {
    match result {
        Ok(()) => false,
        Err(e) => {
            if e.kind() != io::ErrorKind::BrokenPipe {
                tracing::error!("writing stdout failed: {e}");
            }
            closed.store(true, Ordering::Relaxed);
            true
        }
    }
}

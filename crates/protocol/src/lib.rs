#![warn(missing_docs)]
#![warn(unreachable_pub)]
//! The stripe-sync wire protocol: message types, their JSON shapes, and NDJSON framing.
//!
//! Connectors talk over stdio, one JSON object per line. Every message is an envelope whose
//! `type` names exactly one payload key:
//!
//! ```json
//! {"type":"record","record":{"stream":"customers","data":{"id":"cus_1"},"emitted_at":"2026-04-20T12:00:00.000Z"}}
//! {"type":"source_state","source_state":{"state_type":"stream","stream":"customers","data":{"cursor":"cus_1"}}}
//! ```
//!
//! This crate owns the types ([`Message`] and its payloads), their serde, the Airbyte dialect
//! ([`airbyte`]) with translation functions both ways, the NDJSON framing
//! ([`framing::NdjsonReader`], [`framing::MessageWriter`], the sans-IO [`framing::LineDecoder`]),
//! and a fast path ([`peek`]) that classifies a line and borrows a record's stream and data without
//! building the data value. It does no network or database I/O; readers and writers are handed in.
//!
//! Unknown fields inside payloads are kept (in each payload's `extra` map) and re-serialised,
//! except in `stream_status` and `control`, which carry only their defined fields; unknown
//! top-level envelope fields are ignored, but for the engine's [`Stamp`] (`_emitted_by`, `_ts`),
//! which [`Message::to_line_stamped`] writes and [`Message::from_slice_stamped`] reads. An
//! unknown `type` is a distinct error
//! ([`ParseError::UnknownType`]) so that an orchestrator can log and skip it.

pub mod airbyte;
mod catalog;
pub mod compact;
mod control;
mod envelope;
mod error;
pub mod exit;
pub mod framing;
mod listing;
mod log;
mod message;
pub mod peek;
mod progress;
mod record;
mod role;
mod spec;
mod state;
mod status;
mod tables;
pub mod time;

pub use catalog::{
    Catalog, ConfiguredCatalog, ConfiguredStream, DestinationSyncMode, Stream, SyncMode,
    SystemColumn, TimeRange,
};
pub use control::Control;
pub use error::ParseError;
pub use listing::{Listing, ListingPhase};
pub use log::{Log, LogLevel};
pub use message::{Message, MessageType, Stamp};
pub use progress::{
    DerivedProgress, Eof, EofError, EofReason, Progress, RunStatus, StreamProgress,
    StreamProgressStatus,
};
pub use record::Record;
pub use role::Role;
pub use spec::Spec;
pub use state::{
    DestinationStats, GlobalState, SourceState, SourceStateSet, StreamState, SyncRun, SyncState,
};
pub use status::{ConnectionStatus, FailureType, Status, StreamStatus, StreamStatusKind};
pub use tables::{StreamReset, TableChange, TableReport};

/// A JSON object, the type of every open-ended payload field.
pub type JsonMap = serde_json::Map<String, serde_json::Value>;

#![warn(missing_docs)]
#![warn(unreachable_pub)]
//! What callers of the engine share, with no I/O: the [`Engine`] operations and their requests,
//! the stream of messages an operation answers with, the JSON bodies of `sync-engine serve`
//! ([`wire`]) and the bounds of a run. Implemented in-process by `sync-engine-runtime` and over
//! HTTP by `sync-engine-client`; served by `sync-engine-http`.

mod engine;
mod limits;
pub mod openapi;
mod stream_choice;
pub mod wire;

pub use engine::*;
pub use limits::{MAX_BODY_BYTES, MAX_TIME_LIMIT_SECS, is_time_limit, time_limit_seconds};
pub use stream_choice::StreamChoice;

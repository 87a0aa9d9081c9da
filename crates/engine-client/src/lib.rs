#![warn(missing_docs)]
#![warn(unreachable_pub)]
//! The engine at a distance: [`RemoteEngine`], a client of `sync-engine serve` implementing
//! the same [`sync_engine_api::Engine`] as the in-process one, and [`AnyEngine`], either of the
//! two, as the CLI and sync-service choose it.

mod any_engine;
mod remote;

pub use any_engine::{AnyEngine, all_of, failures_in, failures_of};
pub use remote::RemoteEngine;

//! sync-service: pipelines as durable Temporal workflows over the sync engine, with a control
//! database in Postgres and a REST API. See `docs/service.md`.

#![warn(missing_docs)]
#![warn(unreachable_pub)]

mod account_lock;
// The Temporal SDK's macros generate items (activity and signal definitions) without docs.
#[allow(missing_docs)]
pub mod activities;
pub mod api;
pub mod api_state;
pub mod budget;
pub mod checkpoint_owner;
pub mod client;
pub mod console;
pub mod control;
pub mod control_error;
pub mod database_url;
mod drafts;
pub mod inbox;
pub mod openapi;
pub mod operations;
pub mod owner;
pub mod pipeline;
pub mod prepared;
mod progress;
mod side_update;
pub mod step_requests;
pub mod sync_routes;
pub mod temporal;
mod webhook;
// The Temporal SDK's macros generate items (activity and signal definitions) without docs.
#[allow(missing_docs)]
pub mod workflow;

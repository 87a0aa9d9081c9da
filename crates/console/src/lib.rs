#![warn(missing_docs)]
#![warn(unreachable_pub)]
//! The web console: the pipelines at a glance, made and edited through a form (sync-service) and the schema explorer
//! (sync-service and sync-engine) with its SQL page, as server-rendered HTML with a little plain JavaScript.
//! Templates, the stylesheet and the script are compiled into the binary; nothing is fetched
//! from elsewhere at build or run time.
//!
//! A host gives the console its data through [`PipelineData`] and [`ExplorerData`], mounts
//! [`router`], and puts `sync_web_guard`'s gate in front of its own routes and the console's,
//! and its same-site guard in front of everything.

mod assets;
mod auth;
mod config_form;
mod destinations;
mod explorer;
pub mod format;
mod frame;
mod link;
mod pages;
mod pipeline_form;
mod pipelines;
pub mod schema_map;
mod sql;
mod sql_page;
mod sql_reader;
pub mod table_stats;
mod views;

pub use explorer::join_sql;
pub use frame::Chrome;
pub use pages::router;
pub use sql_reader::SqlReader;
pub use table_stats::Destination;
pub use views::{
    AccountLine, ConnectorForm, Draft, ExplorerData, PipelineData, PipelineDetail, PipelineRow,
    RunLine, SideCheck, StoredPipeline, StreamLine, StreamOffer,
};

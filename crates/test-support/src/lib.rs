#![warn(missing_docs)]
#![warn(unreachable_pub)]
//! Test helpers shared by every crate's tests.
//!
//! - [`TestDb`]: a throwaway Postgres database, created on the server named by `DATABASE_URL`
//!   (default `postgres://postgres@127.0.0.1:5432/postgres`) and dropped when the value is
//!   dropped, so tests run in parallel without seeing each other's tables.
//! - [`bin_path`] and [`Bin`]: run the workspace's real binaries (built by `cargo build --bins`,
//!   which `scripts/test` does first).
//! - [`Cluster`]: a Postgres cluster of a test's own, for server settings (TLS, client
//!   certificates) the shared server does not have.

mod bin;
mod cluster;
mod db;
pub mod engine_serve;
pub mod fixtures;
/// Time and peak memory of child processes, for benchmarks.
pub mod measure;
pub mod openapi;
pub mod process;
pub mod pypi;
pub mod temporal;

pub use bin::{Bin, Finished, bin_path, lines_of, succeed};
pub use cluster::Cluster;
pub use db::{TestDb, server_url};

/// The fields a `#[serde(deny_unknown_fields)]` struct takes, read from the error serde gives
/// for an unknown one (`unknown field `x`, expected one of `a`, `b``): for tests that check a
/// hand-written JSON Schema lists exactly the keys its config struct takes.
pub fn expected_fields(unknown_field_error: &str) -> std::collections::BTreeSet<String> {
    let expected = unknown_field_error
        .split_once("expected one of ")
        .or_else(|| unknown_field_error.split_once("expected "))
        .map_or("", |(_, rest)| rest);
    expected
        .split(", ")
        .filter_map(|part| part.split('`').nth(1))
        .map(str::to_owned)
        .collect()
}

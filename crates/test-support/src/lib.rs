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
/// CPU seconds of a process, its children and Postgres during a run, for benchmarks.
pub mod cpu;
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

/// Asserts that a JSON Schema object's `properties` are exactly `fields` (what a parser or a
/// struct takes), naming `what` on failure.
pub fn assert_properties<S: AsRef<str>>(schema: &serde_json::Value, fields: &[S], what: &str) {
    let listed: std::collections::BTreeSet<&str> = schema["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("{what}: the schema has no properties"))
        .keys()
        .map(String::as_str)
        .collect();
    let taken: std::collections::BTreeSet<&str> = fields.iter().map(AsRef::as_ref).collect();
    assert_eq!(
        listed, taken,
        "{what}: the schema's properties against what is taken"
    );
}

/// Asserts that a JSON Schema's `properties` are exactly the fields of the
/// `#[serde(deny_unknown_fields)]` struct that refused an unknown key with `refusal`.
pub fn assert_schema_lists_the_fields(schema: &serde_json::Value, refusal: &serde_json::Error) {
    let refused = refusal.to_string();
    let taken: Vec<String> = expected_fields(&refused).into_iter().collect();
    assert!(taken.len() > 1, "not a refusal listing fields: {refused}");
    assert_properties(schema, &taken, &refused);
}

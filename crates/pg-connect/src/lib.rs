#![warn(missing_docs)]
#![warn(unreachable_pub)]
//! Connecting to Postgres from a libpq URL with libpq's sslmode semantics (`disable`, `prefer`,
//! `require`, `verify-ca`, `verify-full`, an optional CA), and explaining connection failures
//! (unreachable, authentication, permission, TLS, missing database) without any secret.
//! Shared by the Postgres destination and the engine's state store.

mod connect;
mod tls;

/// A quoted Postgres identifier: `"a""b"` for `a"b`; NUL characters, which Postgres rejects,
/// are dropped.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('\0', "").replace('"', "\"\""))
}

/// A quoted Postgres string literal: `'it''s'`; NUL characters are dropped.
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\0', "").replace('\'', "''"))
}

pub use connect::{
    FailureKind, SslMode, Target, classify, connect, describe_target, error_text, explain,
    parse_url, tls_connector,
};

//! Connecting to Postgres from a libpq URL with libpq's sslmode semantics (`disable`, `prefer`,
//! `require`, `verify-ca`, `verify-full`, an optional CA), and explaining connection failures
//! (unreachable, authentication, permission, TLS, missing database) without any secret.
//! Shared by the Postgres destination and the engine's state store.

mod connect;
mod tls;

pub use connect::{
    FailureKind, SslMode, Target, classify, connect, describe_target, error_text, explain,
    parse_url, tls_connector,
};

#![warn(missing_docs)]
#![warn(unreachable_pub)]
//! Connecting to Postgres from a libpq URL with libpq's sslmode semantics (`disable`, `prefer`,
//! `require`, `verify-ca`, `verify-full`, an optional CA), and explaining connection failures
//! (unreachable, authentication, permission, TLS, missing database) without any secret.
//! Used by every crate that connects to Postgres, each naming its own `application_name`.

mod connect;
mod tls;

pub use connect::{
    FailureKind, SslMode, Target, classify, connect, describe_target, error_text, explain,
    parse_url, tls_connector,
};

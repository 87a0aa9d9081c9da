//! From a libpq URL to a connection, and from connection errors to messages that say
//! what is wrong (unreachable, authentication, permission, TLS) without any secret.

use std::str::FromStr;
use std::time::Duration;

use tokio_postgres::config::{Host, SslMode as PgSslMode};
use tokio_postgres::error::SqlState;

use crate::tls::{self, Verification};

/// libpq's sslmode values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<SslMode, String> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "allow" | "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(format!(
                    "url: unsupported sslmode {other:?} (use disable, prefer, require, verify-ca or verify-full)"
                ));
            }
        })
    }
}

/// A parsed connection target.
#[derive(Debug)]
pub struct Target {
    pub pg: tokio_postgres::Config,
    pub ssl: SslMode,
}

/// Parses a libpq URL (or key=value string), taking out the TLS settings tokio-postgres does not
/// know (`verify-ca`, `verify-full`, `sslrootcert`…) and applying them itself.
pub fn parse_url(url: &str) -> Result<Target, String> {
    let mut ssl = SslMode::Prefer;
    let mut kept: Vec<String> = Vec::new();
    let is_tls_key = |k: &str| {
        matches!(
            k,
            "sslmode" | "sslrootcert" | "sslcert" | "sslkey" | "sslnegotiation"
        )
    };
    let cleaned = if let Some((base, query)) = url.split_once('?').filter(|_| url.contains("://")) {
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if k == "sslmode" {
                ssl = SslMode::parse(v)?;
            } else if !is_tls_key(k) {
                kept.push(pair.to_owned());
            }
        }
        if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        }
    } else if url.contains("://") {
        url.to_owned()
    } else {
        for token in url.split_whitespace() {
            match token.split_once('=') {
                Some(("sslmode", v)) => ssl = SslMode::parse(v.trim_matches('\''))?,
                Some((k, _)) if is_tls_key(k) => {}
                _ => kept.push(token.to_owned()),
            }
        }
        kept.join(" ")
    };
    // The parse error of tokio-postgres never includes the password, but may echo parts of the URL.
    let mut pg = tokio_postgres::Config::from_str(&cleaned)
        .map_err(|e| format!("url: not a valid Postgres connection URL ({e})"))?;
    if pg.get_connect_timeout().is_none() {
        pg.connect_timeout(Duration::from_secs(10));
    }
    if pg.get_options().is_none() {
        // The staging table is created with IF NOT EXISTS on every flush; its NOTICE is noise.
        pg.options("-c client_min_messages=warning");
    }
    if pg.get_application_name().is_none() {
        pg.application_name("stripe-sync dest-postgres");
    }
    pg.ssl_mode(match ssl {
        SslMode::Disable => PgSslMode::Disable,
        SslMode::Prefer => PgSslMode::Prefer,
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => PgSslMode::Require,
    });
    Ok(Target { pg, ssl })
}

fn verification(ssl: SslMode) -> Verification {
    match ssl {
        SslMode::Disable | SslMode::Prefer | SslMode::Require => Verification::None,
        SslMode::VerifyCa => Verification::Chain,
        SslMode::VerifyFull => Verification::Full,
    }
}

/// The TLS connector for a target's sslmode (`ca_pem`: the CA for verify-ca / verify-full).
pub fn tls_connector(
    target: &Target,
    ca_pem: Option<&str>,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    tls::connector(verification(target.ssl), ca_pem)
}

/// One connection, its driver task spawned on the current runtime.
pub async fn connect(
    url: &str,
    ca_pem: Option<&str>,
) -> Result<tokio_postgres::Client, (FailureKind, String)> {
    let target = parse_url(url).map_err(|e| (FailureKind::Other, e))?;
    let tls = tls_connector(&target, ca_pem).map_err(|e| (FailureKind::Tls, e))?;
    let (client, connection) = target.pg.connect(tls).await.map_err(|e| explain(&e, url))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!("postgres connection closed: {e}");
        }
    });
    Ok(client)
}

/// Where the config points, for messages: `host:port/db` (never user or password).
pub fn describe_target(url: &str) -> String {
    let Ok(target) = parse_url(url) else {
        return "the configured server".to_owned();
    };
    let host = target
        .pg
        .get_hosts()
        .first()
        .map(|h| match h {
            Host::Tcp(name) => name.clone(),
            Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".to_owned());
    let port = target.pg.get_ports().first().copied().unwrap_or(5432);
    let db = target
        .pg
        .get_dbname()
        .map(str::to_owned)
        .or_else(|| target.pg.get_user().map(str::to_owned))
        .unwrap_or_default();
    format!("{host}:{port}/{db}")
}

/// The category of a connection or query failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    Unreachable,
    Authentication,
    Permission,
    Tls,
    MissingDatabase,
    Other,
}

/// Classifies a Postgres error.
pub fn classify(err: &tokio_postgres::Error) -> FailureKind {
    if let Some(db) = err.as_db_error() {
        let code = db.code();
        return if *code == SqlState::INVALID_PASSWORD
            || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
        {
            FailureKind::Authentication
        } else if *code == SqlState::INSUFFICIENT_PRIVILEGE {
            FailureKind::Permission
        } else if *code == SqlState::INVALID_CATALOG_NAME {
            FailureKind::MissingDatabase
        } else {
            FailureKind::Other
        };
    }
    let text = format!("{err:?}").to_ascii_lowercase();
    if text.contains("tls") || text.contains("ssl") || text.contains("certificate") {
        FailureKind::Tls
    } else if err.is_closed()
        || text.contains("connect")
        || text.contains("timed out")
        || text.contains("refused")
        || text.contains("resolve")
    {
        FailureKind::Unreachable
    } else {
        FailureKind::Other
    }
}

/// A message for a failed connection attempt that says what is wrong and where.
pub fn explain(err: &tokio_postgres::Error, url: &str) -> (FailureKind, String) {
    let kind = classify(err);
    let what = match kind {
        FailureKind::Unreachable => "cannot reach the Postgres server",
        FailureKind::Authentication => "authentication failed",
        FailureKind::Permission => "permission denied",
        FailureKind::Tls => "TLS negotiation failed",
        FailureKind::MissingDatabase => "the database does not exist",
        FailureKind::Other => "cannot connect",
    };
    (
        kind,
        format!("{what} at {}: {}", describe_target(url), error_text(err)),
    )
}

/// The most useful text of a Postgres error: the server's message, or the whole source chain.
pub fn error_text(err: &tokio_postgres::Error) -> String {
    if let Some(db) = err.as_db_error() {
        let mut text = format!("{} (SQLSTATE {})", db.message(), db.code().code());
        if let Some(detail) = db.detail() {
            text.push_str(&format!("; {detail}"));
        }
        return text;
    }
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_is_taken_out_of_the_url() {
        let t = parse_url(
            "postgres://u:p@db.example.com:6543/app?sslmode=verify-full&application_name=x",
        )
        .unwrap();
        assert_eq!(t.ssl, SslMode::VerifyFull);
        assert_eq!(t.pg.get_ports(), &[6543]);
        assert_eq!(t.pg.get_application_name(), Some("x"));
        assert_eq!(parse_url("postgres://h/db").unwrap().ssl, SslMode::Prefer);
        assert_eq!(
            parse_url("host=h dbname=d sslmode=disable").unwrap().ssl,
            SslMode::Disable
        );
        assert!(
            parse_url("postgres://h/db?sslmode=bogus")
                .unwrap_err()
                .contains("bogus")
        );
    }

    #[test]
    fn target_description_has_no_credentials() {
        let d = describe_target("postgres://alice:hunter2@db.example.com:6543/app");
        assert_eq!(d, "db.example.com:6543/app");
    }
}

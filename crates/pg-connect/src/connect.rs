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
    /// Plain TCP.
    Disable,
    /// TLS when the server offers it, unverified; plain otherwise (`allow` too).
    Prefer,
    /// TLS, certificate not verified.
    Require,
    /// TLS, the certificate chain checked against the CA.
    VerifyCa,
    /// TLS, the chain and the host name checked.
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
    /// Host, port, database, user, password and options, as tokio-postgres takes them.
    pub pg: tokio_postgres::Config,
    /// The URL's `sslmode` (`prefer` when absent).
    pub ssl: SslMode,
    /// libpq's TLS file parameters, as given in the URL.
    pub files: TlsFiles,
}

/// `sslrootcert`, `sslcert` and `sslkey`: paths of PEM files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    pub root_cert: Option<std::path::PathBuf>,
    pub cert: Option<std::path::PathBuf>,
    pub key: Option<std::path::PathBuf>,
}

/// Sets one TLS parameter from the URL; other keys are not TLS settings.
fn tls_param(
    key: &str,
    value: &str,
    ssl: &mut SslMode,
    files: &mut TlsFiles,
) -> Result<bool, String> {
    let path = || Some(std::path::PathBuf::from(value));
    match key {
        "sslmode" => *ssl = SslMode::parse(value)?,
        "sslrootcert" => files.root_cert = path(),
        "sslcert" => files.cert = path(),
        "sslkey" => files.key = path(),
        // libpq's default; `direct` is a handshake this client does not speak.
        "sslnegotiation" if value == "postgres" => {}
        "sslnegotiation" => {
            return Err(format!(
                "url: sslnegotiation={value:?} is not supported (only postgres)"
            ));
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// Decodes `%XX` escapes of a URL query value.
fn percent_decoded(value: &str) -> Result<String, String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = value
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| "url: a query value has an invalid %-escape".to_owned())?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "url: a query value is not UTF-8".to_owned())
}

/// Parses a libpq URL (or key=value string), taking out the TLS settings tokio-postgres does not
/// know (`verify-ca`, `verify-full`, `sslrootcert`, `sslcert`, `sslkey`) and applying them itself.
pub fn parse_url(url: &str) -> Result<Target, String> {
    let mut ssl = SslMode::Prefer;
    let mut files = TlsFiles::default();
    let mut kept: Vec<String> = Vec::new();
    let cleaned = if let Some((base, query)) = url.split_once('?').filter(|_| url.contains("://")) {
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if !tls_param(k, &percent_decoded(v)?, &mut ssl, &mut files)? {
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
            let taken = match token.split_once('=') {
                Some((k, v)) => tls_param(k, v.trim_matches('\''), &mut ssl, &mut files)?,
                None => false,
            };
            if !taken {
                kept.push(token.to_owned());
            }
        }
        kept.join(" ")
    };
    if files.cert.is_some() != files.key.is_some() {
        return Err(
            "url: sslcert and sslkey go together (a client certificate and its key)".to_owned(),
        );
    }
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
    pg.ssl_mode(match ssl {
        SslMode::Disable => PgSslMode::Disable,
        SslMode::Prefer => PgSslMode::Prefer,
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => PgSslMode::Require,
    });
    Ok(Target { pg, ssl, files })
}

fn verification(ssl: SslMode, root_cert_given: bool) -> Verification {
    match ssl {
        SslMode::Disable | SslMode::Prefer => Verification::None,
        // As libpq: with a root certificate, `require` verifies the chain like verify-ca.
        SslMode::Require if root_cert_given => Verification::Chain,
        SslMode::Require => Verification::None,
        SslMode::VerifyCa => Verification::Chain,
        SslMode::VerifyFull => Verification::Full,
    }
}

fn read_file(param: &str, path: &std::path::Path) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map_err(|e| format!("url: cannot read the {param} file {}: {e}", path.display()))
}

/// The TLS connector for a target's sslmode and TLS files (`ca_pem`: the CA for verify-ca /
/// verify-full given in the config rather than as `sslrootcert`; both at once is an error).
pub fn tls_connector(
    target: &Target,
    ca_pem: Option<&str>,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    let root_pem = match (&target.files.root_cert, ca_pem) {
        (Some(_), Some(_)) => {
            return Err(
                "the CA is given twice, as ssl_ca_pem and as the URL's sslrootcert: keep one"
                    .to_owned(),
            );
        }
        (Some(path), None) if path.as_os_str() == "system" => None,
        (Some(path), None) => Some(read_file("sslrootcert", path)?),
        (None, pem) => pem.map(str::to_owned),
    };
    let client = match (&target.files.cert, &target.files.key) {
        (Some(cert), Some(key)) => Some(tls::ClientIdentity {
            cert_pem: read_file("sslcert", cert)?,
            key_pem: read_file("sslkey", key)?,
        }),
        _ => None,
    };
    if client.is_some() && target.ssl == SslMode::Disable {
        return Err("url: sslcert and sslkey need TLS, but sslmode is disable".to_owned());
    }
    tls::connector(
        verification(target.ssl, target.files.root_cert.is_some()),
        root_pem.as_deref(),
        client.as_ref(),
    )
}

impl Target {
    /// The target with `application_name` (what `pg_stat_activity` shows for its sessions), unless
    /// the URL names one itself: each caller says who it is.
    pub fn named(mut self, application_name: &str) -> Target {
        if self.pg.get_application_name().is_none() {
            self.pg.application_name(application_name);
        }
        self
    }
}

/// One connection named `application_name` (unless the URL names one), its driver task spawned
/// on the current runtime.
pub async fn connect(
    url: &str,
    ca_pem: Option<&str>,
    application_name: &str,
) -> Result<tokio_postgres::Client, (FailureKind, String)> {
    let target = parse_url(url)
        .map_err(|e| (FailureKind::Other, e))?
        .named(application_name);
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
    /// No connection: refused, unresolvable host, timeout, lost connection.
    Unreachable,
    /// The server refused the credentials.
    Authentication,
    /// The role lacks a privilege.
    Permission,
    /// The TLS handshake or certificate check failed.
    Tls,
    /// The database named in the URL does not exist.
    MissingDatabase,
    /// Anything else.
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
    // By type where the error has one: rustls' own (certificates, handshake), bare in the chain
    // or inside tokio-rustls' io::Error; any other io::Error is the network's.
    let mut io_failed = false;
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        if s.is::<rustls::Error>() {
            return FailureKind::Tls;
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if io
                .get_ref()
                .is_some_and(|inner| inner.is::<rustls::Error>())
            {
                return FailureKind::Tls;
            }
            io_failed = true;
        }
        source = s.source();
    }
    // tokio-postgres keeps its error kinds private; their texts are fixed (its error/mod.rs),
    // and a kind with no typed source (a TLS refusal by the server, a connect timeout) is
    // known only by it.
    match err.to_string().as_str() {
        "error performing TLS handshake" => FailureKind::Tls,
        "error connecting to server" | "timeout waiting for server" => FailureKind::Unreachable,
        _ if err.is_closed() || io_failed => FailureKind::Unreachable,
        _ => FailureKind::Other,
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
    fn each_caller_names_its_sessions_unless_the_url_does() {
        let named = parse_url("postgres://h/db")
            .unwrap()
            .named("stripe-sync console");
        assert_eq!(named.pg.get_application_name(), Some("stripe-sync console"));
        let own = parse_url("postgres://h/db?application_name=mine")
            .unwrap()
            .named("stripe-sync console");
        assert_eq!(own.pg.get_application_name(), Some("mine"));
        assert_eq!(
            parse_url("postgres://h/db")
                .unwrap()
                .pg
                .get_application_name(),
            None
        );
    }

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
    fn tls_files_are_taken_out_of_the_url_and_paired() {
        let t = parse_url(
            "postgres://h/db?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&sslcert=/c.pem&sslkey=/k.pem&sslnegotiation=postgres",
        )
        .unwrap();
        assert_eq!(
            t.files.root_cert.as_deref(),
            Some(std::path::Path::new("/etc/ca.pem"))
        );
        assert_eq!(
            t.files.cert.as_deref(),
            Some(std::path::Path::new("/c.pem"))
        );
        assert_eq!(t.files.key.as_deref(), Some(std::path::Path::new("/k.pem")));
        let kv = parse_url("host=h dbname=d sslrootcert='/r.pem'").unwrap();
        assert_eq!(
            kv.files.root_cert.as_deref(),
            Some(std::path::Path::new("/r.pem"))
        );
        assert!(
            parse_url("postgres://h/db?sslcert=/c.pem")
                .unwrap_err()
                .contains("sslkey")
        );
        assert!(
            parse_url("postgres://h/db?sslnegotiation=direct")
                .unwrap_err()
                .contains("sslnegotiation")
        );
        let both = parse_url("postgres://h/db?sslrootcert=/r.pem").unwrap();
        assert!(
            tls_connector(&both, Some("pem"))
                .err()
                .unwrap()
                .contains("twice")
        );
        let missing =
            parse_url("postgres://h/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem")
                .unwrap();
        assert!(
            tls_connector(&missing, None)
                .err()
                .unwrap()
                .contains("sslrootcert")
        );
    }

    #[test]
    fn target_description_has_no_credentials() {
        let d = describe_target("postgres://alice:hunter2@db.example.com:6543/app");
        assert_eq!(d, "db.example.com:6543/app");
    }
}

//! Where the control database is when no `--database-url` is given: as `psql` finds one, from
//! `DATABASE_URL`, else libpq's `PG*` environment variables and defaults (and `~/.pgpass` for
//! the password).

use std::path::{Path, PathBuf};

/// How the URL was found, for the message when nothing answers there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// `--database-url` or `SYNC_SERVICE_DATABASE_URL`.
    Given,
    /// `DATABASE_URL`.
    DatabaseUrl,
    /// libpq's environment and defaults; the text says which settings (no password).
    Libpq(String),
}

/// A control database URL (a libpq URL or key=value string) and how it was found.
#[derive(Debug, Clone)]
pub struct Found {
    /// The URL found.
    pub url: String,
    /// Where it was found.
    pub origin: Origin,
}

/// Why no URL could be made.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unresolved(String);

/// The URL: `given` (the flag or `SYNC_SERVICE_DATABASE_URL`), else `DATABASE_URL`, else the
/// one libpq would connect to, from `env` (a variable's value) and the files it reads.
pub fn resolve(
    given: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Found, Unresolved> {
    let set = |name: &str| env(name).filter(|v| !v.is_empty());
    if let Some(url) = given.filter(|u| !u.is_empty()) {
        return Ok(Found {
            url: url.to_owned(),
            origin: Origin::Given,
        });
    }
    if let Some(url) = set("DATABASE_URL") {
        return Ok(Found {
            url,
            origin: Origin::DatabaseUrl,
        });
    }
    // A service file or a host address would change where libpq connects: not read here.
    for unsupported in ["PGSERVICE", "PGSERVICEFILE", "PGHOSTADDR", "PGREQUIRESSL"] {
        if set(unsupported).is_some() {
            return Err(Unresolved(format!(
                "{unsupported} is set, which this service does not read: give --database-url (or DATABASE_URL) instead"
            )));
        }
    }
    let user = set("PGUSER")
        .or_else(|| set("USER"))
        .or_else(|| set("LOGNAME"))
        .ok_or_else(|| {
            Unresolved(
                "no user name: PGUSER, USER and LOGNAME are unset (give --database-url)".to_owned(),
            )
        })?;
    let host = set("PGHOST").unwrap_or_else(default_host);
    let port = set("PGPORT").unwrap_or_else(|| "5432".to_owned());
    let dbname = set("PGDATABASE").unwrap_or_else(|| user.clone());
    let password = match set("PGPASSWORD") {
        Some(p) => Some(p),
        None => {
            let file = set("PGPASSFILE")
                .map(PathBuf::from)
                .or_else(|| set("HOME").map(|h| Path::new(&h).join(".pgpass")));
            file.and_then(|f| std::fs::read_to_string(f).ok())
                .and_then(|text| pgpass_lookup(&text, &host, &port, &dbname, &user))
        }
    };
    let mut settings = vec![
        ("host", host),
        ("port", port),
        ("user", user),
        ("dbname", dbname),
    ];
    for (key, var) in [
        ("sslmode", "PGSSLMODE"),
        ("sslrootcert", "PGSSLROOTCERT"),
        ("sslcert", "PGSSLCERT"),
        ("sslkey", "PGSSLKEY"),
        ("application_name", "PGAPPNAME"),
        ("connect_timeout", "PGCONNECT_TIMEOUT"),
        ("options", "PGOPTIONS"),
    ] {
        if let Some(value) = set(var) {
            settings.push((key, value));
        }
    }
    let described = settings
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ");
    if let Some(password) = password {
        settings.push(("password", password));
    }
    let url = settings
        .iter()
        .map(|(k, v)| format!("{k}={}", quoted(v)))
        .collect::<Vec<_>>()
        .join(" ");
    Ok(Found {
        url,
        origin: Origin::Libpq(described),
    })
}

/// libpq's default: the Unix socket directory where a server listens (Debian's, then the
/// upstream default), else localhost.
fn default_host() -> String {
    ["/var/run/postgresql", "/tmp"]
        .iter()
        .find(|dir| {
            std::fs::read_dir(dir).is_ok_and(|mut entries| {
                entries.any(|e| {
                    e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with(".s.PGSQL."))
                })
            })
        })
        .map_or_else(|| "localhost".to_owned(), |dir| (*dir).to_owned())
}

/// A value of a key=value connection string, quoted as libpq reads it.
fn quoted(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// The password `~/.pgpass` gives for this connection: the first line
/// `host:port:database:user:password` whose fields match (`*` matches anything; `\:` and `\\`
/// are escapes).
fn pgpass_lookup(text: &str, host: &str, port: &str, dbname: &str, user: &str) -> Option<String> {
    // libpq matches a socket directory as "localhost".
    let host = if host.starts_with('/') {
        "localhost"
    } else {
        host
    };
    text.lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .find_map(|line| {
            let fields = pgpass_fields(line);
            let [h, p, d, u, password] = fields.as_slice() else {
                return None;
            };
            let matches = |field: &str, value: &str| field == "*" || field == value;
            (matches(h, host) && matches(p, port) && matches(d, dbname) && matches(u, user))
                .then(|| password.clone())
        })
}

fn pgpass_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let (Some(next), Some(f)) = (chars.next(), fields.last_mut()) {
                    f.push(next);
                }
            }
            // The password is the rest of the line, colons and all.
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => {
                if let Some(f) = fields.last_mut() {
                    f.push(c)
                }
            }
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn the_flag_then_database_url_then_libpq() {
        let env = env_of(&[("DATABASE_URL", "postgres://d/x"), ("PGHOST", "h")]);
        assert_eq!(
            resolve(Some("postgres://g/y"), &env).unwrap().url,
            "postgres://g/y"
        );
        let found = resolve(None, &env).unwrap();
        assert_eq!(
            (found.url.as_str(), found.origin),
            ("postgres://d/x", Origin::DatabaseUrl)
        );
        let env = env_of(&[
            ("PGHOST", "db.example"),
            ("PGPORT", "6543"),
            ("PGUSER", "app"),
            ("PGPASSWORD", "it's"),
            ("PGSSLMODE", "require"),
        ]);
        let found = resolve(None, &env).unwrap();
        assert_eq!(
            found.url,
            "host='db.example' port='6543' user='app' dbname='app' sslmode='require' password='it\\'s'"
        );
        assert_eq!(
            found.origin,
            Origin::Libpq("host=db.example port=6543 user=app dbname=app sslmode=require".into())
        );
        let target = pg_connect::parse_url(&found.url).unwrap();
        assert_eq!(target.pg.get_password(), Some(&b"it's"[..]));
        assert_eq!(target.pg.get_dbname(), Some("app"));
    }

    #[test]
    fn user_defaults_to_the_login_and_dbname_to_the_user() {
        let env = env_of(&[("USER", "alice"), ("PGHOST", "h")]);
        let url = resolve(None, &env).unwrap().url;
        assert_eq!(url, "host='h' port='5432' user='alice' dbname='alice'");
        let e = resolve(None, &env_of(&[])).unwrap_err().to_string();
        assert!(e.contains("PGUSER"), "{e}");
    }

    #[test]
    fn settings_this_does_not_read_are_refused() {
        let env = env_of(&[("USER", "a"), ("PGSERVICE", "prod")]);
        let e = resolve(None, &env).unwrap_err().to_string();
        assert!(e.starts_with("PGSERVICE"), "{e}");
    }

    #[test]
    fn pgpass_gives_the_first_matching_line() {
        let text =
            "# comment\nother:5432:*:app:no\n*:5432:db\\:1:app:pa:ss\nlocalhost:*:*:*:sock\n";
        assert_eq!(
            pgpass_lookup(text, "h", "5432", "db:1", "app").as_deref(),
            Some("pa:ss")
        );
        assert_eq!(
            pgpass_lookup(text, "/var/run/postgresql", "5433", "x", "y").as_deref(),
            Some("sock")
        );
        assert_eq!(pgpass_lookup(text, "h", "5433", "x", "app"), None);
    }
}

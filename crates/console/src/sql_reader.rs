//! The login the SQL page runs statements as when the server is given one
//! (`--sql-reader-url`): a role granted only `SELECT` on the pipelines' schemas, so that no
//! statement can do more than read them, whatever function it calls. Postgres checks what a
//! login may do; `SET ROLE` on the destination's own login would not (a query can undo it with
//! `set_config('role', …)`). The reader serves destinations in its own database only.

use crate::table_stats::Destination;

/// The SQL page's login.
#[derive(Clone)]
pub struct SqlReader {
    url: String,
    /// `host:port/db`, for matching destinations and for messages.
    target: String,
}

impl std::fmt::Debug for SqlReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the URL: it may hold the password.
        write!(f, "SqlReader({})", self.target)
    }
}

impl SqlReader {
    /// A reader from a libpq URL; `Err` names what is wrong with it (never its password).
    pub fn parse(url: &str) -> Result<SqlReader, String> {
        if url.trim().is_empty() {
            return Err("empty: give a connection URL, or leave the flag out".to_owned());
        }
        pg_connect::parse_url(url)?;
        Ok(SqlReader {
            url: url.to_owned(),
            target: pg_connect::describe_target(url),
        })
    }

    /// `host:port/db`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The login's password, wherever the URL gives it (`user:password@`, `?password=`, or
    /// `password=` in key=value form), for the host to register with its log redaction.
    pub fn password(&self) -> Option<String> {
        let target = pg_connect::parse_url(&self.url).ok()?;
        target
            .pg
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned())
    }

    /// The destination as the SQL page connects to it: through the reader, when it serves the
    /// destination's database; else why not.
    pub(crate) fn serving(&self, destination: &Destination) -> Result<Destination, String> {
        let theirs = pg_connect::describe_target(&destination.url);
        if theirs != self.target {
            return Err(format!(
                "the SQL page's role (--sql-reader-url) is for {}; this destination is in {theirs}: \
                 give a reader of that database, or query it elsewhere",
                self.target
            ));
        }
        Ok(Destination {
            url: self.url.clone(),
            ..destination.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_serves_its_own_database_only() {
        let reader = SqlReader::parse("postgres://reader:pw@db.example:5432/shop").unwrap();
        assert_eq!(format!("{reader:?}"), "SqlReader(db.example:5432/shop)");
        let destination = |url: &str| Destination {
            label: "pl".into(),
            url: url.into(),
            schema: "stripe".into(),
        };
        let served = reader
            .serving(&destination("postgres://owner:secret@db.example/shop"))
            .unwrap();
        assert_eq!(served.url, "postgres://reader:pw@db.example:5432/shop");
        assert_eq!(served.schema, "stripe");
        let refused = reader
            .serving(&destination("postgres://owner:secret@db.example/other"))
            .unwrap_err();
        assert!(refused.contains("db.example:5432/other"), "{refused}");
        assert!(
            !refused.contains("pw") && !refused.contains("secret"),
            "{refused}"
        );
        assert!(SqlReader::parse(" ").is_err());
        assert_eq!(reader.password().as_deref(), Some("pw"));
        let keyed = SqlReader::parse("host=db.example dbname=shop user=r password=s3cret").unwrap();
        assert_eq!(keyed.password().as_deref(), Some("s3cret"));
    }
}

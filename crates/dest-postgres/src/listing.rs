//! Sweeps: what a whole listing of a stream did not return is marked deleted (see
//! `sync_protocol::Listing`). The listing's start is recorded with the database's clock, with
//! whether the table then held rows it covers; while it is open, every flush of the stream
//! records its keys as seen, in the flush's own transaction; at its end, the rows it covers that
//! were last written before it started, were not seen and are not of a kind the listing hides
//! are marked, in one transaction that also closes the listing. A listing is closed once: a
//! repeated end (a rerun after a crash) marks nothing more, and a repeated start of a closed
//! listing does not reopen it.

use deadpool_postgres::Pool;
use serde_json::Value;
use sync_protocol::Listing;

use crate::config::{Config, DeleteMode};
use crate::flush_error::FlushError;
use crate::ident::{literal, qualified, quote};
use crate::table::{
    DELETED, DELETED_REASON, MISSING_FROM_LISTING, RAW_DATA, SYNCED_AT, TableModel,
};

/// Each listing: its stream, id, scope, start, whether there was anything to compare, end.
pub(crate) const LISTINGS: &str = "_listings";
/// Ended listings kept per stream and scope, newest first: what the last reconciles did, for
/// whoever asks; older ones are forgotten when another starts.
const KEPT_LISTINGS: u32 = 20;
/// The keys each open listing has seen.
pub(crate) const SEEN: &str = "_listing_seen";

/// The bookkeeping tables' creation SQL.
pub(crate) fn create_listings_sql(schema: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} (stream text NOT NULL, listing text NOT NULL, \
         scope jsonb NOT NULL, started_at timestamptz NOT NULL DEFAULT now(), \
         compare boolean NOT NULL, ended_at timestamptz, outcome text, \
         PRIMARY KEY (stream, listing))",
        qualified(schema, LISTINGS)
    )
}

/// See [`create_listings_sql`].
pub(crate) fn create_seen_sql(schema: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} (stream text NOT NULL, listing text NOT NULL, \
         key jsonb NOT NULL, PRIMARY KEY (stream, listing, key))",
        qualified(schema, SEEN)
    )
}

/// The key of `alias`'s row as one JSON array, as [`SEEN`] keeps it.
pub(crate) fn key_of(table: &TableModel, alias: &str) -> String {
    let columns: Vec<String> = table
        .keys
        .iter()
        .map(|k| format!("{alias}.{}", quote(&k.column)))
        .collect();
    format!("jsonb_build_array({})", columns.join(", "))
}

/// A listing a loader records seen keys under: those of its scope only (the staged rows,
/// alias `t`, that `scope` holds true of), so listings of one stream in several accounts at
/// once each keep only their own.
#[derive(Debug, Clone)]
pub(crate) struct OpenListing {
    pub id: String,
    pub scope: String,
}

/// How a listing ended.
#[derive(Debug)]
pub(crate) enum Ended {
    /// This many rows were marked.
    Marked(u64),
    /// More than the allowed share would have been marked: nothing was.
    Refused { missing: u64, live: u64 },
    /// Nothing to do: not started here, ended already, or nothing to compare.
    Nothing(&'static str),
}

/// The SQL conditions of `listing`'s scope on a row (alias `t`) of the table or its staging
/// table, or why there are none (a scope this table cannot tell).
fn scope_terms(table: &TableModel, listing: &Listing) -> Result<Vec<String>, String> {
    let mut terms = Vec::new();
    for (field, value) in &listing.scope {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            other => {
                return Err(format!(
                    "scope {field:?} is {other}, not a string or number"
                ));
            }
        };
        let column = match table.keys.iter().find(|k| &k.field == field) {
            Some(key) => format!("t.{}::text", quote(&key.column)),
            None => format!("t.{} ->> {}", quote(RAW_DATA), literal(field)),
        };
        terms.push(format!("{column} = {}", literal(&text)));
    }
    Ok(terms)
}

/// The SQL condition of the rows `listing` covers and may mark (alias `t`), or why there is
/// none (a scope this table cannot tell).
fn covered(table: &TableModel, listing: &Listing) -> Result<String, String> {
    let mut terms = vec![format!("NOT t.{}", quote(DELETED))];
    terms.extend(scope_terms(table, listing)?);
    for (field, values) in &listing.unlisted {
        let value = format!("t.{} -> {}", quote(RAW_DATA), literal(field));
        match values {
            Value::Null => terms.push(format!("coalesce({value}, 'null'::jsonb) = 'null'::jsonb")),
            Value::Array(values) => {
                let listed: Vec<String> = values
                    .iter()
                    .map(|v| format!("{}::jsonb", literal(&v.to_string())))
                    .collect();
                if !listed.is_empty() {
                    terms.push(format!(
                        "NOT coalesce({value} IN ({}), false)",
                        listed.join(", ")
                    ));
                }
            }
            other => {
                return Err(format!(
                    "unlisted {field:?} is {other}, not null or an array"
                ));
            }
        }
    }
    Ok(terms.join(" AND "))
}

fn pg(context: &str) -> impl Fn(tokio_postgres::Error) -> FlushError + '_ {
    move |e| FlushError::from_pg(context, &e)
}

/// Records the start of `listing` (a repeated start keeps the first); returns it when it is
/// open and has anything to compare, so that flushes record what they write.
pub(crate) async fn start(
    pool: &Pool,
    config: &Config,
    table: &TableModel,
    listing: &Listing,
) -> Result<Option<OpenListing>, FlushError> {
    let covered = match covered(table, listing) {
        Ok(covered) => covered,
        Err(why) => {
            tracing::warn!(stream = %table.stream, "listing {}: nothing will be marked: {why}", listing.id);
            return Ok(None);
        }
    };
    let listings = qualified(&config.schema, LISTINGS);
    let seen = qualified(&config.schema, SEEN);
    let target = qualified(&config.schema, &table.table);
    let stream = literal(&table.stream);
    let id = literal(&listing.id);
    let scope = literal(&Value::Object(listing.scope.clone()).to_string());
    let mut client = pool.get().await.map_err(|e| FlushError::connecting(&e))?;
    let tx = client.transaction().await.map_err(pg("begin"))?;
    // Another listing of the same rows still open was cut short (a reset, a crash before
    // its end): it will never end, and what it saw is no use to this one.
    tx.batch_execute(&format!(
        "UPDATE {listings} SET ended_at = now(), outcome = 'abandoned' \
         WHERE stream = {stream} AND scope = {scope}::jsonb AND ended_at IS NULL AND listing <> {id}; \
         DELETE FROM {seen} s USING {listings} l WHERE s.stream = {stream} AND l.stream = {stream} \
         AND s.listing = l.listing AND l.ended_at IS NOT NULL; \
         INSERT INTO {listings} (stream, listing, scope, compare) \
         SELECT {stream}, {id}, {scope}::jsonb, EXISTS (SELECT 1 FROM {target} t WHERE {covered}) \
         ON CONFLICT DO NOTHING; \
         DELETE FROM {listings} WHERE stream = {stream} AND scope = {scope}::jsonb AND ended_at IS NOT NULL \
         AND listing NOT IN (SELECT listing FROM {listings} WHERE stream = {stream} AND scope = {scope}::jsonb \
         AND ended_at IS NOT NULL ORDER BY ended_at DESC LIMIT {KEPT_LISTINGS})"
    ))
    .await
    .map_err(pg("starting a listing"))?;
    let row = tx
        .query_one(
            &format!(
                "SELECT compare AND ended_at IS NULL FROM {listings} WHERE stream = {stream} AND listing = {id}"
            ),
            &[],
        )
        .await
        .map_err(pg("starting a listing"))?;
    tx.commit().await.map_err(pg("commit"))?;
    let open: bool = row.get(0);
    let scope = match scope_terms(table, listing) {
        Ok(terms) if terms.is_empty() => "true".to_owned(),
        Ok(terms) => terms.join(" AND "),
        Err(_) => "true".to_owned(),
    };
    Ok(open.then(|| OpenListing {
        id: listing.id.clone(),
        scope,
    }))
}

/// Ends `listing`: marks the rows it covers that it did not return, unless they are more than
/// the configured share of those it covers.
pub(crate) async fn end(
    pool: &Pool,
    config: &Config,
    table: &TableModel,
    listing: &Listing,
) -> Result<Ended, FlushError> {
    let covered = match covered(table, listing) {
        Ok(covered) => covered,
        Err(_) => return Ok(Ended::Nothing("its scope does not fit the table")),
    };
    let sql = EndSql::new(config, table, listing);
    let mut client = pool.get().await.map_err(|e| FlushError::connecting(&e))?;
    let tx = client.transaction().await.map_err(pg("begin"))?;
    let found = tx
        .query_opt(&sql.find(), &[])
        .await
        .map_err(pg("ending a listing"))?;
    let Some(found) = found else {
        return Ok(Ended::Nothing("its start was not recorded here"));
    };
    let (compare, ended): (bool, bool) = (found.get(0), found.get(1));
    if ended {
        return Ok(Ended::Nothing("it ended already"));
    }
    if !compare {
        close(tx, sql.close("nothing to compare")).await?;
        return Ok(Ended::Nothing(
            "the table held none of its rows when it started",
        ));
    }
    let missing = sql.missing(&covered, table);
    let counts = tx
        .query_one(&sql.count(&missing, &covered), &[])
        .await
        .map_err(pg("counting the rows a listing did not return"))?;
    let (missing_rows, live) = (
        counts.get::<_, i64>(0) as u64,
        counts.get::<_, i64>(1) as u64,
    );
    if missing_rows as f64 > config.sweep_max_share * live as f64 {
        close(tx, sql.close(&format!("refused: {missing_rows} of {live}"))).await?;
        return Ok(Ended::Refused {
            missing: missing_rows,
            live,
        });
    }
    let marked = tx
        .execute(&sql.mark(config.delete_mode, &missing), &[])
        .await
        .map_err(pg("marking the rows a listing did not return"))?;
    close(tx, sql.close(&format!("marked {marked}"))).await?;
    Ok(Ended::Marked(marked))
}

/// Runs `close` (see [`EndSql::close`]) and commits.
async fn close(tx: deadpool_postgres::Transaction<'_>, close: String) -> Result<(), FlushError> {
    tx.batch_execute(&close)
        .await
        .map_err(pg("ending a listing"))?;
    tx.commit().await.map_err(pg("commit"))
}

/// The statements of one listing's end.
struct EndSql {
    listings: String,
    seen: String,
    target: String,
    stream: String,
    id: String,
}

impl EndSql {
    fn new(config: &Config, table: &TableModel, listing: &Listing) -> EndSql {
        EndSql {
            listings: qualified(&config.schema, LISTINGS),
            seen: qualified(&config.schema, SEEN),
            target: qualified(&config.schema, &table.table),
            stream: literal(&table.stream),
            id: literal(&listing.id),
        }
    }

    /// Whether there was anything to compare, and whether it ended already; locks its row.
    fn find(&self) -> String {
        format!(
            "SELECT compare, ended_at IS NOT NULL FROM {} WHERE stream = {} AND listing = {} FOR UPDATE",
            self.listings, self.stream, self.id
        )
    }

    /// Ends the listing with `outcome` and forgets the keys it saw.
    fn close(&self, outcome: &str) -> String {
        let (listings, seen, stream, id) = (&self.listings, &self.seen, &self.stream, &self.id);
        format!(
            "UPDATE {listings} SET ended_at = now(), outcome = {} WHERE stream = {stream} AND listing = {id}; \
             DELETE FROM {seen} WHERE stream = {stream} AND listing = {id}",
            literal(outcome)
        )
    }

    /// The rows (alias `t`) it covers that were last written before it started and it did not
    /// see.
    fn missing(&self, covered: &str, table: &TableModel) -> String {
        let (listings, seen, stream, id) = (&self.listings, &self.seen, &self.stream, &self.id);
        format!(
            "{covered} AND t.{synced} < (SELECT started_at FROM {listings} WHERE stream = {stream} AND listing = {id}) \
             AND NOT EXISTS (SELECT 1 FROM {seen} x WHERE x.stream = {stream} AND x.listing = {id} AND x.key = {key})",
            synced = quote(SYNCED_AT),
            key = key_of(table, "t"),
        )
    }

    /// The rows to mark, and the rows covered.
    fn count(&self, missing: &str, covered: &str) -> String {
        format!(
            "SELECT count(*) FILTER (WHERE {missing}), count(*) FILTER (WHERE {covered}) FROM {} t",
            self.target
        )
    }

    /// Marks the `missing` rows deleted (`hard`: deletes them).
    fn mark(&self, mode: DeleteMode, missing: &str) -> String {
        let target = &self.target;
        match mode {
            DeleteMode::Soft => format!(
                "UPDATE {target} t SET {deleted} = true, {reason} = {why}, {synced} = now() WHERE {missing}",
                deleted = quote(DELETED),
                reason = quote(DELETED_REASON),
                why = literal(MISSING_FROM_LISTING),
                synced = quote(SYNCED_AT),
            ),
            // No tombstone: should the object be listed again, its row comes back.
            DeleteMode::Hard => format!("DELETE FROM {target} t WHERE {missing}"),
        }
    }
}

//! Running one read-only query on a destination for the SQL page: a fresh connection, a
//! `READ ONLY` transaction with a statement timeout, one statement (Postgres' extended protocol
//! refuses a second), a query only (it runs through a cursor, which takes nothing else), and at
//! most a cap of rows fetched. Values come back as Postgres writes them as text.

use std::time::{Duration, Instant};

use pg_tables::ident::quote as quote_ident;
use tokio_postgres::SimpleQueryMessage;
use tokio_postgres::error::SqlState;

use crate::table_stats::Destination;

/// How long a statement may run before Postgres cancels it.
pub(crate) const STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);
/// Rows shown on the page.
pub(crate) const PAGE_ROWS: usize = 1_000;
/// Rows written to a CSV download.
pub(crate) const CSV_ROWS: usize = 100_000;
/// Bytes of values held for the page, and for a CSV download: past them no more rows are
/// fetched (a result of few but huge rows would otherwise be held whole).
pub(crate) const PAGE_BYTES: usize = 8 << 20;
pub(crate) const CSV_BYTES: usize = 64 << 20;
/// Rows fetched from the cursor at a time.
const FETCH_ROWS: usize = 100;

/// The first words a query may start with: what a cursor runs.
const QUERY_WORDS: [&str; 4] = ["select", "with", "values", "table"];

/// What a query answered.
#[derive(Debug, Clone, Default)]
pub(crate) struct Answer {
    /// Each column's name and Postgres type.
    pub(crate) columns: Vec<(String, String)>,
    /// The rows fetched, each value as Postgres' text (`None` for NULL).
    pub(crate) rows: Vec<Vec<Option<String>>>,
    /// More rows were there than the caps (rows or bytes) let through.
    pub(crate) truncated: bool,
    /// From sending the statement to the last row fetched.
    pub(crate) elapsed: Duration,
}

/// Why a statement was not run or failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Not run: not one query.
    NotAQuery(String),
    /// Postgres' error, as it gave it.
    Postgres(String),
    /// Cancelled: at the statement timeout, or by someone else.
    TimedOut(Duration),
    /// The destination could not be reached, or the connection was lost.
    Unreachable(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NotAQuery(why) | Refusal::Postgres(why) | Refusal::Unreachable(why) => {
                f.write_str(why)
            }
            Refusal::TimedOut(limit) => write!(
                f,
                "the statement ran past {} s and was cancelled (canceling statement due to statement timeout)",
                limit.as_secs()
            ),
        }
    }
}

/// `sql` without its leading blanks and comments (`-- …` lines and nested `/* … */`).
fn without_leading_comments(sql: &str) -> &str {
    let mut rest = sql.trim_start();
    loop {
        if let Some(after) = rest.strip_prefix("--") {
            // Postgres ends such a comment at a newline or a carriage return.
            rest = after
                .split_once(['\n', '\r'])
                .map_or("", |(_, next)| next)
                .trim_start();
        } else if rest.starts_with("/*") {
            let mut depth = 0usize;
            let mut end = rest.len();
            let bytes = rest.as_bytes();
            let mut i = 0;
            while i + 1 < bytes.len() {
                match &bytes[i..i + 2] {
                    b"/*" => {
                        depth += 1;
                        i += 2;
                    }
                    b"*/" => {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            end = i;
                            break;
                        }
                    }
                    _ => i += 1,
                }
            }
            rest = rest[end..].trim_start();
        } else {
            return rest;
        }
    }
}

/// Refuses what is not a query by its first word, naming it, before Postgres sees it.
pub(crate) fn first_word_check(sql: &str) -> Result<(), Refusal> {
    let body = without_leading_comments(sql);
    if body.is_empty() {
        return Err(Refusal::NotAQuery(
            "there is no statement to run".to_owned(),
        ));
    }
    if body.starts_with('(') {
        return Ok(());
    }
    let word: String = body
        .chars()
        .take_while(|c| c.is_ascii_alphabetic() || *c == '_')
        .collect::<String>()
        .to_ascii_lowercase();
    if QUERY_WORDS.contains(&word.as_str()) {
        return Ok(());
    }
    let shown = if word.is_empty() {
        body.chars().take(20).collect::<String>()
    } else {
        word.to_ascii_uppercase()
    };
    Err(Refusal::NotAQuery(format!(
        "only a query runs here (SELECT, WITH, VALUES or TABLE), in a read-only transaction; \
         {shown} is not one"
    )))
}

fn postgres(e: &tokio_postgres::Error, limit: Duration) -> Refusal {
    match e.code() {
        Some(code) if *code == SqlState::QUERY_CANCELED => Refusal::TimedOut(limit),
        Some(_) => Refusal::Postgres(pg_connect::error_text(e)),
        // Not Postgres' answer: the connection broke.
        None => Refusal::Unreachable(pg_connect::error_text(e)),
    }
}

/// Runs `sql` on `destination` (its schema first on the search path) and fetches at most
/// `cap` rows and about `byte_cap` bytes of values; each statement sent is cancelled after
/// `limit`.
pub(crate) async fn run(
    destination: &Destination,
    sql: &str,
    cap: usize,
    byte_cap: usize,
    limit: Duration,
) -> Result<Answer, Refusal> {
    first_word_check(sql)?;
    let client = pg_connect::connect(&destination.url, None, "stripe-sync console sql")
        .await
        .map_err(|(_, message)| Refusal::Unreachable(message))?;
    let started = Instant::now();
    client
        .batch_execute(&format!(
            "BEGIN TRANSACTION READ ONLY; SET LOCAL statement_timeout = {}; \
             SET LOCAL search_path = {}, public",
            limit.as_millis(),
            quote_ident(&destination.schema)
        ))
        .await
        .map_err(|e| postgres(&e, limit))?;
    // Parsed alone first: the extended protocol refuses a second statement, and names the
    // columns' types.
    let statement = client.prepare(sql).await.map_err(|e| postgres(&e, limit))?;
    let columns = statement
        .columns()
        .iter()
        .map(|c| (c.name().to_owned(), c.type_().name().to_owned()))
        .collect();
    client
        .batch_execute(&format!("DECLARE console_query NO SCROLL CURSOR FOR {sql}"))
        .await
        .map_err(|e| postgres(&e, limit))?;
    let mut rows: Vec<Vec<Option<String>>> = Vec::new();
    let mut bytes = 0usize;
    let mut truncated = false;
    loop {
        // One row beyond the cap tells whether there were more.
        let want = (cap + 1 - rows.len()).min(FETCH_ROWS);
        let fetched = client
            .simple_query(&format!("FETCH FORWARD {want} FROM console_query"))
            .await
            .map_err(|e| postgres(&e, limit))?;
        let before = rows.len();
        for message in &fetched {
            if let SimpleQueryMessage::Row(row) = message {
                let values: Vec<Option<String>> = (0..row.len())
                    .map(|i| row.get(i).map(str::to_owned))
                    .collect();
                bytes += values.iter().flatten().map(String::len).sum::<usize>();
                rows.push(values);
            }
        }
        if rows.len() > cap {
            rows.truncate(cap);
            truncated = true;
            break;
        }
        if rows.len() - before < want {
            break;
        }
        if bytes >= byte_cap {
            truncated = true;
            break;
        }
    }
    let elapsed = started.elapsed();
    // Nothing was written; ending the transaction frees the cursor before the connection goes.
    let _ = client.batch_execute("ROLLBACK").await;
    Ok(Answer {
        columns,
        rows,
        truncated,
        elapsed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_pass_the_first_word_check_and_writes_are_named() {
        for ok in [
            "select 1",
            "  -- a note\n SELECT 1",
            "/* a /* nested */ note */ with x as (select 1) select * from x",
            "(select 1) union (select 2)",
            "VALUES (1)",
            "table customers",
        ] {
            assert_eq!(first_word_check(ok), Ok(()), "{ok}");
        }
        for (refused, named) in [
            ("delete from customers", "DELETE"),
            ("-- x\nupdate customers set id = id", "UPDATE"),
            ("create table x (a int)", "CREATE"),
            ("explain select 1", "EXPLAIN"),
            ("-- x\rdelete from customers /*\nselect */", "DELETE"),
            ("; select 1", ";"),
        ] {
            let Err(Refusal::NotAQuery(why)) = first_word_check(refused) else {
                panic!("{refused} passed");
            };
            assert!(why.contains(named), "{refused}: {why}");
        }
        assert!(first_word_check("  -- only a comment").is_err());
    }
}

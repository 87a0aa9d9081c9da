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

/// The first words a query may start with: what a cursor runs.
const QUERY_WORDS: [&str; 4] = ["select", "with", "values", "table"];

/// What a query answered.
#[derive(Debug, Clone, Default)]
pub(crate) struct Answer {
    /// Each column's name and Postgres type.
    pub(crate) columns: Vec<(String, String)>,
    /// The rows fetched, each value as Postgres' text (`None` for NULL).
    pub(crate) rows: Vec<Vec<Option<String>>>,
    /// More rows were there than the cap.
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
    /// Cancelled at the statement timeout.
    TimedOut(Duration),
    /// The destination could not be reached.
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
            rest = after
                .split_once('\n')
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
    if e.code() == Some(&SqlState::QUERY_CANCELED) {
        return Refusal::TimedOut(limit);
    }
    Refusal::Postgres(pg_connect::error_text(e))
}

/// Runs `sql` on `destination` (its schema first on the search path) and fetches at most
/// `cap` rows, cancelled after `limit`.
pub(crate) async fn run(
    destination: &Destination,
    sql: &str,
    cap: usize,
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
    let fetched = client
        .simple_query(&format!("FETCH FORWARD {} FROM console_query", cap + 1))
        .await
        .map_err(|e| postgres(&e, limit))?;
    let elapsed = started.elapsed();
    let mut rows: Vec<Vec<Option<String>>> = fetched
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_owned))
                    .collect(),
            ),
            _ => None,
        })
        .collect();
    let truncated = rows.len() > cap;
    rows.truncate(cap);
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

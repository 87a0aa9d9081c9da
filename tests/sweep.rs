//! Deletions that left no event: objects deleted while the sync was away (longer than Stripe
//! keeps events, or whose event was lost) are marked by the next whole listing of their stream
//! (`sync --reset`), and by nothing less: not by events, a sample (`backfill_limit`), a run cut
//! short (state or time limit, a fault), or a listing that would mark more than
//! `sweep_max_share` of a table at once. A reconcile killed at any moment never marks a live
//! row, and the next whole listing marks exactly what was deleted.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use stripe_fake::{Config, FakeStripe, Faults, Scope};
use test_support::process::{Lcg, descendants, kill9};
use test_support::{Finished, TestDb, bin_path};

const STREAMS: &[&str] = &["customers", "invoices", "products", "prices"];

fn fake() -> FakeStripe {
    FakeStripe::start(Config {
        seed: 23,
        scale: 0.0,
        objects: vec![
            ("customers".into(), 300),
            ("invoices".into(), 120),
            ("products".into(), 40),
            ("prices".into(), 60),
        ],
        ..Default::default()
    })
    .expect("the simulator starts")
}

fn sync(fake: &FakeStripe, db: &TestDb, source_config: Value, extra: &[&str]) -> Finished {
    sync_ending(fake, db, source_config, extra, 0)
}

/// A sync that must exit with `code` (3: stopped early, rerun to continue).
fn sync_ending(
    fake: &FakeStripe,
    db: &TestDb,
    source_config: Value,
    extra: &[&str],
    code: i32,
) -> Finished {
    let finished: Finished = sync_command(fake, db, &source_config, &STREAMS.join(","), extra)
        .output()
        .unwrap()
        .into();
    assert_eq!(finished.code, Some(code), "{}", finished.stderr);
    finished
}

/// `sync-engine sync` of `streams` from the simulator into `db`'s schema `stripe`.
fn sync_command(
    fake: &FakeStripe,
    db: &TestDb,
    source_config: &Value,
    streams: &str,
    extra: &[&str],
) -> Command {
    let mut command = Command::new(bin_path("sync-engine"));
    command
        .args(["sync", "--stripe-api-key", "sk_test_fake"])
        .args(["--stripe-base-url", &fake.base_url()])
        .args(["--source-config", &source_config.to_string()])
        .args(["--postgres-url", db.url(), "--schema", "stripe"])
        .args(["--streams", streams, "--output", "ndjson"])
        .args(extra)
        .env_remove("STRIPE_API_KEY")
        .env_remove("DATABASE_URL");
    command
}

fn fast() -> Value {
    json!({"rate_limit": 1000, "endpoint_rate_limit": 500})
}

/// (rows marked for missing from a listing, rows not deleted) of a stream's table.
fn counts(db: &TestDb, stream: &str) -> (i64, i64) {
    let row = db
        .client()
        .query_one(
            &format!(
                "SELECT count(*) FILTER (WHERE _deleted AND _deleted_reason = 'missing_from_listing'), \
                 count(*) FILTER (WHERE NOT _deleted) FROM stripe.{stream}"
            ),
            &[],
        )
        .unwrap();
    (row.get(0), row.get(1))
}

fn marked_ids(db: &TestDb, stream: &str) -> Vec<String> {
    db.client()
        .query(
            &format!(
                "SELECT id FROM stripe.{stream} WHERE _deleted_reason = 'missing_from_listing' ORDER BY id"
            ),
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn live(fake: &FakeStripe, stream: &str) -> i64 {
    fake.objects(Scope::test(None), stream).unwrap().len() as i64
}

/// Deletes `n` objects of `stream` without an event; their ids, sorted.
fn delete_silently(fake: &FakeStripe, stream: &str, n: usize) -> Vec<String> {
    let objects = fake.objects(Scope::test(None), stream).unwrap();
    let mut ids: Vec<String> = objects
        .iter()
        .step_by(3)
        .take(n)
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect();
    for id in &ids {
        fake.delete_silently(Scope::test(None), stream, id).unwrap();
    }
    ids.sort();
    ids
}

#[test]
fn objects_deleted_while_away_are_marked_by_the_next_whole_listing_only() {
    let fake = fake();
    let db = TestDb::new();
    // An archived price: Stripe lists it only when asked for inactive prices.
    let price_ids = |active: bool| -> Vec<String> {
        fake.objects(Scope::test(None), "prices")
            .unwrap()
            .iter()
            .filter(|p| p["active"] == active)
            .map(|p| p["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let archive = |id: &str| {
        fake.change_silently(Scope::test(None), "prices", id, json!({"active": false}))
            .unwrap();
    };
    let archived_first = price_ids(true)[0].clone();
    archive(&archived_first);
    sync(&fake, &db, fast(), &[]);
    let before: Vec<(i64, i64)> = STREAMS.iter().map(|s| counts(&db, s)).collect();
    assert_eq!(
        db.count(&format!(
            "stripe.prices WHERE id = '{archived_first}' AND _raw_data->>'active' = 'false'"
        )),
        1,
        "the backfill lists inactive prices too"
    );
    for (stream, (marked, alive)) in STREAMS.iter().zip(&before) {
        assert_eq!(*marked, 0, "{stream}");
        assert_eq!(*alive, live(&fake, stream), "{stream}");
    }

    let customers = delete_silently(&fake, "customers", 6);
    let invoices = delete_silently(&fake, "invoices", 4);
    let products = delete_silently(&fake, "products", 2);
    // Prices: two active ones deleted, one archived while away (listed only as inactive), and
    // the archived one deleted (inactive rows are never marked: prices made inline are
    // inactive and never listed).
    let mut prices: Vec<String> = price_ids(true).into_iter().take(2).collect();
    prices.sort();
    for id in &prices {
        fake.delete_silently(Scope::test(None), "prices", id)
            .unwrap();
    }
    let archived_away = price_ids(true)[0].clone();
    archive(&archived_away);
    fake.delete_silently(Scope::test(None), "prices", &archived_first)
        .unwrap();

    // Events say nothing of them: an incremental run leaves them as they were.
    sync(&fake, &db, fast(), &[]);
    assert_eq!(counts(&db, "customers"), (0, before[0].1));

    // A sample lists only part of each stream: nothing may be marked.
    sync(
        &fake,
        &db,
        json!({"rate_limit": 1000, "endpoint_rate_limit": 500, "backfill_limit": 50}),
        &["--reset"],
    );
    assert_eq!(counts(&db, "customers"), (0, before[0].1));
    // A run cut short after its first checkpoint never reaches a listing's end.
    sync_ending(&fake, &db, fast(), &["--reset", "--state-limit", "1"], 3);
    assert_eq!(counts(&db, "customers"), (0, before[0].1));

    // A whole listing (a reconcile): exactly the objects deleted while away are marked.
    let run = sync(&fake, &db, fast(), &["--reset"]);
    assert_eq!(marked_ids(&db, "customers"), customers, "{}", run.stderr);
    assert_eq!(marked_ids(&db, "invoices"), invoices);
    assert_eq!(marked_ids(&db, "products"), products);
    for stream in ["customers", "invoices", "products"] {
        assert_eq!(
            counts(&db, stream).1,
            live(&fake, stream),
            "{stream}: every live row stays"
        );
    }
    eprintln!(
        "customers: {} rows alive before, {} after, {} marked",
        before[0].1,
        counts(&db, "customers").1,
        customers.len()
    );
    assert_eq!(marked_ids(&db, "prices"), prices);
    assert_eq!(
        counts(&db, "prices").1,
        live(&fake, "prices") + 1,
        "every live price stays, and the archived one deleted"
    );
    let active_of = |id: &str| -> Option<String> {
        db.client()
            .query_one(
                "SELECT _raw_data->>'active' FROM stripe.prices WHERE id = $1 AND NOT _deleted",
                &[&id],
            )
            .ok()
            .map(|r| r.get(0))
    };
    assert_eq!(active_of(&archived_away).as_deref(), Some("false"));
    assert!(
        run.stderr.contains("marked deleted"),
        "the run says what it marked: {}",
        run.stderr
    );

    // Idempotent: another whole listing marks the same rows, and no other.
    sync(&fake, &db, fast(), &["--reset"]);
    assert_eq!(marked_ids(&db, "customers"), customers);
    assert_eq!(counts(&db, "customers").1, live(&fake, "customers"));
}

#[test]
fn a_listing_that_would_mark_more_than_the_allowed_share_marks_nothing_until_allowed() {
    let fake = fake();
    let db = TestDb::new();
    sync(&fake, &db, fast(), &[]);
    let alive = counts(&db, "products").1;
    // A third of the products: above the default share of a fifth.
    let gone = delete_silently(&fake, "products", (alive / 3) as usize);
    let run = sync(&fake, &db, fast(), &["--reset"]);
    assert_eq!(counts(&db, "products"), (0, alive));
    assert!(
        run.stderr.contains(&format!(
            "stream \"products\": its whole listing did not return {} of the {alive} row(s)",
            gone.len()
        )),
        "the warning names the stream and the counts: {}",
        run.stderr
    );
    sync(
        &fake,
        &db,
        fast(),
        &[
            "--reset",
            "--destination-config",
            r#"{"sweep_max_share": 1}"#,
        ],
    );
    assert_eq!(marked_ids(&db, "products"), gone);
    assert_eq!(counts(&db, "products").1, alive - gone.len() as i64);
}

/// Starts `sync --reset` (a reconcile) and, once it has reported `states` committed states and
/// `delay` more has passed, kills it and its connectors with SIGKILL, as a crash would; true
/// when it was still running then.
fn reconcile_killed_after(fake: &FakeStripe, db: &TestDb, states: usize, delay: Duration) -> bool {
    let mut child = sync_command(fake, db, &fast(), &STREAMS.join(","), &["--reset"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = 0;
    for line in stdout.lines() {
        let Ok(line) = line else { break };
        if line.contains(r#""type":"source_state""#) {
            seen += 1;
        }
        if seen == states {
            std::thread::sleep(delay);
            let running = child.try_wait().unwrap().is_none();
            // The connectors lead their own process groups: each is killed, not only the engine.
            for pid in descendants(child.id()).into_iter().rev() {
                kill9(pid);
            }
            child.wait().unwrap();
            return running;
        }
    }
    child.wait().unwrap();
    false
}

#[test]
fn a_reconcile_killed_at_any_moment_never_marks_a_live_row_and_its_rerun_marks_exactly_the_deleted()
{
    let fake = fake();
    let db = TestDb::new();
    sync(&fake, &db, fast(), &[]);
    // How many states a whole listing commits (it marks nothing yet): the kills land after
    // each part of one, its ends (where the marking happens) included, whatever the load.
    let whole = sync(&fake, &db, fast(), &["--reset"])
        .of_type("source_state")
        .len();
    assert!(whole >= 10, "{whole} states");
    let mut deleted: Vec<(&str, String)> = Vec::new();
    let mut rng = Lcg(0x5eed);
    let mut killed = 0;
    for round in 0..8 {
        // Each round deletes more while away, so every kill meets rows still to be marked.
        for stream in ["customers", "invoices"] {
            deleted.extend(
                delete_silently(&fake, stream, 1)
                    .into_iter()
                    .map(|id| (stream, id)),
            );
        }
        let states = 1 + round * (whole - 1) / 8;
        let after = Duration::from_millis(rng.next(30));
        let was_running = reconcile_killed_after(&fake, &db, states, after);
        killed += usize::from(was_running);
        for stream in ["customers", "invoices"] {
            let gone: Vec<&String> = deleted
                .iter()
                .filter(|(s, _)| *s == stream)
                .map(|(_, id)| id)
                .collect();
            let marked = marked_ids(&db, stream);
            eprintln!(
                "round {round}: killed {after:?} after state {states} of {whole} (still running: {was_running}): {stream}: {} of {} marked",
                marked.len(),
                gone.len()
            );
            assert!(
                marked.iter().all(|id| gone.contains(&id)),
                "round {round}, killed after state {states}: a live {stream} row was marked: {marked:?}"
            );
            assert_eq!(
                counts(&db, stream).1 + marked.len() as i64,
                live(&fake, stream) + gone.len() as i64,
                "round {round}: every row is alive but those marked"
            );
        }
        // A resumed run (no --reset) never marks a live row either.
        if round % 3 == 2 {
            sync(&fake, &db, fast(), &[]);
            let marked = marked_ids(&db, "customers");
            assert!(
                marked
                    .iter()
                    .all(|id| deleted.contains(&("customers", id.clone())))
            );
        }
    }
    assert!(
        killed >= 4,
        "only {killed} of the runs were killed while running"
    );
    sync(&fake, &db, fast(), &["--reset"]);
    for stream in ["customers", "invoices"] {
        let mut gone: Vec<String> = deleted
            .iter()
            .filter(|(s, _)| *s == stream)
            .map(|(_, id)| id.clone())
            .collect();
        gone.sort();
        assert_eq!(marked_ids(&db, stream), gone, "{stream}");
        assert_eq!(
            counts(&db, stream).1,
            live(&fake, stream),
            "{stream}: every live row stays"
        );
    }
}

#[test]
fn a_listing_cut_by_a_fault_marks_nothing_and_its_resumed_run_marks_what_was_deleted() {
    let fake = fake();
    let db = TestDb::new();
    sync(&fake, &db, fast(), &[]);
    let alive = counts(&db, "customers").1;
    let customers = delete_silently(&fake, "customers", 5);
    // Two requests a second, no retry: the customers' listing (three pages) is still under
    // way when every request starts failing after its first page is committed.
    let slow = json!({"rate_limit": 2, "max_retries": 0});
    // A reconcile stopped by its time limit has not listed everything: nothing is marked.
    sync_ending(
        &fake,
        &db,
        slow.clone(),
        &["--reset", "--time-limit", "1"],
        3,
    );
    assert_eq!(counts(&db, "customers"), (0, alive));
    let mut child = sync_command(&fake, &db, &slow, "customers", &["--reset"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    for line in stdout.lines() {
        let message: Value = serde_json::from_str(&line.unwrap()).unwrap();
        if message["type"] == "source_state" {
            fake.set_faults(Faults {
                error_rate: 1.0,
                ..Faults::default()
            })
            .unwrap();
            break;
        }
    }
    let cut = test_support::process::finish_within(child, Duration::from_secs(120));
    assert_ne!(cut.code, Some(0), "the run failed: {}", cut.stderr);
    assert_eq!(
        counts(&db, "customers"),
        (0, alive),
        "a listing cut short marks nothing: {}",
        cut.stderr
    );

    // The fault gone, the run resumes the listing where it stopped and finishes it.
    fake.set_faults(Faults::default()).unwrap();
    sync(&fake, &db, fast(), &[]);
    assert_eq!(marked_ids(&db, "customers"), customers);
    assert_eq!(counts(&db, "customers").1, live(&fake, "customers"));
}

#[test]
fn deletions_whose_events_expired_while_away_are_marked_by_the_next_plain_run() {
    let fake = fake();
    let db = TestDb::new();
    sync(&fake, &db, fast(), &[]);
    let (_, customers_before) = counts(&db, "customers");
    let (_, invoices_before) = counts(&db, "invoices");
    // Deleted with an event, then away for 31 days: Stripe keeps events for 30, so the
    // deletions can no longer be read; and two more deleted without any event.
    let mut customers: Vec<String> = fake
        .objects(Scope::test(None), "customers")
        .unwrap()
        .iter()
        .skip(1)
        .step_by(5)
        .take(3)
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect();
    for id in &customers {
        fake.delete(Scope::test(None), "customers", id).unwrap();
    }
    customers.extend(delete_silently(&fake, "customers", 2));
    customers.sort();
    let invoices = delete_silently(&fake, "invoices", 2);
    fake.advance_clock(31 * 86_400);

    // No --reset: the expired cursor makes the run list every stream again, a whole listing.
    let run = sync(&fake, &db, fast(), &[]);
    assert!(
        run.stderr
            .contains("older than Stripe's 30-day event retention"),
        "{}",
        run.stderr
    );
    assert_eq!(marked_ids(&db, "customers"), customers, "{}", run.stderr);
    assert_eq!(marked_ids(&db, "invoices"), invoices);
    let (_, customers_after) = counts(&db, "customers");
    let (_, invoices_after) = counts(&db, "invoices");
    eprintln!(
        "customers alive: {customers_before} before, {customers_after} after; invoices: {invoices_before}, {invoices_after}"
    );
    assert_eq!(customers_after, live(&fake, "customers"));
    assert_eq!(customers_after, customers_before - customers.len() as i64);
    assert_eq!(invoices_after, invoices_before - invoices.len() as i64);
}

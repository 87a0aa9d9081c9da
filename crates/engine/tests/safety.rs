//! The engine never gives a silent wrong result: the right connector is blamed for a hang and
//! stopped, a second Ctrl-C always kills at once, secrets are not left on disk or echoed,
//! config updates from connectors survive to the next run, and the summary says what happened.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use test_support::process::child_running;
use test_support::{Bin, Finished, TestDb, bin_path};

fn command_map() -> String {
    json!({"source-example": bin_path("example-connector").display().to_string()}).to_string()
}

fn sync_command(db: &TestDb, state: &Path, source_config: Value, extra: &[&str]) -> Command {
    let mut cmd = Command::new(bin_path("sync-engine"));
    cmd.args([
        "sync",
        "--source",
        "example",
        "--source-config",
        &source_config.to_string(),
        "--destination-config",
        &json!({"url": db.url(), "schema": "ex", "lock_timeout_ms": 0}).to_string(),
        "--state-file",
        state.to_str().unwrap(),
        "--connectors-from-command-map",
        &command_map(),
        "--output",
        "ndjson",
    ])
    .args(extra)
    .env_remove("DATABASE_URL")
    .env_remove("STRIPE_API_KEY")
    .env_remove("RUST_LOG");
    cmd
}

/// The run's end; a run that outlives any of these tests' timeouts by far is a hang, reported
/// with what each of its processes was doing.
fn finished(child: Child) -> Finished {
    test_support::process::finish_within(child, Duration::from_secs(120))
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) on a process this test started.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

/// Waits until the engine runs connector `name`'s `subcommand`.
fn child_running_waited(engine: u32, name: &str, subcommand: &str) -> u32 {
    let started = Instant::now();
    loop {
        if let Some(pid) = child_running(engine, name, subcommand) {
            return pid;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no {name} {subcommand} child"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The processes of group `group` running `program` that have not exited (a zombie has).
fn living_in_group(group: u32, program: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| std::fs::read_to_string(entry.path().join("stat")).ok())
        .filter(|stat| {
            let fields: Vec<&str> = stat
                .rfind(')')
                .map(|end| stat[end + 1..].split_whitespace().collect())
                .unwrap_or_default();
            stat.contains(&format!("({program})"))
                && fields.get(2) == Some(&group.to_string().as_str())
                && fields.first() != Some(&"Z")
        })
        .collect()
}

/// Prepares the destination table, then holds an exclusive lock on it until dropped.
struct LockedTable {
    _client: postgres::Client,
}

fn lock_table(db: &TestDb) -> LockedTable {
    let out = Bin::new("dest-postgres")
        .arg("setup")
        .json("config", &json!({"url": db.url(), "schema": "ex"}))
        .json(
            "catalog",
            &json!({"streams": [{"stream": {"name": "items", "primary_key": [["id"]], "newer_than_field": "updated",
                "json_schema": {"type": "object", "properties": {"id": {"type": "string"}, "n": {"type": "integer"}, "updated": {"type": "integer"}}}}}]}),
        )
        .run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let mut client = db.client();
    client
        .batch_execute("BEGIN; LOCK TABLE ex.items IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    LockedTable { _client: client }
}

#[test]
fn a_blocked_destination_is_named_and_stopped_and_the_source_is_not_blamed() {
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let _lock = lock_table(&db);
    let started = Instant::now();
    let out: Finished = sync_command(
        &db,
        &dir.path().join("s.json"),
        json!({"records": 300000, "state_every": 1000}),
        &["--connector-timeout", "3"],
    )
    .output()
    .unwrap()
    .into();
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("dest-postgres") && out.stderr.contains("stopped as hung"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("source-example wrote nothing"),
        "a back-pressured source is not hung: {}",
        out.stderr
    );
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "{:?}",
        started.elapsed()
    );
    let e = out.of_type("eof").pop().unwrap();
    assert_eq!(
        (e["status"].as_str(), e["has_more"].as_bool()),
        (Some("failed"), Some(true))
    );
}

#[test]
fn a_frozen_destination_is_named_and_killed() {
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let child = sync_command(
        &db,
        &dir.path().join("s.json"),
        json!({"records": 300000, "state_every": 1000, "sleep_ms": 0}),
        &["--connector-timeout", "3"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let dest = child_running_waited(child.id(), "dest-postgres", "write");
    let born = start_time(dest);
    signal(dest, libc::SIGSTOP);
    let started = Instant::now();
    let out = finished(child);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("dest-postgres") && out.stderr.contains("stopped as hung"),
        "{}",
        out.stderr
    );
    assert!(started.elapsed() < Duration::from_secs(40));
    // Gone, a zombie, or its pid taken by another process since (tests run in parallel).
    let stat = std::fs::read_to_string(format!("/proc/{dest}/stat")).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.contains(") Z") || start_time(dest) != born,
        "the frozen destination was killed: {stat}"
    );
}

#[test]
fn a_hung_check_is_killed_with_what_it_started_before_it_is_reported() {
    let db = TestDb::new();
    let child = Command::new(bin_path("sync-engine"))
        .args([
            "check",
            "--source",
            "example",
            "--source-config",
            &json!({"check_hangs": true}).to_string(),
            "--destination-config",
            &json!({"url": db.url(), "schema": "ex"}).to_string(),
            "--connectors-from-command-map",
            &command_map(),
            "--connector-timeout",
            "2",
        ])
        .env_remove("DATABASE_URL")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let source = child_running_waited(child.id(), "example-connector", "check");
    let out = finished(child);
    assert_ne!(out.code, Some(0), "{}", out.stdout);
    assert!(
        out.stdout.contains("source/example: FAILED")
            && out
                .stdout
                .contains("check did not finish within 2s: stopped as hung"),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    // The connector leads its own group; its helper is in it. A kill takes a moment to land.
    let started = Instant::now();
    let left = || living_in_group(source, "sleep");
    assert!(
        std::fs::read_to_string(format!("/proc/{source}/stat")).is_err(),
        "the engine reaped the connector it killed"
    );
    while !left().is_empty() && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let left = left();
    assert!(left.is_empty(), "still running: {left:?}");
}

#[test]
fn a_connector_timeout_is_refused_where_it_would_do_nothing_or_not_what_it_says() {
    let run = |extra: &[&str]| -> Finished {
        Command::new(bin_path("sync-engine"))
            .args([
                "check",
                "--source",
                "example",
                "--source-config",
                "{}",
                "--destination-config",
                r#"{"url": "postgres://nobody@127.0.0.1:9/none"}"#,
            ])
            .args(extra)
            .env_remove("SYNC_ENGINE_API_TOKEN")
            .output()
            .unwrap()
            .into()
    };
    // The engine at --engine-url runs the connectors: its own timeout applies, not this one.
    let out = run(&[
        "--engine-url",
        "http://127.0.0.1:9",
        "--connector-timeout",
        "5",
    ]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("--connector-timeout") && out.stderr.contains("serve"),
        "{}",
        out.stderr
    );
    for bad in ["0.5", "-3", "NaN", "inf", "soon"] {
        let out = run(&[&format!("--connector-timeout={bad}")]);
        assert_eq!(out.code, Some(2), "{bad}: {}", out.stderr);
        assert!(
            out.stderr.contains("--connector-timeout") && out.stderr.contains("from 1 to 86400"),
            "{bad}: {}",
            out.stderr
        );
    }
}

#[test]
fn a_run_refused_for_its_settings_resets_nothing() {
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("s.json");
    let config = json!({"records": 20, "state_every": 5});
    let out: Finished = sync_command(&db, &state, config.clone(), &[])
        .output()
        .unwrap()
        .into();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let saved = std::fs::read_to_string(&state).unwrap();
    let file = dir.path().join("pipeline.json");
    std::fs::write(&file, r#"{"time_limit": 30}"#).unwrap();
    for (refused, named) in [
        (
            &[
                "--reset",
                "--config",
                file.to_str().unwrap(),
                "--time-limit",
                "60",
            ][..],
            "time-limit",
        ),
        // The engine knows the live mode of the stripe source only.
        (&["--reset", "--live"], "--live"),
    ] {
        let out: Finished = sync_command(&db, &state, config.clone(), refused)
            .output()
            .unwrap()
            .into();
        assert_eq!(out.code, Some(2), "{refused:?}: {}", out.stderr);
        assert!(out.stderr.contains(named), "{refused:?}: {}", out.stderr);
        assert_eq!(
            std::fs::read_to_string(&state).unwrap(),
            saved,
            "{refused:?} left the checkpoint as it was"
        );
    }
}

#[test]
fn teardown_removes_the_checkpoint_a_named_sync_kept_and_warns_of_the_others() {
    let db = TestDb::new();
    let engine = |args: &[&str]| -> Finished {
        Command::new(bin_path("sync-engine"))
            .args(args)
            .args([
                "--source",
                "example",
                "--source-config",
                r#"{"records": 10}"#,
                "--destination-config",
                &json!({"url": db.url(), "schema": "ex"}).to_string(),
                "--connectors-from-command-map",
                &command_map(),
            ])
            .env_remove("DATABASE_URL")
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
            .into()
    };
    for id in ["prod", "other"] {
        let out = engine(&["sync", "--output", "ndjson", "--sync-id", id]);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
    }
    let kept = |id: &str| db.count(&format!("ex._sync_state WHERE sync_id = '{id}'"));
    assert!(kept("prod") > 0 && kept("other") > 0);
    let out = engine(&["teardown", "--sync-id", "prod"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(kept("prod"), 0, "the named sync's checkpoint is gone");
    assert!(
        out.stderr.contains("other syncs (other)"),
        "a checkpoint left for torn-down tables is named: {}",
        out.stderr
    );
    let out = engine(&["teardown", "--sync-id", "other"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(!out.stderr.contains("other syncs"), "{}", out.stderr);
    assert_eq!(
        db.count("pg_tables WHERE schemaname = 'ex' AND tablename = '_sync_state'"),
        0,
        "the last checkpoint gone, its table goes too"
    );
}

#[test]
fn an_empty_api_token_is_refused_rather_than_served_without_auth() {
    for how in [&["--api-token", ""][..], &["--api-token", "  "]] {
        let out: Finished = Command::new(bin_path("sync-engine"))
            .args(["serve", "--port", "0"])
            .args(how)
            .env_remove("SYNC_ENGINE_API_TOKEN")
            .output()
            .unwrap()
            .into();
        assert_eq!(out.code, Some(2), "{how:?}: {}", out.stderr);
        assert!(out.stderr.contains("--api-token"), "{}", out.stderr);
    }
    let out: Finished = Command::new(bin_path("sync-engine"))
        .args(["serve", "--port", "0"])
        .env("SYNC_ENGINE_API_TOKEN", "")
        .output()
        .unwrap()
        .into();
    assert_eq!(
        out.code,
        Some(2),
        "empty in the environment: {}",
        out.stderr
    );
}

#[test]
fn a_log_level_that_does_not_parse_is_refused_naming_where_it_came_from() {
    let run = |program: &str, args: &[&str], rust_log: Option<&str>| -> Finished {
        let mut cmd = Command::new(bin_path(program));
        cmd.args(args).env_remove("RUST_LOG");
        if let Some(value) = rust_log {
            cmd.env("RUST_LOG", value);
        }
        cmd.output().unwrap().into()
    };
    let out = run(
        "sync-engine",
        &["connectors", "--log-level", "info,x=loud"],
        None,
    );
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("--log-level"), "{}", out.stderr);
    for program in ["sync-engine", "dest-postgres"] {
        let args: &[&str] = if program == "sync-engine" {
            &["connectors"]
        } else {
            &["spec"]
        };
        let out = run(program, args, Some("x=loud"));
        assert_eq!(out.code, Some(2), "{program}: {}", out.stderr);
        assert!(out.stderr.contains("RUST_LOG"), "{program}: {}", out.stderr);
        assert!(
            run(program, args, Some("debug")).code == Some(0),
            "{program}"
        );
    }
}

/// When a process started (field 22 of /proc/PID/stat), to tell a reused pid apart.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[test]
fn a_second_ctrl_c_kills_at_once_whatever_the_run_waits_for() {
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let _lock = lock_table(&db);
    let child = sync_command(
        &db,
        &dir.path().join("s.json"),
        json!({"records": 300000, "state_every": 1000}),
        &["--connector-timeout", "600"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let engine = child.id();
    let dest = child_running_waited(engine, "dest-postgres", "write");
    std::thread::sleep(Duration::from_millis(800));
    signal(engine, libc::SIGINT);
    std::thread::sleep(Duration::from_millis(800));
    let second = Instant::now();
    signal(engine, libc::SIGINT);
    let out = finished(child);
    assert!(
        second.elapsed() < Duration::from_secs(5),
        "the second Ctrl-C took {:?}",
        second.elapsed()
    );
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    let e = out.of_type("eof").pop().unwrap();
    assert_eq!(
        (
            e["status"].as_str(),
            e["reason"].as_str(),
            e["has_more"].as_bool()
        ),
        (Some("failed"), Some("aborted"), Some(true))
    );
    std::thread::sleep(Duration::from_millis(200));
    let alive = std::fs::read_to_string(format!("/proc/{dest}/stat"))
        .map(|s| !s.contains(") Z"))
        .unwrap_or(false);
    assert!(
        !alive,
        "the destination was killed with the engine's second signal"
    );
}

#[test]
fn stale_run_directories_of_dead_engines_are_removed() {
    let tmp = tempfile::tempdir().unwrap();
    // A pid that is certainly gone: a process that ran and was reaped.
    let dead = Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    let mut dead = dead;
    dead.wait().unwrap();
    let stale = tmp.path().join(format!("sync-engine-{dead_pid}-abc123"));
    std::fs::create_dir(&stale).unwrap();
    std::fs::write(
        stale.join("source-config.json"),
        r#"{"api_key":"sk_live_leftover"}"#,
    )
    .unwrap();
    let live = tmp
        .path()
        .join(format!("sync-engine-{}-def456", std::process::id()));
    std::fs::create_dir(&live).unwrap();
    let unrelated = tmp.path().join("sync-engine-notes");
    std::fs::create_dir(&unrelated).unwrap();
    let out = Bin::new("sync-engine")
        .arg("connectors")
        .env("TMPDIR", tmp.path())
        .run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(!stale.exists(), "the dead engine's directory is removed");
    assert!(live.exists(), "a running engine's directory stays");
    assert!(unrelated.exists());
}

#[test]
fn a_config_value_that_is_neither_json_nor_a_file_is_never_echoed() {
    for value in ["sk_test_51Secret", "postgres://u:hunter2@h/db", "hunter2"] {
        let out = Bin::new("sync-engine")
            .args([
                "sync",
                "--source-config",
                value,
                "--postgres-url",
                "postgres://h/db",
            ])
            .run();
        assert_eq!(out.code, Some(2), "{}", out.stderr);
        assert!(out.stderr.contains("--source-config"), "{}", out.stderr);
        assert!(
            !out.stderr.contains("Secret") && !out.stderr.contains("hunter2"),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn a_config_update_from_a_connector_is_saved_and_applied_next_run() {
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("s.json");
    let config = json!({"records": 10, "state_every": 5, "issue_token": "tok_issued"});
    let first: Finished = sync_command(&db, &state, config.clone(), &[])
        .output()
        .unwrap()
        .into();
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(saved["control"]["source"]["issued_token"], "tok_issued");
    assert!(
        !first.stderr.contains("tok_issued"),
        "a secret: {}",
        first.stderr
    );
    // The next run gets the token without being told (and reads from scratch for the test).
    let second: Finished = sync_command(
        &db,
        &state,
        json!({"records": 12, "state_every": 5, "issue_token": "tok_issued"}),
        &[],
    )
    .output()
    .unwrap()
    .into();
    assert_eq!(second.code, Some(0), "{}", second.stderr);
    let tokens: Vec<Option<String>> = db
        .client()
        .query("SELECT _raw_data->>'issued_token' FROM ex.items WHERE id IN ('items_10', 'items_11') ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        tokens,
        vec![Some("tok_issued".into()), Some("tok_issued".into())]
    );
}

#[test]
fn the_summary_says_when_nothing_was_saved() {
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("s.json");
    let out: Finished = sync_command(&db, &state, json!({"records": 10, "fail_after": 0}), &[])
        .output()
        .unwrap()
        .into();
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("no state was saved"), "{}", out.stderr);
    assert!(!out.stderr.contains("state saved in"), "{}", out.stderr);
    assert!(!state.exists());
    let e = out.of_type("eof").pop().unwrap();
    assert_eq!(
        (e["status"].as_str(), e["has_more"].as_bool()),
        (Some("failed"), Some(true))
    );
}

//! The engine with real connector processes misbehaving on purpose (example-connector), a real
//! Postgres destination, and third-party connectors written in Python.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use test_support::{Bin, Finished, TestDb, bin_path};

fn command_map() -> String {
    json!({"source-example": bin_path("example-connector").display().to_string()}).to_string()
}

/// `sync-engine sync` of the example source into Postgres, with a state file.
fn sync(db: &TestDb, state: &Path, source_config: Value, extra: &[&str]) -> Finished {
    Bin::new("sync-engine")
        .args([
            "sync",
            "--source",
            "example",
            "--source-config",
            &source_config.to_string(),
        ])
        .args([
            "--postgres-url",
            db.url(),
            "--schema",
            "ex",
            "--state-file",
            state.to_str().unwrap(),
        ])
        .args([
            "--connectors-from-command-map",
            &command_map(),
            "--output",
            "ndjson",
        ])
        .args(extra)
        .run()
}

fn eof(out: &Finished) -> Value {
    out.of_type("eof")
        .pop()
        .unwrap_or_else(|| panic!("no eof; stderr: {}", out.stderr))
}

fn rows(db: &TestDb, table: &str) -> i64 {
    db.count(&format!("ex.{table}"))
}

fn saved_next(state: &Path, stream: &str) -> Option<u64> {
    let text = std::fs::read_to_string(state).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    v["state"]["source"]["streams"][stream]["next"].as_u64()
}

#[test]
fn a_complete_sync_commits_everything_and_a_rerun_continues() {
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let out = sync(
        &db,
        &state,
        json!({"streams": ["a", "b"], "records": 500, "state_every": 50}),
        &[],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let e = eof(&out);
    assert_eq!(
        (
            e["status"].as_str(),
            e["reason"].as_str(),
            e["has_more"].as_bool()
        ),
        (Some("succeeded"), Some("complete"), Some(false))
    );
    assert_eq!(e["run_progress"]["streams"]["a"]["committed_count"], 500);
    assert_eq!((rows(&db, "a"), rows(&db, "b")), (500, 500));
    assert!(out.stderr.contains("state saved in file"), "{}", out.stderr);
    assert_eq!(saved_next(&state, "a"), Some(500));
    let again = sync(
        &db,
        &state,
        json!({"streams": ["a", "b"], "records": 700, "state_every": 50}),
        &[],
    );
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert_eq!(
        eof(&again)["run_progress"]["derived"]["total_record_count"],
        400,
        "only the new records are read"
    );
    assert_eq!(rows(&db, "a"), 700);
}

#[test]
fn a_crashing_source_is_named_with_its_status_and_stderr_and_the_state_stays_valid() {
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let out = sync(
        &db,
        &state,
        json!({"records": 1000, "state_every": 100, "fail_after": 450}),
        &[],
    );
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("source-example exited with status 1"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("failing on purpose"),
        "the tail of its stderr is shown: {}",
        out.stderr
    );
    assert_eq!(eof(&out)["status"], "failed");
    // Every state saved is backed by committed rows, and the rerun finishes the job.
    let next = saved_next(&state, "items").expect("states before the crash were saved");
    assert_eq!(next, 400);
    assert!(rows(&db, "items") >= next as i64);
    let rerun = sync(
        &db,
        &state,
        json!({"records": 1000, "state_every": 100}),
        &[],
    );
    assert_eq!(rerun.code, Some(0), "{}", rerun.stderr);
    assert_eq!(rows(&db, "items"), 1000);
}

#[test]
fn a_hung_source_is_stopped_after_the_timeout() {
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = sync(
        &db,
        &dir.path().join("s.json"),
        json!({"records": 100, "state_every": 10, "hang_after": 30}),
        &["--connector-timeout", "2"],
    );
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("source-example wrote nothing for 2s while the engine waited for it"),
        "{}",
        out.stderr
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(
        rows(&db, "items"),
        30,
        "what came before the hang is committed"
    );
}

#[test]
fn a_source_printing_garbage_fails_naming_the_line() {
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let out = sync(
        &db,
        &dir.path().join("s.json"),
        json!({"records": 100, "state_every": 10, "garbage_after": 20}),
        &[],
    );
    assert_eq!(out.code, Some(1));
    // The garbage bypasses the connector's buffered writer, so its line number varies.
    assert!(
        out.stderr
            .contains("source-example printed an invalid line ")
            && out.stderr.contains("invalid JSON"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_time_limit_stops_gracefully_and_the_next_run_finishes() {
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let config = json!({"records": 400, "state_every": 5, "sleep_ms": 10});
    let started = Instant::now();
    let out = sync(&db, &state, config.clone(), &["--time-limit", "2"]);
    assert_eq!(out.code, Some(3), "a run cut short exits 3: {}", out.stderr);
    assert!(started.elapsed() < Duration::from_secs(15));
    let e = eof(&out);
    assert_eq!(
        (e["reason"].as_str(), e["has_more"].as_bool()),
        (Some("time_limit"), Some(true))
    );
    let saved = saved_next(&state, "items").expect("a state was saved");
    assert!(saved > 0 && saved < 400, "{saved}");
    assert_eq!(
        e["ending_state"]["source"]["streams"]["items"]["next"],
        saved
    );
    let rerun = sync(&db, &state, config, &[]);
    assert_eq!(rerun.code, Some(0), "{}", rerun.stderr);
    assert_eq!(rows(&db, "items"), 400);
}

#[test]
fn a_state_limit_stops_after_that_many_states() {
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let out = sync(
        &db,
        &state,
        json!({"records": 1000, "state_every": 10}),
        &["--state-limit", "3"],
    );
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    assert_eq!(eof(&out)["reason"], "state_limit");
    let saved = saved_next(&state, "items").expect("a state was saved");
    assert!((30..1000).contains(&saved), "{saved}");
}

#[test]
fn ctrl_c_stops_gracefully_and_saves_what_is_committed() {
    use std::os::unix::process::CommandExt;
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    // A terminal's Ctrl-C goes to the whole foreground process group: the engine's own group.
    let child = Command::new(bin_path("sync-engine"))
        .args([
            "sync",
            "--source",
            "example",
            "--source-config",
            r#"{"records":100000,"state_every":10,"sleep_ms":2}"#,
        ])
        .args([
            "--postgres-url",
            db.url(),
            "--schema",
            "ex",
            "--state-file",
            state.to_str().unwrap(),
        ])
        .args([
            "--connectors-from-command-map",
            &command_map(),
            "--output",
            "ndjson",
        ])
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once something is committed, however long the start took.
    let waited = Instant::now();
    while saved_next(&state, "items").is_none() {
        assert!(
            waited.elapsed() < Duration::from_secs(60),
            "no state saved within a minute"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    unsafe {
        libc_kill(-(child.id() as i32), 2);
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        !stderr.contains("killed by a signal"),
        "the destination was not hit by the Ctrl-C: {stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(r#""reason":"aborted""#), "{stdout}");
    let saved = saved_next(&state, "items").expect("a state was saved");
    assert!(
        rows(&db, "items") >= saved as i64,
        "every saved state is backed by committed rows"
    );
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, signal: i32) -> i32;
}

fn python_connector(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!("#!/usr/bin/env python3\nimport json, sys, time\n{body}"),
    )
    .unwrap();
    make_executable(&path);
    path
}

#[test]
fn a_stream_error_fails_the_run() {
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let source = python_connector(
        dir.path(),
        "source-broken",
        r#"
if sys.argv[1] == "spec":
    print(json.dumps({"type": "spec", "spec": {"config": {"type": "object"}}}))
elif sys.argv[1] == "discover":
    print(json.dumps({"type": "catalog", "catalog": {"streams": [{"name": "things", "primary_key": [["id"]]}]}}))
elif sys.argv[1] == "read":
    print(json.dumps({"type": "record", "record": {"stream": "things", "data": {"id": "1"}}}))
    print(json.dumps({"type": "stream_status", "stream_status": {"stream": "things", "status": "error", "error": "the API said no"}}))
"#,
    );
    let map = json!({"source-broken": source.display().to_string()}).to_string();
    let out = Bin::new("sync-engine")
        .args([
            "sync",
            "--source",
            "broken",
            "--source-config",
            "{}",
            "--postgres-url",
            db.url(),
            "--schema",
            "b",
        ])
        .args([
            "--connectors-from-command-map",
            &map,
            "--state-file",
            dir.path().join("s.json").to_str().unwrap(),
            "--output",
            "ndjson",
        ])
        .run();
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let e = eof(&out);
    // The stream did not finish: a rerun has work to do.
    assert_eq!(
        (
            e["status"].as_str(),
            e["reason"].as_str(),
            e["has_more"].as_bool()
        ),
        (Some("failed"), Some("error"), Some(true))
    );
    assert!(out.stderr.contains("the API said no"), "{}", out.stderr);
}

#[test]
fn a_destination_that_hangs_after_its_input_ends_is_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let dest = python_connector(
        dir.path(),
        "destination-stuck",
        r#"
if sys.argv[1] == "spec":
    print(json.dumps({"type": "spec", "spec": {"config": {"type": "object"}}}))
elif sys.argv[1] == "write":
    for line in sys.stdin:
        pass
    time.sleep(3600)
"#,
    );
    let map = json!({"source-example": bin_path("example-connector").display().to_string(), "destination-stuck": dest.display().to_string()}).to_string();
    let started = Instant::now();
    let out = Bin::new("sync-engine")
        .args([
            "sync",
            "--source",
            "example",
            "--source-config",
            r#"{"records":5}"#,
            "--destination",
            "stuck",
            "--destination-config",
            "{}",
        ])
        .args([
            "--connectors-from-command-map",
            &map,
            "--state-file",
            dir.path().join("s.json").to_str().unwrap(),
            "--connector-timeout",
            "2",
            "--output",
            "ndjson",
        ])
        .run();
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("destination-stuck neither wrote nor exited for 2s after its input ended"),
        "{}",
        out.stderr
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn third_party_connectors_run_from_path_and_from_the_command_map() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bin/source-python-example");
    let bin_dir = script.parent().unwrap().canonicalize().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for via_map in [false, true] {
        let db = TestDb::new();
        let dir = tempfile::tempdir().unwrap();
        let mut bin = Bin::new("sync-engine")
            .args([
                "sync",
                "--source",
                "python-example",
                "--source-config",
                r#"{"count":42,"every":5}"#,
            ])
            .args([
                "--postgres-url",
                db.url(),
                "--schema",
                "py",
                "--state-file",
                dir.path().join("s.json").to_str().unwrap(),
                "--output",
                "ndjson",
            ]);
        bin = if via_map {
            let map = json!({"source-python-example": format!("python3 {}", script.display())})
                .to_string();
            bin.args([
                "--connectors-from-command-map",
                &map,
                "--no-connectors-from-path",
            ])
        } else {
            bin.env("PATH", &path)
        };
        let out = bin.run();
        assert_eq!(out.code, Some(0), "via map {via_map}: {}", out.stderr);
        let n: i64 = db
            .client()
            .query_one("SELECT count(*) FROM py.numbers WHERE square = n * n", &[])
            .unwrap()
            .get(0);
        assert_eq!(n, 42);
    }
}

#[test]
fn a_destination_that_miscounts_fails_loudly() {
    let dir = tempfile::tempdir().unwrap();
    // Acknowledges every state claiming one record fewer than it received.
    let liar = dir.path().join("dest-liar");
    std::fs::write(
        &liar,
        r#"#!/usr/bin/env python3
import json, sys
if sys.argv[1] == "spec":
    print(json.dumps({"type": "spec", "spec": {"config": {"type": "object"}}}))
elif sys.argv[1] == "write":
    n = 0
    for line in sys.stdin:
        m = json.loads(line)
        if m["type"] == "record": n += 1
        if m["type"] == "source_state":
            m["source_state"]["destination_stats"] = {"committed": max(n - 1, 0)}
            n = 0
            print(json.dumps(m), flush=True)
"#,
    )
    .unwrap();
    make_executable(&liar);
    let map = json!({"source-example": bin_path("example-connector").display().to_string(), "destination-liar": liar.display().to_string()}).to_string();
    let out = Bin::new("sync-engine")
        .args([
            "sync",
            "--source",
            "example",
            "--source-config",
            r#"{"records":20,"state_every":10}"#,
            "--destination",
            "liar",
            "--destination-config",
            "{}",
        ])
        .args([
            "--connectors-from-command-map",
            &map,
            "--state-file",
            dir.path().join("s.json").to_str().unwrap(),
            "--output",
            "ndjson",
        ])
        .run();
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "reported 9 records committed or rejected for stream \"items\", but 10 were sent"
        ),
        "{}",
        out.stderr
    );
    assert!(
        !dir.path().join("s.json").exists(),
        "a miscounted state is never saved"
    );
}

fn make_executable(path: &PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn bad_invocations_exit_2_with_a_clear_message() {
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("s.json");
    let out = sync(&db, &state, json!({"records": "many"}), &[]);
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.contains("source-example config") && out.stderr.contains("records"),
        "{}",
        out.stderr
    );

    let out = sync(&db, &state, json!({}), &["--streams", "items,nope"]);
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr
            .contains("unknown stream(s) nope; the source offers: items"),
        "{}",
        out.stderr
    );

    let out = Bin::new("sync-engine")
        .args([
            "sync",
            "--source",
            "missing",
            "--source-config",
            "{}",
            "--postgres-url",
            db.url(),
            "--no-connectors-from-path",
        ])
        .run();
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.contains("unknown source connector \"missing\"")
            && out.stderr.contains("source-missing"),
        "{}",
        out.stderr
    );

    let out = Bin::new("sync-engine")
        .env_remove_all_stripe()
        .args(["sync", "--postgres-url", db.url()])
        .run();
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("STRIPE_API_KEY"), "{}", out.stderr);
}

trait EnvRemove {
    fn env_remove_all_stripe(self) -> Self;
}

impl EnvRemove for Bin {
    fn env_remove_all_stripe(mut self) -> Self {
        self.command().env_remove("STRIPE_API_KEY");
        self
    }
}

#[test]
fn check_discover_setup_teardown_and_connectors() {
    let db = TestDb::new();
    let base = |sub: &str| {
        Bin::new("sync-engine")
            .args([
                sub,
                "--source",
                "example",
                "--source-config",
                r#"{"streams":["apples","pears"]}"#,
            ])
            .args([
                "--postgres-url",
                db.url(),
                "--schema",
                "fruit",
                "--connectors-from-command-map",
                &command_map(),
            ])
    };
    let check = base("check").run();
    assert_eq!(check.code, Some(0), "{}", check.stderr);
    assert!(
        check.stdout.contains("source/example: ok")
            && check.stdout.contains("destination/postgres: ok"),
        "{}",
        check.stdout
    );

    let discover = base("discover").args(["--streams", "pears"]).run();
    assert_eq!(discover.code, Some(0), "{}", discover.stderr);
    let streams: Vec<String> = discover.of_type("catalog")[0]["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(streams, vec!["pears"]);

    let setup = base("setup").run();
    assert_eq!(setup.code, Some(0), "{}", setup.stderr);
    let tables: i64 = db
        .client()
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'fruit' AND tablename NOT IN ('_rejected_records', '_tombstones', '_sync_tables', '_listings', '_listing_seen')",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(tables, 2);

    let teardown = base("teardown").run();
    assert_eq!(teardown.code, Some(0), "{}", teardown.stderr);
    let schemas: i64 = db
        .client()
        .query_one(
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'fruit'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(schemas, 0);

    let bad = Bin::new("sync-engine")
        .args([
            "check",
            "--source",
            "example",
            "--source-config",
            r#"{"check_fails":true}"#,
            "--postgres-url",
            db.url(),
            "--connectors-from-command-map",
            &command_map(),
        ])
        .run();
    assert_eq!(bad.code, Some(1));
    assert!(
        bad.stdout.contains("source/example: FAILED"),
        "{}",
        bad.stdout
    );

    let listed = Bin::new("sync-engine").arg("connectors").run();
    assert_eq!(listed.code, Some(0));
    assert!(
        listed
            .stdout
            .lines()
            .any(|l| l.contains("stripe") && l.contains("bundled with the engine")),
        "{}",
        listed.stdout
    );
    assert!(
        listed
            .stdout
            .lines()
            .any(|l| l.contains("postgres") && l.contains("bundled with the engine")),
        "{}",
        listed.stdout
    );
}

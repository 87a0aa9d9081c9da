//! The reference's (stripe/sync-engine) command line and message envelope, as its docs write
//! them, through the real binaries against the Stripe simulator and a real Postgres: each
//! spelling gives the same rows as ours, and every line the engine writes says who emitted it.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};
use stripe_fake::{Config, FakeStripe, Scope};
use test_support::{Finished, TestDb, bin_path, lines_of};

const KEY: &str = "sk_test_fake";

fn fake() -> FakeStripe {
    FakeStripe::start(Config {
        seed: 26,
        scale: 0.0,
        objects: vec![("customers".into(), 40), ("products".into(), 12)],
        ..Default::default()
    })
    .expect("the simulator starts")
}

/// `sync-engine` with no Stripe key, Postgres URL or log filter from this environment.
fn engine() -> Command {
    let mut cmd = Command::new(bin_path("sync-engine"));
    cmd.env_remove("STRIPE_API_KEY")
        .env_remove("DATABASE_URL")
        .env_remove("POSTGRES_URL")
        .env_remove("PORT")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    cmd
}

fn run(cmd: &mut Command) -> Finished {
    cmd.output().unwrap().into()
}

fn succeeded(run: &Finished) {
    assert_eq!(
        run.code,
        Some(0),
        "stdout: {}\nstderr: {}",
        run.stdout,
        run.stderr
    );
}

fn live(fake: &FakeStripe, stream: &str) -> usize {
    fake.objects(Scope::test(None), stream).unwrap().len()
}

/// Every table of `schema` with the ids it holds, sorted.
fn rows(db: &TestDb, schema: &str) -> BTreeMap<String, Vec<String>> {
    let mut client = db.client();
    let tables: Vec<String> = client
        .query(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = $1 AND table_name NOT LIKE '\\_%'",
            &[&schema],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    tables
        .into_iter()
        .map(|table| {
            let ids = client
                .query(
                    &format!("SELECT id::text FROM \"{schema}\".\"{table}\" ORDER BY id"),
                    &[],
                )
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
            (table, ids)
        })
        .collect()
}

fn has_table(db: &TestDb, schema: &str, table: &str) -> bool {
    db.count(&format!(
        "information_schema.tables WHERE table_schema = '{schema}' AND table_name = '{table}'"
    )) > 0
}

/// The records one run read of a stream (its eof's progress).
fn records_read(run: &Finished, stream: &str) -> u64 {
    let eof = run.of_type("eof").pop().expect("an eof");
    eof["run_progress"]["streams"][stream]["record_count"]
        .as_u64()
        .unwrap_or_else(|| panic!("no count of {stream} in {eof}"))
}

#[test]
fn the_reference_quick_start_syncs_every_stream_as_our_spelling_does() {
    let fake = fake();
    let (reference, ours) = (TestDb::new(), TestDb::new());
    // The quick start of the reference's docs, with the simulator's base URL added.
    let quick = run(engine().args([
        "sync",
        "--stripe-api-key",
        KEY,
        "--database-url",
        reference.url(),
        "--schema",
        "stripe",
        "--stripe-base-url",
        &fake.base_url(),
    ]));
    succeeded(&quick);
    let mine = run(engine().args([
        "sync",
        "--stripe-api-key",
        KEY,
        "--postgres-url",
        ours.url(),
        "--schema",
        "stripe",
        "--stripe-base-url",
        &fake.base_url(),
    ]));
    succeeded(&mine);
    let (theirs, mine) = (rows(&reference, "stripe"), rows(&ours, "stripe"));
    assert!(theirs.len() > 50, "every stream has its table: {theirs:?}");
    assert_eq!(theirs, mine);
    assert_eq!(theirs["customers"].len(), live(&fake, "customers"));
}

#[test]
fn the_reference_flag_spellings_and_postgres_url_mean_what_ours_do() {
    let fake = fake();
    let db = TestDb::new();
    // POSTGRES_URL, --postgres-schema and --stripe-rate-limit, as the reference spells them.
    let reference = run(engine()
        .args(["sync", "--stripe-api-key", KEY])
        .args(["--stripe-base-url", &fake.base_url()])
        .args(["--postgres-schema", "theirs", "--stripe-rate-limit", "50"])
        .args(["--streams", "customers,products", "--output", "ndjson"])
        .env("POSTGRES_URL", db.url()));
    succeeded(&reference);
    let ours = run(engine()
        .args(["sync", "--stripe-api-key", KEY])
        .args(["--stripe-base-url", &fake.base_url()])
        .args(["--postgres-url", db.url(), "--schema", "ours"])
        .args(["--source-config", r#"{"rate_limit": 50}"#])
        .args(["--streams", "customers,products", "--output", "ndjson"]));
    succeeded(&ours);
    assert_eq!(rows(&db, "theirs"), rows(&db, "ours"));
    assert_eq!(
        rows(&db, "theirs")["customers"].len(),
        live(&fake, "customers")
    );

    // The rate limit reaches the source's rate_limit: one it refuses is named.
    let refused = run(engine()
        .args(["sync", "--stripe-api-key", KEY, "--stripe-rate-limit", "0"])
        .args(["--postgres-url", db.url()]));
    assert_eq!(refused.code, Some(2), "{}", refused.stderr);
    assert!(refused.stderr.contains("rate_limit"), "{}", refused.stderr);

    // Both URL variables, differing, are an error naming both; the same URL agrees.
    let both = run(engine()
        .args(["check", "--stripe-api-key", KEY])
        .args(["--stripe-base-url", &fake.base_url()])
        .env("POSTGRES_URL", db.url())
        .env(
            "DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/elsewhere",
        ));
    assert_eq!(both.code, Some(2), "{}", both.stderr);
    assert!(
        both.stderr.contains("POSTGRES_URL") && both.stderr.contains("DATABASE_URL"),
        "{}",
        both.stderr
    );
    let same = run(engine()
        .args(["check", "--stripe-api-key", KEY])
        .args(["--stripe-base-url", &fake.base_url()])
        .env("POSTGRES_URL", db.url())
        .env("DATABASE_URL", db.url()));
    succeeded(&same);
    // An explicit URL beats both variables.
    let explicit = run(engine()
        .args(["check", "--stripe-api-key", KEY])
        .args(["--stripe-base-url", &fake.base_url()])
        .args(["--database-url", db.url()])
        .env("POSTGRES_URL", "postgres://nobody@127.0.0.1:1/nowhere")
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:2/nowhere"));
    succeeded(&explicit);
}

#[test]
fn config_takes_inline_json_in_the_reference_shape_and_in_ours() {
    let fake = fake();
    let db = TestDb::new();
    // The reference's inline form: each connector's config beside its name, `connection_string`
    // for the URL.
    let reference = json!({
        "source": {"name": "stripe", "api_key": KEY, "base_url": fake.base_url()},
        "destination": {"name": "postgres", "connection_string": db.url(), "schema": "inline_ref"},
        "streams": ["customers"]
    });
    succeeded(&run(engine().args([
        "sync",
        "--config",
        &reference.to_string(),
    ])));
    let ours = json!({
        "source": {"name": "stripe", "config": {"api_key": KEY, "base_url": fake.base_url()}},
        "destination": {"name": "postgres", "config": {"url": db.url(), "schema": "inline_ours"}},
        "streams": ["customers"]
    });
    // Leading white space too: the first character that is not a space decides.
    succeeded(&run(engine().args([
        "sync",
        "--config",
        &format!("  {ours}"),
    ])));
    // The same document in a file, named as `@PATH` (the reference's way of naming files).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sync.json");
    let mut in_file = reference.clone();
    in_file["destination"]["schema"] = json!("at_file");
    std::fs::write(&file, in_file.to_string()).unwrap();
    succeeded(&run(engine()
        .args(["sync", "--config"])
        .arg(format!("@{}", file.display()))));
    assert_eq!(rows(&db, "inline_ref"), rows(&db, "at_file"));
    assert_eq!(rows(&db, "inline_ref"), rows(&db, "inline_ours"));
    assert_eq!(
        rows(&db, "inline_ref")["customers"].len(),
        live(&fake, "customers")
    );

    // A key given both ways at once is refused naming both.
    let twice = json!({
        "source": {"name": "stripe", "api_key": KEY, "config": {"api_key": "sk_test_other"}},
        "destination": {"name": "postgres", "url": db.url()}
    });
    let refused = run(engine().args(["sync", "--config", &twice.to_string()]));
    assert_eq!(refused.code, Some(2), "{}", refused.stderr);
    assert!(refused.stderr.contains("api_key"), "{}", refused.stderr);
    assert!(!refused.stderr.contains("sk_test"), "{}", refused.stderr);
    // Inline JSON that does not parse names the flag, never its text.
    let broken = run(engine().args(["sync", "--config", r#"{"source": {"api_key": "sk_test_x""#]));
    assert_eq!(broken.code, Some(2), "{}", broken.stderr);
    assert!(broken.stderr.contains("--config"), "{}", broken.stderr);
    assert!(!broken.stderr.contains("sk_test_x"), "{}", broken.stderr);
}

#[test]
fn no_state_neither_reads_nor_saves_a_checkpoint() {
    let fake = fake();
    let db = TestDb::new();
    let sync = |extra: &[&str]| {
        run(engine()
            .args(["sync", "--stripe-api-key", KEY])
            .args(["--stripe-base-url", &fake.base_url()])
            .args(["--postgres-url", db.url(), "--streams", "customers"])
            .args(["--output", "ndjson"])
            .args(extra))
    };
    for _ in 0..2 {
        let once = sync(&["--no-state"]);
        succeeded(&once);
        // Each run starts from scratch: every customer is read again.
        assert_eq!(
            records_read(&once, "customers"),
            live(&fake, "customers") as u64
        );
        assert!(
            !has_table(&db, "stripe", "_sync_state"),
            "a state was saved"
        );
    }
    assert_eq!(
        db.count("stripe.customers"),
        live(&fake, "customers") as i64
    );
    // With a checkpoint, a second run has nothing left to read.
    succeeded(&sync(&[]));
    assert!(has_table(&db, "stripe", "_sync_state"));
    let again = sync(&[]);
    succeeded(&again);
    assert_eq!(records_read(&again, "customers"), 0);
    // Flags that would mean nothing beside it are refused, naming the pair.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("state.json");
    for extra in [
        vec!["--reset"],
        vec!["--state-file", file.to_str().unwrap()],
        vec!["--sync-id", "nightly"],
    ] {
        let mut args = vec!["--no-state"];
        args.extend(&extra);
        let refused = sync(&args);
        assert_eq!(refused.code, Some(2), "{extra:?}: {}", refused.stderr);
        assert!(
            refused.stderr.contains("--no-state") && refused.stderr.contains(extra[0]),
            "{extra:?}: {}",
            refused.stderr
        );
    }
    assert!(!file.exists());
}

#[test]
fn plain_shows_progress_as_text_on_stderr() {
    let fake = fake();
    let db = TestDb::new();
    let plain = run(engine()
        .args(["sync", "--plain", "--stripe-api-key", KEY])
        .args(["--stripe-base-url", &fake.base_url()])
        .args([
            "--postgres-url",
            db.url(),
            "--streams",
            "customers,products",
        ]));
    succeeded(&plain);
    assert_eq!(plain.stdout, "", "nothing on stdout");
    let line = plain
        .stderr
        .lines()
        .find(|l| l.starts_with("Sync complete 2 streams"))
        .unwrap_or_else(|| panic!("no final progress line: {}", plain.stderr));
    assert!(line.contains("2 completed"), "{line}");
    assert!(
        line.contains(&format!(
            "{} records",
            live(&fake, "customers") + live(&fake, "products")
        )),
        "{line}"
    );
    // --plain and ndjson output contradict each other.
    let both = run(engine().args(["sync", "--plain", "--output", "ndjson"]));
    assert_eq!(both.code, Some(2), "{}", both.stderr);
    assert!(both.stderr.contains("--plain"), "{}", both.stderr);
}

#[test]
fn websocket_is_refused_naming_what_to_use_instead() {
    let db = TestDb::new();
    let refused = run(engine()
        .args(["sync", "--websocket", "--stripe-api-key", KEY])
        .args(["--postgres-url", db.url()]));
    assert_eq!(refused.code, Some(2), "{}", refused.stderr);
    for part in ["--websocket", "--live", "webhook_listen"] {
        assert!(refused.stderr.contains(part), "{part}: {}", refused.stderr);
    }
}

#[test]
fn the_reference_connector_flags_are_taken() {
    let db = TestDb::new();
    // --connectors-from-npm: the reference's npm lookup, so PyPI is not tried.
    let npm = run(engine()
        .args(["check", "--source", "nowhere", "--source-config", "{}"])
        .args(["--postgres-url", db.url()])
        .args(["--connectors-from-npm", "--no-connectors-from-path"]));
    assert_ne!(npm.code, Some(0), "{}", npm.stderr);
    assert!(
        npm.stderr.contains("@stripe/sync-source-nowhere"),
        "{}",
        npm.stderr
    );
    assert!(
        !npm.stderr.contains("airbyte-source-nowhere"),
        "{}",
        npm.stderr
    );
    assert!(
        !npm.stderr.contains("--connectors-from-registry"),
        "{}",
        npm.stderr
    );
    // --connectors-from-command-map @FILE, as the reference's help writes it, with
    // --no-connectors-from-path.
    let dir = tempfile::tempdir().unwrap();
    let map = dir.path().join("connectors.json");
    let command = bin_path("example-connector").display().to_string();
    std::fs::write(&map, json!({"source-example": command}).to_string()).unwrap();
    let checked = run(engine()
        .args(["check", "--source", "example", "--source-config", "{}"])
        .args(["--postgres-url", db.url(), "--no-connectors-from-path"])
        .arg("--connectors-from-command-map")
        .arg(format!("@{}", map.display())));
    succeeded(&checked);
    assert!(
        checked.stdout.contains("source/example: ok"),
        "{}",
        checked.stdout
    );
}

/// A `sync-engine` serving on a free port, killed when dropped.
struct Serving {
    child: Child,
    url: String,
}

impl Serving {
    fn start(args: &[&str]) -> Serving {
        let mut cmd = engine();
        cmd.args(args);
        Serving::spawn(cmd, &args.join(" "))
    }

    fn spawn(mut cmd: Command, what: &str) -> Serving {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let url = first
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("{what} printed {first:?}"))
            .to_owned();
        Serving { child, url }
    }

    fn post(&self, path: &str, body: &Value) -> Vec<Value> {
        let out = Command::new("curl")
            .args(["-sS", "--fail-with-body", "-X", "POST"])
            .args([
                "-H",
                "content-type: application/json",
                "--data-binary",
                "@-",
            ])
            .arg(format!("{}{path}", self.url))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin
                    .take()
                    .unwrap()
                    .write_all(body.to_string().as_bytes())?;
                c.wait_with_output()
            })
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{path}: {text}");
        lines_of(&text)
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn port_without_a_subcommand_serves() {
    let serving = Serving::start(&["--port", "0"]);
    let out = Command::new("curl")
        .args(["-sS", &format!("{}/health", serving.url)])
        .output()
        .unwrap();
    let health: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(health["ok"], true, "{health}");
    drop(serving);
    // PORT alone serves too (as `serve` reads it); with neither, the help, as before.
    let mut by_env = engine();
    by_env.env("PORT", "0");
    let serving = Serving::spawn(by_env, "PORT=0");
    drop(serving);
    let bare = run(engine().env("SYNC_ENGINE_API_TOKEN", "not-a-port"));
    assert_eq!(bare.code, Some(2), "{}", bare.stderr);
    assert!(bare.stderr.contains("Usage"), "{}", bare.stderr);
}

/// `[type, _emitted_by]` of each line, as the reference's `jq '[.type, ._emitted_by]'` shows
/// them; every line must carry both envelope fields, `_ts` an RFC 3339 time.
fn emitters(lines: &[Value]) -> Vec<(String, String)> {
    lines
        .iter()
        .map(|line| {
            let ts = line["_ts"]
                .as_str()
                .unwrap_or_else(|| panic!("no _ts: {line}"));
            assert!(
                ts.len() >= 20 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T',
                "_ts is not an RFC 3339 UTC time: {line}"
            );
            let by = line["_emitted_by"]
                .as_str()
                .unwrap_or_else(|| panic!("no _emitted_by: {line}"));
            (line["type"].as_str().unwrap().to_owned(), by.to_owned())
        })
        .collect()
}

fn emitter_of(pairs: &[(String, String)], kind: &str) -> Vec<String> {
    let mut found: Vec<String> = pairs
        .iter()
        .filter(|(t, _)| t == kind)
        .map(|(_, by)| by.clone())
        .collect();
    found.dedup();
    found
}

#[test]
fn every_line_of_an_ndjson_sync_says_who_emitted_it() {
    let fake = fake();
    let db = TestDb::new();
    let sync = run(engine()
        .args(["sync", "--stripe-api-key", KEY, "--output", "ndjson"])
        .args(["--stripe-base-url", &fake.base_url()])
        .args([
            "--postgres-url",
            db.url(),
            "--streams",
            "customers,products",
        ]));
    succeeded(&sync);
    let pairs = emitters(&sync.messages());
    assert_eq!(
        emitter_of(&pairs, "stream_status"),
        ["source/stripe"],
        "{pairs:?}"
    );
    assert_eq!(
        emitter_of(&pairs, "source_state"),
        ["destination/postgres"],
        "{pairs:?}"
    );
    assert_eq!(emitter_of(&pairs, "progress"), ["engine"], "{pairs:?}");
    assert_eq!(
        pairs.last().unwrap(),
        &("eof".to_owned(), "engine".to_owned())
    );
    // Through a serve at --engine-url (the reference's flag), the serve's stamps come through.
    let serving = Serving::start(&["serve", "--port", "0"]);
    let remote = run(engine()
        .args(["sync", "--stripe-api-key", KEY, "--output", "ndjson"])
        .args([
            "--stripe-base-url",
            &fake.base_url(),
            "--engine-url",
            &serving.url,
        ])
        .args(["--postgres-url", db.url(), "--schema", "remote"])
        .args(["--streams", "customers,products"]));
    succeeded(&remote);
    let through = emitters(&remote.messages());
    for kind in ["stream_status", "source_state", "progress", "eof"] {
        assert_eq!(
            emitter_of(&through, kind),
            emitter_of(&pairs, kind),
            "{kind}: {through:?}"
        );
    }
    assert_eq!(rows(&db, "remote"), rows(&db, "stripe"));
}

#[test]
fn every_line_serve_answers_says_who_emitted_it() {
    let fake = fake();
    let db = TestDb::new();
    let serving = Serving::start(&["serve", "--port", "0"]);
    // The reference's example body of /pipeline_sync.
    let pipeline = json!({
        "source": {"type": "stripe", "stripe": {"api_key": KEY, "base_url": fake.base_url()}},
        "destination": {"type": "postgres", "postgres": {"url": db.url(), "schema": "stripe"}},
        "streams": [{"name": "customers"}]
    });
    let synced = serving.post(
        "/pipeline_sync",
        &json!({"pipeline": pipeline, "time_limit": 300}),
    );
    let pairs = emitters(&synced);
    let non_records: Vec<&(String, String)> = pairs.iter().filter(|(t, _)| t != "record").collect();
    for expected in [
        ("stream_status", "source/stripe"),
        ("progress", "engine"),
        ("source_state", "destination/postgres"),
        ("eof", "engine"),
    ] {
        assert!(
            non_records
                .iter()
                .any(|(t, by)| (t.as_str(), by.as_str()) == expected),
            "{expected:?} missing from {non_records:?}"
        );
    }
    let checked = emitters(&serving.post("/pipeline_check", &json!({"pipeline": pipeline})));
    assert_eq!(
        checked,
        [
            ("connection_status".to_owned(), "source/stripe".to_owned()),
            (
                "connection_status".to_owned(),
                "destination/postgres".to_owned()
            )
        ]
    );
    let discovered =
        emitters(&serving.post("/source_discover", &json!({"source": pipeline["source"]})));
    assert_eq!(emitter_of(&discovered, "catalog"), ["source/stripe"]);
    // pipeline_read: the source's lines, records included, then the engine's eof.
    let read = emitters(&serving.post("/pipeline_read", &json!({"pipeline": pipeline})));
    assert_eq!(emitter_of(&read, "record"), ["source/stripe"]);
    assert_eq!(
        read.last().unwrap(),
        &("eof".to_owned(), "engine".to_owned())
    );
}

#[test]
fn a_failed_sync_ends_with_an_eof_that_carries_its_error() {
    let fake = fake();
    let db = TestDb::new();
    // A source that fails after some records (the project's configurable test connector).
    let map = json!({"source-example": bin_path("example-connector").display().to_string()});
    let refused = run(engine()
        .args(["sync", "--source", "example"])
        .args([
            "--source-config",
            r#"{"records": 50, "state_every": 10, "fail_after": 25}"#,
        ])
        .args(["--postgres-url", db.url(), "--schema", "failing"])
        .args(["--connectors-from-command-map", &map.to_string()])
        .args(["--output", "ndjson"]));
    assert_eq!(refused.code, Some(1), "{}", refused.stderr);
    let lines = refused.messages();
    let eof = lines.last().expect("an eof");
    assert_eq!(eof["type"], "eof", "{eof}");
    assert_eq!(eof["eof"]["reason"], "error", "{eof}");
    let error = &eof["eof"]["error"];
    assert!(error["code"] == "connector_failed", "{eof}");
    let message = error["message"].as_str().unwrap_or("");
    assert!(!message.is_empty(), "{eof}");
    assert!(
        message.contains("example"),
        "the message names the connector: {eof}"
    );
    // A run that succeeds carries no error.
    let ok = run(engine()
        .args(["sync", "--stripe-api-key", KEY])
        .args(["--stripe-base-url", &fake.base_url()])
        .args(["--postgres-url", db.url(), "--streams", "customers"])
        .args(["--output", "ndjson"]));
    succeeded(&ok);
    let eof = ok.of_type("eof").pop().unwrap();
    assert!(eof.get("error").is_none(), "{eof}");
}

#[test]
fn global_flags_before_a_subcommand_still_work_and_serve_flags_there_are_refused() {
    // The engine's own flags (log level and format) may come before the subcommand, as always.
    let listed = run(engine().args(["--log-level", "warn", "--log-format", "json", "connectors"]));
    succeeded(&listed);
    assert!(listed.stdout.contains("stripe"), "{}", listed.stdout);
    // A serve flag there would be dropped by the subcommand: refused, naming it.
    let refused = run(engine().args(["--port", "0", "connectors"]));
    assert_eq!(refused.code, Some(2), "{}", refused.stderr);
    assert!(
        refused.stderr.contains("--port belongs to serving"),
        "{}",
        refused.stderr
    );
}

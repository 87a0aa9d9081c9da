//! `sync-engine serve` against hostile web input, over real HTTP (and raw TCP where a header
//! must be exactly as an attacker writes it): the login redirect stays on this site, pages of
//! other sites cannot drive or read a tokenless server, durations are bounded, the 429 names
//! the cap, the explorer's links survive stream names with reserved characters, and its SQL
//! page runs one read-only query only, and only behind a login or on loopback.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stripe_fake::{Config, FakeStripe};
use test_support::engine_serve::EngineServe as Serve;
use test_support::{Bin, TestDb, bin_path};

/// A response read off the wire.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

/// One HTTP/1.1 request written byte for byte (the Host, Origin and Content-Type headers
/// exactly as given), on a connection of its own.
fn raw(serve: &Serve, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let mut stream = TcpStream::connect(serve.address()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        request.push_str(&format!("Host: {}\r\n", serve.address()));
    }
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    stream.write_all(request.as_bytes()).unwrap();
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| {
        panic!(
            "{method} {path}: no answer ({text:?}); serve's log:\n{}",
            serve.log()
        )
    });
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{method} {path}: status line {head:?}"));
    Answer {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

fn example_map() -> String {
    let example = bin_path("example-connector").display().to_string();
    json!({"source-example": example, "destination-example": example}).to_string()
}

/// A pipeline of the example connectors (no Stripe, no Postgres).
fn example_pipeline(source: Value) -> Value {
    json!({"source": {"type": "example", "example": source}, "destination": {"type": "example", "example": {}}})
}

// ---- 5: the login form's `next` stays on this site -------------------------------------

/// `next` values (as they appear in a URL) that browsers take to another host: tab, CR and LF
/// are dropped inside URLs, `\` is read as `/`, and a second decoding must not make one either.
const ELSEWHERE: &[&str] = &[
    "/%09/evil.example",
    "/%0A/evil.example",
    "/%0D/evil.example",
    "/%5C/evil.example",
    "/%5Cevil.example",
    "%2F%2Fevil.example",
    "%09//evil.example",
    "/%20/evil.example",
    "/%2509/evil.example",
    "/%252F/evil.example",
    "/%255Cevil.example",
    "https://evil.example",
    "//evil.example",
];

#[test]
fn the_login_form_sends_the_browser_only_to_a_path_of_this_site() {
    let open = Serve::start(&[]);
    let guarded = Serve::start(&["--api-token", "next-token"]);
    for next in ELSEWHERE {
        let path = format!("/login?next={next}");
        // Without a token the form redirects at once.
        let answer = raw(&open, "GET", &path, &[], "");
        assert_eq!(answer.status, 303, "{next}: {answer:?}");
        assert_eq!(answer.header("location"), Some("/"), "{next}");
        // With one, the form must not carry it into its hidden field...
        let answer = raw(&guarded, "GET", &path, &[], "");
        assert_eq!(answer.status, 200, "{next}: {answer:?}");
        assert!(
            answer.body.contains(r#"name="next" value="/">"#) && !answer.body.contains("evil"),
            "{next}: the form reflects it: {}",
            answer.body
        );
        // ...nor follow it once the token is right (a form value decodes as a query does).
        let form = format!("token=next-token&next={next}");
        let answer = raw(
            &guarded,
            "POST",
            "/login",
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Origin", &guarded.url.clone()),
            ],
            &form,
        );
        assert_eq!(answer.status, 303, "{next}: {answer:?}");
        assert_eq!(answer.header("location"), Some("/"), "{next}");
    }
    // A path of this site is kept, query included; an encoded `/` inside a segment stays one.
    for (next, location) in [
        ("/explorer%3Fq%3Dinv", "/explorer?q=inv"),
        ("/explorer/tables/a%252Fb", "/explorer/tables/a%2Fb"),
    ] {
        let answer = raw(&open, "GET", &format!("/login?next={next}"), &[], "");
        assert_eq!(answer.header("location"), Some(location), "{next}");
    }
}

// ---- 6: pages of other sites cannot drive or read a server -----------------------------

fn simulator() -> FakeStripe {
    FakeStripe::start(Config {
        seed: 25,
        scale: 0.0,
        objects: vec![("customers".into(), 20)],
        ..Default::default()
    })
    .expect("the simulator starts")
}

fn table_exists(db: &TestDb, table: &str) -> bool {
    db.client()
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
        .unwrap()
        .get(0)
}

/// The port a server listens on.
fn port_of(serve: &Serve) -> u16 {
    serve.address().rsplit(':').next().unwrap().parse().unwrap()
}

#[test]
fn a_page_of_another_site_cannot_tear_down_through_a_tokenless_server() {
    let fake = simulator();
    let db = TestDb::new();
    let serve = Serve::start(&[]);
    let pipeline = json!({
        "source": {"type": "stripe", "stripe": {"api_key": "sk_test_fake", "base_url": fake.base_url()}},
        "destination": {"type": "postgres", "postgres": {"url": db.url(), "schema": "xsite"}},
        "streams": [{"name": "customers"}]
    });
    let body = json!({"pipeline": pipeline, "only": "destination"}).to_string();
    let json_type = ("Content-Type", "application/json");
    let setup = raw(&serve, "POST", "/pipeline_setup", &[json_type], &body);
    assert_eq!(setup.status, 200, "{setup:?}");
    assert!(table_exists(&db, "xsite.customers"));

    // A form of another site can post text/plain (or form-encoded, or multipart) without a
    // preflight; a script can post text/plain with no-cors.
    for content_type in [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let answer = raw(
            &serve,
            "POST",
            "/pipeline_teardown",
            &[("Content-Type", content_type)],
            &body,
        );
        assert_eq!(answer.status, 415, "{content_type}: {answer:?}");
        assert!(
            answer.body.contains("application/json"),
            "{content_type}: the refusal says what is taken: {}",
            answer.body
        );
        assert!(table_exists(&db, "xsite.customers"), "{content_type}");
    }
    // JSON from a page of another origin (a browser sends its Origin) is refused too.
    for origin in ["http://evil.example", "null", "http://127.0.0.1:1"] {
        let answer = raw(
            &serve,
            "POST",
            "/pipeline_teardown",
            &[json_type, ("Origin", origin)],
            &body,
        );
        assert_eq!(answer.status, 403, "{origin}: {answer:?}");
        assert!(answer.body.contains("Origin"), "{}", answer.body);
        assert!(table_exists(&db, "xsite.customers"), "{origin}");
    }
    // NDJSON is taken only where a route reads it.
    let answer = raw(
        &serve,
        "POST",
        "/pipeline_teardown",
        &[("Content-Type", "application/x-ndjson")],
        &body,
    );
    assert_eq!(answer.status, 415, "{answer:?}");
    // This server's own origin, and clients that send none, still work.
    let answer = raw(
        &serve,
        "POST",
        "/pipeline_teardown",
        &[
            ("Content-Type", "application/json; charset=utf-8"),
            ("Origin", &serve.url.clone()),
        ],
        &body,
    );
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(!table_exists(&db, "xsite.customers"), "the teardown ran");
}

#[test]
fn a_tokenless_server_answers_only_its_own_names() {
    let serve = Serve::start(&[]);
    let port = port_of(&serve);
    // DNS rebinding: a name of the attacker's now pointing at 127.0.0.1. The page is then of
    // the same origin as its requests, so only the Host header tells.
    for host in [
        format!("evil.example:{port}"),
        "evil.example".to_owned(),
        format!("localhost.evil.example:{port}"),
        format!("localhost:{}", port.wrapping_add(1)),
        format!("127.0.0.1:{}", port.wrapping_add(1)),
    ] {
        for path in ["/meta/sources", "/openapi.json", "/explorer", "/login"] {
            let answer = raw(&serve, "GET", path, &[("Host", &host)], "");
            assert_eq!(answer.status, 403, "{host} {path}: {answer:?}");
            assert!(
                answer.body.contains("--allowed-host"),
                "the refusal says how to allow a name: {}",
                answer.body
            );
        }
    }
    for host in [
        format!("localhost:{port}"),
        format!("LOCALHOST:{port}"),
        format!("127.0.0.1:{port}"),
    ] {
        let answer = raw(&serve, "GET", "/meta/sources", &[("Host", &host)], "");
        assert_eq!(answer.status, 200, "{host}: {answer:?}");
    }
    // Liveness probes come with whatever name the prober uses.
    let health = raw(
        &serve,
        "GET",
        "/health",
        &[("Host", "probe.internal:80")],
        "",
    );
    assert_eq!(health.status, 200, "{health:?}");

    // A name the operator allows; and with a token the token guards every name.
    let named = Serve::start(&["--allowed-host", "engine.internal"]);
    let host = format!("engine.internal:{}", port_of(&named));
    let answer = raw(&named, "GET", "/meta/sources", &[("Host", &host)], "");
    assert_eq!(answer.status, 200, "{answer:?}");
    let tokened = Serve::start(&["--api-token", "host-token"]);
    let host = format!("engine.example.com:{}", port_of(&tokened));
    let answer = raw(
        &tokened,
        "GET",
        "/meta/sources",
        &[("Host", &host), ("Authorization", "Bearer host-token")],
        "",
    );
    assert_eq!(answer.status, 200, "{answer:?}");
    let answer = raw(&tokened, "GET", "/meta/sources", &[("Host", &host)], "");
    assert_eq!(answer.status, 401, "{answer:?}");
    // A name that cannot be one is refused at start, naming the flag.
    let out = Bin::new("sync-engine")
        .args(["serve", "--port", "0", "--allowed-host", "http://x/"])
        .run();
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stderr.contains("--allowed-host") && !out.stderr.contains("unexpected argument"),
        "{}",
        out.stderr
    );
}

#[test]
fn the_console_forms_work_from_their_own_pages_only() {
    let serve = Serve::start(&["--api-token", "form-token"]);
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let own = serve.url.clone();
    let login = |origin: &str| {
        raw(
            &serve,
            "POST",
            "/login",
            &[form[0], ("Origin", origin)],
            "token=form-token&next=%2Fexplorer",
        )
    };
    let accepted = login(&own);
    assert_eq!(accepted.status, 303, "{accepted:?}");
    assert!(accepted.header("set-cookie").is_some());
    // Login CSRF: another site logging the browser in.
    let refused = login("http://evil.example");
    assert_eq!(refused.status, 403, "{refused:?}");
    assert!(refused.header("set-cookie").is_none());
    let logout = raw(&serve, "POST", "/logout", &[form[0], ("Origin", &own)], "");
    assert_eq!(logout.status, 303, "{logout:?}");
    let logout = raw(
        &serve,
        "POST",
        "/logout",
        &[form[0], ("Origin", "http://evil.example")],
        "",
    );
    assert_eq!(logout.status, 403, "{logout:?}");
}

// ---- 11: durations are bounded ---------------------------------------------------------

#[test]
fn a_duration_beyond_its_maximum_is_a_400_naming_the_field() {
    let map = example_map();
    let serve = Serve::start(&["--connectors-from-command-map", &map]);
    let pipeline = example_pipeline(json!({"records": 3})).to_string();
    let json_type = ("Content-Type", "application/json");
    for (field, value) in [
        ("time_limit", "1e308"),
        ("time_limit", "18446744073709551616"),
        ("time_limit", "1e10"),
        ("time_limit", "604801"),
        ("soft_time_limit", "1e308"),
        ("soft_time_limit", "18446744073709551616"),
    ] {
        let body = format!(r#"{{"pipeline": {pipeline}, "{field}": {value}}}"#);
        for route in ["/pipeline_sync", "/pipeline_read", "/pipeline_sync_batch"] {
            let answer = raw(&serve, "POST", route, &[json_type], &body);
            assert_eq!(answer.status, 400, "{route} {field}={value}: {answer:?}");
            let error: Value = serde_json::from_str(&answer.body).unwrap();
            let error = error["error"].as_str().unwrap();
            assert!(
                error.starts_with(field) && error.contains("604800"),
                "{route} {field}={value}: {error}"
            );
        }
        let ndjson = format!(
            "{{\"type\":\"start\",\"start\":{{\"pipeline\":{pipeline},\"{field}\":{value}}}}}\n"
        );
        let answer = raw(
            &serve,
            "POST",
            "/pipeline_sync",
            &[("Content-Type", "application/x-ndjson")],
            &ndjson,
        );
        assert_eq!(answer.status, 400, "ndjson {field}={value}: {answer:?}");
    }
    // The maximum itself is a time limit like any other.
    let body = format!(r#"{{"pipeline": {pipeline}, "time_limit": 604800}}"#);
    let answer = raw(&serve, "POST", "/pipeline_sync_batch", &[json_type], &body);
    assert_eq!(answer.status, 200, "{answer:?}");
    let eof: Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(eof["status"], "succeeded", "{eof}");
    assert!(!serve.log().contains("panicked"), "{}", serve.log());
}

/// Runs a command that must exit on its own within a minute.
fn exits(mut command: Command) -> (Option<i32>, String) {
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .env_remove("SYNC_ENGINE_API_TOKEN")
        .env_remove("PORT")
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            return (status.code(), stderr);
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} did not exit: it accepted the duration");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_duration_flag_beyond_its_maximum_exits_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let map = example_map();
    let sync = |extra: &[&str]| {
        let mut command = Command::new(bin_path("sync-engine"));
        command
            .args(["sync", "--source", "example", "--destination", "example"])
            .args(["--source-config", r#"{"records": 3}"#])
            .args(["--destination-config", "{}"])
            .args(["--state-file", state.to_str().unwrap()])
            .args(["--connectors-from-command-map", &map, "--output", "ndjson"])
            .args(extra);
        command
    };
    for (flag, value) in [
        ("--time-limit", "1e308"),
        ("--time-limit", "18446744073709551616"),
        ("--time-limit", "604801"),
        ("--connector-timeout", "1e308"),
        ("--connector-timeout", "86401"),
    ] {
        let (code, stderr) = exits(sync(&[flag, value]));
        assert_eq!(code, Some(2), "sync {flag} {value}: {stderr}");
        assert!(stderr.contains(flag), "sync {flag} {value}: {stderr}");
    }
    for sub in ["check", "discover", "setup"] {
        let mut command = Command::new(bin_path("sync-engine"));
        command.args([sub, "--connector-timeout", "1e308"]);
        let (code, stderr) = exits(command);
        assert_eq!(code, Some(2), "{sub}: {stderr}");
        assert!(stderr.contains("--connector-timeout"), "{sub}: {stderr}");
    }
    let mut serve = Command::new(bin_path("sync-engine"));
    serve.args(["serve", "--port", "0", "--connector-timeout", "1e308"]);
    let (code, stderr) = exits(serve);
    assert_eq!(code, Some(2), "serve: {stderr}");
    assert!(stderr.contains("--connector-timeout"), "serve: {stderr}");

    // The pipeline file's time_limit likewise.
    let file = dir.path().join("pipeline.json");
    std::fs::write(
        &file,
        json!({
            "source": {"name": "example", "config": {"records": 3}},
            "destination": {"name": "example", "config": {}},
            "time_limit": 1e308
        })
        .to_string(),
    )
    .unwrap();
    let mut command = Command::new(bin_path("sync-engine"));
    command
        .args(["sync", "--config", file.to_str().unwrap()])
        .args(["--state-file", state.to_str().unwrap()])
        .args(["--connectors-from-command-map", &map, "--output", "ndjson"]);
    let (code, stderr) = exits(command);
    assert_eq!(code, Some(2), "config file: {stderr}");
    assert!(stderr.contains("time_limit"), "config file: {stderr}");

    // The maxima themselves are accepted.
    let (code, stderr) = exits(sync(&[
        "--time-limit",
        "604800",
        "--connector-timeout",
        "86400",
    ]));
    assert_eq!(code, Some(0), "{stderr}");
}

// ---- 15: the 429 names the cap --------------------------------------------------------

#[test]
fn the_refusal_over_the_run_cap_names_the_cap() {
    let map = example_map();
    let serve = Serve::start(&[
        "--connectors-from-command-map",
        &map,
        "--max-concurrent-runs",
        "2",
    ]);
    // Two slow syncs hold both slots while their answers stay open.
    let body =
        json!({"pipeline": example_pipeline(json!({"records": 1000, "sleep_ms": 50}))}).to_string();
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(serve.address()).unwrap();
        write!(
            stream,
            "POST /pipeline_sync HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            serve.address(),
            body.len()
        )
        .unwrap();
        let mut first = [0u8; 12];
        stream.read_exact(&mut first).unwrap();
        assert_eq!(&first, b"HTTP/1.1 200", "the sync started");
        held.push(stream);
    }
    let answer = raw(
        &serve,
        "POST",
        "/pipeline_sync",
        &[("Content-Type", "application/json")],
        &body,
    );
    assert_eq!(answer.status, 429, "{answer:?}");
    assert!(answer.header("retry-after").is_some());
    let error: Value = serde_json::from_str(&answer.body).unwrap();
    let error = error["error"].as_str().unwrap();
    assert!(
        error.contains("at most 2 syncs at once") && error.contains("--max-concurrent-runs"),
        "the refusal names the cap of 2: {error}"
    );
    drop(held);
}

// ---- 16: explorer links of streams with reserved characters ----------------------------

/// A source whose catalog names streams with `/`, `?`, `#` and a space, one listed through
/// another and referring to it.
const RESERVED_NAMES_SOURCE: &str = r##"
import json, sys
def emit(kind, payload):
    sys.stdout.write(json.dumps({"type": kind, kind: payload}) + "\n")
command = sys.argv[1]
if command == "spec":
    emit("spec", {"config": {"type": "object"}})
elif command == "check":
    emit("connection_status", {"status": "succeeded"})
elif command == "discover":
    key = {"primary_key": [["id"]]}
    emit("catalog", {"streams": [
        dict(key, name="billing/accounts", metadata={"resource_name": "billing_account"},
             json_schema={"type": "object", "properties": {"id": {"type": "string"}}}),
        dict(key, name="notes?draft=1", metadata={"parent_stream": "billing/accounts"},
             json_schema={"type": "object", "properties": {"id": {"type": "string"},
                 "account": {"type": "string", "x-resources": ["billing_account"]}}}),
        dict(key, name="tags #1 & more", json_schema={"type": "object", "properties": {"id": {"type": "string"}}}),
    ]})
"##;

fn hrefs(html: &str) -> Vec<String> {
    html.split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(|h| h.replace("&amp;", "&"))
        .filter(|h| h.starts_with("/explorer/tables/"))
        .collect()
}

#[test]
fn explorer_links_to_streams_with_reserved_characters_lead_to_their_tables() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("source.py");
    std::fs::write(&script, RESERVED_NAMES_SOURCE).unwrap();
    let db = TestDb::new();
    let settings = dir.path().join("pipeline.json");
    std::fs::write(
        &settings,
        json!({
            "source": {"name": "reserved", "config": {}},
            "destination": {"name": "postgres", "config": {"url": db.url(), "schema": "reserved"}}
        })
        .to_string(),
    )
    .unwrap();
    let map = json!({"source-reserved": format!("python3 {}", script.display())}).to_string();
    let serve = Serve::start(&[
        "--connectors-from-command-map",
        &map,
        "--explorer-config",
        settings.to_str().unwrap(),
    ]);
    let get = |path: &str| -> Answer { raw(&serve, "GET", path, &[], "") };
    let index = get("/explorer");
    assert_eq!(index.status, 200, "{index:?}");
    let links = hrefs(&index.body);
    for encoded in [
        "/explorer/tables/billing%2Faccounts",
        "/explorer/tables/notes%3Fdraft%3D1",
        "/explorer/tables/tags%20%231%20%26%20more",
    ] {
        assert!(links.iter().any(|l| l == encoded), "{encoded} in {links:?}");
    }
    // Every link of every page leads to the table it names.
    let mut seen = std::collections::BTreeSet::new();
    let mut todo = links;
    while let Some(link) = todo.pop() {
        if !seen.insert(link.clone()) {
            continue;
        }
        let page = get(&link);
        assert_eq!(page.status, 200, "{link}: {page:?}");
        assert!(
            page.header("content-type")
                .is_some_and(|t| t.starts_with("text/html")),
            "{link}: {page:?}"
        );
        let stream = stream_of(&link);
        assert!(
            page.body.contains(&format!(
                "<dt>Stream</dt><dd>{}</dd>",
                html_escaped(&stream)
            )),
            "{link} shows stream {stream:?}"
        );
        todo.extend(hrefs(&page.body));
    }
    let notes = get("/explorer/tables/notes%3Fdraft%3D1");
    let notes_links = hrefs(&notes.body);
    assert!(
        notes_links
            .iter()
            .filter(|l| *l == "/explorer/tables/billing%2Faccounts")
            .count()
            >= 3,
        "the parent, the relation and the column link to billing/accounts: {notes_links:?}"
    );
}

/// The stream a table link names (its last segment, decoded).
fn stream_of(link: &str) -> String {
    let segment = link
        .trim_start_matches("/explorer/tables/")
        .split('?')
        .next()
        .unwrap();
    let bytes = segment.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(&segment[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn html_escaped(text: &str) -> String {
    text.replace('&', "&#38;")
        .replace('<', "&#60;")
        .replace('>', "&#62;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

/// A server with `--explorer-config` naming a Postgres destination whose schema `sqlpage`
/// holds a table of three customers.
fn sql_server(db: &TestDb, fake: &FakeStripe, dir: &std::path::Path, extra: &[&str]) -> Serve {
    db.client()
        .batch_execute(
            "CREATE SCHEMA IF NOT EXISTS sqlpage;
             CREATE TABLE IF NOT EXISTS sqlpage.customers (id text PRIMARY KEY, email text, balance bigint);
             INSERT INTO sqlpage.customers VALUES ('cus_1', 'a@x.test', 5), ('cus_2', 'b,\"q\"@x.test', NULL),
                 ('cus_3', 'c@x.test', -2) ON CONFLICT DO NOTHING;
             CREATE SEQUENCE IF NOT EXISTS sqlpage.evil_seq;",
        )
        .unwrap();
    let settings = dir.join("pipeline.json");
    std::fs::write(
        &settings,
        json!({
            "source": {"name": "stripe", "config": {"api_key": "sk_test_fake", "base_url": fake.base_url()}},
            "destination": {"name": "postgres", "config": {"url": db.url(), "schema": "sqlpage"}}
        })
        .to_string(),
    )
    .unwrap();
    let mut args = vec!["--explorer-config", settings.to_str().unwrap()];
    args.extend_from_slice(extra);
    Serve::start(&args)
}

fn query_path(page: &str, sql: &str) -> String {
    let encoded: String = sql
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("{page}?sql={encoded}")
}

#[test]
fn the_sql_page_runs_one_read_only_query_and_nothing_else() {
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let fake = simulator();
    let serve = sql_server(&db, &fake, dir.path(), &[]);
    let get = |path: &str| -> Answer { raw(&serve, "GET", path, &[], "") };
    let page = get(&query_path(
        "/explorer/sql",
        "select id, email, balance from customers order by id",
    ));
    assert_eq!(page.status, 200, "{page:?}");
    assert!(
        page.body.contains("<span id=\"sql-count\">3</span> rows"),
        "{}",
        page.body
    );
    for cell in [
        "<td>cus_1</td><td>a@x.test</td><td>5</td>",
        "<td class=\"null\">NULL</td>",
        "int8",
    ] {
        assert!(page.body.contains(cell), "{cell} in {}", page.body);
    }
    let csv = get(&query_path(
        "/explorer/sql.csv",
        "select id, email, balance from customers order by id",
    ));
    assert_eq!(csv.status, 200, "{csv:?}");
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    assert_eq!(
        csv.body,
        "id,email,balance\ncus_1,a@x.test,5\ncus_2,\"b,\"\"q\"\"@x.test\",\ncus_3,c@x.test,-2\n"
    );
    for (sql, named) in [
        ("delete from customers", "DELETE is not one"),
        ("update customers set balance = 0", "UPDATE is not one"),
        ("create table evil (a int)", "CREATE is not one"),
        (
            "with gone as (delete from customers returning id) select * from gone",
            "data-modifying",
        ),
        (
            "select 1; delete from customers",
            "cannot insert multiple commands into a prepared statement",
        ),
        ("select nextval('evil_seq')", "read-only transaction"),
        (
            "select set_config('transaction_read_only', 'off', false)",
            "read-write mode",
        ),
    ] {
        let page = get(&query_path("/explorer/sql", sql));
        assert_eq!(page.status, 400, "{sql}: {page:?}");
        assert!(
            page.body.contains("id=\"sql-problem\"") && page.body.contains(named),
            "{sql}: {named} in {}",
            page.body
        );
        let csv = get(&query_path("/explorer/sql.csv", sql));
        assert_eq!(csv.status, 400, "{sql}: {csv:?}");
    }
    let rows: i64 = db
        .client()
        .query_one("SELECT count(*) FROM sqlpage.customers", &[])
        .unwrap()
        .get(0);
    assert_eq!(rows, 3, "nothing was deleted");
    assert!(!table_exists(&db, "sqlpage.evil"));
    // Postgres' own error, as it gives it.
    let page = get(&query_path("/explorer/sql", "select nope from customers"));
    assert_eq!(page.status, 400);
    assert!(
        page.body
            .contains("column &#34;nope&#34; does not exist (SQLSTATE 42703)")
            || page
                .body
                .contains("column &quot;nope&quot; does not exist (SQLSTATE 42703)"),
        "{}",
        page.body
    );
}

#[test]
fn the_sql_page_needs_a_login_or_a_loopback_bind() {
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let fake = simulator();
    let open = sql_server(&db, &fake, dir.path(), &["--host", "0.0.0.0"]);
    let host = format!("localhost:{}", port_of(&open));
    for path in ["/explorer/sql", "/explorer/sql.csv?sql=select+1"] {
        let answer = raw(&open, "GET", path, &[("Host", &host)], "");
        assert_eq!(answer.status, 403, "{path}: {answer:?}");
        assert!(answer.body.contains("--api-token"), "{}", answer.body);
    }
    let explorer = raw(&open, "GET", "/explorer", &[("Host", &host)], "");
    assert_eq!(explorer.status, 200, "{explorer:?}");
    assert!(
        !explorer.body.contains("href=\"/explorer/sql\""),
        "no link to a page that refuses"
    );
    drop(open);
    // On loopback, but answering a name others use (a proxy in front): refused too.
    let proxied = sql_server(
        &db,
        &fake,
        dir.path(),
        &["--allowed-host", "engine.internal"],
    );
    let host = format!("engine.internal:{}", port_of(&proxied));
    let answer = raw(&proxied, "GET", "/explorer/sql", &[("Host", &host)], "");
    assert_eq!(answer.status, 403, "{answer:?}");
    drop(proxied);
    // On loopback alone: runs, but not for another site's page (an <img> on any site the user
    // visits could otherwise run statements here).
    let local = sql_server(&db, &fake, dir.path(), &[]);
    let path = query_path("/explorer/sql.csv", "select count(*) from customers");
    for (site, status) in [
        ("cross-site", 403),
        ("same-site", 403),
        ("same-origin", 200),
        ("none", 200),
    ] {
        let answer = raw(&local, "GET", &path, &[("Sec-Fetch-Site", site)], "");
        assert_eq!(answer.status, status, "{site}: {answer:?}");
    }
    drop(local);
    let guarded = sql_server(
        &db,
        &fake,
        dir.path(),
        &["--host", "0.0.0.0", "--api-token", "sql-token"],
    );
    let host = format!("localhost:{}", port_of(&guarded));
    let path = query_path("/explorer/sql", "select count(*) from customers");
    let answer = raw(&guarded, "GET", &path, &[("Host", &host)], "");
    assert_eq!(answer.status, 303, "no session: the login form: {answer:?}");
    let answer = raw(
        &guarded,
        "GET",
        &path,
        &[("Host", &host), ("Authorization", "Bearer sql-token")],
        "",
    );
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(answer.body.contains("<td>3</td>"), "{}", answer.body);
}

/// `url` logging in as `user` (no password: the test server trusts local connections).
fn as_user(url: &str, user: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let rest = rest.split_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{user}@{rest}")
}

#[test]
fn the_sql_page_runs_as_the_reader_role_when_given_one() {
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let fake = simulator();
    let role = format!("reader_{}", db.name());
    let mut admin = db.client();
    admin
        .batch_execute(&format!(
            "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN;"
        ))
        .unwrap();
    let reader_url = as_user(db.url(), &role);
    let serve = sql_server(&db, &fake, dir.path(), &["--sql-reader-url", &reader_url]);
    admin
        .batch_execute(&format!(
            "CREATE TABLE sqlpage.private (secret text); INSERT INTO sqlpage.private VALUES ('x');
             GRANT USAGE ON SCHEMA sqlpage TO {role}; GRANT SELECT ON sqlpage.customers TO {role};"
        ))
        .unwrap();
    let owner: String = admin
        .query_one(
            "SELECT tableowner::text FROM pg_tables WHERE schemaname = 'sqlpage' AND tablename = 'customers'",
            &[],
        )
        .unwrap()
        .get(0);
    let owner_pid: i32 = admin
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    let get = |sql: &str| {
        raw(
            &serve,
            "GET",
            &query_path("/explorer/sql.csv", sql),
            &[],
            "",
        )
    };
    let answer = get("select current_user");
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body, format!("current_user\n{role}\n"));
    let answer = get("select id from customers order by id");
    assert_eq!(answer.body, "id\ncus_1\ncus_2\ncus_3\n", "{answer:?}");
    // What the role was not granted, and what no query can take back from Postgres' checks.
    for (sql, named) in [
        (
            "select * from private",
            "permission denied for table private",
        ),
        (
            &format!("select set_config('role', '{owner}', false)") as &str,
            "permission denied to set role",
        ),
        (
            &format!("select pg_terminate_backend({owner_pid})") as &str,
            "",
        ),
    ] {
        let answer = get(sql);
        assert_eq!(answer.status, 400, "{sql}: {answer:?}");
        assert!(answer.body.contains(named), "{sql}: {named} in {answer:?}");
    }
    admin
        .simple_query("select 1")
        .expect("the owner's session was not ended");
    drop(serve);
    // A reader of another database serves no destination here: refused, naming the flag.
    let elsewhere = sql_server(
        &db,
        &fake,
        dir.path(),
        &[
            "--sql-reader-url",
            &reader_url.replace(&format!("/{}", db.name()), "/postgres"),
        ],
    );
    let answer = raw(
        &elsewhere,
        "GET",
        &query_path("/explorer/sql", "select 1"),
        &[],
        "",
    );
    assert_eq!(answer.status, 409, "{answer:?}");
    assert!(answer.body.contains("--sql-reader-url"), "{}", answer.body);
    assert!(
        answer.body.contains("id=\"sql-problem\""),
        "said on the SQL page itself: {}",
        answer.body
    );
    drop(elsewhere);
    // A URL that does not parse stops the server before it listens, without its password.
    let refused = Command::new(bin_path("sync-engine"))
        .args(["serve", "--port", "0", "--sql-reader-url"])
        .arg("postgres://reader:hunter2@db.example/shop?sslmode=bogus")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--sql-reader-url"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
    admin
        .batch_execute(&format!("DROP OWNED BY {role}"))
        .unwrap();
    drop(admin);
    drop(db);
    let mut server =
        postgres::Client::connect(&test_support::server_url(), postgres::NoTls).unwrap();
    server
        .batch_execute(&format!("DROP ROLE IF EXISTS {role}"))
        .unwrap();
}

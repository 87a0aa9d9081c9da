//! The real `sync-service serve` against hostile input: timers beyond their maximum are
//! refused at start; a tokenless REST API answers only its own names, takes changes only as
//! JSON and only from its own origin, while Stripe's webhooks (JSON, no Origin, any public
//! name) still arrive.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Service, WEBHOOK_SECRET, call, silent_change};
use serde_json::{Value, json};
use test_support::bin_path;

/// A response read off the wire.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: String,
}

/// One HTTP/1.1 request written byte for byte (Host, Origin and Content-Type exactly as
/// given), on a connection of its own.
fn raw(
    service: &Service,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let address = service.base.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        request.push_str(&format!("Host: {address}\r\n"));
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
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("{method} {path}: no answer ({text:?})"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{method} {path}: status line {head:?}"));
    Answer {
        status,
        body: body.to_owned(),
    }
}

#[test]
fn a_page_of_another_site_cannot_drive_or_read_the_rest_api() {
    // Tokenless, and answering a name others use (a proxy in front): no SQL page.
    let service = Service::start_full("1", 20, &[], &[], &["--allowed-host", "sync.internal"], 2);
    let (code, created) = call(
        "POST",
        &service.url("/pipelines?skip_check=true"),
        Some(&service.pipeline_body("xsite", "xsite")),
    );
    assert_eq!(code, 201, "{created}");
    let port = service.base.rsplit(':').next().unwrap().to_owned();
    let own_origin = service.base.clone();
    let evil = ("Origin", "http://evil.example");

    // Routes that take no body are reached by a form of another site (text/plain) or by a
    // script's no-cors POST, which carries the page's Origin.
    for (method, path, headers, body) in [
        (
            "POST",
            "/pipelines/xsite/check",
            vec![("Content-Type", "text/plain")],
            "{}",
        ),
        (
            "POST",
            "/pipelines/xsite/teardown",
            vec![("Content-Type", "application/x-www-form-urlencoded")],
            "side=destination",
        ),
        ("POST", "/pipelines/xsite/reconcile", vec![evil], ""),
        // The console form's check and discover run the connectors with the stored secrets.
        (
            "POST",
            "/console/check",
            vec![("Content-Type", "text/plain")],
            r#"{"pipeline": "xsite"}"#,
        ),
        (
            "POST",
            "/console/streams",
            vec![("Content-Type", "application/json"), evil],
            r#"{"pipeline": "xsite"}"#,
        ),
        (
            "PATCH",
            "/pipelines/xsite",
            vec![("Content-Type", "application/json"), evil],
            r#"{"status": "paused"}"#,
        ),
    ] {
        let answer = raw(&service, method, path, &headers, body);
        assert!(
            [403, 415].contains(&answer.status),
            "{method} {path} {headers:?}: {answer:?}"
        );
    }
    assert_eq!(
        service.status("xsite")["desired_status"],
        "active",
        "nothing changed"
    );

    // DNS rebinding: the attacker's name, now pointing at 127.0.0.1, reads nothing.
    for path in ["/pipelines", "/pipelines/xsite", "/", "/explorer"] {
        let answer = raw(
            &service,
            "GET",
            path,
            &[("Host", &format!("evil.example:{port}"))],
            "",
        );
        assert_eq!(answer.status, 403, "{path}: {answer:?}");
        assert!(answer.body.contains("--allowed-host"), "{}", answer.body);
        assert!(!answer.body.contains("sk_test"), "{}", answer.body);
    }

    // Reachable by others without a token: the SQL routes refuse, and say how to open them.
    let sync_internal = format!("sync.internal:{port}");
    for path in ["/explorer/sql", "/explorer/sql.csv?sql=select+1"] {
        let answer = raw(&service, "GET", path, &[("Host", &sync_internal)], "");
        assert_eq!(answer.status, 403, "{path}: {answer:?}");
        assert!(answer.body.contains("--api-token"), "{}", answer.body);
    }
    let explorer = raw(
        &service,
        "GET",
        "/explorer",
        &[("Host", &sync_internal)],
        "",
    );
    assert_eq!(explorer.status, 200, "{explorer:?}");
    assert!(
        !explorer.body.contains("href=\"/explorer/sql\""),
        "no link to a page that refuses"
    );

    // This server's own pages and its command-line clients still work.
    let answer = raw(
        &service,
        "PATCH",
        "/pipelines/xsite",
        &[
            ("Content-Type", "application/json"),
            ("Origin", &own_origin),
        ],
        r#"{"status": "paused"}"#,
    );
    assert_eq!(answer.status, 200, "{answer:?}");
    let answer = raw(&service, "POST", "/pipelines/xsite/check", &[], "");
    assert_eq!(answer.status, 200, "{answer:?}");
    let answer = raw(
        &service,
        "GET",
        "/pipelines",
        &[("Host", &format!("localhost:{port}"))],
        "",
    );
    assert_eq!(answer.status, 200, "{answer:?}");

    // Stripe's webhooks come by the public name, as JSON without an Origin.
    let event = silent_change(
        &service.fake,
        &service.object_ids("customers")[0],
        "Through A Proxy",
        "evt_hostile_web_1",
    );
    let body = event.to_string();
    let signature = stripe_fake::signature_header(
        body.as_bytes(),
        WEBHOOK_SECRET,
        stripe_fake::real_unix_now(),
    );
    let answer = raw(
        &service,
        "POST",
        "/webhooks/xsite",
        &[
            ("Host", "sync.example.com"),
            ("Content-Type", "application/json; charset=utf-8"),
            ("Stripe-Signature", &signature),
        ],
        &body,
    );
    assert_eq!(answer.status, 200, "{answer:?}");
    let received: Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(received["received"], json!("evt_hostile_web_1"));
}

/// Runs `sync-service serve` with `extra`; it must exit on its own within a minute.
fn serve_exits(extra: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(bin_path("sync-service"))
        .args([
            "serve",
            "--database-url",
            "postgres://nobody@127.0.0.1:1/none",
        ])
        .args([
            "--temporal-address",
            "127.0.0.1:1",
            "--listen",
            "127.0.0.1:0",
        ])
        .args(extra)
        .env_remove("SYNC_SERVICE_DATABASE_URL")
        .env_remove("TEMPORAL_ADDRESS")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
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
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "serve {extra:?} did not exit"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn timers_beyond_their_maximum_exit_2_naming_the_flag() {
    for (flag, value) in [
        ("--poll-secs", "18446744073709551615"),
        ("--poll-secs", "86401"),
        ("--retry-secs", "18446744073709551615"),
        ("--retry-secs", "86401"),
        ("--reconcile-secs", "18446744073709551615"),
        ("--reconcile-secs", "31536001"),
    ] {
        let (code, stderr) = serve_exits(&[flag, value]);
        assert_eq!(code, Some(2), "{flag} {value}: {stderr}");
        assert!(stderr.contains(flag), "{flag} {value}: {stderr}");
    }
}

#[test]
fn an_allowed_host_that_is_not_a_name_exits_2_naming_the_flag() {
    let (code, stderr) = serve_exits(&["--allowed-host", "http://x/"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--allowed-host") && !stderr.contains("unexpected argument"),
        "{stderr}"
    );
}

#[test]
fn a_sql_reader_url_that_does_not_parse_exits_2_without_its_password() {
    let (code, stderr) = serve_exits(&[
        "--sql-reader-url",
        "postgres://reader:hunter2@db.example/shop?sslmode=bogus",
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--sql-reader-url"), "{stderr}");
    assert!(stderr.contains("sslmode"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

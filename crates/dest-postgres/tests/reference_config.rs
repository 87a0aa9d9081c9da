//! The reference implementation's destination keys, through the real binary: `connection_string`
//! is its name for `url`; `aws` (RDS IAM authentication) and `pglite` cannot mean anything here
//! and are refused naming what to give instead. No message shows the URL.

use serde_json::{Value, json};
use test_support::{Bin, TestDb};

const CATALOG: &str = r#"{"streams":[{"stream":{"name":"customers","primary_key":[["id"]]},"sync_mode":"full_refresh","destination_sync_mode":"append"}]}"#;

fn check(config: &Value) -> test_support::Finished {
    Bin::new("dest-postgres")
        .arg("check")
        .json("config", config)
        .run()
}

/// The failed check's message, after checking no secret shows.
fn refused(config: &Value, secret: &str) -> String {
    let out = check(config);
    assert_eq!(out.code, Some(2), "{config}: {} {}", out.stdout, out.stderr);
    let status = &out.of_type("connection_status")[0];
    assert_eq!(status["failure_type"], "config_error", "{status}");
    assert!(
        !out.stdout.contains(secret) && !out.stderr.contains(secret),
        "the password shows: {} {}",
        out.stdout,
        out.stderr
    );
    status["message"].as_str().unwrap().to_owned()
}

#[test]
fn connection_string_is_url_and_both_differing_is_refused_naming_both() {
    let db = TestDb::new();
    let ok = check(&json!({"connection_string": db.url()}));
    assert_eq!(ok.code, Some(0), "{}", ok.stderr);
    assert_eq!(ok.of_type("connection_status")[0]["status"], "succeeded");
    let same = check(&json!({"connection_string": db.url(), "url": db.url()}));
    assert_eq!(same.code, Some(0), "{}", same.stderr);
    let setup = Bin::new("dest-postgres")
        .arg("setup")
        .json(
            "config",
            &json!({"connection_string": db.url(), "schema": "theirs"}),
        )
        .args(["--catalog", CATALOG])
        .run();
    assert_eq!(setup.code, Some(0), "{}", setup.stderr);
    assert_eq!(
        db.count("theirs.customers"),
        0,
        "setup made the table where the URL says"
    );

    let other = "postgres://someone:hunter2secret@127.0.0.1:5432/elsewhere";
    let message = refused(
        &json!({"url": db.url(), "connection_string": other}),
        "hunter2secret",
    );
    assert!(
        message.contains("url") && message.contains("connection_string"),
        "{message}"
    );
    let message = refused(&json!({"schema": "x"}), "hunter2secret");
    assert!(message.contains("url is required"), "{message}");
}

#[test]
fn aws_and_pglite_are_refused_naming_what_to_give_instead() {
    let message = refused(
        &json!({"aws": {"host": "db.example.com", "database": "app", "user": "sync", "region": "us-east-1"}}),
        "no secret here",
    );
    assert!(
        message.contains("aws") && message.contains("RDS IAM") && message.contains("url"),
        "{message}"
    );
    let message = refused(&json!({"pglite": true}), "no secret here");
    assert!(
        message.contains("pglite") && message.contains("url"),
        "{message}"
    );
}

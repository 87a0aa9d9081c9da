//! The CLI contract, exercised through the real `example-connector` binary.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use test_support::{Bin, Finished};

fn example() -> Bin {
    Bin::new("example-connector")
}

fn run(args: &[&str]) -> Finished {
    example().args(args).run()
}

#[test]
fn spec_prints_exactly_one_spec_line() {
    let out = run(&["spec"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let messages = out.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["type"], "spec");
    assert_eq!(messages[0]["spec"]["config"]["type"], "object");
}

#[test]
fn inline_json_and_file_behave_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    std::fs::write(&path, r#"{"streams":["a","b"]}"#).unwrap();
    let inline = run(&["discover", "--config", r#"{"streams":["a","b"]}"#]);
    let file = run(&["discover", "--config", path.to_str().unwrap()]);
    assert_eq!(inline.code, Some(0), "{}", inline.stderr);
    assert_eq!(inline.stdout, file.stdout);
    assert_eq!(
        inline.of_type("catalog")[0]["streams"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn invalid_config_exits_2_naming_the_field() {
    let out = run(&["check", "--config", r#"{"records":"many"}"#]);
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("records"), "stderr: {}", out.stderr);
    let status = &out.of_type("connection_status")[0];
    assert_eq!(status["status"], "failed");
    assert_eq!(status["failure_type"], "config_error");
    assert!(status["message"].as_str().unwrap().contains("records"));

    let out = run(&["check", "--config", r#"{"unknown_field":1}"#]);
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.contains("unknown_field"),
        "stderr: {}",
        out.stderr
    );
}

#[test]
fn bad_flag_values_exit_2() {
    let out = run(&["check", "--config", "/no/such/file.json"]);
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr
            .contains("--config: cannot read /no/such/file.json"),
        "{}",
        out.stderr
    );
    let out = run(&["read", "--config", "{}", "--catalog", "{\"streams\": 3}"]);
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("--catalog"), "{}", out.stderr);
    let out = run(&["check"]);
    assert_eq!(out.code, Some(2), "missing --config is a usage error");
}

#[test]
fn unsupported_subcommand_is_a_usage_error() {
    let out = run(&["teardown", "--config", "{}"]);
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("teardown"), "{}", out.stderr);
}

#[test]
fn check_reports_failure_but_exits_0() {
    let out = run(&[
        "check",
        "--config",
        r#"{"check_fails":true,"secret_token":"tok_very_secret"}"#,
    ]);
    assert_eq!(out.code, Some(0));
    let status = &out.of_type("connection_status")[0];
    assert_eq!(status["status"], "failed");
}

#[test]
fn secrets_never_reach_stdout_or_stderr() {
    let out = run(&[
        "check",
        "--log-level",
        "debug",
        "--config",
        r#"{"check_fails":true,"secret_token":"tok_very_secret"}"#,
    ]);
    assert!(
        !out.stdout.contains("tok_very_secret"),
        "stdout: {}",
        out.stdout
    );
    assert!(
        !out.stderr.contains("tok_very_secret"),
        "stderr: {}",
        out.stderr
    );
    assert!(
        out.stdout.contains("***"),
        "the message is still there, masked: {}",
        out.stdout
    );
    assert!(
        out.stderr.contains("checking"),
        "the log line is still there: {}",
        out.stderr
    );
}

#[test]
fn json_log_format_writes_json_to_stderr() {
    let out = run(&["check", "--log-format", "json", "--config", "{}"]);
    assert_eq!(out.code, Some(0));
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains("checking"))
        .expect("a log line");
    let parsed: Value = serde_json::from_str(line).unwrap();
    assert_eq!(parsed["level"], "INFO");
}

#[test]
fn read_emits_records_states_and_statuses_and_resumes() {
    let catalog = json!({"streams":[{"name":"items","primary_key":[["id"]]}]});
    let out = example()
        .args(["read", "--config", r#"{"records":7,"state_every":3}"#])
        .json("catalog", &catalog)
        .run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.of_type("record").len(), 7);
    let states = out.of_type("source_state");
    assert_eq!(
        states
            .iter()
            .map(|s| s["data"]["next"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        vec![3, 6, 7]
    );
    let statuses: Vec<_> = out
        .of_type("stream_status")
        .iter()
        .map(|s| s["status"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(statuses, vec!["start", "complete"]);

    let resumed = example()
        .args(["read", "--config", r#"{"records":7,"state_every":3}"#])
        .json("catalog", &catalog)
        .arg("--state")
        .arg(r#"{"items":{"next":6}}"#)
        .run();
    let ids: Vec<_> = resumed
        .of_type("record")
        .iter()
        .map(|r| r["data"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, vec!["items_6"]);
}

#[test]
fn fatal_failure_emits_connection_status_and_exits_1() {
    let catalog = json!({"streams":[{"name":"items"}]});
    let out = example()
        .args(["read", "--config", r#"{"records":10,"fail_after":4}"#])
        .json("catalog", &catalog)
        .run();
    assert_eq!(out.code, Some(1));
    assert_eq!(out.of_type("record").len(), 4);
    let status = out.of_type("connection_status");
    assert_eq!(status[0]["status"], "failed");
    assert_eq!(status[0]["failure_type"], "system_error");
    assert!(out.stderr.contains("failing on purpose"));
}

#[test]
fn write_acknowledges_states_with_committed_counts() {
    let input = [
        r#"{"type":"record","record":{"stream":"a","data":{"id":"1"}}}"#,
        r#"{"type":"record","record":{"stream":"b","data":{"id":"2"}}}"#,
        r#"{"type":"record","record":{"stream":"a","data":{"id":"3"}}}"#,
        r#"{"type":"source_state","source_state":{"stream":"a","data":{"n":2}}}"#,
        "",
        r#"{"type":"source_state","source_state":{"state_type":"global","data":{"c":1}}}"#,
    ]
    .join("\r\n");
    let out = example()
        .args(["write", "--config", "{}", "--catalog", r#"{"streams":[]}"#])
        .stdin(input)
        .run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let states = out.of_type("source_state");
    assert_eq!(states[0]["destination_stats"]["committed"], 2);
    assert_eq!(states[1]["destination_stats"]["committed"], 3);
}

#[test]
fn malformed_input_names_the_line() {
    let input = "{\"type\":\"record\",\"record\":{\"stream\":\"a\",\"data\":{}}}\n{oops\n";
    let out = example()
        .args(["write", "--config", "{}", "--catalog", r#"{"streams":[]}"#])
        .stdin(input)
        .run();
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("line 2"), "{}", out.stderr);
}

#[test]
fn closed_stdout_is_a_quiet_clean_exit() {
    let catalog = json!({"streams":[{"name":"items"}]}).to_string();
    let mut child = Command::new(test_support::bin_path("example-connector"))
        .args([
            "read",
            "--config",
            r#"{"records":1000000}"#,
            "--catalog",
            &catalog,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.contains("stream_status"));
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("panicked") && !stderr.contains("ERROR"),
        "stderr: {stderr}"
    );
}

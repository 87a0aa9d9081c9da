//! The `stripe-fake` binary: flags, the ready line, serving.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

mod common;

use common::Client;

#[test]
fn the_binary_prints_its_url_and_serves() {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_stripe-fake"))
        .args([
            "--port",
            "0",
            "--seed",
            "3",
            "--scale",
            "0",
            "--objects",
            "customers=25,invoices=4",
        ])
        .args([
            "--accounts",
            "1",
            "--latency-ms",
            "0-2",
            "--disabled-streams",
            "issuing_cards",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary runs");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(
        line.starts_with("stripe-fake listening on http://127.0.0.1:"),
        "{line}"
    );
    assert!(
        line.contains("sk_test_fake") && line.contains("rk_live_fake"),
        "{line}"
    );
    let addr = line
        .split("http://")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let client = Client::at(addr.parse().unwrap());
    let get = |path: &str| {
        let response = client.get(path);
        (response.status, response.json())
    };
    let (status, customers) = get("/v1/customers?limit=100");
    assert_eq!(status, 200);
    let n = customers["data"].as_array().unwrap().len();
    assert!(
        (20..=25).contains(&n),
        "{n} customers (a few may be deleted)"
    );
    assert_eq!(get("/v1/issuing/cards").0, 400);
    let (_, accounts) = get("/_fake/accounts");
    assert_eq!(accounts["connected"].as_array().unwrap().len(), 1);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(started.elapsed().as_secs() < 20);

    let bad = Command::new(env!("CARGO_BIN_EXE_stripe-fake"))
        .args(["--port", "0", "--objects", "nonsense=5"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown stream 'nonsense'"));
}

//! source-stripe backfill speed against the simulator.
//!
//! 1. With Stripe-like latency (150–250 ms) and live-mode limits (100/s total, 25/s per
//!    endpoint): one stream of 50,000 objects, eight streams of 10,000, five of 40,000; requests
//!    per second against the limit, and each second's 200s (the ramp and the tail).
//! 2. Without latency or limits: records per second, and peak RSS at 10,000 and 200,000 objects.
//! 3. The simulator answering pretty-printed JSON (as api.stripe.com does) against compact
//!    JSON: records per second of each, and their ratio.
//!
//! Prints one JSON object per measurement. `cargo bench -p source-stripe --bench backfill`

use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::{Value, json};
use stripe_fake::{Config, FakeStripe, Faults};
use test_support::fixtures::discovered_catalog_file;
use test_support::measure::wait_measuring;

const SOURCE: &str = env!("CARGO_BIN_EXE_source-stripe");

/// Runs `read` to the end, discarding its output; returns (seconds, peak RSS bytes).
fn read(config: &Value, catalog: &str) -> (f64, u64) {
    let started = Instant::now();
    let child = Command::new(SOURCE)
        .args([
            "read",
            "--config",
            &config.to_string(),
            "--catalog",
            catalog,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let m = wait_measuring(child, started);
    assert!(m.status.success(), "source-stripe read failed");
    (m.elapsed.as_secs_f64(), m.peak_rss_bytes)
}

fn limited_fake(objects: Vec<(String, usize)>) -> FakeStripe {
    FakeStripe::start(Config {
        seed: 1,
        scale: 0.0,
        objects,
        faults: Faults::live_like(),
        worker_threads: 1,
        ..Default::default()
    })
    .unwrap()
}

fn rate_run(name: &str, streams: &[&str], per_stream: usize, limit: f64) {
    let fake = limited_fake(
        streams
            .iter()
            .map(|s| (s.to_string(), per_stream))
            .collect(),
    );
    let config = json!({"api_key": "sk_live_fake", "base_url": fake.base_url(), "events": false});
    let catalog = discovered_catalog_file(SOURCE, &config, streams);
    fake.reset_stats();
    let (seconds, _) = read(&config, &catalog);
    let stats = fake.stats();
    let ok = stats.by_status.get(&200).copied().unwrap_or(0) as f64;
    println!(
        "{}",
        json!({"bench": name, "streams": streams.len(), "objects": per_stream * streams.len(), "seconds": seconds, "requests": ok,
               "requests_per_second": ok / seconds, "limit": limit, "ratio_to_limit": ok / seconds / limit,
               "rate_limited": stats.rate_limited_global + stats.rate_limited_endpoint,
               "ok_per_second": stats.ok_per_second})
    );
}

/// A simulator of `objects` customers without latency or limits, and a source config for it.
fn free_fake(objects: usize, compact_json: bool) -> (FakeStripe, Value, String) {
    let fake = FakeStripe::start(Config {
        seed: 2,
        scale: 0.0,
        objects: vec![("customers".into(), objects)],
        worker_threads: 1,
        compact_json,
        ..Default::default()
    })
    .unwrap();
    let config = json!({"api_key": "sk_live_fake", "base_url": fake.base_url(), "events": false, "rate_limit": 10000, "endpoint_rate_limit": 10000});
    let catalog = discovered_catalog_file(SOURCE, &config, &["customers"]);
    (fake, config, catalog)
}

fn free_run(objects: usize) {
    let (_fake, config, catalog) = free_fake(objects, false);
    let (seconds, rss) = read(&config, &catalog);
    println!(
        "{}",
        json!({"bench": "no latency, no limits", "objects": objects, "seconds": seconds, "records_per_second": objects as f64 / seconds, "peak_rss_bytes": rss})
    );
}

/// Records/s when the simulator answers as api.stripe.com does (pretty-printed) against its
/// compact answers, best of three alternating runs each.
fn layout_run(objects: usize) {
    let pretty = free_fake(objects, false);
    let compact = free_fake(objects, true);
    let (mut best_pretty, mut best_compact) = (f64::MAX, f64::MAX);
    for _ in 0..3 {
        best_pretty = best_pretty.min(read(&pretty.1, &pretty.2).0);
        best_compact = best_compact.min(read(&compact.1, &compact.2).0);
    }
    let rate = |seconds: f64| objects as f64 / seconds;
    println!(
        "{}",
        json!({"bench": "pretty vs compact", "objects": objects,
               "pretty_records_per_second": rate(best_pretty),
               "compact_records_per_second": rate(best_compact),
               "ratio": best_compact / best_pretty})
    );
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (single, each) = if quick {
        (5_000, 1_000)
    } else {
        (50_000, 10_000)
    };
    rate_run(
        "one stream, live limits, 150-250 ms latency",
        &["customers"],
        single,
        25.0,
    );
    rate_run(
        "eight streams, live limits, 150-250 ms latency",
        &[
            "customers",
            "charges",
            "payment_intents",
            "invoices",
            "products",
            "prices",
            "refunds",
            "balance_transactions",
        ],
        each,
        100.0,
    );
    rate_run(
        "five streams, live limits, 150-250 ms latency",
        &[
            "customers",
            "charges",
            "invoices",
            "payment_intents",
            "products",
        ],
        if quick { 4_000 } else { 40_000 },
        100.0,
    );
    free_run(10_000);
    free_run(if quick { 20_000 } else { 200_000 });
    layout_run(if quick { 20_000 } else { 100_000 });
}

//! A Connect platform's read (`connected_accounts: "all"`) against its rate floor.
//!
//! The simulator holds a platform and N connected accounts of M customers each, answers with
//! Stripe-like latency (150–250 ms) and enforces live-mode limits: 100 requests/s for the key,
//! 25/s per endpoint of each account (429 above). The source reads every account
//! (`GET /v1/account`, its customers, its `/v1/events`) with a live key's default limits. The
//! floor is the requests the work needs at least (the account list's pages, then three per
//! account: the account, one page of customers, one page of events) at 100/s; the ratio is that
//! floor over the wall time, process start to exit.
//!
//! Prints one JSON object. `cargo bench -p source-stripe --bench connect -- [ACCOUNTS] [CUSTOMERS]`

use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::json;
use stripe_fake::{Config, FakeStripe, Faults, Latency, Scope};
use test_support::fixtures::discovered_catalog_file;
use test_support::measure::wait_measuring;

const SOURCE: &str = env!("CARGO_BIN_EXE_source-stripe");
const RATE: f64 = 100.0;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let accounts: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let customers: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(20);
    let fake = FakeStripe::start(Config {
        seed: 5,
        scale: 0.0,
        accounts,
        objects: vec![("customers".into(), customers)],
        faults: Faults {
            latency: Some(Latency {
                min_ms: 150,
                max_ms: 250,
            }),
            ..Faults::live_like()
        },
        ..Default::default()
    })
    .unwrap();
    let config = json!({
        "api_key": "sk_live_fake",
        "base_url": fake.base_url(),
        "connected_accounts": "all",
    });
    let catalog = discovered_catalog_file(SOURCE, &config, &["customers", "_accounts"]);
    fake.reset_stats();
    let started = Instant::now();
    let child = Command::new(SOURCE)
        .args([
            "read",
            "--config",
            &config.to_string(),
            "--catalog",
            &catalog,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let records = count_records(child, started);
    let stats = fake.stats();
    let expected: usize = std::iter::once(Scope::live(None))
        .chain(
            fake.connected_accounts()
                .iter()
                .map(|a| Scope::live(Some(a.as_str())))
                .collect::<Vec<_>>(),
        )
        .map(|scope| fake.objects(scope, "customers").unwrap().len())
        .sum();
    let pages_per_account = customers.div_ceil(100).max(1);
    let needed = accounts.div_ceil(100) + (accounts + 1) * (2 + pages_per_account);
    let floor = needed as f64 / RATE;
    println!(
        "{}",
        json!({
            "bench": "connect",
            "accounts": accounts,
            "customers_per_account": customers,
            "records": records.0,
            "expected_records": expected,
            "seconds": records.1,
            "peak_rss_bytes": records.2,
            "requests": stats.total,
            "by_endpoint": stats.by_endpoint,
            "requests_needed": needed,
            "floor_seconds": floor,
            "ratio_to_floor": floor / records.1,
            "rate_limited": stats.rate_limited_global + stats.rate_limited_endpoint,
            "limit": RATE,
        })
    );
}

/// Reads the source's stdout to its end: (customer records, seconds, peak RSS bytes).
fn count_records(mut child: std::process::Child, started: Instant) -> (usize, f64, u64) {
    use std::io::BufRead;
    let stdout = child.stdout.take().unwrap();
    let counter = std::thread::spawn(move || {
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .filter(|l| l.contains(r#""type":"record""#) && l.contains(r#""stream":"customers""#))
            .count()
    });
    let m = wait_measuring(child, started);
    assert!(m.status.success(), "source-stripe read failed");
    let records = counter.join().unwrap();
    (records, m.elapsed.as_secs_f64(), m.peak_rss_bytes)
}

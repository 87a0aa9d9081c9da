//! Live mode latency: the simulator updates customers at a steady rate (`/_fake/load`, each
//! update stamped with the millisecond it was made) while `sync-engine sync --live` runs; a
//! poller reads Postgres every 20 ms and notes when each update became visible. Through webhooks
//! only (the source's own endpoint, provisioned by setup), then through polling only (the
//! default 2 s interval). Then the webhook path at rising rates, for the highest one whose p99
//! stays under a second. Memory of the three processes is sampled every second.
//!
//! Prints one JSON object per measurement.
//! `cargo bench -p sync-engine --bench live -- [SECONDS]` (default 60 per run).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use stripe_fake::{Config, FakeStripe, Scope};
use test_support::TestDb;
use test_support::measure::rss_bytes;
use test_support::process::{children_of, free_port, terminate};

const ENGINE: &str = env!("CARGO_BIN_EXE_sync-engine");
const CUSTOMERS: usize = 2000;
const RATE: f64 = 200.0;

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// POSTs (or DELETEs) the simulator's `/_fake/load`.
fn load(addr: SocketAddr, method: &str, body: &Value) {
    let body = body.to_string();
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "{method} /_fake/load HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(
        answer.starts_with("HTTP/1.1 2"),
        "/_fake/load answered {answer}"
    );
}

/// When each load update was first seen in Postgres, polled every `every`. An update is known
/// by its `load_seq` and the millisecond it was made (each load counts from 1 again).
struct Watcher {
    seen: Arc<Mutex<HashMap<(i64, i64), i64>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watcher {
    fn start(db: &TestDb, schema: &str, every: Duration) -> Watcher {
        let seen: Arc<Mutex<HashMap<(i64, i64), i64>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let mut client = db.client();
        // Only rows written lately (`_synced_at` is its transaction's start, a moment before
        // the commit that made the row visible).
        let sql = format!(
            "SELECT (_raw_data->'metadata'->>'load_seq')::bigint, \
             (_raw_data->'metadata'->>'load_at_ms')::bigint FROM {schema}.customers \
             WHERE _synced_at > now() - interval '3 seconds' AND _raw_data->'metadata' ? 'load_seq'"
        );
        let (into, stopping) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                let rows = client.query(&sql, &[]).unwrap();
                let now = unix_ms();
                let mut seen = into.lock().unwrap();
                for row in rows {
                    let (seq, made): (i64, i64) = (row.get(0), row.get(1));
                    seen.entry((seq, made)).or_insert(now);
                }
                drop(seen);
                std::thread::sleep(every);
            }
        });
        Watcher {
            seen,
            stop,
            thread: Some(thread),
        }
    }

    /// Latencies (ms) of the updates made since `since_ms`, of `made` in all, sorted; and how
    /// many of them were never seen.
    fn latencies(&self, since_ms: i64, made: u64) -> (Vec<i64>, usize) {
        let seen = self.seen.lock().unwrap();
        let mut found: Vec<i64> = seen
            .iter()
            .filter(|((_, at), _)| *at >= since_ms)
            .map(|((_, at), visible)| visible - at)
            .collect();
        found.sort_unstable();
        let missing = (made as usize).saturating_sub(found.len());
        (found, missing)
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return -1;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// A live sync running.
struct Live {
    child: Child,
}

impl Live {
    fn start(fake: &FakeStripe, db: &TestDb, schema: &str, dir: &Path, source: &Value) -> Live {
        let child = Command::new(ENGINE)
            .args(["sync", "--live", "--streams", "customers"])
            .args(["--source-config", &source.to_string()])
            .args([
                "--destination-config",
                &json!({"url": db.url(), "schema": schema}).to_string(),
            ])
            .args(["--stripe-api-key", "sk_test_fake"])
            .args(["--stripe-base-url", &fake.base_url()])
            .args([
                "--state-file",
                dir.join(format!("{schema}.json")).to_str().unwrap(),
            ])
            .args(["--output", "ndjson"])
            .env_remove("STRIPE_API_KEY")
            .env_remove("DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join(format!("{schema}.log"))).unwrap())
            .spawn()
            .unwrap();
        Live { child }
    }

    /// The resident memory of the engine and of each connector (by executable name), in bytes.
    fn rss(&self) -> Rss {
        let engine = self.child.id();
        let mut by_process = vec![("sync-engine".to_owned(), rss_bytes(engine))];
        for pid in children_of(engine) {
            let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            by_process.push((name.trim().to_owned(), rss_bytes(pid)));
        }
        Rss(by_process)
    }

    fn stop(mut self) {
        terminate(self.child.id());
        let _ = self.child.wait();
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One memory sample: each process's resident set, in bytes.
struct Rss(Vec<(String, u64)>);

impl Rss {
    fn total(&self) -> u64 {
        self.0.iter().map(|(_, bytes)| bytes).sum()
    }
}

/// The largest total of up to five samples.
fn largest(samples: &[Rss]) -> u64 {
    samples.iter().map(Rss::total).max().unwrap_or(0)
}

/// First and last sample of each process.
fn by_process(samples: &[Rss]) -> serde_json::Value {
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        return json!({});
    };
    let mut processes = serde_json::Map::new();
    for (name, bytes) in &first.0 {
        let at_end = last
            .0
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0, |(_, b)| *b);
        processes.insert(name.clone(), json!([bytes, at_end]));
    }
    serde_json::Value::Object(processes)
}

fn count(db: &TestDb, schema: &str) -> i64 {
    db.client()
        .query_one(&format!("SELECT count(*) FROM {schema}.customers"), &[])
        .map_or(0, |r| r.get(0))
}

/// Customers not deleted: what a backfill lists.
fn live_customers(fake: &FakeStripe) -> i64 {
    fake.objects(Scope::test(None), "customers").unwrap().len() as i64
}

fn wait_until(what: &str, log: &Path, mut ready: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ready() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{what}: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs the load at `rate` for `seconds` against a running live sync; the latencies of the
/// updates it made, the updates never seen, and the memory samples (bytes, once a second).
fn measure(
    fake: &FakeStripe,
    live: &Live,
    watcher: &Watcher,
    rate: f64,
    seconds: f64,
) -> (Vec<i64>, usize, Vec<Rss>) {
    let since_ms = unix_ms();
    load(
        fake.addr(),
        "POST",
        &json!({"rate": rate, "seconds": seconds}),
    );
    let mut rss = Vec::new();
    let started = Instant::now();
    while started.elapsed().as_secs_f64() < seconds {
        std::thread::sleep(Duration::from_secs(1));
        rss.push(live.rss());
    }
    let made = fake.load_status().mutations;
    // The slowest path (polling) gets its interval and a second more to show the last ones.
    std::thread::sleep(Duration::from_secs(4));
    let (latencies, missing) = watcher.latencies(since_ms, made);
    (latencies, missing, rss)
}

fn report(bench: &str, rate: f64, seconds: f64, latencies: &[i64], missing: usize, rss: &[Rss]) {
    let five = rss.len().min(5);
    let half = rss.len() / 2;
    let (first, middle, last) = (
        largest(&rss[..five]),
        largest(&rss[half..(half + five).min(rss.len())]),
        largest(&rss[rss.len() - five..]),
    );
    println!(
        "{}",
        json!({
            "bench": bench,
            "rate": rate,
            "seconds": seconds,
            "updates": latencies.len() + missing,
            "missing": missing,
            "p50_ms": percentile(latencies, 0.50),
            "p99_ms": percentile(latencies, 0.99),
            "max_ms": latencies.last().copied().unwrap_or(-1),
            "rss_first_bytes": first,
            "rss_half_bytes": middle,
            "rss_last_bytes": last,
            "rss_by_process_bytes": by_process(rss),
        })
    );
}

fn main() {
    let seconds = test_support::measure::count_from_args(60) as f64;
    let fake = FakeStripe::start(Config {
        seed: 5,
        scale: 0.0,
        objects: vec![("customers".into(), CUSTOMERS)],
        worker_threads: 2,
        ..Default::default()
    })
    .expect("the simulator starts");
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();

    // Webhooks only.
    let port = free_port();
    let source = json!({
        "poll_interval_secs": 0,
        "webhook_listen": format!("127.0.0.1:{port}"),
        "webhook_url": format!("http://127.0.0.1:{port}/webhooks"),
    });
    let live = Live::start(&fake, &db, "webhooks", dir.path(), &source);
    wait_until(
        "backfill of the webhooks run",
        &dir.path().join("webhooks.log"),
        || {
            count(&db, "webhooks") >= live_customers(&fake)
                && TcpStream::connect(("127.0.0.1", port)).is_ok()
        },
    );
    // Events of the seconds right after a backfill are checked against it (read again): let
    // them pass, to measure the steady state.
    std::thread::sleep(Duration::from_secs(3));
    let watcher = Watcher::start(&db, "webhooks", Duration::from_millis(20));
    let (latencies, missing, rss) = measure(&fake, &live, &watcher, RATE, seconds);
    report("webhooks", RATE, seconds, &latencies, missing, &rss);
    // Rising rates, until p99 passes a second.
    for rate in [400.0, 800.0, 1600.0, 3200.0] {
        let (latencies, missing, rss) = measure(&fake, &live, &watcher, rate, 10.0);
        report(
            "webhooks, rising rate",
            rate,
            10.0,
            &latencies,
            missing,
            &rss,
        );
        if percentile(&latencies, 0.99) > 1000 || missing > 0 {
            break;
        }
    }
    drop(watcher);
    // Deliveries still queued go nowhere once the endpoint is gone (else they would keep the
    // simulator busy retrying a closed port during the polling run).
    for endpoint in fake
        .objects(Scope::test(None), "webhook_endpoints")
        .unwrap()
    {
        let id = endpoint["id"].as_str().unwrap();
        fake.delete(Scope::test(None), "webhook_endpoints", id)
            .unwrap();
    }
    live.stop();
    std::thread::sleep(Duration::from_secs(2));

    // Polling only, at the default interval.
    let source = json!({"poll_interval_secs": 2});
    let live = Live::start(&fake, &db, "polling", dir.path(), &source);
    wait_until(
        "backfill of the polling run",
        &dir.path().join("polling.log"),
        || count(&db, "polling") >= live_customers(&fake),
    );
    std::thread::sleep(Duration::from_secs(3));
    let watcher = Watcher::start(&db, "polling", Duration::from_millis(20));
    let (latencies, missing, rss) = measure(&fake, &live, &watcher, RATE, seconds);
    report(
        "polling every 2 s",
        RATE,
        seconds,
        &latencies,
        missing,
        &rss,
    );
    drop(watcher);
    live.stop();
}

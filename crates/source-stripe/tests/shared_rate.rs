//! `shared_rate_limit`: two real `source-stripe read` processes syncing one account share a
//! budget kept in a real Postgres; the simulator counts what they send together.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stripe_fake::{Config, FakeStripe, Scope};
use test_support::{Bin, TestDb};

const BUDGET: f64 = 20.0;

fn config(fake: &FakeStripe, db: &TestDb) -> Value {
    // Each process alone could go a hundred times faster: only the shared budget holds them.
    json!({
        "api_key": "sk_test_fake", "base_url": fake.base_url(), "rate_limit": 2000,
        "endpoint_rate_limit": 2000, "max_concurrency": 8, "events": false,
        "shared_rate_limit": {"url": db.url(), "key": "acct_shared:test", "max_rps": BUDGET},
    })
}

fn catalog(config: &Value) -> Value {
    let out = Bin::new("source-stripe")
        .arg("discover")
        .json("config", config)
        .run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let mut catalog = out.of_type("catalog").remove(0);
    let customers = catalog["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "customers")
        .unwrap()
        .clone();
    catalog["streams"] = json!([customers]);
    catalog
}

#[test]
fn two_processes_sharing_a_budget_send_at_its_rate_together() {
    let fake = FakeStripe::start(Config {
        seed: 5,
        scale: 0.0,
        objects: vec![("customers".into(), 8_000)],
        keys: vec!["sk_test_fake".to_owned()],
        ..Default::default()
    })
    .unwrap();
    let db = TestDb::new();
    let config = config(&fake, &db);
    let catalog = catalog(&config);
    fake.reset_stats();

    let started = Instant::now();
    let ended: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (config, catalog, ended) = (config.clone(), catalog.clone(), ended.clone());
            std::thread::spawn(move || {
                let out = Bin::new("source-stripe")
                    .arg("read")
                    .json("config", &config)
                    .json_file("catalog", &catalog)
                    .run();
                ended.lock().unwrap().push(started.elapsed());
                out
            })
        })
        .collect();
    // The simulator's count every 250 ms while both run.
    let mut samples = Vec::new();
    while ended.lock().unwrap().is_empty() {
        samples.push((started.elapsed(), fake.stats().total));
        std::thread::sleep(Duration::from_millis(250));
    }
    let customers = fake.objects(Scope::test(None), "customers").unwrap().len();
    for reader in readers {
        let out = reader.join().unwrap();
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        assert_eq!(out.of_type("record").len(), customers);
    }
    // Both running, after the start-up (spec, discover-free setup, the first takes).
    let window: Vec<_> = samples
        .iter()
        .filter(|(t, _)| *t >= Duration::from_secs(2))
        .collect();
    assert!(window.len() >= 16, "too short to measure: {samples:?}");
    let (first, last) = (window[0], window[window.len() - 1]);
    let rate = (last.1 - first.1) as f64 / (last.0 - first.0).as_secs_f64();
    assert!(
        (BUDGET * 0.9..=BUDGET * 1.1).contains(&rate),
        "{rate:.1} requests/s together, budget {BUDGET}: {samples:?}"
    );
}

#[test]
fn an_unreachable_budget_database_fails_the_read_naming_it() {
    let fake = FakeStripe::start(Config {
        seed: 5,
        scale: 0.0,
        objects: vec![("customers".into(), 10)],
        keys: vec!["sk_test_fake".to_owned()],
        ..Default::default()
    })
    .unwrap();
    let config = json!({
        "api_key": "sk_test_fake", "base_url": fake.base_url(), "max_retries": 1, "events": false,
        "shared_rate_limit": {"url": "postgres://budget:s3cret@127.0.0.1:1/none", "key": "k"},
    });
    let catalog = catalog(&json!({"api_key": "sk_test_fake", "base_url": fake.base_url()}));
    let out = Bin::new("source-stripe")
        .arg("read")
        .json("config", &config)
        .json_file("catalog", &catalog)
        .run();
    assert_ne!(out.code, Some(0));
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains("shared_rate_limit"), "{all}");
    assert!(!all.contains("s3cret"), "the password leaked: {all}");
}

//! Fault injection: rate limits (held within 10%), 500s, drops, corrupted bodies, latency,
//! disabled products; and the stats that count them.

mod common;

use std::time::{Duration, Instant};

use common::{Client, small, start};
use serde_json::json;
use stripe_fake::{Faults, Latency};

/// Runs `clients` threads requesting `path` for `seconds`; returns (successes, 429s, reasons).
fn hammer(
    fake: &stripe_fake::FakeStripe,
    paths: &[&str],
    clients: usize,
    seconds: f64,
) -> (usize, usize, Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let results: Vec<(usize, usize, Vec<String>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|n| {
                let path = paths[n % paths.len()].to_string();
                scope.spawn(move || {
                    let client = Client::new(fake);
                    let (mut ok, mut limited, mut reasons) = (0, 0, Vec::new());
                    while Instant::now() < deadline {
                        let r = client.get(&path);
                        match r.status {
                            200 => ok += 1,
                            429 => {
                                limited += 1;
                                assert_eq!(r.json()["error"]["code"], "rate_limit");
                                reasons.push(
                                    r.header("stripe-rate-limited-reason")
                                        .unwrap_or("")
                                        .to_string(),
                                );
                            }
                            other => panic!("unexpected {other}"),
                        }
                    }
                    (ok, limited, reasons)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    results
        .into_iter()
        .fold((0, 0, Vec::new()), |(a, b, mut r), (x, y, z)| {
            r.extend(z);
            (a + x, b + y, r)
        })
}

#[test]
fn global_rate_limit_holds_within_ten_percent() {
    let mut config = small(&[("customers", 20), ("products", 20)]);
    config.faults.rate_limit = Some(20.0);
    let fake = start(config);
    let (ok, limited, reasons) = hammer(
        &fake,
        &["/v1/customers?limit=1", "/v1/products?limit=1"],
        6,
        3.0,
    );
    assert!((54..=66).contains(&ok), "20 rps for 3 s let {ok} through");
    assert!(
        limited > ok,
        "demand exceeded the limit ({limited} refusals)"
    );
    assert!(reasons.iter().all(|r| r == "global-rate"));
    let stats = fake.stats();
    assert_eq!(stats.rate_limited_global as usize, limited);
    assert_eq!(stats.rate_limited_endpoint, 0);
    assert_eq!(stats.by_status.get(&200).copied().unwrap_or(0) as usize, ok);
}

#[test]
fn endpoint_rate_limit_is_per_endpoint() {
    let mut config = small(&[("customers", 20), ("products", 20)]);
    config.faults.endpoint_rate_limit = Some(25.0);
    let fake = start(config);
    let (ok, limited, reasons) = hammer(
        &fake,
        &["/v1/customers?limit=1", "/v1/products?limit=2"],
        6,
        2.0,
    );
    // Two endpoints at 25 rps each for 2 s.
    assert!(
        (90..=110).contains(&ok),
        "2 × 25 rps for 2 s let {ok} through"
    );
    assert!(limited > 0);
    assert!(reasons.iter().all(|r| r == "endpoint-rate"));
    let stats = fake.stats();
    let customers = stats.by_endpoint["GET /v1/customers"];
    let products = stats.by_endpoint["GET /v1/products"];
    assert_eq!((customers + products) as usize, ok + limited);
    assert_eq!(stats.rate_limited_endpoint as usize, limited);
}

#[test]
fn server_errors_drops_and_corruption_happen_at_the_configured_rates() {
    let fake = start(small(&[("customers", 30)]));
    fake.set_faults(Faults {
        error_rate: 0.2,
        drop_rate: 0.15,
        corrupt_rate: 0.3,
        ..Faults::default()
    })
    .unwrap();
    let client = Client::new(&fake);
    let n = 600;
    let (mut fine, mut errors, mut transport, mut malformed) = (0, 0, 0, 0);
    for _ in 0..n {
        match client.try_request("GET", "/v1/customers?limit=3", None) {
            Err(_) => transport += 1,
            Ok(r) if r.status == 500 => {
                assert_eq!(r.json()["error"]["type"], "api_error");
                errors += 1;
            }
            Ok(r) if r.status == 200 => {
                match serde_json::from_slice::<serde_json::Value>(&r.body) {
                    Ok(_) => fine += 1,
                    Err(_) => malformed += 1,
                }
            }
            Ok(r) => panic!("unexpected status {}", r.status),
        }
    }
    let stats = fake.stats();
    let share = |k: u64| k as f64 / n as f64;
    assert!(
        (share(errors as u64) - 0.2).abs() < 0.06,
        "500s: {errors}/{n}"
    );
    assert!(
        (share(malformed as u64) - 0.15).abs() < 0.06,
        "malformed: {malformed}/{n}"
    );
    // Drops and truncations both end in a transport error at the client.
    assert!(
        (share(transport as u64) - 0.30).abs() < 0.07,
        "transport errors: {transport}/{n}"
    );
    assert_eq!(stats.server_errors as usize, errors);
    assert_eq!(stats.malformed_bodies as usize, malformed);
    assert_eq!(
        (stats.dropped_connections + stats.truncated_bodies) as usize,
        transport
    );
    assert!(
        stats.dropped_connections > 40 && stats.truncated_bodies > 40,
        "{stats:?}"
    );
    assert_eq!(fine + errors + transport + malformed, n);
    // The admin routes are never faulted.
    for _ in 0..50 {
        let stats = client.get("/_fake/stats").expect(200);
        assert!(stats["total"].as_u64().unwrap() >= n as u64);
    }
}

#[test]
fn truncation_sends_part_of_the_announced_length_and_drop_sends_nothing() {
    use std::io::{Read, Write};
    let mut config = small(&[("customers", 30)]);
    config.faults.corrupt_rate = 1.0;
    let fake = start(config);
    // Truncations are half of the corrupt rate; read raw bytes until one shows up.
    let raw = |fake: &stripe_fake::FakeStripe| {
        let mut s = std::net::TcpStream::connect(fake.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(
            s,
            "GET /v1/customers?limit=5 HTTP/1.1\r\nhost: x\r\nconnection: close\r\nauthorization: Bearer sk_test_fake\r\n\r\n"
        )
        .unwrap();
        let mut bytes = Vec::new();
        let _ = s.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    };
    let truncated = (0..40)
        .map(|_| raw(&fake))
        .find(|r| {
            let (head, body) = r.split_once("\r\n\r\n").unwrap();
            let announced: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .unwrap()
                .parse()
                .unwrap();
            body.len() < announced
        })
        .expect("a truncated response among 40");
    assert!(truncated.starts_with("HTTP/1.1 200"));
    fake.set_faults(Faults {
        drop_rate: 1.0,
        ..Faults::default()
    })
    .unwrap();
    assert_eq!(
        raw(&fake),
        "",
        "a dropped connection carries no response at all"
    );
}

#[test]
fn latency_and_runtime_changes_through_the_admin_api() {
    let fake = start(small(&[("customers", 5)]));
    let client = Client::new(&fake);
    let body =
        json!({"latency": {"min_ms": 150, "max_ms": 150}, "disabled_streams": ["issuing_cards"]})
            .to_string();
    let answer = client.post("/_fake/faults", &body).expect(200);
    assert_eq!(answer["latency"]["min_ms"], 150);
    assert_eq!(
        fake.faults().latency,
        Some(Latency {
            min_ms: 150,
            max_ms: 150
        })
    );
    let started = Instant::now();
    client.get("/v1/customers").expect(200);
    assert!(started.elapsed() >= Duration::from_millis(150));
    let started = Instant::now();
    client.get("/_fake/stats").expect(200);
    assert!(
        started.elapsed() < Duration::from_millis(150),
        "admin routes have no latency"
    );

    let e = client.get("/v1/issuing/cards").expect(400)["error"].clone();
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .starts_with("Your account is not set up to use Issuing."),
        "{e}"
    );
    assert_eq!(
        client.post("/_fake/faults", r#"{"error_rate": 2}"#).status,
        400
    );
    assert_eq!(
        client.post("/_fake/faults", r#"{"nonsense": 1}"#).status,
        400
    );
    assert_eq!(client.post("/_fake/faults", "{}").status, 200);
    client.get("/v1/issuing/cards").expect(200);

    client.post("/_fake/reset-stats", "").expect(200);
    client.get("/v1/customers").expect(200);
    client.get("/v1/customers/cus_x").expect(404);
    let stats = client.get("/_fake/stats").expect(200);
    assert_eq!(stats["total"], 2);
    assert_eq!(stats["by_endpoint"]["GET /v1/customers"], 1);
    assert_eq!(stats["by_endpoint"]["GET /v1/customers/{id}"], 1);
    assert_eq!(stats["by_status"]["404"], 1);
}

//! List pages per second the simulator serves on loopback: `GET /v1/customers?limit=100` over
//! keep-alive connections, each client walking the list with `starting_after`. The clients run
//! in this process and share the machine's cores with the server.
//!
//! Prints one JSON object per measurement (`scripts/bench stripe-fake` renders them).
//! `cargo bench -p stripe-fake --bench list_pages -- [SECONDS] [CUSTOMERS]`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::json;
use stripe_fake::{Config, FakeStripe};

const LIMIT: usize = 100;

struct Totals {
    pages: AtomicU64,
    bytes: AtomicU64,
    next_page: AtomicUsize,
}

async fn client(
    addr: std::net::SocketAddr,
    cursors: Arc<Vec<Option<String>>>,
    totals: Arc<Totals>,
    deadline: Instant,
) {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(connection);
    while Instant::now() < deadline {
        let page = totals.next_page.fetch_add(1, Ordering::Relaxed) % cursors.len();
        let uri = match &cursors[page] {
            None => format!("/v1/customers?limit={LIMIT}"),
            Some(id) => format!("/v1/customers?limit={LIMIT}&starting_after={id}"),
        };
        let request = Request::get(uri)
            .header("host", addr.to_string())
            .header("authorization", "Bearer sk_test_fake")
            .body(Empty::<Bytes>::new())
            .expect("request");
        sender.ready().await.expect("connection ready");
        let response = sender.send_request(request).await.expect("response");
        assert_eq!(response.status(), 200);
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        assert!(
            body.ends_with(b"\"url\":\"/v1/customers\"}"),
            "a complete list"
        );
        totals.pages.fetch_add(1, Ordering::Relaxed);
        totals.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
    }
}

fn measure(
    fake: &FakeStripe,
    cursors: &Arc<Vec<Option<String>>>,
    connections: usize,
    seconds: f64,
) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("client runtime");
    let run = |duration: f64| {
        let totals = Arc::new(Totals {
            pages: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            next_page: AtomicUsize::new(0),
        });
        let started = Instant::now();
        let deadline = started + Duration::from_secs_f64(duration);
        runtime.block_on(async {
            let tasks: Vec<_> = (0..connections)
                .map(|_| {
                    tokio::spawn(client(
                        fake.addr(),
                        cursors.clone(),
                        totals.clone(),
                        deadline,
                    ))
                })
                .collect();
            for t in tasks {
                t.await.expect("client task");
            }
        });
        (totals, started.elapsed().as_secs_f64())
    };
    run(0.5); // warm-up: connections, caches, allocator
    let (totals, elapsed) = run(seconds);
    let pages = totals.pages.load(Ordering::Relaxed);
    let bytes = totals.bytes.load(Ordering::Relaxed);
    println!(
        "{}",
        json!({
            "bench": "list pages, limit=100",
            "connections": connections,
            "pages": pages,
            "seconds": elapsed,
            "pages_per_second": pages as f64 / elapsed,
            "objects_per_second": (pages as usize * LIMIT) as f64 / elapsed,
            "mb_per_second": bytes as f64 / 1e6 / elapsed,
            "bytes_per_page": bytes as f64 / pages.max(1) as f64,
        })
    );
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let seconds: f64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(3.0);
    let customers: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let fake = FakeStripe::start(Config {
        seed: 1,
        scale: 0.0,
        objects: vec![("customers".into(), customers)],
        accounts: 0,
        worker_threads: 2,
        ..Config::default()
    })
    .expect("simulator");
    let ids: Vec<String> = fake
        .objects(None, "customers")
        .expect("customers")
        .iter()
        .map(|c| c["id"].as_str().unwrap_or_default().to_string())
        .collect();
    // Cursors of the full pages: none for the first, then every 100th id.
    let full_pages = ids.len() / LIMIT;
    let cursors: Arc<Vec<Option<String>>> = Arc::new(
        (0..full_pages.max(1))
            .map(|p| p.checked_sub(1).map(|_| ids[p * LIMIT - 1].clone()))
            .collect(),
    );
    for connections in [1, 4, 16] {
        measure(&fake, &cursors, connections, seconds);
    }
}

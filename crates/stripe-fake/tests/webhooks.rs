//! Webhook signatures (Stripe's algorithm) and real deliveries to a listener.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use common::{small, start};
use serde_json::{Value, json};
use stripe_fake::{
    DEFAULT_TOLERANCE_SECS, SignatureError, WebhookConfig, real_unix_now, signature_header,
    verify_signature,
};

const SECRET: &str = "whsec_test_secret";

#[test]
fn signatures_verify_only_with_the_secret_and_in_time() {
    let payload = br#"{"id":"evt_1","object":"event"}"#;
    let t = 1_800_000_000;
    let header = signature_header(payload, SECRET, t);
    assert!(header.starts_with(&format!("t={t},v1=")));
    assert_eq!(
        verify_signature(payload, &header, SECRET, DEFAULT_TOLERANCE_SECS, t + 10),
        Ok(())
    );
    assert_eq!(
        verify_signature(payload, &header, "whsec_other", DEFAULT_TOLERANCE_SECS, t),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        verify_signature(
            b"{\"id\":\"evt_2\"}",
            &header,
            SECRET,
            DEFAULT_TOLERANCE_SECS,
            t
        ),
        Err(SignatureError::Mismatch),
        "the body is signed"
    );
    assert_eq!(
        verify_signature(payload, &header, SECRET, DEFAULT_TOLERANCE_SECS, t + 301),
        Err(SignatureError::TooOld { age_secs: 301 })
    );
    assert_eq!(
        verify_signature(payload, &header, SECRET, 0, t + 100_000),
        Ok(()),
        "tolerance 0 skips the age check"
    );
    // Any v1 may match (secret rotation sends two), other schemes are ignored.
    let v1 = header.split("v1=").nth(1).unwrap();
    let rotated = format!("t={t},v1={},v0=abc,v1={v1}", "0".repeat(64));
    assert_eq!(verify_signature(payload, &rotated, SECRET, 300, t), Ok(()));
    assert_eq!(
        verify_signature(payload, &format!("t={t},v0={v1}"), SECRET, 300, t),
        Err(SignatureError::NoSignatures)
    );
    assert_eq!(
        verify_signature(payload, &format!("v1={v1}"), SECRET, 300, t),
        Err(SignatureError::MalformedHeader)
    );
    assert_eq!(
        verify_signature(payload, "garbage", SECRET, 300, t),
        Err(SignatureError::MalformedHeader)
    );
    // The known-answer HMAC test is webhook.rs's unit test.
}

struct Delivery {
    signature: String,
    body: Vec<u8>,
}

/// Accepts connections, answers the first `fail_first` requests 500 and the rest 200, and
/// reports each request.
fn listener(fail_first: usize) -> (String, mpsc::Receiver<Delivery>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks/stripe", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut signature = String::new();
            let mut length = 0;
            let mut line = String::new();
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            assert!(
                request_line.starts_with("POST /hooks/stripe "),
                "{request_line}"
            );
            loop {
                line.clear();
                reader.read_line(&mut line).unwrap();
                let trimmed = line.trim_end();
                if trimmed.is_empty() {
                    break;
                }
                let (name, value) = trimmed.split_once(':').unwrap();
                match name.to_ascii_lowercase().as_str() {
                    "stripe-signature" => signature = value.trim().to_string(),
                    "content-length" => length = value.trim().parse().unwrap(),
                    _ => {}
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let status = if n < fail_first {
                "500 Internal Server Error"
            } else {
                "200 OK"
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
            if tx.send(Delivery { signature, body }).is_err() {
                return;
            }
        }
    });
    (url, rx)
}

#[test]
fn events_are_delivered_signed_in_order_with_retries() {
    let (url, deliveries) = listener(1);
    let mut config = small(&[("customers", 5)]);
    config.webhook = Some(WebhookConfig {
        retry_base_ms: 20,
        ..WebhookConfig::new(&url, SECRET)
    });
    let fake = start(config);
    let a = fake
        .create(None, "customers", json!({"name": "A"}))
        .unwrap();
    let a_id = a["id"].as_str().unwrap();
    fake.update(None, "customers", a_id, json!({"name": "A2"}))
        .unwrap();
    fake.delete(None, "customers", a_id).unwrap();
    fake.create(None, "coupons", json!({"percent_off": 10}))
        .unwrap();

    let mut received = Vec::new();
    // Four events plus one retried delivery (the first answer was a 500).
    for _ in 0..5 {
        let d = deliveries
            .recv_timeout(Duration::from_secs(10))
            .expect("a delivery");
        assert_eq!(
            verify_signature(
                &d.body,
                &d.signature,
                SECRET,
                DEFAULT_TOLERANCE_SECS,
                real_unix_now()
            ),
            Ok(()),
            "signature {}",
            d.signature
        );
        assert!(
            verify_signature(
                &d.body,
                &d.signature,
                "whsec_wrong",
                DEFAULT_TOLERANCE_SECS,
                real_unix_now()
            )
            .is_err()
        );
        assert!(
            verify_signature(
                &d.body,
                &d.signature,
                SECRET,
                DEFAULT_TOLERANCE_SECS,
                real_unix_now() + 3600
            )
            .is_err(),
            "an hour later the same delivery is too old"
        );
        received.push(serde_json::from_slice::<Value>(&d.body).unwrap());
    }
    // First attempts go out in creation order; the retry of the first (answered 500) runs on
    // its own, so it lands anywhere after it.
    let first = &received[0];
    let retried = received[1..]
        .iter()
        .position(|e| e == first)
        .map(|i| i + 1)
        .expect("the first event is delivered again");
    let mut in_order = received.clone();
    in_order.remove(retried);
    let types: Vec<&str> = in_order
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "customer.created",
            "customer.updated",
            "customer.deleted",
            "coupon.created"
        ]
    );
    // The delivered events are the listed ones, byte for byte in meaning.
    let listed = fake.events(None).unwrap();
    assert_eq!(in_order[3], listed[0]);
    assert_eq!(in_order[0], listed[3]);
    // The simulator counts a delivery once it has read the answer, just after the listener
    // reported it.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while fake.stats().webhooks_delivered < 4 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let stats = fake.stats();
    assert_eq!(stats.webhooks_delivered, 4);
    assert_eq!(stats.webhook_failures, 1);
}

/// The next delivery within `wait`, if any.
fn next_delivery(deliveries: &mpsc::Receiver<Delivery>, wait: Duration) -> Option<(Value, String)> {
    deliveries.recv_timeout(wait).ok().map(|d| {
        (
            serde_json::from_slice(&d.body).unwrap(),
            d.signature_and_body(),
        )
    })
}

impl Delivery {
    /// Verifies with `secret`, now.
    fn verifies_with(&self, secret: &str) -> bool {
        verify_signature(
            &self.body,
            &self.signature,
            secret,
            DEFAULT_TOLERANCE_SECS,
            real_unix_now(),
        )
        .is_ok()
    }

    fn signature_and_body(&self) -> String {
        format!(
            "{}\n{}",
            self.signature,
            String::from_utf8_lossy(&self.body)
        )
    }
}

#[test]
fn endpoints_made_through_the_api_get_their_events_signed_with_their_own_secret() {
    let (url, deliveries) = listener(0);
    let fake = start(small(&[("customers", 3)]));
    let client = common::Client::new(&fake);
    let missing = client.post("/v1/webhook_endpoints", &format!("url={url}"));
    assert_eq!(missing.expect(400)["error"]["param"], "enabled_events");
    let created = client
        .post(
            "/v1/webhook_endpoints",
            &format!("url={url}&enabled_events[]=customer.updated&metadata[managed_by]=me"),
        )
        .expect(200);
    let (id, secret) = (
        created["id"].as_str().unwrap().to_owned(),
        created["secret"].as_str().unwrap().to_owned(),
    );
    assert!(
        id.starts_with("we_") && secret.starts_with("whsec_"),
        "{created}"
    );
    assert_eq!(created["status"], "enabled");
    assert_eq!(created["metadata"]["managed_by"], "me");
    // Shown once: retrieving and listing never give the secret again.
    let again = client.get(&format!("/v1/webhook_endpoints/{id}"));
    assert!(!String::from_utf8_lossy(&again.body).contains(&secret));
    let listed = client.get("/v1/webhook_endpoints?limit=100");
    assert!(!String::from_utf8_lossy(&listed.body).contains(&secret));

    let customer = fake.objects(None, "customers").unwrap()[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Only the enabled event types: the coupon's creation is not sent.
    fake.create(None, "coupons", json!({"percent_off": 5}))
        .unwrap();
    fake.update(None, "customers", &customer, json!({"name": "first"}))
        .unwrap();
    let d = deliveries
        .recv_timeout(Duration::from_secs(10))
        .expect("a delivery");
    assert!(d.verifies_with(&secret), "{}", d.signature_and_body());
    assert!(!d.verifies_with(SECRET));
    let event: Value = serde_json::from_slice(&d.body).unwrap();
    assert_eq!(event["type"], "customer.updated");
    assert_eq!(event["data"]["object"]["name"], "first");

    // Disabled: nothing; enabled again: delivered; deleted: nothing.
    let disabled = client
        .post(&format!("/v1/webhook_endpoints/{id}"), "disabled=true")
        .expect(200);
    assert_eq!(disabled["status"], "disabled");
    fake.update(
        None,
        "customers",
        &customer,
        json!({"name": "while disabled"}),
    )
    .unwrap();
    assert!(next_delivery(&deliveries, Duration::from_millis(500)).is_none());
    client
        .post(&format!("/v1/webhook_endpoints/{id}"), "disabled=false")
        .expect(200);
    fake.update(
        None,
        "customers",
        &customer,
        json!({"name": "enabled again"}),
    )
    .unwrap();
    let (event, _) = next_delivery(&deliveries, Duration::from_secs(10)).expect("a delivery");
    assert_eq!(event["data"]["object"]["name"], "enabled again");
    client
        .delete(&format!("/v1/webhook_endpoints/{id}"))
        .expect(200);
    fake.update(
        None,
        "customers",
        &customer,
        json!({"name": "after delete"}),
    )
    .unwrap();
    assert!(next_delivery(&deliveries, Duration::from_millis(500)).is_none());
}

#[test]
fn deliveries_are_duplicated_and_reordered_as_configured() {
    let (url, deliveries) = listener(0);
    let mut config = small(&[("customers", 12)]);
    config.webhook = Some(WebhookConfig::new(&url, SECRET));
    config.faults.webhook_duplicate_rate = 1.0;
    config.faults.webhook_reorder_window_ms = 300;
    let fake = start(config);
    let ids: Vec<String> = fake
        .objects(None, "customers")
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    for id in &ids {
        fake.update(None, "customers", id, json!({"name": "changed"}))
            .unwrap();
    }
    let created: Vec<String> = fake
        .events(None)
        .unwrap()
        .iter()
        .rev()
        .filter(|e| e["type"] == "customer.updated")
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    let mut arrived = Vec::new();
    for _ in 0..2 * created.len() {
        let (event, _) = next_delivery(&deliveries, Duration::from_secs(10)).expect("a delivery");
        arrived.push(event["id"].as_str().unwrap().to_owned());
    }
    for id in &created {
        assert_eq!(arrived.iter().filter(|a| *a == id).count(), 2, "{id} twice");
    }
    let mut first_arrivals = arrived.clone();
    let mut seen = std::collections::HashSet::new();
    first_arrivals.retain(|id| seen.insert(id.clone()));
    // 12 events shuffled keep their order once in 12! (4.8e8) runs.
    assert_ne!(
        first_arrivals, created,
        "the window shuffles the deliveries"
    );
}

#[test]
fn the_load_generator_changes_objects_at_the_given_rate() {
    let fake = start(small(&[("customers", 20)]));
    let client = common::Client::new(&fake);
    let refused = client.try_request("POST", "/_fake/load", Some(r#"{"rate": 0}"#));
    assert_eq!(refused.unwrap().status, 400);
    let before = fake.events(None).unwrap().len();
    client
        .try_request("POST", "/_fake/load", Some(r#"{"rate": 50, "seconds": 1}"#))
        .unwrap()
        .expect(202);
    std::thread::sleep(Duration::from_millis(1500));
    let status = client.get("/_fake/load").expect(200);
    assert_eq!(status["running"], false, "{status}");
    let made = status["mutations"].as_u64().unwrap();
    assert!(
        (40..=55).contains(&made),
        "{made} updates in one second at 50/s"
    );
    assert_eq!(fake.events(None).unwrap().len() - before, made as usize);
    let changed = fake
        .objects(None, "customers")
        .unwrap()
        .iter()
        .filter(|c| c["metadata"]["load_seq"].is_string())
        .count();
    assert!(
        changed >= 19,
        "the updates spread over the objects: {changed}"
    );
}

#[test]
fn a_connect_endpoint_gets_the_connected_accounts_events_and_no_other() {
    let (connect_url, to_connect) = listener(0);
    let (own_url, to_own) = listener(0);
    let fake = start(stripe_fake::Config {
        accounts: 2,
        ..small(&[("customers", 3)])
    });
    let account = fake.connected_accounts()[0].clone();
    let client = common::Client::new(&fake);
    let connect = client
        .post(
            "/v1/webhook_endpoints",
            &format!("url={connect_url}&enabled_events[]=*&connect=true"),
        )
        .expect(200);
    let connect_secret = connect["secret"].as_str().unwrap().to_owned();
    client
        .post(
            "/v1/webhook_endpoints",
            &format!("url={own_url}&enabled_events[]=*"),
        )
        .expect(200);
    // A connected account's own endpoint cannot be a Connect one.
    let refused = common::Client::new(&fake)
        .account(Some(&account))
        .post(
            "/v1/webhook_endpoints",
            &format!("url={own_url}&enabled_events[]=*&connect=true"),
        )
        .expect(400);
    assert_eq!(refused["error"]["param"], "connect");

    // The platform's own change: its ordinary endpoint only.
    fake.create(None, "coupons", json!({"percent_off": 5}))
        .unwrap();
    let (event, _) = next_delivery(&to_own, Duration::from_secs(10)).expect("a delivery");
    assert_eq!(event["type"], "coupon.created");
    assert!(event.get("account").is_none(), "{event}");
    // A connected account's change: the Connect endpoint only, naming the account.
    fake.create(Some(account.as_str()), "coupons", json!({"percent_off": 7}))
        .unwrap();
    let d = to_connect
        .recv_timeout(Duration::from_secs(10))
        .expect("a delivery");
    assert!(
        d.verifies_with(&connect_secret),
        "{}",
        d.signature_and_body()
    );
    let event: Value = serde_json::from_slice(&d.body).unwrap();
    assert_eq!(event["type"], "coupon.created");
    assert_eq!(event["account"], account.as_str());
    // An account revoking the platform: the Connect endpoint hears of it.
    fake.set_connected(&account, false).unwrap();
    let (event, _) = next_delivery(&to_connect, Duration::from_secs(10)).expect("a delivery");
    assert_eq!(event["type"], "account.application.deauthorized");
    assert_eq!(event["account"], account.as_str());
    assert!(
        next_delivery(&to_own, Duration::from_millis(500)).is_none(),
        "the platform's ordinary endpoint got a connected account's event"
    );
    assert!(
        next_delivery(&to_connect, Duration::from_millis(200)).is_none(),
        "the Connect endpoint got the platform's own event"
    );
}

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
    let types: Vec<&str> = received
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "customer.created",
            "customer.created",
            "customer.updated",
            "customer.deleted",
            "coupon.created"
        ]
    );
    assert_eq!(received[0], received[1], "the retry sends the same event");
    // The delivered events are the listed ones, byte for byte in meaning.
    let listed = fake.events(None).unwrap();
    assert_eq!(received[4], listed[0]);
    assert_eq!(received[1], listed[3]);
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

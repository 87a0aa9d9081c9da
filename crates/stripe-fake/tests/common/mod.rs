//! A minimal HTTP client for the tests: one fresh connection per request (so an injected drop
//! is seen as such, never hidden by a retry on a pooled connection), blocking API.

#![allow(dead_code)]

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::header::HeaderMap;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use stripe_fake::{Config, FakeStripe};

pub const KEY: &str = "sk_test_fake";
/// A fixed clock anchor (2026-11-01T00:00:00Z) so data sets are reproducible.
pub const NOW: i64 = 1_793_491_200;

pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "invalid JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The JSON body, after checking the status.
    pub fn expect(&self, status: u16) -> Value {
        assert_eq!(
            self.status,
            status,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        self.json()
    }
}

/// A small config: no mix, no connected accounts, a pinned clock.
pub fn small(objects: &[(&str, usize)]) -> Config {
    Config {
        seed: 11,
        scale: 0.0,
        objects: objects.iter().map(|(s, n)| (s.to_string(), *n)).collect(),
        accounts: 0,
        now: Some(NOW),
        ..Config::default()
    }
}

pub fn start(config: Config) -> FakeStripe {
    FakeStripe::start(config).expect("the simulator starts")
}

pub struct Client {
    runtime: tokio::runtime::Runtime,
    addr: SocketAddr,
    pub key: Option<String>,
    pub account: Option<String>,
    pub extra: Vec<(String, String)>,
}

impl Client {
    pub fn new(fake: &FakeStripe) -> Client {
        Client::at(fake.addr())
    }

    /// A client of a simulator served elsewhere (the binary).
    pub fn at(addr: SocketAddr) -> Client {
        Client {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a test runtime"),
            addr,
            key: Some(KEY.to_string()),
            account: None,
            extra: Vec::new(),
        }
    }

    pub fn key(mut self, key: Option<&str>) -> Client {
        self.key = key.map(str::to_string);
        self
    }

    pub fn account(mut self, account: Option<&str>) -> Client {
        self.account = account.map(str::to_string);
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Client {
        self.extra.push((name.to_string(), value.to_string()));
        self
    }

    pub fn try_request(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Result<Response, String> {
        let mut headers: Vec<(String, String)> = self.extra.clone();
        if let Some(key) = &self.key {
            headers.push(("authorization".into(), format!("Bearer {key}")));
        }
        if let Some(account) = &self.account {
            headers.push(("stripe-account".into(), account.clone()));
        }
        if body.is_some() {
            headers.push((
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            ));
        }
        self.runtime.block_on(request(
            self.addr,
            method,
            path,
            &headers,
            body.unwrap_or_default(),
        ))
    }

    pub fn get(&self, path: &str) -> Response {
        self.try_request("GET", path, None)
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    pub fn post(&self, path: &str, form: &str) -> Response {
        self.try_request("POST", path, Some(form))
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
    }

    pub fn delete(&self, path: &str) -> Response {
        self.try_request("DELETE", path, None)
            .unwrap_or_else(|e| panic!("DELETE {path}: {e}"))
    }

    /// Pages a list forward with `starting_after` until `has_more` is false.
    pub fn page_forward(&self, path: &str, query: &str) -> Vec<Value> {
        let mut out: Vec<Value> = Vec::new();
        loop {
            let mut q = query.to_string();
            if let Some(last) = out.last() {
                q.push_str(&format!("&starting_after={}", last["id"].as_str().unwrap()));
            }
            let page = self.get(&format!("{path}?{q}")).expect(200);
            let data = page["data"].as_array().unwrap().clone();
            let more = page["has_more"].as_bool().unwrap();
            assert!(!more || !data.is_empty(), "has_more with an empty page");
            out.extend(data);
            if !more {
                return out;
            }
        }
    }
}

pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &str,
) -> Result<Response, String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (name, value) in headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let request = builder
        .body(Full::new(Bytes::copy_from_slice(body.as_bytes())))
        .map_err(|e| format!("request: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("send: {e}"))?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("body: {e}"))?
        .to_bytes();
    Ok(Response {
        status,
        headers,
        body,
    })
}

pub fn ids(objects: &[Value]) -> Vec<&str> {
    objects.iter().map(|o| o["id"].as_str().unwrap()).collect()
}

pub fn created(object: &Value) -> i64 {
    object["created"].as_i64().unwrap()
}

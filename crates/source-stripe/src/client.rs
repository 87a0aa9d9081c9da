//! Stripe's HTTP API: authentication, version pinning, Connect, rate limits (an account bucket
//! and one bucket per endpoint), bounded concurrency, and retries with jittered exponential
//! backoff for 429s, 5xx, timeouts, dropped connections and unreadable bodies.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use reqwest::header::{HeaderMap, HeaderValue};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use sync_connector::backoff::backoff;
use tokio::sync::Semaphore;

use crate::config::Config;
use crate::error::{ErrorKind, StripeError};
use crate::shared_rate::SharedBudget;

/// One page of a list.
#[derive(Debug)]
pub(crate) struct Page {
    pub data: Vec<Box<RawValue>>,
    pub has_more: bool,
    /// v2 lists: the token of the next page.
    pub next_page: Option<String>,
    /// Server time (Unix seconds) no later than when the page was produced.
    pub server_time: i64,
}

#[derive(Deserialize)]
struct ListBody {
    data: Vec<Box<RawValue>>,
    /// v1 lists always say; v2 lists have `next_page_url` instead.
    #[serde(default)]
    has_more: Option<bool>,
    #[serde(default)]
    next_page_url: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    code: Option<String>,
}

/// A client for one account: its `Stripe-Account` (none for the key's own) over the key's
/// transport, whose account-wide rate limit and concurrency every account read with the key
/// shares (a platform's requests for its connected accounts count against the platform); each
/// account's endpoints have buckets of their own.
pub(crate) struct StripeClient {
    t: Arc<Transport>,
    stripe_account: Option<HeaderValue>,
    /// The account's id for its endpoint buckets (`""`: the key's own).
    account_key: String,
    /// How many accounts' reads share the transport at once (1 alone).
    sharers: usize,
}

/// The key's connection pool, limits, retries and view of the server's clock.
struct Transport {
    http: reqwest::Client,
    base_url: String,
    account_limiter: DefaultDirectRateLimiter,
    /// By (connected account, endpoint); the key's own account is `""`.
    endpoint_limiter: DefaultKeyedRateLimiter<(String, String)>,
    in_flight: Semaphore,
    max_retries: u32,
    /// Smoothed request latency, microseconds.
    latency_micros: AtomicU64,
    /// Server clock minus local clock, seconds.
    clock_offset: AtomicI64,
    /// The server's time (`Date`) on the first answer this process got; `i64::MIN` before.
    first_answer_at: AtomicI64,
    endpoint_rate: u32,
    account_rate: u32,
    /// The account's budget shared with other processes, when configured.
    shared: Option<SharedBudget>,
}

fn quota(per_second: u32) -> Quota {
    let rate = NonZeroU32::new(per_second.max(1)).unwrap_or(NonZeroU32::MIN);
    // No burst: requests leave evenly spaced, so the server's own bucket never sees a spike.
    Quota::per_second(rate).allow_burst(NonZeroU32::MIN)
}

enum Attempt {
    Done(bytes::Bytes, i64),
    Retry {
        error: StripeError,
        after: Option<Duration>,
    },
    Fail(StripeError),
}

impl Attempt {
    fn retry(error: StripeError, after: Option<Duration>) -> Attempt {
        Attempt::Retry { error, after }
    }
}

/// What to do with a non-2xx answer: its error, and whether (and when) to try again, as
/// `Stripe-Should-Retry` and `Retry-After` say, else by status.
fn refusal(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    request: String,
    endpoint: &str,
) -> Attempt {
    let detail = serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .map(|b| b.error);
    let message = detail
        .as_ref()
        .and_then(|d| d.message.clone())
        .unwrap_or_else(|| {
            format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            )
        });
    let error = StripeError::from_answer(
        status,
        detail.and_then(|d| d.code),
        message,
        request,
        endpoint,
    );
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let retry_after = header(reqwest::header::RETRY_AFTER).and_then(retry_after);
    let retryable = match header(reqwest::header::HeaderName::from_static(
        "stripe-should-retry",
    )) {
        Some("true") => true,
        Some("false") => false,
        _ => status == 429 || status >= 500,
    };
    if retryable {
        Attempt::retry(error, retry_after)
    } else {
        Attempt::Fail(error)
    }
}

/// The longest `Retry-After` obeyed: a run waits minutes at most, not what a proxy says.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// A `Retry-After` in seconds, capped at 60 s; `None` (back off as usual) for anything else,
/// such as an HTTP date, a negative number or NaN.
fn retry_after(value: &str) -> Option<Duration> {
    let secs = value.trim().parse::<f64>().ok().filter(|s| *s >= 0.0)?;
    Duration::try_from_secs_f64(secs.min(MAX_RETRY_AFTER.as_secs_f64())).ok()
}

impl StripeClient {
    pub(crate) fn new(config: &Config) -> Result<StripeClient, String> {
        // reqwest is built without a default TLS provider; ring needs no C toolchain.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut headers = HeaderMap::new();
        let mut bearer = HeaderValue::from_str(&format!("Bearer {}", config.api_key))
            .map_err(|_| "api_key contains characters not allowed in a header".to_owned())?;
        bearer.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, bearer);
        headers.insert(
            "Stripe-Version",
            HeaderValue::from_str(config.api_version())
                .map_err(|_| "api_version is not a valid header value".to_owned())?,
        );
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("stripe-sync-rust/", env!("CARGO_PKG_VERSION")))
            .timeout(Duration::from_secs(config.request_timeout_secs))
            .connect_timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(config.max_concurrency)
            .gzip(true)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let t = Arc::new(Transport {
            http,
            base_url: config.base_url().to_owned(),
            account_limiter: RateLimiter::direct(quota(config.account_rate())),
            endpoint_limiter: RateLimiter::keyed(quota(config.endpoint_rate())),
            in_flight: Semaphore::new(config.max_concurrency.max(1)),
            max_retries: config.max_retries,
            latency_micros: AtomicU64::new(200_000),
            clock_offset: AtomicI64::new(0),
            first_answer_at: AtomicI64::new(i64::MIN),
            endpoint_rate: config.endpoint_rate(),
            account_rate: config.account_rate(),
            shared: config
                .shared_rate_limit
                .as_ref()
                .map(|shared| SharedBudget::new(shared, f64::from(config.account_rate())))
                .transpose()
                .map_err(|e| e.to_string())?,
        });
        let stripe_account = config
            .account_id
            .as_deref()
            .map(|account| {
                stripe_account_header(account)
                    .map_err(|_| "account_id is not a valid header value".to_owned())
            })
            .transpose()?;
        Ok(StripeClient {
            t,
            stripe_account,
            account_key: config.account_id.clone().unwrap_or_default(),
            sharers: 1,
        })
    }

    /// A client for `account` (a connected account, sent as `Stripe-Account`; `None`: the
    /// key's own) that shares this one's transport (its rate limits, concurrency and
    /// connections) with `sharers` accounts' reads at once.
    pub(crate) fn for_account(
        &self,
        account: Option<&str>,
        sharers: usize,
    ) -> Result<StripeClient, String> {
        Ok(StripeClient {
            t: self.t.clone(),
            stripe_account: account.map(stripe_account_header).transpose()?,
            account_key: account.unwrap_or_default().to_owned(),
            sharers: sharers.max(1),
        })
    }

    /// The server's second when this process first heard from it (its estimate of now before
    /// that): no earlier run can have seen an event created after it.
    pub(crate) fn first_answer_at(&self) -> i64 {
        match self.t.first_answer_at.load(Ordering::Relaxed) {
            i64::MIN => self.server_now(),
            at => at,
        }
    }

    /// Stripe's clock now, Unix seconds.
    pub(crate) fn server_now(&self) -> i64 {
        chrono::Utc::now().timestamp() + self.t.clock_offset.load(Ordering::Relaxed)
    }

    /// Requests the key needs in flight to reach its rate limit at the observed latency.
    pub(crate) fn key_concurrency(&self) -> usize {
        let latency = self.t.latency_micros.load(Ordering::Relaxed) as f64 / 1e6;
        (self.t.account_rate as f64 * latency * 1.5).ceil() as usize + 1
    }

    /// This account's share of [`StripeClient::key_concurrency`]: all of it when read alone.
    pub(crate) fn account_concurrency(&self) -> usize {
        (self.key_concurrency() / self.sharers).max(1)
    }

    /// Requests one endpoint needs in flight to reach its rate limit at the observed latency.
    pub(crate) fn useful_concurrency(&self) -> usize {
        let latency = self.t.latency_micros.load(Ordering::Relaxed) as f64 / 1e6;
        ((self.t.endpoint_rate as f64 * latency * 1.5).ceil() as usize + 1).clamp(2, 64)
    }

    /// GETs a JSON document. `endpoint` names the rate-limit bucket (the path template).
    pub(crate) async fn get(
        &self,
        path: &str,
        query: &[(String, String)],
        endpoint: &str,
    ) -> Result<(Value, i64), StripeError> {
        self.get_parsed::<Value>(path, query, endpoint).await
    }

    /// GETs one object as JSON text, and the server time no later than when it was read.
    pub(crate) async fn retrieve(
        &self,
        path: &str,
        endpoint: &str,
    ) -> Result<(Box<RawValue>, i64), StripeError> {
        self.get_parsed::<Box<RawValue>>(path, &[], endpoint).await
    }

    /// GETs one page of a list.
    pub(crate) async fn list(
        &self,
        path: &str,
        query: &[(String, String)],
        endpoint: &str,
    ) -> Result<Page, StripeError> {
        let (body, server_time) = self.get_parsed::<ListBody>(path, query, endpoint).await?;
        let next_page = body.next_page_url.as_deref().and_then(page_token);
        if body.has_more.is_none() && !path.starts_with("/v2/") {
            // Never guess that a list ended: a page that does not say could hide the rest.
            return Err(StripeError::local(
                "the list answer has no has_more field",
                format!("GET {path}"),
            ));
        }
        Ok(Page {
            has_more: body.has_more.unwrap_or(false) || next_page.is_some(),
            data: body.data,
            next_page,
            server_time,
        })
    }

    /// POSTs a form (create, update) or DELETEs, with an idempotency key so a retry never
    /// acts twice; answers the object.
    pub(crate) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        form: &[(String, String)],
        endpoint: &str,
    ) -> Result<Value, StripeError> {
        let request = Request {
            method,
            path,
            query: &[],
            form,
            endpoint,
            idempotency_key: Some(format!("stripe-sync-{:032x}", rand::random::<u128>())),
        };
        self.parsed::<Value>(&request).await.map(|(v, _)| v)
    }

    /// GETs and parses a body (see [`StripeClient::parsed`]).
    async fn get_parsed<T: for<'de> Deserialize<'de>>(
        &self,
        path: &str,
        query: &[(String, String)],
        endpoint: &str,
    ) -> Result<(T, i64), StripeError> {
        let request = Request {
            method: reqwest::Method::GET,
            path,
            query,
            form: &[],
            endpoint,
            idempotency_key: None,
        };
        self.parsed(&request).await
    }

    /// Sends a request and parses its body, retrying 429s, 5xx, network failures and bodies
    /// that do not parse (a truncated response), with one budget of `max_retries` for all.
    async fn parsed<T: for<'de> Deserialize<'de>>(
        &self,
        request: &Request<'_>,
    ) -> Result<(T, i64), StripeError> {
        let (path, endpoint) = (request.path, request.endpoint);
        let mut attempt = 0;
        // After a 429 the limiter already paces requests, so a refusal means a momentary
        // excess: those retries start at 0.1 s rather than 0.5 s.
        let mut rate_limited_waits = backoff(Duration::from_millis(100), Duration::from_secs(10));
        let mut failed_waits = backoff(Duration::from_millis(500), Duration::from_secs(30));
        loop {
            let (error, after) = match self.attempt(request).await {
                Attempt::Done(body, server_time) => match serde_json::from_slice::<T>(&body) {
                    Ok(parsed) => return Ok((parsed, server_time)),
                    Err(e) => (
                        StripeError::network(
                            format!("unreadable response: {e}"),
                            format!("{} {path}", request.method),
                            endpoint,
                        ),
                        None,
                    ),
                },
                Attempt::Fail(error) => return Err(error),
                Attempt::Retry { error, after } => (error, after),
            };
            if attempt >= self.t.max_retries {
                return Err(error);
            }
            attempt += 1;
            let wait = match after {
                Some(after) => after,
                None if error.kind == ErrorKind::RateLimited => {
                    rate_limited_waits.next().unwrap_or(Duration::from_secs(10))
                }
                None => failed_waits.next().unwrap_or(Duration::from_secs(30)),
            };
            tracing::debug!(path, attempt, "retrying in {wait:?}: {error}");
            tokio::time::sleep(wait).await;
        }
    }

    async fn attempt(&self, r: &Request<'_>) -> Attempt {
        let (path, query, endpoint) = (r.path, r.query, r.endpoint);
        let request = format!("{} {path}", r.method);
        let Ok(_permit) = self.t.in_flight.acquire().await else {
            return Attempt::Fail(StripeError::local("the client is shutting down", request));
        };
        self.t.account_limiter.until_ready().await;
        if let Some(shared) = &self.t.shared
            && let Err(e) = shared.acquire().await
        {
            // The budget's database is unreachable: back off and try again (then fail, naming it).
            return Attempt::retry(StripeError::local(e.to_string(), request), None);
        }
        // Each account's endpoints have their own limits (Stripe measures limits per account).
        self.t
            .endpoint_limiter
            .until_key_ready(&(self.account_key.clone(), endpoint.to_owned()))
            .await;
        let started = Instant::now();
        // What the response shows is at least as new as this, and possibly no newer: objects are
        // stamped with it (minus a second for the clock's resolution), so that an event for a
        // change made while the request was in flight is never older than the stamp.
        let sent_at = self.server_now() - 1;
        let mut builder = self
            .t
            .http
            .request(r.method.clone(), format!("{}{path}", self.t.base_url))
            .query(query);
        if !r.form.is_empty() {
            builder = builder.form(r.form);
        }
        if let Some(account) = &self.stripe_account {
            builder = builder.header("Stripe-Account", account.clone());
        }
        if let Some(key) = &r.idempotency_key {
            builder = builder.header("Idempotency-Key", key);
        }
        let sent = builder.send().await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => return Attempt::retry(network_error(&request, endpoint, &e), None),
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = match response.bytes().await {
            Ok(b) => b,
            Err(e) => return Attempt::retry(network_error(&request, endpoint, &e), None),
        };
        self.observe(started.elapsed(), &headers);
        if (200..300).contains(&status) {
            return Attempt::Done(body, sent_at);
        }
        refusal(status, &headers, &body, request, endpoint)
    }

    fn observe(&self, latency: Duration, headers: &HeaderMap) {
        let sample = latency.as_micros() as u64;
        let old = self.t.latency_micros.load(Ordering::Relaxed);
        self.t
            .latency_micros
            .store((old * 7 + sample) / 8, Ordering::Relaxed);
        if let Some(date) = headers
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|d| chrono::DateTime::parse_from_rfc2822(d).ok())
        {
            self.t.clock_offset.store(
                date.timestamp() - chrono::Utc::now().timestamp(),
                Ordering::Relaxed,
            );
            let _ = self.t.first_answer_at.compare_exchange(
                i64::MIN,
                date.timestamp(),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }
}

fn stripe_account_header(account: &str) -> Result<HeaderValue, String> {
    HeaderValue::from_str(account)
        .map_err(|_| format!("account id {account:?} is not a valid header value"))
}

/// One request to the API.
struct Request<'a> {
    method: reqwest::Method,
    path: &'a str,
    query: &'a [(String, String)],
    form: &'a [(String, String)],
    /// The rate-limit bucket (the path template).
    endpoint: &'a str,
    /// Sent as `Idempotency-Key`, the same on every retry.
    idempotency_key: Option<String>,
}

fn network_error(request: &str, endpoint: &str, e: &reqwest::Error) -> StripeError {
    let what = if e.is_timeout() {
        "request timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "connection failed"
    };
    let mut message = format!("{what}: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(&format!(": {s}"));
        source = s.source();
    }
    StripeError::network(message, request, endpoint)
}

/// The `page` parameter of a v2 `next_page_url` (a path and query, or a whole URL), decoded:
/// it is sent again as a query parameter, which encodes it once more.
fn page_token(url: &str) -> Option<String> {
    let absolute = reqwest::Url::parse(url)
        .or_else(|_| reqwest::Url::parse("http://stripe.invalid").and_then(|base| base.join(url)))
        .ok()?;
    absolute
        .query_pairs()
        .find(|(k, _)| k == "page")
        .map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_after_is_obeyed_within_bounds_and_never_panics() {
        assert_eq!(retry_after(" 2 "), Some(Duration::from_secs(2)));
        assert_eq!(retry_after("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(retry_after("86400"), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after("1e30"), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after("inf"), Some(MAX_RETRY_AFTER));
        for odd in ["-1", "NaN", "-inf", "", "Wed, 21 Oct 2026 07:28:00 GMT"] {
            assert_eq!(retry_after(odd), None, "{odd:?}");
        }
    }

    #[test]
    fn page_tokens() {
        assert_eq!(
            page_token("/v2/core/accounts?limit=20&page=abc"),
            Some("abc".into())
        );
        assert_eq!(page_token("/v2/core/accounts"), None);
        assert_eq!(
            page_token("https://api.stripe.com/v2/core/accounts?limit=20&page=a%2Bb%3D%3D"),
            Some("a+b==".into())
        );
    }
}

//! What a simulator serves (data set shape, keys, accounts) and the faults it injects, plus the
//! parsers of the textual forms the CLI and the admin API accept.

use serde::{Deserialize, Serialize};

use crate::error::FakeError;

/// The API keys accepted when none are configured.
pub const DEFAULT_KEYS: [&str; 4] = [
    "sk_test_fake",
    "sk_live_fake",
    "rk_test_fake",
    "rk_live_fake",
];

/// The most connected accounts a simulator holds. Each keeps its `account` object from the
/// start; its data is generated when first asked for, so thousands cost little until used.
pub const MAX_ACCOUNTS: usize = 20_000;

/// How the simulator is built. `Default` is scale 1 with two connected accounts.
#[derive(Debug, Clone)]
pub struct Config {
    /// Every id and value derives from it (with `now`, the whole data set does).
    pub seed: u64,
    /// Multiplier of the realistic per-stream mix (1.0 ≈ 1,000 customers, 3,000 invoices…);
    /// 0 generates nothing but `objects`.
    pub scale: f64,
    /// Exact object counts per stream, overriding the mix (`("customers", 10_000)`).
    pub objects: Vec<(String, usize)>,
    /// Number of connected accounts besides the platform.
    pub accounts: usize,
    /// Accepted API keys; `_live_` in a key selects live mode, anything else test mode.
    pub keys: Vec<String>,
    /// Errors, latency and limits to inject.
    pub faults: Faults,
    /// Where events are POSTed as webhooks, if anywhere.
    pub webhook: Option<WebhookConfig>,
    /// Anchor of the simulated clock (unix seconds); `None` is the real time at start.
    pub now: Option<i64>,
    /// Worker threads of the runtime `FakeStripe::start` creates.
    pub worker_threads: usize,
    /// Answer compact JSON; the default is api.stripe.com's layout (indented by two spaces,
    /// trailing newline). For benchmarks that want a source's best case.
    pub compact_json: bool,
    /// Lay out every generated top-level object in the answer layout when its data set is
    /// generated, so that its list pages are put together by concatenation, their first read
    /// included: a benchmark then measures the client, not the simulator. Same bytes served.
    pub prerender: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            seed: 1,
            scale: 1.0,
            objects: Vec::new(),
            accounts: 2,
            keys: DEFAULT_KEYS.iter().map(|k| k.to_string()).collect(),
            faults: Faults::default(),
            webhook: None,
            now: None,
            worker_threads: 2,
            compact_json: false,
            prerender: false,
        }
    }
}

/// Faults injected into `/v1` and `/v2` requests (never into `/_fake`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Added to every response.
    pub latency: Option<Latency>,
    /// Requests per second across every endpoint (token bucket; excess gets 429 `global-rate`).
    pub rate_limit: Option<f64>,
    /// Requests per second per endpoint (method + path template) of each account (excess gets
    /// 429 `endpoint-rate`).
    pub endpoint_rate_limit: Option<f64>,
    /// Fraction of requests answered 500 `api_error`.
    pub error_rate: f64,
    /// Fraction of requests answered 429 (Stripe's rate-limit body, reason endpoint-rate)
    /// whatever the limits: a busy account.
    pub throttle_rate: f64,
    /// Fraction of requests whose connection is closed without a response.
    pub drop_rate: f64,
    /// Fraction of successful responses corrupted: half truncated (Content-Length longer than
    /// the bytes sent, then close), half malformed (200 with invalid JSON).
    pub corrupt_rate: f64,
    /// Streams answered "not set up to use `<product>`" (400).
    pub disabled_streams: Vec<String>,
    /// Keys answered 401 `api_key_expired` from now on (a key revoked mid-run).
    pub revoked_keys: Vec<String>,
    /// Fraction of webhook deliveries sent twice.
    pub webhook_duplicate_rate: f64,
    /// Webhook deliveries queued within this many milliseconds of each other go out shuffled.
    pub webhook_reorder_window_ms: u64,
}

/// A fixed latency (`min_ms == max_ms`) or a uniform range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Latency {
    /// Shortest delay added to an answer, in milliseconds.
    pub min_ms: u64,
    /// Longest delay added to an answer, in milliseconds.
    pub max_ms: u64,
}

/// Where and how events are POSTed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// An `http://` URL.
    pub url: String,
    /// The endpoint secret (`whsec_…`) the signature is computed with.
    pub secret: String,
    /// Attempts per event before giving up.
    pub max_attempts: u32,
    /// Delay before the first retry; doubled for each later one.
    pub retry_base_ms: u64,
}

impl WebhookConfig {
    /// Delivery to `url` signed with `secret`: 4 attempts, retries from 200 ms.
    pub fn new(url: impl Into<String>, secret: impl Into<String>) -> WebhookConfig {
        WebhookConfig {
            url: url.into(),
            secret: secret.into(),
            max_attempts: 4,
            retry_base_ms: 200,
        }
    }
}

impl Faults {
    /// api.stripe.com as a live key meets it: 150-250 ms per request, 100 requests/s per
    /// account and 25 per endpoint (429 above). What benchmarks under live limits run against.
    pub fn live_like() -> Faults {
        Faults {
            latency: Some(Latency {
                min_ms: 150,
                max_ms: 250,
            }),
            rate_limit: Some(100.0),
            endpoint_rate_limit: Some(25.0),
            ..Faults::default()
        }
    }

    pub(crate) fn validate(&self) -> Result<(), FakeError> {
        for (name, rate) in [
            ("error_rate", self.error_rate),
            ("throttle_rate", self.throttle_rate),
            ("drop_rate", self.drop_rate),
            ("corrupt_rate", self.corrupt_rate),
            ("webhook_duplicate_rate", self.webhook_duplicate_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(FakeError::InvalidConfig(format!(
                    "{name} must be between 0 and 1, got {rate}"
                )));
            }
        }
        if self.error_rate + self.drop_rate + self.throttle_rate + self.corrupt_rate > 1.0 {
            return Err(FakeError::InvalidConfig(
                "error_rate + drop_rate + throttle_rate + corrupt_rate must not exceed 1".into(),
            ));
        }
        for (name, limit) in [
            ("rate_limit", self.rate_limit),
            ("endpoint_rate_limit", self.endpoint_rate_limit),
        ] {
            if let Some(rps) = limit
                && !(rps.is_finite() && rps > 0.0)
            {
                return Err(FakeError::InvalidConfig(format!(
                    "{name} must be a positive number of requests per second, got {rps}"
                )));
            }
        }
        if let Some(l) = self.latency
            && l.min_ms > l.max_ms
        {
            return Err(FakeError::InvalidConfig(format!(
                "latency range {}-{} is reversed",
                l.min_ms, l.max_ms
            )));
        }
        for stream in &self.disabled_streams {
            if stripe_catalog::catalog().resource(stream).is_none() {
                return Err(FakeError::UnknownStream(stream.clone()));
            }
        }
        Ok(())
    }
}

impl Config {
    pub(crate) fn validate(&self) -> Result<(), FakeError> {
        if !(self.scale.is_finite() && self.scale >= 0.0) {
            return Err(FakeError::InvalidConfig(format!(
                "scale must be a non-negative number, got {}",
                self.scale
            )));
        }
        for (stream, _) in &self.objects {
            if stripe_catalog::catalog().resource(stream).is_none() {
                return Err(FakeError::UnknownStream(stream.clone()));
            }
        }
        if self.keys.is_empty() {
            return Err(FakeError::InvalidConfig(
                "at least one API key is needed".into(),
            ));
        }
        if self.accounts > MAX_ACCOUNTS {
            return Err(FakeError::InvalidConfig(format!(
                "{} connected accounts is more than the simulator supports ({MAX_ACCOUNTS})",
                self.accounts
            )));
        }
        if let Some(w) = &self.webhook {
            if !w.url.starts_with("http://") {
                return Err(FakeError::InvalidConfig(format!(
                    "webhook URL must be http:// (no TLS in the simulator): {}",
                    w.url
                )));
            }
            if w.max_attempts == 0 {
                return Err(FakeError::InvalidConfig(
                    "webhook max_attempts must be at least 1".into(),
                ));
            }
        }
        self.faults.validate()
    }
}

/// Parses `customers=10000,invoices=2000`.
pub fn parse_objects(text: &str) -> Result<Vec<(String, usize)>, FakeError> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (stream, count) = part.split_once('=').ok_or_else(|| {
            FakeError::InvalidConfig(format!("expected STREAM=COUNT, got '{part}'"))
        })?;
        let count = count.trim().parse().map_err(|_| {
            FakeError::InvalidConfig(format!("'{count}' is not a count (in '{part}')"))
        })?;
        out.push((stream.trim().to_string(), count));
    }
    Ok(out)
}

/// Parses `200` (fixed) or `150-250` (uniform range), in milliseconds.
pub fn parse_latency(text: &str) -> Result<Latency, FakeError> {
    let number = |s: &str| {
        s.trim().parse::<u64>().map_err(|_| {
            FakeError::InvalidConfig(format!("'{text}' is not a latency in ms (N or MIN-MAX)"))
        })
    };
    let latency = match text.split_once('-') {
        Some((lo, hi)) => Latency {
            min_ms: number(lo)?,
            max_ms: number(hi)?,
        },
        None => {
            let ms = number(text)?;
            Latency {
                min_ms: ms,
                max_ms: ms,
            }
        }
    };
    if latency.min_ms > latency.max_ms {
        return Err(FakeError::InvalidConfig(format!(
            "latency range '{text}' is reversed"
        )));
    }
    Ok(latency)
}

/// Parses a comma-separated list, dropping empty items.
pub fn parse_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_cli_forms() {
        assert_eq!(
            parse_objects("customers=10, invoices=2").unwrap(),
            vec![("customers".to_string(), 10), ("invoices".to_string(), 2)]
        );
        assert!(parse_objects("customers").is_err());
        assert!(parse_objects("customers=x").is_err());
        assert_eq!(
            parse_latency("200").unwrap(),
            Latency {
                min_ms: 200,
                max_ms: 200
            }
        );
        assert_eq!(
            parse_latency("150-250").unwrap(),
            Latency {
                min_ms: 150,
                max_ms: 250
            }
        );
        assert!(parse_latency("250-150").is_err());
        assert!(parse_latency("fast").is_err());
        assert_eq!(parse_list("a,,b "), vec!["a", "b"]);
    }

    #[test]
    fn rejects_impossible_faults() {
        let faults = Faults {
            error_rate: 1.5,
            ..Faults::default()
        };
        assert!(faults.validate().is_err());
        let faults = Faults {
            rate_limit: Some(0.0),
            ..Faults::default()
        };
        assert!(faults.validate().is_err());
        let faults = Faults {
            disabled_streams: vec!["nope".into()],
            ..Faults::default()
        };
        assert!(faults.validate().is_err());
        assert!(Faults::default().validate().is_ok());
    }
}

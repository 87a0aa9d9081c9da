//! Counters of what the simulator served, for `/_fake/stats` and `stats()`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// A snapshot of the counters since start (or the last reset).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Requests to `/v1` and `/v2` (whatever their outcome).
    pub total: u64,
    /// By `"METHOD /path/{template}"`; unknown URLs count under `"METHOD (unrecognized)"`.
    pub by_endpoint: BTreeMap<String, u64>,
    /// By HTTP status of the answered requests (dropped ones have none).
    pub by_status: BTreeMap<u16, u64>,
    /// 429s for the global rate limit.
    pub rate_limited_global: u64,
    /// 429s for a per-endpoint rate limit.
    pub rate_limited_endpoint: u64,
    /// Injected 429s (`throttle_rate`), apart from the rate limits.
    pub throttled: u64,
    /// Injected 500s.
    pub server_errors: u64,
    /// Connections closed without an answer (`drop_rate`).
    pub dropped_connections: u64,
    /// Answers cut short of their Content-Length (`corrupt_rate`).
    pub truncated_bodies: u64,
    /// 200s with invalid JSON (`corrupt_rate`).
    pub malformed_bodies: u64,
    /// Events the webhook endpoint answered with a 2xx.
    pub webhooks_delivered: u64,
    /// Webhook attempts that failed (each retry counts).
    pub webhook_failures: u64,
    /// 200s answered in each whole second since start (or the last reset): a run's ramp and
    /// tail against a rate limit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ok_per_second: Vec<u64>,
    /// Milliseconds from start (or the last reset) to the arrival of the first request, before
    /// any latency or answer: how long a client took to set up before it asked anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_request_ms: Option<u64>,
    /// The same for the first `GET` of a top-level list (`/v1/customers`): how long a client
    /// took before its backfill began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_list_ms: Option<u64>,
}

/// What became of one request, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Recorded {
    Status(u16),
    RateLimitedGlobal,
    RateLimitedEndpoint,
    Throttled,
    ServerError,
    Dropped,
    Truncated,
    Malformed,
}

struct Counters {
    stats: Stats,
    by_endpoint: HashMap<(&'static str, Arc<str>), u64>,
    since: Instant,
}

impl Default for Counters {
    fn default() -> Counters {
        Counters {
            stats: Stats::default(),
            by_endpoint: HashMap::new(),
            since: Instant::now(),
        }
    }
}

/// One lock per request: cheap next to building a page, and simpler than atomics per endpoint.
#[derive(Default)]
pub(crate) struct StatsRecorder {
    inner: Mutex<Counters>,
}

impl StatsRecorder {
    pub(crate) fn record(&self, method: &'static str, endpoint: &Arc<str>, what: Recorded) {
        let mut c = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        c.stats.total += 1;
        *c.by_endpoint.entry((method, endpoint.clone())).or_default() += 1;
        let status = match what {
            Recorded::Status(s) => Some(s),
            Recorded::RateLimitedGlobal => {
                c.stats.rate_limited_global += 1;
                Some(429)
            }
            Recorded::RateLimitedEndpoint => {
                c.stats.rate_limited_endpoint += 1;
                Some(429)
            }
            Recorded::Throttled => {
                c.stats.throttled += 1;
                Some(429)
            }
            Recorded::ServerError => {
                c.stats.server_errors += 1;
                Some(500)
            }
            Recorded::Dropped => {
                c.stats.dropped_connections += 1;
                None
            }
            Recorded::Truncated => {
                c.stats.truncated_bodies += 1;
                Some(200)
            }
            Recorded::Malformed => {
                c.stats.malformed_bodies += 1;
                Some(200)
            }
        };
        if let Some(s) = status {
            *c.stats.by_status.entry(s).or_default() += 1;
        }
        if status == Some(200) {
            let second = c.since.elapsed().as_secs() as usize;
            let per_second = &mut c.stats.ok_per_second;
            if per_second.len() <= second {
                per_second.resize(second + 1, 0);
            }
            per_second[second] += 1;
        }
    }

    /// A `/v1` or `/v2` request came in (its outcome is recorded when it is answered); `listing`
    /// when it is the `GET` of a top-level list.
    pub(crate) fn arrived(&self, listing: bool) {
        let mut c = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let since = c.since.elapsed().as_millis() as u64;
        c.stats.first_request_ms.get_or_insert(since);
        if listing {
            c.stats.first_list_ms.get_or_insert(since);
        }
    }

    pub(crate) fn webhook(&self, delivered: bool) {
        let mut c = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if delivered {
            c.stats.webhooks_delivered += 1;
        } else {
            c.stats.webhook_failures += 1;
        }
    }

    pub(crate) fn snapshot(&self) -> Stats {
        let c = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let mut stats = c.stats.clone();
        stats.by_endpoint = c
            .by_endpoint
            .iter()
            .map(|((method, path), n)| (format!("{method} {path}"), *n))
            .collect();
        stats
    }

    pub(crate) fn reset(&self) {
        *self.inner.lock().unwrap_or_else(PoisonError::into_inner) = Counters::default();
    }
}

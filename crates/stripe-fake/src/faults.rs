//! The faults in force: token buckets for the rate limits, and the per-request dice for
//! latency, 500s, dropped connections and corrupted bodies.

use std::collections::HashSet;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use rand::RngExt;

use crate::config::Faults;

/// Why a request was refused with 429 (the `Stripe-Rate-Limited-Reason` header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RateLimited {
    Global,
    Endpoint,
}

impl RateLimited {
    pub(crate) fn reason(self) -> &'static str {
        match self {
            RateLimited::Global => "global-rate",
            RateLimited::Endpoint => "endpoint-rate",
        }
    }
}

/// What happens to one request after the rate limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Normal,
    ServerError,
    Throttle,
    Drop,
    Truncate,
    Malformed,
}

pub(crate) struct ActiveFaults {
    pub faults: Faults,
    global: Option<DefaultDirectRateLimiter>,
    /// Per endpoint (method + path template) and account: each connected account's endpoints
    /// have their own limits, while the global bucket counts every request the key makes.
    endpoint: Option<DefaultKeyedRateLimiter<(&'static str, Arc<str>, usize)>>,
    disabled: HashSet<String>,
}

/// A bucket refilled at `rps` that holds 100 ms worth of requests (at least two): small enough
/// that a few seconds of excess demand get within a few percent of the rate, and tolerant of
/// the scheduling jitter of a client that paces its requests exactly at the limit.
fn quota(rps: f64) -> Quota {
    let period = Duration::from_secs_f64(1.0 / rps).max(Duration::from_nanos(1));
    let burst = NonZeroU32::new(((rps / 10.0).round() as u32).max(2)).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst)
}

impl ActiveFaults {
    /// Expects validated faults (`Faults::validate`).
    pub(crate) fn new(faults: Faults) -> ActiveFaults {
        ActiveFaults {
            global: faults.rate_limit.map(|rps| RateLimiter::direct(quota(rps))),
            endpoint: faults
                .endpoint_rate_limit
                .map(|rps| RateLimiter::keyed(quota(rps))),
            disabled: faults.disabled_streams.iter().cloned().collect(),
            faults,
        }
    }

    /// Takes a token from the global bucket, then from the endpoint's (method + path template)
    /// for the account (`slot`: 0 the platform, else a connected account).
    pub(crate) fn admit(
        &self,
        method: &'static str,
        endpoint: &Arc<str>,
        slot: usize,
    ) -> Result<(), RateLimited> {
        if let Some(global) = &self.global
            && global.check().is_err()
        {
            return Err(RateLimited::Global);
        }
        if let Some(per_endpoint) = &self.endpoint
            && per_endpoint
                .check_key(&(method, endpoint.clone(), slot))
                .is_err()
        {
            return Err(RateLimited::Endpoint);
        }
        Ok(())
    }

    pub(crate) fn latency(&self) -> Option<Duration> {
        let l = self.faults.latency?;
        let ms = if l.max_ms > l.min_ms {
            rand::rng().random_range(l.min_ms..=l.max_ms)
        } else {
            l.min_ms
        };
        (ms > 0).then(|| Duration::from_millis(ms))
    }

    pub(crate) fn roll(&self) -> Outcome {
        let f = &self.faults;
        if f.error_rate + f.drop_rate + f.throttle_rate + f.corrupt_rate <= 0.0 {
            return Outcome::Normal;
        }
        let x: f64 = rand::rng().random();
        if x < f.drop_rate {
            Outcome::Drop
        } else if x < f.drop_rate + f.error_rate {
            Outcome::ServerError
        } else if x < f.drop_rate + f.error_rate + f.throttle_rate {
            Outcome::Throttle
        } else if x < f.drop_rate + f.error_rate + f.throttle_rate + f.corrupt_rate / 2.0 {
            Outcome::Truncate
        } else if x < f.drop_rate + f.error_rate + f.throttle_rate + f.corrupt_rate {
            Outcome::Malformed
        } else {
            Outcome::Normal
        }
    }

    pub(crate) fn is_disabled(&self, stream: &str) -> bool {
        self.disabled.contains(stream)
    }

    pub(crate) fn is_revoked(&self, key: &str) -> bool {
        self.faults.revoked_keys.iter().any(|k| k == key)
    }
}

/// Stripe's answer for a product the account has not activated.
pub(crate) fn not_enabled_message(stream: &str) -> String {
    let (product, url) = match stream.split('_').next().unwrap_or_default() {
        "issuing" => ("Issuing", "https://dashboard.stripe.com/issuing/overview"),
        "treasury" => ("Treasury", "https://dashboard.stripe.com/treasury"),
        "climate" => ("Climate", "https://dashboard.stripe.com/climate"),
        "terminal" => ("Terminal", "https://dashboard.stripe.com/terminal"),
        "identity" => ("Identity", "https://dashboard.stripe.com/identity"),
        "financial" => (
            "Financial Connections",
            "https://dashboard.stripe.com/financial-connections",
        ),
        "reporting" | "scheduled" => ("Sigma and reporting", "https://dashboard.stripe.com/sigma"),
        "tax" => ("Stripe Tax", "https://dashboard.stripe.com/tax"),
        "billing" => ("Billing", "https://dashboard.stripe.com/billing"),
        "forwarding" => (
            "the Vault and Forward API",
            "https://dashboard.stripe.com/settings",
        ),
        "v2" => ("Accounts v2", "https://dashboard.stripe.com/connect"),
        "accounts" | "application" | "transfers" => {
            ("Connect", "https://dashboard.stripe.com/connect/overview")
        }
        _ => ("this feature", "https://dashboard.stripe.com/settings"),
    };
    format!("Your account is not set up to use {product}. Please visit {url} to get started.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_account_has_its_own_endpoint_buckets_and_the_key_one_global_bucket() {
        let active = ActiveFaults::new(Faults {
            endpoint_rate_limit: Some(0.5),
            ..Faults::default()
        });
        let customers: Arc<str> = Arc::from("/v1/customers");
        // A bucket holds two requests: the third to the platform's endpoint waits.
        assert_eq!(active.admit("GET", &customers, 0), Ok(()));
        assert_eq!(active.admit("GET", &customers, 0), Ok(()));
        assert_eq!(
            active.admit("GET", &customers, 0),
            Err(RateLimited::Endpoint)
        );
        assert_eq!(active.admit("GET", &customers, 1), Ok(()));
        let global = ActiveFaults::new(Faults {
            rate_limit: Some(0.5),
            ..Faults::default()
        });
        assert_eq!(global.admit("GET", &customers, 0), Ok(()));
        assert_eq!(global.admit("GET", &customers, 1), Ok(()));
        assert_eq!(global.admit("GET", &customers, 2), Err(RateLimited::Global));
    }

    #[test]
    fn rolls_follow_the_rates() {
        let active = ActiveFaults::new(Faults {
            error_rate: 0.2,
            drop_rate: 0.1,
            throttle_rate: 0.15,
            corrupt_rate: 0.2,
            ..Faults::default()
        });
        let mut counts = [0usize; 6];
        for _ in 0..20_000 {
            counts[active.roll() as usize] += 1;
        }
        let frac = |i: usize| counts[i] as f64 / 20_000.0;
        assert!((frac(Outcome::ServerError as usize) - 0.2).abs() < 0.02);
        assert!((frac(Outcome::Drop as usize) - 0.1).abs() < 0.02);
        assert!((frac(Outcome::Throttle as usize) - 0.15).abs() < 0.02);
        assert!((frac(Outcome::Truncate as usize) - 0.1).abs() < 0.02);
        assert!((frac(Outcome::Malformed as usize) - 0.1).abs() < 0.02);
        assert_eq!(ActiveFaults::new(Faults::default()).roll(), Outcome::Normal);
    }

    #[test]
    fn products_are_named() {
        assert!(
            not_enabled_message("issuing_cards")
                .starts_with("Your account is not set up to use Issuing.")
        );
        assert!(not_enabled_message("treasury_financial_accounts").contains("Treasury"));
    }
}

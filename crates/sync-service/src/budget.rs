//! The rate budget a worker gives every Stripe source it runs: one token bucket per account in
//! the control database, so that all pipelines of an account, on all workers, and their live
//! lanes stay under the account's limit together.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};
use sync_engine_api::PipelineRequest;

/// Where the buckets are and how fast they refill.
#[derive(Debug, Clone)]
pub struct AccountBudget {
    /// The control database (its `sync_service.rate_buckets` table).
    pub url: String,
    /// Requests per second per account; `None`: the source's own rate (its `rate_limit`, or
    /// Stripe's default for the key).
    pub rps: Option<f64>,
}

impl AccountBudget {
    /// Adds the budget of the account `key` names to a Stripe source's config, unless it has
    /// one of its own.
    pub fn apply(&self, request: &mut PipelineRequest, key: &str) {
        if request.source.config.contains_key("shared_rate_limit") {
            return;
        }
        let mut shared = json!({"url": self.url, "key": key});
        if let Some(rps) = self.rps {
            shared["max_rps"] = json!(rps);
        }
        request
            .source
            .config
            .insert("shared_rate_limit".to_owned(), shared);
    }
}

/// How long finding a key's account may take before the key's digest stands in for it.
const ACCOUNT_LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

/// The Stripe account a pipeline's requests act on, as rate buckets and step locks key it:
/// `test:acct_…` or `live:acct_…`. Stripe limits requests per account, so two keys of one
/// account (a secret key and a restricted key, say) share one budget. The connected account
/// when the config names one (`account_id`, sent as `Stripe-Account`); otherwise the key's
/// own, asked once per key and process (`GET /v1/account`, by source-stripe's own client).
#[derive(Default)]
pub struct AccountKeys {
    /// Key digest → account id.
    known: Mutex<HashMap<String, String>>,
}

impl AccountKeys {
    /// The account key of a Stripe pipeline; `None` for other sources. When the account cannot
    /// be found (Stripe unreachable, the key refused, a config the source would refuse), a
    /// digest of the key stands in, and the next step asks again; the step itself reports
    /// what is wrong.
    pub async fn of(&self, request: &PipelineRequest) -> Option<String> {
        if request.source.name != "stripe" {
            return None;
        }
        let source = &request.source.config;
        let api_key = source.get("api_key")?.as_str()?;
        let digest =
            source_stripe::budget_key(api_key, source.get("account_id").and_then(Value::as_str));
        let Ok(config) =
            serde_json::from_value::<source_stripe::Config>(Value::Object(source.clone()))
        else {
            return Some(digest);
        };
        let mode = config.key_mode().name();
        if let Some(account) = self.lock().get(&digest) {
            return Some(format!("{mode}:{account}"));
        }
        let asked =
            tokio::time::timeout(ACCOUNT_LOOKUP_TIMEOUT, source_stripe::account_of(&config)).await;
        match asked {
            Ok(Ok(account)) => {
                self.lock().insert(digest, account.clone());
                Some(format!("{mode}:{account}"))
            }
            Ok(Err(e)) => {
                tracing::debug!("the key's account is unknown ({e}); its digest keys its budget");
                Some(digest)
            }
            Err(_) => {
                tracing::debug!("GET /v1/account took too long; the key's digest keys its budget");
                Some(digest)
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }
}

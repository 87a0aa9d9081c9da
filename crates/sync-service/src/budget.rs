//! The rate budget a worker gives every Stripe source it runs: one token bucket per account in
//! the control database, so that all pipelines of an account, on all workers, and their live
//! lanes stay under the account's limit together.

use serde_json::{Value, json};
use sync_engine::engine::PipelineRequest;

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
    /// Adds the budget to a Stripe source's config, unless it has one of its own.
    pub fn apply(&self, request: &mut PipelineRequest) {
        if request.source.config.contains_key("shared_rate_limit") {
            return;
        }
        let Some(key) = account_key(request) else {
            return;
        };
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

/// The Stripe account a pipeline reads, as buckets and step locks key it; `None` for other
/// sources.
pub fn account_key(request: &PipelineRequest) -> Option<String> {
    let config = &request.source.config;
    let api_key = config.get("api_key")?.as_str()?;
    (request.source.name == "stripe").then(|| {
        let account = config.get("account_id").and_then(Value::as_str);
        source_stripe::budget_key(api_key, account)
    })
}

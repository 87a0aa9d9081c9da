//! The source's config; [`config_schema`] is what `spec` publishes (field by field meaning).
//! The reference implementation's keys are taken with its meaning and mapped onto ours in
//! [`Config::try_from`] (see `reference.rs`); what cannot mean anything here is refused there,
//! naming what to use instead.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

pub(crate) use stripe_catalog::KeyMode;

/// Stripe's API.
pub(crate) const DEFAULT_BASE_URL: &str = "https://api.stripe.com";

/// The config of the Stripe source, as its JSON Schema (printed by `spec`) describes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "Map<String, Value>")]
pub struct Config {
    /// A secret (`sk_…`) or restricted (`rk_…`) key.
    pub api_key: String,
    /// `Stripe-Version`; the catalog's when absent.
    pub api_version: Option<String>,
    /// A connected account (`Stripe-Account`); the key's own account given by its id is read
    /// as the key's own (see [`crate::account::settle`]).
    pub account_id: Option<String>,
    /// Where the API is (a simulator in tests).
    pub base_url: String,
    /// Requests per second for the whole account.
    pub rate_limit: Option<u32>,
    /// Requests per second for one endpoint.
    pub endpoint_rate_limit: Option<u32>,
    /// Requests in flight at most.
    pub max_concurrency: usize,
    /// Records per stream after which a backfill stops (a sample).
    pub backfill_limit: Option<u64>,
    /// Objects created before this RFC 3339 time are not backfilled.
    pub start_date: Option<String>,
    /// Objects created before this Unix second are not backfilled (the reference's
    /// `account_created`).
    pub account_created: Option<i64>,
    /// Seconds before one request is abandoned (and retried).
    pub request_timeout_secs: u64,
    /// Retries of one request.
    pub max_retries: u32,
    /// Whether to read `/v1/events` after the backfills.
    pub events: bool,
    /// The webhook endpoint's signing secret (`whsec_…`): raw webhooks given as input are
    /// verified with it.
    pub webhook_secret: Option<String>,
    /// The signing secret of the platform's Connect endpoint (its connected accounts' events).
    pub connect_webhook_secret: Option<String>,
    /// How old a webhook's signature timestamp may be, in seconds.
    pub webhook_tolerance_secs: u64,
    /// After the backfill and the catch-up, keep running and apply changes as they happen.
    pub live: bool,
    /// Live: seconds between reads of `/v1/events`; 0 reads none (webhooks only).
    pub poll_interval_secs: f64,
    /// Live: the address of the source's own webhook endpoint (`POST /webhooks`).
    pub webhook_listen: Option<String>,
    /// The endpoint takes `POST` on any path, as the reference's `webhook_port` listener does.
    pub webhook_any_path: bool,
    /// Live: a state at least this often, in seconds.
    pub checkpoint_interval_secs: f64,
    /// Live, `connected_accounts: "all"`: seconds between listings of the connected accounts.
    pub accounts_relist_secs: f64,
    /// The public URL Stripe should send events to: `setup` creates (or reuses) a managed
    /// webhook endpoint for it.
    pub webhook_url: Option<String>,
    /// A rate budget shared with every other process syncing the same account.
    pub shared_rate_limit: Option<crate::shared_rate::SharedRateLimit>,
    /// Streams whose objects are read again from the API for every event, never taken from
    /// the event's payload.
    pub revalidate_objects: Vec<String>,
    /// Connect: the connected accounts read besides the key's own.
    pub connected_accounts: crate::connected_accounts::ConnectedAccounts,
    /// The config as given, for the complete config `setup` hands back.
    pub given: Map<String, Value>,
}

/// Every key the config takes, as given (before the reference's keys are mapped onto ours).
/// `spec` publishes its JSON Schema: these fields, their docs and their defaults.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "Stripe source",
    description = "The Stripe source's config: the key, the account, the limits, and how changes are followed."
)]
pub(crate) struct Given {
    /// Secret (sk_…) or restricted (rk_…) API key. Live keys (sk_live_, rk_live_) get live rate
    /// limits.
    #[schemars(length(min = 1), pattern("^(sk|rk)_(test|live)_"), extend("secret" = true))]
    pub api_key: String,
    /// Stripe-Version sent with every request; default: the catalog's version.
    #[serde(default)]
    #[schemars(pattern(r"^\d{4}-\d{2}-\d{2}(\.\w+)?$"), extend("x-resolved" = true))]
    pub api_version: Option<String>,
    /// The account to sync: a connected account (sent as Stripe-Account), or the key's own
    /// account by its id (as setup returns it); default: the key's own account.
    #[serde(default)]
    #[schemars(pattern("^acct_"), extend("x-resolved" = true))]
    pub account_id: Option<String>,
    /// API base URL (a Stripe simulator in tests).
    #[serde(default = "default_base_url")]
    #[schemars(pattern("^https?://"))]
    pub base_url: String,
    /// Requests per second for the whole account; default 100 for live keys, 25 for test keys.
    #[serde(default)]
    #[schemars(range(min = 1, max = 10000))]
    pub rate_limit: Option<u32>,
    /// Requests per second to one endpoint of one account (with connected_accounts, each
    /// account's endpoints have their own); default 25.
    #[serde(default)]
    #[schemars(range(min = 1, max = 10000))]
    pub endpoint_rate_limit: Option<u32>,
    /// Requests in flight at once, all streams together.
    #[serde(default = "default_max_concurrency")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_concurrency: usize,
    /// Stop each stream's backfill after this many records (a sample); the stream then counts as
    /// complete.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub backfill_limit: Option<u64>,
    /// Backfill objects created at or after this time (RFC 3339); default: everything (from
    /// Stripe's launch in 2011).
    #[serde(default)]
    #[schemars(extend("format" = "date-time"))]
    pub start_date: Option<String>,
    /// Seconds before one request is abandoned (and retried).
    #[serde(default = "default_request_timeout_secs")]
    #[schemars(range(min = 1))]
    pub request_timeout_secs: u64,
    /// Retries of one request on 429, 5xx, timeouts and dropped connections.
    #[serde(default = "default_max_retries")]
    #[schemars(range(max = 50))]
    pub max_retries: u32,
    /// Follow /v1/events for updates and deletes after the backfill.
    #[serde(default)]
    #[schemars(extend("default" = true))]
    pub events: Option<bool>,
    /// The webhook endpoint's signing secret (whsec_…). Raw webhooks given as input ({body,
    /// headers}) are verified with it: the Stripe-Signature timestamp and every v1 signature,
    /// compared in constant time.
    #[serde(default)]
    #[schemars(pattern("^whsec_"), extend("secret" = true))]
    pub webhook_secret: Option<String>,
    /// With connected_accounts: the signing secret (whsec_…) of the platform's Connect webhook
    /// endpoint, which receives the connected accounts' events (each names its account in
    /// `account`). A webhook verifies when its signature matches webhook_secret or this; setup
    /// returns it for the Connect endpoint it creates for webhook_url.
    #[serde(default)]
    #[schemars(pattern("^whsec_"), extend("secret" = true))]
    pub connect_webhook_secret: Option<String>,
    /// How old a webhook's signature timestamp may be, in seconds.
    #[serde(default = "default_webhook_tolerance_secs")]
    #[schemars(range(min = 1, max = 86400))]
    pub webhook_tolerance_secs: u64,
    /// After the backfill and the catch-up from the events cursor, keep running: apply changes
    /// as they happen (polling /v1/events and/or receiving webhooks) until stopped
    /// (SIGTERM/SIGINT), then end with a final state.
    #[serde(default)]
    #[schemars(extend("default" = false))]
    pub live: Option<bool>,
    /// Live: seconds between reads of /v1/events (0: none, webhooks only; the events cursor then
    /// stays where the catch-up left it, and a restart reads every event since again).
    #[serde(default)]
    #[schemars(range(min = 0, max = 86400), extend("default" = default_poll_interval_secs()))]
    pub poll_interval_secs: Option<f64>,
    /// Live: address (host:port) of the source's own webhook endpoint, POST /webhooks. It
    /// answers 200 only for a verified event it has handed on, 400 or 401 otherwise. Needs
    /// webhook_secret.
    #[serde(default)]
    #[schemars(pattern(r"^[^\s]+:[0-9]+$"))]
    pub webhook_listen: Option<String>,
    /// Live: a state (the events cursor) at least this often, so the destination commits and
    /// the checkpoint moves.
    #[serde(default = "default_checkpoint_interval_secs")]
    #[schemars(range(max = 86400), extend("exclusiveMinimum" = 0))]
    pub checkpoint_interval_secs: f64,
    /// Live with connected_accounts "all": seconds between listings of the connected accounts
    /// (GET /v1/accounts), which start reading an account newly connected and stop following
    /// one no longer listed, whatever webhooks bring or miss (0: never).
    #[serde(default = "default_accounts_relist_secs")]
    #[schemars(range(min = 0, max = 86400))]
    pub accounts_relist_secs: f64,
    /// The public URL Stripe sends events to. setup creates (or reuses) a webhook endpoint for
    /// it, marked metadata.managed_by=stripe-sync, and returns its secret as webhook_secret (a
    /// config update the engine saves); with connected_accounts also a Connect endpoint
    /// (connect=true) for the connected accounts' events, whose secret it returns as
    /// connect_webhook_secret. teardown deletes only the endpoints it made.
    #[serde(default)]
    #[schemars(pattern("^https?://"))]
    pub webhook_url: Option<String>,
    /// A rate budget shared by every process that syncs the same account (several pipelines,
    /// several workers): a token bucket in Postgres, one row per key, taken a few tokens at a
    /// time. Each request takes a token from it as well as from rate_limit.
    #[serde(default)]
    pub shared_rate_limit: Option<crate::shared_rate::SharedRateLimit>,
    /// Connect: also read the key's connected accounts, each under Stripe-Account: "none" (the
    /// key's own account only), "all" (the key's own and every account GET /v1/accounts lists,
    /// listed again at every run), or a list of account ids (the key's own and those). Every
    /// row carries its account in _account_id; the _accounts stream tells each account's
    /// status. Live, their events arrive through the platform's Connect endpoint (see
    /// webhook_url, connect_webhook_secret) and each account's /v1/events.
    #[serde(default)]
    #[schemars(extend("default" = "none"))]
    pub connected_accounts: Option<crate::connected_accounts::GivenConnectedAccounts>,
    // The reference implementation's keys, with their meaning here.
    /// Unix seconds: objects created before are not backfilled (as start_date; both given must
    /// agree). setup returns the key's own account's creation time here; default: everything.
    /// With connected_accounts it bounds the key's own account only (a connected account's
    /// objects may be older than the platform).
    #[serde(default)]
    #[schemars(range(min = 0), extend("x-resolved" = true))]
    pub account_created: Option<i64>,
    /// Whether the key is a live-mode key; when given it must agree with api_key
    /// (sk_live_/rk_live_ keys are live), else the config is refused.
    #[serde(default)]
    pub livemode: Option<bool>,
    /// Read /v1/events after the backfill (as events); live, also while running (false:
    /// webhooks only, poll_interval_secs 0). Default: true.
    #[serde(default)]
    pub poll_events: Option<bool>,
    /// Receive webhooks on this port, on every interface, at any path, after the backfill: live
    /// with webhook_listen 0.0.0.0:PORT. Needs webhook_secret (or webhook_url, whose setup
    /// returns it).
    #[serde(default)]
    #[schemars(range(min = 1, max = 65535))]
    pub webhook_port: Option<u16>,
    /// Streams (customers) or object types (customer, checkout.session) whose objects are read
    /// again from the API for every event (webhooks, pushed input, /v1/events) instead of taken
    /// from the event's payload: one request per event.
    #[serde(default)]
    #[schemars(inner(length(min = 1)))]
    pub revalidate_objects: Option<Vec<String>>,
    /// The Stripe CLI's websocket: not supported, true is refused; use webhook_port or
    /// webhook_listen (stripe listen --forward-to forwards to it), or live polling.
    #[serde(default)]
    pub websocket: Option<bool>,
}

pub(crate) fn default_poll_interval_secs() -> f64 {
    2.0
}

pub(crate) fn default_accounts_relist_secs() -> f64 {
    300.0
}

pub(crate) fn default_checkpoint_interval_secs() -> f64 {
    5.0
}

/// How old a webhook's signature may be when the config does not say (Stripe's libraries use
/// the same default).
pub const DEFAULT_WEBHOOK_TOLERANCE_SECS: u64 = 300;

pub(crate) fn default_webhook_tolerance_secs() -> u64 {
    DEFAULT_WEBHOOK_TOLERANCE_SECS
}

pub(crate) fn default_base_url() -> String {
    DEFAULT_BASE_URL.to_owned()
}
pub(crate) fn default_max_concurrency() -> usize {
    32
}
pub(crate) fn default_request_timeout_secs() -> u64 {
    30
}
pub(crate) fn default_max_retries() -> u32 {
    8
}

impl Config {
    /// Whether the key reads live or test data.
    pub fn key_mode(&self) -> KeyMode {
        KeyMode::of(&self.api_key)
    }

    /// Account-wide requests per second: live 100, test 25 (Stripe's published limits).
    pub fn account_rate(&self) -> u32 {
        self.rate_limit.unwrap_or(match self.key_mode() {
            KeyMode::Live => 100,
            KeyMode::Test => 25,
        })
    }

    /// Per-endpoint requests per second: 25, never above the account rate.
    pub fn endpoint_rate(&self) -> u32 {
        self.endpoint_rate_limit
            .unwrap_or(25)
            .min(self.account_rate())
    }

    /// The `Stripe-Version` sent: the configured one, else the catalog's.
    pub fn api_version(&self) -> &str {
        self.api_version
            .as_deref()
            .unwrap_or(&stripe_catalog::catalog().api_version)
    }

    /// The secrets a webhook's signature may be made with: the platform endpoint's, then the
    /// Connect endpoint's.
    pub fn webhook_secrets(&self) -> Vec<&str> {
        [&self.webhook_secret, &self.connect_webhook_secret]
            .into_iter()
            .filter_map(|s| s.as_deref())
            .collect()
    }

    /// The base URL without a trailing slash.
    pub fn base_url(&self) -> &str {
        self.base_url.trim_end_matches('/')
    }
}

/// The config's JSON Schema, published by `spec`.
pub(crate) fn config_schema() -> Value {
    let mut schema = sync_connector::config_schema::<Given>();
    // The one description a doc comment cannot hold: it names the catalog's version.
    if let Some(Value::String(description)) =
        schema.pointer_mut("/properties/api_version/description")
    {
        *description = format!(
            "Stripe-Version sent with every request; default {}.",
            stripe_catalog::catalog().api_version
        );
    }
    schema
}

#[cfg(test)]
mod schema_tests {
    use super::*;

    #[test]
    fn the_schema_lists_exactly_the_keys_the_config_takes() {
        let unknown = serde_json::json!({"\u{1}": 0});
        let refusal = serde_json::from_value::<Given>(unknown).unwrap_err();
        test_support::assert_schema_lists_the_fields(&config_schema(), &refusal);
    }
}

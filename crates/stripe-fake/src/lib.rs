#![warn(missing_docs)]
#![warn(unreachable_pub)]
//! A Stripe API simulator for tests, benchmarks and the demo.
//!
//! It serves every resource of the catalog (`stripe-catalog`) with data generated
//! deterministically from a seed out of Stripe's fixtures: Stripe-shaped lists (newest first,
//! `limit`, `starting_after`, `ending_before`, `created[...]`), retrieval, nested lists, events
//! with 30-day retention, create/update/delete with their events, signed webhook delivery,
//! several Connect accounts, test and live keys, and injectable faults (latency, global and
//! per-endpoint rate limits, 500s, dropped connections, truncated or malformed bodies, disabled
//! products). See `docs/stripe-fake.md`.
//!
//! ```
//! use serde_json::json;
//!
//! let fake = stripe_fake::FakeStripe::start(stripe_fake::Config {
//!     seed: 7,
//!     scale: 0.0,
//!     objects: vec![("customers".into(), 500)],
//!     accounts: 0,
//!     ..Default::default()
//! })?;
//! let newest = &fake.objects(None, "customers")?[0];
//! println!("GET {}/v1/customers/{}", fake.base_url(), newest["id"]);
//! fake.create(None, "customers", json!({"name": "Ada"}))?;
//! assert_eq!(fake.events(None)?[0]["type"], "customer.created");
//! # Ok::<(), stripe_fake::FakeError>(())
//! ```

mod accounts;
mod api;
mod api_error;
mod api_request;
mod auth;
mod body;
mod clock;
mod config;
mod connect;
mod error;
mod events;
mod faults;
mod fixtures;
mod forms;
mod generate;
mod http;
mod ids;
mod list;
mod listed;
mod load;
mod mutate;
mod nested;
mod pretty;
mod routes;
mod running_load;
mod server;
mod simulator;
mod stats;
mod store;
mod timeline;
mod v2;
mod values;
mod webhook;
mod writes;

pub use auth::Mode;
pub use clock::real_unix_now;
pub use config::{
    Config, DEFAULT_KEYS, Faults, Latency, MAX_ACCOUNTS, WebhookConfig, parse_latency, parse_list,
    parse_objects,
};
pub use error::FakeError;
pub use load::{LoadSpec, LoadStatus};
pub use server::FakeStripe;
pub use simulator::{Scope, Simulator};
pub use stats::Stats;
pub use webhook::{DEFAULT_TOLERANCE_SECS, SignatureError, signature_header, verify_signature};

//! What the engine knows about the two connectors it ships with, in one place: the shortcut
//! flags and environment variables that fill their configs, what identifies the data each one
//! sees (for the sync id and the checkpoint check), and where the Postgres destination keeps
//! the state. Every other connector is configured through its JSON config only.

use serde_json::{Map, Value};

pub(crate) const STRIPE: &str = "stripe";
/// The name of the Postgres destination.
pub const POSTGRES: &str = "postgres";
/// dest-postgres' default schema; the state table lives beside the tables.
pub const DEFAULT_SCHEMA: &str = "stripe";

/// A config key a shortcut flag or an environment variable can set.
pub(crate) struct Shortcut {
    /// The connector it belongs to.
    pub connector: &'static str,
    pub key: &'static str,
    pub flag: &'static str,
    /// The environment variables that fill it when nothing explicit does (two of them set to
    /// different values is an error).
    pub env: &'static [&'static str],
}

pub(crate) const SHORTCUTS: [Shortcut; 6] = [
    Shortcut {
        connector: STRIPE,
        key: "api_key",
        flag: "--stripe-api-key",
        env: &["STRIPE_API_KEY"],
    },
    Shortcut {
        connector: STRIPE,
        key: "base_url",
        flag: "--stripe-base-url",
        env: &[],
    },
    Shortcut {
        connector: STRIPE,
        key: "backfill_limit",
        flag: "--backfill-limit",
        env: &[],
    },
    Shortcut {
        connector: STRIPE,
        key: "rate_limit",
        flag: "--stripe-rate-limit",
        env: &[],
    },
    Shortcut {
        connector: POSTGRES,
        key: "url",
        flag: "--postgres-url",
        // POSTGRES_URL is the reference implementation's name for it.
        env: &["DATABASE_URL", "POSTGRES_URL"],
    },
    Shortcut {
        connector: POSTGRES,
        key: "schema",
        flag: "--schema",
        env: &[],
    },
];

/// How often dest-postgres commits in live mode, unless its config says otherwise.
pub(crate) const LIVE_FLUSH_INTERVAL_MS: u64 = 250;

/// What `sync --live` sets: the Stripe source keeps following changes after its backfill, and
/// dest-postgres commits every quarter second (unless its config says otherwise).
pub fn live_config(request: &mut sync_engine_api::PipelineRequest) -> anyhow::Result<()> {
    if request.source.name != STRIPE {
        anyhow::bail!(
            "--live: the engine knows the live mode of the stripe source only; for {:?}, set its own config",
            request.source.name
        );
    }
    match request.source.config.get("live") {
        Some(Value::Bool(false)) => {
            anyhow::bail!("--live and the source config's \"live\": false disagree; give one")
        }
        _ => {
            request
                .source
                .config
                .insert("live".to_owned(), Value::Bool(true));
        }
    }
    if request.destination.name == POSTGRES {
        request
            .destination
            .config
            .entry("flush_interval_ms")
            .or_insert_with(|| Value::from(LIVE_FLUSH_INTERVAL_MS));
    }
    Ok(())
}

/// A key that the built-in connector cannot run without, and how to give it.
pub(crate) fn required_key(connector: &str) -> Option<(&'static str, &'static str)> {
    match connector {
        STRIPE => Some((
            "api_key",
            "missing the Stripe API key: pass --stripe-api-key, set STRIPE_API_KEY, or give source.config.api_key in --config",
        )),
        POSTGRES => Some((
            "url",
            "missing the Postgres URL: pass --postgres-url (or --database-url), set DATABASE_URL (or POSTGRES_URL), or give destination.config.url in --config",
        )),
        _ => None,
    }
}

fn text<'a>(config: &'a Map<String, Value>, key: &str) -> &'a str {
    config.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Other names a built-in connector takes for a key: dest-postgres takes the reference
/// implementation's `connection_string` for `url`.
fn aliases(connector: &str, key: &str) -> &'static [&'static str] {
    match (connector, key) {
        (POSTGRES, "url") => &["connection_string"],
        _ => &[],
    }
}

/// Whether a connector's config gives `key`, under its name or an alias: then nothing else
/// (the environment) fills it.
pub(crate) fn gives(connector: &str, config: &Map<String, Value>, key: &str) -> bool {
    config.contains_key(key)
        || aliases(connector, key)
            .iter()
            .any(|a| config.contains_key(*a))
}

/// The Postgres URL of a dest-postgres config: `url`, else `connection_string`.
fn postgres_url(config: &Map<String, Value>) -> Option<&str> {
    config
        .get("url")
        .or_else(|| config.get("connection_string"))
        .and_then(Value::as_str)
}

/// What a source sees, as a stable text without secrets: for the Stripe source its key's mode
/// (test or live data), `account_id` and `base_url`; for another connector its name and the
/// config fields its spec marks `"x-sync-identity": true` (the engine cannot tell which of a
/// third-party connector's settings change the data it reads; its author can).
pub fn source_identity(name: &str, config: &Map<String, Value>, spec: &Value) -> String {
    match name {
        STRIPE => format!(
            "{name} ({} mode, account {}, {})",
            stripe_catalog::KeyMode::of(text(config, "api_key")).name(),
            match text(config, "account_id") {
                "" => "of the key",
                id => id,
            },
            match text(config, "base_url") {
                "" => "https://api.stripe.com",
                url => url,
            }
        ),
        _ => identity_fields(name, config, spec),
    }
}

/// Where a destination writes, as a stable text without secrets: for Postgres the server,
/// database and schema; for another connector as for sources.
pub fn destination_identity(name: &str, config: &Map<String, Value>, spec: &Value) -> String {
    match name {
        POSTGRES => format!(
            "{name} {} schema {}",
            pg_connect::describe_target(postgres_url(config).unwrap_or("")),
            match text(config, "schema") {
                "" => DEFAULT_SCHEMA,
                schema => schema,
            }
        ),
        _ => identity_fields(name, config, spec),
    }
}

/// A connector's name and the values of the config fields its spec marks
/// `"x-sync-identity": true`; a secret one (marked `secret` or named like one) is represented
/// by a digest, never its value.
fn identity_fields(name: &str, config: &Map<String, Value>, spec: &Value) -> String {
    let Some(properties) = spec.get("properties").and_then(Value::as_object) else {
        return name.to_owned();
    };
    let mut fields: Vec<String> = Vec::new();
    for (key, schema) in properties {
        if schema.get("x-sync-identity").and_then(Value::as_bool) != Some(true) {
            continue;
        }
        let value = config.get(key).cloned().unwrap_or(Value::Null);
        let secret = schema.get("secret").and_then(Value::as_bool) == Some(true)
            || sync_connector::redact::is_secret_name(key);
        let shown = if secret {
            use sha2::{Digest, Sha256};
            let digest = Sha256::digest(value.to_string().as_bytes());
            format!("sha256:{}", hex_prefix(&digest))
        } else {
            sync_connector::redact::redact(&value.to_string()).into_owned()
        };
        fields.push(format!("{key}={shown}"));
    }
    if fields.is_empty() {
        name.to_owned()
    } else {
        format!("{name} ({})", fields.join(", "))
    }
}

fn hex_prefix(bytes: &[u8]) -> String {
    bytes.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// Where the default state store is: the Postgres destination's database and schema.
pub struct PostgresStateLocation {
    /// The destination's database.
    pub url: String,
    /// The CA its TLS connection trusts, if it names one.
    pub ca_pem: Option<String>,
    /// The destination's schema, beside whose tables the state table lives.
    pub schema: String,
}

/// Where a Postgres destination (by name, or by a Postgres URL in its config) keeps the state.
pub fn postgres_state_location(
    destination: &str,
    config: &Map<String, Value>,
) -> Option<PostgresStateLocation> {
    let url = postgres_url(config)?;
    let is_postgres_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
    (destination == POSTGRES || is_postgres_url).then(|| PostgresStateLocation {
        url: url.to_owned(),
        ca_pem: config
            .get("ssl_ca_pem")
            .and_then(Value::as_str)
            .map(str::to_owned),
        schema: config
            .get("schema")
            .and_then(Value::as_str)
            .unwrap_or(DEFAULT_SCHEMA)
            .to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn identities_tell_test_from_live_and_hide_secrets() {
        let test = source_identity(STRIPE, &map(json!({"api_key": "sk_test_abc"})), &json!({}));
        let live = source_identity(STRIPE, &map(json!({"api_key": "sk_live_abc"})), &json!({}));
        assert_ne!(test, live);
        assert!(!test.contains("abc") && !live.contains("abc"));
        let rotated = source_identity(STRIPE, &map(json!({"api_key": "sk_test_xyz"})), &json!({}));
        assert_eq!(
            test, rotated,
            "a new key of the same mode reads the same data"
        );
        let spec = json!({"properties": {
            "repo": {"x-sync-identity": true},
            "token": {"secret": true, "x-sync-identity": true},
            "page_size": {}
        }});
        let other = source_identity(
            "github",
            &map(json!({"repo": "a/b", "token": "t0ps3cret", "page_size": 10})),
            &spec,
        );
        assert!(
            other.starts_with(r#"github (repo="a/b", token=sha256:"#),
            "{other}"
        );
        assert!(
            !other.contains("t0ps3cret") && !other.contains("page_size"),
            "{other}"
        );
        assert_eq!(
            source_identity("faker", &map(json!({"count": 1})), &json!({})),
            "faker"
        );
        let dest = destination_identity(
            POSTGRES,
            &map(json!({"url": "postgres://u:pw@db:5432/app"})),
            &json!({}),
        );
        assert_eq!(dest, "postgres db:5432/app schema stripe");
    }
}

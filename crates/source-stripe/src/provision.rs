//! `setup` and `teardown`: the webhook endpoint Stripe sends events to, when the config names
//! a `webhook_url`, and for a platform's read (`connected_accounts`) also a Connect endpoint
//! (`connect=true`: its connected accounts' events) for the same URL. The endpoints this source
//! manages are marked `metadata.managed_by` (the Connect one also `metadata.receives=connect`,
//! as Stripe's endpoint object does not say); teardown deletes only those.

use reqwest::Method;
use serde_json::Value;
use sync_connector::{ConnectorError, Output};
use sync_protocol::{ConfiguredCatalog, Control, Message};

use crate::account;
use crate::client::StripeClient;
use crate::config::Config;
use crate::discover;
use crate::error::StripeError;
use crate::error::fatal;

/// The mark on the endpoints this source manages.
pub(crate) const MANAGED_BY: &str = "stripe-sync";
const ENDPOINT: &str = "/v1/webhook_endpoints";
/// The mark of a managed Connect endpoint, in `metadata.receives`.
const CONNECT: &str = "connect";

/// Which of the two endpoints a URL may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The key's own account's events.
    Own,
    /// The connected accounts' events (`connect=true`).
    Connect,
}

impl Kind {
    fn of(endpoint: &Value) -> Kind {
        if endpoint["metadata"]["receives"] == CONNECT {
            Kind::Connect
        } else {
            Kind::Own
        }
    }

    /// The config key its secret is returned in.
    fn secret_key(self) -> &'static str {
        match self {
            Kind::Own => "webhook_secret",
            Kind::Connect => "connect_webhook_secret",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Kind::Own => "webhook endpoint",
            Kind::Connect => "Connect webhook endpoint",
        }
    }

    fn secret(self, config: &Config) -> Option<&str> {
        match self {
            Kind::Own => config.webhook_secret.as_deref(),
            Kind::Connect => config.connect_webhook_secret.as_deref(),
        }
    }
}

fn failed(e: &StripeError, what: &str) -> ConnectorError {
    fatal(e, what)
}

/// The managed endpoints for `url`.
async fn managed(client: &StripeClient, url: &str) -> Result<Vec<Value>, ConnectorError> {
    let mut found = Vec::new();
    let mut query = vec![("limit".to_owned(), "100".to_owned())];
    loop {
        let (page, _) = client
            .get(ENDPOINT, &query, ENDPOINT)
            .await
            .map_err(|e| failed(&e, "listing webhook endpoints"))?;
        let data = page["data"].as_array().cloned().unwrap_or_default();
        let last = data
            .last()
            .and_then(|e| e["id"].as_str().map(str::to_owned));
        found.extend(
            data.into_iter()
                .filter(|e| e["url"] == url && e["metadata"]["managed_by"] == MANAGED_BY),
        );
        match (page["has_more"].as_bool(), last) {
            (Some(true), Some(last)) => {
                query = vec![
                    ("limit".to_owned(), "100".to_owned()),
                    ("starting_after".to_owned(), last),
                ];
            }
            _ => return Ok(found),
        }
    }
}

async fn delete(client: &StripeClient, id: &str) -> Result<(), ConnectorError> {
    client
        .send(
            Method::DELETE,
            &format!("{ENDPOINT}/{id}"),
            &[],
            "/v1/webhook_endpoints/{id}",
        )
        .await
        .map(|_| ())
        .map_err(|e| failed(&e, &format!("deleting webhook endpoint {id}")))
}

/// Hands back the complete config, as the reference implementation does: the config as given,
/// with what it leaves out and setup finds — the account (`account_id`; for the key's own
/// account also `account_created`), `api_version`, and the secret of a webhook endpoint setup
/// creates for `webhook_url` — as one `control` message, when anything was added. The engine
/// applies it to this run and keeps what it cannot find again (the secret) for the next ones.
/// The account comes from the catalog when `discover` stamped it there (no request: the engine
/// discovers before every setup), else from `GET /v1/account`.
pub(crate) async fn setup(
    config: Config,
    catalog: &ConfiguredCatalog,
    output: &Output,
) -> Result<(), ConnectorError> {
    let given = config.given.clone();
    let api_version = config.api_version().to_owned();
    let mut complete = given.clone();
    let stamped = discover::stamped_account(catalog);
    let mut secrets = Vec::new();
    let looked_up = if stamped.is_none() || config.webhook_url.is_some() {
        let config = match account::settle(config).await {
            Ok(config) => config,
            Err(e) if complete.get("webhook_url").is_none_or(Value::is_null) => {
                // As in the reference: a read reports the account's failure.
                tracing::warn!("the account could not be read to complete the config: {e}");
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let client = StripeClient::new(&config).map_err(ConnectorError::config)?;
        // Side by side: setup waits for one round trip, not two.
        let (account, made) = tokio::try_join!(
            async {
                Ok(match stamped {
                    Some(_) => None,
                    None => own_or_connected(&client, &config).await,
                })
            },
            provision_endpoints(&client, &config),
        )?;
        secrets = made;
        account
    } else {
        None
    };
    if let Some((id, created)) = stamped.or(looked_up) {
        if !complete.contains_key("account_id") {
            complete.insert("account_id".into(), id.into());
        }
        let bounded =
            complete.contains_key("account_created") || complete.contains_key("start_date");
        if let (false, Some(created)) = (bounded, created) {
            complete.insert("account_created".into(), created.into());
        }
    }
    if !complete.contains_key("api_version") {
        complete.insert("api_version".into(), api_version.into());
    }
    for (kind, secret) in secrets {
        complete.insert(kind.secret_key().into(), secret.into());
    }
    if complete != given {
        output
            .emit(Message::Control(Control::SourceConfig(Value::Object(
                complete,
            ))))
            .await?;
    }
    Ok(())
}

/// The account the config reads and, for the key's own account, its creation time: a
/// connected account's `created` is when it was connected, and its objects may be older.
async fn own_or_connected(client: &StripeClient, config: &Config) -> Option<(String, Option<i64>)> {
    match account::fetch(client, config).await {
        Ok(account) => {
            let created = account.created.filter(|_| config.account_id.is_none());
            Some((account.id, created))
        }
        Err(e) => {
            tracing::warn!("the account could not be read to complete the config: {e}");
            None
        }
    }
}

/// Creates (or keeps) the managed endpoints for `webhook_url`: the key's own, and with
/// `connected_accounts` the Connect one (a Connect endpoint left from an earlier platform read
/// is deleted when the config reads one account); the secrets of those it creates.
async fn provision_endpoints(
    client: &StripeClient,
    config: &Config,
) -> Result<Vec<(Kind, String)>, ConnectorError> {
    let Some(url) = &config.webhook_url else {
        return Ok(Vec::new());
    };
    let existing = managed(client, url).await?;
    let mut made = Vec::new();
    for kind in [Kind::Own, Kind::Connect] {
        let of_kind: Vec<&Value> = existing.iter().filter(|e| Kind::of(e) == kind).collect();
        if kind == Kind::Connect && !config.connected_accounts.any() {
            for endpoint in of_kind {
                if let Some(id) = endpoint["id"].as_str() {
                    delete(client, id).await?;
                    tracing::info!(
                        endpoint = id,
                        "deleted the Connect webhook endpoint for {url}: connected_accounts is none"
                    );
                }
            }
            continue;
        }
        if let Some(secret) = provision_endpoint(client, url, kind, &of_kind, config).await? {
            made.push((kind, secret));
        }
    }
    Ok(made)
}

/// Keeps the enabled endpoint of `kind` whose secret the config holds, else replaces
/// `existing` with a new one; the new one's secret.
async fn provision_endpoint(
    client: &StripeClient,
    url: &str,
    kind: Kind,
    existing: &[&Value],
    config: &Config,
) -> Result<Option<String>, ConnectorError> {
    let usable = existing.iter().find(|e| e["status"] == "enabled");
    if let (Some(endpoint), Some(_)) = (usable, kind.secret(config)) {
        tracing::info!(
            endpoint = endpoint["id"].as_str().unwrap_or_default(),
            "the {} for {url} exists; keeping it",
            kind.noun()
        );
        return Ok(None);
    }
    // Without its secret (shown only at creation) an endpoint is of no use: replace it.
    for endpoint in existing {
        if let Some(id) = endpoint["id"].as_str() {
            delete(client, id).await?;
        }
    }
    let mut form = vec![
        ("url".to_owned(), url.to_owned()),
        ("enabled_events[]".to_owned(), "*".to_owned()),
        ("metadata[managed_by]".to_owned(), MANAGED_BY.to_owned()),
    ];
    match kind {
        Kind::Own => form.push((
            "description".to_owned(),
            "stripe-sync: changes to your Postgres".to_owned(),
        )),
        Kind::Connect => form.extend([
            ("connect".to_owned(), "true".to_owned()),
            ("metadata[receives]".to_owned(), CONNECT.to_owned()),
            (
                "description".to_owned(),
                "stripe-sync: your connected accounts' changes to your Postgres".to_owned(),
            ),
        ]),
    }
    let created = client
        .send(Method::POST, ENDPOINT, &form, ENDPOINT)
        .await
        .map_err(|e| failed(&e, &format!("creating the {}", kind.noun())))?;
    let Some(secret) = created["secret"].as_str() else {
        return Err(ConnectorError::system(format!(
            "Stripe created the {} but returned no secret",
            kind.noun()
        )));
    };
    tracing::info!(
        endpoint = created["id"].as_str().unwrap_or_default(),
        "created a {} for {url}",
        kind.noun()
    );
    sync_connector::redact::register_secret(secret);
    Ok(Some(secret.to_owned()))
}

/// Deletes the managed endpoints for `webhook_url` (no other).
pub(crate) async fn teardown(config: &Config) -> Result<(), ConnectorError> {
    let Some(url) = &config.webhook_url else {
        return Ok(());
    };
    let client = StripeClient::new(config).map_err(ConnectorError::config)?;
    for endpoint in managed(&client, url).await? {
        if let Some(id) = endpoint["id"].as_str() {
            delete(&client, id).await?;
            tracing::info!(endpoint = id, "deleted the webhook endpoint for {url}");
        }
    }
    Ok(())
}

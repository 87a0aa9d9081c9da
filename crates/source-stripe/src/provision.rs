//! `setup` and `teardown`: the webhook endpoint Stripe sends events to, when the config names
//! a `webhook_url`. The endpoint this source manages is marked `metadata.managed_by`; teardown
//! deletes only that one.

use reqwest::Method;
use serde_json::Value;
use sync_connector::{ConnectorError, Output};
use sync_protocol::{Control, Message};

use crate::client::StripeClient;
use crate::config::Config;
use crate::error::StripeError;
use crate::plan::fatal;

/// The mark on the endpoints this source manages.
pub const MANAGED_BY: &str = "stripe-sync";
const ENDPOINT: &str = "/v1/webhook_endpoints";

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

/// Creates (or keeps) the managed endpoint for `webhook_url`; a new one's secret goes out as a
/// config update holding only `webhook_secret`, which the engine saves for the next runs.
pub async fn setup(config: &Config, output: &Output) -> Result<(), ConnectorError> {
    let Some(url) = &config.webhook_url else {
        return Ok(());
    };
    let client = StripeClient::new(config).map_err(ConnectorError::config)?;
    let existing = managed(&client, url).await?;
    let usable = existing.iter().find(|e| e["status"] == "enabled");
    if let (Some(endpoint), Some(_)) = (usable, &config.webhook_secret) {
        tracing::info!(
            endpoint = endpoint["id"].as_str().unwrap_or_default(),
            "the webhook endpoint for {url} exists; keeping it"
        );
        return Ok(());
    }
    // Without its secret (shown only at creation) an endpoint is of no use: replace it.
    for endpoint in &existing {
        if let Some(id) = endpoint["id"].as_str() {
            delete(&client, id).await?;
        }
    }
    let form = vec![
        ("url".to_owned(), url.clone()),
        ("enabled_events[]".to_owned(), "*".to_owned()),
        ("metadata[managed_by]".to_owned(), MANAGED_BY.to_owned()),
        (
            "description".to_owned(),
            "stripe-sync: changes to your Postgres".to_owned(),
        ),
    ];
    let created = client
        .send(Method::POST, ENDPOINT, &form, ENDPOINT)
        .await
        .map_err(|e| failed(&e, "creating the webhook endpoint"))?;
    let Some(secret) = created["secret"].as_str() else {
        return Err(ConnectorError::system(
            "Stripe created the webhook endpoint but returned no secret",
        ));
    };
    tracing::info!(
        endpoint = created["id"].as_str().unwrap_or_default(),
        "created a webhook endpoint for {url}"
    );
    let updated = serde_json::json!({ "webhook_secret": secret });
    sync_connector::redact::register_secret(secret);
    output
        .emit(Message::Control(Control::SourceConfig(updated)))
        .await?;
    Ok(())
}

/// Deletes the managed endpoint for `webhook_url` (no other).
pub async fn teardown(config: &Config) -> Result<(), ConnectorError> {
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

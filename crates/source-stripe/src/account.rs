//! Which account a config reads. `account_id` names a connected account (sent as
//! `Stripe-Account`), or the key's own account by its id: the reference implementation's
//! configs hold the key's own id there, and so does the complete config `setup` hands back.
//! The key's own account is read as such (no `Stripe-Account`, the platform's own events
//! taken), so a config holding its id reads what the same config without it reads.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::Value;
use sha2::{Digest, Sha256};
use sync_connector::ConnectorError;

use crate::client::StripeClient;
use crate::config::Config;
use crate::error::{StripeError, fatal};

/// An account as `GET /v1/account` answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Account {
    /// `acct_…`.
    pub id: String,
    /// When it was created (for a connected account: when it was connected).
    pub created: Option<i64>,
}

/// `GET /v1/account` through `client`; a rejected key is a config error.
pub(crate) async fn fetch(
    client: &StripeClient,
    config: &Config,
) -> Result<Account, ConnectorError> {
    let value = client
        .get("/v1/account", &[], "/v1/account")
        .await
        .map_err(|e| fatal(&e, "reading the account"))?
        .0;
    from_answer(&value, config.account_id.as_deref())
        .ok_or_else(|| ConnectorError::system("GET /v1/account returned no id"))
}

/// `GET /v1/account` through `client` (acting on `id`), with Stripe's own error.
pub(crate) async fn lookup(client: &StripeClient, id: &str) -> Result<Account, StripeError> {
    let value = client.get("/v1/account", &[], "/v1/account").await?.0;
    from_answer(&value, Some(id))
        .ok_or_else(|| StripeError::local("the answer has no id", "GET /v1/account".to_owned()))
}

/// The account an answer of `GET /v1/account` describes; `asked` when it gives no id.
fn from_answer(value: &Value, asked: Option<&str>) -> Option<Account> {
    let id = value
        .get("id")
        .and_then(Value::as_str)
        .or(asked)?
        .to_owned();
    Some(Account {
        id,
        created: value.get("created").and_then(Value::as_i64),
    })
}

/// Keys' own accounts already asked for in this process: a key's account never changes.
static OWN: Mutex<Option<HashMap<String, Account>>> = Mutex::new(None);
const OWN_REMEMBERED: usize = 1024;

fn own_key(config: &Config) -> String {
    let mut digest = Sha256::new();
    digest.update(config.base_url().as_bytes());
    digest.update(b"\0");
    digest.update(config.api_key.as_bytes());
    hex::encode(digest.finalize())
}

/// The key's own account (`GET /v1/account` without `Stripe-Account`), asked once per key and
/// API per process.
pub(crate) async fn own(config: &Config) -> Result<Account, ConnectorError> {
    let key = own_key(config);
    let remembered = |key: &str| {
        let held = OWN.lock().unwrap_or_else(|e| e.into_inner());
        held.as_ref().and_then(|m| m.get(key).cloned())
    };
    if let Some(account) = remembered(&key) {
        return Ok(account);
    }
    let mut plain = config.clone();
    plain.account_id = None;
    let client = StripeClient::new(&plain).map_err(ConnectorError::config)?;
    let account = fetch(&client, &plain).await?;
    let mut held = OWN.lock().unwrap_or_else(|e| e.into_inner());
    let map = held.get_or_insert_with(HashMap::new);
    if map.len() >= OWN_REMEMBERED {
        map.clear();
    }
    map.insert(key, account.clone());
    Ok(account)
}

/// The config as it is read: `account_id` naming the key's own account is dropped (it is the
/// default); any other stays, a connected account.
pub(crate) async fn settle(mut config: Config) -> Result<Config, ConnectorError> {
    if let Some(id) = &config.account_id
        && own(&config).await?.id == *id
    {
        config.account_id = None;
    }
    Ok(config)
}

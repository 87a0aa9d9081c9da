//! The accounts a platform read covers, and what it knows of each: the roster kept in the
//! state, and the `_accounts` stream that shows it (one row per account).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sync_protocol::{ConfiguredCatalog, Stream};

use crate::client::StripeClient;
use crate::connected_accounts::ConnectedAccounts;
use crate::error::StripeError;
use crate::pager::Pager;
use crate::records::{ACCOUNT_ID, UPDATED_AT};

/// The stream of the roster.
pub(crate) const STREAM: &str = "_accounts";

/// Where an account stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Status {
    /// Read by the last run that covered it.
    Active,
    /// Stripe refused the platform's requests for it (access revoked, restricted): skipped.
    Unavailable,
    /// `connected_accounts: all`, and `GET /v1/accounts` no longer lists it: not read; its rows
    /// are kept.
    Deauthorized,
    /// Its read failed (after retries) in the last run that covered it.
    Failed,
}

/// What the roster knows of one account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Entry {
    pub status: Status,
    /// Unix seconds: the connected account's `created` (for a Standard account, when it was
    /// made, which may be before it was connected); the platform's own creation for it.
    #[serde(default)]
    pub connected_at: Option<i64>,
    /// Unix seconds: when a run first found it no longer listed.
    #[serde(default)]
    pub deauthorized_at: Option<i64>,
    /// Unix seconds (Stripe's clock): when its last read that completed every stream began.
    #[serde(default)]
    pub last_synced_at: Option<i64>,
    /// Why it is unavailable or failed.
    #[serde(default)]
    pub error: Option<String>,
}

impl Entry {
    /// An account the roster knew nothing of.
    pub(crate) fn unknown() -> Entry {
        Entry {
            status: Status::Failed,
            connected_at: None,
            deauthorized_at: None,
            last_synced_at: None,
            error: None,
        }
    }
}

/// The `_accounts` stream `discover` offers a platform read.
pub(crate) fn stream(platform: &str) -> Stream {
    let time = |what: &str| json!({"type": ["integer", "null"], "description": what});
    let mut stream = Stream::new(STREAM);
    stream.primary_key = vec![vec!["account_id".to_owned()], vec![ACCOUNT_ID.to_owned()]];
    stream.newer_than_field = Some(UPDATED_AT.to_owned());
    stream.json_schema = Some(json!({
        "type": "object",
        "description": "The accounts a platform's pipeline reads (connected_accounts): one row per account",
        "properties": {
            "account_id": {"type": "string", "description": "The account (acct_…)"},
            ACCOUNT_ID: {"type": "string", "enum": [platform], "description": "The platform whose key reads it"},
            "is_platform": {"type": "boolean", "description": "Whether it is the platform's own account"},
            "status": {"type": "string", "enum": ["active", "unavailable", "deauthorized", "failed"]},
            "connected_at": time("Unix seconds: the account's created (the platform's own: its creation)"),
            "deauthorized_at": time("Unix seconds: when a run first found it no longer listed by GET /v1/accounts"),
            "last_synced_at": time("Unix seconds: when its last read that completed every stream began"),
            "error": {"type": ["string", "null"], "description": "Why it is unavailable or failed"},
            UPDATED_AT: {"type": "integer", "description": "Unix seconds of the version this record holds"},
        },
        "required": ["account_id", ACCOUNT_ID, "status", UPDATED_AT],
    }));
    stream.metadata = Some(json!({"always_selected": true}));
    stream
}

/// What is known of one account, as its record and the service's view show it.
pub(crate) fn view(platform: &str, account: &str, entry: &Entry) -> Value {
    json!({
        "account_id": account,
        "is_platform": account == platform,
        "status": entry.status,
        "connected_at": entry.connected_at,
        "deauthorized_at": entry.deauthorized_at,
        "last_synced_at": entry.last_synced_at,
        "error": entry.error,
    })
}

/// The record of one account.
pub(crate) fn record(platform: &str, account: &str, entry: &Entry, now: i64) -> Value {
    let mut record = view(platform, account, entry);
    record[ACCOUNT_ID] = json!(platform);
    record[UPDATED_AT] = json!(now);
    record
}

/// The catalog without the roster's stream, and whether it was selected.
pub(crate) fn split_catalog(mut catalog: ConfiguredCatalog) -> (ConfiguredCatalog, bool) {
    let before = catalog.streams.len();
    catalog.streams.retain(|s| s.stream.name != STREAM);
    let selected = catalog.streams.len() != before;
    (catalog, selected)
}

#[derive(Deserialize)]
struct Listed {
    id: String,
}

/// The connected accounts to read, in order.
pub(crate) async fn connected(
    client: &StripeClient,
    which: &ConnectedAccounts,
) -> Result<Vec<String>, StripeError> {
    match which {
        ConnectedAccounts::None => Ok(Vec::new()),
        ConnectedAccounts::Listed(ids) => Ok(ids.clone()),
        ConnectedAccounts::All => {
            let mut ids = Vec::new();
            let mut pager = Pager::new(client, "/v1/accounts".into(), "/v1/accounts", Vec::new());
            while let Some(page) = pager.next().await? {
                for object in page.data {
                    let listed: Listed = serde_json::from_str(object.get()).map_err(|e| {
                        StripeError::local(
                            format!("an account without an id: {e}"),
                            "GET /v1/accounts",
                        )
                    })?;
                    if !ids.contains(&listed.id) {
                        ids.push(listed.id);
                    }
                }
            }
            Ok(ids)
        }
    }
}

/// Marks the accounts the roster holds as read that are no longer listed, when every
/// connected account is read (`all`); returns them.
pub(crate) fn mark_departed(
    roster: &mut BTreeMap<String, Entry>,
    platform: &str,
    listed: &[String],
    now: i64,
) -> Vec<String> {
    let mut departed = Vec::new();
    for (id, entry) in roster.iter_mut() {
        if id == platform || listed.contains(id) || entry.status == Status::Deauthorized {
            continue;
        }
        entry.status = Status::Deauthorized;
        entry.deauthorized_at = Some(now);
        entry.error = None;
        departed.push(id.clone());
    }
    departed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn departed_accounts_are_marked_once() {
        let active = Entry {
            status: Status::Active,
            connected_at: Some(1),
            deauthorized_at: None,
            last_synced_at: Some(2),
            error: None,
        };
        let mut roster: BTreeMap<String, Entry> = [
            ("acct_p".to_owned(), active.clone()),
            ("acct_a".to_owned(), active.clone()),
            ("acct_b".to_owned(), active),
        ]
        .into_iter()
        .collect();
        let gone = mark_departed(&mut roster, "acct_p", &["acct_a".to_owned()], 10);
        assert_eq!(gone, ["acct_b"]);
        assert_eq!(roster["acct_b"].status, Status::Deauthorized);
        assert_eq!(roster["acct_b"].deauthorized_at, Some(10));
        assert_eq!(roster["acct_b"].last_synced_at, Some(2));
        assert!(mark_departed(&mut roster, "acct_p", &["acct_a".to_owned()], 11).is_empty());
        assert_eq!(roster["acct_b"].deauthorized_at, Some(10));
        let row = record("acct_p", "acct_b", &roster["acct_b"], 12);
        assert_eq!(row["status"], "deauthorized");
        assert_eq!(row["_account_id"], "acct_p");
        assert_eq!(row["is_platform"], false);
    }
}

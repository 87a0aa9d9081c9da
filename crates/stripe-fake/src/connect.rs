//! Connecting and disconnecting a platform's accounts: the platform records
//! `account.application.authorized` or `account.application.deauthorized`, naming the account
//! in the event's `account`, and its `/v1/accounts` lists the connected ones only. (The
//! simulator refuses `Stripe-Account` for a disconnected account, as Stripe does once access
//! is revoked; a platform's endpoint made with `connect=true` gets its connected accounts'
//! events, `webhook.rs`.)

use serde_json::{Value, json};

use crate::error::FakeError;
use crate::mutate::{Mutation, MutationContext, record_event_about};
use crate::store::DataSet;

/// The platform's Connect application, the object of its authorize / deauthorize events.
fn application(platform: &str) -> Value {
    json!({
        "id": format!("ca_{}", platform.trim_start_matches("acct_")),
        "object": "application",
        "name": "Fake Platform Inc.",
    })
}

/// Connects (`true`) or disconnects `account` in the platform's data set `ds`; nothing happens
/// (no event) when it already is so.
pub(crate) fn set_connected(
    ds: &mut DataSet,
    account: &str,
    connected: bool,
    ctx: &MutationContext<'_>,
) -> Result<Mutation, FakeError> {
    let unknown = || FakeError::UnknownAccount(account.to_owned());
    let collection = ds.collections.get_mut("accounts").ok_or_else(unknown)?;
    let at = collection.position(account).ok_or_else(unknown)?;
    let entry = &mut collection.entries[at];
    let mut events = Vec::new();
    if entry.deleted == connected {
        entry.deleted = !connected;
        let event_type = if connected {
            "account.application.authorized"
        } else {
            "account.application.deauthorized"
        };
        let object = application(&ds.account_id).to_string();
        events.push(record_event_about(
            ds,
            ctx,
            event_type,
            object.as_bytes(),
            None,
            Some(account),
        ));
    }
    Ok(Mutation {
        object: json!({"id": account, "object": "account", "connected": connected}),
        events,
    })
}

//! `connected_accounts`: which of a Connect platform's connected accounts a read covers besides
//! the key's own, and the settings it cannot be combined with yet.

use schemars::JsonSchema;
use serde::Deserialize;

/// Which connected accounts are read, as given.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum GivenConnectedAccounts {
    /// `"none"` or `"all"`.
    Mode(AccountsMode),
    /// These accounts (`acct_…`).
    Listed(#[schemars(inner(pattern("^acct_[A-Za-z0-9]+$")))] Vec<String>),
}

/// `"none"`: the key's own account only; `"all"`: every account `GET /v1/accounts` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum AccountsMode {
    None,
    All,
}

/// Which connected accounts a read covers besides the key's own.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ConnectedAccounts {
    /// None: the key's own account (or `account_id`) only.
    #[default]
    None,
    /// Every account `GET /v1/accounts` lists when the read starts.
    All,
    /// These accounts, in this order, without repeats.
    Listed(Vec<String>),
}

impl ConnectedAccounts {
    /// Whether any connected account is read.
    pub fn any(&self) -> bool {
        !matches!(self, ConnectedAccounts::None)
    }
}

/// The setting as given, checked against the rest of the config: what cannot be done with
/// several accounts yet is refused, naming both keys.
pub(crate) fn settle(
    given: Option<GivenConnectedAccounts>,
    live: bool,
    webhook_url: Option<&str>,
) -> Result<ConnectedAccounts, String> {
    let accounts = match given {
        None | Some(GivenConnectedAccounts::Mode(AccountsMode::None)) => ConnectedAccounts::None,
        Some(GivenConnectedAccounts::Mode(AccountsMode::All)) => ConnectedAccounts::All,
        Some(GivenConnectedAccounts::Listed(ids)) => {
            let mut listed: Vec<String> = Vec::new();
            for id in ids {
                let digits = id.strip_prefix("acct_").unwrap_or_default();
                if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_alphanumeric()) {
                    return Err(format!(
                        "connected_accounts: {id:?} is not an account id (acct_…)"
                    ));
                }
                if !listed.contains(&id) {
                    listed.push(id);
                }
            }
            if listed.is_empty() {
                ConnectedAccounts::None
            } else {
                ConnectedAccounts::Listed(listed)
            }
        }
    };
    if accounts.any() {
        if live {
            return Err(
                "connected_accounts: live runs (live, webhook_port) read one account; \
                 connected accounts are read by runs that end (leave live out, and run again for \
                 the changes since)"
                    .to_owned(),
            );
        }
        if webhook_url.is_some() {
            return Err(
                "connected_accounts: webhook_url makes a webhook endpoint for the key's \
                 own account only, which would leave the connected accounts' events out; leave \
                 webhook_url out (each run reads every account's /v1/events)"
                    .to_owned(),
            );
        }
    }
    Ok(accounts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn given(v: serde_json::Value) -> Option<GivenConnectedAccounts> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn modes_and_lists() {
        assert_eq!(
            settle(given(serde_json::json!("all")), false, None),
            Ok(ConnectedAccounts::All)
        );
        assert_eq!(
            settle(given(serde_json::json!("none")), false, None),
            Ok(ConnectedAccounts::None)
        );
        assert_eq!(
            settle(
                given(serde_json::json!(["acct_2", "acct_1", "acct_2"])),
                false,
                None
            ),
            Ok(ConnectedAccounts::Listed(vec![
                "acct_2".into(),
                "acct_1".into()
            ]))
        );
        for wrong in ["cus_1", "acct_", "acct_é", "acct_1 2"] {
            let refused = settle(given(serde_json::json!([wrong])), false, None).unwrap_err();
            assert!(refused.starts_with("connected_accounts: \""), "{refused}");
        }
        assert!(
            serde_json::from_value::<GivenConnectedAccounts>(serde_json::json!("some")).is_err()
        );
        let live = settle(given(serde_json::json!("all")), true, None).unwrap_err();
        assert!(live.starts_with("connected_accounts: live"), "{live}");
        assert!(settle(given(serde_json::json!("all")), false, Some("https://x")).is_err());
        assert_eq!(
            settle(given(serde_json::json!("none")), true, Some("https://x")),
            Ok(ConnectedAccounts::None)
        );
    }
}

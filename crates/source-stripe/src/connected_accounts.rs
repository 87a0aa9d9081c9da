//! `connected_accounts`: which of a Connect platform's connected accounts a read covers besides
//! the key's own.

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

/// The setting as given; an id that is not an account's is refused, naming it.
pub(crate) fn settle(given: Option<GivenConnectedAccounts>) -> Result<ConnectedAccounts, String> {
    Ok(match given {
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
    })
}

impl ConnectedAccounts {
    /// Whether `account` (not the platform's own) is one the setting reads.
    pub(crate) fn covers(&self, account: &str) -> bool {
        match self {
            ConnectedAccounts::None => false,
            ConnectedAccounts::All => true,
            ConnectedAccounts::Listed(ids) => ids.iter().any(|id| id == account),
        }
    }
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
            settle(given(serde_json::json!("all"))),
            Ok(ConnectedAccounts::All)
        );
        assert_eq!(
            settle(given(serde_json::json!("none"))),
            Ok(ConnectedAccounts::None)
        );
        assert_eq!(
            settle(given(serde_json::json!(["acct_2", "acct_1", "acct_2"]))),
            Ok(ConnectedAccounts::Listed(vec![
                "acct_2".into(),
                "acct_1".into()
            ]))
        );
        for wrong in ["cus_1", "acct_", "acct_é", "acct_1 2"] {
            let refused = settle(given(serde_json::json!([wrong]))).unwrap_err();
            assert!(refused.starts_with("connected_accounts: \""), "{refused}");
        }
        assert!(
            serde_json::from_value::<GivenConnectedAccounts>(serde_json::json!("some")).is_err()
        );
        let all = ConnectedAccounts::All;
        assert!(all.covers("acct_1"));
        let listed = ConnectedAccounts::Listed(vec!["acct_1".into()]);
        assert!(listed.covers("acct_1") && !listed.covers("acct_2"));
        assert!(!ConnectedAccounts::None.covers("acct_1"));
    }
}

//! A platform's state: each account's own state side by side. A stream's state holds every
//! account's state of that stream (`{"v": 1, "accounts": {acct: state}}`); the global state
//! holds every account's global state, the platform's id and the roster of accounts
//! (`{"v": 1, "platform": acct, "accounts": {acct: state}, "roster": {acct: entry}}`).
//! A state of one account alone is the platform's part when a platform read starts from it,
//! and a platform's state gives a one-account read its account's part.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use sync_protocol::SourceStateSet;

use super::roster::Entry;

const VERSION: u64 = 1;
const ACCOUNTS: &str = "accounts";
const PLATFORM: &str = "platform";
const ROSTER: &str = "roster";

/// The platform whose state `state` is, when it is a platform's.
fn platform_of(state: &SourceStateSet) -> Option<&str> {
    state.global.get(PLATFORM)?.as_str()
}

/// One account's part of a platform's state.
fn part(state: &SourceStateSet, account: &str) -> SourceStateSet {
    let of = |value: &Value| value.get(ACCOUNTS).and_then(|a| a.get(account)).cloned();
    SourceStateSet {
        streams: state
            .streams
            .iter()
            .filter_map(|(stream, value)| Some((stream.clone(), of(value)?)))
            .collect(),
        global: of(&state.global).unwrap_or_else(|| json!({})),
    }
}

/// The state a read of one account starts from: `account`'s part (the key's own when `None`)
/// of a platform's state, else the state as it is.
pub(crate) fn own_part(state: SourceStateSet, account: Option<&str>) -> SourceStateSet {
    match platform_of(&state) {
        Some(platform) => {
            let account = account.unwrap_or(platform).to_owned();
            part(&state, &account)
        }
        None => state,
    }
}

/// What a platform read starts from: every account's saved states and the roster.
#[derive(Debug, Default)]
pub(crate) struct Saved {
    /// Stream → account → that account's state of the stream.
    pub streams: BTreeMap<String, Map<String, Value>>,
    /// Account → its global state.
    pub globals: Map<String, Value>,
    pub roster: BTreeMap<String, Entry>,
}

impl Saved {
    /// The saved state of `platform`'s read: a platform's state, or one account's (the
    /// platform's own: its per-account checks refuse it if it is another's). A platform's state
    /// of another platform is dropped, with the reason.
    pub(crate) fn read(state: &SourceStateSet, platform: &str) -> (Saved, Option<String>) {
        match platform_of(state) {
            None => {
                let mut saved = Saved::default();
                for (stream, value) in &state.streams {
                    saved
                        .streams
                        .entry(stream.clone())
                        .or_default()
                        .insert(platform.to_owned(), value.clone());
                }
                if state.global.as_object().is_some_and(|g| !g.is_empty()) {
                    saved
                        .globals
                        .insert(platform.to_owned(), state.global.clone());
                }
                (saved, None)
            }
            Some(other) if other != platform => (
                Saved::default(),
                Some(format!(
                    "the saved state is platform {other}'s, but this key's account is {platform}: every account is read from the start"
                )),
            ),
            Some(_) => {
                let accounts = |value: &Value| {
                    value
                        .get(ACCOUNTS)
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_default()
                };
                let roster = state
                    .global
                    .get(ROSTER)
                    .cloned()
                    .and_then(|r| serde_json::from_value(r).ok())
                    .unwrap_or_default();
                (
                    Saved {
                        streams: state
                            .streams
                            .iter()
                            .map(|(stream, value)| (stream.clone(), accounts(value)))
                            .collect(),
                        globals: accounts(&state.global),
                        roster,
                    },
                    None,
                )
            }
        }
    }

    /// `account`'s part, for its read.
    pub(crate) fn part(&self, account: &str) -> SourceStateSet {
        SourceStateSet {
            streams: self
                .streams
                .iter()
                .filter_map(|(stream, by_account)| {
                    Some((stream.clone(), by_account.get(account)?.clone()))
                })
                .collect(),
            global: self
                .globals
                .get(account)
                .cloned()
                .unwrap_or_else(|| json!({})),
        }
    }
}

/// A stream's state: every account's.
pub(crate) fn stream_value(by_account: &Map<String, Value>) -> Value {
    json!({"v": VERSION, ACCOUNTS: by_account})
}

/// What a platform's state says of each account (the `_accounts` rows, without the
/// bookkeeping): `None` when `state` is not a platform's.
pub(crate) fn accounts(state: &SourceStateSet) -> Option<Value> {
    let platform = platform_of(state)?;
    let roster: BTreeMap<String, Entry> = state
        .global
        .get(ROSTER)
        .cloned()
        .and_then(|r| serde_json::from_value(r).ok())
        .unwrap_or_default();
    let listed: Vec<Value> = roster
        .iter()
        .map(|(account, entry)| super::roster::view(platform, account, entry))
        .collect();
    Some(json!({"platform": platform, "accounts": listed}))
}

/// The global state: every account's, the platform and the roster.
pub(crate) fn global_value(
    platform: &str,
    globals: &Map<String, Value>,
    roster: &BTreeMap<String, Entry>,
) -> Value {
    json!({"v": VERSION, PLATFORM: platform, ACCOUNTS: globals, ROSTER: roster})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_accounts_part_round_trips() {
        let mut by_account = Map::new();
        by_account.insert("acct_p".into(), json!({"phase": "complete"}));
        by_account.insert("acct_c".into(), json!({"phase": "ranges"}));
        let mut globals = Map::new();
        globals.insert("acct_c".into(), json!({"events_cursor": 1}));
        let state = SourceStateSet {
            streams: [("customers".to_owned(), stream_value(&by_account))]
                .into_iter()
                .collect(),
            global: global_value("acct_p", &globals, &BTreeMap::new()),
        };
        let (saved, dropped) = Saved::read(&state, "acct_p");
        assert_eq!(dropped, None);
        let c = saved.part("acct_c");
        assert_eq!(c.streams["customers"], json!({"phase": "ranges"}));
        assert_eq!(c.global, json!({"events_cursor": 1}));
        assert_eq!(own_part(state.clone(), Some("acct_c")), c);
        let p = own_part(state.clone(), None);
        assert_eq!(p.streams["customers"], json!({"phase": "complete"}));
        assert_eq!(p.global, json!({}));
        assert!(Saved::read(&state, "acct_other").1.is_some());
        // One account's state is the platform's part.
        let single = SourceStateSet {
            streams: [("customers".to_owned(), json!({"phase": "complete"}))]
                .into_iter()
                .collect(),
            global: json!({"v": 1}),
        };
        assert_eq!(own_part(single.clone(), None), single);
        let (saved, _) = Saved::read(&single, "acct_p");
        assert_eq!(saved.part("acct_p"), single);
        let none = saved.part("acct_c");
        assert!(none.streams.is_empty());
        assert_eq!(none.global, json!({}));
    }
}

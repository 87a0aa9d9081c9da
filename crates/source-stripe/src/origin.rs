//! Whose event a pushed event is (a webhook, a `source_input`): only the account and mode the
//! source syncs may become its records, which are stamped with that account's id. Every
//! surface that takes pushed events (the live webhook endpoint, `read --input`, sync-service's
//! `/webhooks/{id}`) asks [`Owner::admits`].
//!
//! Stripe's rules: a platform's own events carry no `account`; an event of a connected account
//! carries `account: "acct_…"` (a platform's Connect endpoint receives those of every connected
//! account); `livemode` is the mode of the key that can read the event.

use serde_json::Value;

use crate::config::Config;
use stripe_catalog::KeyMode;

/// The account and mode a source syncs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Owner {
    /// `account_id` of the config: a connected account, whose events name it.
    pub connected: Option<String>,
    /// The key's own account (`GET /v1/account`), when it was looked up.
    pub own: Option<String>,
    /// Whether the key is a live-mode key.
    pub livemode: bool,
}

/// Where one event says it comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Origin<'a> {
    /// The event's id, to name it.
    pub event: &'a str,
    /// Its `account`: none for a platform's own event.
    pub account: Option<&'a str>,
    /// Its `livemode`, when it has one.
    pub livemode: Option<bool>,
}

/// Why an event is not the source's own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotOurs {
    /// Another account's event.
    #[error("event {event} is of account {theirs}, not {ours}, which this source syncs")]
    OtherAccount {
        /// The event.
        event: String,
        /// The account it names.
        theirs: String,
        /// The account the source syncs.
        ours: String,
    },
    /// A platform's own event, at a source of one of its connected accounts.
    #[error(
        "event {event} is the platform's own (it names no account), not of connected account {ours}, which this source syncs"
    )]
    PlatformEvent {
        /// The event.
        event: String,
        /// The connected account the source syncs.
        ours: String,
    },
    /// An event of the other mode.
    #[error("event {event} is a {theirs}-mode event, but this source's key reads {ours}-mode data")]
    OtherMode {
        /// The event.
        event: String,
        /// The event's mode.
        theirs: &'static str,
        /// The key's mode.
        ours: &'static str,
    },
    /// A connected account's event, at a platform's source whose `connected_accounts` leaves
    /// that account out.
    #[error("event {event} is of account {theirs}, which connected_accounts does not name")]
    NotCovered {
        /// The event.
        event: String,
        /// The account it names.
        theirs: String,
    },
    /// A connected account's event, at a platform's source that cannot read the account.
    #[error("event {event} is of account {theirs}, which the platform's key cannot read: {why}")]
    Inaccessible {
        /// The event.
        event: String,
        /// The account it names.
        theirs: String,
        /// Stripe's answer.
        why: String,
    },
    /// The event names an account and the key's own was not looked up: no verdict yet.
    #[error("event {event} names account {theirs}; the key's own account is not known yet")]
    OwnAccountUnknown {
        /// The event.
        event: String,
        /// The account it names.
        theirs: String,
    },
}

fn mode(livemode: bool) -> &'static str {
    if livemode { "live" } else { "test" }
}

impl<'a> Origin<'a> {
    /// The origin of an event as JSON; `None` when it has no string `id`, or an `account` or
    /// `livemode` of the wrong type (not a readable event).
    pub(crate) fn of(event: &'a Value) -> Option<Origin<'a>> {
        let account = match event.get("account") {
            None | Some(Value::Null) => None,
            Some(Value::String(account)) => Some(account.as_str()),
            Some(_) => return None,
        };
        let livemode = match event.get("livemode") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(livemode)) => Some(*livemode),
            Some(_) => return None,
        };
        Some(Origin {
            event: event.get("id")?.as_str()?,
            account,
            livemode,
        })
    }
}

impl Owner {
    /// The owner a config reads, its key's own account `own` when known.
    pub(crate) fn of(config: &Config, own: Option<String>) -> Owner {
        Owner {
            connected: config.account_id.clone(),
            own,
            livemode: config.key_mode() == KeyMode::Live,
        }
    }

    /// `Ok` when the event is of the key's mode (or says none).
    pub(crate) fn admits_mode(&self, origin: &Origin<'_>) -> Result<(), NotOurs> {
        match origin.livemode {
            Some(livemode) if livemode != self.livemode => Err(NotOurs::OtherMode {
                event: origin.event.to_owned(),
                theirs: mode(livemode),
                ours: mode(self.livemode),
            }),
            _ => Ok(()),
        }
    }

    /// `Ok` when the event is this source's own to apply; otherwise why not, naming it.
    pub(crate) fn admits(&self, origin: &Origin<'_>) -> Result<(), NotOurs> {
        self.admits_mode(origin)?;
        let ours = match (&self.connected, &self.own, origin.account) {
            (None, _, None) => return Ok(()),
            (Some(connected), _, None) => {
                return Err(NotOurs::PlatformEvent {
                    event: origin.event.to_owned(),
                    ours: connected.clone(),
                });
            }
            (Some(connected), _, Some(_)) => connected,
            (None, Some(own), Some(_)) => own,
            (None, None, Some(theirs)) => {
                return Err(NotOurs::OwnAccountUnknown {
                    event: origin.event.to_owned(),
                    theirs: theirs.to_owned(),
                });
            }
        };
        match origin.account {
            Some(theirs) if theirs != ours => Err(NotOurs::OtherAccount {
                event: origin.event.to_owned(),
                theirs: theirs.to_owned(),
                ours: ours.clone(),
            }),
            _ => Ok(()),
        }
    }
}

/// Why a receiver that knows only the config (not the key's account) refuses an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Not the source's own event.
    #[error(transparent)]
    NotOurs(NotOurs),
    /// No string `id`, or an `account` or `livemode` of the wrong type.
    #[error("not a readable Stripe event (no id, or an account or livemode of the wrong type)")]
    Unreadable,
    /// The event names an account, and the key's own could not be looked up to compare. The
    /// cause is kept for the receiver's log, never put in its answer (which goes to whoever
    /// sent the webhook).
    #[error("the key's account could not be looked up to compare with the event's (retry later)")]
    AccountUnknown(String),
}

/// [`Owner::admits`] for a receiver that knows only the config: the key's own account is
/// looked up (`GET /v1/account`, once per key and process) only when the event names an
/// account and the config has no `account_id`, or names none and the config has one.
pub async fn admit(config: &Config, event: &Value) -> Result<(), Refusal> {
    let origin = Origin::of(event).ok_or(Refusal::Unreadable)?;
    let mut owner = Owner::of(config, None);
    if config.connected_accounts.any() {
        return admit_to_platform(config, &owner, &origin).await;
    }
    match owner.admits(&origin) {
        Err(NotOurs::OwnAccountUnknown { .. }) => {
            let own = crate::account_of(config)
                .await
                .map_err(|e| Refusal::AccountUnknown(e.to_string()))?;
            owner.own = Some(own);
            owner.admits(&origin).map_err(Refusal::NotOurs)
        }
        // `account_id` may name the key's own account, whose events name none.
        Err(NotOurs::PlatformEvent { event, ours }) => {
            let own = crate::account::own(config)
                .await
                .map_err(|e| Refusal::AccountUnknown(e.to_string()))?;
            if own.id == ours {
                Ok(())
            } else {
                Err(Refusal::NotOurs(NotOurs::PlatformEvent { event, ours }))
            }
        }
        verdict => verdict.map_err(Refusal::NotOurs),
    }
}

/// A platform's source (`connected_accounts`) takes its own events and those of every
/// connected account it reads (the platform's key's own id counts as its own).
async fn admit_to_platform(
    config: &Config,
    owner: &Owner,
    origin: &Origin<'_>,
) -> Result<(), Refusal> {
    owner.admits_mode(origin).map_err(Refusal::NotOurs)?;
    match origin.account {
        Some(theirs) if !config.connected_accounts.covers(theirs) => {
            let own = crate::account::own(config)
                .await
                .map_err(|e| Refusal::AccountUnknown(e.to_string()))?;
            if own.id == theirs {
                return Ok(());
            }
            Err(Refusal::NotOurs(NotOurs::NotCovered {
                event: origin.event.to_owned(),
                theirs: theirs.to_owned(),
            }))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin<'a>(account: Option<&'a str>, livemode: Option<bool>) -> Origin<'a> {
        Origin {
            event: "evt_1",
            account,
            livemode,
        }
    }

    fn platform() -> Owner {
        Owner {
            connected: None,
            own: Some("acct_platform".into()),
            livemode: false,
        }
    }

    #[test]
    fn a_platform_source_takes_its_own_events_only() {
        let owner = platform();
        assert_eq!(owner.admits(&origin(None, Some(false))), Ok(()));
        assert_eq!(owner.admits(&origin(Some("acct_platform"), None)), Ok(()));
        assert!(matches!(
            owner.admits(&origin(Some("acct_other"), Some(false))),
            Err(NotOurs::OtherAccount { .. })
        ));
        let live = owner.admits(&origin(None, Some(true))).unwrap_err();
        assert_eq!(
            live.to_string(),
            "event evt_1 is a live-mode event, but this source's key reads test-mode data"
        );
    }

    #[test]
    fn a_connected_source_refuses_the_platforms_own_events() {
        let owner = Owner {
            connected: Some("acct_c".into()),
            own: None,
            livemode: true,
        };
        assert_eq!(owner.admits(&origin(Some("acct_c"), Some(true))), Ok(()));
        assert!(matches!(
            owner.admits(&origin(None, Some(true))),
            Err(NotOurs::PlatformEvent { .. })
        ));
        assert!(matches!(
            owner.admits(&origin(Some("acct_d"), Some(true))),
            Err(NotOurs::OtherAccount { .. })
        ));
    }

    #[test]
    fn without_the_keys_account_only_events_naming_none_are_settled() {
        let owner = Owner {
            own: None,
            ..platform()
        };
        assert_eq!(owner.admits(&origin(None, None)), Ok(()));
        assert!(matches!(
            owner.admits(&origin(Some("acct_x"), None)),
            Err(NotOurs::OwnAccountUnknown { .. })
        ));
    }

    #[test]
    fn origins_are_read_from_json() {
        let event = serde_json::json!({"id": "evt_1", "account": "acct_1", "livemode": true});
        assert_eq!(
            Origin::of(&event),
            Some(Origin {
                event: "evt_1",
                account: Some("acct_1"),
                livemode: Some(true)
            })
        );
        assert_eq!(
            Origin::of(&serde_json::json!({"id": "evt_1", "account": 5})),
            None
        );
    }
}

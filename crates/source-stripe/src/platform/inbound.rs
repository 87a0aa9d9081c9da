//! Events pushed to a platform's source (`read --input`, sync-service's inbox of webhooks from
//! the platform's endpoint and its Connect endpoint): each is applied to the account it names
//! (`account`; none names the platform's own), in that account's context (its streams'
//! generations from its part of the state), made at its first event.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;
use sync_connector::{ConnectorError, InputLines, Output};
use sync_protocol::{ConfiguredCatalog, SourceStateSet};

use super::combined::Saved;
use super::{refused, roster};
use crate::account::{self, Account};
use crate::client::StripeClient;
use crate::config::Config;
use crate::events::{Applied, Counts, EventsCtx, Pushed, Taken};
use crate::origin::{NotOurs, Origin};
use crate::push::{Applier, apply_input, pushed_ctx};

/// Whose one pushed event is, by its `account`.
pub(super) struct Addressed {
    /// Its id.
    pub event: String,
    /// The account it is applied to: the platform's own when it names none (or the platform).
    pub account: String,
    /// Its `type`.
    pub event_type: String,
    /// Its `created`.
    pub created: Option<i64>,
}

/// The account `text` (an event's JSON) is of; else why it is not taken.
pub(super) fn addressee(config: &Config, platform: &str, text: &str) -> Result<Addressed, Taken> {
    let event: Value = serde_json::from_str(text)
        .map_err(|e| Taken::Unreadable(format!("not a readable event: {e}")))?;
    let origin = Origin::of(&event).ok_or_else(|| {
        Taken::Unreadable(
            "not a readable event (no id, or an account or livemode of the wrong type)".to_owned(),
        )
    })?;
    let account = match origin.account {
        Some(theirs) if theirs != platform => {
            if !config.connected_accounts.covers(theirs) {
                return Err(Taken::NotOurs(NotOurs::NotCovered {
                    event: origin.event.to_owned(),
                    theirs: theirs.to_owned(),
                }));
            }
            theirs.to_owned()
        }
        _ => platform.to_owned(),
    };
    Ok(Addressed {
        event: origin.event.to_owned(),
        account,
        event_type: event["type"].as_str().unwrap_or_default().to_owned(),
        created: event["created"].as_i64(),
    })
}

/// An account's pushed events: where they are applied, or why they cannot be.
enum Target {
    Ready {
        ctx: Box<EventsCtx>,
        applied: Applied,
    },
    Inaccessible(String),
}

/// A platform's pushed events, each applied to its account.
struct Inbound {
    config: Config,
    client: Arc<StripeClient>,
    platform: Account,
    catalog: ConfiguredCatalog,
    saved: Saved,
    output: Output,
    targets: HashMap<String, Target>,
    pushed: Pushed,
}

impl Inbound {
    /// The context `id`'s events are applied in, made at its first event: a connected account
    /// is first asked for (`GET /v1/account` with `Stripe-Account`), and one Stripe refuses
    /// is remembered as such.
    async fn ensure_target(&mut self, id: &str) -> Result<(), ConnectorError> {
        if !self.targets.contains_key(id) {
            let target = self.make_target(id).await?;
            self.targets.insert(id.to_owned(), target);
        }
        Ok(())
    }

    async fn make_target(&self, id: &str) -> Result<Target, ConnectorError> {
        let connected = (id != self.platform.id).then_some(id);
        let client = Arc::new(
            self.client
                .for_account(connected, 1)
                .map_err(ConnectorError::config)?,
        );
        let mut config = self.config.clone();
        let account = match connected {
            None => self.platform.clone(),
            Some(id) => match account::lookup(&client, id).await {
                Ok(account) => {
                    config.account_id = Some(id.to_owned());
                    config.account_created = None;
                    account
                }
                Err(e) if refused(e.kind) => return Ok(Target::Inaccessible(e.to_string())),
                Err(e) => return Err(crate::error::fatal(&e, &format!("account {id}"))),
            },
        };
        let state = self.saved.part(id);
        let ctx = pushed_ctx(
            client,
            &config,
            account,
            &self.catalog,
            &state,
            &self.output,
        )
        .await?;
        Ok(Target::Ready {
            ctx: Box::new(ctx),
            applied: Applied::default(),
        })
    }
}

impl Applier for Inbound {
    async fn apply(&mut self, text: &str) -> Result<Taken, ConnectorError> {
        let addressed = match addressee(&self.config, &self.platform.id, text) {
            Ok(addressed) => addressed,
            Err(taken) => return Ok(taken),
        };
        let account = addressed.account;
        self.ensure_target(&account).await?;
        let Some(target) = self.targets.get_mut(&account) else {
            return Err(ConnectorError::system("an account's context was lost"));
        };
        match target {
            Target::Ready { ctx, applied } => self
                .pushed
                .apply(ctx, text, applied)
                .await
                .map_err(|e| e.ending(&format!("applying a pushed event of account {account}"))),
            Target::Inaccessible(why) => Ok(Taken::NotOurs(NotOurs::Inaccessible {
                event: addressed.event,
                theirs: account,
                why: why.clone(),
            })),
        }
    }

    fn counts(&self) -> &Counts {
        self.pushed.counts()
    }
}

/// `read --input` of a platform's source: every event applied to its account.
pub(crate) async fn read_input(
    config: Config,
    catalog: ConfiguredCatalog,
    state: SourceStateSet,
    input: InputLines,
    output: Output,
) -> Result<(), ConnectorError> {
    let client = Arc::new(StripeClient::new(&config).map_err(ConnectorError::config)?);
    super::refuse_account_id(&config)?;
    let platform = account::fetch(&client, &config).await?;
    let (catalog, _) = roster::split_catalog(catalog);
    let (saved, dropped) = Saved::read(&state, &platform.id);
    if let Some(reason) = dropped {
        crate::plan::warn(&output, reason).await?;
    }
    let mut inbound = Inbound {
        config: config.clone(),
        client: client.clone(),
        platform,
        catalog,
        saved,
        output,
        targets: HashMap::new(),
        pushed: Pushed::default(),
    };
    apply_input(&config, &client, input, &mut inbound).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(accounts: Value) -> Config {
        serde_json::from_value(serde_json::json!({
            "api_key": "sk_test_x",
            "connected_accounts": accounts,
        }))
        .unwrap()
    }

    fn event(account: Option<&str>) -> String {
        serde_json::json!({"id": "evt_1", "object": "event", "type": "customer.created",
            "created": 7, "account": account})
        .to_string()
    }

    #[test]
    fn each_event_goes_to_the_account_it_names_and_only_to_one_the_platform_reads() {
        let all = config(serde_json::json!("all"));
        let to = |config: &Config, account| {
            addressee(config, "acct_p", &event(account)).map(|a| (a.account, a.created))
        };
        assert_eq!(to(&all, None).ok(), Some(("acct_p".to_owned(), Some(7))));
        assert_eq!(
            to(&all, Some("acct_p")).ok(),
            Some(("acct_p".to_owned(), Some(7)))
        );
        assert_eq!(
            to(&all, Some("acct_c")).ok(),
            Some(("acct_c".to_owned(), Some(7)))
        );
        let listed = config(serde_json::json!(["acct_c"]));
        assert_eq!(
            to(&listed, Some("acct_c")).ok(),
            Some(("acct_c".to_owned(), Some(7)))
        );
        match to(&listed, Some("acct_other")) {
            Err(Taken::NotOurs(why)) => assert_eq!(
                why.to_string(),
                "event evt_1 is of account acct_other, which connected_accounts does not name"
            ),
            _ => panic!("an account the list leaves out is refused"),
        }
        assert!(matches!(
            addressee(&all, "acct_p", "{\"object\": \"event\"}"),
            Err(Taken::Unreadable(_))
        ));
    }
}

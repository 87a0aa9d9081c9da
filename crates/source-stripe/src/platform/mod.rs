//! A Connect platform's read (`connected_accounts`): the key's own account and its connected
//! accounts, each read as a read of that account alone would read it (`Stripe-Account`), several
//! at once over the key's one transport (one rate budget and one pool of requests in flight,
//! which every account's requests queue for alike); their states side by side in one state
//! ([`combined`]). An account Stripe refuses is reported by name and skipped; one whose read
//! fails does not stop the others, and fails the run at its end. The `_accounts` stream shows
//! every account's status ([`roster`]).

mod combined;
mod merge;
mod roster;

use std::collections::HashMap;
use std::sync::Arc;

use sync_connector::{ConnectorError, Output};
use sync_protocol::{Catalog, ConfiguredCatalog, SourceStateSet, StreamStatusKind};
use tokio::sync::Mutex;
use tokio::task::JoinSet;

use merge::Merger;
use roster::{Entry, Status};

use crate::account::{self, Account};
use crate::client::StripeClient;
use crate::config::Config;
use crate::connected_accounts::ConnectedAccounts;
use crate::error::{ErrorKind, fatal};
use crate::plan::warn;

/// Accounts read at once, at least: a few, so that one waiting on a slow page does not leave
/// the budget idle. At most as many as the key needs requests in flight to keep its rate limit
/// busy (each account's read waits on one request at a time when its streams are small), and
/// never more than `max_concurrency`.
const MIN_ACCOUNTS_AT_ONCE: usize = 4;

/// Messages one account's read may have queued before it waits for the merge.
const RELAY_QUEUE: usize = 256;

/// The catalog `discover` prints for a platform read: every stream's `_account_id` is any
/// account's, and the `_accounts` stream.
pub(crate) fn catalog(platform: &str) -> Catalog {
    let mut catalog = crate::discover::catalog(platform);
    for stream in &mut catalog.streams {
        if let Some(schema) = stream
            .json_schema
            .as_mut()
            .and_then(|s| s.pointer_mut(&format!("/properties/{}", crate::records::ACCOUNT_ID)))
        {
            *schema = serde_json::json!({
                "type": "string",
                "description": "The account the object belongs to: the platform's or a connected account's"
            });
        }
    }
    catalog.streams.insert(0, roster::stream(platform));
    catalog
}

/// What a read of one account (not a platform's) starts from: the catalog without the
/// `_accounts` stream of an earlier platform read's catalog (skipped, saying why), the
/// account's part of a platform's state, and the account (`GET /v1/account`).
pub(crate) async fn one_account(
    config: &Config,
    client: &StripeClient,
    catalog: ConfiguredCatalog,
    state: SourceStateSet,
    output: &Output,
) -> Result<(ConfiguredCatalog, SourceStateSet, Account), ConnectorError> {
    let (catalog, selected) = roster::split_catalog(catalog);
    if selected {
        let reason =
            "connected_accounts is none: one account is read, and there is no roster of accounts"
                .to_owned();
        output
            .stream_status(roster::STREAM, StreamStatusKind::Skip { reason })
            .await?;
    }
    let state = combined::own_part(state, config.account_id.as_deref());
    let account = account::fetch(client, config).await?;
    Ok((catalog, state, account))
}

/// How one account's read went.
enum Outcome {
    /// Read (some streams may have failed: see the merger).
    Read(Account),
    /// Stripe refused the platform's requests for it.
    Unavailable(String),
    /// Its read failed.
    Failed(String),
}

/// Reads the platform (`client`'s key's own account) and its connected accounts: lists them,
/// marks the departed, reads each, and ends with the merged states and each stream's status.
pub(crate) async fn read(
    config: Config,
    client: Arc<StripeClient>,
    catalog: ConfiguredCatalog,
    state: SourceStateSet,
    output: Output,
) -> Result<(), ConnectorError> {
    if let Some(id) = &config.account_id {
        return Err(ConnectorError::config(format!(
            "account_id ({id}) names one connected account to read, and connected_accounts reads \
             the key's own account and its connected accounts: give one"
        )));
    }
    let platform = account::fetch(&client, &config).await?;
    let started = client.server_now();
    let (catalog, roster_selected) = roster::split_catalog(catalog);
    let (saved, dropped) = combined::Saved::read(&state, &platform.id);
    if let Some(reason) = dropped {
        warn(&output, reason).await?;
    }
    let connected: Vec<String> = roster::connected(&client, &config.connected_accounts)
        .await
        .map_err(|e| fatal(&e, "listing the connected accounts (GET /v1/accounts)"))?
        .into_iter()
        .filter(|id| *id != platform.id)
        .collect();
    tracing::info!(
        platform = %platform.id,
        connected = connected.len(),
        "reading the platform and its connected accounts"
    );
    let mut merger = Merger::new(platform.id.clone(), output.clone(), saved);
    let roster_out = RosterOut {
        output: output.clone(),
        platform: platform.id.clone(),
        selected: roster_selected,
    };
    if roster_selected {
        output
            .stream_status(roster::STREAM, StreamStatusKind::Start { time_range: None })
            .await?;
    }
    if config.connected_accounts == ConnectedAccounts::All {
        let mut roster_now = merger.roster().clone();
        for id in roster::mark_departed(&mut roster_now, &platform.id, &connected, started) {
            warn(
                &output,
                format!("account {id} is no longer connected (GET /v1/accounts leaves it out): it is not read; its rows are kept"),
            )
            .await?;
            roster_out.send(&id, &roster_now[&id], started).await?;
            merger.set_entry(&id, roster_now[&id].clone());
        }
    }
    let mut accounts = vec![platform.id.clone()];
    accounts.extend(connected);
    let merger = Arc::new(Mutex::new(merger));
    let ctx = Arc::new(AccountRead {
        config,
        client,
        platform,
        catalog,
        output: output.clone(),
    });
    let failed = read_accounts(&ctx, &accounts, &merger, &roster_out, started).await?;
    merger.lock().await.finish().await?;
    if roster_selected {
        output
            .stream_status(roster::STREAM, StreamStatusKind::Complete {})
            .await?;
    }
    if failed.is_empty() {
        return Ok(());
    }
    Err(ConnectorError::transient(format!(
        "{} of {} accounts were not read to the end: {}; the others were, and every account's progress is saved",
        failed.len(),
        accounts.len(),
        failed.join(", ")
    )))
}

/// Reads `accounts`, as many at once as the key's rate needs, and records how each went in the
/// roster as it ends; returns those that failed, with why.
async fn read_accounts(
    ctx: &Arc<AccountRead>,
    accounts: &[String],
    merger: &Arc<Mutex<Merger>>,
    roster_out: &RosterOut,
    started: i64,
) -> Result<Vec<String>, ConnectorError> {
    let mut waiting = accounts.iter();
    // Each account's read is a task of its own: the merger's lock is handed to waiters in
    // turn, and a waiter that shared this loop's task could not take it while the loop waits.
    let mut reading: JoinSet<(String, Result<Outcome, ConnectorError>)> = JoinSet::new();
    let mut reading_ids: HashMap<tokio::task::Id, String> = HashMap::new();
    let mut failed = Vec::new();
    loop {
        let at_once = ctx
            .client
            .key_concurrency()
            .max(MIN_ACCOUNTS_AT_ONCE)
            .min(ctx.config.max_concurrency.max(1));
        while reading.len() < at_once
            && let Some(id) = waiting.next()
        {
            let task = reading.spawn(ctx.clone().run(id.clone(), at_once, merger.clone()));
            reading_ids.insert(task.id(), id.clone());
        }
        let Some(joined) = reading.join_next_with_id().await else {
            return Ok(failed);
        };
        let (id, outcome) = match joined {
            Ok((_, (_, Err(ConnectorError::OutputClosed)))) => {
                return Err(ConnectorError::OutputClosed);
            }
            Ok((_, (id, Err(e)))) => (id, Outcome::Failed(e.to_string())),
            Ok((_, (id, Ok(outcome)))) => (id, outcome),
            Err(e) => {
                let id = reading_ids.get(&e.id()).cloned().unwrap_or_default();
                (id, Outcome::Failed(format!("its read failed: {e}")))
            }
        };
        let mut merger = merger.lock().await;
        let entry = match outcome {
            Outcome::Read(account) => read_entry(&merger, &id, &account, started),
            Outcome::Unavailable(why) => {
                warn(&ctx.output, format!("account {id} is skipped: {why}")).await?;
                ended_entry(&merger, &id, Status::Unavailable, why)
            }
            Outcome::Failed(why) => {
                failed.push(format!("{id} ({why})"));
                merger.account_failed(&id, &ctx.stream_names(), &why);
                ended_entry(&merger, &id, Status::Failed, why)
            }
        };
        roster_out
            .send(&id, &entry, ctx.client.server_now())
            .await?;
        merger.set_entry(&id, entry);
        merger.send_due(false).await?;
    }
}

/// The roster entry of an account read in the run that began at `started`: synced then when
/// every stream it started ended complete or skipped.
fn read_entry(merger: &Merger, id: &str, account: &Account, started: i64) -> Entry {
    let unfinished = merger.unfinished(id);
    Entry {
        status: Status::Active,
        connected_at: account.created,
        deauthorized_at: None,
        last_synced_at: if unfinished.is_empty() {
            Some(started)
        } else {
            merger.roster().get(id).and_then(|e| e.last_synced_at)
        },
        // A stream's own status says why it failed.
        error: (!unfinished.is_empty())
            .then(|| format!("not read to the end: {}", unfinished.join(", "))),
    }
}

/// The roster entry of an account not read (`status`, `why`), keeping what was known of it.
fn ended_entry(merger: &Merger, id: &str, status: Status, why: String) -> Entry {
    Entry {
        status,
        error: Some(why),
        ..merger
            .roster()
            .get(id)
            .cloned()
            .unwrap_or_else(Entry::unknown)
    }
}

/// Where the `_accounts` rows go, when the stream is selected.
struct RosterOut {
    output: Output,
    platform: String,
    selected: bool,
}

impl RosterOut {
    async fn send(&self, account: &str, entry: &Entry, now: i64) -> Result<(), ConnectorError> {
        if self.selected {
            let row = roster::record(&self.platform, account, entry, now);
            self.output.record(roster::STREAM, row).await?;
        }
        Ok(())
    }
}

/// What every account's read shares.
struct AccountRead {
    config: Config,
    client: Arc<StripeClient>,
    platform: Account,
    catalog: ConfiguredCatalog,
    output: Output,
}

impl AccountRead {
    /// The streams every account reads.
    fn stream_names(&self) -> Vec<String> {
        self.catalog
            .streams
            .iter()
            .map(|s| s.stream.name.clone())
            .collect()
    }

    /// Reads `id` through a relay whose messages the merger takes.
    /// `sharers`: the accounts read at once, whose reads share the key's transport.
    async fn run(
        self: Arc<Self>,
        id: String,
        sharers: usize,
        merger: Arc<Mutex<Merger>>,
    ) -> (String, Result<Outcome, ConnectorError>) {
        let outcome = self.read(&id, sharers, merger).await;
        (id, outcome)
    }

    async fn read(
        &self,
        id: &str,
        sharers: usize,
        merger: Arc<Mutex<Merger>>,
    ) -> Result<Outcome, ConnectorError> {
        let connected = (id != self.platform.id).then_some(id);
        let client = Arc::new(
            self.client
                .for_account(connected, sharers)
                .map_err(ConnectorError::config)?,
        );
        let (account, config) = if connected.is_none() {
            (self.platform.clone(), self.config.clone())
        } else {
            let account = match account::lookup(&client, id).await {
                Ok(account) => account,
                Err(e) if refused(e.kind) => return Ok(Outcome::Unavailable(e.to_string())),
                Err(e) => return Ok(Outcome::Failed(e.to_string())),
            };
            let mut config = self.config.clone();
            config.account_id = Some(id.to_owned());
            // account_created is the key's own account's birth; a connected account's objects
            // may be older.
            config.account_created = None;
            (account, config)
        };
        let state = merger.lock().await.part(id);
        let (relay, mut relayed) = self.output.relay(RELAY_QUEUE);
        // A task of its own: the merger's lock is held across sends to stdout, and whoever
        // waits for it (the loop over accounts) must never be what keeps the holder from
        // running.
        let forward = tokio::spawn({
            let id = id.to_owned();
            async move {
                while let Some(outgoing) = relayed.recv().await {
                    merger.lock().await.take(&id, outgoing).await?;
                }
                Ok::<(), sync_connector::OutputClosed>(())
            }
        });
        let result = crate::read::read_account(
            &config,
            client,
            account.clone(),
            &self.catalog,
            &state,
            relay,
        )
        .await;
        forward.await.map_err(|e| {
            ConnectorError::system(format!("merging account {id}'s messages: {e}"))
        })??;
        match result {
            Ok(()) => Ok(Outcome::Read(account)),
            Err(ConnectorError::OutputClosed) => Err(ConnectorError::OutputClosed),
            Err(e) => Ok(Outcome::Failed(e.to_string())),
        }
    }
}

/// Answers that say the platform may not act on the account (access revoked, the account
/// restricted or gone): the account is skipped, not failed. A 401 is the key's own refusal (it
/// was rolled or revoked during the run): that fails the account.
fn refused(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::Forbidden | ErrorKind::Unavailable | ErrorKind::NotFound | ErrorKind::Invalid
    )
}

//! A Connect platform's read (`connected_accounts`): the key's own account and its connected
//! accounts, each read as a read of that account alone would read it (`Stripe-Account`), several
//! at once over the key's one transport (one rate budget and one pool of requests in flight,
//! which every account's requests queue for alike); their states side by side in one state
//! ([`combined`]). An account Stripe refuses is reported by name and skipped; one whose read
//! fails does not stop the others, and fails the run at its end. The `_accounts` stream shows
//! every account's status ([`roster`]).

mod combined;
mod inbound;
mod live;
mod merge;
mod roster;

pub(crate) use combined::accounts;
pub(crate) use inbound::read_input;

use std::collections::HashMap;
use std::sync::Arc;

use sync_connector::{ConnectorError, Output, OutputClosed};
use sync_protocol::{Catalog, ConfiguredCatalog, SourceStateSet, StreamStatusKind};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};

use merge::Merger;
use roster::{Entry, Status};

use crate::account::{self, Account};
use crate::client::StripeClient;
use crate::config::Config;
use crate::connected_accounts::ConnectedAccounts;
use crate::error::{ErrorKind, fatal};
use crate::plan::warn;
use crate::read::Following;

/// The accounts whose reads failed (and were not read since), with why.
type Failed = std::collections::BTreeMap<String, String>;

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
    /// Read (some streams may have failed: see the merger); live, followed from here on.
    Read(Account, Option<Box<Follower>>),
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
    refuse_account_id(&config)?;
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
    let (failed, every_account_read) = if ctx.config.live {
        live::Following::new(&ctx, &merger, &roster_out)
            .run(accounts.clone(), started)
            .await?
    } else {
        (
            read_accounts(&ctx, &accounts, &merger, &roster_out, started).await?,
            true,
        )
    };
    if every_account_read {
        merger.lock().await.finish().await?;
    } else {
        merger.lock().await.finish_unended().await?;
    }
    if roster_selected {
        output
            .stream_status(roster::STREAM, StreamStatusKind::Complete {})
            .await?;
    }
    if failed.is_empty() {
        return Ok(());
    }
    let named: Vec<String> = failed
        .iter()
        .map(|(id, why)| format!("{id} ({why})"))
        .collect();
    Err(ConnectorError::transient(format!(
        "{} accounts were not read to the end: {}; the others were, and every account's progress is saved",
        failed.len(),
        named.join(", ")
    )))
}

/// `account_id` names one account, and a platform's read reads several.
fn refuse_account_id(config: &Config) -> Result<(), ConnectorError> {
    match &config.account_id {
        Some(id) => Err(ConnectorError::config(format!(
            "account_id ({id}) names one connected account to read, and connected_accounts reads \
             the key's own account and its connected accounts: give one"
        ))),
        None => Ok(()),
    }
}

/// Accounts read at once: as many as the key needs requests in flight, within the bounds.
fn accounts_at_once(ctx: &AccountRead) -> usize {
    ctx.client
        .key_concurrency()
        .max(MIN_ACCOUNTS_AT_ONCE)
        .min(ctx.config.max_concurrency.max(1))
}

/// Accounts being read, each a task of its own: the merger's lock is handed to waiters in
/// turn, and a waiter that shared the task of whoever waits for the reads could not take it.
#[derive(Default)]
struct Reading {
    tasks: JoinSet<(String, Result<Outcome, ConnectorError>)>,
    ids: HashMap<tokio::task::Id, String>,
}

impl Reading {
    fn start(
        &mut self,
        ctx: &Arc<AccountRead>,
        id: &str,
        sharers: usize,
        merger: &Arc<Mutex<Merger>>,
    ) {
        let task = self
            .tasks
            .spawn(ctx.clone().run(id.to_owned(), sharers, merger.clone()));
        self.ids.insert(task.id(), id.to_owned());
    }

    fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Stops every read going on; returns their accounts.
    /// Stops every read going on: returns the accounts whose reads were cut short, and how
    /// the reads that had already ended went.
    async fn stop(&mut self) -> (Vec<String>, Vec<(String, Outcome)>) {
        self.tasks.abort_all();
        let mut ended = Vec::new();
        while let Some(joined) = self.tasks.join_next_with_id().await {
            if let Ok((task, (id, Ok(outcome)))) = joined {
                self.ids.remove(&task);
                ended.push((id, outcome));
            }
        }
        (std::mem::take(&mut self.ids).into_values().collect(), ended)
    }

    fn is_reading(&self, id: &str) -> bool {
        self.ids.values().any(|reading| reading == id)
    }

    /// The next read to end, and how it went; `None` when none is going on. A closed output
    /// ends everything.
    async fn next(&mut self) -> Option<Result<(String, Outcome), ConnectorError>> {
        let joined = self.tasks.join_next_with_id().await?;
        Some(match joined {
            Ok((task, (_, Err(ConnectorError::OutputClosed)))) => {
                self.ids.remove(&task);
                Err(ConnectorError::OutputClosed)
            }
            Ok((task, (id, Err(e)))) => {
                self.ids.remove(&task);
                Ok((id, Outcome::Failed(e.to_string())))
            }
            Ok((task, (id, Ok(outcome)))) => {
                self.ids.remove(&task);
                Ok((id, outcome))
            }
            Err(e) => {
                let id = self.ids.remove(&e.id()).unwrap_or_default();
                Ok((id, Outcome::Failed(format!("its read failed: {e}"))))
            }
        })
    }
}

/// Reads `accounts` (a run that ends), as many at once as the key's rate needs, and records
/// how each went in the roster as it ends; returns those that failed, with why.
async fn read_accounts(
    ctx: &Arc<AccountRead>,
    accounts: &[String],
    merger: &Arc<Mutex<Merger>>,
    roster_out: &RosterOut,
    started: i64,
) -> Result<Failed, ConnectorError> {
    let mut waiting = accounts.iter();
    let mut reading = Reading::default();
    let mut failed = Failed::new();
    loop {
        let at_once = accounts_at_once(ctx);
        while reading.len() < at_once
            && let Some(id) = waiting.next()
        {
            reading.start(ctx, id, at_once, merger);
        }
        let Some(ended) = reading.next().await else {
            return Ok(failed);
        };
        let (id, outcome) = ended?;
        // Not live: no read hands on a follower.
        ctx.settle(merger, roster_out, &id, outcome, started, &mut failed)
            .await?;
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
    /// Records how `id`'s read went (`failed` gets it when it failed) in the roster; the
    /// account to follow, when the read is live.
    async fn settle(
        &self,
        merger: &Mutex<Merger>,
        roster_out: &RosterOut,
        id: &str,
        outcome: Outcome,
        started: i64,
        failed: &mut Failed,
    ) -> Result<Option<Box<Follower>>, ConnectorError> {
        let mut merger = merger.lock().await;
        let mut follower = None;
        let entry = match outcome {
            Outcome::Read(account, following) => {
                follower = following;
                failed.remove(id);
                read_entry(&merger, id, &account, started)
            }
            Outcome::Unavailable(why) => {
                warn(&self.output, format!("account {id} is skipped: {why}")).await?;
                ended_entry(&merger, id, Status::Unavailable, why)
            }
            Outcome::Failed(why) => {
                failed.insert(id.to_owned(), why.clone());
                merger.account_failed(id, &self.stream_names(), &why);
                ended_entry(&merger, id, Status::Failed, why)
            }
        };
        roster_out
            .send(id, &entry, self.client.server_now())
            .await?;
        merger.set_entry(id, entry);
        merger.send_due(false).await?;
        Ok(follower)
    }

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
        let (relay, forward, flush) = merged_relay(&self.output, id, merger);
        let result = crate::read::read_account(
            &config,
            client,
            account.clone(),
            &self.catalog,
            &state,
            relay,
        )
        .await;
        // Live, the account's read goes on as a follower, its relay open; else the relay is
        // dropped here, and the forwarding ends once it has handed on every message.
        let following = match result {
            Ok(Some(following)) if self.config.live => following,
            other => {
                let ended = other.map(|_| ());
                forwarded(id, forward).await?;
                return match ended {
                    Ok(()) => Ok(Outcome::Read(account, None)),
                    Err(ConnectorError::OutputClosed) => Err(ConnectorError::OutputClosed),
                    Err(e) => Ok(Outcome::Failed(e.to_string())),
                };
            }
        };
        // Its streams' ends reach the merger before its roster entry is made from them.
        let (done, flushed) = oneshot::channel();
        if flush.send(done).await.is_ok() {
            let _ = flushed.await;
        }
        Ok(Outcome::Read(
            account,
            Some(Box::new(Follower { following, forward })),
        ))
    }
}

/// A relay of `output` for `id`'s read, whose messages a task of its own hands to the merger:
/// the merger's lock is held across sends to stdout, and whoever waits for it (the loop over
/// accounts) must never be what keeps the holder from running. A flush asks the task to say
/// when it has handed on every message sent before.
fn merged_relay(
    output: &Output,
    id: &str,
    merger: Arc<Mutex<Merger>>,
) -> (
    Output,
    JoinHandle<Result<(), OutputClosed>>,
    mpsc::Sender<oneshot::Sender<()>>,
) {
    let (relay, mut relayed) = output.relay(RELAY_QUEUE);
    let (flush, mut flushes) = mpsc::channel::<oneshot::Sender<()>>(1);
    let id = id.to_owned();
    let forward = tokio::spawn(async move {
        loop {
            tokio::select! {
                biased;
                outgoing = relayed.recv() => match outgoing {
                    Some(outgoing) => merger.lock().await.take(&id, outgoing).await?,
                    None => break,
                },
                Some(done) = flushes.recv() => {
                    let _ = done.send(());
                }
            }
        }
        Ok(())
    });
    (relay, forward, flush)
}

/// An account followed live after its read: where its events stand, and the task that hands
/// its messages to the merger.
struct Follower {
    following: Following,
    forward: JoinHandle<Result<(), OutputClosed>>,
}

impl Follower {
    /// Ends following `id`: its last state, then every message it queued handed on.
    async fn end(self, id: &str) -> Result<(), ConnectorError> {
        let Follower { following, forward } = self;
        crate::live::emit_state(&following.ctx, &following.cursor).await?;
        drop(following);
        forwarded(id, forward).await
    }
}

/// Waits for `id`'s messages to be handed to the merger (its relay dropped).
async fn forwarded(
    id: &str,
    forward: JoinHandle<Result<(), OutputClosed>>,
) -> Result<(), ConnectorError> {
    forward
        .await
        .map_err(|e| ConnectorError::system(format!("merging account {id}'s messages: {e}")))??;
    Ok(())
}

/// Answers to a followed account's polling that say the platform may no longer read it (its
/// access revoked, the account gone); any other failure is tried again at its next turn.
fn revoked(kind: ErrorKind) -> bool {
    matches!(kind, ErrorKind::Forbidden | ErrorKind::NotFound)
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

//! A platform's live run (`live` with `connected_accounts`): the accounts are read as a run
//! that ends reads them, and each is followed once its read has caught up, until the source is
//! stopped. One webhook endpoint, open from the start, takes
//! the deliveries of the platform's endpoint and of its Connect endpoint (either secret
//! verifies), and each event is applied to the account it names. Each account's `/v1/events`
//! is polled in turn, as many accounts per tick as a quarter of the key's rate allows, so
//! polling never crowds out the rest. An account that connects (its first event names it) is
//! read and then followed; one that deauthorizes the platform
//! (`account.application.deauthorized`) is no longer followed, its `_accounts` row marked with
//! the event's time.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use sync_connector::ConnectorError;
use tokio::sync::{Mutex, mpsc};

use super::inbound::addressee;
use super::merge::Merger;
use super::roster::{self, Entry, Status};
use super::{
    AccountRead, Failed, Follower, Outcome, Reading, RosterOut, accounts_at_once, revoked,
};
use crate::connected_accounts::ConnectedAccounts;
use crate::error::{ReadError, fatal};
use crate::events::{self, Pushed, Taken};
use crate::live::{Delivery, Handed, Stop, handed, interval, tick};
use crate::plan::warn;

/// The event a connected account's deauthorizing the platform brings.
const DEAUTHORIZED: &str = "account.application.deauthorized";
/// The event a connected account's authorizing the platform brings.
const AUTHORIZED: &str = "account.application.authorized";

/// The share of the key's rate that polling takes at most, as a divisor.
const POLL_SHARE: f64 = 4.0;

/// Accounts whose `/v1/events` are read at each poll tick: every account on a small platform;
/// on a large one, as many as a quarter of the key's rate reads in one tick.
fn accounts_per_poll(rate: u32, poll_interval_secs: f64) -> usize {
    ((f64::from(rate) * poll_interval_secs / POLL_SHARE).floor() as usize).max(1)
}

/// Ticks of the accounts' listing: the first a period from now (the run has just listed
/// them); none for 0.
fn relist_interval(secs: f64) -> Option<tokio::time::Interval> {
    (secs > 0.0).then(|| {
        let period = std::time::Duration::from_secs_f64(secs.max(0.001));
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick
    })
}

/// The accounts followed, and those being read to be followed.
pub(super) struct Following<'a> {
    read: &'a Arc<AccountRead>,
    merger: &'a Arc<Mutex<Merger>>,
    roster_out: &'a RosterOut,
    followers: BTreeMap<String, Box<Follower>>,
    /// The order accounts are polled in.
    turn: VecDeque<String>,
    reading: Reading,
    /// Accounts waiting to be read (as many are read at once as the key's rate needs): the
    /// run's first, then newcomers and accounts read again.
    queued: VecDeque<String>,
    /// Accounts whose read going on no longer counts: they departed meanwhile.
    dropped: BTreeSet<String>,
    pushed: Pushed,
    received: u64,
    failed: Failed,
}

impl<'a> Following<'a> {
    pub(super) fn new(
        read: &'a Arc<AccountRead>,
        merger: &'a Arc<Mutex<Merger>>,
        roster_out: &'a RosterOut,
    ) -> Following<'a> {
        Following {
            read,
            merger,
            roster_out,
            turn: VecDeque::new(),
            followers: BTreeMap::new(),
            reading: Reading::default(),
            queued: VecDeque::new(),
            dropped: BTreeSet::new(),
            pushed: Pushed::default(),
            received: 0,
            failed: Failed::new(),
        }
    }

    /// Reads `accounts` and follows each once read, until stopped (SIGTERM, SIGINT); returns
    /// the accounts whose reads failed, and whether every first read ended before the stop.
    /// Webhooks are taken from the start: an account's events are applied once it is followed
    /// (until then they are answered 503, and its catch-up reads them).
    pub(super) async fn run(
        mut self,
        accounts: Vec<String>,
        started: i64,
    ) -> Result<(Failed, bool), ConnectorError> {
        self.queued = accounts.into();
        let read = self.read;
        let config = &read.config;
        let mut stop = Stop::watch()?;
        let (deliveries, mut arriving) = mpsc::channel::<Delivery>(1024);
        let endpoint = crate::live::listen(config, deliveries).await?;
        crate::live::warn_if_deaf(config);
        let mut poll = interval(config.poll_interval_secs);
        let mut checkpoint = interval(config.checkpoint_interval_secs);
        let mut relist = (config.connected_accounts == ConnectedAccounts::All)
            .then(|| relist_interval(config.accounts_relist_secs))
            .flatten();
        let per_poll = accounts_per_poll(config.account_rate(), config.poll_interval_secs);
        tracing::info!(
            accounts = self.queued.len(),
            accounts_per_poll = per_poll,
            "live: reading the platform and its connected accounts, each followed once read, until stopped"
        );
        let mut first_reads = true;
        loop {
            let at_once = accounts_at_once(read);
            while self.reading.len() < at_once
                && let Some(id) = self.queued.pop_front()
            {
                self.reading.start(read, &id, at_once, self.merger);
            }
            if first_reads && self.queued.is_empty() && self.reading.len() == 0 {
                // Every first read has ended: from now on each stream's end is reported as
                // soon as every account that started it has ended it.
                first_reads = false;
                self.merger
                    .lock()
                    .await
                    .report_ends_as_they_settle()
                    .await?;
                tracing::info!(
                    accounts = self.followers.len(),
                    "live: every account is read; following them"
                );
            }
            tokio::select! {
                () = stop.stopped() => break,
                Some(delivery) = arriving.recv() => {
                    let answer = self.deliver(&delivery.event).await?;
                    let _ = delivery.handed_on.send(answer);
                }
                _ = tick(&mut poll) => self.poll(per_poll).await?,
                _ = tick(&mut checkpoint) => self.checkpoint().await?,
                _ = tick(&mut relist) => self.relist().await?,
                Some(ended) = self.reading.next() => {
                    let (id, outcome) = ended?;
                    self.read_ended(id, outcome, started).await?;
                }
            }
        }
        crate::live::log_stopping(self.received, endpoint.as_deref());
        let (cut_short, ended) = self.reading.stop().await;
        for (id, outcome) in ended {
            self.read_ended(id, outcome, started).await?;
        }
        for id in cut_short {
            tracing::info!(account = %id, "live: its read was stopped before it ended; the next run goes on from its last state");
            self.merger.lock().await.abandon(&id);
        }
        for (id, follower) in std::mem::take(&mut self.followers) {
            follower.end(&id).await?;
        }
        Ok((self.failed, !first_reads))
    }

    /// Records how `id`'s read went and follows it, unless it departed meanwhile.
    async fn read_ended(
        &mut self,
        id: String,
        outcome: Outcome,
        started: i64,
    ) -> Result<(), ConnectorError> {
        if self.dropped.remove(&id) {
            // The roster already says why it is not read.
            if let Outcome::Read(_, Some(follower)) = outcome {
                follower.end(&id).await?;
            }
            return Ok(());
        }
        let follower = self
            .read
            .settle(
                self.merger,
                self.roster_out,
                &id,
                outcome,
                started,
                &mut self.failed,
            )
            .await?;
        if let Some(follower) = follower {
            tracing::debug!(account = %id, "live: the account is read; following it");
            self.turn.push_back(id.clone());
            self.followers.insert(id, follower);
        }
        Ok(())
    }

    /// Puts `id` in line to be read (once), unless it is followed or read already.
    fn queue(&mut self, id: &str) {
        self.dropped.remove(id);
        let waits = self.reading.is_reading(id) || self.queued.iter().any(|q| q == id);
        if !waits && !self.followers.contains_key(id) {
            self.queued.push_back(id.to_owned());
        }
    }

    /// Applies a delivered event to the account it names.
    async fn deliver(&mut self, text: &str) -> Result<Handed, ConnectorError> {
        let platform = self.read.platform.id.clone();
        let addressed = match addressee(&self.read.config, &platform, text) {
            Ok(addressed) => addressed,
            Err(taken) => return handed(Ok(taken)),
        };
        let id = addressed.account;
        let deauthorized = addressed.event_type == DEAUTHORIZED && id != platform;
        if let Some(follower) = self.followers.get_mut(&id) {
            let f = &mut follower.following;
            let result = self.pushed.apply(&f.ctx, text, &mut f.applied).await;
            if matches!(result, Ok(Taken::Applied)) {
                self.received += 1;
            }
            let answer = handed(result)?;
            if deauthorized {
                self.depart(&id, addressed.created).await?;
            }
            return Ok(answer);
        }
        if deauthorized {
            self.depart(&id, addressed.created).await?;
            return Ok(Handed::On);
        }
        let waits = self.reading.is_reading(&id) || self.queued.iter().any(|q| *q == id);
        if id == platform || waits {
            return Ok(Handed::NotNow);
        }
        // An account that departed, or that Stripe refused, comes back only by authorizing
        // the platform again; its other events (late redeliveries) cannot be applied.
        let status = self.merger.lock().await.roster().get(&id).map(|e| e.status);
        if let Some(status @ (Status::Deauthorized | Status::Unavailable)) = status
            && addressed.event_type != AUTHORIZED
        {
            let status = if status == Status::Deauthorized {
                "deauthorized"
            } else {
                "unavailable"
            };
            return Ok(Handed::Refused(format!(
                "event {} is of account {id}, which is {status} and not read",
                addressed.event
            )));
        }
        // A newcomer (or an account whose read failed): read it, then follow it. Stripe
        // delivers this event again, and the account's catch-up reads it anyway.
        tracing::info!(account = %id, "live: an event of an account not followed yet; reading it");
        self.queue(&id);
        Ok(Handed::NotNow)
    }

    /// `id` deauthorized the platform (at `at`, the event's time): no longer followed, marked
    /// in the roster.
    async fn depart(&mut self, id: &str, at: Option<i64>) -> Result<(), ConnectorError> {
        self.forget(id).await?;
        self.queued.retain(|q| q != id);
        if self.reading.is_reading(id) {
            self.dropped.insert(id.to_owned());
        }
        warn(
            &self.read.output,
            format!("account {id} deauthorized the platform ({DEAUTHORIZED}): it is no longer read; its rows are kept"),
        )
        .await?;
        self.mark(id, Status::Deauthorized, at, None).await
    }

    /// Stops following `id`, its last state sent.
    async fn forget(&mut self, id: &str) -> Result<(), ConnectorError> {
        self.turn.retain(|t| t != id);
        match self.followers.remove(id) {
            Some(follower) => follower.end(id).await,
            None => Ok(()),
        }
    }

    /// Records `id`'s new `status` in the roster and its `_accounts` row.
    async fn mark(
        &self,
        id: &str,
        status: Status,
        deauthorized_at: Option<i64>,
        error: Option<String>,
    ) -> Result<(), ConnectorError> {
        let now = self.read.client.server_now();
        let mut merger = self.merger.lock().await;
        let known = merger.roster().get(id).cloned();
        let entry = Entry {
            status,
            deauthorized_at: match status {
                Status::Deauthorized => deauthorized_at.or(Some(now)),
                _ => None,
            },
            error,
            ..known.unwrap_or_else(Entry::unknown)
        };
        self.roster_out.send(id, &entry, now).await?;
        merger.set_entry(id, entry);
        merger.send_due(false).await?;
        Ok(())
    }

    /// Reads the `/v1/events` of the next `per_poll` accounts in turn, at once.
    async fn poll(&mut self, per_poll: usize) -> Result<(), ConnectorError> {
        let mut polled = Vec::new();
        for _ in 0..per_poll.min(self.turn.len()) {
            let Some(id) = self.turn.pop_front() else {
                break;
            };
            self.turn.push_back(id.clone());
            if let Some(follower) = self.followers.remove(&id) {
                polled.push((id, follower));
            }
        }
        let results =
            futures_util::future::join_all(polled.into_iter().map(|(id, mut follower)| async {
                let f = &mut follower.following;
                let result = events::follow(&f.ctx, f.cursor.clone(), &mut f.applied).await;
                (id, follower, result)
            }))
            .await;
        for (id, mut follower, result) in results {
            match result {
                Ok((_, cursor)) => {
                    follower.following.cursor = cursor;
                    self.followers.insert(id, follower);
                }
                Err(ReadError::Output(closed)) => return Err(closed.into()),
                // The key itself was rolled or revoked: nothing can be followed.
                Err(ReadError::Stripe(e)) if e.is_unauthorized() => {
                    return Err(fatal(&e, &format!("following account {id}'s events")));
                }
                Err(ReadError::Stripe(e)) if revoked(e.kind) && id != self.read.platform.id => {
                    self.followers.insert(id.clone(), follower);
                    self.forget(&id).await?;
                    warn(
                        &self.read.output,
                        format!("account {id} is no longer followed: {e}"),
                    )
                    .await?;
                    self.mark(&id, Status::Unavailable, None, Some(e.to_string()))
                        .await?;
                }
                Err(e) => {
                    tracing::warn!(account = %id, "following its events failed: {e}; tried again at its next turn");
                    self.followers.insert(id, follower);
                }
            }
        }
        Ok(())
    }

    /// Lists the connected accounts again (`"all"`): an account not followed nor being read is
    /// read, one followed and no longer listed departs. A listing that fails is tried again at
    /// the next tick.
    async fn relist(&mut self) -> Result<(), ConnectorError> {
        let listed = match roster::connected(&self.read.client, &ConnectedAccounts::All).await {
            Ok(listed) => listed,
            Err(e) if e.is_unauthorized() => {
                return Err(fatal(
                    &e,
                    "listing the connected accounts (GET /v1/accounts)",
                ));
            }
            Err(e) => {
                tracing::warn!(
                    "live: listing the connected accounts failed: {e}; tried again later"
                );
                return Ok(());
            }
        };
        let platform = self.read.platform.id.clone();
        let roster = self.merger.lock().await.roster().clone();
        // Followed or not (an account Stripe refused is no longer followed), each account the
        // roster holds that the listing leaves out has departed.
        let gone: Vec<String> = roster
            .iter()
            .filter(|(id, entry)| {
                **id != platform && !listed.contains(id) && entry.status != Status::Deauthorized
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            self.forget(&id).await?;
            self.queued.retain(|q| *q != id);
            if self.reading.is_reading(&id) {
                self.dropped.insert(id.clone());
            }
            warn(
                &self.read.output,
                format!("account {id} is no longer connected (GET /v1/accounts leaves it out): it is no longer read; its rows are kept"),
            )
            .await?;
            self.mark(&id, Status::Deauthorized, None, None).await?;
        }
        for id in listed {
            // A newcomer, one listed again after it departed, or one whose read failed is
            // read; one Stripe refused waits for the next run (or its authorization event).
            let again = match roster.get(&id).map(|e| e.status) {
                None | Some(Status::Deauthorized | Status::Failed) => true,
                Some(Status::Active | Status::Unavailable) => false,
            };
            if id != platform && again && !self.followers.contains_key(&id) {
                tracing::info!(account = %id, "live: listed and not followed; reading it");
                self.queue(&id);
            }
        }
        Ok(())
    }

    /// Every followed account's state, so the destination commits and checkpoints move.
    async fn checkpoint(&self) -> Result<(), ConnectorError> {
        for follower in self.followers.values() {
            let f = &follower.following;
            crate::live::emit_state(&f.ctx, &f.cursor).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::accounts_per_poll;

    #[test]
    fn polling_takes_a_quarter_of_the_keys_rate_at_most() {
        assert_eq!(accounts_per_poll(100, 2.0), 50);
        assert_eq!(accounts_per_poll(25, 2.0), 12);
        assert_eq!(accounts_per_poll(25, 0.1), 1);
    }
}

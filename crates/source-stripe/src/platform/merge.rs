//! Every account's read writes to a relay of the one output; their messages meet here. Records
//! and most messages go on as they are; states are merged into the platform's state
//! ([`super::combined`]) and sent at most once a second per stream (at once when they carry a
//! listing fence, and all at the end), each after every record it covers; a stream's status
//! is sent once for all accounts: started when the first starts it, ended when all have.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use sync_connector::{Outgoing, Output, OutputClosed};
use sync_protocol::{Message, SourceState, SourceStateSet, StreamStatusKind};

use super::combined::{self, Saved};
use super::roster::Entry;

/// How long a merged state may wait for the next change of its stream before it is sent.
const COALESCE: Duration = Duration::from_secs(1);

/// How a stream ended in each account that started it.
#[derive(Debug, Default)]
struct Ends {
    started: BTreeSet<String>,
    complete: BTreeSet<String>,
    skipped: Vec<(String, String)>,
    failed: Vec<(String, String)>,
}

pub(crate) struct Merger {
    platform: String,
    output: Output,
    /// Every account's latest states and the roster.
    states: Saved,
    /// Streams whose merged state changed since it was last sent (`None`: the global state).
    dirty: BTreeSet<Option<String>>,
    sent_at: HashMap<Option<String>, Instant>,
    ends: BTreeMap<String, Ends>,
}

impl Merger {
    pub(crate) fn new(platform: String, output: Output, saved: Saved) -> Merger {
        Merger {
            platform,
            output,
            states: saved,
            dirty: BTreeSet::new(),
            sent_at: HashMap::new(),
            ends: BTreeMap::new(),
        }
    }

    /// One message of `account`'s read.
    pub(crate) async fn take(
        &mut self,
        account: &str,
        outgoing: Outgoing,
    ) -> Result<(), OutputClosed> {
        let message = match outgoing {
            Outgoing::Message(message) => message,
            line @ Outgoing::RecordLine(_) => return self.output.pass(line).await,
        };
        match message {
            Message::SourceState(SourceState::Stream(state)) => {
                let stream = state.stream.clone();
                self.states
                    .streams
                    .entry(stream.clone())
                    .or_default()
                    .insert(account.to_owned(), state.data.clone());
                if let Some(listing) = state.listing {
                    // A fence is sent with the state it came with, never folded into a later one.
                    let merged = self.stream_value(&stream);
                    self.dirty.remove(&Some(stream.clone()));
                    self.sent_at.insert(Some(stream.clone()), Instant::now());
                    return self
                        .output
                        .state(SourceState::stream_with_listing(stream, merged, listing))
                        .await;
                }
                self.dirty.insert(Some(stream));
            }
            Message::SourceState(SourceState::Global(state)) => {
                self.states.globals.insert(account.to_owned(), state.data);
                self.dirty.insert(None);
            }
            Message::StreamStatus(status) => {
                let ends = self.ends.entry(status.stream.clone()).or_default();
                let who = account.to_owned();
                match status.kind {
                    StreamStatusKind::Start { .. } => {
                        let first = ends.started.is_empty();
                        ends.started.insert(who);
                        if first {
                            return self.output.emit(Message::StreamStatus(status)).await;
                        }
                    }
                    StreamStatusKind::RangeComplete { .. } => {
                        // Progress within one account's range says nothing of the others'.
                        if account == self.platform {
                            return self.output.emit(Message::StreamStatus(status)).await;
                        }
                    }
                    StreamStatusKind::Complete {} => {
                        ends.complete.insert(who);
                    }
                    StreamStatusKind::Skip { reason } => {
                        tracing::info!(account, stream = %status.stream, "skipped: {reason}");
                        ends.skipped.push((who, reason));
                    }
                    StreamStatusKind::Error { error } => {
                        tracing::warn!(account, stream = %status.stream, "failed: {error}");
                        ends.failed.push((who, error));
                    }
                }
            }
            Message::Log(mut log) if account != self.platform => {
                log.message = format!("account {account}: {}", log.message);
                return self.output.emit(Message::Log(log)).await;
            }
            other => return self.output.emit(other).await,
        }
        self.send_due(false).await
    }

    /// Records what is known of `account`; sent with the next global state.
    pub(crate) fn set_entry(&mut self, account: &str, entry: Entry) {
        self.states.roster.insert(account.to_owned(), entry);
        self.dirty.insert(None);
    }

    pub(crate) fn roster(&self) -> &BTreeMap<String, Entry> {
        &self.states.roster
    }

    /// `account`'s part of the latest states, for its read.
    pub(crate) fn part(&self, account: &str) -> SourceStateSet {
        self.states.part(account)
    }

    /// The streams `account` started that did not end complete or skipped.
    pub(crate) fn unfinished(&self, account: &str) -> Vec<&str> {
        self.ends
            .iter()
            .filter(|(_, ends)| {
                ends.started.contains(account)
                    && !ends.complete.contains(account)
                    && !ends.skipped.iter().any(|(who, _)| who == account)
            })
            .map(|(stream, _)| stream.as_str())
            .collect()
    }

    fn stream_value(&self, stream: &str) -> Value {
        combined::stream_value(self.states.streams.get(stream).unwrap_or(&Map::new()))
    }

    /// Sends the merged states that changed: those last sent a while ago, or all.
    pub(crate) async fn send_due(&mut self, all: bool) -> Result<(), OutputClosed> {
        let now = Instant::now();
        let due: Vec<Option<String>> = self
            .dirty
            .iter()
            .filter(|key| {
                all || self
                    .sent_at
                    .get(*key)
                    .is_none_or(|at| now.duration_since(*at) >= COALESCE)
            })
            .cloned()
            .collect();
        for key in due {
            self.dirty.remove(&key);
            self.sent_at.insert(key.clone(), now);
            let state = match &key {
                Some(stream) => SourceState::stream(stream.clone(), self.stream_value(stream)),
                None => SourceState::global(combined::global_value(
                    &self.platform,
                    &self.states.globals,
                    &self.states.roster,
                )),
            };
            self.output.state(state).await?;
        }
        Ok(())
    }

    /// After every account's read: the last states, then each stream's end over all accounts:
    /// failed if it failed in any account (or an account's read stopped before it ended),
    /// complete if any account completed it, else skipped.
    pub(crate) async fn finish(&mut self) -> Result<(), OutputClosed> {
        self.send_due(true).await?;
        for (stream, ends) in std::mem::take(&mut self.ends) {
            let mut failed = ends.failed;
            for account in &ends.started {
                let ended = ends.complete.contains(account)
                    || ends.skipped.iter().any(|(who, _)| who == account)
                    || failed.iter().any(|(who, _)| who == account);
                if !ended {
                    failed.push((
                        account.clone(),
                        "the account's read stopped before this stream ended".to_owned(),
                    ));
                }
            }
            let kind = if let Some((account, error)) = failed.first() {
                let others = match failed.len() - 1 {
                    0 => String::new(),
                    n => format!(" (and {n} more accounts)"),
                };
                StreamStatusKind::Error {
                    error: format!("account {account}: {error}{others}"),
                }
            } else if !ends.complete.is_empty() {
                StreamStatusKind::Complete {}
            } else if let Some((account, reason)) = ends.skipped.first() {
                StreamStatusKind::Skip {
                    reason: format!("account {account}: {reason}"),
                }
            } else {
                continue;
            };
            self.output.stream_status(&stream, kind).await?;
        }
        Ok(())
    }
}

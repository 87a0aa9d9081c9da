//! Every account's read writes to a relay of the one output; their messages meet here. Records
//! and most messages go on as they are; states are merged into the platform's state
//! ([`super::combined`]) and sent at most once a second per stream (at once when they carry a
//! listing fence, and all at the end), each after every record it covers; a stream's status
//! is sent once for all accounts: started when the first starts it, ended when all have.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use sync_connector::{Outgoing, Output, OutputClosed};
use sync_protocol::{Message, SourceState, SourceStateSet, StreamStatus, StreamStatusKind};

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

impl Ends {
    fn has_ended(&self, account: &str) -> bool {
        self.complete.contains(account)
            || self.skipped.iter().any(|(who, _)| who == account)
            || self.failed.iter().any(|(who, _)| who == account)
    }

    /// Every account that started the stream has ended it.
    fn settled(&self) -> bool {
        !self.started.is_empty() && self.started.iter().all(|a| self.has_ended(a))
    }

    /// The stream's end over all accounts: failed if it failed in any account (or an account's
    /// read stopped before it ended), complete if any account completed it, else skipped;
    /// nothing when no account said anything.
    fn verdict(self) -> Option<StreamStatusKind> {
        let mut failed = self.failed;
        for account in &self.started {
            let ended = self.complete.contains(account)
                || self.skipped.iter().any(|(who, _)| who == account)
                || failed.iter().any(|(who, _)| who == account);
            if !ended {
                failed.push((
                    account.clone(),
                    "the account's read stopped before this stream ended".to_owned(),
                ));
            }
        }
        Some(if let Some((account, error)) = failed.first() {
            let others = match failed.len() - 1 {
                0 => String::new(),
                n => format!(" (and {n} more accounts)"),
            };
            StreamStatusKind::Error {
                error: format!("account {account}: {error}{others}"),
            }
        } else if !self.complete.is_empty() {
            StreamStatusKind::Complete {}
        } else if let Some((account, reason)) = self.skipped.first() {
            StreamStatusKind::Skip {
                reason: format!("account {account}: {reason}"),
            }
        } else {
            return None;
        })
    }
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
    /// Live: a stream's end is reported as soon as every account that started it has ended
    /// it (accounts keep coming), not only at the end.
    eager_ends: bool,
    /// Accounts whose reads were stopped before they ended: whatever they send later is
    /// dropped (a state covers only records sent before it, so none is left uncovered).
    abandoned: BTreeSet<String>,
    /// Per account, the streams it started and has not completed or skipped (a failed one
    /// stays): kept apart from `ends`, which reporting a settled stream clears.
    unfinished: BTreeMap<String, BTreeSet<String>>,
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
            eager_ends: false,
            abandoned: BTreeSet::new(),
            unfinished: BTreeMap::new(),
        }
    }

    /// One message of `account`'s read.
    pub(crate) async fn take(
        &mut self,
        account: &str,
        outgoing: Outgoing,
    ) -> Result<(), OutputClosed> {
        if self.abandoned.contains(account) {
            return Ok(());
        }
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
                    // A fence is sent with the state it came with, never folded into a later one;
                    // a global state it follows goes first (its generations cover this state).
                    if self.dirty.contains(&None) {
                        self.send(None).await?;
                    }
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
                if let Some(now) = self.record_status(account, status) {
                    return self.output.emit(Message::StreamStatus(now)).await;
                }
            }
            Message::Log(mut log) if account != self.platform => {
                log.message = format!("account {account}: {}", log.message);
                return self.output.emit(Message::Log(log)).await;
            }
            other => return self.output.emit(other).await,
        }
        if self.eager_ends {
            self.report_settled().await?;
        }
        self.send_due(false).await
    }

    /// Records one account's stream status; the status to send at once, if any (a stream's
    /// first start, the platform's progress within its ranges).
    fn record_status(&mut self, account: &str, status: StreamStatus) -> Option<StreamStatus> {
        let unfinished = self.unfinished.entry(account.to_owned()).or_default();
        match &status.kind {
            StreamStatusKind::Start { .. } => {
                unfinished.insert(status.stream.clone());
            }
            StreamStatusKind::Complete {} | StreamStatusKind::Skip { .. } => {
                unfinished.remove(&status.stream);
            }
            StreamStatusKind::Error { .. } | StreamStatusKind::RangeComplete { .. } => {}
        }
        let ends = self.ends.entry(status.stream.clone()).or_default();
        let who = account.to_owned();
        match status.kind {
            StreamStatusKind::Start { .. } => {
                let first = ends.started.is_empty();
                ends.started.insert(who);
                return first.then_some(status);
            }
            // Progress within one account's range says nothing of the others'.
            StreamStatusKind::RangeComplete { .. } => {
                return (account == self.platform).then_some(status);
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
        None
    }

    /// From now on (live), each stream's end is reported once every account that started it
    /// has ended it; those already settled at once.
    pub(crate) async fn report_ends_as_they_settle(&mut self) -> Result<(), OutputClosed> {
        self.eager_ends = true;
        self.report_settled().await
    }

    /// The last states, and no stream's end: the run was stopped before every account was
    /// read, so no stream is complete over all of them.
    pub(crate) async fn finish_unended(&mut self) -> Result<(), OutputClosed> {
        self.send_due(true).await?;
        self.ends.clear();
        Ok(())
    }

    /// Reports the end of every stream every account has ended, after the states so far.
    async fn report_settled(&mut self) -> Result<(), OutputClosed> {
        let settled: Vec<String> = self
            .ends
            .iter()
            .filter(|(_, ends)| ends.settled())
            .map(|(stream, _)| stream.clone())
            .collect();
        if settled.is_empty() {
            return Ok(());
        }
        self.send_due(true).await?;
        for stream in settled {
            if let Some(kind) = self.ends.remove(&stream).and_then(Ends::verdict) {
                self.output.stream_status(&stream, kind).await?;
            }
        }
        Ok(())
    }

    /// Forgets that `account` started any stream: its read was stopped before it ended (live,
    /// at the end of the run), and it resumes at the next run from its last state.
    pub(crate) fn abandon(&mut self, account: &str) {
        self.abandoned.insert(account.to_owned());
        self.unfinished.remove(account);
        for ends in self.ends.values_mut() {
            if !ends.has_ended(account) {
                ends.started.remove(account);
            }
        }
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
        self.unfinished
            .get(account)
            .map(|streams| streams.iter().map(String::as_str).collect())
            .unwrap_or_default()
    }

    fn stream_value(&self, stream: &str) -> Value {
        combined::stream_value(self.states.streams.get(stream).unwrap_or(&Map::new()))
    }

    /// Sends the merged states that changed: those last sent a while ago, or all.
    pub(crate) async fn send_due(&mut self, all: bool) -> Result<(), OutputClosed> {
        let now = Instant::now();
        let mut due: Vec<Option<String>> = self
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
        // A stream's state may rest on generations only the pending global state holds: that
        // goes first (`None` sorts first).
        if !due.is_empty() && self.dirty.contains(&None) && due.first() != Some(&None) {
            due.insert(0, None);
        }
        for key in due {
            self.send(key).await?;
        }
        Ok(())
    }

    /// Sends one merged state: a stream's, or the global one (`None`).
    async fn send(&mut self, key: Option<String>) -> Result<(), OutputClosed> {
        self.dirty.remove(&key);
        self.sent_at.insert(key.clone(), Instant::now());
        let state = match &key {
            Some(stream) => SourceState::stream(stream.clone(), self.stream_value(stream)),
            None => SourceState::global(combined::global_value(
                &self.platform,
                &self.states.globals,
                &self.states.roster,
            )),
        };
        self.output.state(state).await
    }

    /// Counts every one of `streams` as failed in `account`, whose read ended before it could
    /// say (its account could not be read, its plan failed).
    pub(crate) fn account_failed(&mut self, account: &str, streams: &[String], why: &str) {
        for stream in streams {
            let ends = self.ends.entry(stream.clone()).or_default();
            if !ends.has_ended(account) {
                ends.started.insert(account.to_owned());
                ends.failed.push((account.to_owned(), why.to_owned()));
            }
        }
    }

    /// After every account's read: the last states, then each stream's end over all accounts:
    /// failed if it failed in any account (or an account's read stopped before it ended),
    /// complete if any account completed it, else skipped.
    pub(crate) async fn finish(&mut self) -> Result<(), OutputClosed> {
        self.send_due(true).await?;
        for (stream, ends) in std::mem::take(&mut self.ends) {
            if let Some(kind) = ends.verdict() {
                self.output.stream_status(&stream, kind).await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex as StdMutex};

    use serde_json::json;

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<StdMutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn status(stream: &str, kind: StreamStatusKind) -> Outgoing {
        Outgoing::Message(Message::StreamStatus(StreamStatus::new(stream, kind)))
    }

    fn state(message: SourceState) -> Outgoing {
        Outgoing::Message(Message::SourceState(message))
    }

    #[tokio::test]
    async fn live_a_settled_stream_is_reported_at_once_and_an_accounts_failure_is_remembered() {
        let buffer = Buffer::default();
        let (output, thread) = Output::spawn(buffer.clone());
        let mut merger = Merger::new("acct_p".into(), output.clone(), Saved::default());
        merger.report_ends_as_they_settle().await.unwrap();
        let start = || StreamStatusKind::Start { time_range: None };
        for account in ["acct_p", "acct_n"] {
            merger
                .take(account, status("customers", start()))
                .await
                .unwrap();
        }
        merger
            .take("acct_p", status("customers", StreamStatusKind::Complete {}))
            .await
            .unwrap();
        let error = StreamStatusKind::Error {
            error: "500 after retries".into(),
        };
        merger
            .take("acct_n", status("customers", error))
            .await
            .unwrap();
        // Settled, so reported; the newcomer's failure still tells its roster entry.
        assert_eq!(merger.unfinished("acct_n"), ["customers"]);
        assert!(merger.unfinished("acct_p").is_empty());
        // A read stopped before it ended: nothing it sends later counts.
        merger.abandon("acct_late");
        merger
            .take("acct_late", status("customers", start()))
            .await
            .unwrap();
        merger.finish().await.unwrap();
        drop(merger);
        assert!(!thread.finish(output));
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let statuses: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|m| m["type"] == "stream_status")
            .map(|m| m["stream_status"]["status"].clone())
            .collect();
        assert_eq!(statuses, [json!("start"), json!("error")], "{text}");
    }

    #[tokio::test]
    async fn the_global_state_goes_first_and_a_failed_account_fails_its_streams() {
        let buffer = Buffer::default();
        let (output, thread) = Output::spawn(buffer.clone());
        let mut merger = Merger::new("acct_p".into(), output.clone(), Saved::default());
        let start = || StreamStatusKind::Start { time_range: None };
        merger
            .take("acct_p", status("customers", start()))
            .await
            .unwrap();
        merger
            .take("acct_c", status("customers", start()))
            .await
            .unwrap();
        // The first global state goes at once; the second waits out the second since, but not
        // behind the stream's state that follows it.
        for generation in [1, 2] {
            merger
                .take(
                    "acct_p",
                    state(SourceState::global(json!({"streams": generation}))),
                )
                .await
                .unwrap();
        }
        merger
            .take(
                "acct_p",
                state(SourceState::stream(
                    "customers",
                    json!({"phase": "complete"}),
                )),
            )
            .await
            .unwrap();
        merger
            .take("acct_p", status("customers", StreamStatusKind::Complete {}))
            .await
            .unwrap();
        merger.account_failed("acct_c", &["customers".to_owned()], "503 after retries");
        assert!(merger.unfinished("acct_p").is_empty());
        merger.finish().await.unwrap();
        drop(merger);
        assert!(!thread.finish(output));
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let kinds: Vec<String> = lines
            .iter()
            .map(|l| {
                let kind = l["type"].as_str().unwrap().to_owned();
                match kind.as_str() {
                    "source_state" => format!("state {}", l["source_state"]["state_type"]),
                    "stream_status" => format!("status {}", l["stream_status"]["status"]),
                    _ => kind,
                }
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "status \"start\"",
                "state \"global\"",
                "state \"global\"",
                "state \"stream\"",
                "status \"error\""
            ],
            "{text}"
        );
        assert_eq!(
            lines[2]["source_state"]["data"]["accounts"]["acct_p"],
            json!({"streams": 2})
        );
        assert_eq!(
            lines[3]["source_state"]["data"],
            json!({"v": 1, "accounts": {"acct_p": {"phase": "complete"}}})
        );
        let error = lines[4]["stream_status"]["error"].as_str().unwrap();
        assert!(error.starts_with("account acct_c: 503"), "{error}");
    }
}

//! What a read will do, decided before anything is emitted: the account, the events cursor to
//! follow (or a new one), and every stream's starting point (its saved checkpoint when the
//! cursor covers it, else a new backfill).

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;
use stripe_catalog::Resource;
use sync_connector::{ConnectorError, Output};
use sync_protocol::time::{rfc3339_to_unix, unix_to_rfc3339};
use sync_protocol::{
    ConfiguredCatalog, ConfiguredStream, LogLevel, SourceStateSet, StreamStatusKind,
};

use crate::backfill;
use crate::client::StripeClient;
use crate::config::Config;
use stripe_catalog::KeyMode;

use crate::events;
use crate::origin::Owner;
use crate::reference_state;
use crate::state::{
    AccountMark, EventsCursor, Generation, GlobalCheckpoint, Span, StreamCheckpoint, new_generation,
};

/// Stripe launched in 2011: no object is older.
const STRIPE_LAUNCH: i64 = 1_293_840_000;
/// The events cursor starts a little before the backfills, so nothing created meanwhile is missed.
const CURSOR_MARGIN_SECS: i64 = 5;

use crate::account::Account;

/// A warning for whoever runs the source: in-band (the engine shows it), and in the debug log.
pub(crate) async fn warn(output: &Output, message: String) -> Result<(), ConnectorError> {
    tracing::debug!("{message}");
    Ok(output.log(LogLevel::Warn, message).await?)
}

fn mode(livemode: bool) -> &'static str {
    if livemode { "live" } else { "test" }
}

/// The events cursor to follow and the streams it covers, from the saved global state. A
/// missing, unreadable or expired cursor, or one of another account, starts a new one that
/// covers nothing yet.
async fn events_cursor(
    state: &SourceStateSet,
    now: i64,
    account: &AccountMark,
    output: &Output,
) -> Result<(EventsCursor, BTreeMap<String, Generation>), ConnectorError> {
    let fresh = || EventsCursor {
        created: now - CURSOR_MARGIN_SECS,
        seen: Vec::new(),
    };
    let restart = match GlobalCheckpoint::from_value(&state.global) {
        None => None,
        Some(Ok(g)) if events::expired(&g.events_cursor, now) => Some(format!(
            "the events cursor ({}) is older than Stripe's 30-day event retention: updates and deletions since then cannot be read, so every stream is backfilled again",
            unix_to_rfc3339(g.events_cursor.created).unwrap_or_default()
        )),
        Some(Ok(g)) => match g.account.as_ref().filter(|saved| *saved != account) {
            Some(saved) => Some(format!(
                "the saved state was read from account {} ({} mode), but this key reads account {} ({} mode): every stream is backfilled again",
                saved.id,
                mode(saved.livemode),
                account.id,
                mode(account.livemode)
            )),
            None => return Ok((g.events_cursor, g.streams)),
        },
        Some(Err(reason)) => Some(format!(
            "discarding the global state ({reason}); every stream is backfilled again"
        )),
    };
    if let Some(message) = restart {
        warn(output, message).await?;
    }
    Ok((fresh(), BTreeMap::new()))
}

/// Where a stream starts: its saved checkpoint when the events cursor covers it (same
/// generation), otherwise a new backfill. Returns the reason when a saved state is dropped.
fn resume(
    saved: Option<&Value>,
    covered: Option<&Generation>,
    fresh: impl Fn() -> StreamCheckpoint,
) -> (StreamCheckpoint, Generation, Option<String>) {
    let Some(saved) = saved else {
        return (fresh(), new_generation(), None);
    };
    match StreamCheckpoint::from_value(saved) {
        Ok((checkpoint, generation)) if covered == Some(&generation) => (checkpoint, generation, None),
        Ok(_) => (fresh(), new_generation(), Some("the events cursor did not follow it since its backfill (it was not selected, or the cursor restarted)".to_owned())),
        Err(reason) => (fresh(), new_generation(), Some(reason)),
    }
}

/// A checkpoint the reference system saved, as this source's own (see
/// [`reference_state`]); one it cannot read is dropped, with a warning, like ours.
async fn continue_reference(
    state: &SourceStateSet,
    start: i64,
    now: i64,
    output: &Output,
) -> Result<SourceStateSet, ConnectorError> {
    match reference_state::import(state, start, now) {
        Ok(imported) => {
            tracing::info!(
                streams = imported.state.streams.len(),
                "continuing a checkpoint of the reference system (stripe/sync-engine)"
            );
            for note in imported.notes {
                warn(output, format!("the reference's checkpoint: {note}")).await?;
            }
            Ok(imported.state)
        }
        Err(reason) => {
            warn(
                output,
                format!("discarding the state ({reason}); every stream is backfilled again"),
            )
            .await?;
            Ok(SourceStateSet::default())
        }
    }
}

/// One stream's starting point.
pub(crate) struct StreamPlan<'a> {
    pub configured: &'a ConfiguredStream,
    pub resource: &'static Resource,
    pub parent: Option<&'static Resource>,
    pub checkpoint: StreamCheckpoint,
    pub generation: Generation,
    /// When its listing is to mark what it does not return.
    pub sweep: Option<crate::backfill::Sweep>,
}

/// Everything a read starts from.
pub(crate) struct Plan<'a> {
    pub account: Account,
    pub mark: AccountMark,
    pub cursor: EventsCursor,
    pub streams: Vec<StreamPlan<'a>>,
    /// The generation of every stream of this run (also those already complete).
    pub generations: BTreeMap<String, Generation>,
    /// Streams that ended before starting (unknown to the catalog).
    pub ended: HashSet<String>,
}

impl<'a> Plan<'a> {
    pub(crate) async fn make(
        client: &StripeClient,
        config: &Config,
        account: Account,
        catalog: &'a ConfiguredCatalog,
        state: &SourceStateSet,
        output: &Output,
    ) -> Result<Plan<'a>, ConnectorError> {
        let now = client.server_now();
        let start = match (&config.start_date, config.account_created) {
            // No object is older than Stripe; earlier bounds would only read empty ranges.
            (_, Some(created)) => created.max(STRIPE_LAUNCH),
            (Some(d), None) => rfc3339_to_unix(d).ok_or_else(|| {
                ConnectorError::Usage(format!("start_date {d:?} is not an RFC 3339 time"))
            })?,
            (None, None) => STRIPE_LAUNCH,
        };
        let mark = AccountMark {
            id: account.id.clone(),
            livemode: config.key_mode() == KeyMode::Live,
        };
        let imported;
        let state = if reference_state::is_reference_state(state) {
            imported = continue_reference(state, start, now, output).await?;
            &imported
        } else {
            state
        };
        let (cursor, covered) = events_cursor(state, now, &mark, output).await?;
        let stripe = stripe_catalog::catalog();
        let mut plan = Plan {
            account,
            mark,
            cursor,
            streams: Vec::new(),
            generations: BTreeMap::new(),
            ended: HashSet::new(),
        };
        let mut restarted = Vec::new();
        for configured in &catalog.streams {
            let name = configured.stream.name.clone();
            let Some(resource) = stripe.resource(&name) else {
                let error = format!("Unknown stream: {name}");
                output
                    .stream_status(&name, StreamStatusKind::Error { error })
                    .await?;
                plan.ended.insert(name);
                continue;
            };
            let parent = resource
                .parent
                .as_ref()
                .and_then(|p| stripe.resource(&p.stream));
            let span = Span {
                gte: start,
                lt: now + 1,
            };
            let sweep = crate::sweep::sweep_of(config, configured, resource, &plan.account.id)
                .map_err(|why| tracing::debug!(stream = %name, "no sweep: {why}"))
                .ok();
            let listing = sweep.as_ref().map(|_| new_generation().to_string());
            let (checkpoint, generation, dropped) =
                resume(state.streams.get(&name), covered.get(&name), || {
                    backfill::fresh(resource, parent, span, listing.clone())
                });
            if let Some(reason) = dropped {
                restarted.push(format!("{name} ({reason})"));
            }
            plan.generations.insert(name, generation);
            plan.streams.push(StreamPlan {
                configured,
                resource,
                parent,
                checkpoint,
                generation,
                sweep,
            });
        }
        if !restarted.is_empty() {
            warn(
                output,
                format!("backfilling again: {}", restarted.join(", ")),
            )
            .await?;
        }
        Ok(plan)
    }

    /// Whose pushed events this read applies.
    pub(crate) fn owner(&self, config: &Config) -> Owner {
        // Without account_id, the account read is the key's own.
        let own = config.account_id.is_none().then(|| self.account.id.clone());
        Owner::of(config, own)
    }

    /// The global state of this run: the cursor covers exactly the streams of this run, at
    /// these generations (a stream left out drops out, and starts over when selected again).
    pub(crate) fn global(&self, cursor: &EventsCursor) -> GlobalCheckpoint {
        GlobalCheckpoint {
            account: Some(self.mark.clone()),
            events_cursor: cursor.clone(),
            streams: self.generations.clone(),
        }
    }
}

//! One `read`: the account, the backfill of every stream not yet complete (all streams at once,
//! sharing the rate limits), then the events since the global cursor.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use serde_json::Value;
use sync_connector::{ConnectorError, Output};
use sync_protocol::time::{rfc3339_to_unix, unix_to_rfc3339};
use sync_protocol::{
    ConfiguredCatalog, LogLevel, SourceState, SourceStateSet, StreamStatusKind, TimeRange,
};
use tokio::task::JoinSet;

use crate::backfill::{self, Backfilled, StreamCtx};
use crate::client::StripeClient;
use crate::config::Config;
use crate::error::{ReadError, StripeError};
use crate::events::{self, EventsCtx};
use crate::state::{
    AccountMark, EventsCursor, Generation, GlobalCheckpoint, Span, StreamCheckpoint, new_generation,
};

/// Stripe launched in 2011: no object is older.
const STRIPE_LAUNCH: i64 = 1_293_840_000;
/// The events cursor starts a little before the backfills, so nothing created meanwhile is missed.
const CURSOR_MARGIN_SECS: i64 = 5;

/// The account a key (and `account_id`) reaches.
pub struct Account {
    pub id: String,
}

/// `GET /v1/account`; a rejected key is a config error.
pub async fn account(client: &StripeClient, config: &Config) -> Result<Account, ConnectorError> {
    let (value, _) = client
        .get("/v1/account", &[], "/v1/account")
        .await
        .map_err(|e| fatal(&e, "reading the account"))?;
    let id = value
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| config.account_id.clone());
    Ok(Account {
        id: id.ok_or_else(|| ConnectorError::system("GET /v1/account returned no id"))?,
    })
}

/// The connector error for a failure that stops everything.
pub fn fatal(e: &StripeError, doing: &str) -> ConnectorError {
    if e.is_unauthorized() || e.status == Some(403) && e.request.contains("/v1/account") {
        ConnectorError::config(format!("{doing}: {e}"))
    } else if e.status.is_none_or(|s| s == 429 || s >= 500) {
        ConnectorError::transient(format!("{doing}: {e}"))
    } else {
        ConnectorError::system(format!("{doing}: {e}"))
    }
}

/// A warning for whoever runs the source: in-band (the engine shows it), and in the debug log.
async fn warn(output: &Output, message: String) -> Result<(), ConnectorError> {
    tracing::debug!("{message}");
    Ok(output.log(LogLevel::Warn, message).await?)
}

/// The events cursor to follow and the streams it covers, from the saved global state. A
/// missing, unreadable or expired cursor starts a new one that covers nothing yet.
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
    match GlobalCheckpoint::from_value(&state.global) {
        Some(Ok(g)) if events::expired(&g.events_cursor, now) => {
            warn(
                output,
                format!(
                    "the events cursor ({}) is older than Stripe's 30-day event retention: updates and deletions since then cannot be read, so every stream is backfilled again",
                    unix_to_rfc3339(g.events_cursor.created).unwrap_or_default()
                ),
            )
            .await?;
            Ok((fresh(), BTreeMap::new()))
        }
        Some(Ok(g)) if g.account.as_ref().is_some_and(|a| a != account) => {
            let saved = g.account.unwrap_or(account.clone());
            warn(
                output,
                format!(
                    "the saved state was read from account {} ({} mode), but this key reads account {} ({} mode): every stream is backfilled again",
                    saved.id,
                    mode(saved.livemode),
                    account.id,
                    mode(account.livemode)
                ),
            )
            .await?;
            Ok((fresh(), BTreeMap::new()))
        }
        Some(Ok(g)) => Ok((g.events_cursor, g.streams)),
        Some(Err(reason)) => {
            warn(
                output,
                format!("discarding the global state ({reason}); every stream is backfilled again"),
            )
            .await?;
            Ok((fresh(), BTreeMap::new()))
        }
        None => Ok((fresh(), BTreeMap::new())),
    }
}

fn mode(livemode: bool) -> &'static str {
    if livemode { "live" } else { "test" }
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

pub async fn read(
    config: Config,
    catalog: ConfiguredCatalog,
    state: SourceStateSet,
    output: Output,
) -> Result<(), ConnectorError> {
    let client = Arc::new(StripeClient::new(&config).map_err(ConnectorError::config)?);
    let account = account(&client, &config).await?;
    let stripe = stripe_catalog::catalog();
    let now = client.server_now();
    let start = match &config.start_date {
        Some(d) => rfc3339_to_unix(d).ok_or_else(|| {
            ConnectorError::Usage(format!("start_date {d:?} is not an RFC 3339 time"))
        })?,
        None => STRIPE_LAUNCH,
    };
    let mark = AccountMark {
        id: account.id.clone(),
        livemode: config.key_mode() == crate::config::KeyMode::Live,
    };
    let (cursor, covered) = events_cursor(&state, now, &mark, &output).await?;

    // Decide every stream's starting point before anything is emitted.
    let mut plans = Vec::new();
    let mut restarted = Vec::new();
    let mut generations: BTreeMap<String, Generation> = BTreeMap::new();
    let mut ended: HashSet<String> = HashSet::new();
    for configured in &catalog.streams {
        let name = configured.stream.name.clone();
        let Some(resource) = stripe.resource(&name) else {
            output
                .stream_status(
                    &name,
                    StreamStatusKind::Error {
                        error: format!("Unknown stream: {name}"),
                    },
                )
                .await?;
            ended.insert(name);
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
        let (checkpoint, generation, dropped) =
            resume(state.streams.get(&name), covered.get(&name), || {
                backfill::fresh(resource, parent, span)
            });
        if let Some(reason) = dropped {
            restarted.push(format!("{name} ({reason})"));
        }
        generations.insert(name.clone(), generation);
        plans.push((configured, resource, parent, checkpoint, generation));
    }
    if !restarted.is_empty() {
        warn(
            &output,
            format!("backfilling again: {}", restarted.join(", ")),
        )
        .await?;
    }
    // The cursor covers exactly the streams of this run, at these generations. A stream left
    // out drops out, and starts over the next time it is selected.
    let global = GlobalCheckpoint {
        account: Some(mark.clone()),
        events_cursor: cursor.clone(),
        streams: generations.clone(),
    };
    if state.global != global.to_value() {
        output.state(SourceState::global(global.to_value())).await?;
    }

    let mut tasks: JoinSet<(String, Result<Backfilled, ReadError>)> = JoinSet::new();
    let mut listed_until: HashMap<String, i64> = HashMap::new();
    for (configured, resource, parent, checkpoint, generation) in plans {
        let name = configured.stream.name.clone();
        let time_range = match &checkpoint {
            StreamCheckpoint::Ranges { span, .. } => Some(TimeRange {
                gte: unix_to_rfc3339(span.gte),
                lt: unix_to_rfc3339(span.lt),
            }),
            _ => None,
        };
        output
            .stream_status(&name, StreamStatusKind::Start { time_range })
            .await?;
        if checkpoint.is_complete() {
            if let Some(until) = checkpoint.listed_until() {
                listed_until.insert(name, until);
            }
            continue;
        }
        let ctx = Arc::new(StreamCtx {
            client: client.clone(),
            output: output.clone(),
            account_id: account.id.clone(),
            resource,
            parent,
            generation,
            backfill_limit: configured.backfill_limit.or(config.backfill_limit),
            max_concurrency: config.max_concurrency,
        });
        tasks.spawn(async move { (name, backfill::run(ctx, checkpoint).await) });
    }

    while let Some(joined) = tasks.join_next().await {
        let (name, result) =
            joined.map_err(|e| ConnectorError::system(format!("a stream task failed: {e}")))?;
        match result {
            Ok(done) => {
                tracing::info!(stream = %name, records = done.records, "backfill complete");
                if let Some(until) = done.listed_until {
                    listed_until.insert(name, until);
                }
            }
            Err(ReadError::Output(closed)) => return Err(closed.into()),
            Err(ReadError::Stripe(e)) if e.is_unauthorized() => {
                tasks.abort_all();
                return Err(fatal(&e, &format!("stream {name}")));
            }
            Err(ReadError::Framing(e)) => {
                tracing::error!(stream = %name, "{e}");
                let kind = StreamStatusKind::Error {
                    error: e.to_string(),
                };
                output.stream_status(&name, kind).await?;
                ended.insert(name);
            }
            Err(ReadError::Stripe(e)) => {
                let kind = match e.skip_reason() {
                    Some(reason) => StreamStatusKind::Skip {
                        reason: reason.to_owned(),
                    },
                    None => StreamStatusKind::Error {
                        error: e.to_string(),
                    },
                };
                tracing::info!(stream = %name, "{e}");
                output.stream_status(&name, kind).await?;
                ended.insert(name);
            }
        }
    }

    if config.events {
        let ctx = EventsCtx {
            client: client.clone(),
            output: output.clone(),
            account_id: account.id.clone(),
            account: mark.clone(),
            streams: generations.clone(),
            listed_until,
        };
        match events::follow(&ctx, cursor).await {
            Ok(counts) => {
                for (stream, n) in counts {
                    tracing::info!(stream = %stream, records = n, "applied events");
                }
            }
            Err(ReadError::Output(closed)) => return Err(closed.into()),
            Err(ReadError::Stripe(e)) => return Err(fatal(&e, "reading /v1/events")),
            Err(ReadError::Framing(e)) => {
                return Err(ConnectorError::system(format!("applying events: {e}")));
            }
        }
    }

    for name in generations.keys() {
        if !ended.contains(name) {
            output
                .stream_status(name, StreamStatusKind::Complete {})
                .await?;
        }
    }
    Ok(())
}

//! One account's `read`: the plan ([`crate::plan`]), the backfill of every stream not yet
//! complete (all streams at once, sharing the rate limits), then the events since the global
//! cursor.

use std::collections::HashMap;
use std::sync::Arc;

use sync_connector::{ConnectorError, Output};
use sync_protocol::time::unix_to_rfc3339;
use sync_protocol::{ConfiguredCatalog, SourceState, SourceStateSet, StreamStatusKind, TimeRange};
use tokio::task::JoinSet;

use crate::account::Account;
use crate::backfill::{self, Backfilled, StreamCtx};
use crate::client::StripeClient;
use crate::config::Config;
use crate::error::ReadError;
use crate::error::fatal;
use crate::events::{self, Applied, EventsCtx};
use crate::plan::Plan;
use crate::state::{EventsCursor, StreamCheckpoint};

/// Where an account's events stand once its read has caught up: what a live run goes on from.
pub(crate) struct Following {
    pub ctx: EventsCtx,
    pub cursor: EventsCursor,
    pub applied: Applied,
}

/// Reads one account (the one `client` acts on): the backfills, then its events; returns where
/// its events stand (none when `events` is off).
pub(crate) async fn read_account(
    config: &Config,
    client: Arc<StripeClient>,
    account: Account,
    catalog: &ConfiguredCatalog,
    state: &SourceStateSet,
    output: Output,
) -> Result<Option<Following>, ConnectorError> {
    let mut plan = Plan::make(&client, config, account, catalog, state, &output).await?;
    let global = plan.global(&plan.cursor).to_value();
    if state.global != global {
        output.state(SourceState::global(global)).await?;
    }
    let listed_until = backfill_all(&client, config, &mut plan, &output).await?;
    let mut following = None;
    if config.events {
        let ctx = EventsCtx {
            client: client.clone(),
            output: output.clone(),
            account_id: plan.account.id.clone(),
            account: plan.mark.clone(),
            owner: plan.owner(config),
            streams: plan.generations.clone(),
            listed_until,
            pushed_trusted_after: client.first_answer_at(),
            revalidate: config.revalidate_objects.clone(),
        };
        let mut applied = Applied::default();
        match events::follow(&ctx, plan.cursor.clone(), &mut applied).await {
            Ok((counts, cursor)) => {
                for (stream, n) in counts {
                    tracing::info!(stream = %stream, records = n, "applied events");
                }
                following = Some(Following {
                    ctx,
                    cursor,
                    applied,
                });
            }
            Err(e) => return Err(e.ending("reading /v1/events")),
        }
    }
    for name in plan.generations.keys() {
        if !plan.ended.contains(name) {
            output
                .stream_status(name, StreamStatusKind::Complete {})
                .await?;
        }
    }
    Ok(following)
}

/// Backfills every stream not yet complete, all at once; returns each stream's `listed_until`
/// (see [`StreamCheckpoint::listed_until`]). A stream that fails or is skipped ends alone.
async fn backfill_all(
    client: &Arc<StripeClient>,
    config: &Config,
    plan: &mut Plan<'_>,
    output: &Output,
) -> Result<HashMap<String, i64>, ConnectorError> {
    let mut tasks: JoinSet<(String, Result<Backfilled, ReadError>)> = JoinSet::new();
    let mut listed_until: HashMap<String, i64> = HashMap::new();
    // Which stream each task backfills: a task that panics returns no name of its own.
    let mut names: HashMap<tokio::task::Id, String> = HashMap::new();
    let not_begun = plan
        .streams
        .iter()
        .filter(|s| s.checkpoint.not_begun())
        .count();
    // With few streams to begin, each starts as several ranges; with many, one each is enough
    // (and an empty stream costs one request).
    let first_pieces = (client.account_concurrency().min(config.max_concurrency)
        / not_begun.max(1))
    .clamp(1, client.useful_concurrency());
    for stream in std::mem::take(&mut plan.streams) {
        let name = stream.configured.stream.name.clone();
        let time_range = match &stream.checkpoint {
            StreamCheckpoint::Ranges { span, .. } => Some(TimeRange {
                gte: unix_to_rfc3339(span.gte),
                lt: unix_to_rfc3339(span.lt),
            }),
            _ => None,
        };
        output
            .stream_status(&name, StreamStatusKind::Start { time_range })
            .await?;
        if stream.checkpoint.is_complete() {
            if let Some(until) = stream.checkpoint.listed_until() {
                listed_until.insert(name, until);
            }
            continue;
        }
        let ctx = Arc::new(StreamCtx {
            client: client.clone(),
            output: output.clone(),
            account_id: plan.account.id.clone(),
            resource: stream.resource,
            parent: stream.parent,
            generation: stream.generation,
            backfill_limit: stream.configured.backfill_limit.or(config.backfill_limit),
            max_concurrency: config.max_concurrency,
            first_pieces,
            sweep: stream.sweep,
        });
        let checkpoint = stream.checkpoint;
        let task_name = name.clone();
        let task = tasks.spawn(async move { (name, backfill::run(ctx, checkpoint).await) });
        names.insert(task.id(), task_name);
    }
    while let Some(joined) = tasks.join_next_with_id().await {
        let (name, result) = match joined {
            Ok((_, finished)) => finished,
            Err(e) => {
                // A bug in one stream's backfill ends that stream, not the others.
                let name = names.get(&e.id()).cloned().unwrap_or_default();
                let error = sync_connector::redact::redact(&format!("its backfill failed: {e}"))
                    .into_owned();
                tracing::error!(stream = %name, "{error}");
                output
                    .stream_status(&name, StreamStatusKind::Error { error })
                    .await?;
                plan.ended.insert(name);
                continue;
            }
        };
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
            Err(e) => {
                end_stream(output, &name, e).await?;
                plan.ended.insert(name);
            }
        }
    }
    Ok(listed_until)
}

/// Reports a stream that cannot go on: skipped when the account cannot use it, else failed.
async fn end_stream(output: &Output, name: &str, e: ReadError) -> Result<(), ConnectorError> {
    let kind = match &e {
        ReadError::Stripe(e) => match e.skip_reason() {
            Some(reason) => StreamStatusKind::Skip {
                reason: reason.to_owned(),
            },
            None => StreamStatusKind::Error {
                error: e.to_string(),
            },
        },
        ReadError::Framing(e) => StreamStatusKind::Error {
            error: e.to_string(),
        },
        ReadError::Output(closed) => return Err((*closed).into()),
    };
    tracing::info!(stream = %name, "{kind:?}");
    output.stream_status(name, kind).await?;
    Ok(())
}

//! One `read`: the account, the backfill of every stream not yet complete (all streams at once,
//! sharing the rate limits), then the events since the global cursor.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::Value;
use sync_connector::{ConnectorError, Output};
use sync_protocol::time::{rfc3339_to_unix, unix_to_rfc3339};
use sync_protocol::{
    ConfiguredCatalog, LogLevel, SourceState, SourceStateSet, StreamStatusKind, TimeRange,
};
use tokio::task::JoinSet;

use crate::backfill::{self, BackfillError, StreamCtx};
use crate::client::StripeClient;
use crate::config::Config;
use crate::error::StripeError;
use crate::events::{self, EventsCtx};
use crate::state::{EventsCursor, GlobalCheckpoint, Span, StreamCheckpoint};

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

async fn warn(output: &Output, message: String) -> Result<(), ConnectorError> {
    tracing::warn!("{message}");
    Ok(output.log(LogLevel::Warn, message).await?)
}

/// A stream that ended without completing.
enum Finished {
    Skipped,
    Failed,
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

    // The global events cursor: missing, unreadable or expired means every stream starts over.
    let mut restart_all = false;
    let cursor = match crate::state::GlobalCheckpoint::from_value(&state.global) {
        Some(Ok(g)) if events::expired(&g.events_cursor, now) => {
            warn(&output, format!(
                "the events cursor ({}) is older than Stripe's 30-day event retention: updates and deletions since then cannot be read, so every stream is backfilled again",
                unix_to_rfc3339(g.events_cursor.created).unwrap_or_default()
            ))
            .await?;
            restart_all = true;
            None
        }
        Some(Ok(g)) => Some(g.events_cursor),
        Some(Err(reason)) => {
            warn(
                &output,
                format!("discarding the global state ({reason}); every stream is backfilled again"),
            )
            .await?;
            restart_all = true;
            None
        }
        None => {
            restart_all = !state.streams.is_empty();
            None
        }
    };
    let cursor = match cursor {
        Some(c) => c,
        None => {
            let fresh = EventsCursor {
                created: now - CURSOR_MARGIN_SECS,
                seen: Vec::new(),
            };
            output
                .state(SourceState::global(
                    GlobalCheckpoint {
                        events_cursor: fresh.clone(),
                    }
                    .to_value(),
                ))
                .await?;
            fresh
        }
    };

    let mut selected = HashSet::new();
    let mut tasks: JoinSet<(String, Result<u64, BackfillError>)> = JoinSet::new();
    let mut finished: HashMap<String, Finished> = HashMap::new();
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
            finished.insert(name, Finished::Failed);
            continue;
        };
        selected.insert(name.clone());
        let parent = resource
            .parent
            .as_ref()
            .and_then(|p| stripe.resource(&p.stream));
        let span = Span {
            gte: start,
            lt: now + 1,
        };
        let checkpoint = match state.streams.get(&name).filter(|_| !restart_all) {
            None => backfill::fresh(resource, parent, span),
            Some(saved) => {
                match StreamCheckpoint::from_value(saved) {
                    Ok(c) => c,
                    Err(reason) => {
                        warn(&output, format!("stream {name}: discarding its state ({reason}); backfilling it again")).await?;
                        backfill::fresh(resource, parent, span)
                    }
                }
            }
        };
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
            continue;
        }
        let ctx = Arc::new(StreamCtx {
            client: client.clone(),
            output: output.clone(),
            account_id: account.id.clone(),
            resource,
            parent,
            backfill_limit: configured.backfill_limit.or(config.backfill_limit),
            max_concurrency: config.max_concurrency,
        });
        tasks.spawn(async move { (name, backfill::run(ctx, checkpoint).await) });
    }

    while let Some(joined) = tasks.join_next().await {
        let (name, result) =
            joined.map_err(|e| ConnectorError::system(format!("a stream task failed: {e}")))?;
        match result {
            Ok(n) => {
                tracing::info!(stream = %name, records = n, "backfill complete");
            }
            Err(BackfillError::Output(closed)) => return Err(closed.into()),
            Err(BackfillError::Stripe(e)) if e.is_unauthorized() => {
                tasks.abort_all();
                return Err(fatal(&e, &format!("stream {name}")));
            }
            Err(BackfillError::Stripe(e)) => match e.skip_reason() {
                Some(reason) => {
                    tracing::info!(stream = %name, "skipped: {reason}");
                    output
                        .stream_status(
                            &name,
                            StreamStatusKind::Skip {
                                reason: reason.to_owned(),
                            },
                        )
                        .await?;
                    finished.insert(name, Finished::Skipped);
                }
                None => {
                    tracing::error!(stream = %name, "{e}");
                    output
                        .stream_status(
                            &name,
                            StreamStatusKind::Error {
                                error: e.to_string(),
                            },
                        )
                        .await?;
                    finished.insert(name, Finished::Failed);
                }
            },
        }
    }

    if config.events {
        let ctx = EventsCtx {
            client: client.clone(),
            output: output.clone(),
            account_id: account.id.clone(),
            selected: selected.clone(),
        };
        match events::follow(&ctx, cursor).await {
            Ok(followed) => {
                for (stream, n) in followed.records {
                    tracing::info!(stream = %stream, records = n, "applied events");
                }
            }
            Err(BackfillError::Output(closed)) => return Err(closed.into()),
            Err(BackfillError::Stripe(e)) => return Err(fatal(&e, "reading /v1/events")),
        }
    }

    let mut names: Vec<&String> = selected.iter().collect();
    names.sort();
    for name in names {
        if !finished.contains_key(name.as_str()) {
            output
                .stream_status(name, StreamStatusKind::Complete {})
                .await?;
        }
    }
    Ok(())
}

//! Incremental updates: `/v1/events` since the global events cursor, oldest first, each event's
//! object emitted with `_updated_at` set to the event's time; `*.deleted` events emit tombstones.
//!
//! Stripe lists events newest first and filters by `created` only to the second, so events are
//! read in time windows (all pages of a window, then reversed). The cursor stays a few seconds
//! behind the present, where events may still appear, and keeps the ids of the events already
//! processed at or after it: `created[gte]` plus those ids loses nothing that shares the cursor's
//! second and processes nothing twice.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use serde_json::{Map, Value};
use stripe_catalog::Resource;
use sync_connector::Output;
use sync_protocol::SourceState;

use crate::backfill::{BackfillError, children_of};
use crate::client::{Pager, StripeClient};
use crate::error::StripeError;
use crate::records::{Head, stamp, stamp_value};
use crate::state::{EventsCursor, Generation, GlobalCheckpoint};

/// Stripe keeps events for 30 days.
pub const RETENTION_SECS: i64 = 30 * 24 * 3600;
/// Events of the last few seconds may still be written; the cursor never passes them unseen.
const LATENESS_SECS: i64 = 5;
const FIRST_WINDOW_SECS: i64 = 3600;
const MAX_WINDOW_EVENTS: usize = 10_000;

pub struct EventsCtx {
    pub client: Arc<StripeClient>,
    pub output: Output,
    pub account_id: String,
    /// The selected streams and their backfill generations, recorded with the cursor.
    pub streams: BTreeMap<String, Generation>,
}

/// Records emitted per stream.
pub type Counts = HashMap<String, u64>;

impl EventsCtx {
    fn is_selected(&self, stream: &str) -> bool {
        self.streams.contains_key(stream)
    }

    async fn emit(
        &self,
        stream: &str,
        data: String,
        counts: &mut Counts,
    ) -> Result<(), BackfillError> {
        self.output.raw_record(stream, &data).await?;
        *counts.entry(stream.to_owned()).or_default() += 1;
        Ok(())
    }
}

/// True when the cursor is older than Stripe's retention: events were lost.
pub fn expired(cursor: &EventsCursor, server_now: i64) -> bool {
    cursor.created < server_now - RETENTION_SECS
}

/// Whether an event means its object no longer exists. A subscription's `.deleted` event is a
/// cancellation: the subscription is still listed, now canceled.
fn is_deletion(event_type: &str, object: &Map<String, Value>) -> bool {
    if object.get("deleted").and_then(Value::as_bool) == Some(true) {
        return true;
    }
    event_type.ends_with(".deleted")
        && object.get("object").and_then(Value::as_str) != Some("subscription")
}

/// Reads every event after the cursor and emits the records they carry, oldest first; emits
/// the global state after each window.
pub async fn follow(ctx: &EventsCtx, mut cursor: EventsCursor) -> Result<Counts, BackfillError> {
    let catalog = stripe_catalog::catalog();
    let mut counts = Counts::new();
    let mut window = FIRST_WINDOW_SECS;
    loop {
        let read_at = ctx.client.server_now();
        if cursor.created > read_at {
            break;
        }
        let window_end = (cursor.created + window).min(read_at + 1);
        let Some(mut events) = read_window(&ctx.client, cursor.created, window_end).await? else {
            window = (window / 2).max(1);
            continue;
        };
        // Newest first on the wire; oldest first to apply.
        events.reverse();
        let seen: HashSet<&str> = cursor.seen.iter().map(String::as_str).collect();
        let mut in_window: Vec<(i64, String)> = Vec::with_capacity(events.len());
        for event in &events {
            let (Some(id), Some(created)) = (
                event.get("id").and_then(Value::as_str),
                event.get("created").and_then(Value::as_i64),
            ) else {
                continue;
            };
            in_window.push((created, id.to_owned()));
            if seen.contains(id) {
                continue;
            }
            apply(ctx, catalog, event, created, &mut counts).await?;
        }
        // The cursor never passes the last few seconds, where events may still appear; the ids
        // of the events read at or after it are remembered instead.
        let created = cursor.created.max(window_end.min(read_at - LATENESS_SECS));
        let mut seen: Vec<String> = in_window
            .into_iter()
            .filter(|(c, _)| *c >= created)
            .map(|(_, id)| id)
            .collect();
        seen.sort();
        seen.dedup();
        let advanced = EventsCursor { created, seen };
        if advanced != cursor {
            cursor = advanced;
            let global = GlobalCheckpoint {
                events_cursor: cursor.clone(),
                streams: ctx.streams.clone(),
            };
            ctx.output
                .state(SourceState::global(global.to_value()))
                .await?;
        }
        if events.len() < MAX_WINDOW_EVENTS / 10 {
            window = (window * 2).min(RETENTION_SECS);
        }
        if window_end > read_at {
            break;
        }
    }
    Ok(counts)
}

/// All events created in `[gte, lt)`, newest first; `None` when there are too many for one window.
async fn read_window(
    client: &StripeClient,
    gte: i64,
    lt: i64,
) -> Result<Option<Vec<Map<String, Value>>>, BackfillError> {
    let params = vec![
        ("created[gte]".to_owned(), gte.to_string()),
        ("created[lt]".to_owned(), lt.to_string()),
    ];
    let mut pager = Pager::new(client, "/v1/events".to_owned(), "/v1/events", params);
    let mut events = Vec::new();
    while let Some(page) = pager.next().await? {
        for raw in page.data {
            match serde_json::from_str::<Map<String, Value>>(raw.get()) {
                Ok(event) => events.push(event),
                Err(e) => tracing::warn!("skipping an unreadable event: {e}"),
            }
        }
        if events.len() > MAX_WINDOW_EVENTS && lt - gte > 1 {
            return Ok(None);
        }
    }
    Ok(Some(events))
}

/// Emits the records one event carries: the event itself (`events` stream), its object, and the
/// object's nested lists, fetched in full when the payload truncates them.
async fn apply(
    ctx: &EventsCtx,
    catalog: &'static stripe_catalog::Catalog,
    event: &Map<String, Value>,
    created: i64,
    counts: &mut HashMap<String, u64>,
) -> Result<(), BackfillError> {
    if ctx.is_selected("events") {
        ctx.emit(
            "events",
            stamp_value(event.clone(), &ctx.account_id, created, false),
            counts,
        )
        .await?;
    }
    let event_type = event
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(object) = event
        .get("data")
        .and_then(|d| d.get("object"))
        .and_then(Value::as_object)
    else {
        return Ok(());
    };
    let Some(object_type) = object.get("object").and_then(Value::as_str) else {
        return Ok(());
    };
    // Previews such as invoice.upcoming have no id: nothing to store.
    if object.get("id").and_then(Value::as_str).is_none() {
        return Ok(());
    }
    let Some(resource) = catalog.by_object(object_type).filter(|r| !r.is_nested()) else {
        return Ok(());
    };
    let deleted = is_deletion(event_type, object);
    if ctx.is_selected(&resource.stream) {
        let data = stamp_value(object.clone(), &ctx.account_id, created, deleted);
        ctx.emit(&resource.stream, data, counts).await?;
    }
    let children: Vec<&'static Resource> = catalog
        .children_of(&resource.stream)
        .filter(|c| ctx.is_selected(&c.stream))
        .collect();
    for child in children {
        let Some(link) = &child.parent else { continue };
        let embedded_ids = |list: Option<&Value>| -> Vec<Map<String, Value>> {
            list.and_then(|l| l.get("data"))
                .and_then(Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|i| i.as_object().cloned())
                        .collect()
                })
                .unwrap_or_default()
        };
        if deleted {
            // The parent is gone, and with it the items it embedded.
            for item in embedded_ids(object.get(&link.embedded_field)) {
                ctx.emit(
                    &child.stream,
                    stamp_value(item, &ctx.account_id, created, true),
                    counts,
                )
                .await?;
            }
            continue;
        }
        let parent = serde_json::value::to_raw_value(object).map_err(|e| {
            BackfillError::Stripe(StripeError::local(
                format!("re-encoding an event object: {e}"),
                "/v1/events",
            ))
        })?;
        let current = children_of(&ctx.client, child, &parent).await?;
        let current_ids: HashSet<String> = current
            .iter()
            .filter_map(|i| Head::of(i).id.map(|id| id.into_owned()))
            .collect();
        for item in &current {
            ctx.emit(&child.stream, stamp(item, &ctx.account_id, created), counts)
                .await?;
        }
        // Items the update removed (Stripe lists the previous ones in previous_attributes).
        let previous = event
            .get("data")
            .and_then(|d| d.get("previous_attributes"))
            .and_then(|p| p.get(&link.embedded_field));
        for item in embedded_ids(previous) {
            if item
                .get("id")
                .and_then(Value::as_str)
                .is_some_and(|id| !current_ids.contains(id))
            {
                ctx.emit(
                    &child.stream,
                    stamp_value(item, &ctx.account_id, created, true),
                    counts,
                )
                .await?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deletions() {
        let obj = |o: &str| json!({"object": o, "id": "x"}).as_object().unwrap().clone();
        assert!(is_deletion("customer.deleted", &obj("customer")));
        assert!(is_deletion("customer.tax_id.deleted", &obj("tax_id")));
        assert!(
            !is_deletion("customer.subscription.deleted", &obj("subscription")),
            "a canceled subscription still exists"
        );
        assert!(!is_deletion("customer.updated", &obj("customer")));
        let mut flagged = obj("product");
        flagged.insert("deleted".into(), json!(true));
        assert!(is_deletion("product.updated", &flagged));
    }

    #[test]
    fn cursor_expiry() {
        let c = EventsCursor {
            created: 1_000_000,
            seen: vec![],
        };
        assert!(!expired(&c, 1_000_000 + RETENTION_SECS));
        assert!(expired(&c, 1_000_001 + RETENTION_SECS));
    }
}

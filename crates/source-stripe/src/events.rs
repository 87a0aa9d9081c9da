//! Incremental updates: `/v1/events` since the global events cursor, oldest first, each event's
//! object emitted with `_updated_at` set to the event's time; `*.deleted` events emit tombstones.
//!
//! Stripe lists events newest first and filters by `created` only to the second, so events are
//! read in time windows (all pages of a window, then reversed), and the cursor keeps the ids
//! already processed at its own second: `created[gte]` plus those ids loses nothing that shares
//! the cursor's second and processes nothing twice.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::{Map, Value};
use stripe_catalog::Resource;
use sync_connector::Output;
use sync_protocol::SourceState;

use crate::backfill::{BackfillError, children_of};
use crate::client::StripeClient;
use crate::records::{Head, stamp, stamp_value};
use crate::state::{EventsCursor, GlobalCheckpoint};

/// Stripe keeps events for 30 days.
pub const RETENTION_SECS: i64 = 30 * 24 * 3600;
/// Events of the last few seconds may still be written; the cursor never passes them unseen.
const LATENESS_SECS: i64 = 5;
const FIRST_WINDOW_SECS: i64 = 3600;
const MAX_WINDOW_EVENTS: usize = 10_000;
const LIMIT: usize = 100;

pub struct EventsCtx {
    pub client: Arc<StripeClient>,
    pub output: Output,
    pub account_id: String,
    /// Selected streams by name.
    pub selected: HashSet<String>,
}

/// What following the events produced.
#[derive(Debug, Default)]
pub struct Followed {
    pub cursor: Option<EventsCursor>,
    pub records: HashMap<String, u64>,
}

impl EventsCtx {
    fn is_selected(&self, stream: &str) -> bool {
        self.selected.contains(stream)
    }

    async fn emit(
        &self,
        stream: &str,
        data: String,
        counts: &mut HashMap<String, u64>,
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

/// Reads every event after the cursor and emits the records they carry; emits the global state
/// after each window. Returns the new cursor.
pub async fn follow(ctx: &EventsCtx, mut cursor: EventsCursor) -> Result<Followed, BackfillError> {
    let catalog = stripe_catalog::catalog();
    let mut followed = Followed::default();
    let mut window = FIRST_WINDOW_SECS;
    loop {
        let read_at = ctx.client.server_now();
        if cursor.created > read_at {
            break;
        }
        let window_start = cursor.created;
        let window_end = (window_start + window).min(read_at + 1);
        let Some(mut events) = read_window(&ctx.client, window_start, window_end).await? else {
            window = (window / 2).max(1);
            continue;
        };
        // Newest first on the wire; oldest first to apply.
        events.reverse();
        let seen: HashSet<&str> = cursor.seen.iter().map(String::as_str).collect();
        let mut processed: Vec<(i64, String)> = Vec::new();
        for event in &events {
            let (Some(id), Some(created)) = (
                event.get("id").and_then(Value::as_str),
                event.get("created").and_then(Value::as_i64),
            ) else {
                continue;
            };
            if created == cursor.created && seen.contains(id) {
                continue;
            }
            apply(ctx, catalog, event, created, &mut followed.records).await?;
            processed.push((created, id.to_owned()));
        }
        let last_event = processed
            .iter()
            .map(|(c, _)| *c)
            .max()
            .unwrap_or(cursor.created);
        let safe_point = window_end.min(read_at - LATENESS_SECS);
        let new_created = cursor.created.max(last_event).max(safe_point);
        let mut new_seen: Vec<String> = processed
            .iter()
            .filter(|(c, _)| *c == new_created)
            .map(|(_, id)| id.clone())
            .collect();
        if new_created == cursor.created {
            new_seen.extend(cursor.seen.iter().cloned());
        }
        new_seen.sort();
        new_seen.dedup();
        let advanced = EventsCursor {
            created: new_created,
            seen: new_seen,
        };
        if advanced != cursor {
            cursor = advanced;
            ctx.output
                .state(SourceState::global(
                    GlobalCheckpoint {
                        events_cursor: cursor.clone(),
                    }
                    .to_value(),
                ))
                .await?;
            followed.cursor = Some(cursor.clone());
        }
        if events.len() < MAX_WINDOW_EVENTS / 10 {
            window = (window * 2).min(RETENTION_SECS);
        }
        if window_end > read_at {
            break;
        }
    }
    Ok(followed)
}

/// All events created in `[gte, lt)`, newest first; `None` when there are too many for one window.
async fn read_window(
    client: &StripeClient,
    gte: i64,
    lt: i64,
) -> Result<Option<Vec<Map<String, Value>>>, BackfillError> {
    let mut events = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut params = vec![
            ("limit".to_owned(), LIMIT.to_string()),
            ("created[gte]".to_owned(), gte.to_string()),
            ("created[lt]".to_owned(), lt.to_string()),
        ];
        if let Some(c) = &cursor {
            params.push(("starting_after".into(), c.clone()));
        }
        let page = client.list("/v1/events", &params, "/v1/events").await?;
        cursor = page
            .data
            .last()
            .and_then(|e| Head::of(e).id.map(|id| id.into_owned()));
        let more = page.has_more && cursor.is_some();
        for raw in page.data {
            match serde_json::from_str::<Map<String, Value>>(raw.get()) {
                Ok(event) => events.push(event),
                Err(e) => tracing::warn!("skipping an unreadable event: {e}"),
            }
        }
        if events.len() > MAX_WINDOW_EVENTS && lt - gte > 1 {
            return Ok(None);
        }
        if !more {
            return Ok(Some(events));
        }
    }
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
    if deleted {
        return Ok(());
    }
    let children: Vec<&'static Resource> = catalog
        .children_of(&resource.stream)
        .filter(|c| ctx.is_selected(&c.stream))
        .collect();
    if children.is_empty() {
        return Ok(());
    }
    let parent = serde_json::value::to_raw_value(object).map_err(|e| {
        BackfillError::Stripe(crate::error::StripeError {
            status: None,
            code: None,
            message: format!("re-encoding an event object: {e}"),
            request: "/v1/events".into(),
        })
    })?;
    for child in children {
        for item in children_of(&ctx.client, child, &parent).await? {
            ctx.emit(
                &child.stream,
                stamp(&item, &ctx.account_id, created),
                counts,
            )
            .await?;
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

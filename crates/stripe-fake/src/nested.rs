//! Nested lists (subscription items, invoice lines…): how many items a parent gets, what an
//! item looks like, and the list a parent embeds (the first ten, as Stripe does).

use rand::RngExt;
use rand::rngs::StdRng;
use serde_json::{Map, Value, json};
use stripe_catalog::Resource;

use crate::fixtures;

/// Stripe embeds at most this many items of a nested list in the parent.
pub(crate) const EMBEDDED_ITEMS: usize = 10;

/// `items` are the first ones (only ten are kept) of `total`.
pub(crate) fn embedded_list(
    child: &Resource,
    parent_id: &str,
    mut items: Vec<Value>,
    total: usize,
) -> Value {
    items.truncate(EMBEDDED_ITEMS);
    json!({
        "object": "list",
        "data": items,
        "has_more": total > EMBEDDED_ITEMS,
        "total_count": total,
        "url": nested_url(child, parent_id),
    })
}

/// The list URL of a parent's items: `/v1/subscription_items?subscription=sub_…` or
/// `/v1/invoices/in_…/lines`.
pub(crate) fn nested_url(child: &Resource, parent_id: &str) -> String {
    match child.parent.as_ref().and_then(|p| p.param.as_deref()) {
        Some(param) => format!("{}?{param}={parent_id}", child.list_path),
        None => child.list_path_for(Some(parent_id)),
    }
}

/// Whether the parent embeds the child list (checkout sessions do not, as in Stripe).
pub(crate) fn embeds(child: &Resource) -> bool {
    child.stream != "checkout_session_line_items"
}

/// The template of a nested item: its fixture, else the parent fixture's first embedded item.
pub(crate) fn child_template(child: &Resource, parent: &Resource) -> Value {
    if let Some(f) = fixtures::fixture(&child.object) {
        return f.clone();
    }
    let embedded = child
        .parent
        .as_ref()
        .map(|p| p.embedded_field.as_str())
        .unwrap_or_default();
    fixtures::fixture(&parent.object)
        .and_then(|p| p.get(embedded)?.get("data")?.get(0).cloned())
        .filter(Value::is_object)
        .unwrap_or_else(|| fixtures::synthesise(child))
}

/// Links an item to its parent (`subscription`, `invoice`) and dates it like the parent.
pub(crate) fn attach_child(
    item: &mut Map<String, Value>,
    parent: &Resource,
    parent_id: &str,
    created: i64,
) {
    if item.contains_key(&parent.object) {
        item.insert(parent.object.clone(), json!(parent_id));
    }
    if item.contains_key("created") {
        item.insert("created".into(), json!(created));
    }
    if let Some(Value::Object(period)) = item.get_mut("period") {
        period.insert("start".into(), json!(created));
        period.insert("end".into(), json!(created + 30 * 86_400));
    }
}

pub(crate) fn item_count(rng: &mut StdRng, child_stream: &str) -> usize {
    let roll = rng.random_range(0..100);
    match child_stream {
        "subscription_items" => match roll {
            0..70 => rng.random_range(1..=3),
            70..90 => rng.random_range(4..=10),
            _ => rng.random_range(11..=15),
        },
        "invoice_line_items" => match roll {
            0..65 => rng.random_range(1..=3),
            65..90 => rng.random_range(4..=10),
            _ => rng.random_range(11..=30),
        },
        "credit_note_line_items" => match roll {
            0..90 => rng.random_range(1..=4),
            _ => rng.random_range(11..=14),
        },
        "checkout_session_line_items" => match roll {
            0..90 => rng.random_range(1..=5),
            _ => rng.random_range(11..=20),
        },
        _ => rng.random_range(1..=3),
    }
}

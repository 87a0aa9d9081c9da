//! Create, update and delete on a data set, with the events Stripe emits for them.

use bytes::Bytes;
use serde_json::{Map, Value, json};
use stripe_catalog::{Resource, catalog};

use crate::error::FakeError;
use crate::events::{EventNames, EventSpec};
use crate::fixtures;
use crate::forms;
use crate::generate::stamp;
use crate::ids::IdShape;
use crate::nested::{attach_child, child_template, embedded_list, embeds};
use crate::store::{Child, DataSet, Entry, EventEntry};

pub(crate) struct MutationContext<'a> {
    pub now: i64,
    pub api_version: &'a str,
    /// The `Request-Id` of the HTTP request that caused it (events carry it in `request.id`).
    pub request_id: Option<&'a str>,
}

/// The object after the mutation (for a deletion, `{id, object, deleted}`) and the events it
/// produced, rendered.
pub(crate) struct Mutation {
    pub object: Value,
    pub events: Vec<Bytes>,
}

/// Fields the API sets itself; callers cannot choose them (except `id` and, from Rust,
/// `created` on creation).
const SYSTEM_FIELDS: [&str; 4] = ["object", "livemode", "deleted", "expand"];

fn check_mutable(resource: &'static Resource) -> Result<(), FakeError> {
    if resource.is_nested() || resource.stream == "events" {
        return Err(FakeError::NotMutable {
            stream: resource.stream.clone(),
        });
    }
    Ok(())
}

fn shape(ds: &mut DataSet, resource: &'static Resource, template: &Value) -> IdShape {
    let livemode = ds.livemode;
    ds.id_shapes
        .entry(resource.stream.as_str())
        .or_insert_with(|| {
            IdShape::for_object(
                &resource.object,
                template.get("id").and_then(Value::as_str),
                livemode,
            )
        })
        .clone()
}

fn new_id(ds: &mut DataSet, shape: &IdShape) -> String {
    let mut n = ds.next_seq as usize;
    loop {
        let id = shape.make(&mut ds.rng, n);
        if !ds.id_taken(&id) {
            return id;
        }
        n += 1;
    }
}

fn record_event(
    ds: &mut DataSet,
    ctx: &MutationContext<'_>,
    event_type: &str,
    object_json: &[u8],
    previous: Option<&Value>,
) -> Bytes {
    let account = ds.event_account().map(str::to_owned);
    record_event_about(
        ds,
        ctx,
        event_type,
        object_json,
        previous,
        account.as_deref(),
    )
}

/// Records an event whose `account` is given: a platform's event about one of its connected
/// accounts names that account.
pub(crate) fn record_event_about(
    ds: &mut DataSet,
    ctx: &MutationContext<'_>,
    event_type: &str,
    object_json: &[u8],
    previous: Option<&Value>,
    account: Option<&str>,
) -> Bytes {
    let shape = IdShape::for_object("event", None, ds.livemode);
    let id = loop {
        let id = shape.make(&mut ds.rng, 0);
        if ds.events.get(&id).is_none() {
            break id;
        }
    };
    let json = EventSpec {
        id: &id,
        event_type,
        created: ctx.now,
        livemode: ds.livemode,
        account,
        api_version: ctx.api_version,
        object_json,
        previous_attributes: previous,
        request_id: ctx.request_id,
    }
    .render();
    let seq = ds.next_seq();
    ds.events.push(EventEntry {
        key: (ctx.now, seq),
        id: id.into(),
        event_type: event_type.into(),
        json: json.clone(),
    });
    json
}

/// Items for a new parent: from `specs` (`items[0][price]=price_…`), else one default item.
fn build_children(
    ds: &mut DataSet,
    parent: &'static Resource,
    parent_id: &str,
    created: i64,
    object: &mut Map<String, Value>,
    specs: &mut Map<String, Value>,
) -> Result<(), FakeError> {
    for child in catalog().children_of(&parent.stream) {
        let Some(field) = child.parent.as_ref().map(|p| p.embedded_field.clone()) else {
            continue;
        };
        let template = child_template(child, parent);
        let item_shape = shape(ds, child, &template);
        let requested = match specs.remove(&field) {
            Some(Value::Array(items)) => items,
            Some(Value::Null) | None => vec![Value::Object(Map::new())],
            Some(_) => {
                return Err(FakeError::InvalidFields(format!(
                    "{field} must be a list of objects"
                )));
            }
        };
        let mut items = Vec::with_capacity(requested.len());
        for spec in requested {
            let Value::Object(mut spec) = spec else {
                return Err(FakeError::InvalidFields(format!(
                    "each of {field} must be an object"
                )));
            };
            let Value::Object(mut item) = template.clone() else {
                continue;
            };
            let id = new_id(ds, &item_shape);
            item.insert("id".into(), json!(id));
            item.insert("object".into(), json!(child.object));
            if item.contains_key("livemode") {
                item.insert("livemode".into(), json!(ds.livemode));
            }
            attach_child(&mut item, parent, parent_id, created);
            if let Some(Value::String(price_id)) = spec.get("price") {
                let price = catalog()
                    .resource("prices")
                    .and_then(|prices| ds.collection(prices))
                    .and_then(|prices| prices.live(price_id))
                    .and_then(|entry| serde_json::from_slice::<Value>(entry.json()).ok())
                    .ok_or_else(|| FakeError::NotFound {
                        object: "price".into(),
                        id: price_id.clone(),
                    })?;
                spec.insert("price".into(), price);
            }
            forms::merge(&mut item, spec, false);
            items.push(Value::Object(item));
        }
        let stored = items.iter().map(Child::of).collect();
        if let Some(children) = ds.children.get_mut(child.stream.as_str()) {
            children.by_parent.insert(parent_id.into(), stored);
        }
        if embeds(child) {
            let total = items.len();
            object.insert(field, embedded_list(child, parent_id, items, total));
        } else {
            object.remove(&field);
        }
    }
    Ok(())
}

pub(crate) fn create(
    ds: &mut DataSet,
    resource: &'static Resource,
    mut fields: Map<String, Value>,
    ctx: &MutationContext<'_>,
) -> Result<Mutation, FakeError> {
    check_mutable(resource)?;
    for name in SYSTEM_FIELDS {
        fields.remove(name);
    }
    let template = fixtures::template(resource);
    let id = match fields.remove("id") {
        Some(Value::String(id)) if !id.is_empty() => {
            if ds.id_taken(&id) {
                return Err(FakeError::AlreadyExists {
                    object: resource.object.clone(),
                    id,
                });
            }
            id
        }
        None | Some(Value::Null) => {
            let shape = shape(ds, resource, &template);
            new_id(ds, &shape)
        }
        Some(other) => {
            return Err(FakeError::InvalidFields(format!(
                "id must be a string, got {other}"
            )));
        }
    };
    let created = match fields.remove("created") {
        Some(v) => v.as_i64().ok_or_else(|| {
            FakeError::InvalidFields(format!("created must be unix seconds, got {v}"))
        })?,
        None => ctx.now,
    };
    let Value::Object(mut object) = template else {
        return Err(FakeError::InvalidFields(
            "the template is not an object".into(),
        ));
    };
    crate::values::null_placeholders(&mut object, resource);
    stamp(&mut object, resource, &id, created, ds.livemode);
    build_children(ds, resource, &id, created, &mut object, &mut fields)?;
    forms::merge(&mut object, fields, false);
    let object = Value::Object(object);
    let json = Bytes::from(object.to_string());
    let seq = ds.next_seq();
    let collection = ds.collections.entry(resource.stream.as_str()).or_default();
    collection.insert(Entry::new(
        (created, seq),
        id.as_str().into(),
        false,
        json.clone(),
    ));
    let mut events = Vec::new();
    if let Some(event_type) = EventNames::of(resource).created {
        events.push(record_event(ds, ctx, event_type, &json, None));
    }
    Ok(Mutation { object, events })
}

/// Whether a change records its event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Announce {
    WithEvent,
    Silently,
}

pub(crate) fn update(
    ds: &mut DataSet,
    resource: &'static Resource,
    id: &str,
    mut fields: Map<String, Value>,
    ctx: &MutationContext<'_>,
    announce: Announce,
) -> Result<Mutation, FakeError> {
    check_mutable(resource)?;
    let not_found = || FakeError::NotFound {
        object: resource.object.clone(),
        id: id.to_string(),
    };
    let collection = ds
        .collections
        .get(resource.stream.as_str())
        .ok_or_else(not_found)?;
    let entry = collection.live(id).ok_or_else(not_found)?;
    let Ok(Value::Object(mut object)) = serde_json::from_slice::<Value>(entry.json()) else {
        return Err(not_found());
    };
    for name in SYSTEM_FIELDS.iter().chain(&["id", "created"]) {
        fields.remove(*name);
    }
    for child in catalog().children_of(&resource.stream) {
        if let Some(parent) = &child.parent {
            fields.remove(&parent.embedded_field);
        }
    }
    let before = object.clone();
    forms::merge(&mut object, fields, false);
    if object == before {
        return Ok(Mutation {
            object: Value::Object(object),
            events: Vec::new(),
        });
    }
    let previous = previous_attributes(&before, &object);
    let object = Value::Object(object);
    let json = Bytes::from(object.to_string());
    if let Some(at) = ds
        .collections
        .get_mut(resource.stream.as_str())
        .and_then(|c| c.position(id).map(|at| (c, at)))
    {
        let (collection, at) = at;
        collection.entries[at].set_json(json.clone());
    }
    let mut events = Vec::new();
    if let Some(event_type) = EventNames::of(resource).updated
        && announce == Announce::WithEvent
    {
        events.push(record_event(ds, ctx, event_type, &json, Some(&previous)));
    }
    Ok(Mutation { object, events })
}

/// The old values of the changed top-level fields; for metadata, of the changed keys only.
fn previous_attributes(before: &Map<String, Value>, after: &Map<String, Value>) -> Value {
    let mut previous = Map::new();
    let names = before
        .keys()
        .chain(after.keys().filter(|k| !before.contains_key(*k)));
    for name in names {
        let old = before.get(name).cloned().unwrap_or(Value::Null);
        let new = after.get(name).cloned().unwrap_or(Value::Null);
        if old == new {
            continue;
        }
        let value = match (name.as_str(), &old, &new) {
            ("metadata", Value::Object(o), Value::Object(n)) => {
                let keys = o.keys().chain(n.keys().filter(|k| !o.contains_key(*k)));
                Value::Object(
                    keys.filter(|k| o.get(*k) != n.get(*k))
                        .map(|k| (k.clone(), o.get(k).cloned().unwrap_or(Value::Null)))
                        .collect(),
                )
            }
            _ => old,
        };
        previous.insert(name.clone(), value);
    }
    Value::Object(previous)
}

pub(crate) fn delete(
    ds: &mut DataSet,
    resource: &'static Resource,
    id: &str,
    ctx: &MutationContext<'_>,
    announce: Announce,
) -> Result<Mutation, FakeError> {
    check_mutable(resource)?;
    if !resource.deletable {
        return Err(FakeError::NotDeletable {
            stream: resource.stream.clone(),
        });
    }
    let not_found = || FakeError::NotFound {
        object: resource.object.clone(),
        id: id.to_string(),
    };
    let collection = ds
        .collections
        .get_mut(resource.stream.as_str())
        .ok_or_else(not_found)?;
    let at = collection.position(id).ok_or_else(not_found)?;
    let entry = &mut collection.entries[at];
    if entry.deleted {
        return Err(not_found());
    }
    if resource.stream == "subscriptions" && announce == Announce::WithEvent {
        return cancel_subscription(ds, resource, at, ctx);
    }
    let entry = &mut ds
        .collections
        .get_mut(resource.stream.as_str())
        .ok_or_else(not_found)?
        .entries[at];
    entry.deleted = true;
    let json = entry.json().clone();
    let mut events = Vec::new();
    if let (Some(event_type), Announce::WithEvent) = (EventNames::of(resource).deleted, announce) {
        events.push(record_event(ds, ctx, event_type, &json, None));
    }
    Ok(Mutation {
        object: json!({"id": id, "object": resource.object, "deleted": true}),
        events,
    })
}

/// `DELETE /v1/subscriptions/{id}` cancels: the subscription stays (listed with
/// `status=all`), now `canceled`, and its `customer.subscription.deleted` event carries it.
fn cancel_subscription(
    ds: &mut DataSet,
    resource: &'static Resource,
    at: usize,
    ctx: &MutationContext<'_>,
) -> Result<Mutation, FakeError> {
    let invalid = |e: serde_json::Error| FakeError::InvalidFields(format!("stored object: {e}"));
    let entries = &mut ds
        .collections
        .get_mut(resource.stream.as_str())
        .ok_or_else(|| FakeError::InvalidFields("no subscriptions".into()))?
        .entries;
    let mut object: Map<String, Value> =
        serde_json::from_slice(entries[at].json()).map_err(invalid)?;
    if object.get("status").and_then(Value::as_str) == Some("canceled") {
        return Err(FakeError::InvalidFields(
            "the subscription is already canceled".into(),
        ));
    }
    object.insert("status".into(), json!("canceled"));
    object.insert("canceled_at".into(), json!(ctx.now));
    object.insert("ended_at".into(), json!(ctx.now));
    let json = Bytes::from(Value::Object(object.clone()).to_string());
    entries[at].set_json(json.clone());
    let mut events = Vec::new();
    if let Some(event_type) = EventNames::of(resource).deleted {
        events.push(record_event(ds, ctx, event_type, &json, None));
    }
    Ok(Mutation {
        object: Value::Object(object),
        events,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previous_attributes_name_changed_fields() {
        let before = json!({"a": 1, "b": 2, "metadata": {"k": "v", "same": "s"}});
        let after =
            json!({"a": 1, "b": 3, "c": 4, "metadata": {"k": "w", "same": "s", "new": "n"}});
        let (Value::Object(b), Value::Object(a)) = (before, after) else {
            panic!()
        };
        assert_eq!(
            previous_attributes(&b, &a),
            json!({"b": 2, "c": null, "metadata": {"k": "v", "new": null}})
        );
    }
}

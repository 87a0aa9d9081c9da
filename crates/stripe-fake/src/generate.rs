//! Builds the data set of one (account, mode) pair from the seed: every top-level stream from
//! its template, nested items inside their parents, some deletions, and the history events of
//! the last weeks.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Map, Value, json};
use stripe_catalog::{Resource, catalog};

use crate::events::{EventNames, EventSpec};
use crate::fixtures;
use crate::ids::{IdShape, stable_hash};
use crate::nested::{
    EMBEDDED_ITEMS, attach_child, child_template, embedded_list, embeds, item_count,
};
use crate::store::{Child, Children, Collection, DataSet, Entry, EventEntry, EventLog};
use crate::timeline::{self, RECENT_WINDOW};
use crate::values;

/// Objects per stream at scale 1 (the rest of the catalog gets a handful each).
const MIX: &[(&str, usize)] = &[
    ("customers", 1000),
    ("products", 300),
    ("prices", 600),
    ("plans", 60),
    ("coupons", 40),
    ("promotion_codes", 30),
    ("subscriptions", 800),
    ("subscription_schedules", 40),
    ("invoices", 3000),
    ("invoiceitems", 600),
    ("invoice_payments", 300),
    ("credit_notes", 80),
    ("charges", 4000),
    ("payment_intents", 4000),
    ("balance_transactions", 5000),
    ("refunds", 300),
    ("disputes", 25),
    ("payouts", 120),
    ("transfers", 60),
    ("checkout_sessions", 200),
    ("payment_methods", 800),
    ("setup_intents", 150),
    ("tax_rates", 12),
    ("tax_ids", 20),
    ("application_fees", 40),
];

/// Streams generated first, so later ones can reference their ids (an invoice's customer).
const ORDER: &[&str] = &[
    "customers",
    "products",
    "prices",
    "plans",
    "coupons",
    "tax_rates",
    "payment_methods",
    "subscriptions",
    "invoices",
    "payment_intents",
    "charges",
    "balance_transactions",
    "refunds",
];

/// Fields that hold the id of another stream's object when the template has a string there.
const REFERENCES: &[(&str, &str)] = &[
    ("customer", "customers"),
    ("product", "products"),
    ("price", "prices"),
    ("invoice", "invoices"),
    ("subscription", "subscriptions"),
    ("charge", "charges"),
    ("payment_intent", "payment_intents"),
    ("payment_method", "payment_methods"),
    ("balance_transaction", "balance_transactions"),
    ("cardholder", "issuing_cardholders"),
];

/// Fraction of deletable objects generated as deleted.
const DELETED_FRACTION: f64 = 0.03;
/// Fraction of recent objects that also got an update (and a `*.updated` event).
const UPDATED_FRACTION: f64 = 0.2;
/// Streams that are not generated from counts: derived from other data.
fn is_derived(resource: &Resource) -> bool {
    resource.is_nested() || resource.stream == "events" || resource.stream == "accounts"
}

/// Object counts per generated stream, in generation order.
pub(crate) fn counts(scale: f64, overrides: &[(String, usize)]) -> Vec<(&'static Resource, usize)> {
    let mut ordered: Vec<&'static Resource> =
        ORDER.iter().filter_map(|s| catalog().resource(s)).collect();
    for r in &catalog().resources {
        if !ORDER.contains(&r.stream.as_str()) {
            ordered.push(r);
        }
    }
    ordered
        .into_iter()
        .filter(|r| !is_derived(r))
        .map(|r| {
            let base = MIX
                .iter()
                .find(|(s, _)| *s == r.stream)
                .map(|(_, n)| *n)
                .unwrap_or_else(|| 5 + (stable_hash(&[r.stream.as_bytes()]) % 16) as usize);
            let scaled = (base as f64 * scale).round() as usize;
            let count = if scale > 0.0 { scaled.max(1) } else { 0 };
            let count = overrides
                .iter()
                .rev()
                .find(|(s, _)| *s == r.stream)
                .map_or(count, |(_, n)| *n);
            (r, count)
        })
        .collect()
}

/// What distinguishes one data set from another.
pub(crate) struct DataSetSpec<'a> {
    pub seed: u64,
    pub account_id: &'a str,
    pub is_platform: bool,
    pub livemode: bool,
    pub now: i64,
    pub counts: &'a [(&'static Resource, usize)],
    /// The `account` objects the platform's `accounts` stream lists.
    pub connected_accounts: &'a [Value],
    pub api_version: &'a str,
}

/// A history event waiting for its id (ids are drawn after sorting, in event order).
struct PendingEvent {
    created: i64,
    order: u64,
    event_type: &'static str,
    object_json: Bytes,
    previous: Option<Value>,
}

/// Generation-time state shared by all streams of a data set.
pub(crate) struct Generator<'a> {
    spec: &'a DataSetSpec<'a>,
    used_ids: HashSet<String>,
    refs: HashMap<&'static str, Vec<String>>,
    prices: Vec<Value>,
    pending_events: Vec<PendingEvent>,
    next_seq: u64,
    pub id_shapes: HashMap<&'static str, IdShape>,
}

pub(crate) fn generate(spec: &DataSetSpec<'_>) -> DataSet {
    let mut generator = Generator {
        spec,
        used_ids: HashSet::new(),
        refs: HashMap::new(),
        prices: Vec::new(),
        pending_events: Vec::new(),
        next_seq: 0,
        id_shapes: HashMap::new(),
    };
    let mut collections: HashMap<&'static str, Collection> = HashMap::new();
    let mut children: HashMap<&'static str, Children> = HashMap::new();
    for resource in catalog().resources.iter().filter(|r| !r.is_nested()) {
        collections.insert(resource.stream.as_str(), Collection::default());
    }
    for resource in catalog().resources.iter().filter(|r| r.is_nested()) {
        children.insert(resource.stream.as_str(), Children::default());
    }
    for &(resource, count) in spec.counts {
        let collection = generator.stream(resource, count, &mut children);
        collections.insert(resource.stream.as_str(), collection);
    }
    if spec.is_platform {
        let mut accounts = Collection::default();
        for account in spec.connected_accounts {
            let id = account["id"].as_str().unwrap_or_default();
            let created = account["created"].as_i64().unwrap_or_default();
            generator.next_seq += 1;
            accounts.insert(Entry::new(
                (created, generator.next_seq),
                id.into(),
                false,
                Bytes::from(account.to_string()),
            ));
        }
        collections.insert("accounts", accounts);
    }
    let events = generator.events();
    let rng_seed = stable_hash(&[&spec.seed.to_le_bytes(), b"mutations"]);
    DataSet {
        account_id: spec.account_id.to_string(),
        is_platform: spec.is_platform,
        livemode: spec.livemode,
        collections,
        children,
        events,
        next_seq: generator.next_seq,
        rng: StdRng::seed_from_u64(rng_seed),
        id_shapes: generator.id_shapes,
    }
}

/// Sets the fields every object has: id, object, created (an RFC 3339 string in v2), livemode.
pub(crate) fn stamp(
    object: &mut Map<String, Value>,
    resource: &Resource,
    id: &str,
    created: i64,
    livemode: bool,
) {
    object.insert("id".into(), json!(id));
    object.insert("object".into(), json!(resource.object));
    object.remove("deleted");
    let types = fixtures::property_types(resource, "created");
    if types == ["string"] {
        let text = rfc3339(created);
        object.insert("created".into(), json!(text));
        if object.contains_key("updated") {
            object.insert("updated".into(), json!(text));
        }
    } else if object.contains_key("created") || !types.is_empty() {
        object.insert("created".into(), json!(created));
    } else if resource.properties.contains_key("date") {
        // Invoice items carry their creation time as `date`; their `created` filter applies
        // to it.
        object.insert("date".into(), json!(created));
    }
    if object.contains_key("livemode") || resource.properties.contains_key("livemode") {
        object.insert("livemode".into(), json!(livemode));
    }
}

fn rfc3339(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// The `{"object":"list",…}` a parent embeds: the first ten items and where to get the rest.
impl Generator<'_> {
    fn shape(&mut self, resource: &'static Resource, template: &Value) -> IdShape {
        self.id_shapes
            .entry(resource.stream.as_str())
            .or_insert_with(|| {
                IdShape::for_object(
                    &resource.object,
                    template.get("id").and_then(Value::as_str),
                    self.spec.livemode,
                )
            })
            .clone()
    }

    fn unique_id(&mut self, shape: &IdShape, rng: &mut StdRng, n: usize) -> String {
        let mut attempt = n;
        loop {
            let id = shape.make(rng, attempt);
            if self.used_ids.insert(id.clone()) {
                return id;
            }
            attempt += 1;
        }
    }

    fn stream(
        &mut self,
        resource: &'static Resource,
        count: usize,
        children: &mut HashMap<&'static str, Children>,
    ) -> Collection {
        let spec = self.spec;
        let mut rng = StdRng::seed_from_u64(stable_hash(&[
            &spec.seed.to_le_bytes(),
            resource.stream.as_bytes(),
        ]));
        let Value::Object(mut template) = fixtures::template(resource) else {
            return Collection::default();
        };
        let shape = self.shape(resource, &Value::Object(template.clone()));
        let names = EventNames::of(resource);
        let child_resources: Vec<&'static Resource> =
            catalog().children_of(&resource.stream).collect();
        // The fixture's own embedded items are replaced in every object: do not clone them.
        for child in &child_resources {
            if let Some(parent) = &child.parent {
                template.insert(parent.embedded_field.clone(), Value::Null);
            }
        }
        let mut collection = Collection::default();
        collection.entries.reserve(count);
        let recent_start = spec.now - RECENT_WINDOW;
        for (n, created) in timeline::created_timestamps(&mut rng, count, spec.now)
            .into_iter()
            .enumerate()
        {
            let mut object = template.clone();
            let id = self.unique_id(&shape, &mut rng, n);
            stamp(&mut object, resource, &id, created, spec.livemode);
            values::vary(&mut object, resource, &mut rng, n);
            self.fill_references(&mut object, &mut rng);
            for child in &child_resources {
                let mut items = self.children(resource, child, &id, created, &mut rng);
                let stored = items.iter().map(Child::of).collect();
                if let Some(c) = children.get_mut(child.stream.as_str()) {
                    c.by_parent.insert(id.as_str().into(), stored);
                }
                let embedded_field = child
                    .parent
                    .as_ref()
                    .map(|p| p.embedded_field.clone())
                    .unwrap_or_default();
                if embeds(child) {
                    let total = items.len();
                    items.truncate(EMBEDDED_ITEMS);
                    object.insert(embedded_field, embedded_list(child, &id, items, total));
                } else {
                    object.remove(&embedded_field);
                }
            }
            let deleted = resource.deletable && rng.random_bool(DELETED_FRACTION);
            self.next_seq += 1;
            let seq = self.next_seq;
            let recent = created >= recent_start;
            let updated = recent
                && names.updated.is_some()
                && object.get("metadata").is_some_and(Value::is_object)
                && rng.random_bool(UPDATED_FRACTION);
            let mut value = Value::Object(object);
            // An updated object is stored as it is after the update (a metadata key added);
            // its creation event carries it as it was before.
            let before_update = updated.then(|| {
                let before = Bytes::from(value.to_string());
                if let Some(Value::Object(m)) = value.get_mut("metadata") {
                    m.insert(
                        "segment".into(),
                        json!(["vip", "churn-risk", "expansion"][rng.random_range(0..3)]),
                    );
                }
                before
            });
            let json = Bytes::from(value.to_string());
            if recent {
                self.history_events(&names, &json, before_update, created, deleted, &mut rng);
            }
            if !deleted {
                self.refs
                    .entry(resource.stream.as_str())
                    .or_default()
                    .push(id.clone());
                if resource.stream == "prices" && self.prices.len() < 200 {
                    self.prices.push(value);
                }
            }
            collection.index.insert(id.as_str().into(), (created, seq));
            collection
                .entries
                .push(Entry::new((created, seq), id.into(), deleted, json));
        }
        collection
    }

    fn fill_references(&self, object: &mut Map<String, Value>, rng: &mut StdRng) {
        for (field, stream) in REFERENCES {
            if let Some(Value::String(current)) = object.get_mut(*field)
                && let Some(ids) = self.refs.get(stream)
                && !ids.is_empty()
            {
                *current = ids[rng.random_range(0..ids.len())].clone();
            }
        }
    }

    fn children(
        &mut self,
        parent: &'static Resource,
        child: &'static Resource,
        parent_id: &str,
        created: i64,
        rng: &mut StdRng,
    ) -> Vec<Value> {
        let Value::Object(template) = child_template(child, parent) else {
            return Vec::new();
        };
        let shape = self.shape(child, &Value::Object(template.clone()));
        let count = item_count(rng, &child.stream);
        (0..count)
            .map(|n| {
                let mut item = template.clone();
                let id = self.unique_id(&shape, rng, n);
                item.insert("id".into(), json!(id));
                item.insert("object".into(), json!(child.object));
                if item.contains_key("livemode") {
                    item.insert("livemode".into(), json!(self.spec.livemode));
                }
                attach_child(&mut item, parent, parent_id, created);
                values::vary(&mut item, child, rng, n);
                if matches!(item.get("quantity"), Some(Value::Number(_))) {
                    item.insert("quantity".into(), json!(rng.random_range(1..=5)));
                }
                if matches!(item.get("price"), Some(Value::Object(_))) && !self.prices.is_empty() {
                    let price = self.prices[rng.random_range(0..self.prices.len())].clone();
                    item.insert("price".into(), price);
                }
                Value::Object(item)
            })
            .collect()
    }

    /// The events a recent object left: its creation, sometimes an update (`before_update` is
    /// then the object as created), and its deletion.
    fn history_events(
        &mut self,
        names: &EventNames,
        json: &Bytes,
        before_update: Option<Bytes>,
        created: i64,
        deleted: bool,
        rng: &mut StdRng,
    ) {
        let latest = (self.spec.now - 60).max(created);
        let mut last = created;
        let updated = before_update.is_some();
        if let Some(event_type) = names.created {
            self.push_event(
                created,
                event_type,
                before_update.unwrap_or_else(|| json.clone()),
                None,
            );
        }
        if updated && let Some(event_type) = names.updated {
            last = rng.random_range(created..=latest);
            let previous = json!({"metadata": {"segment": null}});
            self.push_event(last, event_type, json.clone(), Some(previous));
        }
        if deleted && let Some(event_type) = names.deleted {
            let at = rng.random_range(last..=latest);
            self.push_event(at, event_type, json.clone(), None);
        }
    }

    fn push_event(
        &mut self,
        created: i64,
        event_type: &'static str,
        object_json: Bytes,
        previous: Option<Value>,
    ) {
        let order = self.pending_events.len() as u64;
        self.pending_events.push(PendingEvent {
            created,
            order,
            event_type,
            object_json,
            previous,
        });
    }

    fn events(&mut self) -> EventLog {
        let spec = self.spec;
        let mut pending = std::mem::take(&mut self.pending_events);
        pending.sort_by_key(|e| (e.created, e.order));
        let mut rng = StdRng::seed_from_u64(stable_hash(&[&spec.seed.to_le_bytes(), b"events"]));
        let shape = IdShape::for_object("event", None, spec.livemode);
        let mut log = EventLog::default();
        log.entries.reserve(pending.len());
        for (n, event) in pending.into_iter().enumerate() {
            let id = self.unique_id(&shape, &mut rng, n);
            self.next_seq += 1;
            let json = EventSpec {
                id: &id,
                event_type: event.event_type,
                created: event.created,
                livemode: spec.livemode,
                account: (!spec.is_platform).then_some(spec.account_id),
                api_version: spec.api_version,
                object_json: &event.object_json,
                previous_attributes: event.previous.as_ref(),
                request_id: None,
            }
            .render();
            log.push(EventEntry {
                key: (event.created, self.next_seq),
                id: id.into(),
                event_type: event.event_type.into(),
                json,
            });
        }
        log
    }
}

//! Conformance against Stripe's published OpenAPI schemas, not against ourselves: what the
//! simulator answers (list envelopes, listed and retrieved objects, deleted stubs, every event
//! type it emits and the objects events carry) is validated against the component schemas of
//! Stripe's spec (`tests/data/openapi-schemas-*.json.gz`, extracted by
//! `scripts/openapi-schemas.py`).
//!
//! What is checked: required properties, types, `nullable`, expandable fields (`anyOf`), the
//! `object` and `deleted` constants, nested objects and lists. What is not: other enums and
//! formats, since the simulator's data follows a newer API version (stripe-python 16.1.0's
//! catalog and the 2026 fixtures) than the newest full spec available here (2023-08-16), and
//! enums only grow. Resources the spec does not describe (newer than it) are reported, not
//! failed.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use common::{Client, start};
use serde_json::{Map, Value, json};
use stripe_catalog::{Api, catalog};
use stripe_fake::Config;

const SCHEMAS: &[u8] = include_bytes!("data/openapi-schemas-2023-08-16.json.gz");
/// Objects sampled per list.
const SAMPLE: usize = 5;

fn spec() -> Value {
    let mut text = String::new();
    flate2::read::GzDecoder::new(SCHEMAS)
        .read_to_string(&mut text)
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

/// An OpenAPI 3.0 schema as JSON Schema: `nullable` becomes a `null` alternative; enums are
/// kept for `object` and `deleted` only (see the module comment); vendor keys and formats go.
fn to_json_schema(node: &Value, keep_enum: bool) -> Value {
    let Value::Object(map) = node else {
        return node.clone();
    };
    let mut out = Map::new();
    for (key, value) in map {
        match key.as_str() {
            "nullable" | "format" => {}
            k if k.starts_with("x-") => {}
            "enum" if !keep_enum => {}
            "properties" => {
                let props = value
                    .as_object()
                    .map(|p| {
                        p.iter()
                            .map(|(name, s)| {
                                let keep = name == "object" || name == "deleted";
                                (name.clone(), to_json_schema(s, keep))
                            })
                            .collect::<Map<String, Value>>()
                    })
                    .unwrap_or_default();
                out.insert(key.clone(), Value::Object(props));
            }
            "items" | "additionalProperties" => {
                out.insert(key.clone(), to_json_schema(value, false));
            }
            "anyOf" | "oneOf" | "allOf" => {
                let parts = value
                    .as_array()
                    .map(|a| a.iter().map(|s| to_json_schema(s, keep_enum)).collect())
                    .unwrap_or_default();
                out.insert(key.clone(), Value::Array(parts));
            }
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    let converted = Value::Object(out);
    if map.get("nullable") == Some(&Value::Bool(true)) {
        json!({"anyOf": [converted, {"type": "null"}]})
    } else {
        converted
    }
}

/// Changes Stripe made to these schemas between the spec's version (2023-08-16) and the
/// simulator's (the catalog's `api_version`), from Stripe's API changelog. Each is applied to
/// the spec before validating, so everything else stays strict.
enum ApiChange {
    /// A property no longer always present (removed or moved).
    NoLongerRequired(&'static str, &'static str, &'static str),
    /// A property that may now be null.
    NowNullable(&'static str, &'static str, &'static str),
}

const API_CHANGES: &[ApiChange] = &[
    ApiChange::NoLongerRequired(
        "invoice",
        "paid",
        "2025-03-31.basil: invoice payments replace paid",
    ),
    ApiChange::NoLongerRequired(
        "invoice",
        "paid_out_of_band",
        "2025-03-31.basil: invoice payments",
    ),
    ApiChange::NoLongerRequired(
        "invoice",
        "total_tax_amounts",
        "2025-03-31.basil: total_taxes replaces it",
    ),
    ApiChange::NoLongerRequired(
        "line_item",
        "proration",
        "2025-03-31.basil: moved under parent",
    ),
    ApiChange::NoLongerRequired(
        "line_item",
        "type",
        "2025-03-31.basil: replaced by parent.type",
    ),
    ApiChange::NoLongerRequired(
        "credit_note",
        "tax_amounts",
        "2025-03-31.basil: total_taxes replaces it",
    ),
    ApiChange::NoLongerRequired(
        "credit_note_line_item",
        "tax_amounts",
        "2025-03-31.basil: taxes replaces it",
    ),
    ApiChange::NoLongerRequired(
        "subscription",
        "current_period_start",
        "2025-03-31.basil: moved to subscription items",
    ),
    ApiChange::NoLongerRequired(
        "subscription",
        "current_period_end",
        "2025-03-31.basil: moved to subscription items",
    ),
    ApiChange::NoLongerRequired(
        "product",
        "features",
        "2024-04-10: renamed marketing_features",
    ),
    ApiChange::NoLongerRequired(
        "promotion_code",
        "coupon",
        "2025-09-30.clover: moved to promotion.coupon",
    ),
    ApiChange::NoLongerRequired(
        "discount",
        "coupon",
        "2025-09-30.clover: moved to source.coupon",
    ),
    ApiChange::NoLongerRequired(
        "portal_features",
        "subscription_pause",
        "2024: subscription pausing left the portal",
    ),
    ApiChange::NowNullable(
        "account_bacs_debit_payments_settings",
        "display_name",
        "unset until the account configures Bacs",
    ),
];

fn apply_api_changes(schemas: &mut Map<String, Value>) {
    for change in API_CHANGES {
        match change {
            ApiChange::NoLongerRequired(schema, property, why) => {
                eprintln!("spec patched: {schema}.{property} no longer required ({why})");
                let required = schemas
                    .get_mut(*schema)
                    .and_then(|s| s.get_mut("required"))
                    .and_then(Value::as_array_mut)
                    .unwrap_or_else(|| panic!("{schema} has no required list"));
                let before = required.len();
                required.retain(|p| p != property);
                assert!(
                    required.len() < before,
                    "{schema}.{property} was not required"
                );
            }
            ApiChange::NowNullable(schema, property, why) => {
                eprintln!("spec patched: {schema}.{property} may be null ({why})");
                let slot = schemas
                    .get_mut(*schema)
                    .and_then(|s| s.get_mut("properties"))
                    .and_then(|p| p.get_mut(*property))
                    .unwrap_or_else(|| panic!("{schema}.{property} is not in the spec"));
                *slot = json!({"anyOf": [slot.clone(), {"type": "null"}]});
            }
        }
    }
}

struct Spec {
    version: String,
    schemas: Map<String, Value>,
    validators: BTreeMap<String, jsonschema::Validator>,
}

impl Spec {
    fn load() -> Spec {
        let spec = spec();
        let schemas: Map<String, Value> = spec["components"]["schemas"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), to_json_schema(v, false)))
            .collect();
        let mut schemas = schemas;
        apply_api_changes(&mut schemas);
        Spec {
            version: spec["info"]["version"].as_str().unwrap().to_owned(),
            schemas,
            validators: BTreeMap::new(),
        }
    }

    fn has(&self, name: &str) -> bool {
        self.schemas.contains_key(name)
    }

    /// Every violation of schema `name` by `instance`, as `path: message`.
    fn violations(&mut self, name: &str, instance: &Value) -> Vec<String> {
        if !self.validators.contains_key(name) {
            let root = json!({
                "$ref": format!("#/components/schemas/{name}"),
                "components": {"schemas": self.schemas},
            });
            let validator =
                jsonschema::validator_for(&root).unwrap_or_else(|e| panic!("schema {name}: {e}"));
            self.validators.insert(name.to_owned(), validator);
        }
        // The evaluation's errors include those inside `anyOf` branches, which say why.
        self.validators[name]
            .evaluate(instance)
            .iter_errors()
            .filter(|e| !e.schema_location.ends_with("/anyOf"))
            .map(|e| {
                format!(
                    "{} ({}): {}",
                    e.instance_location.as_str(),
                    e.schema_location,
                    e.error
                )
            })
            .take(8)
            .collect()
    }
}

/// Failures found, by what was checked.
#[derive(Default)]
struct Report {
    conforming: BTreeSet<String>,
    failing: BTreeMap<String, Vec<String>>,
    undescribed: BTreeSet<String>,
}

impl Report {
    fn check(&mut self, spec: &mut Spec, what: &str, schema: &str, instance: &Value) {
        if !spec.has(schema) {
            self.undescribed.insert(schema.to_owned());
            return;
        }
        let violations = spec.violations(schema, instance);
        if violations.is_empty() {
            self.conforming.insert(schema.to_owned());
        } else {
            self.failing
                .entry(format!("{schema} ({what})"))
                .or_default()
                .extend(violations);
        }
    }
}

fn list_envelope_violations(page: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if page["object"] != "list" {
        out.push(format!("object is {}", page["object"]));
    }
    if !page["url"].is_string() {
        out.push("url is not a string".into());
    }
    if !page["has_more"].is_boolean() {
        out.push("has_more is not a boolean".into());
    }
    if !page["data"].is_array() {
        out.push("data is not an array".into());
    }
    out
}

#[test]
fn what_the_simulator_serves_conforms_to_stripes_published_schemas() {
    let fake = start(Config {
        seed: 23,
        scale: 0.01,
        accounts: 1,
        ..Config::default()
    });
    let client = Client::new(&fake);
    let mut spec = Spec::load();
    let mut report = Report::default();
    let mut envelopes = Vec::new();

    for resource in &catalog().resources {
        let path = match &resource.parent {
            Some(parent) => {
                let parent_id = fake.objects(None, &parent.stream).unwrap()[0]["id"]
                    .as_str()
                    .unwrap()
                    .to_string();
                match &parent.param {
                    Some(param) if !resource.list_path.contains("{parent}") => {
                        format!("{}?{param}={parent_id}", resource.list_path)
                    }
                    _ => resource.list_path_for(Some(&parent_id)),
                }
            }
            None => resource.list_path.clone(),
        };
        let page = client.get(&path).expect(200);
        if resource.api == Api::V1 {
            let violations = list_envelope_violations(&page);
            if !violations.is_empty() {
                envelopes.push(format!("{path}: {violations:?}"));
            }
        }
        let data = page["data"].as_array().cloned().unwrap_or_default();
        assert!(!data.is_empty(), "{path} lists nothing");
        let schema = if resource.stream == "events" {
            "event".to_owned()
        } else {
            resource.object.clone()
        };
        for object in data.iter().take(SAMPLE) {
            report.check(&mut spec, &format!("GET {path}"), &schema, object);
        }
        if let (Some(template), Some(id)) = (&resource.retrieve_path, data[0]["id"].as_str()) {
            let retrieved = client.get(&template.replace("{id}", id)).expect(200);
            report.check(&mut spec, &format!("GET {template}"), &schema, &retrieved);
        }
    }

    // Deleted objects: Stripe's `deleted_<object>` stubs, from DELETE and from a retrieve.
    for resource in catalog()
        .resources
        .iter()
        .filter(|r| r.deletable && r.api == Api::V1 && !r.is_nested())
    {
        let Some(template) = &resource.retrieve_path else {
            continue;
        };
        let objects = fake.objects(None, &resource.stream).unwrap();
        let Some(id) = objects.last().and_then(|o| o["id"].as_str()) else {
            continue;
        };
        let path = template.replace("{id}", id);
        let deleted = client.delete(&path).expect(200);
        let schema = format!("deleted_{}", resource.object);
        report.check(&mut spec, &format!("DELETE {template}"), &schema, &deleted);
        let again = client.get(&path);
        if again.status == 200 {
            report.check(
                &mut spec,
                &format!("GET deleted {template}"),
                &schema,
                &again.json(),
            );
        }
    }

    // Every event type the simulator emits (generated history, and the creates, updates and
    // deletes above), and the object each carries.
    fake.create(None, "customers", json!({"name": "new"}))
        .unwrap();
    let mut types = BTreeSet::new();
    for event in fake.events(None).unwrap() {
        let event_type = event["type"].as_str().unwrap().to_owned();
        if !types.insert(event_type.clone()) {
            continue;
        }
        report.check(&mut spec, &format!("event {event_type}"), "event", &event);
        let object = &event["data"]["object"];
        if let Some(kind) = object["object"].as_str() {
            let schema = if object["deleted"] == true {
                format!("deleted_{kind}")
            } else {
                kind.to_owned()
            };
            report.check(&mut spec, &format!("{event_type} payload"), &schema, object);
        }
    }

    let failing_schemas: BTreeSet<&str> = report
        .failing
        .keys()
        .filter_map(|k| k.split(' ').next())
        .collect();
    report
        .conforming
        .retain(|s| !failing_schemas.contains(s.as_str()));
    let described = report.conforming.len() + failing_schemas.len();
    eprintln!(
        "OpenAPI {} (with {} API changes since): {} schemas conform, {} fail, {} not in this spec version: {:?}; {} event types",
        spec.version,
        API_CHANGES.len(),
        report.conforming.len(),
        failing_schemas.len(),
        report.undescribed.len(),
        report.undescribed,
        types.len()
    );
    assert!(envelopes.is_empty(), "list envelopes: {envelopes:#?}");
    assert!(
        report.failing.is_empty(),
        "{} of {described} described schemas fail:\n{:#?}",
        report.failing.len(),
        report.failing
    );
    assert!(described >= 40, "too little is described: {described}");
}

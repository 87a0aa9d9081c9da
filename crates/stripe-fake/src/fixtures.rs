//! Object templates: Stripe's fixture for the object type when there is one (`data/fixtures3.json`,
//! from Stripe's public OpenAPI repository, MIT), otherwise an object synthesised from the
//! catalog's property schemas.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::{Map, Value};
use stripe_catalog::Resource;

const FIXTURES_JSON: &str = include_str!("../data/fixtures3.json");

fn fixtures() -> &'static HashMap<String, Value> {
    static FIXTURES: OnceLock<HashMap<String, Value>> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        #[derive(serde::Deserialize)]
        struct File {
            resources: HashMap<String, Value>,
        }
        match serde_json::from_str::<File>(FIXTURES_JSON) {
            Ok(f) => f.resources,
            // Embedded at build time and covered by tests: a parse failure is a build defect.
            Err(e) => panic!("the embedded fixtures3.json is invalid: {e}"),
        }
    })
}

/// The fixture of an object type, if Stripe publishes one.
pub(crate) fn fixture(object: &str) -> Option<&'static Value> {
    fixtures().get(object).filter(|v| v.is_object())
}

/// A template for the resource's objects: its fixture, or a synthesised object.
/// Whether Stripe answers a retrieve of a deleted object of this type with
/// `{id, object, deleted: true}` (its spec has a `deleted_<object>` schema) rather than a 404.
pub(crate) fn keeps_deleted(object: &str) -> bool {
    fixtures().contains_key(&format!("deleted_{object}"))
}

pub(crate) fn template(resource: &Resource) -> Value {
    match fixture(&resource.object) {
        Some(f) => f.clone(),
        None => synthesise(resource),
    }
}

/// An object with every catalog property at its "empty" value: null where nullable, else the
/// first enum value, 0, "", false, {} or [].
pub(crate) fn synthesise(resource: &Resource) -> Value {
    let mut object = Map::new();
    for (name, schema) in &resource.properties {
        object.insert(name.clone(), empty_value(schema));
    }
    object.insert("object".into(), Value::String(resource.object.clone()));
    object.remove("deleted");
    Value::Object(object)
}

fn empty_value(schema: &Value) -> Value {
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if types.contains(&"null") {
        return Value::Null;
    }
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.iter().find(|v| !v.is_null()))
    {
        return first.clone();
    }
    match types.first().copied() {
        Some("string") => Value::String(String::new()),
        Some("integer") | Some("number") => Value::from(0),
        Some("boolean") => Value::Bool(false),
        Some("array") => Value::Array(Vec::new()),
        Some("object") => Value::Object(Map::new()),
        _ => Value::Null,
    }
}

/// The JSON types a top-level property accepts, from the catalog schema.
pub(crate) fn property_types(resource: &Resource, name: &str) -> Vec<&'static str> {
    let Some(schema) = resource.properties.get(name) else {
        return Vec::new();
    };
    let names: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    [
        "string", "integer", "number", "boolean", "object", "array", "null",
    ]
    .into_iter()
    .filter(|t| names.contains(t))
    .collect()
}

/// The non-null enum values of a top-level string property.
pub(crate) fn enum_values<'a>(resource: &'a Resource, name: &str) -> Vec<&'a str> {
    resource
        .properties
        .get(name)
        .and_then(|s| s.get("enum"))
        .and_then(Value::as_array)
        .map(|values| values.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_resource_has_a_template_with_an_object_type() {
        for resource in &stripe_catalog::catalog().resources {
            let t = template(resource);
            assert!(t.is_object(), "{}", resource.stream);
        }
        let synthetic = synthesise(
            stripe_catalog::catalog()
                .resource("v2_core_accounts")
                .unwrap(),
        );
        assert_eq!(synthetic["object"], "v2.core.account");
        assert_eq!(synthetic["created"], "");
        assert_eq!(synthetic["closed"], Value::Null);
        assert_eq!(synthetic["applied_configurations"], serde_json::json!([]));
    }
}

//! A connector's config JSON Schema derived from the struct that deserializes it, so the keys,
//! defaults and descriptions `spec` publishes are the ones the config parser takes.
//!
//! The derive's output is brought to the form the house publishes: draft-07, subschemas inline,
//! an `Option` field refusing `null` as before (absent means unset; `null` is not a value the
//! docs name), no Rust integer widths as `format`, and doc comments unwrapped to one line per
//! paragraph.

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value};

/// The draft-07 JSON Schema of `T` (a config struct deriving [`JsonSchema`]).
pub fn config_schema<T: JsonSchema>() -> Value {
    let generator = SchemaSettings::draft07()
        .with(|settings| settings.inline_subschemas = true)
        .into_generator();
    let mut schema = generator.into_root_schema_for::<T>().to_value();
    tidy(&mut schema);
    schema
}

/// Integer and float widths schemars records as `format`; no validator or reader uses them.
const NUMERIC_FORMATS: &[&str] = &[
    "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64",
    "float", "double",
];

fn tidy(schema: &mut Value) {
    let Value::Object(object) = schema else {
        return;
    };
    refuse_null(object);
    consts_as_enum(object);
    if object
        .get("format")
        .and_then(Value::as_str)
        .is_some_and(|format| NUMERIC_FORMATS.contains(&format))
    {
        object.remove("format");
    }
    if object.get("default") == Some(&Value::Null) {
        object.remove("default");
    }
    if let Some(Value::String(description)) = object.get_mut("description") {
        *description = unwrap_lines(description);
    }
    for key in ["items", "additionalProperties"] {
        if let Some(sub) = object.get_mut(key) {
            tidy(sub);
        }
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(Value::Array(subs)) = object.get_mut(key) {
            subs.iter_mut().for_each(tidy);
        }
    }
    if let Some(Value::Object(properties)) = object.get_mut("properties") {
        properties.values_mut().for_each(tidy);
    }
}

/// `"type": ["string", "null"]` → `"string"`; `anyOf: [S, {"type": "null"}]` → S.
fn refuse_null(object: &mut Map<String, Value>) {
    if let Some(Value::Array(types)) = object.get_mut("type") {
        types.retain(|t| t != "null");
        if let [only] = types.as_slice() {
            let only = only.clone();
            object.insert("type".into(), only);
        }
    }
    let Some(Value::Array(variants)) = object.get("anyOf") else {
        return;
    };
    let kept: Vec<&Value> = variants
        .iter()
        .filter(|v| v.get("type").and_then(Value::as_str) != Some("null"))
        .collect();
    if let [Value::Object(only)] = kept.as_slice() {
        let only = only.clone();
        object.remove("anyOf");
        for (key, value) in only {
            object.entry(key).or_insert(value);
        }
    }
}

/// `oneOf: [{"const": "soft", …}, {"const": "hard", …}]` (an enum whose variants have docs) →
/// `"enum": ["soft", "hard"]`, the form config readers and form builders know; the field's own
/// description names what each value does.
fn consts_as_enum(object: &mut Map<String, Value>) {
    let Some(Value::Array(variants)) = object.get("oneOf") else {
        return;
    };
    let values: Option<Vec<Value>> = variants.iter().map(|v| v.get("const").cloned()).collect();
    let Some(values) = values else {
        return;
    };
    let all_strings = values.iter().all(Value::is_string);
    object.remove("oneOf");
    if all_strings {
        object.insert("type".into(), "string".into());
    }
    object.insert("enum".into(), Value::Array(values));
}

/// A doc comment's lines joined with spaces; a blank line still separates paragraphs.
fn unwrap_lines(text: &str) -> String {
    text.split("\n\n")
        .map(|paragraph| {
            paragraph
                .split('\n')
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    /// An example config.
    #[derive(Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[schemars(title = "Example")]
    #[allow(dead_code)]
    struct Example {
        /// The key,
        /// on two lines.
        #[schemars(length(min = 1), extend("secret" = true))]
        key: String,
        /// How many.
        #[serde(default = "three")]
        #[schemars(range(min = 1, max = 9))]
        count: u8,
        /// Maybe.
        #[serde(default)]
        limit: Option<u32>,
        /// Nested.
        #[serde(default)]
        nested: Option<Nested>,
        /// Which way.
        #[serde(default)]
        mode: Mode,
    }

    #[derive(Deserialize, JsonSchema, serde::Serialize, Default)]
    #[serde(rename_all = "lowercase")]
    enum Mode {
        /// The usual way.
        #[default]
        Soft,
        /// The other way.
        Hard,
    }

    #[derive(Deserialize, JsonSchema)]
    #[allow(dead_code)]
    struct Nested {
        /// A name.
        name: String,
    }

    fn three() -> u8 {
        3
    }

    #[test]
    fn a_config_struct_becomes_the_published_draft_07_schema() {
        let schema = config_schema::<Example>();
        assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
        assert_eq!(schema["title"], "Example");
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(schema["required"], json!(["key"]));
        let properties = &schema["properties"];
        assert_eq!(
            properties["key"],
            json!({"type": "string", "minLength": 1, "secret": true, "description": "The key, on two lines."})
        );
        assert_eq!(
            properties["count"],
            json!({"type": "integer", "minimum": 1, "maximum": 9, "default": 3, "description": "How many."})
        );
        assert_eq!(
            properties["limit"],
            json!({"type": "integer", "minimum": 0, "description": "Maybe."})
        );
        assert_eq!(properties["nested"]["type"], "object");
        assert_eq!(properties["nested"]["required"], json!(["name"]));
        assert_eq!(
            properties["mode"],
            json!({"type": "string", "enum": ["soft", "hard"], "default": "soft", "description": "Which way."})
        );
        assert!(schema.get("definitions").is_none(), "{schema:#}");
    }

    #[test]
    fn null_is_refused_where_a_value_is_optional() {
        let schema = config_schema::<Example>();
        let null_limit = json!({"key": "k", "limit": null});
        assert!(crate::validate::validate_config(&schema, &null_limit).is_err());
        assert!(
            crate::validate::validate_config(&schema, &json!({"key": "k", "limit": 5})).is_ok()
        );
    }
}

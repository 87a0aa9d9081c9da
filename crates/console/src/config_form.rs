//! A connector's config form, read off its config's JSON Schema: one field per property, with
//! its kind (text, secret, number, choice, JSON), whether it is required, its default and its
//! description. Pure: the pages render it, the script reads the values back by kind.

use serde_json::Value;

/// How a field is entered and how the script turns its text back into JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FieldKind {
    /// A string.
    Text,
    /// A string never shown again (`writeOnly` in the schema): a password input.
    Secret,
    /// A whole number.
    Integer,
    /// Any number.
    Number,
    /// `true`, `false` or (when optional) the default.
    Boolean,
    /// One of these strings.
    Choice(Vec<String>),
    /// Anything else (objects, lists, unions): JSON text.
    Json,
}

impl FieldKind {
    /// The name the script reads from `data-kind`.
    pub(crate) fn as_str(&self) -> &'static str {
        match self {
            FieldKind::Text => "text",
            FieldKind::Secret => "secret",
            FieldKind::Integer => "integer",
            FieldKind::Number => "number",
            FieldKind::Boolean => "boolean",
            FieldKind::Choice(_) => "choice",
            FieldKind::Json => "json",
        }
    }
}

/// One field of a config form.
#[derive(Debug, Clone)]
pub(crate) struct Field {
    /// The config key.
    pub(crate) key: String,
    /// How it is entered.
    pub(crate) kind: FieldKind,
    /// The schema lists it under `required`.
    pub(crate) required: bool,
    /// The schema's `description`.
    pub(crate) description: String,
    /// The schema's `default`, as the field shows it (a placeholder, never a value sent).
    pub(crate) default: String,
    /// The stored value as the API shows it (an edit), as the field shows it; empty for a
    /// secret (it is never sent back to the browser, even masked).
    pub(crate) value: String,
    /// A stored secret is kept unless the field is filled.
    pub(crate) kept: bool,
}

impl Field {
    /// The choices of a choice field.
    pub(crate) fn choices(&self) -> &[String] {
        match &self.kind {
            FieldKind::Choice(c) => c,
            _ => &[],
        }
    }
}

/// The form of a config schema: required fields first, each group in the schema's key order;
/// `stored` (an edit) fills them with the values the API shows.
pub(crate) fn fields(schema: &Value, stored: Option<&Value>) -> Vec<Field> {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let mut fields: Vec<Field> = schema["properties"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(key, property)| {
            let property = resolved(schema, property);
            let kind = kind_of(schema, property);
            let stored_value = stored.and_then(|s| s.get(key)).filter(|v| !v.is_null());
            Field {
                key: key.clone(),
                required: required.contains(&key.as_str()),
                description: property["description"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                default: property
                    .get("default")
                    .map(|v| shown(&kind, v))
                    .unwrap_or_default(),
                value: match (&kind, stored_value) {
                    (FieldKind::Secret, _) | (_, None) => String::new(),
                    (_, Some(v)) => shown(&kind, v),
                },
                kept: kind == FieldKind::Secret && stored_value.is_some(),
                kind,
            }
        })
        .collect();
    fields.sort_by_key(|f| !f.required);
    fields
}

/// A value as a field holds it: JSON in a JSON field (which is parsed back), else strings bare
/// and anything else as JSON.
fn shown(kind: &FieldKind, value: &Value) -> String {
    match (kind, value) {
        (FieldKind::Json, v) => v.to_string(),
        (_, Value::String(s)) => s.clone(),
        (_, other) => other.to_string(),
    }
}

/// A property behind a local `$ref` (`#/$defs/…`, `#/definitions/…`), or the property itself.
fn resolved<'a>(schema: &'a Value, property: &'a Value) -> &'a Value {
    property["$ref"]
        .as_str()
        .and_then(|r| r.strip_prefix('#'))
        .and_then(|pointer| schema.pointer(pointer))
        .unwrap_or(property)
}

fn kind_of(schema: &Value, property: &Value) -> FieldKind {
    if property["writeOnly"] == true {
        return FieldKind::Secret;
    }
    if let Some(choices) = choices(schema, property) {
        return FieldKind::Choice(choices);
    }
    let types: Vec<&str> = match &property["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let types: Vec<&str> = types.into_iter().filter(|t| *t != "null").collect();
    match types.as_slice() {
        ["string"] => FieldKind::Text,
        ["integer"] => FieldKind::Integer,
        ["number"] => FieldKind::Number,
        ["boolean"] => FieldKind::Boolean,
        _ => FieldKind::Json,
    }
}

/// The strings a property may take, when it lists them (`enum`, or a union of `const`s and
/// `enum`s, `null` left out).
fn choices(schema: &Value, property: &Value) -> Option<Vec<String>> {
    if let Some(values) = property["enum"].as_array() {
        return strings(values);
    }
    let arms = property["oneOf"]
        .as_array()
        .or_else(|| property["anyOf"].as_array())?;
    let mut all = Vec::new();
    for arm in arms {
        let arm = resolved(schema, arm);
        if arm["type"] == "null" {
            continue;
        }
        if let Some(c) = arm.get("const") {
            all.push(c.as_str()?.to_owned());
        } else if let Some(values) = arm["enum"].as_array() {
            all.extend(strings(values)?);
        } else {
            return None;
        }
    }
    (!all.is_empty()).then_some(all)
}

/// Every value as a string, `null` left out; `None` when one is neither.
fn strings(values: &[Value]) -> Option<Vec<String>> {
    values
        .iter()
        .filter(|v| !v.is_null())
        .map(|v| v.as_str().map(str::to_owned))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_schema_becomes_fields_required_first() {
        let schema = json!({
            "type": "object",
            "required": ["url"],
            "properties": {
                "api_key": {"type": "string", "writeOnly": true, "description": "The key."},
                "batch": {"type": ["integer", "null"], "default": 500},
                "mode": {"oneOf": [{"const": "a"}, {"const": "b"}, {"type": "null"}]},
                "level": {"$ref": "#/$defs/Level"},
                "live": {"type": "boolean"},
                "rate": {"type": "number"},
                "streams": {"type": "array", "items": {"type": "string"}},
                "url": {"type": "string"}
            },
            "$defs": {"Level": {"type": "string", "enum": ["low", "high"]}}
        });
        let stored = json!({"url": "postgres://u:***@h/db", "api_key": "***", "batch": 10});
        let fields = fields(&schema, Some(&stored));
        let keys: Vec<&str> = fields.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "url", "api_key", "batch", "level", "live", "mode", "rate", "streams"
            ]
        );
        let by = |k: &str| fields.iter().find(|f| f.key == k).unwrap();
        assert!(by("url").required);
        assert_eq!(by("url").value, "postgres://u:***@h/db");
        assert_eq!(by("api_key").kind, FieldKind::Secret);
        // A stored secret is never sent back, not even masked; the form says it is kept.
        assert_eq!(by("api_key").value, "");
        assert!(by("api_key").kept);
        assert_eq!(by("batch").kind, FieldKind::Integer);
        assert_eq!(by("batch").default, "500");
        assert_eq!(by("batch").value, "10");
        assert_eq!(
            by("mode").kind,
            FieldKind::Choice(vec!["a".into(), "b".into()])
        );
        assert_eq!(
            by("level").kind,
            FieldKind::Choice(vec!["low".into(), "high".into()])
        );
        assert_eq!(by("live").kind, FieldKind::Boolean);
        assert_eq!(by("rate").kind, FieldKind::Number);
        assert_eq!(by("streams").kind, FieldKind::Json);
        // A JSON field shows JSON, so that it parses back as it was.
        let stored = json!({"streams": "customers"});
        let again = super::fields(&schema, Some(&stored));
        let streams = again.iter().find(|f| f.key == "streams").unwrap();
        assert_eq!(streams.value, "\"customers\"");
    }
}

//! Stripe's form-encoded parameters (`name=x&metadata[k]=v&items[0][price]=p&expand[]=a`) as a
//! JSON object, with values coerced to the types the object has (integers, booleans).

use serde_json::{Map, Value};
use stripe_catalog::Resource;

use crate::api_error::ApiError;
use crate::fixtures;

const MAX_DEPTH: usize = 8;

/// Splits `items[0][price]` into `["items", "0", "price"]`.
fn key_path(key: &str) -> Option<Vec<&str>> {
    let (head, mut rest) = match key.find('[') {
        Some(at) => key.split_at(at),
        None => (key, ""),
    };
    if head.is_empty() {
        return None;
    }
    let mut path = vec![head];
    while !rest.is_empty() {
        let inner = rest.strip_prefix('[')?;
        let close = inner.find(']')?;
        path.push(&inner[..close]);
        rest = &inner[close + 1..];
    }
    (path.len() <= MAX_DEPTH).then_some(path)
}

/// Builds the nested object; every leaf is a string. `[]` appends; numeric segments become
/// arrays (outside `metadata`, whose keys are free-form).
pub(crate) fn nest(pairs: &[(String, String)]) -> Result<Map<String, Value>, ApiError> {
    let mut root = Value::Object(Map::new());
    for (key, value) in pairs {
        let path = key_path(key).ok_or_else(|| {
            ApiError::invalid(format!("Invalid parameter name: {key}")).param(key)
        })?;
        let mut node = &mut root;
        for (depth, segment) in path.iter().enumerate() {
            let last = depth + 1 == path.len();
            let Value::Object(map) = node else {
                return Err(ApiError::invalid(format!(
                    "Invalid value for {key}: conflicting parameters"
                ))
                .param(key));
            };
            let segment = if segment.is_empty() {
                map.len().to_string()
            } else {
                (*segment).to_string()
            };
            if last {
                map.insert(segment, Value::String(value.clone()));
                break;
            }
            node = map
                .entry(segment)
                .or_insert_with(|| Value::Object(Map::new()));
        }
    }
    let Value::Object(mut map) = root else {
        return Ok(Map::new());
    };
    for (name, value) in map.iter_mut() {
        if name != "metadata" {
            arrays_from_indices(value);
        }
    }
    Ok(map)
}

/// `{"0": a, "1": b}` → `[a, b]`, recursively (except under `metadata`).
fn arrays_from_indices(value: &mut Value) {
    let Value::Object(map) = value else {
        return;
    };
    for (name, child) in map.iter_mut() {
        if name != "metadata" {
            arrays_from_indices(child);
        }
    }
    if !map.is_empty() && map.keys().all(|k| k.parse::<usize>().is_ok()) {
        let mut items: Vec<(usize, Value)> = std::mem::take(map)
            .into_iter()
            .filter_map(|(k, v)| k.parse().ok().map(|i| (i, v)))
            .collect();
        items.sort_by_key(|(i, _)| *i);
        *value = Value::Array(items.into_iter().map(|(_, v)| v).collect());
    }
}

/// Coerces string leaves: top-level fields by the catalog schema, nested ones by the type the
/// template has at the same place. An empty string clears a field (null), and a metadata key.
pub(crate) fn coerce(
    fields: &mut Map<String, Value>,
    resource: &Resource,
    template: &Value,
) -> Result<(), ApiError> {
    for (name, value) in fields.iter_mut() {
        let types = fixtures::property_types(resource, name);
        let like = template.get(name);
        coerce_value(value, name, &types, like, name == "metadata")?;
    }
    Ok(())
}

/// Coerces a value by the type of `like` (the template at the same place).
pub(crate) fn coerce_like(
    value: &mut Value,
    param: &str,
    like: Option<&Value>,
) -> Result<(), ApiError> {
    coerce_value(value, param, &[], like, false)
}

fn coerce_value(
    value: &mut Value,
    param: &str,
    types: &[&str],
    like: Option<&Value>,
    in_metadata: bool,
) -> Result<(), ApiError> {
    match value {
        Value::String(s) if s.is_empty() => *value = Value::Null,
        Value::String(_) if in_metadata => {}
        Value::String(s) => {
            let wants = |t: &str| types.contains(&t);
            let like_int = like.is_some_and(|v| v.is_i64() || v.is_u64());
            let like_float = like.is_some_and(Value::is_f64);
            let like_bool = like.is_some_and(Value::is_boolean);
            if (wants("integer") && !wants("string")) || (types.is_empty() && like_int) {
                let n: i64 = s
                    .trim()
                    .parse()
                    .map_err(|_| ApiError::invalid_integer(param, s))?;
                *value = Value::from(n);
            } else if (wants("number") && !wants("string")) || (types.is_empty() && like_float) {
                let n: f64 = s
                    .trim()
                    .parse()
                    .map_err(|_| ApiError::invalid(format!("Invalid decimal: {s}")).param(param))?;
                *value = Value::from(n);
            } else if (wants("boolean") && !wants("string")) || (types.is_empty() && like_bool) {
                *value = match s.as_str() {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    _ => {
                        return Err(ApiError::invalid(format!("Invalid boolean: {s}")).param(param));
                    }
                };
            }
        }
        Value::Object(map) => {
            for (name, child) in map.iter_mut() {
                let like = like.and_then(|l| l.get(name));
                coerce_value(child, &format!("{param}[{name}]"), &[], like, in_metadata)?;
            }
        }
        Value::Array(items) => {
            let like = like.and_then(|l| l.as_array()).and_then(|a| a.first());
            for (i, item) in items.iter_mut().enumerate() {
                coerce_value(item, &format!("{param}[{i}]"), &[], like, in_metadata)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Merges `fields` into `object`: nested objects merge key by key, a null metadata key is
/// removed, anything else replaces the old value.
pub(crate) fn merge(
    object: &mut Map<String, Value>,
    fields: Map<String, Value>,
    in_metadata: bool,
) {
    for (name, value) in fields {
        let into_metadata = in_metadata || name == "metadata";
        match (object.get_mut(&name), value) {
            (_, Value::Null) if in_metadata => {
                object.remove(&name);
            }
            (Some(Value::Object(existing)), Value::Object(update)) => {
                merge(existing, update, into_metadata)
            }
            (None, Value::Object(update)) if into_metadata => {
                let mut fresh = Map::new();
                merge(&mut fresh, update, true);
                object.insert(name, Value::Object(fresh));
            }
            (_, value) => {
                object.insert(name, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::list::parse_query;

    fn form(body: &str) -> Map<String, Value> {
        nest(&parse_query(Some(body))).unwrap()
    }

    #[test]
    fn nests_stripe_style_keys() {
        let f = form(
            "name=Ada&metadata[k]=v&metadata[0]=zero&address[city]=Paris&items[0][price]=p1&items[1][price]=p2&expand[]=a&expand[]=b",
        );
        assert_eq!(
            Value::Object(f),
            json!({
                "name": "Ada",
                "metadata": {"k": "v", "0": "zero"},
                "address": {"city": "Paris"},
                "items": [{"price": "p1"}, {"price": "p2"}],
                "expand": ["a", "b"],
            })
        );
        assert!(nest(&parse_query(Some("[x]=1"))).is_err());
        assert!(nest(&parse_query(Some("a[b=1"))).is_err());
        assert!(nest(&parse_query(Some("a=1&a[b]=2"))).is_err());
    }

    #[test]
    fn coerces_by_schema_and_template() {
        let prices = stripe_catalog::catalog().resource("prices").unwrap();
        let template = fixtures::template(prices);
        let mut f = form(
            "unit_amount=1200&active=false&metadata[n]=5&recurring[interval_count]=3&nickname=",
        );
        coerce(&mut f, prices, &template).unwrap();
        assert_eq!(f["unit_amount"], 1200);
        assert_eq!(f["active"], false);
        assert_eq!(f["metadata"]["n"], "5");
        assert_eq!(f["recurring"]["interval_count"], 3);
        assert_eq!(f["nickname"], Value::Null);
        let mut bad = form("unit_amount=lots");
        assert_eq!(
            coerce(&mut bad, prices, &template)
                .unwrap_err()
                .param
                .as_deref(),
            Some("unit_amount")
        );
    }

    #[test]
    fn merges_metadata_and_replaces_the_rest() {
        let mut object = json!({"name": "a", "metadata": {"k": "v", "gone": "x"}, "address": {"city": "A", "line1": "1"}});
        let Value::Object(o) = &mut object else {
            panic!()
        };
        let fields =
            json!({"name": null, "metadata": {"gone": null, "new": "y"}, "address": {"city": "B"}});
        let Value::Object(fields) = fields else {
            panic!()
        };
        merge(o, fields, false);
        assert_eq!(
            object,
            json!({"name": null, "metadata": {"k": "v", "new": "y"}, "address": {"city": "B", "line1": "1"}})
        );
    }
}

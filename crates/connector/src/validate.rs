use serde_json::Value;

/// Validates a config against the connector's JSON Schema before any I/O. The error names each
/// offending field (up to five) and never prints a value, since values may be secrets.
pub fn validate_config(schema: &Value, config: &Value) -> Result<(), String> {
    let validator = jsonschema::validator_for(schema)
        .map_err(|e| format!("the connector's config schema is invalid: {e}"))?;
    let problems: Vec<String> = validator
        .iter_errors(config)
        .take(5)
        .map(|e| {
            let field = field_name(&e.instance_path().to_string());
            format!("{field}: {}", e.masked())
        })
        .collect();
    if problems.is_empty() {
        return Ok(());
    }
    Err(format!("invalid config: {}", problems.join("; ")))
}

/// `/streams/0/name` → `streams[0].name`; the root is `config`.
fn field_name(pointer: &str) -> String {
    if pointer.is_empty() {
        return "config".to_owned();
    }
    let mut out = String::new();
    for segment in pointer.trim_start_matches('/').split('/') {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{segment}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&segment);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "required": ["api_key"],
            "properties": {
                "api_key": {"type": "string", "secret": true},
                "rate_limit": {"type": "integer", "minimum": 1},
                "streams": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}}
            },
            "additionalProperties": false
        })
    }

    #[test]
    fn valid_config_passes() {
        assert!(
            validate_config(&schema(), &json!({"api_key": "sk_test_1", "rate_limit": 5})).is_ok()
        );
    }

    #[test]
    fn errors_name_the_field() {
        let err = validate_config(&schema(), &json!({"rate_limit": "fast"})).unwrap_err();
        assert!(err.contains("api_key"), "{err}");
        assert!(err.contains("rate_limit"), "{err}");
        let err = validate_config(
            &schema(),
            &json!({"api_key": "k", "streams": [{"name": 3}]}),
        )
        .unwrap_err();
        assert!(err.contains("streams[0].name"), "{err}");
        let err = validate_config(&schema(), &json!({"api_key": "k", "bogus": 1})).unwrap_err();
        assert!(err.contains("bogus"), "{err}");
    }

    #[test]
    fn errors_never_print_values() {
        let err =
            validate_config(&schema(), &json!({"api_key": ["sk_live_do_not_print"]})).unwrap_err();
        assert!(err.contains("api_key"), "{err}");
        assert!(!err.contains("sk_live_do_not_print"), "{err}");
    }
}

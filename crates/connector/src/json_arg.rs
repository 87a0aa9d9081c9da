use std::path::Path;

use serde_json::Value;

/// Reads a flag value: inline JSON when it starts with `{` or `[`, otherwise a path to a JSON file
/// (`@path` too, as the reference implementation's help writes it, unless a file is named so).
/// Errors name the flag and, for a file, the path; never the value (it may hold secrets).
pub fn json_or_file(flag: &str, value: &str) -> Result<Value, String> {
    let trimmed = value.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        return serde_json::from_str(trimmed)
            .map_err(|e| format!("--{flag}: invalid inline JSON ({})", position(&e)));
    }
    let value = match value.strip_prefix('@') {
        Some(rest) if !Path::new(value).exists() => rest,
        _ => value,
    };
    let path = Path::new(value);
    let text = std::fs::read_to_string(path).map_err(|e| {
        // The value may be a secret pasted in the wrong place: name it only when it looks
        // like a path.
        if looks_like_a_path(value) {
            format!("--{flag}: cannot read {}: {e}", path.display())
        } else {
            format!(
                "--{flag}: the value is neither inline JSON (starting with {{ or [) nor the path of a readable file ({e}); it is not shown"
            )
        }
    })?;
    serde_json::from_str(&text).map_err(|e| {
        format!(
            "--{flag}: invalid JSON in {} ({})",
            path.display(),
            position(&e)
        )
    })
}

fn looks_like_a_path(value: &str) -> bool {
    (value.contains('/') || value.ends_with(".json"))
        && !value.contains("://")
        && sync_protocol_free_of_secrets(value)
}

/// False for text that looks like a credential (an API key, a webhook secret).
fn sync_protocol_free_of_secrets(value: &str) -> bool {
    !["sk_", "rk_", "pk_", "whsec_"]
        .iter()
        .any(|prefix| value.contains(prefix))
}

/// serde_json's message without the offending text: line, column and category only.
fn position(e: &serde_json::Error) -> String {
    let what = match e.classify() {
        serde_json::error::Category::Eof => "unexpected end of input",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unexpected value",
        serde_json::error::Category::Io => "read error",
    };
    format!("{what} at line {} column {}", e.line(), e.column())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_and_file_forms_agree() {
        let inline = json_or_file("config", r#" {"api_key":"x"}"#).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cfg.json");
        std::fs::write(&path, r#"{"api_key":"x"}"#).unwrap();
        let from_file = json_or_file("config", path.to_str().unwrap()).unwrap();
        assert_eq!(inline, from_file);
        let at_file = json_or_file("config", &format!("@{}", path.display())).unwrap();
        assert_eq!(inline, at_file);
    }

    #[test]
    fn errors_name_the_flag_and_hide_the_value() {
        let err = json_or_file("config", r#"{"api_key":"sk_live_secret""#).unwrap_err();
        assert!(err.starts_with("--config: invalid inline JSON"), "{err}");
        assert!(!err.contains("sk_live"), "{err}");
        let err = json_or_file("catalog", "/nonexistent/catalog.json").unwrap_err();
        assert!(
            err.contains("--catalog: cannot read /nonexistent/catalog.json"),
            "{err}"
        );
        for secret in [
            "sk_test_51abc",
            "sk_live_x/y",
            "postgres://u:pw@h/db",
            "hunter2",
        ] {
            let err = json_or_file("source-config", secret).unwrap_err();
            assert!(!err.contains(secret), "{err}");
            assert!(err.contains("--source-config"), "{err}");
        }
    }
}

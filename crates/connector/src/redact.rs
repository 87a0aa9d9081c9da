//! Keeps secrets (API keys, passwords, connection strings) out of logs, messages, errors and
//! panics: every secret found in a config is registered here, and every text leaving the process
//! other than records passes through [`redact`].

use std::borrow::Cow;
use std::io::{self, Write};
use std::sync::RwLock;

use serde_json::Value;

const MASK: &str = "***";
/// Shorter strings are too likely to occur by chance to be masked everywhere.
const MIN_SECRET_LEN: usize = 4;

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Registers a secret; it and, for a URL, its password are masked from now on.
pub fn register_secret(secret: &str) {
    let mut found = vec![secret.to_owned()];
    if let Some(password) = url_password(secret) {
        found.push(password.to_owned());
    }
    let decoded: Vec<String> = found
        .iter()
        .filter_map(|s| percent_decode(s).ok())
        .collect();
    found.extend(decoded);
    let mut secrets = SECRETS.write().unwrap_or_else(|e| e.into_inner());
    for s in found {
        if s.len() >= MIN_SECRET_LEN && !secrets.contains(&s) {
            secrets.push(s);
        }
    }
    // Longest first, so a secret containing another is masked whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// Registers every secret of a config: values of properties the schema marks `secret` or
/// `airbyte_secret`, values of fields whose names say they are secret, and passwords in URLs.
pub fn register_config_secrets(schema: &Value, config: &Value) {
    walk(Some(schema), config, false);
}

fn walk(schema: Option<&Value>, value: &Value, secret: bool) {
    match value {
        Value::String(s) => {
            if secret {
                register_secret(s);
            } else if let Some(password) = url_password(s) {
                register_secret(password);
            }
        }
        Value::Object(map) => {
            for (key, child) in map {
                let child_schema = schema
                    .and_then(|s| s.get("properties"))
                    .and_then(|p| p.get(key));
                let flagged = child_schema.is_some_and(|s| {
                    s.get("secret").and_then(Value::as_bool).unwrap_or(false)
                        || s.get("airbyte_secret")
                            .and_then(Value::as_bool)
                            .unwrap_or(false)
                });
                walk(
                    child_schema,
                    child,
                    secret || flagged || is_secret_name(key),
                );
            }
        }
        Value::Array(items) => {
            let item_schema = schema.and_then(|s| s.get("items"));
            for item in items {
                walk(item_schema, item, secret);
            }
        }
        _ => {}
    }
}

/// Whether a config key names a secret whatever its schema says (passwords, tokens, keys): the
/// one rule for logs (here) and for what sync-service's API shows.
pub fn is_secret_name(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    [
        "password",
        "secret",
        "api_key",
        "apikey",
        "token",
        "private_key",
        "ssl_key",
        "sslkey",
        "access_key",
        "credential",
    ]
    .iter()
    .any(|s| key.contains(s))
}

/// The password of `scheme://user:password@host…`, if any.
fn url_password(text: &str) -> Option<&str> {
    let rest = &text[text.find("://")? + 3..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let userinfo = &authority[..authority.rfind('@')?];
    let password = &userinfo[userinfo.find(':')? + 1..];
    (!password.is_empty()).then_some(password)
}

fn percent_decode(text: &str) -> Result<String, ()> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).map_err(|_| ())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| ())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ())
}

/// The text with every registered secret masked.
pub fn redact(text: &str) -> Cow<'_, str> {
    let secrets = SECRETS.read().unwrap_or_else(|e| e.into_inner());
    if !secrets.iter().any(|s| text.contains(s.as_str())) {
        return Cow::Borrowed(text);
    }
    let mut out = text.to_owned();
    for s in secrets.iter() {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), MASK);
        }
    }
    Cow::Owned(out)
}

/// A stderr writer for tracing that masks secrets in each whole log event.
#[derive(Default)]
pub struct RedactingStderr {
    buf: Vec<u8>,
}

impl Write for RedactingStderr {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&self.buf);
        let result = io::stderr().lock().write_all(redact(&text).as_bytes());
        self.buf.clear();
        result
    }
}

impl Drop for RedactingStderr {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// Panic messages go through the redactor too.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".to_owned());
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let _ = writeln!(io::stderr(), "panicked{location}: {}", redact(&payload));
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn masks_flagged_named_and_url_secrets() {
        let schema = json!({"properties":{"token_like":{"type":"string","secret":true},"nested":{"properties":{"x":{"airbyte_secret":true}}}}});
        let config = json!({
            "token_like": "flagged-value-1",
            "api_key": "sk_test_named_value",
            "url": "postgres://user:p%40ss-word@db.example.com:5432/app",
            "nested": {"x": "nested-secret-9"},
            "plain": "visible"
        });
        register_config_secrets(&schema, &config);
        let text =
            "flagged-value-1 sk_test_named_value p%40ss-word p@ss-word nested-secret-9 visible";
        assert_eq!(redact(text), "*** *** *** *** *** visible");
    }

    #[test]
    fn url_password_parsing() {
        assert_eq!(url_password("postgres://u:pw12@h/db"), Some("pw12"));
        assert_eq!(url_password("postgres://u@h/db"), None);
        assert_eq!(url_password("postgres://h/db?user=a@b"), None);
        assert_eq!(url_password("not a url"), None);
    }
}

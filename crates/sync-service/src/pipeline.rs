//! A pipeline: a source, a destination, the streams, what the user wants of it and what it is
//! doing; and how it is shown (secrets redacted).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sync_engine::engine::{ConnectorConfig, PipelineRequest};

/// What the user wants a pipeline to do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Desired {
    /// Keep it current.
    #[default]
    Active,
    /// Hold it; the checkpoint stays.
    Paused,
    /// Tear it down and forget it.
    Deleted,
}

impl Desired {
    pub fn as_str(self) -> &'static str {
        match self {
            Desired::Active => "active",
            Desired::Paused => "paused",
            Desired::Deleted => "deleted",
        }
    }

    pub fn parse(text: &str) -> Option<Desired> {
        Some(match text {
            "active" => Desired::Active,
            "paused" => Desired::Paused,
            "deleted" => Desired::Deleted,
            _ => return None,
        })
    }
}

/// What a pipeline is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Copying what exists.
    Backfilling,
    /// Caught up; following changes.
    Ready,
    /// Held by the user.
    Paused,
    /// Failed; retried on a timer or when the pipeline is updated.
    Error,
    /// Being deleted.
    TearingDown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Backfilling => "backfilling",
            Status::Ready => "ready",
            Status::Paused => "paused",
            Status::Error => "error",
            Status::TearingDown => "tearing_down",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        Some(match text {
            "backfilling" => Status::Backfilling,
            "ready" => Status::Ready,
            "paused" => Status::Paused,
            "error" => Status::Error,
            "tearing_down" => Status::TearingDown,
            _ => return None,
        })
    }
}

/// A pipeline as stored. `source` and `destination` are `{"name": …, "config": {…}}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    pub id: String,
    pub source: Value,
    pub destination: Value,
    /// Stream names; `None`: every stream the source offers.
    pub streams: Option<Value>,
    pub desired: Desired,
    pub status: Status,
    pub failure_type: Option<String>,
    pub error: Option<String>,
    /// Why the live lane cannot apply webhook events, and who must act; `None` while it can.
    pub live_failure_type: Option<String>,
    pub live_error: Option<String>,
}

/// Why an id or a pipeline body is refused; names the field.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// Pipeline ids: lower-case letters, digits, `_` and `-`, starting with a letter or digit, at
/// most 64 characters (they are Temporal workflow ids and URL path segments).
pub fn check_id(id: &str) -> Result<(), Invalid> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        && id.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(Invalid(format!(
            "id: {id:?} is not a pipeline id (1 to 64 of a-z, 0-9, _ and -, starting with a letter or digit)"
        )))
    }
}

/// A fresh id: `pl_` and 16 random lower-case characters.
pub fn new_id() -> String {
    use rand::RngExt;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let tail: String = (0..16)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("pl_{tail}")
}

/// `{"name": …, "config": {…}}`, with `name` defaulting to `default_name`.
pub fn connector_side(field: &str, value: &Value, default_name: &str) -> Result<Value, Invalid> {
    let Value::Object(side) = value else {
        return Err(Invalid(format!(
            "{field}: must be an object {{\"name\": …, \"config\": {{…}}}}"
        )));
    };
    let name = match side.get("name") {
        None => default_name.to_owned(),
        Some(Value::String(name)) if !name.is_empty() => name.clone(),
        Some(_) => return Err(Invalid(format!("{field}.name: must be a non-empty string"))),
    };
    let config = match side.get("config") {
        None => Map::new(),
        Some(Value::Object(config)) => config.clone(),
        Some(_) => return Err(Invalid(format!("{field}.config: must be an object"))),
    };
    if let Some(unknown) = side.keys().find(|k| *k != "name" && *k != "config") {
        return Err(Invalid(format!(
            "{field}.{unknown}: unknown field (use name and config)"
        )));
    }
    Ok(json!({"name": name, "config": config}))
}

/// `streams`: a list of stream names, or absent for all.
pub fn check_streams(value: Option<&Value>) -> Result<Option<Value>, Invalid> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) if items.iter().all(|i| i.is_string()) && !items.is_empty() => {
            Ok(Some(Value::Array(items.clone())))
        }
        Some(_) => Err(Invalid(
            "streams: must be a non-empty list of stream names".to_owned(),
        )),
    }
}

impl Pipeline {
    /// What the engine takes.
    pub fn request(&self) -> Result<PipelineRequest, Invalid> {
        let side = |field: &str, v: &Value| -> Result<ConnectorConfig, Invalid> {
            let name = v["name"].as_str().unwrap_or_default().to_owned();
            let config = match &v["config"] {
                Value::Object(c) => c.clone(),
                _ => Map::new(),
            };
            if name.is_empty() {
                return Err(Invalid(format!("{field}.name: missing")));
            }
            Ok(ConnectorConfig { name, config })
        };
        let streams = match &self.streams {
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|name| sync_engine::settings::StreamChoice {
                        name: name.to_owned(),
                        ..Default::default()
                    })
                    .collect(),
            ),
            _ => None,
        };
        Ok(PipelineRequest {
            source: side("source", &self.source)?,
            destination: side("destination", &self.destination)?,
            streams,
            sync_id: Some(self.id.clone()),
        })
    }

    /// The pipeline as the API shows it: every secret in its configs replaced by `"***"`.
    pub fn shown(&self) -> Value {
        let (status, failure_type, error) = self.condition();
        json!({
            "id": self.id,
            "source": redact(&self.source),
            "destination": redact(&self.destination),
            "streams": self.streams,
            "desired_status": self.desired,
            "status": status,
            "failure_type": failure_type,
            "error": error,
        })
    }

    /// The status, failure type and error shown: a live lane that cannot apply webhook events
    /// turns a pipeline otherwise ready (or backfilling) to `error`, with the lane's failure.
    pub fn condition(&self) -> (Status, Option<&str>, Option<&str>) {
        match (&self.live_error, self.status) {
            (Some(live), Status::Ready | Status::Backfilling) => (
                Status::Error,
                self.live_failure_type.as_deref(),
                Some(live.as_str()),
            ),
            _ => (
                self.status,
                self.failure_type.as_deref(),
                self.error.as_deref(),
            ),
        }
    }
}

/// What the API shows in place of a secret.
const HIDDEN: &str = "***";

/// A copy of `value` with the values of secret-looking keys replaced, and passwords cut out of
/// connection strings.
pub fn redact(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), shown_entry(k, v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        other => other.clone(),
    }
}

/// How the API shows the value of key `key`.
pub fn shown_entry(key: &str, value: &Value) -> Value {
    if is_secret_key(key) && !value.is_null() {
        Value::String(HIDDEN.to_owned())
    } else if let Value::String(text) = value {
        Value::String(without_password_parameters(&without_password(text)))
    } else {
        redact(value)
    }
}

/// Whether a value holds what the API shows instead of a secret (sent back from a GET).
pub fn holds_a_hidden_secret(key: &str, value: &Value) -> bool {
    match value {
        Value::String(text) => {
            (is_secret_key(key) && text == HIDDEN)
                || text.contains(&format!(":{HIDDEN}@"))
                || password_values(text)
                    .into_iter()
                    .any(|v| &text[v] == HIDDEN)
        }
        Value::Object(map) => map.iter().any(|(k, v)| holds_a_hidden_secret(k, v)),
        Value::Array(items) => items.iter().any(|v| holds_a_hidden_secret("", v)),
        _ => false,
    }
}

fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["key", "secret", "password", "token", "pem"]
        .iter()
        .any(|word| key.contains(word))
}

/// `scheme://user:password@host…` becomes `scheme://user:***@host…`; other text is unchanged.
fn without_password(text: &str) -> String {
    let Some(scheme_end) = text.find("://") else {
        return text.to_owned();
    };
    let rest = &text[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return text.to_owned();
    };
    let Some(colon) = authority[..at].find(':') else {
        return text.to_owned();
    };
    format!(
        "{}{}:***{}",
        &text[..scheme_end + 3],
        &authority[..colon],
        &text[scheme_end + 3 + at..]
    )
}

/// Every `password=VALUE` (a key=value connection string's, a URL query's) with its value
/// replaced; a quoted value is replaced whole.
fn without_password_parameters(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut from = 0;
    for value in password_values(text) {
        out.push_str(&text[from..value.start]);
        out.push_str(HIDDEN);
        from = value.end;
    }
    out.push_str(&text[from..]);
    out
}

/// Where the values of `password=…` parameters are in a connection string.
fn password_values(text: &str) -> Vec<std::ops::Range<usize>> {
    const KEY: &str = "password";
    let lower = text.to_ascii_lowercase();
    let bytes = text.as_bytes();
    let mut values = Vec::new();
    let mut from = 0;
    while let Some(found) = lower[from..].find(KEY) {
        let mut i = from + found + KEY.len();
        from = i;
        while bytes.get(i) == Some(&b' ') {
            i += 1;
        }
        if bytes.get(i) != Some(&b'=') {
            continue;
        }
        i += 1;
        while bytes.get(i) == Some(&b' ') {
            i += 1;
        }
        let end = if bytes.get(i) == Some(&b'\'') {
            let mut j = i + 1;
            while j < bytes.len() && bytes[j] != b'\'' {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            (j + 1).min(bytes.len())
        } else {
            text[i..]
                .find(|c: char| c.is_whitespace() || c == '&' || c == '#')
                .map_or(text.len(), |n| i + n)
        };
        values.push(i..end);
        from = end;
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_every_connection_string_form_are_hidden() {
        for (given, shown) in [
            (
                "host=db user=app password=hunter2 dbname=x",
                "host=db user=app password=*** dbname=x",
            ),
            (
                "host=db password = 'hunt er\\'2' dbname=x",
                "host=db password = *** dbname=x",
            ),
            (
                "postgres://app@db/x?sslmode=require&password=hunter2",
                "postgres://app@db/x?sslmode=require&password=***",
            ),
            (
                "postgres://app:hunter2@db/x?PASSWORD=hunter3#f",
                "postgres://app:***@db/x?PASSWORD=***#f",
            ),
            (
                "no secret here; passwords are elsewhere",
                "no secret here; passwords are elsewhere",
            ),
        ] {
            assert_eq!(shown_entry("url", &json!(given)), json!(shown), "{given}");
            assert!(
                holds_a_hidden_secret("url", &json!(shown)) || shown == given,
                "{shown}"
            );
        }
    }

    #[test]
    fn ids() {
        assert!(check_id("acct-1_a").is_ok());
        for bad in ["", "-a", "A", "a b", "a/b", &"a".repeat(65)] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
        assert!(check_id(&new_id()).is_ok());
    }

    #[test]
    fn secrets_are_redacted() {
        let shown = redact(&json!({
            "name": "stripe",
            "config": {"api_key": "sk_test_123", "base_url": "http://h", "webhook_secret": "whsec_1",
                       "url": "postgres://u:hunter2@db:5432/x?sslmode=require", "schema": "s",
                       "nested": [{"password": "p"}], "max_connections": 3}
        }));
        let text = shown.to_string();
        for secret in ["sk_test_123", "whsec_1", "hunter2", "\"p\""] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert_eq!(
            shown["config"]["url"],
            "postgres://u:***@db:5432/x?sslmode=require"
        );
        assert_eq!(shown["config"]["base_url"], "http://h");
        assert_eq!(shown["config"]["max_connections"], 3);
    }
}

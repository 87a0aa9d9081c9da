//! A pipeline: a source, a destination, the streams, what the user wants of it and what it is
//! doing; and how it is shown (secrets redacted).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sync_engine_api::StreamChoice;
use sync_engine_api::{ConnectorConfig, PipelineRequest};

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
    /// The name the API and the control database use.
    pub fn as_str(self) -> &'static str {
        match self {
            Desired::Active => "active",
            Desired::Paused => "paused",
            Desired::Deleted => "deleted",
        }
    }

    /// The value of a name, if it is one.
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
    /// The name the API and the control database use.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Backfilling => "backfilling",
            Status::Ready => "ready",
            Status::Paused => "paused",
            Status::Error => "error",
            Status::TearingDown => "tearing_down",
        }
    }

    /// The value of a name, if it is one.
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
    /// The pipeline id (`pipe_…` unless given).
    pub id: String,
    /// `{"name", "config"}` of the source.
    pub source: Value,
    /// `{"name", "config"}` of the destination.
    pub destination: Value,
    /// Stream names; `None`: every stream the source offers.
    pub streams: Option<Value>,
    /// What the user wants: active, paused or deleted.
    pub desired: Desired,
    /// What it is doing.
    pub status: Status,
    /// Why it failed, and who must act (`config_error`, …); `None` unless it failed.
    pub failure_type: Option<String>,
    /// What failed, unless nothing did.
    pub error: Option<String>,
    /// Why the live lane cannot apply webhook events, and who must act; `None` while it can.
    pub live_failure_type: Option<String>,
    /// What the live lane failed on, while it cannot apply events.
    pub live_error: Option<String>,
}

/// Why an id or a pipeline body is refused; names the field.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// Pipeline ids: letters, digits, `_` and `-`, starting with a letter or digit, at most 64
/// characters (they are Temporal workflow ids and URL path segments). Every id the reference
/// takes (`^[a-zA-Z][a-zA-Z0-9_-]*$`, 3 to 64) is one.
pub fn check_id(id: &str) -> Result<(), Invalid> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && id.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(Invalid(format!(
            "id: {id:?} is not a pipeline id (1 to 64 of a-z, A-Z, 0-9, _ and -, starting with a letter or digit)"
        )))
    }
}

/// A fresh id: `pipe_` (as the reference's) and 16 random lower-case characters.
pub fn new_id() -> String {
    use rand::RngExt;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let tail: String = (0..16)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("pipe_{tail}")
}

/// A side as stored, `{"name": …, "config": {…}}`, from this API's shape (`name` defaulting to
/// `default_name`) or the reference's (`{"type": T, T: {…}}`, or the config beside `type`).
/// A Postgres destination's `connection_string` (the reference's name) becomes `url`.
pub fn connector_side(field: &str, value: &Value, default_name: &str) -> Result<Value, Invalid> {
    let Value::Object(side) = value else {
        return Err(Invalid(format!(
            "{field}: must be an object {{\"name\": …, \"config\": {{…}}}} or {{\"type\": …, …}}"
        )));
    };
    let (name, config) = if side.contains_key("type") {
        let c = sync_engine_api::wire::connector(value, field).map_err(|e| Invalid(e.0))?;
        (c.name, c.config)
    } else {
        own_side(field, side, default_name)?
    };
    let config = url_alias(field, &name, config)?;
    Ok(json!({"name": name, "config": config}))
}

/// `connection_string`, the reference's name of a Postgres destination's `url`, as `url`.
fn url_alias(
    field: &str,
    name: &str,
    mut config: Map<String, Value>,
) -> Result<Map<String, Value>, Invalid> {
    if name != "postgres" || !config.contains_key("connection_string") {
        return Ok(config);
    }
    if config.contains_key("url") {
        return Err(Invalid(format!(
            "{field}.connection_string: the same setting as url; give one of them"
        )));
    }
    if let Some(url) = config.remove("connection_string") {
        config.insert("url".to_owned(), url);
    }
    Ok(config)
}

/// `{"name"?, "config"?}`.
fn own_side(
    field: &str,
    side: &Map<String, Value>,
    default_name: &str,
) -> Result<(String, Map<String, Value>), Invalid> {
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
            "{field}.{unknown}: unknown field (use name and config, or type and the config)"
        )));
    }
    Ok((name, config))
}

/// `streams`: a non-empty list, each a stream's name or `{"name", "backfill_limit"?, …}` as the
/// engine takes them; absent for all. Kept as given.
pub fn check_streams(value: Option<&Value>) -> Result<Option<Value>, Invalid> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(list @ Value::Array(items)) if !items.is_empty() => {
            stream_choices(list)?;
            Ok(Some(list.clone()))
        }
        Some(_) => Err(Invalid(
            "streams: must be a non-empty list of streams (names, or objects with a name)"
                .to_owned(),
        )),
    }
}

/// The stored streams as the engine takes them.
fn stream_choices(list: &Value) -> Result<Vec<StreamChoice>, Invalid> {
    sync_engine_api::wire::streams(list, "streams").map_err(|e| Invalid(e.0))
}

/// The names of the stored streams (empty: every stream).
pub fn stream_names(streams: &Option<Value>) -> Vec<String> {
    streams
        .as_ref()
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().or_else(|| s["name"].as_str()))
        .map(str::to_owned)
        .collect()
}

impl Pipeline {
    /// A pipeline just made: wanted active, backfilling, no failure.
    pub fn new(id: String, source: Value, destination: Value, streams: Option<Value>) -> Pipeline {
        Pipeline {
            id,
            source,
            destination,
            streams,
            desired: Desired::Active,
            status: Status::Backfilling,
            failure_type: None,
            error: None,
            live_failure_type: None,
            live_error: None,
        }
    }

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
            Some(list) if !list.is_null() => Some(stream_choices(list)?),
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

/// A connector's or the engine's message as the API shows it: a config update (`control`) with
/// its secrets redacted (they are stored, never shown); every other message as it is.
pub fn shown_message(message: &sync_protocol::Message) -> Value {
    let shown = serde_json::to_value(message).unwrap_or(Value::Null);
    match message {
        sync_protocol::Message::Control(_) => redact(&shown),
        _ => shown,
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

/// The one rule of which config keys hold secrets, the connectors' log redaction's.
fn is_secret_key(key: &str) -> bool {
    sync_connector::redact::is_secret_name(key)
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
        for good in ["acct-1_a", "A", "Ref-Pipeline_1", "1a"] {
            assert!(check_id(good).is_ok(), "{good:?}");
        }
        for bad in [
            "",
            "-a",
            "_a",
            "a b",
            "Not Friendly",
            "a/b",
            "é",
            &"a".repeat(65),
        ] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
        let id = new_id();
        assert!(check_id(&id).is_ok() && id.starts_with("pipe_"), "{id}");
    }

    #[test]
    fn a_side_in_the_references_shapes_is_stored_as_this_apis() {
        let flat =
            json!({"type": "postgres", "connection_string": "postgres://h/db", "schema": "s"});
        let nested = json!({"type": "postgres", "postgres": {"connection_string": "postgres://h/db", "schema": "s"}});
        let ours = json!({"name": "postgres", "config": {"url": "postgres://h/db", "schema": "s"}});
        for side in [&flat, &nested, &ours] {
            assert_eq!(
                connector_side("destination", side, "postgres").unwrap(),
                ours
            );
        }
        let both = json!({"type": "postgres", "url": "postgres://a/b", "connection_string": "postgres://c/d"});
        let e = connector_side("destination", &both, "postgres")
            .unwrap_err()
            .0;
        assert!(e.starts_with("destination.connection_string:"), "{e}");
        let stripe = json!({"type": "stripe", "stripe": {"api_key": "sk_test_1"}});
        assert_eq!(
            connector_side("source", &stripe, "stripe").unwrap(),
            json!({"name": "stripe", "config": {"api_key": "sk_test_1"}})
        );
    }

    #[test]
    fn streams_are_names_or_objects() {
        let given = json!(["customers", {"name": "product", "backfill_limit": 500}]);
        assert_eq!(check_streams(Some(&given)).unwrap(), Some(given.clone()));
        assert_eq!(
            stream_names(&Some(given)),
            vec!["customers".to_owned(), "product".to_owned()]
        );
        let e = check_streams(Some(&json!([{"name": "a", "backfill_limit": 0}])))
            .unwrap_err()
            .0;
        assert!(e.starts_with("streams[0].backfill_limit"), "{e}");
        assert!(check_streams(Some(&json!([]))).is_err());
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

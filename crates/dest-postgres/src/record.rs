//! Turns a record's data into a staging row: key values, raw object, newer-than timestamp and
//! tombstone flag, picked from the raw JSON without building the object.
//!
//! A record the table cannot hold faithfully is rejected, never altered: its key is missing or
//! not a string or number, its version is not a time, or it holds text Postgres cannot store
//! (`\u0000`, an unpaired surrogate). The caller keeps such records verbatim in
//! `_rejected_records` and reports them.

use std::borrow::Cow;
use std::hash::{BuildHasher, Hasher, RandomState};

use serde_json::value::RawValue;
use sync_protocol::peek::top_level_fields;

use crate::copy::CopyRows;
use crate::table::{PgType, TableModel};

/// Unix seconds of 0001-01-01 and 9999-12-31T23:59:59: the versions accepted.
const MIN_VERSION_SECS: i64 = -62_135_596_800;
const MAX_VERSION_SECS: i64 = 253_402_300_799;

/// Why a record is not loaded: it names the field and the reason (the caller adds the line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rejection {
    /// The record's key as text, when it could be read.
    pub key: Option<String>,
    pub field: Option<String>,
    pub reason: String,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.field {
            Some(field) => write!(f, "field {field:?}: {}", self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

/// Which fields to pick from each record of a stream.
pub(crate) struct RowPlan {
    fields: Vec<String>,
    key_types: Vec<PgType>,
    newer_than: Option<usize>,
    deleted: usize,
    key_hasher: RandomState,
}

impl RowPlan {
    pub(crate) fn new(table: &TableModel) -> RowPlan {
        let mut fields: Vec<String> = table.keys.iter().map(|k| k.field.clone()).collect();
        let key_types = table.keys.iter().map(|k| k.pg_type).collect();
        let newer_than = table.newer_than_field.as_ref().map(|f| {
            fields.push(f.clone());
            fields.len() - 1
        });
        fields.push(table.soft_delete_field.clone());
        let deleted = fields.len() - 1;
        RowPlan {
            fields,
            key_types,
            newer_than,
            deleted,
            key_hasher: RandomState::new(),
        }
    }

    /// Number of loaded columns: keys, raw data, updated at, deleted.
    pub(crate) fn loaded_fields(&self) -> i16 {
        (self.key_types.len() + 3) as i16
    }

    /// Reads what the row needs from a record's data object, or says why it cannot be stored.
    pub(crate) fn prepare<'a>(&self, data: &'a str) -> Result<Prepared<'a>, Rejection> {
        let reject = |key: Option<String>, field: Option<&str>, reason: String| Rejection {
            key,
            field: field.map(str::to_owned),
            reason,
        };
        let values = top_level_fields(data, &self.fields).map_err(|e| {
            reject(
                None,
                None,
                format!("the record data is not a JSON object: {e}"),
            )
        })?;
        let mut keys: Vec<KeyValue<'a>> = Vec::with_capacity(self.key_types.len());
        for (i, pg_type) in self.key_types.iter().enumerate() {
            let field = self.fields[i].as_str();
            let raw = values[i].filter(|v| v.get() != "null").ok_or_else(|| {
                reject(None, Some(field), "the key field is missing or null".into())
            })?;
            keys.push(
                key_value(raw, *pg_type).map_err(|reason| reject(None, Some(field), reason))?,
            );
        }
        let key_text = || {
            Some(
                keys.iter()
                    .map(KeyValue::as_text)
                    .collect::<Vec<_>>()
                    .join(", "),
            )
        };
        let key_bytes: usize = keys.iter().map(KeyValue::stored_len).sum();
        if key_bytes > MAX_KEY_BYTES {
            return Err(reject(
                None,
                Some(self.fields[0].as_str()),
                format!(
                    "the key is {key_bytes} bytes; a Postgres index holds keys up to about 2,700 (this destination takes {MAX_KEY_BYTES})"
                ),
            ));
        }
        if let Some((field, reason)) = unstorable_text(data) {
            return Err(reject(key_text(), field.as_deref(), reason));
        }
        if let Some((at, reason)) = crate::numeric::unstorable_number(data) {
            return Err(reject(
                key_text(),
                top_level_field_at(data, at).as_deref(),
                reason,
            ));
        }
        let version = match self.newer_than.and_then(|i| values[i]) {
            None => None,
            Some(raw) if raw.get() == "null" => None,
            Some(raw) => Some(version_micros(raw).map_err(|reason| {
                reject(
                    key_text(),
                    self.newer_than.map(|i| self.fields[i].as_str()),
                    reason,
                )
            })?),
        };
        let mut key_hash = self.key_hasher.build_hasher();
        for key in &keys {
            match key {
                KeyValue::Int(n) => key_hash.write_i64(*n),
                KeyValue::Text(s) => key_hash.write(s.as_bytes()),
            }
            key_hash.write_u8(0x1f);
        }
        Ok(Prepared {
            data,
            keys,
            version,
            tombstone: values[self.deleted].is_some_and(|v| v.get() == "true"),
            key_hash: key_hash.finish(),
            fields: self.loaded_fields(),
        })
    }
}

/// A record ready to be written as a row.
pub(crate) struct Prepared<'a> {
    data: &'a str,
    keys: Vec<KeyValue<'a>>,
    version: Option<i64>,
    pub tombstone: bool,
    /// A hash of the key values as stored: equal keys share it; a rare collision between
    /// different keys only makes a batch take the deduplicating merge.
    pub key_hash: u64,
    fields: i16,
}

impl Prepared<'_> {
    /// Appends the row of the loaded columns: keys, raw data, version, tombstone flag.
    pub(crate) fn write(&self, rows: &mut CopyRows) {
        rows.begin_row(self.fields);
        for key in &self.keys {
            match key {
                KeyValue::Int(n) => rows.int8(*n),
                KeyValue::Text(s) => rows.text(s.as_bytes()),
            }
        }
        rows.jsonb(self.data.as_bytes());
        match self.version {
            Some(micros) => rows.timestamptz_micros(micros),
            None => rows.null(),
        }
        rows.boolean(self.tombstone);
    }
}

/// A key value as the table stores it.
enum KeyValue<'a> {
    Int(i64),
    Text(Cow<'a, str>),
}

impl KeyValue<'_> {
    fn as_text(&self) -> String {
        match self {
            KeyValue::Int(n) => n.to_string(),
            KeyValue::Text(s) => s.to_string(),
        }
    }

    /// Bytes the key takes in the index, about (without building its text: it runs per record).
    fn stored_len(&self) -> usize {
        match self {
            KeyValue::Int(_) => 8,
            KeyValue::Text(s) => s.len(),
        }
    }
}

/// The stored value of a key field. Text keys hold a string's value (escapes decoded, so
/// `"a\u0062"` and `"ab"` are one key) or a number's JSON spelling (`42` and `"42"` are one
/// key); integer keys hold a JSON integer. Anything else is rejected.
fn key_value(raw: &RawValue, pg_type: PgType) -> Result<KeyValue<'_>, String> {
    let text = raw.get();
    match pg_type {
        PgType::BigInt => text
            .parse::<i64>()
            .map(KeyValue::Int)
            .map_err(|_| format!("the key must be a 64-bit integer, got {}", clip(text))),
        _ => match text.as_bytes().first() {
            Some(b'"') => {
                let s: Cow<'_, str> = serde_json::from_str(text)
                    .map_err(|e| format!("the key is not a valid string: {e}"))?;
                if s.contains('\0') {
                    return Err("the key contains U+0000, which Postgres cannot store".into());
                }
                Ok(KeyValue::Text(s))
            }
            Some(b'-' | b'0'..=b'9') => Ok(KeyValue::Text(Cow::Borrowed(text))),
            _ => Err(format!(
                "the key must be a string or a number, got {}",
                clip(text)
            )),
        },
    }
}

/// The most bytes a record's key may take (a btree entry is at most a third of an 8 kB page).
const MAX_KEY_BYTES: usize = 2_000;

/// The top-level field of a JSON object whose value spans byte offset `at`.
fn top_level_field_at(json: &str, at: usize) -> Option<String> {
    let fields: std::collections::BTreeMap<String, &RawValue> = serde_json::from_str(json).ok()?;
    fields.into_iter().find_map(|(name, value)| {
        let start = (value.get().as_ptr() as usize).checked_sub(json.as_ptr() as usize)?;
        (start..start + value.get().len())
            .contains(&at)
            .then_some(name)
    })
}

fn clip(text: &str) -> String {
    let mut end = text.len().min(40);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    if end < text.len() {
        format!("{}…", &text[..end])
    } else {
        text.to_owned()
    }
}

/// The version as Unix microseconds: a number of seconds (Stripe's timestamps, fractions
/// allowed) or an RFC 3339 string, between the years 1 and 9999.
fn version_micros(raw: &RawValue) -> Result<i64, String> {
    let text = raw.get();
    let secs_to_micros = |secs: f64| -> Result<i64, String> {
        if secs.is_finite() && (MIN_VERSION_SECS as f64..=MAX_VERSION_SECS as f64).contains(&secs) {
            Ok((secs * 1e6).round() as i64)
        } else {
            Err(format!(
                "the version {} is outside the years 1 to 9999",
                clip(text)
            ))
        }
    };
    if let Ok(secs) = text.parse::<i64>() {
        return if (MIN_VERSION_SECS..=MAX_VERSION_SECS).contains(&secs) {
            Ok(secs * 1_000_000)
        } else {
            secs_to_micros(f64::INFINITY)
        };
    }
    if let Ok(secs) = text.parse::<f64>() {
        return secs_to_micros(secs);
    }
    let not_a_time = || {
        format!(
            "the version must be Unix seconds or an RFC 3339 time, got {}",
            clip(text)
        )
    };
    let s: Cow<'_, str> = serde_json::from_str(text).map_err(|_| not_a_time())?;
    let time = chrono::DateTime::parse_from_rfc3339(&s).map_err(|_| not_a_time())?;
    let micros = time.timestamp_micros();
    secs_to_micros(micros as f64 / 1e6).map(|_| micros)
}

/// The length of the `\uXXXX` escape at `at` (12 for a surrogate pair), or why Postgres
/// cannot store it.
fn unicode_escape(bytes: &[u8], at: usize) -> Result<usize, &'static str> {
    const UNPAIRED: &str = "an unpaired surrogate, which is not text";
    match hex4(bytes, at + 2) {
        Some(0) => Err("U+0000, which Postgres cannot store"),
        Some(0xD800..=0xDBFF) => {
            let next = (bytes.get(at + 6) == Some(&b'\\') && bytes.get(at + 7) == Some(&b'u'))
                .then(|| hex4(bytes, at + 8))
                .flatten();
            if matches!(next, Some(0xDC00..=0xDFFF)) {
                Ok(12)
            } else {
                Err(UNPAIRED)
            }
        }
        Some(0xDC00..=0xDFFF) => Err(UNPAIRED),
        _ => Ok(6),
    }
}

/// The first escape Postgres' jsonb cannot store, and the top-level field holding it:
/// `\u0000`, or a `\uD800`–`\uDFFF` escape that is not half of a surrogate pair.
fn unstorable_text(json: &str) -> Option<(Option<String>, String)> {
    if !json.contains("\\u") {
        return None;
    }
    let bytes = json.as_bytes();
    let mut i = 0;
    let mut depth = 0usize;
    // The top-level key being read, and the last one seen.
    let mut key_start: Option<usize> = None;
    let mut current_key: Option<String> = None;
    let mut expect_key = false;
    while i < bytes.len() {
        match bytes[i] {
            b'{' | b'[' => {
                depth += 1;
                expect_key = depth == 1 && bytes[i] == b'{';
                i += 1;
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b',' => {
                expect_key = depth == 1;
                i += 1;
            }
            b'"' => {
                let is_key = depth == 1 && expect_key;
                expect_key = false;
                if is_key {
                    key_start = Some(i);
                }
                let start = i;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    if bytes[i] != b'\\' {
                        i += 1;
                        continue;
                    }
                    if bytes.get(i + 1) != Some(&b'u') {
                        i += 2;
                        continue;
                    }
                    match unicode_escape(bytes, i) {
                        Ok(length) => i += length,
                        Err(problem) => {
                            let field = if is_key { None } else { current_key.clone() };
                            let what = if is_key { "a field name" } else { "a value" };
                            return Some((field, format!("{what} contains {problem}")));
                        }
                    }
                }
                i += 1;
                if is_key {
                    let raw = &json[key_start.unwrap_or(start)..i.min(json.len())];
                    current_key = serde_json::from_str::<String>(raw)
                        .ok()
                        .or_else(|| Some(raw.trim_matches('"').to_owned()));
                }
            }
            _ => i += 1,
        }
    }
    None
}

fn hex4(bytes: &[u8], at: usize) -> Option<u32> {
    let digits = bytes.get(at..at + 4)?;
    u32::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn unstorable_escapes_are_found_with_their_field() {
        assert_eq!(unstorable_text(r#"{"a":"plain","b":"é\u00e9"}"#), None);
        assert_eq!(
            unstorable_text(r#"{"a":"x","b":{"c":"x\u0000y"}}"#),
            Some((
                Some("b".into()),
                "a value contains U+0000, which Postgres cannot store".into()
            ))
        );
        assert_eq!(
            unstorable_text(r#"{"s":"\ud800x"}"#).unwrap().0.as_deref(),
            Some("s")
        );
        assert_eq!(unstorable_text(r#"{"s":"\ud83d\ude00"}"#), None, "a pair");
        assert!(unstorable_text(r#"{"s":"\udc00"}"#).is_some());
        assert_eq!(
            unstorable_text(r#"{"s":"\\u0000"}"#),
            None,
            "an escaped backslash"
        );
        assert_eq!(
            unstorable_text(r#"{"k\u0000":1}"#).unwrap().1,
            "a field name contains U+0000, which Postgres cannot store"
        );
    }

    #[test]
    fn versions_are_seconds_or_rfc3339_within_years_1_to_9999() {
        assert_eq!(
            version_micros(&raw("1700000000")),
            Ok(1_700_000_000_000_000)
        );
        assert_eq!(version_micros(&raw("1.5")), Ok(1_500_000));
        assert_eq!(
            version_micros(&raw("\"2023-11-14T22:13:20Z\"")),
            Ok(1_700_000_000_000_000)
        );
        for bad in [
            "\"soon\"",
            "\"yesterday\"",
            "{}",
            "true",
            "1e300",
            "-1e300",
            "253402300800",
        ] {
            assert!(version_micros(&raw(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_number_postgres_cannot_store_is_found_with_its_field() {
        let json = r#"{"id": "x", "meta": {"n": [1, 1e999999]}, "z": 2}"#;
        let (at, _) = crate::numeric::unstorable_number(json).unwrap();
        assert_eq!(top_level_field_at(json, at).as_deref(), Some("meta"));
    }

    #[test]
    fn keys_are_compared_as_stored() {
        let text = |s: &str| match key_value(&raw(s), PgType::Text) {
            Ok(k) => Ok(k.as_text()),
            Err(e) => Err(e),
        };
        assert_eq!(text(r#""a\u0062""#), Ok("ab".into()));
        assert_eq!(text("42"), Ok("42".into()));
        assert_eq!(text(r#""42""#), Ok("42".into()));
        assert!(text("true").is_err());
        assert!(text("{}").is_err());
        assert!(text(r#""a\u0000""#).is_err());
        assert!(matches!(
            key_value(&raw("7"), PgType::BigInt),
            Ok(KeyValue::Int(7))
        ));
        assert!(key_value(&raw("1.5"), PgType::BigInt).is_err());
        assert!(key_value(&raw("9223372036854775808"), PgType::BigInt).is_err());
    }
}

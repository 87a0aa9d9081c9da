//! Turns a record's data into a staging row: key values, raw object, newer-than timestamp and
//! tombstone flag, picked from the raw JSON without building the object.

use std::borrow::Cow;
use std::hash::{BuildHasher, Hasher, RandomState};

use serde_json::value::RawValue;
use sync_protocol::peek::top_level_fields;

use crate::copy::CopyRows;
use crate::table::{PgType, TableModel};

/// Why a record cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("line {line}: {message}")]
    Invalid { line: u64, message: String },
}

/// Which fields to pick from each record of a stream.
pub struct RowPlan {
    fields: Vec<String>,
    key_types: Vec<PgType>,
    newer_than: Option<usize>,
    deleted: usize,
    key_hasher: RandomState,
}

/// What [`RowPlan::encode`] learnt about a record besides its row.
pub struct Encoded {
    /// A hash of the record's key values. Two records with one key always share it; a rare
    /// collision between different keys only makes a batch take the deduplicating merge.
    pub key_hash: u64,
    pub tombstone: bool,
}

impl RowPlan {
    pub fn new(table: &TableModel) -> RowPlan {
        let mut fields: Vec<String> = table.keys.iter().map(|k| k.field.clone()).collect();
        let key_types = table.keys.iter().map(|k| k.pg_type).collect();
        let newer_than = table.newer_than_field.as_ref().map(|f| {
            fields.push(f.clone());
            fields.len() - 1
        });
        fields.push("deleted".to_owned());
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
    pub fn loaded_fields(&self) -> i16 {
        (self.key_types.len() + 3) as i16
    }

    /// Encodes the data object of the record on line `line_no` as a row of the loaded columns.
    pub fn encode(
        &self,
        line_no: u64,
        data: &str,
        rows: &mut CopyRows,
    ) -> Result<Encoded, RecordError> {
        let invalid = |message: String| RecordError::Invalid {
            line: line_no,
            message,
        };
        let values = top_level_fields(data, &self.fields)
            .map_err(|e| invalid(format!("record data: {e}")))?;
        let mut key_hash = self.key_hasher.build_hasher();
        rows.begin_row(self.loaded_fields());
        for (i, pg_type) in self.key_types.iter().enumerate() {
            let raw = values[i].filter(|v| v.get() != "null").ok_or_else(|| {
                invalid(format!(
                    "record has no value for key field {:?}",
                    self.fields[i]
                ))
            })?;
            key_hash.write(raw.get().as_bytes());
            key_hash.write_u8(0x1f);
            match pg_type {
                PgType::BigInt => {
                    let n: i64 = serde_json::from_str(raw.get()).map_err(|_| {
                        invalid(format!("key field {:?} is not an integer", self.fields[i]))
                    })?;
                    rows.int8(n);
                }
                _ => rows.text(key_text(raw).as_bytes()),
            }
        }
        match without_nul_escapes(data) {
            Some(cleaned) => rows.jsonb(cleaned.as_bytes()),
            None => rows.jsonb(data.as_bytes()),
        }
        match self
            .newer_than
            .and_then(|i| values[i])
            .and_then(newer_than_micros)
        {
            Some(micros) => rows.timestamptz_micros(micros),
            None => rows.null(),
        }
        let tombstone = values[self.deleted].is_some_and(|v| v.get() == "true");
        rows.boolean(tombstone);
        Ok(Encoded {
            key_hash: key_hash.finish(),
            tombstone,
        })
    }
}

/// JSON text with every `\u0000` escape (which jsonb rejects) replaced by `\ufffd`; `None`
/// when there is none. An escaped backslash followed by `u0000` is text, and left alone.
fn without_nul_escapes(json: &str) -> Option<String> {
    if !json.contains("\\u0000") {
        return None;
    }
    let bytes = json.as_bytes();
    let mut out = String::with_capacity(json.len());
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            i += 1;
        } else if json[i..].starts_with("\\u0000") {
            out.push_str(&json[start..i]);
            out.push_str("\\ufffd");
            i += 6;
            start = i;
        } else {
            // An escape: skip the escaped character, whatever it is.
            i += 2;
        }
    }
    out.push_str(&json[start.min(json.len())..]);
    Some(out)
}

/// A key value as text: a JSON string unescaped, anything else its JSON text.
fn key_text(raw: &RawValue) -> Cow<'_, str> {
    match serde_json::from_str::<Cow<'_, str>>(raw.get()) {
        Ok(s) => s,
        Err(_) => Cow::Borrowed(raw.get()),
    }
}

/// The newer-than value as Unix microseconds: a number of seconds (Stripe's timestamps), or an
/// RFC 3339 string.
fn newer_than_micros(raw: &RawValue) -> Option<i64> {
    let text = raw.get();
    if let Ok(secs) = text.parse::<i64>() {
        return secs.checked_mul(1_000_000);
    }
    if let Ok(secs) = text.parse::<f64>() {
        return secs.is_finite().then_some((secs * 1e6) as i64);
    }
    let s: Cow<'_, str> = serde_json::from_str(text).ok()?;
    chrono::DateTime::parse_from_rfc3339(&s)
        .ok()
        .map(|t| t.timestamp_micros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_escapes_are_replaced_but_escaped_backslashes_are_not() {
        assert_eq!(
            without_nul_escapes(r#"{"a":"x\u0000y"}"#).as_deref(),
            Some(r#"{"a":"x\ufffdy"}"#)
        );
        assert_eq!(
            without_nul_escapes(r#"{"a":"\\u0000"}"#),
            Some(r#"{"a":"\\u0000"}"#.to_owned())
        );
        assert_eq!(without_nul_escapes(r#"{"a":"plain"}"#), None);
    }

    #[test]
    fn newer_than_accepts_seconds_fractions_and_timestamps() {
        let raw = |s: &str| serde_json::from_str::<Box<RawValue>>(s).unwrap();
        assert_eq!(
            newer_than_micros(&raw("1700000000")),
            Some(1_700_000_000_000_000)
        );
        assert_eq!(newer_than_micros(&raw("1.5")), Some(1_500_000));
        assert_eq!(
            newer_than_micros(&raw("\"2023-11-14T22:13:20Z\"")),
            Some(1_700_000_000_000_000)
        );
        assert_eq!(newer_than_micros(&raw("\"soon\"")), None);
        assert_eq!(newer_than_micros(&raw("null")), None);
    }
}

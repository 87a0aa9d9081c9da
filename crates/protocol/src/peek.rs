//! The forwarding fast path: classify a line and borrow a record's stream and raw data without
//! building the data value, so an orchestrator can validate and forward the line's bytes
//! untouched, and a destination can pick out the few fields it needs.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::{MessageType, ParseError};

/// A line classified by its `type`.
#[derive(Debug)]
pub enum Peeked<'a> {
    /// A record, with its stream name and its `data` object as raw JSON text.
    Record(RecordRef<'a>),
    /// Any other known message type; parse the line fully with [`crate::Message::from_slice`].
    Other(MessageType),
}

/// A record borrowed from its line.
#[derive(Debug, Deserialize)]
pub struct RecordRef<'a> {
    /// The stream it belongs to.
    #[serde(borrow)]
    pub stream: Cow<'a, str>,
    /// The object, as it appears in the line.
    #[serde(borrow)]
    pub data: &'a RawValue,
    /// When the source emitted it, when given.
    #[serde(default, borrow)]
    pub emitted_at: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct PeekEnvelope<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    record: Option<RecordRef<'a>>,
}

/// Classifies a line in one pass over its bytes. For a record, checks that it has a string
/// `stream` and an object `data`; other payloads are only checked to be valid JSON.
pub fn peek(line: &[u8]) -> Result<Peeked<'_>, ParseError> {
    let envelope: PeekEnvelope<'_> = match serde_json::from_slice(line) {
        Ok(envelope) => envelope,
        // Errors are rare: the full parser names them precisely (missing type, bad payload, ...).
        Err(e) => {
            return Err(crate::Message::from_slice(line)
                .err()
                .unwrap_or(ParseError::Json(e)));
        }
    };
    let kind = envelope.kind.ok_or(ParseError::MissingType)?;
    let ty = MessageType::from_wire(&kind)
        .ok_or_else(|| ParseError::UnknownType(kind.clone().into_owned()))?;
    if ty != MessageType::Record {
        return Ok(Peeked::Other(ty));
    }
    let record = envelope.record.ok_or(ParseError::MissingPayload {
        kind: "record".into(),
        key: "record",
    })?;
    if !record.data.get().starts_with('{') {
        return Err(ParseError::InvalidPayload {
            kind: "record".into(),
            source: serde::de::Error::custom("`data` must be a JSON object"),
        });
    }
    Ok(Peeked::Record(record))
}

/// Picks the raw values of the named top-level fields out of a JSON object's text in one pass,
/// skipping every other field without building it. Returns one slot per name, in order.
pub fn top_level_fields<'a, S: AsRef<str>>(
    object: &'a str,
    names: &[S],
) -> Result<Vec<Option<&'a RawValue>>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(object);
    let slots = FieldPicker { names }.deserialize(&mut de)?;
    de.end()?;
    Ok(slots)
}

struct FieldPicker<'n, S> {
    names: &'n [S],
}

impl<'de, 'n, S: AsRef<str>> DeserializeSeed<'de> for FieldPicker<'n, S> {
    type Value = Vec<Option<&'de RawValue>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, 'n, S: AsRef<str>> Visitor<'de> for FieldPicker<'n, S> {
    type Value = Vec<Option<&'de RawValue>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut slots = vec![None; self.names.len()];
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match self.names.iter().position(|n| n.as_ref() == key) {
                Some(i) => slots[i] = Some(map.next_value::<&'de RawValue>()?),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(slots)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_is_borrowed_and_data_kept_verbatim() {
        let line = br#"{"type":"record","record":{"stream":"customers","data":{"id":"cus_1","n": 1.50},"emitted_at":"2026-01-01T00:00:00.000Z"}}"#;
        match peek(line).unwrap() {
            Peeked::Record(r) => {
                assert_eq!(r.stream, "customers");
                assert!(matches!(r.stream, Cow::Borrowed(_)));
                assert_eq!(r.data.get(), r#"{"id":"cus_1","n": 1.50}"#);
            }
            other => panic!("expected a record, got {other:?}"),
        }
    }

    #[test]
    fn payload_key_order_does_not_matter() {
        let line = br#"{"record":{"data":{},"stream":"s"},"type":"record"}"#;
        assert!(matches!(peek(line).unwrap(), Peeked::Record(_)));
    }

    #[test]
    fn other_types_are_classified() {
        let line = br#"{"type":"source_state","source_state":{"stream":"s","data":{}}}"#;
        assert!(matches!(
            peek(line).unwrap(),
            Peeked::Other(MessageType::SourceState)
        ));
    }

    #[test]
    fn bad_records_are_rejected() {
        assert!(matches!(
            peek(br#"{"type":"record","record":{"stream":"s","data":[1]}}"#),
            Err(ParseError::InvalidPayload { .. })
        ));
        assert!(matches!(
            peek(br#"{"type":"record","record":{"data":{}}}"#),
            Err(ParseError::InvalidPayload { .. })
        ));
        assert!(matches!(
            peek(br#"{"type":"record"}"#),
            Err(ParseError::MissingPayload { .. })
        ));
        assert!(
            matches!(peek(br#"{"type":"bogus"}"#), Err(ParseError::UnknownType(t)) if t == "bogus")
        );
        assert!(matches!(
            peek(br#"{"record":{}}"#),
            Err(ParseError::MissingType)
        ));
        assert!(matches!(
            peek(br#"{"type":"record","#),
            Err(ParseError::Json(_))
        ));
    }

    #[test]
    fn picks_top_level_fields_only() {
        let object = r#"{"id":"x","nested":{"id":"y"},"n":3,"deleted":true}"#;
        let got = top_level_fields(object, &["id", "deleted", "missing"]).unwrap();
        assert_eq!(got[0].map(RawValue::get), Some(r#""x""#));
        assert_eq!(got[1].map(RawValue::get), Some("true"));
        assert!(got[2].is_none());
    }
}

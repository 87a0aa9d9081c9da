//! The `{"type": K, K: payload}` envelope shared by both dialects, parsed without building the
//! payload so that the payload can be decoded straight into its typed struct.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::ParseError;

/// An envelope whose payloads are still raw JSON text borrowed from the input line.
pub(crate) struct RawEnvelope<'a> {
    pub kind: Option<Cow<'a, str>>,
    pub fields: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'a> RawEnvelope<'a> {
    pub(crate) fn parse(line: &'a [u8]) -> Result<Self, ParseError> {
        serde_json::from_slice(line).map_err(ParseError::Json)
    }

    pub(crate) fn kind(&self) -> Result<&str, ParseError> {
        self.kind.as_deref().ok_or(ParseError::MissingType)
    }

    pub(crate) fn payload<T: DeserializeOwned>(
        &self,
        kind: &str,
        key: &'static str,
    ) -> Result<T, ParseError> {
        let raw = self
            .fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| *v)
            .ok_or_else(|| ParseError::MissingPayload {
                kind: kind.to_owned(),
                key,
            })?;
        serde_json::from_str(raw.get()).map_err(|source| ParseError::InvalidPayload {
            kind: kind.to_owned(),
            source,
        })
    }

    /// A text field of the envelope beside `type` and the payload, if it is there.
    pub(crate) fn text(&self, key: &str) -> Option<String> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| serde_json::from_str::<String>(v.get()).ok())
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for RawEnvelope<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EnvelopeVisitor;
        impl<'de> Visitor<'de> for EnvelopeVisitor {
            type Value = RawEnvelope<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object with a `type` field")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut kind = None;
                let mut fields = Vec::with_capacity(2);
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    if key == "type" {
                        // A non-string `type` is reported as a missing type, not a JSON error.
                        let value: &'de RawValue = map.next_value()?;
                        kind = serde_json::from_str::<Cow<'de, str>>(value.get())
                            .ok()
                            .map(|k| Cow::Owned(k.into_owned()));
                    } else {
                        let value: &'de RawValue = map.next_value()?;
                        fields.push((key, value));
                    }
                }
                Ok(RawEnvelope { kind, fields })
            }
        }
        deserializer.deserialize_map(EnvelopeVisitor)
    }
}

/// Serialises `{"type": kind, key: payload}`, then `_emitted_by` and `_ts` when stamped.
pub(crate) fn serialize_envelope<S: Serializer, T: Serialize + ?Sized>(
    serializer: S,
    kind: &str,
    key: &str,
    payload: &T,
    stamp: Option<(&str, &str)>,
) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(Some(if stamp.is_some() { 4 } else { 2 }))?;
    map.serialize_entry("type", kind)?;
    map.serialize_entry(key, payload)?;
    if let Some((emitted_by, ts)) = stamp {
        map.serialize_entry(EMITTED_BY, emitted_by)?;
        map.serialize_entry(TS, ts)?;
    }
    map.end()
}

/// The envelope field naming who wrote a line: `source/<name>`, `destination/<name>`, `engine`.
pub(crate) const EMITTED_BY: &str = "_emitted_by";
/// The envelope field holding when the engine saw a line (RFC 3339).
pub(crate) const TS: &str = "_ts";

/// Adapts a [`ParseError`] to a serde error for the generic `Deserialize` impls.
pub(crate) fn to_de_error<E: de::Error>(err: ParseError) -> E {
    E::custom(err)
}

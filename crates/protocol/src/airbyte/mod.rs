//! The Airbyte dialect of the protocol (`airbyte_protocol.yaml` v0), with its exact spellings:
//! upper-case `type` values, the `connectionStatus` payload key, `connectionSpecification`,
//! `sourceStats.recordCount` as a float, epoch-millisecond `emitted_at`, STREAM/GLOBAL/LEGACY
//! states. [`from_airbyte`] and [`to_airbyte`] convert to and from the native dialect.

mod translate;
mod types;

pub use translate::{
    catalog_from_airbyte, catalog_to_airbyte, configured_catalog_to_airbyte, from_airbyte,
    state_to_airbyte_input, to_airbyte,
};
pub use types::*;

use serde::de::{Deserializer, Error as _};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ParseError;
use crate::envelope::{RawEnvelope, serialize_envelope, to_de_error};

/// One line of the Airbyte protocol.
#[derive(Debug, Clone, PartialEq)]
pub enum AirbyteMessage {
    /// A data record (`RECORD`).
    Record(AirbyteRecord),
    /// A checkpoint (`STATE`), per stream, global or legacy.
    State(AirbyteState),
    /// A log line (`LOG`).
    Log(AirbyteLog),
    /// The connector's spec (`SPEC`).
    Spec(AirbyteSpec),
    /// The result of `check` (`CONNECTION_STATUS`).
    ConnectionStatus(AirbyteConnectionStatus),
    /// The catalog `discover` prints (`CATALOG`).
    Catalog(AirbyteCatalog),
    /// An error, estimate or stream status (`TRACE`).
    Trace(AirbyteTrace),
    /// A config update the connector asks to be saved (`CONTROL`).
    Control(AirbyteControl),
    /// The catalog a destination was given (`DESTINATION_CATALOG`), kept as JSON.
    DestinationCatalog(Value),
}

impl AirbyteMessage {
    /// The `type` value and the payload key it names.
    pub fn wire_names(&self) -> (&'static str, &'static str) {
        match self {
            AirbyteMessage::Record(_) => ("RECORD", "record"),
            AirbyteMessage::State(_) => ("STATE", "state"),
            AirbyteMessage::Log(_) => ("LOG", "log"),
            AirbyteMessage::Spec(_) => ("SPEC", "spec"),
            AirbyteMessage::ConnectionStatus(_) => ("CONNECTION_STATUS", "connectionStatus"),
            AirbyteMessage::Catalog(_) => ("CATALOG", "catalog"),
            AirbyteMessage::Trace(_) => ("TRACE", "trace"),
            AirbyteMessage::Control(_) => ("CONTROL", "control"),
            AirbyteMessage::DestinationCatalog(_) => ("DESTINATION_CATALOG", "destination_catalog"),
        }
    }

    /// Parses one NDJSON line of the Airbyte dialect.
    pub fn from_slice(line: &[u8]) -> Result<AirbyteMessage, ParseError> {
        let envelope = RawEnvelope::parse(line)?;
        let kind = envelope.kind()?;
        Ok(match kind {
            "RECORD" => AirbyteMessage::Record(envelope.payload(kind, "record")?),
            "STATE" => AirbyteMessage::State(envelope.payload(kind, "state")?),
            "LOG" => AirbyteMessage::Log(envelope.payload(kind, "log")?),
            "SPEC" => AirbyteMessage::Spec(envelope.payload(kind, "spec")?),
            "CONNECTION_STATUS" => {
                AirbyteMessage::ConnectionStatus(envelope.payload(kind, "connectionStatus")?)
            }
            "CATALOG" => AirbyteMessage::Catalog(envelope.payload(kind, "catalog")?),
            "TRACE" => AirbyteMessage::Trace(envelope.payload(kind, "trace")?),
            "CONTROL" => AirbyteMessage::Control(envelope.payload(kind, "control")?),
            "DESTINATION_CATALOG" => {
                AirbyteMessage::DestinationCatalog(envelope.payload(kind, "destination_catalog")?)
            }
            other => return Err(ParseError::UnknownType(other.to_owned())),
        })
    }

    /// Serialises the message as one line, without the trailing newline.
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl Serialize for AirbyteMessage {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (kind, key) = self.wire_names();
        match self {
            AirbyteMessage::Record(p) => serialize_envelope(s, kind, key, p, None),
            AirbyteMessage::State(p) => serialize_envelope(s, kind, key, p, None),
            AirbyteMessage::Log(p) => serialize_envelope(s, kind, key, p, None),
            AirbyteMessage::Spec(p) => serialize_envelope(s, kind, key, p, None),
            AirbyteMessage::ConnectionStatus(p) => serialize_envelope(s, kind, key, p, None),
            AirbyteMessage::Catalog(p) => serialize_envelope(s, kind, key, p, None),
            AirbyteMessage::Trace(p) => serialize_envelope(s, kind, key, p, None),
            AirbyteMessage::Control(p) => serialize_envelope(s, kind, key, p, None),
            AirbyteMessage::DestinationCatalog(p) => serialize_envelope(s, kind, key, p, None),
        }
    }
}

impl<'de> Deserialize<'de> for AirbyteMessage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        let text = serde_json::to_vec(&value).map_err(D::Error::custom)?;
        AirbyteMessage::from_slice(&text).map_err(to_de_error)
    }
}

/// True when a line is an Airbyte-dialect message (its `type` is one of the upper-case names).
pub fn is_airbyte_line(line: &[u8]) -> bool {
    RawEnvelope::parse(line)
        .ok()
        .and_then(|e| e.kind.map(|k| k.into_owned()))
        .is_some_and(|k| {
            matches!(
                k.as_str(),
                "RECORD"
                    | "STATE"
                    | "LOG"
                    | "SPEC"
                    | "CONNECTION_STATUS"
                    | "CATALOG"
                    | "TRACE"
                    | "CONTROL"
                    | "DESTINATION_CATALOG"
            )
        })
}

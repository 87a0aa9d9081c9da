use serde::de::{Deserializer, Error as _};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::envelope::{EMITTED_BY, RawEnvelope, TS, serialize_envelope, to_de_error};
use crate::{
    Catalog, ConnectionStatus, Control, Eof, Log, ParseError, Progress, Record, SourceState, Spec,
    StreamStatus,
};

/// One line of the native protocol.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A data record.
    Record(Record),
    /// A checkpoint; a destination re-emits it once what came before is committed.
    SourceState(SourceState),
    /// The output of `discover`.
    Catalog(Catalog),
    /// The output of `spec`.
    Spec(Spec),
    /// The result of `check`, or a fatal failure.
    ConnectionStatus(ConnectionStatus),
    /// A log line carried in-band.
    Log(Log),
    /// A stream started, finished a range, completed, failed or was skipped.
    StreamStatus(StreamStatus),
    /// A config update to save.
    Control(Control),
    /// The engine's progress snapshot.
    Progress(Box<Progress>),
    /// The engine's last message.
    Eof(Box<Eof>),
    /// Push-mode input for a source (for example a Stripe event); opaque to the protocol.
    SourceInput(Value),
}

/// The `type` of a native message, also its payload key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// `record`
    Record,
    /// `source_state`
    SourceState,
    /// `catalog`
    Catalog,
    /// `spec`
    Spec,
    /// `connection_status`
    ConnectionStatus,
    /// `log`
    Log,
    /// `stream_status`
    StreamStatus,
    /// `control`
    Control,
    /// `progress`
    Progress,
    /// `eof`
    Eof,
    /// `source_input`
    SourceInput,
}

impl MessageType {
    /// Every message type.
    pub const ALL: [MessageType; 11] = [
        MessageType::Record,
        MessageType::SourceState,
        MessageType::Catalog,
        MessageType::Spec,
        MessageType::ConnectionStatus,
        MessageType::Log,
        MessageType::StreamStatus,
        MessageType::Control,
        MessageType::Progress,
        MessageType::Eof,
        MessageType::SourceInput,
    ];

    /// The wire name, used both as the `type` value and as the payload key.
    pub const fn as_str(self) -> &'static str {
        match self {
            MessageType::Record => "record",
            MessageType::SourceState => "source_state",
            MessageType::Catalog => "catalog",
            MessageType::Spec => "spec",
            MessageType::ConnectionStatus => "connection_status",
            MessageType::Log => "log",
            MessageType::StreamStatus => "stream_status",
            MessageType::Control => "control",
            MessageType::Progress => "progress",
            MessageType::Eof => "eof",
            MessageType::SourceInput => "source_input",
        }
    }

    /// The type named `name` on the wire.
    pub fn from_wire(name: &str) -> Option<Self> {
        MessageType::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

impl std::fmt::Display for MessageType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Message {
    /// The message's type.
    pub fn message_type(&self) -> MessageType {
        match self {
            Message::Record(_) => MessageType::Record,
            Message::SourceState(_) => MessageType::SourceState,
            Message::Catalog(_) => MessageType::Catalog,
            Message::Spec(_) => MessageType::Spec,
            Message::ConnectionStatus(_) => MessageType::ConnectionStatus,
            Message::Log(_) => MessageType::Log,
            Message::StreamStatus(_) => MessageType::StreamStatus,
            Message::Control(_) => MessageType::Control,
            Message::Progress(_) => MessageType::Progress,
            Message::Eof(_) => MessageType::Eof,
            Message::SourceInput(_) => MessageType::SourceInput,
        }
    }

    /// Parses one NDJSON line (without its newline).
    pub fn from_slice(line: &[u8]) -> Result<Message, ParseError> {
        Message::from_envelope(&RawEnvelope::parse(line)?)
    }

    /// Parses one NDJSON line with its envelope's [`Stamp`] (an engine's lines carry one).
    pub fn from_slice_stamped(line: &[u8]) -> Result<(Message, Stamp), ParseError> {
        let envelope = RawEnvelope::parse(line)?;
        let stamp = Stamp {
            emitted_by: envelope.text(EMITTED_BY),
            ts: envelope.text(TS),
        };
        Ok((Message::from_envelope(&envelope)?, stamp))
    }

    fn from_envelope(envelope: &RawEnvelope<'_>) -> Result<Message, ParseError> {
        let kind = envelope.kind()?;
        let ty =
            MessageType::from_wire(kind).ok_or_else(|| ParseError::UnknownType(kind.to_owned()))?;
        let key = ty.as_str();
        Ok(match ty {
            MessageType::Record => Message::Record(envelope.payload(kind, key)?),
            MessageType::SourceState => Message::SourceState(envelope.payload(kind, key)?),
            MessageType::Catalog => Message::Catalog(envelope.payload(kind, key)?),
            MessageType::Spec => Message::Spec(envelope.payload(kind, key)?),
            MessageType::ConnectionStatus => {
                Message::ConnectionStatus(envelope.payload(kind, key)?)
            }
            MessageType::Log => Message::Log(envelope.payload(kind, key)?),
            MessageType::StreamStatus => Message::StreamStatus(envelope.payload(kind, key)?),
            MessageType::Control => Message::Control(envelope.payload(kind, key)?),
            MessageType::Progress => Message::Progress(envelope.payload(kind, key)?),
            MessageType::Eof => Message::Eof(envelope.payload(kind, key)?),
            MessageType::SourceInput => Message::SourceInput(envelope.payload(kind, key)?),
        })
    }

    /// Parses one line given as text (see [`Message::from_slice`]).
    pub fn from_str_line(line: &str) -> Result<Message, ParseError> {
        Message::from_slice(line.as_bytes())
    }

    /// Serialises the message as one line, without the trailing newline.
    pub fn to_line(&self) -> String {
        // Serialising plain data structures to a String cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Serialises the message as one line with `_emitted_by` and `_ts` on its envelope, after
    /// the payload: `{"type":"eof","eof":{…},"_emitted_by":"engine","_ts":"…"}`.
    pub fn to_line_stamped(&self, emitted_by: &str, ts: &str) -> String {
        let stamped = Stamped {
            message: self,
            stamp: (emitted_by, ts),
        };
        serde_json::to_string(&stamped).unwrap_or_default()
    }

    fn serialize_with<S: Serializer>(
        &self,
        s: S,
        stamp: Option<(&str, &str)>,
    ) -> Result<S::Ok, S::Error> {
        let key = self.message_type().as_str();
        match self {
            Message::Record(p) => serialize_envelope(s, key, key, p, stamp),
            Message::SourceState(p) => serialize_envelope(s, key, key, p, stamp),
            Message::Catalog(p) => serialize_envelope(s, key, key, p, stamp),
            Message::Spec(p) => serialize_envelope(s, key, key, p, stamp),
            Message::ConnectionStatus(p) => serialize_envelope(s, key, key, p, stamp),
            Message::Log(p) => serialize_envelope(s, key, key, p, stamp),
            Message::StreamStatus(p) => serialize_envelope(s, key, key, p, stamp),
            Message::Control(p) => serialize_envelope(s, key, key, p, stamp),
            Message::Progress(p) => serialize_envelope(s, key, key, p, stamp),
            Message::Eof(p) => serialize_envelope(s, key, key, p, stamp),
            Message::SourceInput(p) => serialize_envelope(s, key, key, p, stamp),
        }
    }
}

/// Who wrote a line and when, as an engine puts it on the envelope beside `type`
/// (`_emitted_by`: `source/<name>`, `destination/<name>` or `engine`; `_ts`: RFC 3339).
/// Connectors do not write it; parsing ignores it unless asked
/// ([`Message::from_slice_stamped`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stamp {
    /// `_emitted_by`, when the line has it.
    pub emitted_by: Option<String>,
    /// `_ts`, when the line has it.
    pub ts: Option<String>,
}

struct Stamped<'a> {
    message: &'a Message,
    stamp: (&'a str, &'a str),
}

impl Serialize for Stamped<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.message.serialize_with(s, Some(self.stamp))
    }
}

impl Serialize for Message {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.serialize_with(s, None)
    }
}

impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // The generic path (e.g. a message nested in another document) goes through text once;
        // lines from the wire use `Message::from_slice` directly.
        let value = Value::deserialize(d)?;
        let text = serde_json::to_vec(&value).map_err(D::Error::custom)?;
        Message::from_slice(&text).map_err(to_de_error)
    }
}

macro_rules! impl_from_payload {
    ($($variant:ident),*) => {$(
        impl From<crate::$variant> for Message {
            fn from(p: crate::$variant) -> Message { Message::$variant(p) }
        }
    )*};
}
impl_from_payload!(
    Record,
    SourceState,
    Catalog,
    Spec,
    ConnectionStatus,
    Log,
    StreamStatus,
    Control
);

impl From<Progress> for Message {
    fn from(p: Progress) -> Message {
        Message::Progress(Box::new(p))
    }
}

impl From<Eof> for Message {
    fn from(p: Eof) -> Message {
        Message::Eof(Box::new(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Log, LogLevel};

    #[test]
    fn a_stamp_rides_on_the_envelope_and_is_read_back() {
        let message = Message::Log(Log::new(LogLevel::Info, "hello"));
        let line = message.to_line_stamped("source/stripe", "2026-04-20T12:00:00.000Z");
        assert_eq!(
            line,
            r#"{"type":"log","log":{"level":"info","message":"hello"},"_emitted_by":"source/stripe","_ts":"2026-04-20T12:00:00.000Z"}"#
        );
        let (parsed, stamp) = Message::from_slice_stamped(line.as_bytes()).unwrap();
        assert_eq!(parsed, message);
        assert_eq!(stamp.emitted_by.as_deref(), Some("source/stripe"));
        assert_eq!(stamp.ts.as_deref(), Some("2026-04-20T12:00:00.000Z"));
        // Plain parsing ignores it; a line without one has an empty stamp.
        assert_eq!(Message::from_slice(line.as_bytes()).unwrap(), message);
        let (_, none) = Message::from_slice_stamped(message.to_line().as_bytes()).unwrap();
        assert_eq!(none, Stamp::default());
    }
}

use serde::de::{Deserializer, Error as _};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A connector asks the orchestrator to replace its stored config with this full new config.
#[derive(Debug, Clone, PartialEq)]
pub enum Control {
    /// The source's new config (`control_type: "source_config"`).
    SourceConfig(Value),
    /// The destination's new config (`control_type: "destination_config"`).
    DestinationConfig(Value),
}

impl Control {
    fn key(&self) -> &'static str {
        match self {
            Control::SourceConfig(_) => "source_config",
            Control::DestinationConfig(_) => "destination_config",
        }
    }
}

impl Serialize for Control {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (Control::SourceConfig(config) | Control::DestinationConfig(config)) = self;
        let mut map = s.serialize_map(Some(2))?;
        map.serialize_entry("control_type", self.key())?;
        map.serialize_entry(self.key(), config)?;
        map.end()
    }
}

impl<'de> Deserialize<'de> for Control {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Wire {
            control_type: String,
            source_config: Option<Value>,
            destination_config: Option<Value>,
        }
        let wire = Wire::deserialize(d)?;
        match wire.control_type.as_str() {
            "source_config" => wire
                .source_config
                .map(Control::SourceConfig)
                .ok_or_else(|| D::Error::missing_field("source_config")),
            "destination_config" => wire
                .destination_config
                .map(Control::DestinationConfig)
                .ok_or_else(|| D::Error::missing_field("destination_config")),
            other => Err(D::Error::unknown_variant(
                other,
                &["source_config", "destination_config"],
            )),
        }
    }
}

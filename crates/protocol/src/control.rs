use std::collections::BTreeMap;

use serde::de::{Deserializer, Error as _};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::TableReport;

/// Something a connector asks the orchestrator to keep with the pipeline.
#[derive(Debug, Clone, PartialEq)]
pub enum Control {
    /// The source's new config (`control_type: "source_config"`): replaces the stored one.
    SourceConfig(Value),
    /// The destination's new config (`control_type: "destination_config"`).
    DestinationConfig(Value),
    /// The destination's tables by stream, as its `setup` found or made them
    /// (`control_type: "destination_tables"`): the holder of the checkpoint applies it with
    /// [`crate::SyncState::reconcile_tables`].
    DestinationTables(BTreeMap<String, TableReport>),
}

impl Control {
    fn key(&self) -> &'static str {
        match self {
            Control::SourceConfig(_) => "source_config",
            Control::DestinationConfig(_) => "destination_config",
            Control::DestinationTables(_) => "destination_tables",
        }
    }
}

impl Serialize for Control {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(2))?;
        map.serialize_entry("control_type", self.key())?;
        match self {
            Control::SourceConfig(config) | Control::DestinationConfig(config) => {
                map.serialize_entry(self.key(), config)?
            }
            Control::DestinationTables(tables) => map.serialize_entry(self.key(), tables)?,
        }
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
            destination_tables: Option<BTreeMap<String, TableReport>>,
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
            "destination_tables" => wire
                .destination_tables
                .map(Control::DestinationTables)
                .ok_or_else(|| D::Error::missing_field("destination_tables")),
            other => Err(D::Error::unknown_variant(
                other,
                &["source_config", "destination_config", "destination_tables"],
            )),
        }
    }
}

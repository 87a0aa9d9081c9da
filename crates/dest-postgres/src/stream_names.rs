//! Stripe streams a hand-written catalog names by their objects' name, as the reference
//! system's connector docs do (`customer` for `customers`): the table is the stream's own
//! (`customers`), where source-stripe's records of it go (it names them so too). Only a stream
//! without a JSON Schema is renamed: a discovered stream carries its schema, so another
//! source's stream that happens to be called `event` or `item` keeps its name and table. Records
//! and states under the name the catalog gave are routed to the renamed stream as well, so a
//! source that names them as its catalog does loses nothing.

use std::collections::BTreeMap;

use sync_connector::ConnectorError;
use sync_protocol::ConfiguredCatalog;

/// A catalog with such streams under their own name, and the names it gave them.
pub(crate) struct Canonical {
    pub catalog: ConfiguredCatalog,
    /// (name the catalog gave, the stream's own name) of each renamed stream.
    pub aliases: Vec<(String, String)>,
}

/// The catalog with such streams under their own name; two entries naming one stream
/// differently are a usage error naming both.
pub(crate) fn canonical(mut catalog: ConfiguredCatalog) -> Result<Canonical, ConnectorError> {
    let mut aliases = Vec::new();
    let stripe = stripe_catalog::catalog();
    let mut given: BTreeMap<String, String> = BTreeMap::new();
    for configured in &mut catalog.streams {
        let name = configured.stream.name.clone();
        if configured.stream.json_schema.is_none()
            && stripe.resource(&name).is_none()
            && let Some(resource) = stripe.named(&name)
        {
            tracing::info!(given = %name, stream = %resource.stream, "a Stripe stream named by its objects");
            configured.stream.name = resource.stream.clone();
            aliases.push((name.clone(), resource.stream.clone()));
        }
        if let Some(earlier) = given.insert(configured.stream.name.clone(), name.clone())
            && earlier != name
        {
            return Err(ConnectorError::Usage(format!(
                "catalog: streams {earlier:?} and {name:?} both name stream {}; give it once",
                configured.stream.name
            )));
        }
    }
    Ok(Canonical { catalog, aliases })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sync_protocol::{ConfiguredStream, Stream};

    fn stream(name: &str, schema: bool) -> ConfiguredStream {
        let mut s = Stream::new(name);
        if schema {
            s.json_schema = Some(serde_json::json!({"type": "object"}));
        }
        ConfiguredStream::new(s)
    }

    #[test]
    fn only_hand_written_stripe_object_names_are_renamed() {
        let catalog = ConfiguredCatalog {
            streams: vec![
                stream("customer", false),
                stream("item", true),
                stream("a", false),
                stream("invoices", false),
            ],
            extra: Default::default(),
        };
        let renamed = canonical(catalog).unwrap();
        assert_eq!(
            renamed.aliases,
            [("customer".to_owned(), "customers".to_owned())]
        );
        let names: Vec<String> = renamed
            .catalog
            .streams
            .into_iter()
            .map(|s| s.stream.name)
            .collect();
        assert_eq!(names, ["customers", "item", "a", "invoices"]);
        let twice = ConfiguredCatalog {
            streams: vec![stream("customers", false), stream("customer", false)],
            extra: Default::default(),
        };
        assert!(canonical(twice).is_err());
    }
}

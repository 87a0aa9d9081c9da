//! Streams a configured catalog names by their objects' name, as the reference system's
//! documentation does (`customer` for `customers`, `checkout.session` or `checkout_session` for
//! `checkout_sessions`): each is read as the stream it names, and its records and states carry
//! that stream's own name, so a destination writes the same table whatever the spelling.

use std::collections::BTreeMap;

use sync_connector::ConnectorError;
use sync_protocol::ConfiguredCatalog;

/// The catalog with every stream under its own name; two entries naming one stream differently
/// are a usage error naming both.
pub(crate) fn canonical(
    mut catalog: ConfiguredCatalog,
) -> Result<ConfiguredCatalog, ConnectorError> {
    let stripe = stripe_catalog::catalog();
    let mut given: BTreeMap<String, String> = BTreeMap::new();
    for configured in &mut catalog.streams {
        let name = configured.stream.name.clone();
        if let Some(resource) = stripe.named(&name)
            && resource.stream != name
        {
            tracing::info!(given = %name, stream = %resource.stream, "a stream named by its objects");
            configured.stream.name = resource.stream.clone();
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
    Ok(catalog)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sync_protocol::{ConfiguredStream, Stream};

    fn catalog(names: &[&str]) -> ConfiguredCatalog {
        ConfiguredCatalog {
            streams: names
                .iter()
                .map(|n| ConfiguredStream::new(Stream::new(*n)))
                .collect(),
            extra: Default::default(),
        }
    }

    fn names(c: &ConfiguredCatalog) -> Vec<&str> {
        c.streams.iter().map(|s| s.stream.name.as_str()).collect()
    }

    #[test]
    fn object_names_become_stream_names() {
        let c = canonical(catalog(&[
            "customer",
            "checkout.session",
            "invoices",
            "nope",
        ]))
        .unwrap();
        assert_eq!(
            names(&c),
            ["customers", "checkout_sessions", "invoices", "nope"]
        );
        let e = canonical(catalog(&["customer", "customers"])).unwrap_err();
        assert!(
            e.to_string().contains("\"customer\" and \"customers\""),
            "{e}"
        );
    }
}

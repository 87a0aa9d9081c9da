//! The catalog `discover` prints: one stream per Stripe resource the sync knows.

use serde_json::{Map, Value, json};
use stripe_catalog::Resource;
use sync_protocol::{Catalog, ConfiguredCatalog, Stream};

use crate::records::{ACCOUNT_ID, UPDATED_AT};

/// The stream of one resource, its JSON Schema stamped with the account it belongs to.
pub(crate) fn stream(resource: &Resource, account_id: &str) -> Stream {
    let mut properties: Map<String, Value> = resource.properties.clone();
    for (field, schema) in properties.iter_mut() {
        let objects = stripe_catalog::references(&resource.object, field);
        if !objects.is_empty() {
            // Which objects the id names (Stripe's `x-expansionResources`), so a reader of the
            // catalog can draw the relations between tables.
            schema["x-resources"] = json!(objects);
        }
    }
    properties.insert(
        ACCOUNT_ID.to_owned(),
        json!({"type": "string", "enum": [account_id]}),
    );
    properties.insert(
        UPDATED_AT.to_owned(),
        json!({"type": "integer", "description": "Unix seconds of the version this record holds"}),
    );
    properties.entry("deleted".to_owned()).or_insert_with(
        || json!({"type": ["boolean", "null"], "description": "true on a tombstone"}),
    );
    let mut stream = Stream::new(&resource.stream);
    // `_account_id` is part of the key so that several accounts can share one table.
    stream.primary_key = vec![vec!["id".to_owned()], vec![ACCOUNT_ID.to_owned()]];
    stream.newer_than_field = Some(UPDATED_AT.to_owned());
    stream.json_schema = Some(json!({
        "type": "object",
        "properties": properties,
        "required": ["id", ACCOUNT_ID, UPDATED_AT],
    }));
    let mut metadata = json!({
        "resource_name": resource.object,
        "list_path": resource.list_path,
        "api": match resource.api { stripe_catalog::Api::V1 => "v1", stripe_catalog::Api::V2 => "v2" },
        "created_filter": resource.created_filter,
        "supports_events": !resource.event_types.is_empty() || resource.parent.is_some(),
    });
    if let Some(parent) = &resource.parent {
        metadata["parent_stream"] = json!(parent.stream);
    }
    stream.metadata = Some(metadata);
    stream
}

/// Every stream, sorted by name.
pub fn catalog(account_id: &str) -> Catalog {
    let mut streams: Vec<Stream> = stripe_catalog::catalog()
        .resources
        .iter()
        .map(|r| stream(r, account_id))
        .collect();
    streams.sort_by(|a, b| a.name.cmp(&b.name));
    Catalog {
        streams,
        ..Default::default()
    }
}

/// Marks every stream with the creation time of the key's own account whose streams they are
/// (`metadata.account_created`), which `setup` hands back without asking again.
pub(crate) fn stamp_account_created(catalog: &mut Catalog, created: i64) {
    for stream in &mut catalog.streams {
        if let Some(Value::Object(metadata)) = &mut stream.metadata {
            metadata.insert("account_created".to_owned(), json!(created));
        }
    }
}

/// The account a catalog `discover` printed is stamped with (its `_account_id`), and its
/// creation time when it is the key's own; `None` for a catalog without the stamp.
pub(crate) fn stamped_account(catalog: &ConfiguredCatalog) -> Option<(String, Option<i64>)> {
    let stream = &catalog.streams.first()?.stream;
    let id = stream.json_schema.as_ref()?["properties"][ACCOUNT_ID]["enum"][0].as_str()?;
    let created = stream
        .metadata
        .as_ref()
        .and_then(|m| m.get("account_created"))
        .and_then(Value::as_i64);
    Some((id.to_owned(), created))
}

#[cfg(test)]
mod tests {
    #[test]
    fn references_are_annotated() {
        let catalog = super::catalog("acct_1");
        let invoices = catalog.streams.iter().find(|s| s.name == "invoices");
        let schema = invoices
            .and_then(|s| s.json_schema.as_ref())
            .expect("invoices");
        assert_eq!(
            schema["properties"]["customer"]["x-resources"],
            serde_json::json!(["customer", "deleted_customer"])
        );
        assert!(
            schema["properties"]["amount_due"]
                .get("x-resources")
                .is_none()
        );
    }
}

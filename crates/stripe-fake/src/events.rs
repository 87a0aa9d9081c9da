//! Stripe events: which type a create, update or delete emits (from the catalog's event types),
//! how an event is rendered around an object's pre-serialised JSON, and the type filters of
//! `/v1/events`.

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::{Value, json};
use stripe_catalog::Resource;

/// `/v1/events` lists and retrieves only events younger than this.
pub(crate) const RETENTION_SECS: i64 = 30 * 86_400;

/// The event types a resource emits for each mutation, when Stripe has one.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct EventNames {
    pub created: Option<&'static str>,
    pub updated: Option<&'static str>,
    pub deleted: Option<&'static str>,
}

impl EventNames {
    /// Picks the shortest type with the matching suffix (`customer.created` rather than
    /// `customer.discount.created`); resources without a `.created` event emit their
    /// `.succeeded` one on creation (charges), and none when they have neither.
    pub(crate) fn of(resource: &'static Resource) -> EventNames {
        let shortest = |suffix: &str| {
            resource
                .event_types
                .iter()
                .filter(|t| t.ends_with(suffix))
                .min_by_key(|t| t.len())
                .map(String::as_str)
        };
        EventNames {
            created: shortest(".created").or_else(|| shortest(".succeeded")),
            updated: shortest(".updated"),
            deleted: shortest(".deleted"),
        }
    }
}

/// What an event says; rendered once into bytes.
pub(crate) struct EventSpec<'a> {
    pub id: &'a str,
    pub event_type: &'a str,
    pub created: i64,
    pub livemode: bool,
    pub account: Option<&'a str>,
    pub api_version: &'a str,
    /// The object's JSON as it was when the event happened.
    pub object_json: &'a [u8],
    pub previous_attributes: Option<&'a Value>,
    pub request_id: Option<&'a str>,
}

impl EventSpec<'_> {
    pub(crate) fn render(&self) -> Bytes {
        let head = json!({
            "id": self.id,
            "object": "event",
        });
        let mut out = BytesMut::with_capacity(self.object_json.len() + 400);
        // `{"id":…,"object":"event"` without the closing brace, then the remaining fields in
        // Stripe's order, the object spliced in as raw bytes rather than re-serialised.
        let head = head.to_string();
        out.put_slice(&head.as_bytes()[..head.len() - 1]);
        if let Some(account) = self.account {
            out.put_slice(format!(",\"account\":{}", json!(account)).as_bytes());
        }
        out.put_slice(
            format!(
                ",\"api_version\":{},\"created\":{},\"data\":{{\"object\":",
                json!(self.api_version),
                self.created
            )
            .as_bytes(),
        );
        out.put_slice(self.object_json);
        if let Some(previous) = self.previous_attributes {
            out.put_slice(b",\"previous_attributes\":");
            out.put_slice(previous.to_string().as_bytes());
        }
        let request = json!({"id": self.request_id, "idempotency_key": null});
        out.put_slice(
            format!(
                "}},\"livemode\":{},\"pending_webhooks\":0,\"request\":{},\"type\":{}}}",
                self.livemode,
                request,
                json!(self.event_type)
            )
            .as_bytes(),
        );
        out.freeze()
    }
}

/// `type` filter semantics: exact, or a `prefix.*` wildcard (`*` alone matches everything).
pub(crate) fn type_matches(filter: &str, event_type: &str) -> bool {
    match filter.strip_suffix('*') {
        Some(prefix) => event_type.starts_with(prefix),
        None => filter == event_type,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_catalog() {
        let c = stripe_catalog::catalog();
        let subs = EventNames::of(c.resource("subscriptions").unwrap());
        assert_eq!(subs.created, Some("customer.subscription.created"));
        assert_eq!(subs.deleted, Some("customer.subscription.deleted"));
        let charges = EventNames::of(c.resource("charges").unwrap());
        assert_eq!(charges.created, Some("charge.succeeded"));
        assert_eq!(charges.updated, Some("charge.updated"));
        let items = EventNames::of(c.resource("invoiceitems").unwrap());
        assert_eq!(items.updated, None);
        assert_eq!(
            EventNames::of(c.resource("refunds").unwrap()).updated,
            Some("refund.updated")
        );
    }

    #[test]
    fn renders_valid_json() {
        let previous = json!({"name": "old"});
        let spec = EventSpec {
            id: "evt_1",
            event_type: "customer.updated",
            created: 5,
            livemode: false,
            account: Some("acct_1"),
            api_version: "2026-10-28.endive",
            object_json: br#"{"id":"cus_1","object":"customer"}"#,
            previous_attributes: Some(&previous),
            request_id: None,
        };
        let v: Value = serde_json::from_slice(&spec.render()).unwrap();
        assert_eq!(v["data"]["object"]["id"], "cus_1");
        assert_eq!(v["data"]["previous_attributes"]["name"], "old");
        assert_eq!(v["account"], "acct_1");
        assert_eq!(v["request"]["id"], Value::Null);
        assert_eq!(v["type"], "customer.updated");
    }

    #[test]
    fn wildcards() {
        assert!(type_matches("customer.*", "customer.subscription.created"));
        assert!(type_matches("*", "charge.succeeded"));
        assert!(!type_matches("customer.*", "charge.succeeded"));
        assert!(!type_matches("customer.created", "customer.updated"));
    }
}

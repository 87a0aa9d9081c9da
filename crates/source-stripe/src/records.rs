//! Stripe objects as records: the object plus `_account_id` and `_updated_at`.

use serde_json::{Map, Value};

pub const ACCOUNT_ID: &str = "_account_id";
pub const UPDATED_AT: &str = "_updated_at";

/// Stamps an object for its stream. `_updated_at` is the object's own `updated` when it has one,
/// else `observed_at`: the server time it was read (a list page) or the event's creation time, so
/// that a later version always carries a later or equal stamp.
pub fn stamp(mut object: Map<String, Value>, account_id: &str, observed_at: i64) -> Value {
    let updated = object
        .get("updated")
        .and_then(Value::as_i64)
        .filter(|u| *u > 0)
        .unwrap_or(observed_at);
    object.insert(ACCOUNT_ID.to_owned(), Value::String(account_id.to_owned()));
    object.insert(UPDATED_AT.to_owned(), Value::from(updated));
    Value::Object(object)
}

/// A tombstone: the object as it was, marked deleted.
pub fn tombstone(mut object: Map<String, Value>, account_id: &str, observed_at: i64) -> Value {
    object.insert("deleted".to_owned(), Value::Bool(true));
    stamp(object, account_id, observed_at)
}

/// The `created` second and id of an object, the two things paging needs. Invoice items carry
/// their creation time as `date`, which is what their list's `created` filter compares.
pub fn created_and_id(object: &Map<String, Value>) -> (Option<i64>, Option<&str>) {
    let created = object
        .get("created")
        .or_else(|| object.get("date"))
        .and_then(Value::as_i64);
    (created, object.get("id").and_then(Value::as_str))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stamps_account_and_time() {
        let obj = json!({"id": "cus_1", "created": 5})
            .as_object()
            .unwrap()
            .clone();
        let r = stamp(obj, "acct_1", 100);
        assert_eq!(r["_account_id"], "acct_1");
        assert_eq!(r["_updated_at"], 100);
        let obj = json!({"id": "x", "updated": 50})
            .as_object()
            .unwrap()
            .clone();
        assert_eq!(
            stamp(obj, "a", 100)["_updated_at"],
            50,
            "an object's own updated time wins"
        );
        let t = tombstone(json!({"id": "cus_1"}).as_object().unwrap().clone(), "a", 7);
        assert_eq!(t["deleted"], true);
    }
}

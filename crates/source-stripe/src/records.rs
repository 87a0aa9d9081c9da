//! Stripe objects as records: the object plus `_account_id` and `_updated_at`. Objects stay
//! JSON text from the response to stdout; only the few fields paging needs are read.

use std::borrow::Cow;
use std::fmt::Write;

use serde_json::value::RawValue;
use serde_json::{Map, Value};
use sync_protocol::peek::top_level_fields;

pub const ACCOUNT_ID: &str = "_account_id";
pub const UPDATED_AT: &str = "_updated_at";

/// The fields of an object the source looks at. Each is read on its own, so an unexpected type
/// in one (type drift in a new API version) does not hide the others.
#[derive(Debug, Default)]
pub struct Head<'a> {
    pub id: Option<Cow<'a, str>>,
    created: Option<i64>,
    /// Invoice items carry their creation time as `date`, which their list's created filter compares.
    date: Option<i64>,
    updated: Option<i64>,
}

impl Head<'_> {
    pub fn of(raw: &RawValue) -> Head<'_> {
        let Ok(fields) = top_level_fields(raw.get(), &["id", "created", "date", "updated"]) else {
            return Head::default();
        };
        let int = |i: usize| fields[i].and_then(|v| v.get().parse::<i64>().ok());
        Head {
            id: fields[0].and_then(|v| serde_json::from_str::<Cow<'_, str>>(v.get()).ok()),
            created: int(1),
            date: int(2),
            updated: int(3),
        }
    }

    pub fn created(&self) -> Option<i64> {
        self.created.or(self.date)
    }
}

/// `_updated_at`: the object's own `updated` when it has one, else `observed_at`, the server
/// time it was read (a list page) or the event's creation time, so a later version always
/// carries a later or equal stamp.
fn updated_at(own: Option<i64>, observed_at: i64) -> i64 {
    own.filter(|u| *u > 0).unwrap_or(observed_at)
}

/// The record data for an object: its JSON text with `_account_id` and `_updated_at` added
/// in front, the rest of the text untouched.
pub fn stamp(raw: &RawValue, account_id: &str, observed_at: i64) -> String {
    let updated = updated_at(Head::of(raw).updated, observed_at);
    let text = raw.get().trim_start();
    let rest = text.strip_prefix('{').unwrap_or(text).trim_start();
    let account = serde_json::to_string(account_id).unwrap_or_else(|_| "\"\"".to_owned());
    let mut out = String::with_capacity(text.len() + account.len() + 48);
    let _ = write!(
        out,
        "{{\"{ACCOUNT_ID}\":{account},\"{UPDATED_AT}\":{updated}"
    );
    if !rest.starts_with('}') {
        out.push(',');
    }
    out.push_str(rest);
    out
}

/// `stamp` for an object already parsed (from an event payload); a tombstone when `deleted`.
pub fn stamp_value(
    mut object: Map<String, Value>,
    account_id: &str,
    observed_at: i64,
    deleted: bool,
) -> String {
    if deleted {
        object.insert("deleted".to_owned(), Value::Bool(true));
    }
    let updated = updated_at(object.get("updated").and_then(Value::as_i64), observed_at);
    object.insert(ACCOUNT_ID.to_owned(), Value::from(account_id));
    object.insert(UPDATED_AT.to_owned(), Value::from(updated));
    serde_json::to_string(&object).unwrap_or_else(|_| "{}".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn raw(v: Value) -> Box<RawValue> {
        serde_json::value::to_raw_value(&v).unwrap()
    }

    #[test]
    fn stamps_account_and_time() {
        let r: Value = serde_json::from_str(&stamp(
            &raw(json!({"id": "cus_1", "created": 5})),
            "acct_1",
            100,
        ))
        .unwrap();
        assert_eq!(
            r,
            json!({"id": "cus_1", "created": 5, "_account_id": "acct_1", "_updated_at": 100})
        );
        let r: Value =
            serde_json::from_str(&stamp(&raw(json!({"id": "x", "updated": 50})), "a", 100))
                .unwrap();
        assert_eq!(r["_updated_at"], 50, "an object's own updated time wins");
        let r: Value = serde_json::from_str(&stamp(&raw(json!({})), "a\"b", 1)).unwrap();
        assert_eq!(r, json!({"_account_id": "a\"b", "_updated_at": 1}));
        let t: Value = serde_json::from_str(&stamp_value(
            json!({"id": "cus_1", "_account_id": "stale"})
                .as_object()
                .unwrap()
                .clone(),
            "a",
            7,
            true,
        ))
        .unwrap();
        assert_eq!(
            t,
            json!({"id": "cus_1", "deleted": true, "_account_id": "a", "_updated_at": 7})
        );
        let u: Value = serde_json::from_str(&stamp_value(
            json!({"id": "x", "updated": 50})
                .as_object()
                .unwrap()
                .clone(),
            "a",
            100,
            false,
        ))
        .unwrap();
        assert_eq!(u["_updated_at"], 50);
    }

    #[test]
    fn head_reads_created_or_date() {
        let r = raw(json!({"id": "ii_1", "date": 9, "nested": {"created": 1}}));
        let h = Head::of(&r);
        assert_eq!((h.id.as_deref(), h.created()), (Some("ii_1"), Some(9)));
    }
}

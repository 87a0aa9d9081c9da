//! Stripe objects as records: the object plus `_account_id` and `_updated_at`. Objects stay
//! JSON text from the response to stdout; only the few fields paging needs are read.

use std::borrow::Cow;
use std::fmt::Write;

use serde_json::value::RawValue;
use sync_protocol::compact::compact_object_without;
use sync_protocol::peek::top_level_fields;

pub(crate) const ACCOUNT_ID: &str = "_account_id";
pub(crate) const UPDATED_AT: &str = "_updated_at";

/// The fields of an object the source looks at. Each is read on its own, so an unexpected type
/// in one (type drift in a new API version) does not hide the others.
#[derive(Debug, Default)]
pub(crate) struct Head<'a> {
    pub id: Option<Cow<'a, str>>,
    created: Option<i64>,
    /// Invoice items carry their creation time as `date`, which their list's created filter compares.
    date: Option<i64>,
    updated: Option<i64>,
}

impl Head<'_> {
    pub(crate) fn of(raw: &RawValue) -> Head<'_> {
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

    pub(crate) fn created(&self) -> Option<i64> {
        self.created.or(self.date)
    }
}

/// `_updated_at`: the object's own `updated` when it has one, else `observed_at`, the server
/// time it was read (a list page) or the event's creation time, so a later version always
/// carries a later or equal stamp.
fn updated_at(own: Option<i64>, observed_at: i64) -> i64 {
    own.filter(|u| *u > 0).unwrap_or(observed_at)
}

/// The record data for an object: its JSON text compacted to one line, with `_account_id` and
/// `_updated_at` added in front; every value keeps its spelling and every key its place.
pub(crate) fn stamp(raw: &RawValue, account_id: &str, observed_at: i64) -> String {
    stamped(raw, account_id, observed_at, false)
}

/// [`stamp`] for an object that no longer exists: `deleted: true` added in front.
pub(crate) fn tombstone(raw: &RawValue, account_id: &str, observed_at: i64) -> String {
    stamped(raw, account_id, observed_at, true)
}

fn stamped(raw: &RawValue, account_id: &str, observed_at: i64, deleted: bool) -> String {
    let updated = updated_at(Head::of(raw).updated, observed_at);
    let account = serde_json::to_string(account_id).unwrap_or_else(|_| "\"\"".to_owned());
    let text = raw.get();
    let mut out = String::with_capacity(text.len() + account.len() + 64);
    let _ = write!(
        out,
        "{{\"{ACCOUNT_ID}\":{account},\"{UPDATED_AT}\":{updated}"
    );
    if deleted {
        out.push_str(",\"deleted\":true");
    }
    // The fields written above replace any the object had of the same names.
    let replaced: &[&str] = if deleted {
        &[ACCOUNT_ID, UPDATED_AT, "deleted"]
    } else {
        &[ACCOUNT_ID, UPDATED_AT]
    };
    let prefix_len = out.len();
    compact_object_without(text, replaced, &mut out);
    // `out` now ends with the object's own `{…}`: splice its members after the prefix.
    match out.as_bytes().get(prefix_len) {
        Some(b'{') if out.as_bytes().get(prefix_len + 1) == Some(&b'}') => {
            out.truncate(prefix_len);
            out.push('}');
        }
        Some(b'{') => out.replace_range(prefix_len..=prefix_len, ","),
        // Not an object: nothing can be kept of it.
        _ => {
            out.truncate(prefix_len);
            out.push('}');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

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
    }

    #[test]
    fn pretty_text_becomes_one_compact_line_byte_for_byte() {
        let pretty = "{\r\n  \"id\" : \"cus_1\",\n\t\"amount\": 1.50,\n  \"big\": 12345678901234567890,\n  \"name\": \"caf\\u00e9 \\n\\\"x\\\" é\",\n  \"metadata\": {\n    \"b\": \"2\",\n    \"a\": \"1\"\n  },\n  \"_account_id\": \"stale\"\n}\n";
        let raw: Box<RawValue> = serde_json::from_str(pretty).unwrap();
        let line = stamp(&raw, "acct_1", 7);
        assert_eq!(
            line,
            "{\"_account_id\":\"acct_1\",\"_updated_at\":7,\"id\":\"cus_1\",\"amount\":1.50,\"big\":12345678901234567890,\"name\":\"caf\\u00e9 \\n\\\"x\\\" é\",\"metadata\":{\"b\":\"2\",\"a\":\"1\"}}"
        );
        let t = tombstone(
            &serde_json::from_str::<Box<RawValue>>("{ \"id\": \"prod_1\", \"deleted\": false }")
                .unwrap(),
            "a",
            9,
        );
        assert_eq!(
            t,
            "{\"_account_id\":\"a\",\"_updated_at\":9,\"deleted\":true,\"id\":\"prod_1\"}"
        );
    }

    #[test]
    fn head_reads_created_or_date() {
        let r = raw(json!({"id": "ii_1", "date": 9, "nested": {"created": 1}}));
        let h = Head::of(&r);
        assert_eq!((h.id.as_deref(), h.created()), (Some("ii_1"), Some(9)));
    }
}

//! Compact JSON text without parsing it: one pass over the bytes that drops whitespace outside
//! strings and keeps everything else byte for byte (string contents and escapes, number
//! spellings, key order). APIs answer pretty-printed JSON; a message line must be one line.
//!
//! The input must be valid JSON text (for example a [`serde_json::value::RawValue`]); the
//! functions do not validate it. Because JSON forbids raw control characters inside strings,
//! the output of valid input never contains a raw newline.

use memchr::memchr2;

/// Appends the compact form of `json` to `out`.
pub fn compact_into(json: &str, out: &mut String) {
    compact_object_without(json, &[], out);
}

/// The compact form of `json`.
pub fn compact(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    compact_into(json, &mut out);
    out
}

/// Appends the compact form of `json` to `out`, leaving out the top-level members of an object
/// whose keys are in `skip` (their values included). Keys are compared as written; a key
/// spelled with escapes is decoded first. For anything but an object, `skip` has no effect.
pub fn compact_object_without(json: &str, skip: &[&str], out: &mut String) {
    let bytes = json.as_bytes();
    out.reserve(bytes.len());
    let mut depth = 0usize;
    // In the top-level object: whether the next string is a key, how many members were kept
    // (a comma is written before each kept member but the first), and whether the current
    // member is being left out.
    let mut top_is_object = false;
    let mut expect_key = false;
    let mut kept = 0usize;
    let mut skipping = false;
    // Start of the bytes not yet copied.
    let mut run = 0usize;
    let mut i = 0usize;
    let copy = |out: &mut String, from: usize, to: usize, skipping: bool| {
        if !skipping && from < to {
            out.push_str(&json[from..to]);
        }
    };
    while i < bytes.len() {
        match bytes[i] {
            b' ' | b'\t' | b'\n' | b'\r' => {
                copy(out, run, i, skipping);
                i += 1;
                run = i;
            }
            b'"' => {
                let end = string_end(bytes, i);
                if depth == 1 && expect_key {
                    expect_key = false;
                    copy(out, run, i, skipping);
                    run = i;
                    if is_skipped(&json[i..end], skip) {
                        skipping = true;
                    } else {
                        if kept > 0 {
                            out.push(',');
                        }
                        kept += 1;
                    }
                }
                i = end;
            }
            b'{' | b'[' => {
                depth += 1;
                if depth == 1 {
                    top_is_object = bytes[i] == b'{';
                }
                expect_key = depth == 1 && top_is_object;
                i += 1;
            }
            b'}' | b']' => {
                if depth == 1 && skipping {
                    skipping = false;
                    run = i;
                }
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b',' if depth == 1 && top_is_object => {
                copy(out, run, i, skipping);
                skipping = false;
                expect_key = true;
                i += 1;
                run = i;
            }
            _ => i += 1,
        }
    }
    copy(out, run, bytes.len(), skipping);
}

/// The index just past the string that starts at `start` (an opening quote).
fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while let Some(at) = memchr2(b'"', b'\\', &bytes[i..]) {
        i += at;
        if bytes[i] == b'\\' {
            i += 2;
        } else {
            return i + 1;
        }
    }
    bytes.len()
}

fn is_skipped(quoted_key: &str, skip: &[&str]) -> bool {
    if skip.is_empty() {
        return false;
    }
    let inner = &quoted_key[1..quoted_key.len().saturating_sub(1).max(1)];
    if !inner.contains('\\') {
        return skip.contains(&inner);
    }
    serde_json::from_str::<String>(quoted_key).is_ok_and(|k| skip.contains(&k.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_whitespace_outside_strings_only() {
        let pretty = "{\r\n  \"a\" :\t[ 1 , 2.50e+3 , -0 ],\n  \"s\": \" x\\ty \\\" \\\\ \\u00e9 é \",\n  \"o\": { }\n}\n";
        assert_eq!(
            compact(pretty),
            "{\"a\":[1,2.50e+3,-0],\"s\":\" x\\ty \\\" \\\\ \\u00e9 é \",\"o\":{}}"
        );
        assert_eq!(compact("  \"just a string\" "), "\"just a string\"");
        assert_eq!(compact("{}"), "{}");
        assert_eq!(compact("[\n]"), "[]");
    }

    #[test]
    fn skips_top_level_members_only() {
        let skip = ["deleted", "_account_id"];
        let cases = [
            (
                "{\"a\": 1, \"deleted\": false, \"b\": {\"deleted\": true}}",
                "{\"a\":1,\"b\":{\"deleted\":true}}",
            ),
            ("{ \"deleted\" : [1, {\"x\": 2}] , \"b\": 2}", "{\"b\":2}"),
            ("{\"a\": 1, \"deleted\": null}", "{\"a\":1}"),
            ("{\"deleted\": null}", "{}"),
            (
                "{\"deleted\": 1, \"_account_id\": \"x\", \"c\": 3, \"d\": 4}",
                "{\"c\":3,\"d\":4}",
            ),
            (
                "{\"a\":1,\"delet\\u0065d\":2,\"b\":\"deleted\"}",
                "{\"a\":1,\"b\":\"deleted\"}",
            ),
            ("[{\"deleted\": 1}]", "[{\"deleted\":1}]"),
            ("[\"deleted\", \"deleted\"]", "[\"deleted\",\"deleted\"]"),
        ];
        for (input, want) in cases {
            let mut out = String::new();
            compact_object_without(input, &skip, &mut out);
            assert_eq!(out, want, "{input}");
            serde_json::from_str::<serde_json::Value>(&out).unwrap();
        }
    }

    #[test]
    fn appends_to_what_is_there() {
        let mut out = String::from("{\"x\":1,");
        compact_object_without("{\"deleted\":1,\"y\": 2}", &["deleted"], &mut out);
        assert_eq!(out, "{\"x\":1,{\"y\":2}");
        let mut out = String::new();
        compact_object_without("{ \"a\" : 1 , \"deleted\" : 2 }", &["deleted"], &mut out);
        assert_eq!(out, "{\"a\":1}");
    }
}

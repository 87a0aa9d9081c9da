//! Stripe's response layout: JSON indented by two spaces, `"key": value`, `{}` and `[]` for
//! empty containers, and a trailing newline. Bodies are built compact; this re-indents them in
//! one pass over the bytes, keeping every key, string and number as it is.

use bytes::Bytes;

/// The pretty form of compact JSON text. Whitespace already outside strings is dropped first,
/// so any valid JSON comes out in Stripe's layout.
pub(crate) fn pretty(json: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(json.len() + json.len() / 2 + 64);
    pretty_into(&mut out, json, 0);
    out.push(b'\n');
    Bytes::from(out)
}

/// The pretty form of a value that sits `depth` levels deep in a larger body (an object in a
/// list's `data`), without a trailing newline: a list can then be laid out by concatenation.
pub(crate) fn pretty_at(json: &[u8], depth: usize) -> Bytes {
    let mut out = Vec::with_capacity(json.len() + json.len() / 2 + 64);
    pretty_into(&mut out, json, depth);
    Bytes::from(out)
}

fn pretty_into(out: &mut Vec<u8>, json: &[u8], mut depth: usize) {
    let mut i = 0usize;
    let newline = |out: &mut Vec<u8>, depth: usize| {
        out.push(b'\n');
        out.resize(out.len() + 2 * depth, b' ');
    };
    while i < json.len() {
        let b = json[i];
        match b {
            b'"' => {
                let end = string_end(json, i);
                out.extend_from_slice(&json[i..end]);
                i = end;
                continue;
            }
            b'{' | b'[' => {
                let close = if b == b'{' { b'}' } else { b']' };
                match next_significant(json, i + 1) {
                    Some(at) if json[at] == close => {
                        out.push(b);
                        out.push(close);
                        i = at + 1;
                        continue;
                    }
                    _ => {
                        out.push(b);
                        depth += 1;
                        newline(out, depth);
                    }
                }
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                newline(out, depth);
                out.push(b);
            }
            b',' => {
                out.push(b);
                newline(out, depth);
            }
            b':' => out.extend_from_slice(b": "),
            b' ' | b'\t' | b'\n' | b'\r' => {}
            _ => out.push(b),
        }
        i += 1;
    }
}

fn next_significant(json: &[u8], from: usize) -> Option<usize> {
    (from..json.len()).find(|&i| !matches!(json[i], b' ' | b'\t' | b'\n' | b'\r'))
}

/// The index just past the string starting at `start` (its opening quote).
fn string_end(json: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < json.len() {
        match json[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    json.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn matches_stripes_layout() {
        let compact = br#"{"id":"cus_1","object":"customer","metadata":{},"tags":[],"list":{"data":[{"a":1},{"b":"x, y: {z}"}],"has_more":false},"n":[1,2.50]}"#;
        let want = "{\n  \"id\": \"cus_1\",\n  \"object\": \"customer\",\n  \"metadata\": {},\n  \"tags\": [],\n  \"list\": {\n    \"data\": [\n      {\n        \"a\": 1\n      },\n      {\n        \"b\": \"x, y: {z}\"\n      }\n    ],\n    \"has_more\": false\n  },\n  \"n\": [\n    1,\n    2.50\n  ]\n}\n";
        assert_eq!(std::str::from_utf8(&pretty(compact)).unwrap(), want);
    }

    #[test]
    fn same_value_and_serde_layout_for_any_object() {
        let v = json!({"a": {"b": [1, {"c": "q\"uo\\te"}], "e": {}}, "f": [], "g": null, "u": "é\u{2028}"});
        let compact = serde_json::to_vec(&v).unwrap();
        let p = pretty(&compact);
        assert_eq!(serde_json::from_slice::<Value>(&p).unwrap(), v);
        assert_eq!(
            std::str::from_utf8(&p).unwrap(),
            format!("{}\n", serde_json::to_string_pretty(&v).unwrap())
        );
        assert_eq!(&pretty(b"{}")[..], b"{}\n");
    }
}

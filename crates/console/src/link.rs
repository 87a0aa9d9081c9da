//! Links built from data (stream names, pipeline ids): every path segment and query value is
//! percent-encoded, so a name holding `/`, `?`, `#` or a space still links to its own page.

/// `text` with every byte but RFC 3986's unreserved characters percent-encoded: safe as one
/// path segment and as one query value.
pub fn component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The explorer's page of a stream, keeping `suffix` (an encoded `?destination=…` or nothing).
pub fn table_page(stream: &str, suffix: &str) -> String {
    format!("/explorer/tables/{}{suffix}", component(stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_characters_are_encoded() {
        for name in [
            "a/b",
            "c?d=1&e",
            "f#g",
            "h i",
            "j%k",
            "é",
            "plain_name-1.x~",
        ] {
            assert!(
                !component(name).contains(['/', '?', '#', ' ', '&', '=']),
                "{name}"
            );
        }
        assert_eq!(component("plain_name-1.x~"), "plain_name-1.x~");
        assert_eq!(
            table_page("a/b", "?destination=x"),
            "/explorer/tables/a%2Fb?destination=x"
        );
    }
}

//! Links built from data (stream names, pipeline ids): every path segment and query value is
//! percent-encoded, so a name holding `/`, `?`, `#` or a space still links to its own page.

/// `text` with every byte but RFC 3986's unreserved characters percent-encoded: safe as one
/// path segment and as one query value.
pub(crate) fn component(text: &str) -> String {
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

/// A pipeline's page.
pub(crate) fn pipeline_page(id: &str) -> String {
    format!("/console/pipelines/{}", component(id))
}

/// A pipeline's edit form.
pub(crate) fn pipeline_edit(id: &str) -> String {
    format!("{}/edit", pipeline_page(id))
}

/// The explorer's page of a stream, keeping `suffix` (an encoded `?destination=…` or nothing).
pub(crate) fn table_page(stream: &str, suffix: &str) -> String {
    format!("/explorer/tables/{}{suffix}", component(stream))
}

/// The SQL page running `sql` on the destination labelled `destination`.
pub(crate) fn sql_page(sql: &str, destination: Option<&str>) -> String {
    with_sql("/explorer/sql", sql, destination)
}

/// The CSV of `sql`'s rows on the destination labelled `destination`.
pub(crate) fn sql_csv(sql: &str, destination: Option<&str>) -> String {
    with_sql("/explorer/sql.csv", sql, destination)
}

fn with_sql(path: &str, sql: &str, destination: Option<&str>) -> String {
    let mut href = format!("{path}?sql={}", component(sql));
    if let Some(label) = destination {
        href.push_str(&format!("&destination={}", component(label)));
    }
    href
}

/// `text` with each `%XX` decoded once (bytes that are not UTF-8 become U+FFFD); a `%` not
/// followed by two hex digits stays as it is.
pub(crate) fn decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |at: usize| bytes.get(at).and_then(|b| (*b as char).to_digit(16));
        match (bytes[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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

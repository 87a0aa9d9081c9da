//! Postgres identifiers and literals built from untrusted names (stream and property names come
//! from a catalog): always quoted, NUL-free, and at most 63 bytes without collisions.

use sha2::{Digest, Sha256};

/// Postgres truncates identifiers longer than this many bytes.
pub const MAX_IDENT_BYTES: usize = 63;

/// Eight hex digits of a stable hash of `name`.
pub fn short_hash(name: &str) -> String {
    let digest = Sha256::digest(name.as_bytes());
    digest.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

/// The name as it will exist in Postgres: unchanged when it fits, otherwise cut at a character
/// boundary and suffixed with a hash of the whole name, so two long names never collide.
pub fn fit(name: &str) -> String {
    let name = name.replace('\0', "");
    if name.len() <= MAX_IDENT_BYTES {
        return name;
    }
    let suffix = format!("_{}", short_hash(&name));
    let mut cut = MAX_IDENT_BYTES - suffix.len();
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{suffix}", &name[..cut])
}

/// A quoted Postgres identifier: `"a""b"` for `a"b`; NUL characters, which Postgres rejects,
/// are dropped.
pub fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('\0', "").replace('"', "\"\""))
}

/// `schema.table`, both quoted.
pub fn qualified(schema: &str, table: &str) -> String {
    format!("{}.{}", quote(schema), quote(table))
}

/// A quoted string literal (standard_conforming_strings is on by default since Postgres 9.1;
/// an E'' literal would treat backslashes differently, so none is used).
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\0', "").replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_kept() {
        assert_eq!(fit("customers"), "customers");
        assert_eq!(fit(&"x".repeat(63)), "x".repeat(63));
    }

    #[test]
    fn long_names_fit_and_do_not_collide() {
        let a = format!("{}a", "x".repeat(80));
        let b = format!("{}b", "x".repeat(80));
        assert!(fit(&a).len() <= MAX_IDENT_BYTES);
        assert_ne!(fit(&a), fit(&b));
        // Multi-byte characters are never split: the cut keeps whole ones before the suffix.
        let unicode = "é".repeat(40);
        let fitted = fit(&unicode);
        assert!(fitted.len() <= MAX_IDENT_BYTES);
        let (kept, suffix) = fitted.rsplit_once('_').unwrap();
        assert_eq!(suffix, short_hash(&unicode));
        assert_eq!(kept, "é".repeat(kept.chars().count()));
        assert_eq!(kept.chars().count(), (MAX_IDENT_BYTES - 9) / 2);
    }

    #[test]
    fn quoting_escapes() {
        assert_eq!(quote(r#"a"b"#), r#""a""b""#);
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(quote("a\0b"), "\"ab\"");
    }
}

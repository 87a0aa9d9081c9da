//! API keys: reading one from `Authorization` (Bearer, or Basic with the key as user, like
//! Stripe), telling test from live mode, and masking it in error messages.

use serde::{Deserialize, Serialize};

/// Test or live mode; each has its own data set per account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Keys not starting `sk_live_` or `rk_live_`: test-mode data.
    #[default]
    Test,
    /// `sk_live_…` and `rk_live_…` keys: live-mode data, kept apart from test mode's.
    Live,
}

impl Mode {
    /// `sk_live_…`/`rk_live_…` are live; every other accepted key is test (the one rule, in
    /// stripe-catalog).
    pub fn of_key(key: &str) -> Mode {
        match stripe_catalog::KeyMode::of(key) {
            stripe_catalog::KeyMode::Live => Mode::Live,
            stripe_catalog::KeyMode::Test => Mode::Test,
        }
    }

    /// The `livemode` value objects of this mode carry.
    pub fn livemode(self) -> bool {
        self == Mode::Live
    }
}

/// The key in an `Authorization` header value, if it carries one.
pub(crate) fn key_from_authorization(value: &str) -> Option<String> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.to_string()).filter(|k| !k.is_empty());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = String::from_utf8(decode_base64(rest)?).ok()?;
        let user = decoded
            .split_once(':')
            .map_or(decoded.as_str(), |(user, _)| user);
        return Some(user.to_string()).filter(|k| !k.is_empty());
    }
    None
}

/// `sk_test_abcdefgh1234` → `sk_test_********1234`, as Stripe shows keys it rejects.
pub(crate) fn mask_key(key: &str) -> String {
    let prefix_len = [
        "sk_test_", "sk_live_", "rk_test_", "rk_live_", "pk_test_", "pk_live_",
    ]
    .iter()
    .find(|p| key.starts_with(*p))
    .map_or(0, |p| p.len());
    let chars: Vec<char> = key.chars().collect();
    let prefix: String = chars.iter().take(prefix_len).collect();
    let rest = &chars[prefix_len.min(chars.len())..];
    let shown = if rest.len() > 4 { 4 } else { rest.len() / 2 };
    let hidden = rest.len() - shown;
    let tail: String = rest[hidden..].iter().collect();
    format!("{prefix}{}{tail}", "*".repeat(hidden.max(1)))
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32)
    };
    let bytes: Vec<u8> = text.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        if chunk.len() == 1 {
            return None;
        }
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= value(c)? << (18 - 6 * i);
        }
        let produced = chunk.len() - 1;
        out.extend_from_slice(&acc.to_be_bytes()[1..1 + produced]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bearer_and_basic() {
        assert_eq!(
            key_from_authorization("Bearer sk_test_fake").as_deref(),
            Some("sk_test_fake")
        );
        // base64("sk_test_fake:")
        assert_eq!(
            key_from_authorization("Basic c2tfdGVzdF9mYWtlOg==").as_deref(),
            Some("sk_test_fake")
        );
        assert_eq!(key_from_authorization("Basic !!!"), None);
        assert_eq!(key_from_authorization("Token x"), None);
        assert_eq!(key_from_authorization("Bearer"), None);
    }

    #[test]
    fn masks_keys() {
        assert_eq!(mask_key("sk_test_abcdefxyz1"), "sk_test_******xyz1");
        assert_eq!(mask_key("sk_test_xyz"), "sk_test_**z");
        assert_eq!(mask_key("garbage"), "***bage");
        assert_eq!(mask_key(""), "*");
    }

    #[test]
    fn modes() {
        assert_eq!(Mode::of_key("rk_live_x"), Mode::Live);
        assert_eq!(Mode::of_key("sk_test_x"), Mode::Test);
    }
}

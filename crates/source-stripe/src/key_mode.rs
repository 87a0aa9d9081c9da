//! Whether a key reads live or test data: the one rule, from its prefix.

/// Live keys get Stripe's live limits; test (sandbox) keys the lower test limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyMode {
    /// `sk_live_…`, `rk_live_…`.
    Live,
    /// Any other key.
    Test,
}

impl KeyMode {
    /// The mode of an API key.
    pub fn of(api_key: &str) -> KeyMode {
        if api_key.starts_with("sk_live_") || api_key.starts_with("rk_live_") {
            KeyMode::Live
        } else {
            KeyMode::Test
        }
    }
}

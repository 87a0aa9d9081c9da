//! Whether an API key reads live or test data: the one rule (by its prefix, as Stripe's keys
//! are `sk_live_…`, `rk_live_…`, `sk_test_…`, `rk_test_…`), for the source, the engine's
//! checkpoint identity and the simulator alike.

/// Live keys get Stripe's live data and limits; test (sandbox) keys their own.
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

    /// `live` or `test`.
    pub fn name(self) -> &'static str {
        match self {
            KeyMode::Live => "live",
            KeyMode::Test => "test",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::KeyMode;

    #[test]
    fn only_live_prefixes_are_live() {
        for key in ["sk_live_1", "rk_live_1"] {
            assert_eq!(KeyMode::of(key), KeyMode::Live, "{key}");
        }
        for key in ["sk_test_1", "rk_test_1", "sk_test_live_1", "x_live_1"] {
            assert_eq!(KeyMode::of(key), KeyMode::Test, "{key}");
        }
    }
}

//! Stripe-looking identifiers: the prefix of each object type, random base62 suffixes, and a
//! stable hash to derive independent seeds from names.

use rand::{Rng, RngExt};

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const UPPER_ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// A random string of `len` characters from `alphabet`.
pub(crate) fn random_chars(rng: &mut impl Rng, alphabet: &[u8], len: usize) -> String {
    (0..len)
        .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
        .collect()
}

pub(crate) fn base62(rng: &mut impl Rng, len: usize) -> String {
    random_chars(rng, BASE62, len)
}

/// FNV-1a over the parts (with a separator), stable across Rust releases unlike `DefaultHasher`,
/// so seeds derived from names do not change with the toolchain.
pub(crate) fn stable_hash(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in part.iter().chain(&[0xff]) {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// How the ids of one object type look.
#[derive(Debug, Clone)]
pub(crate) enum IdShape {
    Random {
        prefix: String,
        len: usize,
        alphabet: &'static [u8],
    },
    /// Ids from a fixed vocabulary (country specs, report types); a numeric suffix once exhausted.
    Named(&'static [&'static str]),
}

const COUNTRIES: &[&str] = &[
    "US", "GB", "CA", "AU", "DE", "FR", "IE", "NL", "ES", "IT", "SE", "DK", "NO", "FI", "BE", "AT",
    "CH", "PT", "PL", "CZ", "JP", "SG", "HK", "NZ", "MX", "BR", "IN", "AE", "TH", "MY",
];

const REPORT_TYPES: &[&str] = &[
    "balance.summary.1",
    "balance_change_from_activity.itemized.1",
    "balance_change_from_activity.summary.1",
    "payouts.itemized.1",
    "payouts.summary.1",
    "payout_reconciliation.itemized.5",
    "payout_reconciliation.summary.1",
    "ending_balance_reconciliation.itemized.4",
    "ending_balance_reconciliation.summary.1",
    "activity.itemized.2",
    "activity.summary.1",
    "connected_account_balance.summary.1",
    "tax.transactions.itemized.2",
    "card_payments_fees.transaction_level.2",
    "connect_collection_transfers.itemized.1",
];

impl IdShape {
    /// The shape for an object type, from a table of known prefixes or else the fixture's id
    /// (`cus_QXg1o8vcGmoR32` → `cus_` + 14 characters). Live mode swaps `_test_` for `_live_`
    /// where the prefix carries the mode (checkout sessions, entitlements).
    pub(crate) fn for_object(object: &str, template_id: Option<&str>, livemode: bool) -> IdShape {
        let fixed = |prefix: &str, len: usize| IdShape::Random {
            prefix: prefix.to_string(),
            len,
            alphabet: BASE62,
        };
        let shape = match object {
            "country_spec" => return IdShape::Named(COUNTRIES),
            "reporting.report_type" => return IdShape::Named(REPORT_TYPES),
            "coupon" => IdShape::Random {
                prefix: String::new(),
                len: 8,
                alphabet: UPPER_ALNUM,
            },
            "tax_code" => IdShape::Random {
                prefix: "txcd_".into(),
                len: 8,
                alphabet: b"0123456789",
            },
            "account" | "v2.core.account" => fixed("acct_", 16),
            "line_item" => fixed("il_", 24),
            "event" => fixed("evt_", 24),
            "billing.alert" => fixed("alrt_", 24),
            "billing.credit_grant" => fixed("credgr_", 24),
            "billing.credit_balance_transaction" => fixed("cbtxn_", 24),
            "billing.meter" => fixed("mtr_", 24),
            "billing.feedback_option" => fixed("bfo_", 24),
            "invoice_rendering_template" => fixed("inrtem_", 24),
            "invoice_payment" => fixed("inpay_", 24),
            "payment_record" => fixed("pr_", 24),
            "forwarding.request" => fixed("fwdreq_", 24),
            "apps.install" => fixed("appinst_", 24),
            "product_catalog.trial_offer" => fixed("pcto_", 24),
            "three_d_secure.authentication" => fixed("threeds_", 24),
            "v2.core.event_destination" => fixed("ed_", 24),
            _ => match template_id.and_then(split_id) {
                Some((prefix, suffix_len)) => fixed(prefix, suffix_len),
                None => fixed("obj_", 14),
            },
        };
        match shape {
            IdShape::Random {
                prefix,
                len,
                alphabet,
            } if livemode => IdShape::Random {
                prefix: prefix.replace("_test_", "_live_"),
                len,
                alphabet,
            },
            other => other,
        }
    }

    /// The `n`-th id (0-based) of this shape; `Named` shapes are positional, the rest random.
    pub(crate) fn make(&self, rng: &mut impl Rng, n: usize) -> String {
        match self {
            IdShape::Random {
                prefix,
                len,
                alphabet,
            } => {
                let mut id = prefix.clone();
                id.push_str(&random_chars(rng, alphabet, *len));
                id
            }
            IdShape::Named(names) => {
                let name = names[n % names.len()];
                match n / names.len() {
                    0 => name.to_string(),
                    round => format!("{name}{round}"),
                }
            }
        }
    }
}

/// `cs_test_a1YS…` → (`cs_test_`, suffix length); `None` when the template id is a placeholder.
fn split_id(id: &str) -> Option<(&str, usize)> {
    let cut = id.rfind('_')? + 1;
    let (prefix, suffix) = id.split_at(cut);
    let plausible = suffix.len() >= 10 && suffix.bytes().all(|b| b.is_ascii_alphanumeric());
    plausible.then_some((prefix, suffix.len().min(64)))
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn shapes_follow_the_fixture_prefix() {
        let mut rng = StdRng::seed_from_u64(1);
        let id =
            IdShape::for_object("customer", Some("cus_QXg1o8vcGmoR32"), false).make(&mut rng, 0);
        assert!(id.starts_with("cus_") && id.len() == 18, "{id}");
        let id = IdShape::for_object(
            "checkout.session",
            Some("cs_test_a1YS1URlnyQCN5fUUduORoQ7Pw41PJqDWkIVQCpJPqkfIhd6tVY8XB1OLY"),
            true,
        )
        .make(&mut rng, 0);
        assert!(id.starts_with("cs_live_"), "{id}");
        let id = IdShape::for_object("billing.alert", Some("obj_123"), false).make(&mut rng, 0);
        assert!(id.starts_with("alrt_"), "{id}");
        let id = IdShape::for_object("whatever", Some("obj_123"), false).make(&mut rng, 0);
        assert!(id.starts_with("obj_"), "{id}");
        assert_eq!(
            IdShape::for_object("country_spec", Some("US"), false).make(&mut rng, 0),
            "US"
        );
    }

    #[test]
    fn stable_hash_separates_parts() {
        assert_ne!(stable_hash(&[b"ab", b"c"]), stable_hash(&[b"a", b"bc"]));
        assert_eq!(stable_hash(&[b"customers"]), stable_hash(&[b"customers"]));
    }
}

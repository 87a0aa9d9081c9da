//! The platform account and its connected accounts: ids derived from the seed, and the
//! `account` objects `/v1/account` (and the platform's `/v1/accounts`) return.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};

use crate::fixtures;
use crate::ids::{base62, stable_hash};
use crate::timeline::HISTORY_START;

/// The id of the platform (`index == None`) or of the `index`-th connected account.
pub(crate) fn account_id(seed: u64, index: Option<usize>) -> String {
    let label = match index {
        None => "platform".to_string(),
        Some(i) => format!("connected-{i}"),
    };
    let mut rng = StdRng::seed_from_u64(stable_hash(&[&seed.to_le_bytes(), label.as_bytes()]));
    format!("acct_1{}", base62(&mut rng, 15))
}

/// The `account` object of one account.
pub(crate) fn account_object(seed: u64, id: &str, index: Option<usize>) -> Value {
    let mut rng = StdRng::seed_from_u64(stable_hash(&[
        &seed.to_le_bytes(),
        id.as_bytes(),
        b"object",
    ]));
    let mut account = fixtures::fixture("account")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let (name, kind, country, currency) = match index {
        None => ("Fake Platform Inc.".to_string(), "standard", "US", "usd"),
        Some(i) => {
            let countries = [
                ("US", "usd"),
                ("GB", "gbp"),
                ("FR", "eur"),
                ("DE", "eur"),
                ("CA", "cad"),
            ];
            let (country, currency) = countries[i % countries.len()];
            let kind = ["express", "custom", "standard"][i % 3];
            (format!("Connected Shop {}", i + 1), kind, country, currency)
        }
    };
    let created = HISTORY_START - rng.random_range(0..86_400 * 365);
    let slug: String = name
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    if let Value::Object(a) = &mut account {
        a.insert("id".into(), json!(id));
        a.insert("object".into(), json!("account"));
        a.insert("created".into(), json!(created));
        a.insert("email".into(), json!(format!("billing@{slug}.example.com")));
        a.insert("type".into(), json!(kind));
        a.insert("country".into(), json!(country));
        a.insert("default_currency".into(), json!(currency));
        a.insert("charges_enabled".into(), json!(true));
        a.insert("payouts_enabled".into(), json!(true));
        a.insert("details_submitted".into(), json!(true));
        a.insert("metadata".into(), json!({}));
        if let Some(Value::Object(profile)) = a.get_mut("business_profile") {
            profile.insert("name".into(), json!(name));
            profile.insert("url".into(), json!(format!("https://{slug}.example.com")));
        }
        if let Some(Value::Object(settings)) = a.get_mut("settings")
            && let Some(Value::Object(dashboard)) = settings.get_mut("dashboard")
        {
            dashboard.insert("display_name".into(), json!(name));
        }
        if let Some(Value::Object(external)) = a.get_mut("external_accounts") {
            external.insert(
                "url".into(),
                json!(format!("/v1/accounts/{id}/external_accounts")),
            );
        }
    }
    account
}

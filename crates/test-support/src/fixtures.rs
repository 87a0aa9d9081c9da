//! Data shared by benchmarks and tests.

use serde_json::{Value, json};

/// The five streams the CPU and side-by-side benchmarks sync: the common set, from small
/// objects (customers, products) to large ones (charges, payment intents, invoices).
pub const FIVE_STREAMS: [&str; 5] = [
    "customers",
    "products",
    "charges",
    "payment_intents",
    "invoices",
];

/// A realistic Stripe customer (about 1 KB of JSON) numbered `i`, as source-stripe emits it
/// (with `_account_id` and `_updated_at`); version `v` > 0 renames it and moves `_updated_at`
/// on.
pub fn customer_version(i: usize, v: i64) -> Value {
    let name = if v == 0 {
        format!("Person Number {i}")
    } else {
        format!("Person Number {i}, renamed {v}")
    };
    json!({
        "id": format!("cus_{i:014}"),
        "object": "customer",
        "address": {"city": "San Francisco", "country": "US", "line1": format!("{i} Market St"), "line2": null, "postal_code": "94103", "state": "CA"},
        "balance": (i % 1000) as i64 - 500,
        "created": 1_600_000_000 + i as i64 * 17,
        "currency": "usd",
        "default_source": null,
        "delinquent": i.is_multiple_of(11),
        "description": format!("Customer number {i}, imported from the legacy billing system"),
        "discount": null,
        "email": format!("person{i}@example.com"),
        "invoice_prefix": format!("{i:08X}"),
        "invoice_settings": {"custom_fields": null, "default_payment_method": format!("pm_{i:020}"), "footer": null, "rendering_options": null},
        "livemode": false,
        "metadata": {"plan": "pro", "source": "import", "tier": format!("{}", i % 5)},
        "name": name,
        "next_invoice_sequence": i % 40,
        "phone": "+15555550123",
        "preferred_locales": ["en-US"],
        "shipping": null,
        "tax_exempt": "none",
        "test_clock": null,
        "_account_id": "acct_1Nv0FGQ9RKHgCVdK",
        "_updated_at": 1_700_000_000 + i as i64 + v * 1000,
    })
}

/// Writes the catalog a source's `discover` prints for `config`, cut to `streams`, to a file of
/// its own; returns the file's path (for `read --catalog`).
pub fn discovered_catalog_file(source: &str, config: &Value, streams: &[&str]) -> String {
    let out = std::process::Command::new(source)
        .args(["discover", "--config", &config.to_string()])
        .output()
        .unwrap_or_else(|e| panic!("{source} discover: {e}"));
    let mut catalog: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{source} discover printed no catalog ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let all = catalog["catalog"]["streams"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    catalog["catalog"]["streams"] = Value::Array(
        all.into_iter()
            .filter(|s| s["name"].as_str().is_some_and(|n| streams.contains(&n)))
            .collect(),
    );
    let path = std::env::temp_dir().join(format!(
        "catalog-{}-{}.json",
        std::process::id(),
        streams.join("-")
    ));
    std::fs::write(&path, catalog.to_string()).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    path.display().to_string()
}

//! Realistic, varied values for the fields most objects share (names, emails, descriptions,
//! amounts, currencies, statuses, metadata), so a data set is not 10,000 copies of one fixture.

use rand::RngExt;
use rand::rngs::StdRng;
use serde_json::{Map, Value, json};
use stripe_catalog::Resource;

use crate::fixtures;

const FIRST_NAMES: &[&str] = &[
    "Ada",
    "Alan",
    "Grace",
    "Linus",
    "Margaret",
    "Dennis",
    "Barbara",
    "Ken",
    "Frances",
    "John",
    "Radia",
    "Tim",
    "Hedy",
    "Edsger",
    "Katherine",
    "Donald",
    "Sophie",
    "Guido",
    "Anita",
    "Bjarne",
    "Mary",
    "Niklaus",
    "Shafi",
    "Leslie",
    "Joan",
    "Claude",
    "Karen",
    "Yukihiro",
    "Lynn",
    "Tony",
    "Élodie",
    "José",
    "Zoë",
    "Søren",
    "Łukasz",
    "Aiko",
    "Chidi",
    "Priya",
    "Mateo",
    "Ingrid",
];
const LAST_NAMES: &[&str] = &[
    "Lovelace",
    "Turing",
    "Hopper",
    "Torvalds",
    "Hamilton",
    "Ritchie",
    "Liskov",
    "Thompson",
    "Allen",
    "McCarthy",
    "Perlman",
    "Berners-Lee",
    "Lamarr",
    "Dijkstra",
    "Johnson",
    "Knuth",
    "Wilson",
    "van Rossum",
    "Borg",
    "Stroustrup",
    "Shaw",
    "Wirth",
    "Goldwasser",
    "Lamport",
    "Clarke",
    "Shannon",
    "Spärck Jones",
    "Matsumoto",
    "Conway",
    "Hoare",
    "O'Neil",
    "García",
    "Müller",
    "Nakamura",
    "Okafor",
    "Patel",
    "Rossi",
    "Andersen",
    "Kowalski",
    "Dubois",
];
const EMAIL_DOMAINS: &[&str] = &[
    "example.com",
    "example.org",
    "example.net",
    "mail.example.com",
];
const PLAN_WORDS: &[&str] = &[
    "Starter",
    "Basic",
    "Pro",
    "Team",
    "Business",
    "Enterprise",
    "Premium",
    "Growth",
    "Scale",
    "Plus",
];
const PRODUCT_WORDS: &[&str] = &[
    "Plan",
    "Seat",
    "Subscription",
    "License",
    "Add-on",
    "Support",
    "Storage",
    "API Access",
    "Workspace",
    "Bundle",
];
const DESCRIPTIONS: &[&str] = &[
    "Imported from the legacy billing system",
    "Annual contract, invoiced monthly",
    "Upgraded from the free tier",
    "Referred by a partner",
    "Enterprise agreement — net 30",
    "Café order #{n}",
    "Monthly usage for account {n}",
    "Seats for the design team",
    "Renewal with 10% loyalty discount",
    "Trial converted to paid",
    "Order {n} — shipped to warehouse B",
    "Support retainer Q{q}",
];
const CITIES: &[(&str, &str, &str)] = &[
    ("San Francisco", "US", "94103"),
    ("New York", "US", "10001"),
    ("London", "GB", "EC1A 1BB"),
    ("Paris", "FR", "75002"),
    ("Berlin", "DE", "10115"),
    ("Dublin", "IE", "D02 X285"),
    ("Toronto", "CA", "M5H 2N2"),
    ("Sydney", "AU", "2000"),
    ("Tokyo", "JP", "100-0001"),
    ("São Paulo", "BR", "01310-100"),
];
const AMOUNT_FIELDS: &[&str] = &[
    "amount",
    "amount_due",
    "amount_total",
    "amount_subtotal",
    "amount_captured",
    "amount_received",
    "unit_amount",
    "subtotal",
    "subtotal_excluding_tax",
    "total",
    "total_excluding_tax",
];
const SUCCESS_STATUSES: &[&str] = &[
    "succeeded",
    "paid",
    "active",
    "available",
    "complete",
    "open",
];

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

fn nullable(resource: &Resource, field: &str) -> bool {
    fixtures::property_types(resource, field).contains(&"null")
}

/// Some fixtures fill optional sub-objects with placeholders (`"id": "obj_123"`, a discount
/// that starts in 1973); a real object mostly has none there.
pub(crate) fn null_placeholders(object: &mut Map<String, Value>, resource: &Resource) {
    for (name, value) in object.iter_mut() {
        if value.get("id").and_then(Value::as_str) == Some("obj_123") && nullable(resource, name) {
            *value = Value::Null;
        }
    }
}

/// Varies the common fields of a freshly templated object in place. `serial` numbers the object
/// within its stream (used in texts, so values stay unique-ish and readable).
pub(crate) fn vary(
    object: &mut Map<String, Value>,
    resource: &Resource,
    rng: &mut StdRng,
    serial: usize,
) {
    let kind = resource.object.as_str();
    null_placeholders(object, resource);
    let first = *pick(rng, FIRST_NAMES);
    let last = *pick(rng, LAST_NAMES);
    let person_like = matches!(kind, "customer" | "issuing.cardholder");

    if object.contains_key("email") && (person_like || rng.random_bool(0.4)) {
        let local: String = format!("{first}.{last}")
            .to_lowercase()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
            .collect();
        let email = format!("{local}{serial}@{}", pick(rng, EMAIL_DOMAINS));
        object.insert("email".into(), Value::String(email));
    }
    if object.contains_key("name") {
        let value = if person_like {
            (rng.random_bool(0.92) || !nullable(resource, "name"))
                .then(|| format!("{first} {last}"))
        } else if matches!(
            kind,
            "product" | "climate.product" | "billing.meter" | "coupon" | "tax.registration"
        ) {
            Some(format!(
                "{} {}",
                pick(rng, PLAN_WORDS),
                pick(rng, PRODUCT_WORDS)
            ))
        } else {
            None
        };
        if let Some(v) = value {
            object.insert("name".into(), Value::String(v));
        } else if person_like {
            object.insert("name".into(), Value::Null);
        }
    }
    if object.contains_key("nickname") && rng.random_bool(0.5) {
        let nickname = format!(
            "{} {}",
            pick(rng, PLAN_WORDS),
            if rng.random_bool(0.5) {
                "monthly"
            } else {
                "yearly"
            }
        );
        object.insert("nickname".into(), Value::String(nickname));
    }
    if matches!(
        object.get("description"),
        Some(Value::String(_) | Value::Null)
    ) {
        if rng.random_bool(0.55) {
            let text = pick(rng, DESCRIPTIONS)
                .replace("{n}", &(1000 + serial).to_string())
                .replace("{q}", &rng.random_range(1..=4).to_string());
            object.insert("description".into(), Value::String(text));
        } else if nullable(resource, "description") {
            object.insert("description".into(), Value::Null);
        }
    }
    if person_like && object.contains_key("phone") && rng.random_bool(0.5) {
        let phone = format!("+1555{:07}", rng.random_range(0..10_000_000));
        object.insert("phone".into(), Value::String(phone));
    }
    if person_like
        && rng.random_bool(0.6)
        && let Some(Value::Object(address)) = object.get_mut("address")
    {
        let (city, country, postal) = *pick(rng, CITIES);
        address.insert("city".into(), json!(city));
        address.insert("country".into(), json!(country));
        address.insert("postal_code".into(), json!(postal));
        address.insert(
            "line1".into(),
            json!(format!("{} Market Street", rng.random_range(1..2000))),
        );
    }
    vary_amounts(object, rng);
    if let Some(Value::String(_)) = object.get("currency") {
        let currency = match rng.random_range(0..100) {
            0..70 => "usd",
            70..85 => "eur",
            85..95 => "gbp",
            _ => "cad",
        };
        object.insert("currency".into(), json!(currency));
    }
    if object.contains_key("status") {
        let statuses = fixtures::enum_values(resource, "status");
        if !statuses.is_empty() {
            let preferred = statuses.iter().find(|s| SUCCESS_STATUSES.contains(s));
            let status = match preferred {
                Some(s) if rng.random_bool(0.65) => *s,
                _ => *pick(rng, &statuses),
            };
            object.insert("status".into(), json!(status));
        }
    }
    if let Some(Value::Object(metadata)) = object.get_mut("metadata") {
        metadata.clear();
        if rng.random_bool(0.5) {
            metadata.insert(
                "source".into(),
                json!(*pick(rng, &["import", "web", "api", "dashboard"])),
            );
            if rng.random_bool(0.5) {
                metadata.insert(
                    "order_id".into(),
                    json!(format!("ord_{:06}", rng.random_range(0..1_000_000))),
                );
            }
            if rng.random_bool(0.3) {
                metadata.insert(
                    "tier".into(),
                    json!(*pick(rng, &["bronze", "silver", "gold"])),
                );
            }
        }
    }
}

/// Sets the amount fields the object has to one base amount, with dependent fields kept
/// consistent (a paid invoice has nothing remaining, a charge's net is amount minus fee).
fn vary_amounts(object: &mut Map<String, Value>, rng: &mut StdRng) {
    let base: i64 = match rng.random_range(0..10) {
        0..6 => rng.random_range(5..500) * 100,
        6..9 => rng.random_range(100..100_000),
        _ => rng.random_range(50_000..5_000_000),
    };
    for field in AMOUNT_FIELDS {
        if matches!(object.get(*field), Some(Value::Number(_))) {
            object.insert((*field).into(), json!(base));
        }
    }
    if matches!(object.get("unit_amount_decimal"), Some(Value::String(_))) {
        object.insert("unit_amount_decimal".into(), json!(base.to_string()));
    }
    if matches!(object.get("amount_decimal"), Some(Value::String(_))) {
        object.insert("amount_decimal".into(), json!(base.to_string()));
    }
    let paid = matches!(object.get("status").and_then(Value::as_str), Some("paid"));
    if object.contains_key("amount_paid") {
        object.insert("amount_paid".into(), json!(if paid { base } else { 0 }));
    }
    if object.contains_key("amount_remaining") {
        object.insert(
            "amount_remaining".into(),
            json!(if paid { 0 } else { base }),
        );
    }
    if matches!(object.get("fee"), Some(Value::Number(_))) {
        let fee = base * 29 / 1000 + 30;
        object.insert("fee".into(), json!(fee));
        if object.contains_key("net") {
            object.insert("net".into(), json!(base - fee));
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn customers_get_people() {
        let resource = stripe_catalog::catalog().resource("customers").unwrap();
        let mut rng = StdRng::seed_from_u64(9);
        let mut names = std::collections::HashSet::new();
        for i in 0..50 {
            let Value::Object(mut c) = fixtures::template(resource) else {
                panic!()
            };
            vary(&mut c, resource, &mut rng, i);
            assert!(c["email"].as_str().unwrap().contains('@'));
            names.insert(c["name"].to_string());
        }
        assert!(names.len() > 20);
    }
}

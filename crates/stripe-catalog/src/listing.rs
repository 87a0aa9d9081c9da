//! Whether a stream's list returns every object of it that exists: only then may what a whole
//! listing did not return be taken as deleted. Checked against Stripe's API reference (the
//! list operations' parameter texts, stripe-node of API version 2026-07-29); `docs/source-stripe.md`
//! has the table with the reasons.

use crate::Resource;

/// What a whole listing of a stream says about the objects it did not return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completeness {
    /// They are gone, except those whose object has one of these top-level fields set
    /// (`None`) or at one of these values: the list hides them although they exist.
    Whole {
        /// (field, values); `None`: any value but null.
        unlisted: &'static [(&'static str, Option<&'static [FieldValue]>)],
    },
    /// Nothing: the list hides live objects, or Stripe deletes none of them (what is missing
    /// aged out or was filtered). Why.
    Partial(&'static str),
}

/// A value of an object's top-level field, as its JSON has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValue {
    /// A JSON string.
    Text(&'static str),
    /// A JSON boolean.
    Bool(bool),
}

/// Objects on a test clock: `/v1/customers` and `/v1/subscriptions` list them only when asked
/// for by clock (or customer); invoices and invoice items carry the field too, and are
/// treated alike to be safe.
const ON_A_TEST_CLOCK: (&str, Option<&[FieldValue]>) = ("test_clock", None);

/// The completeness of `resource`'s list as the source pages it.
pub fn completeness(resource: &Resource) -> Completeness {
    if resource.parent.is_some() {
        return Completeness::Partial(
            "listed through each parent: items of parents the list hides (on a test clock) are never reached",
        );
    }
    if !resource.deletable {
        return Completeness::Partial(
            "Stripe deletes none of them: one missing from a list aged out or was filtered, it was not deleted",
        );
    }
    match resource.stream.as_str() {
        "customers" | "invoices" | "invoiceitems" => Completeness::Whole {
            unlisted: &[ON_A_TEST_CLOCK],
        },
        // `status=all`; canceled ones of deleted customers are promised only by
        // `status=canceled`, and a canceled subscription is never deleted anyway.
        "subscriptions" => Completeness::Whole {
            unlisted: &[
                ON_A_TEST_CLOCK,
                ("status", Some(&[FieldValue::Text("canceled")])),
            ],
        },
        // Listed twice (active ones, then `active=false`: source-stripe's passes), so a price
        // archived while the sync was away is listed too. Prices made inline (`price_data`)
        // are never listed; they are inactive, and inactive rows are never marked.
        "prices" => Completeness::Whole {
            unlisted: &[("active", Some(&[FieldValue::Bool(false)]))],
        },
        "tax_ids" => Completeness::Partial(
            "the list defaults to owner[type]=self: customers' tax IDs are not listed",
        ),
        _ => Completeness::Whole { unlisted: &[] },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_deletable_streams_listed_whole_are_swept() {
        let catalog = crate::catalog();
        let whole: Vec<&str> = catalog
            .resources
            .iter()
            .filter(|r| matches!(completeness(r), Completeness::Whole { .. }))
            .map(|r| r.stream.as_str())
            .collect();
        for stream in [
            "customers",
            "invoices",
            "products",
            "coupons",
            "plans",
            "subscriptions",
            "prices",
        ] {
            assert!(whole.contains(&stream), "{stream}");
        }
        for stream in ["tax_ids", "charges", "events", "subscription_items"] {
            assert!(!whole.contains(&stream), "{stream}");
        }
    }
}

//! Whether a stream's backfill may mark, once it has listed the stream to its end, the rows it
//! did not return: only a whole listing (`stripe_catalog::completeness`) that nothing narrowed.

use serde_json::Value;
use stripe_catalog::{Completeness, FieldValue, Resource};
use sync_protocol::{ConfiguredStream, JsonMap};

use crate::backfill::Sweep;
use crate::config::Config;
use crate::records::ACCOUNT_ID;

/// The sweep of `resource`'s listing for `account`, or why there is none.
pub(crate) fn sweep_of(
    config: &Config,
    configured: &ConfiguredStream,
    resource: &Resource,
    account: &str,
) -> Result<Sweep, &'static str> {
    let unlisted = match stripe_catalog::completeness(resource) {
        Completeness::Whole { unlisted } => unlisted,
        Completeness::Partial(why) => return Err(why),
    };
    if configured
        .backfill_limit
        .or(config.backfill_limit)
        .is_some()
    {
        return Err("backfill_limit lists a sample");
    }
    // account_created bounds the listing by the account's birth, which hides nothing.
    if config.start_date.is_some() && config.account_created.is_none() {
        return Err("start_date leaves older objects out of the listing");
    }
    if configured.time_range.is_some() {
        return Err("the stream's time_range narrows the listing");
    }
    if configured.fields.is_some() {
        return Err("the stream's fields narrow what is listed");
    }
    let mut scope = JsonMap::new();
    scope.insert(ACCOUNT_ID.to_owned(), Value::String(account.to_owned()));
    let unlisted = unlisted
        .iter()
        .map(|(field, values)| {
            let values = match values {
                None => Value::Null,
                Some(vs) => vs
                    .iter()
                    .map(|v| match v {
                        FieldValue::Text(text) => Value::String((*text).to_owned()),
                        FieldValue::Bool(b) => Value::Bool(*b),
                    })
                    .collect(),
            };
            ((*field).to_owned(), values)
        })
        .collect();
    Ok(Sweep { scope, unlisted })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn config(extra: Value) -> Config {
        let mut value = json!({"api_key": "sk_test_x"});
        value
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        serde_json::from_value(value).unwrap()
    }

    fn configured(stream: &str, extra: Value) -> ConfiguredStream {
        let mut value = json!({"stream": {"name": stream, "json_schema": {}}});
        value
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        serde_json::from_value(value).unwrap()
    }

    fn sweep(
        stream: &str,
        config_extra: Value,
        stream_extra: Value,
    ) -> Result<Sweep, &'static str> {
        let catalog = stripe_catalog::catalog();
        let resource = catalog.resource(stream).unwrap();
        sweep_of(
            &config(config_extra),
            &configured(stream, stream_extra),
            resource,
            "acct_1",
        )
    }

    #[test]
    fn a_whole_listing_is_scoped_to_the_account_and_names_what_its_list_hides() {
        let s = sweep("customers", json!({}), json!({})).unwrap();
        assert_eq!(Value::Object(s.scope), json!({"_account_id": "acct_1"}));
        assert_eq!(Value::Object(s.unlisted), json!({"test_clock": null}));
        let s = sweep("prices", json!({}), json!({})).unwrap();
        assert_eq!(Value::Object(s.unlisted), json!({"active": [false]}));
        let s = sweep("subscriptions", json!({}), json!({})).unwrap();
        assert_eq!(
            Value::Object(s.unlisted),
            json!({"test_clock": null, "status": ["canceled"]})
        );
    }

    #[test]
    fn anything_that_narrows_the_listing_means_no_sweep() {
        for (config_extra, stream_extra) in [
            (json!({"backfill_limit": 10}), json!({})),
            (json!({}), json!({"backfill_limit": 10})),
            (json!({"start_date": "2024-01-01T00:00:00Z"}), json!({})),
            (
                json!({}),
                json!({"time_range": {"gte": "2024-01-01T00:00:00Z", "lt": "2024-02-01T00:00:00Z"}}),
            ),
            (json!({}), json!({"fields": ["id", "email"]})),
        ] {
            assert!(
                sweep("customers", config_extra.clone(), stream_extra.clone()).is_err(),
                "{config_extra} {stream_extra}"
            );
        }
        assert!(
            sweep("charges", json!({}), json!({})).is_err(),
            "never deleted"
        );
        assert!(sweep("tax_ids", json!({}), json!({})).is_err());
    }
}

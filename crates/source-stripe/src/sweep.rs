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

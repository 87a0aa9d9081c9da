//! How an update of a pipeline's side (`PATCH`'s `source` or `destination`, or the console's
//! edit form) is merged into the stored one (a leaf the API and the console's drafts share).

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::api_state::Failure;
use crate::pipeline;

/// A side's update: `config` keys replace the stored ones (null removes one); `name` replaces.
/// A value exactly as a GET shows the stored one (a secret as `***`) leaves it as it is; any
/// other value holding `***` where a secret goes is refused, so a secret is never overwritten
/// with its mask.
pub(crate) fn merged_side(field: &str, stored: &Value, update: &Value) -> Result<Value, Failure> {
    let update = pipeline::connector_side(field, update, stored["name"].as_str().unwrap_or(""))?;
    let mut config = stored["config"].as_object().cloned().unwrap_or_default();
    for (k, v) in update["config"].as_object().into_iter().flatten() {
        let as_shown = config
            .get(k)
            .is_some_and(|kept| pipeline::shown_entry(k, kept) == *v);
        if v.is_null() {
            config.remove(k);
        } else if as_shown {
            continue;
        } else if pipeline::holds_a_hidden_secret(k, v) {
            return Err(Failure(
                StatusCode::BAD_REQUEST,
                format!(
                    "{field}.config.{k}: holds \"***\", which is how the API shows a secret; give the real value, or leave the key out to keep the stored one"
                ),
            ));
        } else {
            config.insert(k.clone(), v.clone());
        }
    }
    Ok(json!({"name": update["name"], "config": config}))
}

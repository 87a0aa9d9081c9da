//! Nested lists (subscription items, invoice lines, …): the embedded list of the parent when it
//! is complete, otherwise the nested list endpoint paged to the end.

use serde::Deserialize;
use serde_json::value::RawValue;
use stripe_catalog::Resource;
use sync_protocol::peek::top_level_fields;

use crate::client::StripeClient;
use crate::error::StripeError;
use crate::pager::Pager;
use crate::records::Head;

/// An embedded list such as `subscription.items`.
#[derive(Deserialize)]
struct EmbeddedList {
    #[serde(default)]
    has_more: bool,
    #[serde(default)]
    data: Vec<Box<RawValue>>,
}

/// The children of one parent.
pub(crate) struct Children {
    pub items: Vec<Box<RawValue>>,
    /// When they were read from the API; `None` when they came embedded in the parent, and
    /// are as current as the parent is.
    pub fetched_at: Option<i64>,
}

/// The items of the list embedded in `object` under `field`, complete or not.
pub(crate) fn embedded_items(object: &RawValue, field: &str) -> Vec<Box<RawValue>> {
    embedded(object, field).map(|l| l.data).unwrap_or_default()
}

fn embedded(object: &RawValue, field: &str) -> Option<EmbeddedList> {
    let fields = top_level_fields(object.get(), &[field]).ok()?;
    let raw = fields.first().copied().flatten()?;
    serde_json::from_str::<EmbeddedList>(raw.get()).ok()
}

/// Every child of one parent object: the embedded list when it is complete (at most 10 items),
/// otherwise the nested list endpoint, paged to the end.
pub(crate) async fn children_of(
    client: &StripeClient,
    child: &'static Resource,
    parent: &RawValue,
) -> Result<Children, StripeError> {
    let none = Children {
        items: Vec::new(),
        fetched_at: None,
    };
    let Some(link) = &child.parent else {
        return Ok(none);
    };
    if let Some(list) = embedded(parent, &link.embedded_field)
        && !list.has_more
    {
        return Ok(Children {
            items: list.data,
            fetched_at: None,
        });
    }
    let head = Head::of(parent);
    let Some(parent_id) = head.id.as_deref() else {
        return Ok(none);
    };
    let params = link
        .param
        .iter()
        .map(|p| (p.clone(), parent_id.to_owned()))
        .collect();
    let mut pager = Pager::new(
        client,
        child.list_path_for(Some(parent_id)),
        &child.list_path,
        params,
    );
    let mut items = Vec::new();
    let mut fetched_at = None;
    while let Some(page) = pager.next().await? {
        // The oldest page time: every item is at least as new as that.
        fetched_at.get_or_insert(page.server_time);
        items.extend(page.data);
    }
    Ok(Children { items, fetched_at })
}

//! Paging a list to its end: v1 lists by `starting_after` (the last object's id), v2 lists by
//! the `page` token their `next_page_url` gives.

use serde_json::value::RawValue;
use sync_protocol::peek::top_level_fields;

use crate::client::{Page, StripeClient};
use crate::error::StripeError;

/// An object's `id`, read from its text.
fn object_id(object: &RawValue) -> Option<String> {
    let fields = top_level_fields(object.get(), &["id"]).ok()?;
    serde_json::from_str(fields.first().copied().flatten()?.get()).ok()
}

/// Pages a list to its end, one page per call: a v1 list with `starting_after` (the last
/// object's id), a v2 list with the `page` token it gives.
pub(crate) struct Pager<'a> {
    client: &'a StripeClient,
    path: String,
    endpoint: &'a str,
    params: Vec<(String, String)>,
    v2: bool,
    cursor: Option<String>,
    done: bool,
}

impl<'a> Pager<'a> {
    pub(crate) fn new(
        client: &'a StripeClient,
        path: String,
        endpoint: &'a str,
        params: Vec<(String, String)>,
    ) -> Pager<'a> {
        Pager {
            client,
            path,
            endpoint,
            params,
            v2: false,
            cursor: None,
            done: false,
        }
    }

    /// Pages a v2 list.
    pub(crate) fn v2(mut self) -> Pager<'a> {
        self.v2 = true;
        self
    }

    /// Starts after a cursor saved from an earlier pager.
    pub(crate) fn resume(mut self, cursor: Option<String>) -> Pager<'a> {
        self.cursor = cursor;
        self
    }

    /// Where the next page starts.
    pub(crate) fn cursor(&self) -> Option<&String> {
        self.cursor.as_ref()
    }

    /// The next page; `None` after the last one. A page that says there is more but gives no
    /// way to the next one is an error, never a silent end.
    pub(crate) async fn next(&mut self) -> Result<Option<Page>, StripeError> {
        if self.done {
            return Ok(None);
        }
        let mut params = self.params.clone();
        let (limit, after) = if self.v2 {
            ("20", "page")
        } else {
            ("100", "starting_after")
        };
        params.push(("limit".into(), limit.into()));
        if let Some(c) = &self.cursor {
            params.push((after.into(), c.clone()));
        }
        let page = self.client.list(&self.path, &params, self.endpoint).await?;
        self.cursor = if self.v2 {
            page.next_page.clone()
        } else {
            page.data.last().and_then(|o| object_id(o))
        };
        if page.has_more && self.cursor.is_none() {
            return Err(StripeError::local(
                "the list said has_more but gave no way to the next page",
                format!("GET {}", self.path),
            ));
        }
        self.done = !page.has_more;
        Ok(Some(page))
    }
}

//! v2 lists (`/v2/core/accounts`…): `limit` up to 20 and opaque `page` tokens in
//! `next_page_url` / `previous_page_url`, instead of v1's object-id cursors.

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::Value;
use stripe_catalog::Resource;

use crate::api_error::ApiError;
use crate::api_request::ApiRequest;
use crate::list::{self, Anchor, CreatedRange};
use crate::simulator::Simulator;
use crate::store::{Collection, Entry, Key};

/// v2 lists return at most this many objects per page.
const V2_MAX_LIMIT: usize = 20;

/// A v2 page token: direction, the key of the boundary object and the page size.
fn encode_token(newer: bool, key: Key, limit: usize) -> String {
    hex::encode(format!(
        "{}:{}:{}:{limit}",
        if newer { 'p' } else { 'n' },
        key.0,
        key.1
    ))
}

fn decode_token(token: &str) -> Option<(Anchor, usize)> {
    let text = String::from_utf8(hex::decode(token).ok()?).ok()?;
    let mut parts = text.split(':');
    let direction = parts.next()?;
    let key = (parts.next()?.parse().ok()?, parts.next()?.parse().ok()?);
    let limit: usize = parts.next()?.parse().ok()?;
    if parts.next().is_some() || !(1..=V2_MAX_LIMIT).contains(&limit) {
        return None;
    }
    match direction {
        "n" => Some((Anchor::OlderThan(key), limit)),
        "p" => Some((Anchor::NewerThan(key), limit)),
        _ => None,
    }
}

pub(crate) fn list(
    sim: &Simulator,
    r: &'static Resource,
    req: &ApiRequest<'_>,
) -> Result<Bytes, ApiError> {
    let mut limit = 10;
    let mut anchor = Anchor::Newest;
    let mut explicit_limit = None;
    for (name, value) in list::parse_query(req.query) {
        match name.as_str() {
            "limit" => {
                let n: i64 = value
                    .trim()
                    .parse()
                    .map_err(|_| ApiError::invalid_integer("limit", &value))?;
                if !(1..=V2_MAX_LIMIT as i64).contains(&n) {
                    return Err(ApiError::invalid(format!(
                        "limit must be between 1 and {V2_MAX_LIMIT}."
                    ))
                    .param("limit"));
                }
                explicit_limit = Some(n as usize);
            }
            "page" => {
                let (a, l) = decode_token(&value)
                    .ok_or_else(|| ApiError::invalid("Invalid page token.").param("page"))?;
                anchor = a;
                limit = l;
            }
            _ => {}
        }
    }
    let limit = explicit_limit.unwrap_or(limit);
    let data = sim.read(req.slot, req.mode);
    let empty = Collection::default();
    let collection = data.collection(r).unwrap_or(&empty);
    let all = CreatedRange::default();
    let live = |e: &Entry| !e.deleted;
    let page = list::page(&collection.entries, |e| e.key, all, anchor, limit, live);
    let url = |newer: bool, key: Key| {
        Value::from(format!(
            "{}?page={}",
            r.list_path,
            encode_token(newer, key, limit)
        ))
    };
    let (next, previous) = match (page.items.first(), page.items.last()) {
        (Some(first), Some(last)) => {
            // Paging towards older objects, the page knows whether more follow.
            let older_exists = match anchor {
                Anchor::NewerThan(_) => !list::page(
                    &collection.entries,
                    |e| e.key,
                    all,
                    Anchor::OlderThan(last.key),
                    1,
                    live,
                )
                .items
                .is_empty(),
                Anchor::Newest | Anchor::OlderThan(_) => page.has_more,
            };
            let next = older_exists.then(|| url(false, last.key));
            let previous = list::has_newer(&collection.entries, |e| e.key, all, first.key, live)
                .then(|| url(true, first.key));
            (next, previous)
        }
        _ => (None, None),
    };
    let size: usize = page.items.iter().map(|e| e.json().len() + 1).sum();
    let mut out = BytesMut::with_capacity(size + 200);
    out.put_slice(b"{\"data\":[");
    for (i, e) in page.items.iter().enumerate() {
        if i > 0 {
            out.put_u8(b',');
        }
        out.put_slice(e.json());
    }
    out.put_slice(b"],\"next_page_url\":");
    out.put_slice(next.unwrap_or(Value::Null).to_string().as_bytes());
    out.put_slice(b",\"previous_page_url\":");
    out.put_slice(previous.unwrap_or(Value::Null).to_string().as_bytes());
    out.put_u8(b'}');
    Ok(out.freeze())
}

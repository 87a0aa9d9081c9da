//! List parameters (`limit`, cursors, `created` filters) and Stripe's paging: newest first by
//! (`created`, creation order), `starting_after` continues to older objects, `ending_before`
//! returns the page just newer than the cursor (still newest first).

use bytes::{BufMut, Bytes, BytesMut};

use crate::api_error::ApiError;
use crate::body::Body;
use crate::listed::Listed;
use crate::store::Key;

pub(crate) const DEFAULT_LIMIT: usize = 10;
pub(crate) const MAX_LIMIT: usize = 100;

/// `created` bounds, inclusive, after normalising `gt`/`lt` and the plain `created=<t>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CreatedRange {
    pub gte: i64,
    pub lte: i64,
}

impl Default for CreatedRange {
    fn default() -> CreatedRange {
        CreatedRange {
            gte: i64::MIN,
            lte: i64::MAX,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cursor {
    None,
    StartingAfter(String),
    EndingBefore(String),
}

impl Cursor {
    pub(crate) fn param(&self) -> &'static str {
        match self {
            Cursor::EndingBefore(_) => "ending_before",
            _ => "starting_after",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct ListParams {
    pub limit: usize,
    pub cursor: Cursor,
    pub created: CreatedRange,
    /// Parameters a list does not interpret generally (`subscription`, `type`, `types[]`…).
    pub other: Vec<(String, String)>,
}

impl ListParams {
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.other
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of an array parameter, sent as `name[]=a&name[]=b` or `name[0]=a&name[1]=b`
    /// (Stripe's client libraries use both).
    pub(crate) fn all(&self, name: &str) -> impl Iterator<Item = &str> {
        self.other
            .iter()
            .filter(move |(k, _)| {
                k.strip_prefix(name)
                    .and_then(|rest| rest.strip_prefix('['))
                    .and_then(|rest| rest.strip_suffix(']'))
                    .is_some_and(|index| index.bytes().all(|b| b.is_ascii_digit()))
            })
            .map(|(_, v)| v.as_str())
    }
}

/// Decodes a query string into pairs, keeping repeated names (`types[]=a&types[]=b`).
pub(crate) fn parse_query(raw: Option<&str>) -> Vec<(String, String)> {
    raw.map(|q| {
        form_urlencoded::parse(q.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    })
    .unwrap_or_default()
}

fn integer(name: &str, value: &str) -> Result<i64, ApiError> {
    value
        .trim()
        .parse()
        .map_err(|_| ApiError::invalid_integer(name, value))
}

pub(crate) fn parse_list_params(
    pairs: Vec<(String, String)>,
    created_allowed: bool,
    max_limit: usize,
) -> Result<ListParams, ApiError> {
    let mut limit = DEFAULT_LIMIT.min(max_limit);
    let mut starting_after = None;
    let mut ending_before = None;
    let mut created = CreatedRange::default();
    let mut other = Vec::new();
    for (name, value) in pairs {
        match name.as_str() {
            "limit" => {
                let n = integer("limit", &value)?;
                if n < 1 {
                    return Err(ApiError::invalid(
                        "This value must be greater than or equal to 1.",
                    )
                    .param("limit"));
                }
                if n > max_limit as i64 {
                    return Err(ApiError::invalid(format!(
                        "This value must be less than or equal to {max_limit}."
                    ))
                    .param("limit"));
                }
                limit = n as usize;
            }
            "starting_after" => starting_after = Some(value).filter(|v| !v.is_empty()),
            "ending_before" => ending_before = Some(value).filter(|v| !v.is_empty()),
            _ if name == "created" || name.starts_with("created[") => {
                if !created_allowed {
                    return Err(ApiError::unknown_parameter(&name));
                }
                let t = integer(&name, &value)?;
                match name.as_str() {
                    "created" => {
                        created.gte = created.gte.max(t);
                        created.lte = created.lte.min(t);
                    }
                    "created[gt]" => created.gte = created.gte.max(t.saturating_add(1)),
                    "created[gte]" => created.gte = created.gte.max(t),
                    "created[lt]" => created.lte = created.lte.min(t.saturating_sub(1)),
                    "created[lte]" => created.lte = created.lte.min(t),
                    _ => return Err(ApiError::unknown_parameter(&name)),
                }
            }
            _ => other.push((name, value)),
        }
    }
    let cursor = match (starting_after, ending_before) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "You may only specify one of these parameters: ending_before, starting_after.",
            )
            .param("ending_before"));
        }
        (Some(id), None) => Cursor::StartingAfter(id),
        (None, Some(id)) => Cursor::EndingBefore(id),
        (None, None) => Cursor::None,
    };
    Ok(ListParams {
        limit,
        cursor,
        created,
        other,
    })
}

/// Where a page starts relative to a cursor object's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Anchor {
    Newest,
    OlderThan(Key),
    NewerThan(Key),
}

pub(crate) struct Page<'a, T> {
    /// Newest first.
    pub items: Vec<&'a T>,
    /// More objects lie beyond the page in the paging direction.
    pub has_more: bool,
}

/// One page of `entries` (ascending by key) restricted to `range` and `keep`.
pub(crate) fn page<'a, T>(
    entries: &'a [T],
    key: impl Fn(&T) -> Key,
    range: CreatedRange,
    anchor: Anchor,
    limit: usize,
    keep: impl Fn(&T) -> bool,
) -> Page<'a, T> {
    let lo = entries.partition_point(|e| key(e).0 < range.gte);
    let hi = entries.partition_point(|e| key(e).0 <= range.lte);
    let mut items = Vec::with_capacity(limit.min(128));
    let mut has_more = false;
    if lo >= hi {
        return Page { items, has_more };
    }
    match anchor {
        Anchor::Newest | Anchor::OlderThan(_) => {
            let top = match anchor {
                Anchor::OlderThan(k) => entries.partition_point(|e| key(e) < k).min(hi),
                _ => hi,
            };
            for e in entries[lo..top.max(lo)].iter().rev().filter(|e| keep(e)) {
                if items.len() == limit {
                    has_more = true;
                    break;
                }
                items.push(e);
            }
        }
        Anchor::NewerThan(k) => {
            let bottom = entries.partition_point(|e| key(e) <= k).max(lo);
            for e in entries[bottom.min(hi)..hi].iter().filter(|e| keep(e)) {
                if items.len() == limit {
                    has_more = true;
                    break;
                }
                items.push(e);
            }
            items.reverse();
        }
    }
    Page { items, has_more }
}

/// Whether any kept entry in `range` is newer than `k` (v2's `previous_page_url`).
pub(crate) fn has_newer<T>(
    entries: &[T],
    key: impl Fn(&T) -> Key,
    range: CreatedRange,
    k: Key,
    keep: impl Fn(&T) -> bool,
) -> bool {
    let hi = entries.partition_point(|e| key(e).0 <= range.lte);
    let from = entries
        .partition_point(|e| key(e) <= k)
        .max(entries.partition_point(|e| key(e).0 < range.gte));
    from < hi && entries[from..hi].iter().any(keep)
}

/// A page of a nested list, which keeps its parent's order: `starting_after` continues after
/// the cursor item, `ending_before` returns the items just before it. `None` when the cursor
/// is not an item of this list.
pub(crate) fn page_in_order<'a, T>(
    items: &'a [T],
    id: impl Fn(&T) -> &str,
    cursor: &Cursor,
    limit: usize,
) -> Option<(&'a [T], bool)> {
    let position = |cursor_id: &str| items.iter().position(|i| id(i) == cursor_id);
    Some(match cursor {
        Cursor::None => (&items[..limit.min(items.len())], items.len() > limit),
        Cursor::StartingAfter(c) => {
            let start = position(c)? + 1;
            let end = (start + limit).min(items.len());
            (&items[start..end], end < items.len())
        }
        Cursor::EndingBefore(c) => {
            let end = position(c)?;
            let start = end.saturating_sub(limit);
            (&items[start..end], start > 0)
        }
    })
}

/// `{"object":"list","data":[…],"has_more":…,"url":…}` by concatenating the objects: compact,
/// or already in Stripe's pretty layout (the same bytes as laying out the compact list).
pub(crate) fn render_list<'a, T: Listed + 'a>(
    url: &str,
    data: impl ExactSizeIterator<Item = &'a T> + Clone,
    has_more: bool,
    pretty: bool,
) -> Body {
    let url = serde_json::Value::from(url).to_string();
    let has_more: &[u8] = if has_more { b"true" } else { b"false" };
    if !pretty {
        let size: usize = data.clone().map(|o| o.compact().len() + 1).sum();
        let mut out = BytesMut::with_capacity(size + url.len() + 80);
        out.put_slice(b"{\"object\":\"list\",\"data\":[");
        for (i, item) in data.enumerate() {
            if i > 0 {
                out.put_u8(b',');
            }
            out.put_slice(item.compact());
        }
        out.put_slice(b"],\"has_more\":");
        out.put_slice(has_more);
        out.put_slice(b",\"url\":");
        out.put_slice(url.as_bytes());
        out.put_u8(b'}');
        return Body::Compact(out.freeze());
    }
    let items: Vec<Bytes> = data.map(Listed::in_list).collect();
    let size: usize = items.iter().map(|b| b.len() + 6).sum();
    let mut out = BytesMut::with_capacity(size + url.len() + 80);
    out.put_slice(b"{\n  \"object\": \"list\",\n  \"data\": [");
    for (i, item) in items.iter().enumerate() {
        out.put_slice(if i == 0 { b"\n    " } else { b",\n    " });
        out.put_slice(item);
    }
    out.put_slice(if items.is_empty() { b"]" } else { b"\n  ]" });
    out.put_slice(b",\n  \"has_more\": ");
    out.put_slice(has_more);
    out.put_slice(b",\n  \"url\": ");
    out.put_slice(url.as_bytes());
    out.put_slice(b"\n}\n");
    Body::Final(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(q: &str, created: bool) -> Result<ListParams, ApiError> {
        parse_list_params(parse_query(Some(q)), created, MAX_LIMIT)
    }

    #[test]
    fn parses_and_rejects_like_stripe() {
        let p = params(
            "limit=7&created[gt]=10&created[lte]=20&starting_after=cus_1&types[]=a&types[]=b",
            true,
        )
        .unwrap();
        assert_eq!(p.limit, 7);
        assert_eq!(p.created, CreatedRange { gte: 11, lte: 20 });
        assert_eq!(p.cursor, Cursor::StartingAfter("cus_1".into()));
        assert_eq!(p.all("types").collect::<Vec<_>>(), vec!["a", "b"]);
        let indexed = params("types[0]=a&types[1]=b&types[x]=c&typesz=d", true).unwrap();
        assert_eq!(indexed.all("types").collect::<Vec<_>>(), vec!["a", "b"]);
        assert_eq!(
            params("created=5", true).unwrap().created,
            CreatedRange { gte: 5, lte: 5 }
        );
        assert_eq!(
            params("limit=0", true).unwrap_err().param.as_deref(),
            Some("limit")
        );
        assert_eq!(
            params("limit=101", true).unwrap_err().param.as_deref(),
            Some("limit")
        );
        assert_eq!(
            params("limit=ten", true).unwrap_err().message,
            "Invalid integer: ten"
        );
        assert!(params("starting_after=a&ending_before=b", true).is_err());
        assert_eq!(
            params("created[gt]=1", false).unwrap_err().message,
            "Received unknown parameter: created[gt]"
        );
        assert!(params("created[after]=1", true).is_err());
        assert!(params("created[gt]=yesterday", true).is_err());
    }

    #[test]
    fn pages_newest_first_in_both_directions() {
        // Keys (created, seq): three objects in second 1, two in second 2.
        let entries: Vec<Key> = vec![(1, 1), (1, 2), (1, 3), (2, 4), (2, 5)];
        let ids = |p: Page<Key>| p.items.iter().map(|k| k.1).collect::<Vec<_>>();
        let all = CreatedRange::default();
        let first = page(&entries, |k| *k, all, Anchor::Newest, 2, |_| true);
        assert!(first.has_more);
        assert_eq!(ids(first), vec![5, 4]);
        let next = page(
            &entries,
            |k| *k,
            all,
            Anchor::OlderThan((2, 4)),
            2,
            |_| true,
        );
        assert_eq!(ids(next), vec![3, 2]);
        let back = page(
            &entries,
            |k| *k,
            all,
            Anchor::NewerThan((1, 2)),
            2,
            |_| true,
        );
        assert!(back.has_more);
        assert_eq!(ids(back), vec![4, 3]);
        let only_1 = CreatedRange { gte: 1, lte: 1 };
        let p = page(&entries, |k| *k, only_1, Anchor::Newest, 10, |k| k.1 != 2);
        assert!(!p.has_more);
        assert_eq!(ids(p), vec![3, 1]);
        assert!(has_newer(&entries, |k| *k, all, (2, 4), |_| true));
        assert!(!has_newer(&entries, |k| *k, only_1, (1, 3), |_| true));
    }

    #[test]
    fn nested_pages_keep_order() {
        let items = ["a", "b", "c", "d"];
        let (p, more) = page_in_order(&items, |s| s, &Cursor::None, 3).unwrap();
        assert_eq!((p, more), (&items[..3], true));
        let (p, more) =
            page_in_order(&items, |s| s, &Cursor::StartingAfter("c".into()), 3).unwrap();
        assert_eq!((p, more), (&items[3..], false));
        let (p, more) = page_in_order(&items, |s| s, &Cursor::EndingBefore("d".into()), 2).unwrap();
        assert_eq!((p, more), (&items[1..3], true));
        assert!(page_in_order(&items, |s| s, &Cursor::StartingAfter("x".into()), 2).is_none());
    }

    fn bytes(body: Body) -> Bytes {
        match body {
            Body::Compact(b) | Body::Final(b) => b,
        }
    }

    #[test]
    fn renders_a_list() {
        let data = [
            Bytes::from_static(b"{\"id\":1}"),
            Bytes::from_static(b"{\"id\":2}"),
        ];
        let body = bytes(render_list("/v1/customers", data.iter(), true, false));
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["data"][1]["id"], 2);
        assert_eq!(v["has_more"], true);
        assert_eq!(v["url"], "/v1/customers");
    }

    /// A page put together from laid-out objects is byte for byte the page laid out whole.
    #[test]
    fn a_pretty_page_is_the_compact_page_laid_out() {
        let objects = [
            Bytes::from_static(br#"{"id":"cus_1","metadata":{},"tags":[],"n":[1,2.50]}"#),
            Bytes::from_static(
                br#"{"id":"in_1","lines":{"object":"list","data":[{"a":"x, y: {z}"}],"has_more":false},"q":"\"[]"}"#,
            ),
            Bytes::from_static(br#"{"id":"ch_1","nested":{"deep":{"deeper":[{},[]]}}}"#),
        ];
        for n in 0..=objects.len() {
            for has_more in [false, true] {
                let data = &objects[..n];
                let compact = bytes(render_list("/v1/x\"y", data.iter(), has_more, false));
                let pretty = bytes(render_list("/v1/x\"y", data.iter(), has_more, true));
                assert_eq!(
                    std::str::from_utf8(&pretty).unwrap(),
                    std::str::from_utf8(&crate::pretty::pretty(&compact)).unwrap(),
                    "{n} objects, has_more {has_more}"
                );
            }
        }
    }
}

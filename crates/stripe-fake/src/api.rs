//! The Stripe endpoints proper: given a matched route, an account and a mode, produce the JSON
//! body of a 200 or a Stripe error. Reads are here; v2 lists in [`crate::v2`], writes in
//! [`crate::writes`].

use bytes::Bytes;
use stripe_catalog::{Api, Resource};

use crate::api_error::ApiError;
use crate::api_request::ApiRequest;
use crate::body::Body;
use crate::events::{RETENTION_SECS, type_matches};
use crate::faults::{ActiveFaults, not_enabled_message};
use crate::fixtures;
use crate::list::{self, Anchor, CreatedRange, Cursor, ListParams, MAX_LIMIT};
use crate::routes::Target;
use crate::simulator::Simulator;
use crate::store::{Collection, DataSet, Key};
use crate::{v2, writes};

pub(crate) fn handle(
    sim: &Simulator,
    faults: &ActiveFaults,
    target: Target,
    id: Option<&str>,
    req: &ApiRequest<'_>,
) -> Result<Body, ApiError> {
    let unrecognized = || ApiError::unrecognized(req.method, req.path);
    let resource = match target {
        Target::Account => None,
        Target::List(r) | Target::Object(r) | Target::Nested(r) => Some(r),
    };
    if let Some(r) = resource {
        let parent_disabled = r
            .parent
            .as_ref()
            .is_some_and(|p| faults.is_disabled(&p.stream));
        if faults.is_disabled(&r.stream) || parent_disabled {
            return Err(ApiError::invalid(not_enabled_message(&r.stream)));
        }
    }
    match (req.method, target, id) {
        ("GET", Target::Account, _) => Ok(sim.accounts[req.slot].json.clone().into()),
        ("GET", Target::List(r), _) if r.stream == "events" => list_events(sim, req),
        ("GET", Target::List(r), _) if r.api == Api::V2 => v2::list(sim, r, req).map(Body::from),
        ("GET", Target::List(r), _) if r.is_nested() => list_by_param(sim, r, req),
        ("GET", Target::List(r), _) => list_top(sim, r, req),
        ("POST", Target::List(r), _)
            if r.api == Api::V1 && !r.is_nested() && r.stream != "events" =>
        {
            writes::create(sim, r, req).map(Body::from)
        }
        ("GET", Target::Object(r), Some(id)) if r.stream == "events" => {
            retrieve_event(sim, req, id).map(Body::from)
        }
        ("GET", Target::Object(r), Some(id)) => retrieve(sim, r, req, id).map(Body::from),
        ("POST", Target::Object(r), Some(id)) if r.api == Api::V1 && r.stream != "events" => {
            writes::update(sim, r, req, id).map(Body::from)
        }
        ("DELETE", Target::Object(r), Some(id)) if r.api == Api::V1 && r.deletable => {
            writes::delete(sim, r, req, id).map(Body::from)
        }
        ("GET", Target::Nested(r), Some(parent_id)) => list_nested(sim, r, req, parent_id),
        _ => Err(unrecognized()),
    }
}

fn params(
    req: &ApiRequest<'_>,
    created_allowed: bool,
    max_limit: usize,
) -> Result<ListParams, ApiError> {
    list::parse_list_params(list::parse_query(req.query), created_allowed, max_limit)
}

fn cursor_key(
    params: &ListParams,
    lookup: impl Fn(&str) -> Option<Key>,
    object: &str,
) -> Result<Anchor, ApiError> {
    let missing = |id: &str| {
        ApiError::no_such(object, id)
            .status(400)
            .param(params.cursor.param())
    };
    Ok(match &params.cursor {
        Cursor::None => Anchor::Newest,
        Cursor::StartingAfter(id) => Anchor::OlderThan(lookup(id).ok_or_else(|| missing(id))?),
        Cursor::EndingBefore(id) => Anchor::NewerThan(lookup(id).ok_or_else(|| missing(id))?),
    })
}

fn list_top(sim: &Simulator, r: &'static Resource, req: &ApiRequest<'_>) -> Result<Body, ApiError> {
    let params = params(req, r.created_filter, MAX_LIMIT)?;
    let data = sim.read(req.slot, req.mode);
    let empty = Collection::default();
    let collection = data.collection(r).unwrap_or(&empty);
    let anchor = cursor_key(&params, |id| collection.get(id).map(|e| e.key), &r.object)?;
    let status = StatusFilter::of(r, req)?;
    let active = ActiveFilter::of(r, req)?;
    let page = list::page(
        &collection.entries,
        |e| e.key,
        params.created,
        anchor,
        params.limit,
        |e| !e.deleted && status.keeps(e.json()) && active.keeps(e.json()),
    );
    Ok(list::render_list(
        &r.list_path,
        page.items.iter().copied(),
        page.has_more,
        sim.pretty(),
    ))
}

/// The lists whose OpenAPI operation takes `active`; on any other list it is ignored, like
/// every parameter the simulator does not know.
const TAKE_ACTIVE: &[&str] = &[
    "plans",
    "prices",
    "products",
    "promotion_codes",
    "tax_rates",
];

/// Prices lists return active ones unless asked for inactive ones (`active=false`).
enum ActiveFilter {
    Any,
    Only(bool),
}

impl ActiveFilter {
    fn of(r: &Resource, req: &ApiRequest<'_>) -> Result<ActiveFilter, ApiError> {
        if !TAKE_ACTIVE.contains(&r.stream.as_str()) {
            return Ok(ActiveFilter::Any);
        }
        let query = list::parse_query(req.query);
        let active = query
            .iter()
            .find(|(k, _)| k == "active")
            .map(|(_, v)| v.as_str());
        Ok(match (r.stream.as_str(), active) {
            (_, Some("true")) => ActiveFilter::Only(true),
            (_, Some("false")) => ActiveFilter::Only(false),
            (_, Some(other)) => {
                return Err(ApiError::invalid(format!("Invalid boolean: {other}")).param("active"));
            }
            // Stripe's API reference: "Returns a list of your active prices, excluding
            // inline prices."
            ("prices", None) => ActiveFilter::Only(true),
            (_, None) => ActiveFilter::Any,
        })
    }

    fn keeps(&self, json: &[u8]) -> bool {
        #[derive(serde::Deserialize)]
        struct Active {
            #[serde(default)]
            active: Option<bool>,
        }
        match self {
            ActiveFilter::Any => true,
            ActiveFilter::Only(wanted) => serde_json::from_slice::<Active>(json)
                .is_ok_and(|a| a.active.unwrap_or(true) == *wanted),
        }
    }
}

/// Subscriptions lists hide canceled ones unless asked for (`status=all` or `status=canceled`).
enum StatusFilter {
    Any,
    NotCanceled,
    Only(String),
}

impl StatusFilter {
    fn of(r: &Resource, req: &ApiRequest<'_>) -> Result<StatusFilter, ApiError> {
        if r.stream != "subscriptions" {
            return Ok(StatusFilter::Any);
        }
        let query = list::parse_query(req.query);
        let status = query
            .iter()
            .find(|(k, _)| k == "status")
            .map(|(_, v)| v.as_str());
        Ok(match status {
            None => StatusFilter::NotCanceled,
            Some("all") => StatusFilter::Any,
            Some(
                status @ ("active" | "canceled" | "ended" | "incomplete" | "incomplete_expired"
                | "past_due" | "paused" | "trialing" | "unpaid"),
            ) => StatusFilter::Only(status.to_owned()),
            Some(other) => {
                return Err(ApiError::invalid(format!("Invalid status: must be one of active, all, canceled, ended, incomplete, incomplete_expired, past_due, paused, trialing, or unpaid (got {other})"))
                    .param("status"));
            }
        })
    }

    fn keeps(&self, json: &[u8]) -> bool {
        #[derive(serde::Deserialize)]
        struct Status {
            #[serde(default)]
            status: String,
        }
        let status = || {
            serde_json::from_slice::<Status>(json)
                .map(|s| s.status)
                .unwrap_or_default()
        };
        match self {
            StatusFilter::Any => true,
            StatusFilter::NotCanceled => status() != "canceled",
            StatusFilter::Only(wanted) if wanted == "ended" => {
                matches!(status().as_str(), "canceled" | "incomplete_expired")
            }
            StatusFilter::Only(wanted) => status() == *wanted,
        }
    }
}

fn nested_page(
    data: &DataSet,
    r: &'static Resource,
    parent_id: &str,
    params: &ListParams,
    url: &str,
    pretty: bool,
) -> Result<Body, ApiError> {
    let items = data
        .children
        .get(r.stream.as_str())
        .and_then(|c| c.by_parent.get(parent_id))
        .map(Vec::as_slice)
        .unwrap_or_default();
    let (page, has_more) = list::page_in_order(items, |c| &c.id, &params.cursor, params.limit)
        .ok_or_else(|| {
            let id = match &params.cursor {
                Cursor::StartingAfter(id) | Cursor::EndingBefore(id) => id.as_str(),
                Cursor::None => "",
            };
            ApiError::no_such(&r.object, id)
                .status(400)
                .param(params.cursor.param())
        })?;
    Ok(list::render_list(url, page.iter(), has_more, pretty))
}

fn parent_is_live(data: &DataSet, r: &'static Resource, parent_id: &str) -> bool {
    r.parent
        .as_ref()
        .and_then(|p| data.collections.get(p.stream.as_str()))
        .and_then(|c| c.live(parent_id))
        .is_some()
}

/// `/v1/subscription_items?subscription=sub_…`: the parent comes as a required parameter.
fn list_by_param(
    sim: &Simulator,
    r: &'static Resource,
    req: &ApiRequest<'_>,
) -> Result<Body, ApiError> {
    let params = params(req, r.created_filter, MAX_LIMIT)?;
    let (param, parent_object) = match &r.parent {
        Some(p) => (
            p.param.as_deref().unwrap_or(p.stream.as_str()),
            stripe_catalog::catalog()
                .resource(&p.stream)
                .map_or("object", |r| r.object.as_str()),
        ),
        None => return Err(ApiError::unrecognized(req.method, req.path)),
    };
    let parent_id = params.get(param).filter(|v| !v.is_empty()).ok_or_else(|| {
        ApiError::invalid(format!("Missing required param: {param}."))
            .param(param)
            .code("parameter_missing")
    })?;
    let data = sim.read(req.slot, req.mode);
    if !parent_is_live(&data, r, parent_id) {
        return Err(ApiError::no_such(parent_object, parent_id)
            .status(400)
            .param(param));
    }
    nested_page(&data, r, parent_id, &params, &r.list_path, sim.pretty())
}

/// `/v1/invoices/{id}/lines` and the like.
fn list_nested(
    sim: &Simulator,
    r: &'static Resource,
    req: &ApiRequest<'_>,
    parent_id: &str,
) -> Result<Body, ApiError> {
    let params = params(req, r.created_filter, MAX_LIMIT)?;
    let data = sim.read(req.slot, req.mode);
    if !parent_is_live(&data, r, parent_id) {
        let parent_object = r
            .parent
            .as_ref()
            .and_then(|p| stripe_catalog::catalog().resource(&p.stream))
            .map_or("object", |p| p.object.as_str());
        return Err(ApiError::no_such(parent_object, parent_id));
    }
    nested_page(
        &data,
        r,
        parent_id,
        &params,
        &r.list_path_for(Some(parent_id)),
        sim.pretty(),
    )
}

fn list_events(sim: &Simulator, req: &ApiRequest<'_>) -> Result<Body, ApiError> {
    let params = params(req, true, MAX_LIMIT)?;
    let single = params.get("type").map(str::to_string);
    let several: Vec<String> = params.all("types").map(str::to_string).collect();
    if single.is_some() && !several.is_empty() {
        return Err(ApiError::invalid(
            "You may only specify one of these parameters: type, types.",
        )
        .param("types"));
    }
    let filters: Vec<String> = single.into_iter().chain(several).collect();
    let oldest = sim.now() - RETENTION_SECS;
    let range = CreatedRange {
        gte: params.created.gte.max(oldest),
        lte: params.created.lte,
    };
    let data = sim.read(req.slot, req.mode);
    let anchor = cursor_key(&params, |id| data.events.get(id).map(|e| e.key), "event")?;
    let keep = |e: &crate::store::EventEntry| {
        filters.is_empty() || filters.iter().any(|f| type_matches(f, &e.event_type))
    };
    let page = list::page(
        &data.events.entries,
        |e| e.key,
        range,
        anchor,
        params.limit,
        keep,
    );
    Ok(list::render_list(
        "/v1/events",
        page.items.iter().copied(),
        page.has_more,
        sim.pretty(),
    ))
}

fn retrieve_event(sim: &Simulator, req: &ApiRequest<'_>, id: &str) -> Result<Bytes, ApiError> {
    let oldest = sim.now() - RETENTION_SECS;
    let data = sim.read(req.slot, req.mode);
    data.events
        .get(id)
        .filter(|e| e.key.0 >= oldest)
        .map(|e| e.json.clone())
        .ok_or_else(|| ApiError::no_such("event", id))
}

fn retrieve(
    sim: &Simulator,
    r: &'static Resource,
    req: &ApiRequest<'_>,
    id: &str,
) -> Result<Bytes, ApiError> {
    // An account may retrieve itself (Singer's tap-stripe checks its key this way).
    let own = &sim.accounts[req.slot];
    if r.stream == "accounts" && id == own.id {
        return Ok(own.json.clone());
    }
    let data = sim.read(req.slot, req.mode);
    match data.collection(r).and_then(|c| c.get(id)) {
        Some(entry) if !entry.deleted => Ok(entry.json().clone()),
        // Stripe keeps a stub of the types its spec has a `deleted_<object>` schema for.
        Some(_) if fixtures::keeps_deleted(&r.object) => Ok(Bytes::from(
            serde_json::json!({"id": id, "object": r.object, "deleted": true}).to_string(),
        )),
        _ => Err(ApiError::no_such(&r.object, id)),
    }
}

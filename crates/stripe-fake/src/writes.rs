//! Create, update and delete over HTTP: Stripe's form bodies turned into fields for
//! [`crate::mutate`], and its errors into Stripe's.

use bytes::Bytes;
use serde_json::{Map, Value};
use stripe_catalog::Resource;

use crate::api_error::ApiError;
use crate::api_request::ApiRequest;
use crate::error::FakeError;
use crate::fixtures;
use crate::forms;
use crate::mutate;
use crate::nested;
use crate::simulator::{Scope, Simulator};

/// Form fields for a create or update: nested, coerced, and stripped of parameters the
/// object does not have (Stripe accepts many write-only parameters this simulator ignores).
fn form_fields(
    r: &'static Resource,
    body: &[u8],
    creating: bool,
) -> Result<Map<String, Value>, ApiError> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut fields = forms::nest(&pairs)?;
    if fields.contains_key("created") {
        return Err(ApiError::unknown_parameter("created"));
    }
    let template = fixtures::template(r);
    let children: Vec<(&'static Resource, String)> = stripe_catalog::catalog()
        .children_of(&r.stream)
        .filter_map(|c| Some((c, c.parent.as_ref()?.embedded_field.clone())))
        .collect();
    let embedded: Vec<String> = children.iter().map(|(_, field)| field.clone()).collect();
    fields.retain(|name, _| {
        let settable_on_create = name == "id" || embedded.contains(name);
        (creating && settable_on_create)
            || (r.properties.contains_key(name) && !embedded.contains(name))
    });
    forms::coerce(&mut fields, r, &template)?;
    // Items of a new parent (`items[0][quantity]=2`) take the types of the item template.
    for (child, field) in &children {
        if let Some(Value::Array(items)) = fields.get_mut(field) {
            let like = nested::child_template(child, r);
            for (i, item) in items.iter_mut().enumerate() {
                forms::coerce_like(item, &format!("{field}[{i}]"), Some(&like))?;
            }
        }
    }
    Ok(fields)
}

fn mutation_error(err: FakeError, creating: bool) -> ApiError {
    match err {
        FakeError::NotFound { object, id } if creating => {
            ApiError::no_such(&object, &id).status(400)
        }
        FakeError::NotFound { object, id } => ApiError::no_such(&object, &id),
        FakeError::AlreadyExists { id, .. } => {
            ApiError::invalid(format!("A resource with the ID '{id}' already exists."))
                .code("resource_already_exists")
        }
        other => ApiError::invalid(other.to_string()),
    }
}

fn scope(sim: &Simulator, req: &ApiRequest<'_>) -> Scope {
    Scope {
        account: Some(sim.accounts[req.slot].id.clone()),
        mode: req.mode,
    }
}

fn respond(result: Result<Value, FakeError>, creating: bool) -> Result<Bytes, ApiError> {
    result
        .map(|object| Bytes::from(object.to_string()))
        .map_err(|e| mutation_error(e, creating))
}

pub(crate) fn create(
    sim: &Simulator,
    r: &'static Resource,
    req: &ApiRequest<'_>,
) -> Result<Bytes, ApiError> {
    let mut fields = form_fields(r, req.body, true)?;
    if r.stream == "webhook_endpoints" {
        return create_webhook_endpoint(sim, r, req, fields);
    }
    fields.remove("secret");
    let result = sim.mutate(&scope(sim, req), Some(req.request_id), |data, ctx| {
        mutate::create(data, r, fields, ctx)
    });
    respond(result, true)
}

/// A webhook endpoint needs `url` and `enabled_events`, starts enabled, and gets a signing
/// secret shown only in this answer (as Stripe does); events are then delivered to it. With
/// `connect=true` (the platform's only) it gets the connected accounts' events instead of the
/// platform's own; the object looks the same (Stripe's does not say either).
fn create_webhook_endpoint(
    sim: &Simulator,
    r: &'static Resource,
    req: &ApiRequest<'_>,
    mut fields: Map<String, Value>,
) -> Result<Bytes, ApiError> {
    for required in ["url", "enabled_events"] {
        if !fields.contains_key(required) {
            return Err(
                ApiError::invalid(format!("Missing required param: {required}.")).param(required),
            );
        }
    }
    fields.remove("secret");
    fields.insert("status".into(), Value::String("enabled".into()));
    let connect = form_urlencoded::parse(req.body).any(|(k, v)| k == "connect" && v == "true");
    // A Connect endpoint is the platform's, for its connected accounts' events.
    if connect && req.slot != 0 {
        return Err(ApiError::invalid(
            "connect: only a platform's endpoint receives its connected accounts' events; make it without Stripe-Account.",
        )
        .param("connect"));
    }
    let secret = format!("whsec_{}", crate::ids::base62(&mut rand::rng(), 32));
    let mut object = sim
        .mutate(&scope(sim, req), Some(req.request_id), |data, ctx| {
            mutate::create(data, r, fields, ctx)
        })
        .map_err(|e| mutation_error(e, true))?;
    if let Some(id) = object["id"].as_str() {
        sim.endpoint_secrets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id.to_owned(), secret.clone());
        if connect {
            sim.connect_endpoints
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(id.to_owned());
        }
    }
    object["secret"] = Value::String(secret);
    Ok(Bytes::from(object.to_string()))
}

pub(crate) fn update(
    sim: &Simulator,
    r: &'static Resource,
    req: &ApiRequest<'_>,
    id: &str,
) -> Result<Bytes, ApiError> {
    let mut fields = form_fields(r, req.body, false)?;
    if r.stream == "webhook_endpoints" {
        fields.remove("secret");
        // Stripe's `disabled` parameter sets the endpoint's status.
        let disabled = form_urlencoded::parse(req.body)
            .find(|(k, _)| k == "disabled")
            .map(|(_, v)| v == "true");
        if let Some(disabled) = disabled {
            let status = if disabled { "disabled" } else { "enabled" };
            fields.insert("status".into(), Value::String(status.into()));
        }
    }
    let result = sim.mutate(&scope(sim, req), Some(req.request_id), |data, ctx| {
        mutate::update(data, r, id, fields, ctx, mutate::Announce::WithEvent)
    });
    respond(result, false)
}

pub(crate) fn delete(
    sim: &Simulator,
    r: &'static Resource,
    req: &ApiRequest<'_>,
    id: &str,
) -> Result<Bytes, ApiError> {
    let result = sim.mutate(&scope(sim, req), Some(req.request_id), |data, ctx| {
        mutate::delete(data, r, id, ctx, mutate::Announce::WithEvent)
    });
    respond(result, false)
}

//! Pipelines the console is making or editing, before anything is stored: a draft as the
//! engine's request (a new pipeline's sides as `POST /pipelines` reads them; an edit's changes
//! merged into the stored pipeline as `PATCH` merges them), each side's check, the streams the
//! source offers, and the connectors' config schemas the form is built from.

use serde_json::Value;
use sync_console::{ConnectorForm, Draft, SideCheck, StoredPipeline, StreamOffer};
use sync_engine_api::{EMITTED_BY, Engine, EngineError, PipelineRequest};
use sync_protocol::{Message, Role, Status as CheckStatus};

use crate::activities::all_of;
use crate::api_state::Api;
use crate::pipeline::{self, Pipeline};

/// The connectors a pipeline made in the console uses (the API's defaults).
const SOURCE: &str = "stripe";
const DESTINATION: &str = "postgres";

/// Streams chosen before the user chooses: the objects most Stripe reports start from.
const COMMON_STREAMS: &[&str] = &[
    "customers",
    "products",
    "prices",
    "subscriptions",
    "invoices",
    "charges",
    "payment_intents",
    "refunds",
];

/// The source's and the destination's config schemas, secrets marked `writeOnly` by the rule
/// the API masks them by (so the form never shows one back).
pub(crate) async fn connectors(api: &Api) -> Result<[ConnectorForm; 2], String> {
    let form = |role, name: &'static str| async move {
        let spec = api
            .engine
            .spec(role, name)
            .await
            .map_err(|e| format!("{name}'s spec: {e}"))?;
        let mut schema = spec.config;
        mark_secrets(&mut schema);
        if let Some(properties) = schema["properties"].as_object_mut() {
            // Set by the service from the pipeline's id, never by hand.
            properties.remove("sync_id");
        }
        if name == DESTINATION {
            postgres_form(&mut schema);
        }
        Ok::<_, String>(ConnectorForm {
            name: name.to_owned(),
            schema,
        })
    };
    Ok([
        form(Role::Source, SOURCE).await?,
        form(Role::Destination, DESTINATION).await?,
    ])
}

/// The Postgres destination takes `url` or the reference's `connection_string` (the API reads
/// both as `url`): the form asks for `url`, required, and leaves the alias out.
fn postgres_form(schema: &mut Value) {
    let Some(properties) = schema["properties"].as_object_mut() else {
        return;
    };
    if !(properties.contains_key("url") && properties.remove("connection_string").is_some()) {
        return;
    }
    let mut required: Vec<Value> = schema["required"].as_array().cloned().unwrap_or_default();
    if !required.contains(&Value::from("url")) {
        required.push(Value::from("url"));
    }
    schema["required"] = Value::Array(required);
}

/// `writeOnly: true` on every property the API shows as `***` (by its name), and on those the
/// schema itself calls secret (`secret`, `airbyte_secret`).
fn mark_secrets(schema: &mut Value) {
    let Some(properties) = schema["properties"].as_object_mut() else {
        return;
    };
    for (key, property) in properties.iter_mut() {
        let flagged = property["secret"] == true || property["airbyte_secret"] == true;
        if let (true, Some(p)) = (
            flagged || sync_connector::redact::is_secret_name(key),
            property.as_object_mut(),
        ) {
            p.insert("writeOnly".to_owned(), Value::Bool(true));
        }
    }
}

/// A pipeline as stored, as the API shows it.
pub(crate) async fn stored(api: &Api, id: &str) -> Result<Option<StoredPipeline>, String> {
    match api.visible(id).await {
        Ok(p) => {
            let shown = p.shown();
            Ok(Some(StoredPipeline {
                source: shown["source"].clone(),
                destination: shown["destination"].clone(),
                streams: shown["streams"].clone(),
            }))
        }
        Err(failure) if failure.0 == axum::http::StatusCode::NOT_FOUND => Ok(None),
        Err(failure) => Err(failure.1),
    }
}

/// The engine's request for a draft, every stream (a check and a discover need no choice).
async fn request(api: &Api, draft: &Draft) -> Result<PipelineRequest, String> {
    let p = match &draft.pipeline {
        Some(id) => edited(api, id, draft).await?,
        None => Pipeline::new(
            "console-draft".to_owned(),
            side("source", &draft.source, SOURCE)?,
            side("destination", &draft.destination, DESTINATION)?,
            None,
        ),
    };
    p.request().map_err(|e| e.0)
}

fn side(field: &str, value: &Value, default: &str) -> Result<Value, String> {
    if value.is_null() {
        return Err(format!("{field}: required"));
    }
    pipeline::connector_side(field, value, default).map_err(|e| e.0)
}

/// The stored pipeline with an edit's changes, merged as `PATCH` merges them.
async fn edited(api: &Api, id: &str, draft: &Draft) -> Result<Pipeline, String> {
    let mut p = api.visible(id).await.map_err(|f| f.1)?;
    if !draft.source.is_null() {
        p.source =
            crate::side_update::merged_side("source", &p.source, &draft.source).map_err(|f| f.1)?;
    }
    if !draft.destination.is_null() {
        p.destination =
            crate::side_update::merged_side("destination", &p.destination, &draft.destination)
                .map_err(|f| f.1)?;
    }
    p.streams = None;
    Ok(p)
}

/// Each side's `connection_status`.
pub(crate) async fn check(api: &Api, draft: &Draft) -> Result<Vec<SideCheck>, String> {
    let request = request(api, draft).await?;
    let messages = api.engine.check(&request, None).await.map_err(refused)?;
    let mut sides = Vec::new();
    for message in all_of(messages).await {
        let Message::ConnectionStatus(status) = message else {
            continue;
        };
        let by = status.extra.get(EMITTED_BY).and_then(Value::as_str);
        let side = by.and_then(|b| b.split('/').next()).unwrap_or("connector");
        sides.push(SideCheck {
            side: side.to_owned(),
            ok: status.status == CheckStatus::Succeeded,
            message: status.message.clone().unwrap_or_default(),
        });
    }
    Ok(sides)
}

/// The streams the draft's source offers, from its discover, by name.
pub(crate) async fn streams(api: &Api, draft: &Draft) -> Result<Vec<StreamOffer>, String> {
    let request = request(api, draft).await?;
    let messages = api.engine.discover(&request).await.map_err(refused)?;
    let mut catalog = None;
    let mut failure = None;
    for message in all_of(messages).await {
        match message {
            Message::Catalog(c) => catalog = Some(c),
            Message::ConnectionStatus(s) if s.status == CheckStatus::Failed => failure = s.message,
            _ => {}
        }
    }
    // Why there is none, when the source said (a refused key names `api_key`).
    let catalog = catalog.ok_or_else(|| match failure {
        Some(why) => format!("source: its discover failed: {why}"),
        None => "source: its discover gave no catalog".to_owned(),
    })?;
    let mut offers: Vec<StreamOffer> = catalog
        .streams
        .iter()
        .map(|s| StreamOffer {
            common: COMMON_STREAMS.contains(&s.name.as_str()),
            name: s.name.clone(),
        })
        .collect();
    offers.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(offers)
}

/// An engine error as the form shows it: a wrong request names its field; anything else says
/// which step could not run.
fn refused(e: EngineError) -> String {
    match e {
        EngineError::Invalid(why) => why,
        other => format!("the connectors could not be run: {other}"),
    }
}

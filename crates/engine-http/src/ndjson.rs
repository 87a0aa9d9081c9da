//! Responses: NDJSON streams of messages flushed as they come, and JSON errors.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use sync_protocol::{ConnectionStatus, Control, Eof, EofReason, FailureType, Message, RunStatus};

use sync_engine_api::{Emitted, Emitter, EngineError, Messages};
use sync_engine_runtime::FailureCode;

/// `{"error": message}` with a status.
pub(super) fn error_response(status: StatusCode, message: &str) -> Response {
    let body = sync_engine_api::wire::error_body(&sync_connector::redact::redact(message));
    (status, axum::Json(body)).into_response()
}

/// An engine error before streaming: 400 for a bad request, 404, 429 (with Retry-After),
/// 502 for a connector that failed, 500 otherwise.
pub(super) fn engine_error_response(e: EngineError) -> Response {
    let message = format!("{e:#}");
    let mut response = match &e {
        EngineError::Invalid(_) => error_response(StatusCode::BAD_REQUEST, &message),
        EngineError::NotFound(_) => error_response(StatusCode::NOT_FOUND, &message),
        EngineError::Busy(_) => error_response(StatusCode::TOO_MANY_REQUESTS, &message),
        EngineError::Connector(_) => error_response(StatusCode::BAD_GATEWAY, &message),
        EngineError::Internal(_) => {
            tracing::error!("{}", sync_connector::redact::redact(&message));
            error_response(StatusCode::INTERNAL_SERVER_ERROR, &message)
        }
    };
    if matches!(e, EngineError::Busy(_)) {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    response
}

/// One line: the message with who emitted it and when (`_emitted_by`, `_ts`) on its envelope.
fn line(emitted: &Emitted) -> Bytes {
    let mut text = emitted.to_line();
    // A connector's config update is the client's own config and what was made for it (a
    // webhook secret): it goes back whole, as the reference's does, for the client to use.
    // Other connector messages can echo anything; registered secrets never leave the engine.
    if !is_config_update(&emitted.message) {
        text = sync_connector::redact::redact(&text).into_owned();
    }
    text.push('\n');
    Bytes::from(text)
}

/// What a stream must end with.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Ending {
    /// Whatever the operation sent.
    AsIs,
    /// Exactly one `eof`, last: a stream that ends without one gets a failure and an `eof`.
    Eof,
}

/// A 200 `application/x-ndjson` response of the messages, one per line, each written as it
/// comes. Dropping the response (the client went away) drops the messages, which cancels the
/// operation.
pub(super) fn stream_response(messages: Messages, ending: Ending) -> Response {
    let mut saw_eof = false;
    let body = messages
        .map(Some)
        .chain(futures_util::stream::once(async { None }))
        .filter_map(move |item| {
            let out = match item {
                Some(emitted) => {
                    if saw_eof {
                        // Nothing follows the eof.
                        None
                    } else {
                        saw_eof = matches!(emitted.message, Message::Eof(_));
                        Some(line(&emitted))
                    }
                }
                None if ending == Ending::Eof && !saw_eof => Some(truncated_ending()),
                None => None,
            };
            async move { out.map(Ok::<_, Infallible>) }
        });
    let mut response = Response::new(Body::from_stream(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn is_config_update(message: &Message) -> bool {
    matches!(
        message,
        Message::Control(Control::SourceConfig(_) | Control::DestinationConfig(_))
    )
}

/// The end of a stream whose operation stopped without an eof.
fn truncated_ending() -> Bytes {
    let why = "the engine's run ended without an eof (an internal error; see the engine's log)";
    let engine = Emitter::engine();
    let status = Message::ConnectionStatus(ConnectionStatus::failed(
        why,
        Some(FailureType::SystemError),
    ));
    let eof = Message::Eof(Box::new(Eof {
        status: RunStatus::Failed,
        reason: Some(EofReason::Error),
        has_more: true,
        ending_state: None,
        run_progress: None,
        request_progress: None,
        error: Some(FailureCode::Internal.error(why)),
        extra: Default::default(),
    }));
    let mut bytes = line(&Emitted::new(&engine, status)).to_vec();
    bytes.extend_from_slice(&line(&Emitted::new(&engine, eof)));
    Bytes::from(bytes)
}

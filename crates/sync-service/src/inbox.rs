//! The live lane's batches: the webhook events waiting in the inbox, oldest first, as many as
//! fit one engine request. Sized in bytes, not only in events: a remote engine
//! (`sync-engine serve`) refuses a body over its limit, and a batch it refuses on every try
//! would stop the lane for good.

use serde::{Deserialize, Deserializer, Serialize};
use sync_engine_api::{PipelineRequest, SyncRequest};

use crate::control::{Control, ControlError};

/// Events in one batch at most.
pub const INBOX_BATCH: i64 = 1000;

/// One batch's request body at most: a quarter of what `sync-engine serve` takes, so that a batch
/// stays a short engine run. A single event over it (webhooks may be 2 MB) goes alone.
const BATCH_BODY_BYTES: usize = sync_engine_api::MAX_BODY_BYTES / 4;

/// What the body holds per event besides the event: `{"type":"source_input","source_input":…},`.
const PER_EVENT_BYTES: usize = 40;

/// `,"stdin":[]` around the events.
const STDIN_BYTES: usize = 11;

/// What one run of the live lane did, for the workflow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct InboxBatch {
    /// Events applied.
    pub applied: u64,
    /// More events were waiting than this batch took: the workflow runs another at once.
    pub more: bool,
}

impl<'de> Deserialize<'de> for InboxBatch {
    /// Histories recorded before batches were sized in bytes hold a bare count of events; the
    /// workflow then asked for more after a full batch, and replays the same way.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<InboxBatch, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Recorded {
            Count(u64),
            Batch { applied: u64, more: bool },
        }
        Ok(match Recorded::deserialize(d)? {
            Recorded::Count(applied) => InboxBatch {
                applied,
                more: applied >= INBOX_BATCH as u64,
            },
            Recorded::Batch { applied, more } => InboxBatch { applied, more },
        })
    }
}

/// The next batch: the events' ids, the engine request carrying them, and whether more wait.
pub struct Batch {
    /// The ids of the events in the batch, in order.
    pub ids: Vec<String>,
    /// The engine run that applies them.
    pub sync: SyncRequest,
    /// Whether more events wait after this batch.
    pub more: bool,
}

/// Why no batch can be made.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// The control database failed.
    #[error(transparent)]
    Control(#[from] ControlError),
    /// One event makes a request the engine would refuse on every try.
    #[error(
        "webhook event {event} alone makes a request of {bytes} bytes, over the {} the engine takes; it stays in the inbox",
        sync_engine_api::MAX_BODY_BYTES
    )]
    TooLarge {
        /// The event's id.
        event: String,
        /// The size of the request it alone makes.
        bytes: usize,
    },
}

/// The oldest waiting events that fit one request with `template` (the checkpoint and limits
/// sent with them); `None` when none wait.
pub async fn next_batch(
    control: &Control,
    pipeline_id: &str,
    request: &PipelineRequest,
    template: SyncRequest,
) -> Result<Option<Batch>, BatchError> {
    // Sizes first (as Postgres prints each event, never shorter than the request's JSON), so
    // that only the events taken are read.
    let waiting = control.inbox_sizes(pipeline_id, INBOX_BATCH + 1).await?;
    if waiting.is_empty() {
        return Ok(None);
    }
    let mut total = body_bytes(request, &template) + STDIN_BYTES;
    let mut take = 0;
    for (_, size) in waiting.iter().take(INBOX_BATCH as usize) {
        let size = usize::try_from(*size).unwrap_or(usize::MAX);
        let with = total.saturating_add(size).saturating_add(PER_EVENT_BYTES);
        if take > 0 && with > BATCH_BODY_BYTES {
            break;
        }
        total = with;
        take += 1;
    }
    let ids: Vec<String> = waiting[..take].iter().map(|(id, _)| id.clone()).collect();
    let events = control.inbox_events(pipeline_id, &ids).await?;
    let (mut ids, input): (Vec<String>, Vec<serde_json::Value>) = events.into_iter().unzip();
    if ids.is_empty() {
        // Applied meanwhile (by an overlapping try of this activity): nothing left to send.
        return Ok(None);
    }
    let mut sync = SyncRequest { input, ..template };
    // The exact body, in case an estimate fell short.
    let mut bytes = body_bytes(request, &sync);
    while bytes > BATCH_BODY_BYTES && sync.input.len() > 1 {
        sync.input.pop();
        ids.pop();
        bytes = body_bytes(request, &sync);
    }
    if bytes > sync_engine_api::MAX_BODY_BYTES {
        return Err(BatchError::TooLarge {
            event: ids.first().cloned().unwrap_or_default(),
            bytes,
        });
    }
    let more = waiting.len() > ids.len();
    Ok(Some(Batch { ids, sync, more }))
}

/// The size of the body a remote engine is sent for this request.
fn body_bytes(request: &PipelineRequest, sync: &SyncRequest) -> usize {
    let mut counter = Counter(0);
    // Writing a JSON value into a counter cannot fail.
    let _ = serde_json::to_writer(
        &mut counter,
        &sync_engine_api::wire::sync_json(request, sync),
    );
    counter.0
}

/// Counts the bytes written to it.
struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_count_replays_as_the_workflow_then_decided() {
        let read = |text: &str| serde_json::from_str::<InboxBatch>(text).unwrap();
        assert_eq!(
            read("3"),
            InboxBatch {
                applied: 3,
                more: false
            }
        );
        assert_eq!(
            read("1000"),
            InboxBatch {
                applied: 1000,
                more: true
            }
        );
        let batch = InboxBatch {
            applied: 2,
            more: true,
        };
        assert_eq!(read(&serde_json::to_string(&batch).unwrap()), batch);
    }

    #[test]
    fn the_overhead_constants_are_what_the_body_holds() {
        let pipeline = crate::pipeline::Pipeline {
            id: "p".into(),
            source: serde_json::json!({"name": "stripe", "config": {"api_key": "sk_test_1"}}),
            destination: serde_json::json!({"name": "postgres", "config": {}}),
            streams: None,
            desired: crate::pipeline::Desired::Active,
            status: crate::pipeline::Status::Ready,
            failure_type: None,
            error: None,
            live_failure_type: None,
            live_error: None,
        };
        let request = pipeline.request().unwrap();
        let empty = body_bytes(&request, &SyncRequest::default());
        let event = serde_json::json!({"id": "evt_1"});
        let one = SyncRequest {
            input: vec![event.clone()],
            ..Default::default()
        };
        let two = SyncRequest {
            input: vec![event.clone(), event.clone()],
            ..Default::default()
        };
        let size = event.to_string().len();
        assert_eq!(
            body_bytes(&request, &one),
            empty + STDIN_BYTES + size + PER_EVENT_BYTES - 1
        );
        assert_eq!(
            body_bytes(&request, &two),
            body_bytes(&request, &one) + size + PER_EVENT_BYTES
        );
    }
}

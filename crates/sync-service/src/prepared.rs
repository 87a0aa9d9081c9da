//! The catalog each pipeline's webhook batches run with. Once a batch has run the whole way
//! (discover and setup included) for a pipeline as it is now, its source's catalog is kept, and
//! the next batches hand it to the engine as `SyncRequest::prepared`: they run neither discover
//! nor setup (which may list webhook endpoints at Stripe). Kept per pipeline under a digest of
//! what discover and setup depend on (both connectors, their configs, the streams), so any
//! change (a PATCH, a new webhook secret) makes the next batch run whole again. A batch that
//! fails with a kept catalog forgets it, so that its retry runs whole: what setup made may be
//! gone behind the digest's back (a teardown through the API, a table dropped by hand). In
//! memory, per worker: a restarted worker runs one whole batch per pipeline first.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;

use sync_engine_api::PipelineRequest;
use sync_protocol::Catalog;

/// At most this many pipelines' catalogs are kept; past it, the next kept replaces them all.
const MAX_PIPELINES: usize = 256;

/// A catalog this large (as JSON) is not kept: it would crowd the events out of a batch's body.
const MAX_CATALOG_BYTES: usize = 512 * 1024;

/// The catalogs, by pipeline id.
#[derive(Default)]
pub struct PreparedCatalogs(Mutex<HashMap<String, (u64, Catalog)>>);

fn digest(request: &PipelineRequest) -> u64 {
    let mut hasher = DefaultHasher::new();
    sync_engine_api::wire::pipeline_json(request)
        .to_string()
        .hash(&mut hasher);
    hasher.finish()
}

impl PreparedCatalogs {
    /// The catalog kept for this pipeline as `request` describes it now, if any.
    pub fn get(&self, pipeline_id: &str, request: &PipelineRequest) -> Option<Catalog> {
        let kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        kept.get(pipeline_id)
            .filter(|(at, _)| *at == digest(request))
            .map(|(_, catalog)| catalog.clone())
    }

    /// Keeps `catalog` for this pipeline as `request` describes it (after a whole batch).
    pub fn keep(&self, pipeline_id: &str, request: &PipelineRequest, catalog: Catalog) {
        let size = serde_json::to_vec(&catalog).map_or(usize::MAX, |b| b.len());
        if size > MAX_CATALOG_BYTES {
            return;
        }
        let mut kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() >= MAX_PIPELINES && !kept.contains_key(pipeline_id) {
            kept.clear();
        }
        kept.insert(pipeline_id.to_owned(), (digest(request), catalog));
    }

    /// Forgets this pipeline's catalog: its next batch runs discover and setup again.
    pub fn forget(&self, pipeline_id: &str) {
        let mut kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        kept.remove(pipeline_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sync_engine_api::ConnectorConfig;

    fn request(secret: &str) -> PipelineRequest {
        PipelineRequest {
            source: ConnectorConfig {
                name: "stripe".into(),
                config: json!({"api_key": "sk_test_x", "webhook_secret": secret})
                    .as_object()
                    .unwrap()
                    .clone(),
            },
            destination: ConnectorConfig {
                name: "postgres".into(),
                config: Default::default(),
            },
            streams: None,
            sync_id: None,
        }
    }

    #[test]
    fn a_catalog_is_kept_for_the_pipeline_as_it_was_only() {
        let catalogs = PreparedCatalogs::default();
        let catalog: Catalog = serde_json::from_value(json!({"streams": []})).unwrap();
        assert!(catalogs.get("p", &request("whsec_1")).is_none());
        catalogs.keep("p", &request("whsec_1"), catalog);
        assert!(catalogs.get("p", &request("whsec_1")).is_some());
        assert!(
            catalogs.get("p", &request("whsec_2")).is_none(),
            "a changed config"
        );
        assert!(
            catalogs.get("q", &request("whsec_1")).is_none(),
            "another pipeline"
        );
        catalogs.forget("p");
        assert!(
            catalogs.get("p", &request("whsec_1")).is_none(),
            "forgotten"
        );
    }
}

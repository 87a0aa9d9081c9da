//! The web explorer `sync-engine serve` mounts (crate `sync-console`): the catalog of the source
//! named by `--explorer-config`, discovered once through the server's engine, and row counts
//! from that pipeline's destination when it is Postgres.

use std::sync::Arc;

use axum::Router;
use futures_util::future::BoxFuture;
use sync_console::{Destination, ExplorerData};
use sync_engine_http::Mount;
use sync_engine_runtime::local::LocalEngine;
use sync_protocol::{Catalog, Message, Status as CheckStatus};
use tokio::sync::Mutex;

use sync_engine_api::{Engine, PipelineRequest};

/// The pages `serve` mounts: the explorer, and `/` leading to it.
pub(crate) fn pages(mount: Mount) -> Router {
    let chrome = sync_console::Chrome {
        sql: mount.token.is_some() || mount.local_only,
        // Checked before serving (`commands.rs`).
        sql_reader: mount
            .sql_reader_url
            .as_deref()
            .and_then(|url| sync_console::SqlReader::parse(url).ok()),
        token: mount.token,
        pipelines: false,
        host: "sync-engine",
    };
    let explorer = EngineExplorer {
        engine: mount.engine,
        pipeline: mount.explorer,
        catalog: Mutex::new(None),
    };
    sync_console::router(chrome, Arc::new(explorer), None).route(
        "/",
        axum::routing::get(|| async { axum::response::Redirect::to("/explorer") }),
    )
}

/// The explorer's data source.
struct EngineExplorer {
    engine: Arc<LocalEngine>,
    /// The pipeline of `--explorer-config`, if any.
    pipeline: Option<PipelineRequest>,
    /// Discovered once; a failed discover is tried again at the next page.
    catalog: Mutex<Option<Arc<Catalog>>>,
}

impl EngineExplorer {
    async fn discover(&self, pipeline: &PipelineRequest) -> Result<Catalog, String> {
        let mut messages = self
            .engine
            .discover(pipeline)
            .await
            .map_err(|e| format!("discover of source {:?}: {e}", pipeline.source.name))?;
        let mut failure = None;
        while let Some(message) = messages.next().await {
            match message {
                Message::Catalog(catalog) => return Ok(catalog),
                Message::ConnectionStatus(s) if s.status == CheckStatus::Failed => {
                    failure = s.message;
                }
                _ => {}
            }
        }
        Err(format!(
            "discover of source {:?} gave no catalog: {}",
            pipeline.source.name,
            failure.unwrap_or_else(|| "no reason given".to_owned())
        ))
    }
}

impl ExplorerData for EngineExplorer {
    fn catalog(&self) -> BoxFuture<'_, Result<Arc<Catalog>, String>> {
        Box::pin(async move {
            let Some(pipeline) = &self.pipeline else {
                return Err("no catalog to explore: start sync-engine serve with --explorer-config FILE (a pipeline file, as `sync-engine sync --config` takes)".to_owned());
            };
            let mut cached = self.catalog.lock().await;
            if let Some(catalog) = cached.as_ref() {
                return Ok(catalog.clone());
            }
            let catalog = Arc::new(self.discover(pipeline).await?);
            *cached = Some(catalog.clone());
            Ok(catalog)
        })
    }

    fn destinations(&self) -> BoxFuture<'_, Result<Vec<Destination>, String>> {
        let found = self.pipeline.as_ref().and_then(|p| {
            let config = &p.destination.config;
            (p.destination.name == sync_engine_runtime::builtin::POSTGRES).then_some(())?;
            Some(Destination {
                label: "destination".to_owned(),
                // `connection_string` is the reference's name for it, which dest-postgres takes.
                url: config
                    .get("url")
                    .or_else(|| config.get("connection_string"))?
                    .as_str()?
                    .to_owned(),
                schema: config
                    .get("schema")
                    .and_then(|s| s.as_str())
                    .unwrap_or(sync_engine_runtime::builtin::DEFAULT_SCHEMA)
                    .to_owned(),
            })
        });
        Box::pin(std::future::ready(Ok(found.into_iter().collect())))
    }
}

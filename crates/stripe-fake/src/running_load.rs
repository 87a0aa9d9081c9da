//! The handle of a running load (`POST /_fake/load`): stopping it is dropping it.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

/// A running load.
pub(crate) struct Load {
    pub(crate) task: tokio::task::JoinHandle<()>,
    pub(crate) mutations: Arc<AtomicU64>,
}

impl Drop for Load {
    fn drop(&mut self) {
        self.task.abort();
    }
}

//! Saved histories of the pipeline workflow and its child (recorded by `tests/service.rs` with
//! `RECORD_HISTORIES=1`) replay against the current workflow code: a change that would break
//! running workflows (non-determinism) fails here, without a server.

use sync_service::workflow::{PipelineWorkflow, SyncWorkflow};
use temporalio_client::WorkflowHistory;
use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};

#[tokio::test]
async fn saved_histories_replay_with_the_current_workflow() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("histories");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no saved histories in {}", dir.display());
    let replayer = WorkflowReplayer::new(
        WorkflowReplayerOptions::new()
            .register_workflow::<PipelineWorkflow>()
            .unwrap()
            .register_workflow::<SyncWorkflow>()
            .unwrap()
            .build(),
    )
    .unwrap();
    for path in files {
        let bytes = std::fs::read(&path).unwrap();
        let history = WorkflowHistory::from_json(&bytes)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        replayer
            .replay_workflow(history)
            .await
            .unwrap_or_else(|e| panic!("replay of {} failed: {e}", path.display()));
    }
}

-- Applied events are deleted a week later, at each applied batch: this index makes that a
-- range scan of the old rows only, not a scan of the pipeline's whole week.
CREATE INDEX webhook_inbox_applied ON sync_service.webhook_inbox (pipeline_id, applied_at)
    WHERE applied_at IS NOT NULL;

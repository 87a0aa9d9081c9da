-- Whose a checkpoint is: what the source read and where the destination wrote when it was
-- saved ({"source": …, "destination": …}, without secrets). A step whose pipeline now reads or
-- writes elsewhere starts over instead of resuming it. NULL: not known yet (the next step
-- records it). And when and why the checkpoint was last reset, as GET /pipelines/{id} shows.
ALTER TABLE sync_service.pipeline_state
    ADD COLUMN owner jsonb,
    ADD COLUMN reset_at timestamptz,
    ADD COLUMN reset_reason text;

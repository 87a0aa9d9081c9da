-- What the console shows: each run's newest progress report and the records it committed, and
-- per pipeline the records committed over all runs (in all and per stream), kept as running
-- sums so the list never scans the runs.
ALTER TABLE sync_service.runs
    ADD COLUMN progress jsonb,
    ADD COLUMN records bigint NOT NULL DEFAULT 0;
ALTER TABLE sync_service.pipeline_state
    ADD COLUMN records bigint NOT NULL DEFAULT 0,
    ADD COLUMN stream_records jsonb NOT NULL DEFAULT '{}';

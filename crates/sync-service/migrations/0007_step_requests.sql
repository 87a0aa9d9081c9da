-- Steps asked for through the API (POST /pipelines/{id}/sync and sync_batch), with the run's
-- settings the caller gave. The next step of the pipeline's workflow takes the oldest one
-- (`run` is then the run that serves it) and records its messages, which the API streams to
-- the caller: the workflow's step stays the checkpoint's only writer.
CREATE TABLE sync_service.step_requests (
    id           bigserial PRIMARY KEY,
    pipeline_id  text NOT NULL REFERENCES sync_service.pipelines (id) ON DELETE CASCADE,
    time_limit   double precision,
    state_limit  bigint,
    run_name     text,
    reset_state  boolean NOT NULL DEFAULT false,
    requested_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    run          bigint REFERENCES sync_service.runs (id) ON DELETE CASCADE
);
CREATE INDEX step_requests_pending ON sync_service.step_requests (pipeline_id, id)
    WHERE run IS NULL;

-- The messages of a run that serves a request, in order (records never pass the engine).
CREATE TABLE sync_service.run_messages (
    run_id  bigint NOT NULL REFERENCES sync_service.runs (id) ON DELETE CASCADE,
    seq     integer NOT NULL,
    message jsonb NOT NULL,
    PRIMARY KEY (run_id, seq)
);

-- The control database: pipelines, their checkpoints (fenced), runs and the webhook inbox.
CREATE TABLE sync_service.pipelines (
    id             text PRIMARY KEY,
    source         jsonb NOT NULL,
    destination    jsonb NOT NULL,
    streams        jsonb,
    -- What the user wants: active, paused or deleted.
    desired_status text NOT NULL DEFAULT 'active',
    -- What is: backfilling, ready, paused, error, tearing_down or deleted.
    status         text NOT NULL DEFAULT 'backfilling',
    failure_type   text,
    error          text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- One checkpoint per pipeline. `fence` grows each time an activity claims the pipeline; a save
-- carries the claimant's fence and is refused once a newer claim exists, so a zombie activity
-- never overwrites newer state.
CREATE TABLE sync_service.pipeline_state (
    pipeline_id text PRIMARY KEY REFERENCES sync_service.pipelines (id) ON DELETE CASCADE,
    state       jsonb NOT NULL DEFAULT '{}',
    fence       bigint NOT NULL DEFAULT 0,
    saves       bigint NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sync_service.runs (
    id          bigserial PRIMARY KEY,
    pipeline_id text NOT NULL REFERENCES sync_service.pipelines (id) ON DELETE CASCADE,
    fence       bigint NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    ended_at    timestamptz,
    status      text NOT NULL DEFAULT 'started',
    has_more    boolean,
    states      bigint NOT NULL DEFAULT 0,
    error       text
);
CREATE INDEX runs_by_pipeline ON sync_service.runs (pipeline_id, id DESC);

-- Webhook events, durable before they are acknowledged; applied_at is set once a run applied them.
CREATE TABLE sync_service.webhook_inbox (
    pipeline_id text NOT NULL REFERENCES sync_service.pipelines (id) ON DELETE CASCADE,
    event_id    text NOT NULL,
    payload     jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    applied_at  timestamptz,
    PRIMARY KEY (pipeline_id, event_id)
);
CREATE INDEX webhook_inbox_pending ON sync_service.webhook_inbox (pipeline_id, received_at)
    WHERE applied_at IS NULL;

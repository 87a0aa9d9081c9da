-- Pipelines waiting for their account's step lock, so that the lock goes in turn: a pipeline
-- whose backfill goes on does not take the lock again while another has waited longer.
-- `seen` is refreshed at every try; a row not seen for a while is not waiting any more.
CREATE TABLE sync_service.account_waiters (
    account     text NOT NULL,
    pipeline_id text NOT NULL REFERENCES sync_service.pipelines (id) ON DELETE CASCADE,
    since       timestamptz NOT NULL DEFAULT now(),
    seen        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account, pipeline_id)
);

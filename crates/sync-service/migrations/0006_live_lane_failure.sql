-- The live lane's failure: webhook events it could not apply (set by each failed batch, cleared
-- by the next applied one or an empty inbox). A pipeline otherwise ready or backfilling shows
-- it as its status, so a lane that is down is never reported `ready`.
ALTER TABLE sync_service.pipelines
    ADD COLUMN live_failure_type text,
    ADD COLUMN live_error text;

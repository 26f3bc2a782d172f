-- +goose Up
-- Quarantine: a file refused by decoding, validation or the database is
-- recorded with its reason as 'failed', in the same transaction style as
-- ingested files, so later runs skip it until its ETag changes (or a run asks
-- retry_failed=true).
ALTER TABLE ingested_objects DROP CONSTRAINT ingested_objects_outcome_check;
ALTER TABLE ingested_objects ADD CONSTRAINT ingested_objects_outcome_check
    CHECK (outcome IN ('ingested', 'duplicate-snapshot', 'failed'));
ALTER TABLE ingested_objects ADD COLUMN reason text NOT NULL DEFAULT '';
CREATE INDEX ingested_objects_failed ON ingested_objects (bucket, key) WHERE outcome = 'failed';

-- +goose Down
DELETE FROM ingested_objects WHERE outcome = 'failed';
DROP INDEX ingested_objects_failed;
ALTER TABLE ingested_objects DROP COLUMN reason;
ALTER TABLE ingested_objects DROP CONSTRAINT ingested_objects_outcome_check;
ALTER TABLE ingested_objects ADD CONSTRAINT ingested_objects_outcome_check
    CHECK (outcome IN ('ingested', 'duplicate-snapshot'));

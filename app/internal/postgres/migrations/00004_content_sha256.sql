-- +goose Up
-- A list-format file has no snapshot time to recognise a repeat by: the
-- SHA-256 of its bytes does. A version of a key whose bytes were already
-- ingested from another version of it (another ETag: re-encryption, another
-- multipart part size, a copy) is recorded as 'duplicate-content' and counts
-- nothing. Rows ingested before this migration have no hash.
ALTER TABLE ingested_objects ADD COLUMN content_sha256 bytea;
ALTER TABLE ingested_objects DROP CONSTRAINT ingested_objects_outcome_check;
ALTER TABLE ingested_objects ADD CONSTRAINT ingested_objects_outcome_check
    CHECK (outcome IN ('ingested', 'duplicate-snapshot', 'duplicate-content', 'failed'));

-- +goose Down
DELETE FROM ingested_objects WHERE outcome = 'duplicate-content';
ALTER TABLE ingested_objects DROP CONSTRAINT ingested_objects_outcome_check;
ALTER TABLE ingested_objects ADD CONSTRAINT ingested_objects_outcome_check
    CHECK (outcome IN ('ingested', 'duplicate-snapshot', 'failed'));
ALTER TABLE ingested_objects DROP COLUMN content_sha256;

-- +goose Up
-- Runs may overlap (many workers, retried batches): a snapshot time is claimed
-- in snapshots, and the bytes of a list-format file (no snapshot time) under
-- its key are claimed here, in the transaction of the batch, so that two runs
-- committing the same bytes under two ETags at once count them once.
CREATE TABLE contents (
    bucket         text  NOT NULL,
    key            text  NOT NULL,
    content_sha256 bytea NOT NULL,
    etag           text  NOT NULL,
    PRIMARY KEY (bucket, key, content_sha256)
);
INSERT INTO contents (bucket, key, content_sha256, etag)
SELECT DISTINCT ON (bucket, key, content_sha256) bucket, key, content_sha256, etag FROM ingested_objects
WHERE outcome = 'ingested' AND snapshot_at IS NULL AND content_sha256 IS NOT NULL
ORDER BY bucket, key, content_sha256, ingested_at;

-- +goose Down
DROP TABLE contents;

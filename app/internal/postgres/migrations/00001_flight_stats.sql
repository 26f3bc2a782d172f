-- +goose Up
-- Per-aircraft statistics, kept as sums and counts so that batches merge
-- exactly (averages are computed on read).
CREATE TABLE aircraft_stats (
    icao            text PRIMARY KEY,
    registration    text,
    registration_at timestamptz,
    type            text,
    type_at         timestamptz,
    observations    bigint           NOT NULL,
    first_seen      timestamptz      NOT NULL,
    last_seen       timestamptz      NOT NULL,
    altitude_count  bigint           NOT NULL,
    altitude_sum    double precision NOT NULL,
    altitude_max    double precision,
    speed_count     bigint           NOT NULL,
    speed_sum       double precision NOT NULL,
    speed_max       double precision,
    emergencies     text[]           NOT NULL DEFAULT '{}'
);

-- The ledger of processed objects, written in the same transaction as the
-- statistics they produced: a rerun skips what is here.
CREATE TABLE ingested_objects (
    bucket       text        NOT NULL,
    key          text        NOT NULL,
    etag         text        NOT NULL,
    version_id   text        NOT NULL DEFAULT '',
    size         bigint      NOT NULL,
    snapshot_at  timestamptz,
    outcome      text        NOT NULL CHECK (outcome IN ('ingested', 'duplicate-snapshot')),
    observations bigint      NOT NULL,
    ingested_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (bucket, key, etag)
);

-- One row per snapshot time: the same snapshot under another key counts once.
CREATE TABLE snapshots (
    snapshot_at timestamptz PRIMARY KEY,
    bucket      text NOT NULL,
    key         text NOT NULL
);

-- newer says whether a value seen at a should replace one seen at b: the
-- last non-empty registration or type wins.
-- +goose StatementBegin
CREATE FUNCTION newer(a timestamptz, b timestamptz) RETURNS boolean
    LANGUAGE sql IMMUTABLE AS $$ SELECT a IS NOT NULL AND (b IS NULL OR a >= b) $$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION newer(timestamptz, timestamptz);
DROP TABLE snapshots;
DROP TABLE ingested_objects;
DROP TABLE aircraft_stats;

-- +goose Up
-- Backfills (internal/backfill), so that any instance answers for any of
-- them and stops it. A running local backfill's instance renews lease_until;
-- past it, the backfill reads as failed "instance lost".
CREATE TABLE backfills (
    id              text PRIMARY KEY,
    bucket          text NOT NULL,
    request         jsonb NOT NULL,
    state           text NOT NULL,
    runner          text NOT NULL,
    execution       text NOT NULL DEFAULT '',
    batch_size      integer NOT NULL,
    concurrency     integer NOT NULL,
    listing_done    boolean NOT NULL DEFAULT false,
    batches_listed  bigint NOT NULL DEFAULT 0,
    batches_done    bigint NOT NULL DEFAULT 0,
    batches_failed  bigint NOT NULL DEFAULT 0,
    files           bigint NOT NULL DEFAULT 0,
    files_ingested  bigint NOT NULL DEFAULT 0,
    files_failed    bigint NOT NULL DEFAULT 0,
    bytes           bigint NOT NULL DEFAULT 0,
    observations    bigint NOT NULL DEFAULT 0,
    failed_batches  jsonb NOT NULL DEFAULT '[]',
    error           text NOT NULL DEFAULT '',
    stop_requested  boolean NOT NULL DEFAULT false,
    started         timestamptz NOT NULL DEFAULT now(),
    finished        timestamptz,
    lease_until     timestamptz NOT NULL
);
CREATE INDEX backfills_running ON backfills (state) WHERE state = 'running';

-- +goose Down
DROP TABLE backfills;

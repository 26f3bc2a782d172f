-- +goose Up
-- Background jobs, so that any instance answers for any job. A running
-- job's instance renews lease_until; past it, the job is failed "instance
-- lost" by whoever reads it.
CREATE TABLE jobs (
    id          text PRIMARY KEY,
    kind        text NOT NULL,
    request_id  text NOT NULL DEFAULT '',
    state       text NOT NULL,
    started     timestamptz NOT NULL,
    finished    timestamptz,
    progress    jsonb NOT NULL DEFAULT '{}',
    result      jsonb,
    error       text NOT NULL DEFAULT '',
    instance    text NOT NULL,
    lease_until timestamptz NOT NULL
);
CREATE INDEX jobs_finished ON jobs (finished) WHERE finished IS NOT NULL;

-- +goose Down
DROP TABLE jobs;

// Package backfillstore keeps the service's backfills in PostgreSQL (backfill.Store and StepFunctions' ExecutionStore),
// in the backfills table of package postgres's schema, so that any instance answers for any backfill and
// BACKFILL_MAX_RUNNING counts those of every instance.
package backfillstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aircraftdata/platform/app/internal/backfill"
	"github.com/aircraftdata/platform/app/internal/postgres"
)

// Store keeps backfills, on the work's pool.
type Store struct {
	pool *pgxpool.Pool
}

// New returns the store of the backfills in db.
func New(db *postgres.DB) *Store { return &Store{pool: db.Pool()} }

// backfillsLock is the transaction-level advisory lock that makes counting the running backfills and inserting one
// atomic across instances.
const backfillsLock = 0x6261636b66696c6c // "backfill"

// CreateBackfill inserts b, running and leased for lease, unless maxRunning backfills run (leases not run out) already:
// backfill.ErrFull.
func (st *Store) CreateBackfill(ctx context.Context, b backfill.Backfill, maxRunning int, lease time.Duration) error {
	req, err := json.Marshal(b.Request)
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, st.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(backfillsLock)); err != nil {
			return fmt.Errorf("postgres: backfills lock: %w", err)
		}
		var running int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM backfills WHERE state = 'running' AND lease_until >= now()`).
			Scan(&running); err != nil {
			return fmt.Errorf("postgres: count backfills: %w", err)
		}
		if running >= maxRunning {
			return backfill.ErrFull
		}
		_, err := tx.Exec(ctx, `
			INSERT INTO backfills (id, bucket, request, state, runner, batch_size, concurrency, started, lease_until)
			VALUES ($1, $2, $3, 'running', $4, $5, $6, now(), now() + $7 * interval '1 second')`,
			b.ID, b.Bucket, req, b.Runner, b.BatchSize, b.Concurrency, lease.Seconds())
		if err != nil {
			return fmt.Errorf("postgres: insert backfill: %w", err)
		}
		return nil
	})
}

// SetExecution saves the execution that runs a backfill: it is no longer leased to an instance.
func (st *Store) SetExecution(ctx context.Context, id, execution string) error {
	if _, err := st.pool.Exec(ctx, `UPDATE backfills SET execution = $2, lease_until = 'infinity' WHERE id = $1`, id, execution); err != nil {
		return fmt.Errorf("postgres: backfill execution: %w", err)
	}
	return nil
}

// LoadBackfill reads a backfill with one SELECT. A running one whose lease ran out reads as failed
// backfill.InstanceLost, finished then.
func (st *Store) LoadBackfill(ctx context.Context, id string) (backfill.Backfill, bool, error) {
	var b backfill.Backfill
	var req, failed []byte
	var state string
	var lost bool
	var leaseUntil time.Time
	err := st.pool.QueryRow(ctx, `
		SELECT id, bucket, request, state, runner, execution, batch_size, concurrency, listing_done, batches_listed,
		       batches_done, batches_failed, files, files_ingested, files_failed, bytes, observations, failed_batches,
		       error, stop_requested, started, finished, state = 'running' AND lease_until < now(), lease_until
		FROM backfills WHERE id = $1`, id).
		Scan(&b.ID, &b.Bucket, &req, &state, &b.Runner, &b.Execution, &b.BatchSize, &b.Concurrency, &b.ListingDone,
			&b.BatchesListed, &b.BatchesDone, &b.BatchesFailed, &b.Files, &b.FilesIngested, &b.FilesFailed, &b.Bytes,
			&b.Observations, &failed, &b.Error, &b.StopRequested, &b.Started, &b.Finished, &lost, &leaseUntil)
	if errors.Is(err, pgx.ErrNoRows) {
		return backfill.Backfill{}, false, nil
	}
	if err != nil {
		return backfill.Backfill{}, false, fmt.Errorf("postgres: load backfill: %w", err)
	}
	if err := errors.Join(json.Unmarshal(req, &b.Request), json.Unmarshal(failed, &b.FailedBatches)); err != nil {
		return backfill.Backfill{}, false, fmt.Errorf("postgres: backfill %s: %w", id, err)
	}
	b.State = backfill.State(state)
	b.Started = b.Started.UTC()
	if lost {
		b.State, b.Error = backfill.Failed, backfill.InstanceLost
		t := leaseUntil.UTC()
		b.Finished = &t
	}
	if b.Finished != nil {
		t := b.Finished.UTC()
		b.Finished = &t
	}
	return b, true, nil
}

// AddProgress adds d to a running backfill (a failed batch to the first backfill.MaxFailedListed), renews its lease and
// reports whether it was asked to stop.
func (st *Store) AddProgress(ctx context.Context, id string, d backfill.Delta, lease time.Duration) (bool, error) {
	failed := []byte("[]")
	if d.Failed != nil {
		var err error
		if failed, err = json.Marshal([]backfill.FailedBatch{*d.Failed}); err != nil {
			return false, err
		}
	}
	var stop bool
	err := st.pool.QueryRow(ctx, `
		UPDATE backfills SET listing_done = listing_done OR $3, batches_listed = batches_listed + $4,
		    batches_done = batches_done + $5, batches_failed = batches_failed + $6, files = files + $7,
		    files_ingested = files_ingested + $8, files_failed = files_failed + $9, bytes = bytes + $10,
		    observations = observations + $11,
		    failed_batches = CASE WHEN jsonb_array_length(failed_batches) < $13 THEN failed_batches || $12::jsonb
		                          ELSE failed_batches END,
		    lease_until = now() + $2 * interval '1 second'
		WHERE id = $1 AND state = 'running'
		RETURNING stop_requested`,
		id, lease.Seconds(), d.ListingDone, d.BatchesListed, d.BatchesDone, d.BatchesFailed, d.Files, d.FilesIngested,
		d.FilesFailed, d.Bytes, d.Observations, failed, backfill.MaxFailedListed).Scan(&stop)
	if errors.Is(err, pgx.ErrNoRows) {
		return true, nil // ended meanwhile (lost and ended by nobody else): stop
	}
	if err != nil {
		return false, fmt.Errorf("postgres: backfill progress: %w", err)
	}
	return stop, nil
}

// SaveProgress replaces the progress of a running backfill.
func (st *Store) SaveProgress(ctx context.Context, id string, p backfill.Progress, failedBatches []backfill.FailedBatch) error {
	if failedBatches == nil {
		failedBatches = []backfill.FailedBatch{}
	}
	failed, err := json.Marshal(failedBatches)
	if err != nil {
		return err
	}
	_, err = st.pool.Exec(ctx, `
		UPDATE backfills SET listing_done = $2, batches_listed = $3, batches_done = $4, batches_failed = $5,
		    files = $6, files_ingested = $7, files_failed = $8, bytes = $9, observations = $10, failed_batches = $11,
		    lease_until = 'infinity'
		WHERE id = $1 AND state = 'running'`,
		id, p.ListingDone, p.BatchesListed, p.BatchesDone, p.BatchesFailed, p.Files, p.FilesIngested, p.FilesFailed,
		p.Bytes, p.Observations, failed)
	if err != nil {
		return fmt.Errorf("postgres: save backfill progress: %w", err)
	}
	return nil
}

// EndBackfill saves how a running backfill ended (or one answered lost: its real end is the truth).
func (st *Store) EndBackfill(ctx context.Context, id string, s backfill.State, errText string) error {
	_, err := st.pool.Exec(ctx, `
		UPDATE backfills SET state = $2, error = $3, finished = now() WHERE id = $1 AND state = 'running'`,
		id, string(s), errText)
	if err != nil {
		return fmt.Errorf("postgres: end backfill: %w", err)
	}
	return nil
}

// RequestStop marks a backfill to stop and reports whether it exists.
func (st *Store) RequestStop(ctx context.Context, id string) (bool, error) {
	tag, err := st.pool.Exec(ctx, `UPDATE backfills SET stop_requested = true WHERE id = $1`, id)
	if err != nil {
		return false, fmt.Errorf("postgres: stop backfill: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// RunningBackfills lists the backfills running (leases not run out), at most as many as may run.
func (st *Store) RunningBackfills(ctx context.Context) ([]string, error) {
	rows, _ := st.pool.Query(ctx, `SELECT id FROM backfills WHERE state = 'running' AND lease_until >= now() ORDER BY started LIMIT 1000`)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: running backfills: %w", err)
	}
	return ids, nil
}

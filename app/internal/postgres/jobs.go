package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aircraftdata/platform/app/internal/jobs"
)

// SaveJob writes a job's state (insert or update), with the instance that
// runs it and how long that instance's lease holds.
func (db *DB) SaveJob(ctx context.Context, v jobs.View, instance string, leaseUntil time.Time) error {
	progress, err := json.Marshal(v.Progress)
	if err != nil {
		return err
	}
	var result []byte
	if v.Result != nil {
		if result, err = json.Marshal(v.Result); err != nil {
			return err
		}
	}
	_, err = db.pool.Exec(ctx, `
		INSERT INTO jobs (id, kind, request_id, state, started, finished, progress, result, error, instance, lease_until)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT (id) DO UPDATE SET state = $4, finished = $6, progress = $7, result = $8, error = $9, lease_until = $11
		WHERE jobs.state = 'running'`,
		v.ID, v.Kind, v.RequestID, string(v.State), v.Started, v.Finished, progress, result, v.Error, instance, leaseUntil)
	if err != nil {
		return fmt.Errorf("postgres: save job: %w", err)
	}
	return nil
}

// LoadJob reads a job. A running job whose instance's lease has run out
// is failed first, with the reason "instance lost".
func (db *DB) LoadJob(ctx context.Context, id string, now time.Time) (jobs.View, bool, error) {
	if _, err := db.pool.Exec(ctx, `
		UPDATE jobs SET state = 'failed', error = 'instance lost', finished = $2
		WHERE id = $1 AND state = 'running' AND lease_until < $2`, id, now); err != nil {
		return jobs.View{}, false, fmt.Errorf("postgres: load job: %w", err)
	}
	var v jobs.View
	var state string
	var progress, result []byte
	err := db.pool.QueryRow(ctx, `
		SELECT id, kind, request_id, state, started, finished, progress, result, error FROM jobs WHERE id = $1`, id).
		Scan(&v.ID, &v.Kind, &v.RequestID, &state, &v.Started, &v.Finished, &progress, &result, &v.Error)
	if errors.Is(err, pgx.ErrNoRows) {
		return jobs.View{}, false, nil
	}
	if err != nil {
		return jobs.View{}, false, fmt.Errorf("postgres: load job: %w", err)
	}
	v.State = jobs.State(state)
	v.Started = v.Started.UTC()
	if v.Finished != nil {
		f := v.Finished.UTC()
		v.Finished = &f
	}
	if err := json.Unmarshal(progress, &v.Progress); err != nil {
		return jobs.View{}, false, err
	}
	if result != nil {
		v.Result = json.RawMessage(result)
	}
	return v, true, nil
}

// PruneJobs forgets finished jobs beyond the newest keep and those
// finished before cutoff.
func (db *DB) PruneJobs(ctx context.Context, keep int, cutoff time.Time) error {
	_, err := db.pool.Exec(ctx, `
		DELETE FROM jobs WHERE finished IS NOT NULL AND (finished < $2 OR id NOT IN (
			SELECT id FROM jobs WHERE finished IS NOT NULL ORDER BY finished DESC LIMIT $1))`, keep, cutoff)
	if err != nil {
		return fmt.Errorf("postgres: prune jobs: %w", err)
	}
	return nil
}

// Package jobstore keeps the service's jobs in PostgreSQL (jobs.Store), in the jobs table of package postgres's schema,
// so that any instance answers for any job.
package jobstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aircraftdata/platform/app/internal/jobs"
	"github.com/aircraftdata/platform/app/internal/postgres"
)

// Every time of a job (start, end, lease) is the database's clock (now()), never an instance's: instances whose clocks
// differ judge a lease alike and answer the same times.

// Store keeps jobs: starts, renewals and ends on the work's pool, lookups (GET /api/v1/jobs/{id}: anonymous, one
// SELECT) on the read pool, so that a flood of them waits for read connections, never for the work's.
type Store struct {
	work, reads *pgxpool.Pool
}

// New returns the store of the jobs in db, on db's pools.
func New(db *postgres.DB) *Store { return &Store{work: db.Pool(), reads: db.Reads().Pool()} }

// StartJob inserts a running job of instance, leased for lease, and returns when it started.
func (s *Store) StartJob(ctx context.Context, v jobs.View, instance string, lease time.Duration) (time.Time, error) {
	progress, result, err := jobJSON(v)
	if err != nil {
		return time.Time{}, err
	}
	var started time.Time
	err = s.work.QueryRow(ctx, `
		INSERT INTO jobs (id, kind, request_id, state, started, progress, result, error, instance, lease_until)
		VALUES ($1, $2, $3, $4, now(), $5, $6, $7, $8, now() + $9 * interval '1 second')
		RETURNING started`,
		v.ID, v.Kind, v.RequestID, string(v.State), progress, result, v.Error, instance, lease.Seconds()).Scan(&started)
	if err != nil {
		return time.Time{}, fmt.Errorf("postgres: start job: %w", err)
	}
	return started.UTC(), nil
}

// RenewJobs extends by lease, in one statement, the leases of instance's jobs among running that still run and whose
// lease has not run out, and saves their progress. A job whose lease ran out stays lost until EndJob.
func (s *Store) RenewJobs(ctx context.Context, instance string, running []jobs.View, lease time.Duration) error {
	ids := make([]string, len(running))
	progress := make([]string, len(running))
	for i, v := range running {
		p, err := json.Marshal(v.Progress)
		if err != nil {
			return err
		}
		ids[i], progress[i] = v.ID, string(p)
	}
	_, err := s.work.Exec(ctx, `
		UPDATE jobs SET lease_until = now() + $2 * interval '1 second', progress = u.progress::jsonb
		FROM unnest($3::text[], $4::text[]) AS u(id, progress)
		WHERE jobs.id = u.id AND jobs.instance = $1 AND jobs.state = 'running' AND jobs.lease_until >= now()`,
		instance, lease.Seconds(), ids, progress)
	if err != nil {
		return fmt.Errorf("postgres: renew jobs: %w", err)
	}
	return nil
}

// EndJob saves how a job of instance ended and returns when it ended. It overwrites the job's "instance lost" (its
// lease ran out while the instance was paused or cut off): the real end is the truth. It never overwrites another end;
// it returns the end already saved.
func (s *Store) EndJob(ctx context.Context, v jobs.View, instance string) (time.Time, error) {
	progress, result, err := jobJSON(v)
	if err != nil {
		return time.Time{}, err
	}
	// The job's row may be gone (pruned as lost): it is inserted again.
	var finished *time.Time
	err = s.work.QueryRow(ctx, `
		INSERT INTO jobs (id, kind, request_id, state, started, finished, progress, result, error, instance, lease_until)
		VALUES ($1, $2, $3, $4, $5, now(), $6, $7, $8, $9, now())
		ON CONFLICT (id) DO UPDATE SET state = $4, finished = now(), progress = $6, result = $7, error = $8
		WHERE jobs.instance = $9 AND (jobs.state = 'running' OR jobs.error = $10)
		RETURNING finished`,
		v.ID, v.Kind, v.RequestID, string(v.State), v.Started, progress, result, v.Error, instance,
		jobs.InstanceLost).Scan(&finished)
	if errors.Is(err, pgx.ErrNoRows) { // ended already
		err = s.work.QueryRow(ctx, `SELECT finished FROM jobs WHERE id = $1`, v.ID).Scan(&finished)
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("postgres: end job: %w", err)
	}
	if finished == nil {
		return time.Time{}, fmt.Errorf("postgres: end job %s: it runs on another instance", v.ID)
	}
	return finished.UTC(), nil
}

func jobJSON(v jobs.View) (progress, result []byte, err error) {
	if progress, err = json.Marshal(v.Progress); err != nil {
		return nil, nil, err
	}
	if v.Result != nil {
		if result, err = json.Marshal(v.Result); err != nil {
			return nil, nil, err
		}
	}
	return progress, result, nil
}

// LoadJob reads a job with one SELECT and writes nothing. A running job whose lease has run out reads as failed
// "instance lost", finished when its lease ran out, until its instance saves its real end.
func (s *Store) LoadJob(ctx context.Context, id string) (jobs.View, bool, error) {
	var v jobs.View
	var state string
	var progress, result []byte
	var lost bool
	var leaseUntil time.Time
	err := s.reads.QueryRow(ctx, `
		SELECT id, kind, request_id, state, started, finished, progress, result, error,
		       state = 'running' AND lease_until < now(), lease_until
		FROM jobs WHERE id = $1`, id).
		Scan(&v.ID, &v.Kind, &v.RequestID, &state, &v.Started, &v.Finished, &progress, &result, &v.Error,
			&lost, &leaseUntil)
	if errors.Is(err, pgx.ErrNoRows) {
		return jobs.View{}, false, nil
	}
	if err != nil {
		return jobs.View{}, false, fmt.Errorf("postgres: load job: %w", err)
	}
	v.State = jobs.State(state)
	if lost {
		v.State, v.Error, v.Finished = jobs.Failed, jobs.InstanceLost, &leaseUntil
	}
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

// PruneJobs forgets ended jobs beyond the newest keep and those that ended more than keepFor ago. A lost job (running,
// its lease run out) counts as ended when its lease ran out.
func (s *Store) PruneJobs(ctx context.Context, keep int, keepFor time.Duration) error {
	_, err := s.work.Exec(ctx, `
		DELETE FROM jobs WHERE id IN (
			SELECT id FROM (
				SELECT id, coalesce(finished, lease_until) AS ended,
				       row_number() OVER (ORDER BY coalesce(finished, lease_until) DESC) AS n
				FROM jobs WHERE finished IS NOT NULL OR lease_until < now()) AS e
			WHERE n > $1 OR ended < now() - $2 * interval '1 second')`, keep, keepFor.Seconds())
	if err != nil {
		return fmt.Errorf("postgres: prune jobs: %w", err)
	}
	return nil
}

// Package ingest turns flight data files in a bucket into statistics in PostgreSQL, exactly once, however many runs go
// on at once.
//
// A run takes objects from a source (the bucket's listing, or a batch of objects given by the caller: a manifest, queue
// messages), skips those the ledger already holds, fetches and decodes the rest with a bounded pool of workers, and
// merges their statistics in memory in batches. Each batch is committed together with the ledger entries of its files,
// so a file counts once however often runs are repeated, interrupted or overlapped. Memory is bounded by the batch
// size, the number of workers and readsb.Limits, not by what the bucket holds.
//
// Runs need no lock: a batch claims its objects, snapshot times and list contents in its transaction (Store.Commit),
// and files another run claimed first are set aside and the batch committed again without them, the statistics of the
// files it kept read again from S3 (commit.go). The API's runs take a lock of their bucket and prefix (Service.Begin)
// only so that a second call for the same prefix answers 409.
//
// No file can sink a run: a file that fails to decode or validate, or that S3 refuses to give (bucket.Refusal), is
// quarantined (a 'failed' ledger entry with its reason, committed with the batch), and when the database refuses a
// batch the files responsible are found by bisection, re-reading the files of each half, and quarantined with the
// database's reason while the rest is committed. A run stops only when a dependency is unavailable (UnavailableError):
// S3 or PostgreSQL failing, S3 stalling, or S3 refusing every object the run fetched.
//
// A list-format file (no snapshot time) is counted once per content: one whose bytes were already ingested under its
// key, with another ETag, is recorded as a duplicate.
package ingest

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/aircraftdata/platform/app/internal/bucket"
	"github.com/aircraftdata/platform/app/internal/flight"
	"github.com/aircraftdata/platform/app/internal/ledger"
	"github.com/aircraftdata/platform/app/internal/panics"
	"github.com/aircraftdata/platform/app/internal/progress"
	"github.com/aircraftdata/platform/app/internal/readsb"
)

// ErrBusy means another run of the API ingests the same prefix (on this or another instance).
var ErrBusy = ledger.ErrBusy

// UnavailableError means a dependency of the run failed: the run stops, what it committed stays, and a rerun carries
// on. Its message names the dependency only; the cause (with the driver's details) is logged.
type UnavailableError struct {
	Dependency string // "postgres" or "s3"
	Err        error
}

func (e *UnavailableError) Error() string { return e.Dependency + " unavailable" }
func (e *UnavailableError) Unwrap() error { return e.Err }

const (
	batchAircraft           = 50_000 // a batch is committed when it holds this many aircraft…
	batchFiles              = 200    // …or this many files
	maxListedNotes          = 1000
	reasonAlreadyIngested   = "already ingested"
	reasonDuplicateSnapshot = "duplicate snapshot"
	reasonQuarantined       = "quarantined"
	reasonChanged           = "changed since listed"
	reasonDuplicateRefused  = "duplicate of a refused file"
	reasonDuplicateContent  = "duplicate content"
	// maxRefusedBeforeRead is how many objects S3 may refuse before the run reads one: past it, S3 refusing is taken
	// for the role's or the bucket's fault, and the run stops without quarantining them.
	maxRefusedBeforeRead = 1000
)

// Store is the database a run writes to: the API's lock, the ledger and the statistics (postgres.DB). Its errors other
// than ErrBusy, *ledger.RefusedError and *ledger.LostError mean it is unavailable.
type Store interface {
	// Lock takes the lock of a bucket and prefix until unlock, or fails with ErrBusy.
	Lock(ctx context.Context, bucket, prefix string) (unlock func(), err error)
	// Known returns the outcomes of the objects of bucket already in the ledger.
	Known(ctx context.Context, bucket string, objs []ledger.Object) (map[ledger.Object]ledger.Outcome, error)
	// FailedFiles lists the quarantined files of bucket by key, after the key after.
	FailedFiles(ctx context.Context, bucket, after string, limit int) ([]ledger.FailedFile, error)
	// SnapshotKey returns the key under which the snapshot taken at t was ingested, if it was.
	SnapshotKey(ctx context.Context, t time.Time) (key string, ok bool, err error)
	// SameContent returns the ETag of the version of obj's key whose bytes, with this SHA-256, were ingested.
	SameContent(ctx context.Context, obj ledger.Object, sha256 []byte) (etag string, ok bool, err error)
	// Commit stores the ledger entries (of distinct object versions) and the statistics in one transaction, all or
	// nothing, safe to run many at once. The store refusing the data fails it with a *ledger.RefusedError; objects
	// whose ledger entry, snapshot time or content another run committed first fail it with a *ledger.LostError.
	Commit(ctx context.Context, objects []ledger.Processed, agg flight.Aggregate) error
}

// Service ingests from one bucket into one database.
type Service struct {
	DB     Store
	Bucket bucket.Bucket
	Log    *slog.Logger

	// Required: the service's come from INGEST_WORKERS and INGEST_MAX_*.
	Workers int           // concurrent fetch+decode workers
	Limits  readsb.Limits // cap what one file may cost

	Metrics Metrics // told what happened; nil: nobody
}

// FileNote names a file and what happened to it.
type FileNote struct {
	Key    string `json:"key"`
	Reason string `json:"reason"`
}

// Result is the outcome of a run.
type Result struct {
	Bucket          string         `json:"bucket"`
	Prefix          string         `json:"prefix"`
	FilesSeen       int            `json:"files_seen"`
	FilesIngested   int            `json:"files_ingested"`
	FilesSkipped    int            `json:"files_skipped"`
	SkippedByReason map[string]int `json:"skipped_by_reason"`
	// Skipped lists skipped files with the reason (the first 1000).
	Skipped     []FileNote `json:"skipped"`
	FilesFailed int        `json:"files_failed"`
	Failed      []FileNote `json:"failed"` // the first 1000
	// InvalidValues counts values of ingested files that broke a validation rule, by rule: they are not observations of
	// their metric (README).
	InvalidValues   map[string]int64 `json:"invalid_values"`
	AircraftUpdated int              `json:"aircraft_updated"`
	Observations    int64            `json:"observations"`
	Bytes           int64            `json:"bytes"`
	DurationSeconds float64          `json:"duration_seconds"`
}

// Run is an ingestion of the API that holds the lock of its prefix and is ready to start.
type Run struct {
	svc    *Service
	prefix string
	unlock func()
}

// Begin takes the lock of the bucket and prefix, or fails with ErrBusy. Runs of other prefixes (overlapping or not) and
// Process may run at the same time: the lock only says that this prefix is being ingested.
func (s *Service) Begin(ctx context.Context, prefix string) (*Run, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	unlock, err := s.DB.Lock(ctx, s.Bucket.Name, prefix)
	if errors.Is(err, ErrBusy) {
		return nil, err
	}
	if err != nil {
		return nil, s.unavailable(ctx, "postgres", err)
	}
	return &Run{svc: s, prefix: prefix, unlock: unlock}, nil
}

func (s *Service) check() error {
	if s.Workers <= 0 {
		return errors.New("ingest: Workers must be positive")
	}
	return s.Limits.Check()
}

// FailedFiles lists the bucket's quarantined files by key, after the key after, at most limit of them.
func (s *Service) FailedFiles(ctx context.Context, after string, limit int) ([]ledger.FailedFile, error) {
	files, err := s.DB.FailedFiles(ctx, s.Bucket.Name, after, limit)
	if err != nil {
		return nil, s.unavailable(ctx, "postgres", err)
	}
	return files, nil
}

// Release gives the lock back without running (the run could not start).
func (r *Run) Release() { r.unlock() }

// Request says what a run ingests.
type Request struct {
	Prefix string // only keys with this prefix
	// RetryFailed reads quarantined files again even if unchanged.
	RetryFailed bool
}

// Ingest processes every object under the run's prefix (req.Prefix must be the one given to Begin), then releases the
// lock. It reports progress into p (which may be nil).
func (r *Run) Ingest(ctx context.Context, req Request, p *progress.Counter) (*Result, error) {
	defer r.unlock()
	if req.Prefix != r.prefix {
		return nil, errors.New("ingest: the run was begun for another prefix")
	}
	list := func(ctx context.Context, fn func([]bucket.Object) error) error {
		return r.svc.Bucket.List(ctx, req.Prefix, fn)
	}
	return r.svc.ingest(ctx, req, list, p)
}

// Process ingests a batch of objects of the bucket (from a listing, a manifest or queue messages: LastModified stands
// in for the time of a list-format file) exactly once, whatever other runs do at the same time: it takes no lock, and
// the same object or snapshot in two runs at once counts once. An object given twice is read once. Only RetryFailed of
// req is used.
func (s *Service) Process(ctx context.Context, objs []bucket.Object, req Request, p *progress.Counter) (*Result, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	seen := make(map[[2]string]bool, len(objs))
	batch := make([]bucket.Object, 0, len(objs))
	for _, o := range objs {
		if id := [2]string{o.Key, o.ETag}; !seen[id] {
			seen[id] = true
			batch = append(batch, o)
		}
	}
	given := func(_ context.Context, fn func([]bucket.Object) error) error { return fn(batch) }
	return s.ingest(ctx, Request{RetryFailed: req.RetryFailed}, given, p)
}

// source calls fn with the objects of a run, a page at a time.
type source func(ctx context.Context, fn func([]bucket.Object) error) error

// ingest runs the pipeline: src → ledger check → fetch and decode (Workers at a time) → batches → commits.
func (s *Service) ingest(ctx context.Context, req Request, src source, p *progress.Counter) (*Result, error) {
	prefix := req.Prefix
	start := time.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	workers := s.Workers
	tasks := make(chan bucket.Object, workers)
	results := make(chan fetched) // unbuffered: decoded files wait in their worker, not in a queue
	var listErr error
	var wg sync.WaitGroup

	wg.Add(1)
	go func() { // lister
		defer wg.Done()
		defer close(tasks)
		listErr = panics.Catch(func() error { return s.list(ctx, req, src, p, tasks, results) })
		p.TotalKnown()
	}()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for obj := range tasks {
				f := s.fetchContained(ctx, obj)
				select {
				case results <- f:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); close(results) }()

	agg := s.newAggregator(prefix)
	var err error
	for f := range results {
		p.AddDone(1, f.obj.Size)
		if err == nil {
			var bug *panics.Error
			if errors.As(f.err, &bug) {
				err = f.err // a bug, not a bad file: the run fails
			} else {
				err = agg.add(ctx, f)
			}
			if err != nil {
				cancel() // stop listing and fetching; drain what is in flight
			}
		}
	}
	if err == nil {
		err = listErr
	}
	if err == nil {
		err = agg.everyRefused(ctx)
	}
	if err == nil {
		err = agg.flush(ctx)
	}
	if err != nil {
		return nil, err
	}
	agg.tell()
	agg.res.AircraftUpdated = len(agg.touched)
	agg.res.DurationSeconds = time.Since(start).Seconds()
	return &agg.res, nil
}

// unavailableIf is unavailable for an error, nil for nil.
func (s *Service) unavailableIf(ctx context.Context, dep string, err error) error {
	if err == nil {
		return nil
	}
	return s.unavailable(ctx, dep, err)
}

// unavailable wraps the failure of a dependency, logging its cause. A run whose context ended returns that instead.
func (s *Service) unavailable(ctx context.Context, dep string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.As(err, new(*UnavailableError)) {
		return err
	}
	s.logger().Error(dep+" unavailable", "error", err)
	return &UnavailableError{Dependency: dep, Err: err}
}

func (s *Service) logger() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

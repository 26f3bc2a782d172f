// Package ingest turns flight data files in a bucket into statistics in
// PostgreSQL, exactly once.
//
// A run lists the bucket, skips objects the ledger already holds, fetches and
// decodes the rest with a bounded pool of workers, and merges their
// statistics in memory in batches. Each batch is committed together with the
// ledger entries of its files, so a file counts once however often runs are
// repeated or interrupted. Memory is bounded by the batch size and the number
// of workers, not by what the bucket holds.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/aircraftdata/platform/app/internal/bucket"
	"github.com/aircraftdata/platform/app/internal/flight"
	"github.com/aircraftdata/platform/app/internal/panics"
	"github.com/aircraftdata/platform/app/internal/postgres"
	"github.com/aircraftdata/platform/app/internal/progress"
	"github.com/aircraftdata/platform/app/internal/readsb"
)

// ErrBusy means another ingestion is running (on this or another instance).
var ErrBusy = postgres.ErrBusy

// Defaults for Service fields left zero.
const (
	DefaultWorkers          = 3
	DefaultBatchAircraft    = 50_000
	DefaultBatchFiles       = 200
	maxListedNotes          = 1000
	reasonAlreadyIngested   = "already ingested"
	reasonDuplicateSnapshot = "duplicate snapshot"
)

// Service ingests from one bucket into one database.
type Service struct {
	DB     *postgres.DB
	Bucket bucket.Bucket
	Log    *slog.Logger

	Workers       int // concurrent fetch+decode workers
	BatchAircraft int // commit when a batch holds this many aircraft…
	BatchFiles    int // …or this many files
	// Limits cap what one file may cost (zero fields: readsb's defaults).
	Limits readsb.Limits
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
	// InvalidValues counts values of ingested files that broke a validation
	// rule, by rule: they are not observations of their metric (README).
	InvalidValues   map[string]int64 `json:"invalid_values"`
	AircraftUpdated int              `json:"aircraft_updated"`
	Observations    int64            `json:"observations"`
	Bytes           int64            `json:"bytes"`
	DurationSeconds float64          `json:"duration_seconds"`
}

// Run is an ingestion that holds the lock and is ready to start.
type Run struct {
	svc  *Service
	lock *postgres.Lock
}

// Begin takes the ingestion lock, or fails with ErrBusy.
func (s *Service) Begin(ctx context.Context) (*Run, error) {
	lock, err := s.DB.Lock(ctx)
	if err != nil {
		return nil, err
	}
	return &Run{svc: s, lock: lock}, nil
}

// Release gives the lock back without running (the run could not start).
func (r *Run) Release() { r.lock.Unlock() }

// Ingest processes every object under prefix, then releases the lock. It
// reports progress into p (which may be nil).
func (r *Run) Ingest(ctx context.Context, prefix string, p *progress.Counter) (*Result, error) {
	defer r.lock.Unlock()
	return r.svc.ingest(ctx, prefix, p)
}

type fetched struct {
	obj       bucket.Object
	versionID string
	file      *readsb.File
	skip      string // reason, when the object was not fetched
	err       error
}

func (s *Service) ingest(ctx context.Context, prefix string, p *progress.Counter) (*Result, error) {
	start := time.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	workers := cmp(s.Workers, DefaultWorkers)
	tasks := make(chan bucket.Object, workers)
	results := make(chan fetched) // unbuffered: decoded files wait in their worker, not in a queue
	var listErr error
	var wg sync.WaitGroup

	wg.Add(1)
	go func() { // lister
		defer wg.Done()
		defer close(tasks)
		listErr = panics.Catch(func() error { return s.list(ctx, prefix, p, tasks, results) })
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
		err = agg.flush(ctx)
	}
	if err != nil {
		return nil, err
	}
	agg.res.AircraftUpdated = len(agg.touched)
	agg.res.DurationSeconds = time.Since(start).Seconds()
	return &agg.res, nil
}

// list sends unknown objects to tasks and known ones straight to results.
func (s *Service) list(ctx context.Context, prefix string, p *progress.Counter, tasks chan<- bucket.Object, results chan<- fetched) error {
	return s.Bucket.List(ctx, prefix, func(objs []bucket.Object) error {
		refs := make([]postgres.Object, len(objs))
		var size int64
		for i, o := range objs {
			refs[i] = postgres.Object{Bucket: s.Bucket.Name, Key: o.Key, ETag: o.ETag}
			size += o.Size
		}
		p.AddTotal(int64(len(objs)), size)
		known, err := s.DB.Known(ctx, s.Bucket.Name, refs)
		if err != nil {
			return err
		}
		for i, o := range objs {
			if known[refs[i]] {
				err = send(ctx, results, fetched{obj: o, skip: reasonAlreadyIngested})
			} else {
				err = send(ctx, tasks, o)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}

func send[T any](ctx context.Context, ch chan<- T, v T) error {
	select {
	case ch <- v:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// decode is readsb.Decode (a variable so that a test can inject a bug).
var decode = readsb.Decode

// fetchContained is fetch with a panic (a bug met by this file) turned into
// an error that fails the run: the caller answers "internal error" and logs
// the stack.
func (s *Service) fetchContained(ctx context.Context, obj bucket.Object) (f fetched) {
	if err := panics.Catch(func() error { f = s.fetch(ctx, obj); return nil }); err != nil {
		return fetched{obj: obj, err: err}
	}
	return f
}

// fetch reads and decodes one object.
func (s *Service) fetch(ctx context.Context, obj bucket.Object) fetched {
	body, versionID, err := s.Bucket.Open(ctx, obj.Key, obj.ETag)
	if err != nil {
		return fetched{obj: obj, err: err}
	}
	defer body.Close()
	file, err := decode(body, s.Limits)
	if err != nil {
		return fetched{obj: obj, versionID: versionID, err: err}
	}
	// Drain what the decoder did not need so the connection can be reused.
	_, _ = io.Copy(io.Discard, body)
	return fetched{obj: obj, versionID: versionID, file: file}
}

func cmp(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// aggregator merges fetched files into batches and commits them.
type aggregator struct {
	svc     *Service
	res     Result
	batch   flight.Aggregate
	objects []postgres.Processed
	snaps   map[time.Time]string // snapshot time → key, in the uncommitted batch
	touched map[string]struct{}  // aircraft updated by committed batches
}

func (s *Service) newAggregator(prefix string) *aggregator {
	return &aggregator{
		svc:     s,
		res:     Result{Bucket: s.Bucket.Name, Prefix: prefix, SkippedByReason: map[string]int{}, Skipped: []FileNote{}, Failed: []FileNote{}, InvalidValues: map[string]int64{}},
		batch:   make(flight.Aggregate),
		snaps:   make(map[time.Time]string),
		touched: make(map[string]struct{}),
	}
}

func (a *aggregator) add(ctx context.Context, f fetched) error {
	a.res.FilesSeen++
	switch {
	case f.skip != "":
		a.skipped(f.obj.Key, f.skip, f.skip)
		return nil
	case f.err != nil:
		a.res.FilesFailed++
		if len(a.res.Failed) < maxListedNotes {
			a.res.Failed = append(a.res.Failed, FileNote{Key: f.obj.Key, Reason: f.err.Error()})
		}
		a.svc.logger().Warn("file not ingested", "key", f.obj.Key, "reason", f.err.Error())
		return nil
	}
	a.res.Bytes += f.obj.Size
	entry := postgres.Processed{
		Object:     postgres.Object{Bucket: a.svc.Bucket.Name, Key: f.obj.Key, ETag: f.obj.ETag, VersionID: f.versionID, Size: f.obj.Size},
		Outcome:    postgres.Ingested,
		SnapshotAt: f.file.Now,
	}
	if !f.file.Now.IsZero() {
		dup, ok := a.snaps[f.file.Now]
		if !ok {
			var err error
			if dup, ok, err = a.svc.DB.SnapshotKey(ctx, f.file.Now); err != nil {
				return err
			}
		}
		if ok {
			entry.Outcome = postgres.DuplicateSnapshot
			a.objects = append(a.objects, entry)
			a.skipped(f.obj.Key, reasonDuplicateSnapshot, fmt.Sprintf("%s: the snapshot of %s was already ingested from %s",
				reasonDuplicateSnapshot, f.file.Now.Format(time.RFC3339Nano), dup))
			return a.maybeFlush(ctx)
		}
		a.snaps[f.file.Now] = f.obj.Key
	} else {
		// A format without a snapshot time: the object's time stands in.
		f.file.Aircraft.Stamp(f.obj.LastModified.UTC())
	}
	entry.Observations = f.file.Observations
	for reason, n := range f.file.Invalid {
		a.res.InvalidValues[reason] += n
	}
	a.objects = append(a.objects, entry)
	a.batch.Merge(f.file.Aircraft)
	a.res.FilesIngested++
	a.res.Observations += f.file.Observations
	return a.maybeFlush(ctx)
}

func (a *aggregator) skipped(key, reason, note string) {
	a.res.FilesSkipped++
	a.res.SkippedByReason[reason]++
	if len(a.res.Skipped) < maxListedNotes {
		a.res.Skipped = append(a.res.Skipped, FileNote{Key: key, Reason: note})
	}
}

func (a *aggregator) maybeFlush(ctx context.Context) error {
	if len(a.batch) >= cmp(a.svc.BatchAircraft, DefaultBatchAircraft) || len(a.objects) >= cmp(a.svc.BatchFiles, DefaultBatchFiles) {
		return a.flush(ctx)
	}
	return nil
}

// flush commits the batch with its ledger entries in one transaction.
func (a *aggregator) flush(ctx context.Context) error {
	if len(a.objects) == 0 {
		return nil
	}
	if err := a.svc.DB.Commit(ctx, a.objects, a.batch); err != nil {
		return err
	}
	for icao := range a.batch {
		a.touched[icao] = struct{}{}
	}
	a.svc.logger().Info("batch committed", "files", len(a.objects), "aircraft", len(a.batch))
	a.batch = make(flight.Aggregate)
	a.objects = nil
	clear(a.snaps)
	return nil
}

func (s *Service) logger() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

// Package ingest turns flight data files in a bucket into statistics in
// PostgreSQL, exactly once.
//
// A run lists the bucket, skips objects the ledger already holds, fetches and
// decodes the rest with a bounded pool of workers, and merges their
// statistics in memory in batches. Each batch is committed together with the
// ledger entries of its files, so a file counts once however often runs are
// repeated or interrupted. Memory is bounded by the batch size, the number of
// workers and readsb.Limits, not by what the bucket holds.
//
// No file can sink a run: a file that fails to decode or validate, or that
// S3 refuses to give (bucket.Refusal), is quarantined (a 'failed' ledger
// entry with its reason, committed with the batch), and when the database
// refuses a batch the files responsible are found by bisection, re-reading
// the files of each half, and quarantined with the database's reason while
// the rest is committed. A run stops only when a dependency is unavailable
// (UnavailableError): S3 or PostgreSQL failing, S3 stalling, or S3 refusing
// every object the run fetched.
//
// A list-format file (no snapshot time) is counted once per content: one
// whose bytes were already ingested under its key, with another ETag, is
// recorded as a duplicate.
package ingest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/aws/smithy-go"

	"github.com/aircraftdata/platform/app/internal/bucket"
	"github.com/aircraftdata/platform/app/internal/flight"
	"github.com/aircraftdata/platform/app/internal/ledger"
	"github.com/aircraftdata/platform/app/internal/panics"
	"github.com/aircraftdata/platform/app/internal/progress"
	"github.com/aircraftdata/platform/app/internal/readsb"
)

// ErrBusy means another ingestion is running (on this or another instance).
var ErrBusy = ledger.ErrBusy

// UnavailableError means a dependency of the run failed: the run stops, what
// it committed stays, and a rerun carries on. Its message names the
// dependency only; the cause (with the driver's details) is logged.
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
	// maxRefusedBeforeRead is how many objects S3 may refuse before the run
	// reads one: past it, S3 refusing is taken for the role's or the
	// bucket's fault, and the run stops without quarantining them.
	maxRefusedBeforeRead = 1000
)

// Store is the database a run writes to: the ingestion lock, the ledger and
// the statistics (postgres.DB). Its errors other than ErrBusy and
// *ledger.RefusedError mean it is unavailable.
type Store interface {
	// Lock takes the ingestion lock until unlock, or fails with ErrBusy.
	Lock(ctx context.Context) (unlock func(), err error)
	// Known returns the outcomes of the objects of bucket already in the ledger.
	Known(ctx context.Context, bucket string, objs []ledger.Object) (map[ledger.Object]ledger.Outcome, error)
	// FailedFiles lists the quarantined files of bucket by key, after the key after.
	FailedFiles(ctx context.Context, bucket, after string, limit int) ([]ledger.FailedFile, error)
	// SnapshotKey returns the key under which the snapshot taken at t was ingested, if it was.
	SnapshotKey(ctx context.Context, t time.Time) (key string, ok bool, err error)
	// SameContent returns the ETag of the version of obj's key whose bytes, with this SHA-256, were ingested.
	SameContent(ctx context.Context, obj ledger.Object, sha256 []byte) (etag string, ok bool, err error)
	// Commit stores the ledger entries and the statistics in one transaction, all or nothing. The store refusing
	// the data fails it with a *ledger.RefusedError.
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
	svc    *Service
	unlock func()
}

// Begin takes the ingestion lock, or fails with ErrBusy.
func (s *Service) Begin(ctx context.Context) (*Run, error) {
	if s.Workers <= 0 {
		return nil, errors.New("ingest: Workers must be positive")
	}
	if err := s.Limits.Check(); err != nil {
		return nil, err
	}
	unlock, err := s.DB.Lock(ctx)
	if errors.Is(err, ErrBusy) {
		return nil, err
	}
	if err != nil {
		return nil, s.unavailable(ctx, "postgres", err)
	}
	return &Run{svc: s, unlock: unlock}, nil
}

// FailedFiles lists the bucket's quarantined files by key, after the key
// after, at most limit of them.
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

// Ingest processes every object the request selects, then releases the
// lock. It reports progress into p (which may be nil).
func (r *Run) Ingest(ctx context.Context, req Request, p *progress.Counter) (*Result, error) {
	defer r.unlock()
	return r.svc.ingest(ctx, req, p)
}

type fetched struct {
	obj       bucket.Object
	versionID string
	file      *readsb.File
	sha256    []byte // of the object's bytes, with file
	skip      string // reason, when the object was not fetched
	refused   string // S3 refused the object, with this reason
	err       error  // the file's fault: it is quarantined
	depErr    error  // a dependency failed: the run stops
}

func (s *Service) ingest(ctx context.Context, req Request, p *progress.Counter) (*Result, error) {
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
		listErr = panics.Catch(func() error { return s.list(ctx, req, p, tasks, results) })
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
	agg.res.AircraftUpdated = len(agg.touched)
	agg.res.DurationSeconds = time.Since(start).Seconds()
	return &agg.res, nil
}

// list sends unknown objects to tasks and known ones straight to results.
func (s *Service) list(ctx context.Context, req Request, p *progress.Counter, tasks chan<- bucket.Object, results chan<- fetched) error {
	err := s.Bucket.List(ctx, req.Prefix, func(objs []bucket.Object) error {
		refs := make([]ledger.Object, len(objs))
		var size int64
		for i, o := range objs {
			refs[i] = ledger.Object{Bucket: s.Bucket.Name, Key: o.Key, ETag: o.ETag}
			size += o.Size
		}
		p.AddTotal(int64(len(objs)), size)
		known, err := s.DB.Known(ctx, s.Bucket.Name, refs)
		if err != nil {
			return s.unavailable(ctx, "postgres", err)
		}
		for i, o := range objs {
			switch outcome, ok := known[refs[i]]; {
			case outcome == ledger.Failed && !req.RetryFailed:
				err = send(ctx, results, fetched{obj: o, skip: reasonQuarantined})
			case ok && outcome != ledger.Failed:
				err = send(ctx, results, fetched{obj: o, skip: reasonAlreadyIngested})
			default:
				err = send(ctx, tasks, o)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && !errors.As(err, new(*UnavailableError)) && ctx.Err() == nil {
		return s.unavailable(ctx, "s3", err)
	}
	return err
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

// fetch reads and decodes one object. Decoding is bounded by the decode time
// cap, waiting for S3 by the bucket's stall timeout (a dependency failure).
func (s *Service) fetch(ctx context.Context, obj bucket.Object) fetched {
	body, versionID, err := s.Bucket.Open(ctx, obj.Key, obj.ETag)
	if err != nil {
		if changed(err) {
			return fetched{obj: obj, skip: reasonChanged}
		}
		if reason, ok := bucket.Refusal(err); ok {
			return fetched{obj: obj, refused: reason}
		}
		return fetched{obj: obj, depErr: s.unavailable(ctx, "s3", err)}
	}
	defer body.Close()
	sum := sha256.New()
	file, err := decode(io.TeeReader(body, sum), s.Limits)
	var source *readsb.SourceError
	switch {
	case err == nil:
	case errors.As(err, &source):
		return fetched{obj: obj, depErr: s.unavailable(ctx, "s3", err)}
	default:
		return fetched{obj: obj, versionID: versionID, err: err}
	}
	if file.Now.IsZero() {
		// A format without a snapshot time: the object's time stands in.
		file.Aircraft.Stamp(obj.LastModified.UTC())
	}
	// The decoder reads a good file to its end; a little more is read in case
	// it did not, so that the connection can be reused.
	if _, err := io.CopyN(sum, body, 64<<10); err != nil && err != io.EOF {
		return fetched{obj: obj, depErr: s.unavailable(ctx, "s3", err)}
	}
	return fetched{obj: obj, versionID: versionID, file: file, sha256: sum.Sum(nil)}
}

// changed reports an object that is gone or has another ETag since it was
// listed: the next run sees its new state.
func changed(err error) bool {
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "NoSuchKey", "NotFound", "PreconditionFailed":
			return true
		}
	}
	return false
}

// unavailable wraps the failure of a dependency, logging its cause. A run
// whose context ended returns that instead.
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

// aggregator merges fetched files into batches and commits them.
type aggregator struct {
	svc     *Service
	res     Result
	batch   flight.Aggregate
	entries []entry
	snaps   map[time.Time]string // snapshot time → key, in the uncommitted batch
	touched map[string]struct{}  // aircraft updated by committed batches
	read    bool                 // an object of the run was read from S3
	refused []fetched            // refused by S3 before any was read
}

// entry is a file of the uncommitted batch: its ledger entry and the object
// to read it again from.
type entry struct {
	ledger.Processed
	obj  bucket.Object
	drop bool // changed since listed: left for the next run
}

func (s *Service) newAggregator(prefix string) *aggregator {
	return &aggregator{
		svc: s,
		res: Result{Bucket: s.Bucket.Name, Prefix: prefix, SkippedByReason: map[string]int{}, Skipped: []FileNote{},
			Failed: []FileNote{}, InvalidValues: map[string]int64{}},
		batch:   make(flight.Aggregate),
		snaps:   make(map[time.Time]string),
		touched: make(map[string]struct{}),
	}
}

func (a *aggregator) add(ctx context.Context, f fetched) error {
	switch {
	case f.depErr != nil:
		return f.depErr
	case f.skip != "":
		a.res.FilesSeen++
		a.skipped(f.obj.Key, f.skip, f.skip)
		return nil
	case f.refused != "" && !a.read:
		a.refused = append(a.refused, f)
		if len(a.refused) >= maxRefusedBeforeRead {
			return a.everyRefused(ctx)
		}
		return nil
	case f.refused != "":
		a.res.FilesSeen++
		a.entries = append(a.entries, a.quarantine(f.obj, f.versionID, f.refused))
		return a.maybeFlush(ctx)
	}
	if !a.read {
		// S3 gives objects: those it refused are refused for themselves.
		a.read = true
		for _, r := range a.refused {
			a.res.FilesSeen++
			a.entries = append(a.entries, a.quarantine(r.obj, r.versionID, r.refused))
		}
		a.refused = nil
	}
	if f.err != nil {
		a.res.FilesSeen++
		a.entries = append(a.entries, a.quarantine(f.obj, f.versionID, f.err.Error()))
		return a.maybeFlush(ctx)
	}
	a.res.FilesSeen++
	a.res.Bytes += f.obj.Size
	e := entry{
		Processed: ledger.Processed{
			Object:     ledger.Object{Bucket: a.svc.Bucket.Name, Key: f.obj.Key, ETag: f.obj.ETag, VersionID: f.versionID, Size: f.obj.Size},
			Outcome:    ledger.Ingested,
			SnapshotAt: f.file.Now,
			SHA256:     f.sha256,
		},
		obj: f.obj,
	}
	if f.file.Now.IsZero() {
		// No snapshot time to recognise a repeat by: its bytes do.
		etag, ok, err := a.svc.DB.SameContent(ctx, e.Object, f.sha256)
		if err != nil {
			return a.svc.unavailable(ctx, "postgres", err)
		}
		if ok {
			e.Outcome = ledger.DuplicateContent
			a.entries = append(a.entries, e)
			a.skipped(f.obj.Key, reasonDuplicateContent, fmt.Sprintf("%s: the same bytes were ingested from its version with ETag %s",
				reasonDuplicateContent, etag))
			return a.maybeFlush(ctx)
		}
	} else {
		dup, ok := a.snaps[f.file.Now]
		if !ok {
			var err error
			if dup, ok, err = a.svc.DB.SnapshotKey(ctx, f.file.Now); err != nil {
				return a.svc.unavailable(ctx, "postgres", err)
			}
		}
		if ok {
			e.Outcome = ledger.DuplicateSnapshot
			a.entries = append(a.entries, e)
			a.skipped(f.obj.Key, reasonDuplicateSnapshot, fmt.Sprintf("%s: the snapshot of %s was already ingested from %s",
				reasonDuplicateSnapshot, f.file.Now.Format(time.RFC3339Nano), dup))
			return a.maybeFlush(ctx)
		}
		a.snaps[f.file.Now] = f.obj.Key
	}
	e.Observations = f.file.Observations
	a.entries = append(a.entries, e)
	a.batch.Merge(f.file.Aircraft)
	a.res.FilesIngested++
	a.res.Observations += f.file.Observations
	for reason, n := range f.file.Invalid {
		a.res.InvalidValues[reason] += n
	}
	return a.maybeFlush(ctx)
}

// everyRefused fails the run when S3 refused every object it fetched: S3
// refusing them all says more about the role or the bucket than about the
// objects, and none is quarantined.
func (a *aggregator) everyRefused(ctx context.Context) error {
	if a.read || len(a.refused) == 0 {
		return nil
	}
	first := a.refused[0]
	return a.svc.unavailable(ctx, "s3", fmt.Errorf("S3 refused each of the %d objects the run fetched, none read; the first, %s: %s",
		len(a.refused), first.obj.Key, first.refused))
}

// quarantine counts a refused file and makes its ledger entry.
func (a *aggregator) quarantine(obj bucket.Object, versionID, reason string) entry {
	a.res.FilesFailed++
	if len(a.res.Failed) < maxListedNotes {
		a.res.Failed = append(a.res.Failed, FileNote{Key: obj.Key, Reason: reason})
	}
	a.svc.logger().Warn("file quarantined", "key", obj.Key, "etag", obj.ETag, "reason", reason)
	return entry{
		Processed: ledger.Processed{
			Object:  ledger.Object{Bucket: a.svc.Bucket.Name, Key: obj.Key, ETag: obj.ETag, VersionID: versionID, Size: obj.Size},
			Outcome: ledger.Failed,
			Reason:  reason,
		},
		obj: obj,
	}
}

func (a *aggregator) skipped(key, reason, note string) {
	a.res.FilesSkipped++
	a.res.SkippedByReason[reason]++
	if len(a.res.Skipped) < maxListedNotes {
		a.res.Skipped = append(a.res.Skipped, FileNote{Key: key, Reason: note})
	}
}

func (a *aggregator) maybeFlush(ctx context.Context) error {
	if len(a.batch) >= batchAircraft || len(a.entries) >= batchFiles {
		return a.flush(ctx)
	}
	return nil
}

// flush commits the batch with its ledger entries in one transaction. If the
// database refuses it, bisect finds the files responsible.
func (a *aggregator) flush(ctx context.Context) error {
	if len(a.entries) == 0 {
		return nil
	}
	err := a.commit(ctx, a.entries, a.batch)
	if refused(err) {
		a.svc.logger().Warn("the database refused a batch: finding the files responsible", "files", len(a.entries), "error", err)
		err = a.bisectKeepingDuplicates(ctx, err)
	}
	if err != nil {
		return err
	}
	a.svc.logger().Info("batch committed", "files", len(a.entries), "aircraft", len(a.batch))
	a.batch = make(flight.Aggregate)
	a.entries = nil
	clear(a.snaps)
	return nil
}

// commit stores entries and agg in one transaction. It returns the
// database's refusal as is, any other failure as UnavailableError.
func (a *aggregator) commit(ctx context.Context, entries []entry, agg flight.Aggregate) error {
	objs := make([]ledger.Processed, 0, len(entries))
	for _, e := range entries {
		if !e.drop {
			objs = append(objs, e.Processed)
		}
	}
	err := a.svc.DB.Commit(ctx, objs, agg)
	switch {
	case err == nil:
		for icao := range agg {
			a.touched[icao] = struct{}{}
		}
		return nil
	case refused(err):
		return err
	}
	return a.svc.unavailable(ctx, "postgres", err)
}

// refused reports whether err is the store refusing the data it was given.
func refused(err error) bool { return errors.As(err, new(*ledger.RefusedError)) }

// refusalReason is the store's own words for a refusal.
func refusalReason(err error) string {
	var r *ledger.RefusedError
	if errors.As(err, &r) {
		return r.Reason
	}
	return err.Error()
}

// bisectKeepingDuplicates bisects the refused batch with its duplicate
// snapshots set aside, then records those whose snapshot was committed as
// duplicates. One whose snapshot came from a file of this batch that ended
// refused (or changed) is not recorded: it holds data of its own, and the
// next run reads it.
func (a *aggregator) bisectKeepingDuplicates(ctx context.Context, refusal error) error {
	var dups []entry
	for i := range a.entries {
		if e := &a.entries[i]; e.Outcome == ledger.DuplicateSnapshot && !e.drop {
			dups = append(dups, *e)
			e.drop = true
		}
	}
	if err := a.bisect(ctx, a.entries, refusal); err != nil {
		return err
	}
	if len(dups) == 0 {
		return nil
	}
	committed := map[time.Time]bool{}
	for _, e := range a.entries {
		if e.Outcome == ledger.Ingested && !e.drop {
			committed[e.SnapshotAt] = true
		}
	}
	for i := range dups {
		e := &dups[i]
		src, inBatch := a.snaps[e.SnapshotAt]
		if !inBatch || committed[e.SnapshotAt] {
			continue
		}
		e.drop = true
		a.unskip(e.obj.Key, reasonDuplicateSnapshot, reasonDuplicateRefused,
			fmt.Sprintf("%s: %s, whose snapshot it repeats, was not committed; the next run reads it", reasonDuplicateRefused, src))
	}
	if !slices.ContainsFunc(dups, func(e entry) bool { return !e.drop }) {
		return nil
	}
	err := a.commit(ctx, dups, nil)
	if refused(err) {
		return a.svc.unavailable(ctx, "postgres", err)
	}
	return err
}

// unskip moves a skipped file from one reason to another, with a new note.
func (a *aggregator) unskip(key, from, to, note string) {
	a.res.SkippedByReason[from]--
	if a.res.SkippedByReason[from] == 0 {
		delete(a.res.SkippedByReason, from)
	}
	a.res.SkippedByReason[to]++
	for i := range a.res.Skipped {
		if a.res.Skipped[i].Key == key {
			a.res.Skipped[i].Reason = note
		}
	}
}

// bisect commits the halves of a refused batch separately, each with the
// statistics of its files read again, and splits a refused half further,
// until a file refused on its own is quarantined with the database's
// reason. For one bad file among n this reads about 2n files; memory stays
// within the batch's (a half holds a subset of its aircraft).
func (a *aggregator) bisect(ctx context.Context, entries []entry, refusal error) error {
	var ingested []int
	for i, e := range entries {
		if e.Outcome == ledger.Ingested && !e.drop {
			ingested = append(ingested, i)
		}
	}
	if len(ingested) <= 1 {
		for _, i := range ingested {
			e := &entries[i]
			a.res.FilesIngested--
			a.res.Observations -= e.Observations
			*e = a.quarantine(e.obj, e.VersionID, refusalReason(refusal))
		}
		err := a.commit(ctx, entries, nil)
		if refused(err) {
			// The ledger entries themselves are refused: nothing of the files
			// is to blame that we could set aside.
			return a.svc.unavailable(ctx, "postgres", err)
		}
		return err
	}
	mid := ingested[len(ingested)/2]
	for _, half := range [][]entry{entries[:mid], entries[mid:]} {
		agg, err := a.reread(ctx, half)
		if err != nil {
			return err
		}
		err = a.commit(ctx, half, agg)
		if refused(err) {
			err = a.bisect(ctx, half, err)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// reread fetches and decodes the ingested files of entries again, returning
// their statistics. A file that changed since is dropped from the ledger
// entries (the next run reads it), one that now fails is quarantined.
func (a *aggregator) reread(ctx context.Context, entries []entry) (flight.Aggregate, error) {
	agg := make(flight.Aggregate)
	for i := range entries {
		e := &entries[i]
		if e.Outcome != ledger.Ingested || e.drop {
			continue
		}
		f := a.svc.fetchContained(ctx, e.obj)
		var bug *panics.Error
		switch {
		case f.depErr != nil:
			return nil, f.depErr
		case errors.As(f.err, &bug):
			return nil, f.err
		case f.skip != "":
			a.res.FilesIngested--
			a.res.Observations -= e.Observations
			e.drop = true
		case f.refused != "":
			a.res.FilesIngested--
			a.res.Observations -= e.Observations
			*e = a.quarantine(e.obj, f.versionID, f.refused)
		case f.err != nil:
			a.res.FilesIngested--
			a.res.Observations -= e.Observations
			*e = a.quarantine(e.obj, f.versionID, f.err.Error())
		default:
			agg.Merge(f.file.Aircraft)
		}
	}
	return agg, nil
}

func (s *Service) logger() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

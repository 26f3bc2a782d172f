// Package inprocess runs backfills (package backfill) in the service: the default runner, and the one of `make dev` and
// the tests.
package inprocess

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aircraftdata/platform/app/internal/backfill"
	"github.com/aircraftdata/platform/app/internal/bucket"
	"github.com/aircraftdata/platform/app/internal/ingest"
	"github.com/aircraftdata/platform/app/internal/progress"
)

// Processor ingests a batch of objects exactly once (ingest.Service).
type Processor interface {
	Process(ctx context.Context, objs []bucket.Object, req ingest.Request, p *progress.Counter) (*ingest.Result, error)
}

// Lister lists a bucket's objects under a prefix, a page at a time (bucket.Bucket).
type Lister interface {
	List(ctx context.Context, prefix string, fn func([]bucket.Object) error) error
}

// Runner runs backfills in this process: the keys are listed page by page and cut into batches of Limits.BatchSize,
// Limits.Concurrency batches run at once, a batch whose dependency failed is retried Limits.Retries times with a
// doubling backoff, and the backfill fails when more than Limits.ToleratedFailurePercent of its batches failed: judged
// on the batches ended once minJudged have, and on all of them at the end. Memory is bounded by the batch size and the
// concurrency, whatever the listing holds.
type Runner struct {
	Store  backfill.Store
	Ingest Processor
	Bucket Lister
	Limits backfill.Limits
	Log    *slog.Logger

	ctx context.Context // the service's: cancelled at shutdown
	wg  sync.WaitGroup
}

// New returns l, whose backfills run until ctx ends (Wait waits for them).
func New(ctx context.Context, l *Runner) *Runner {
	l.ctx = ctx
	return l
}

// Name is "local".
func (l *Runner) Name() string { return "local" }

// Refresh does nothing: a local backfill saves its progress as it goes.
func (l *Runner) Refresh(context.Context, *backfill.Backfill) error { return nil }

// Stop does nothing: the backfill sees its stop requested in the Store.
func (l *Runner) Stop(context.Context, backfill.Backfill) error { return nil }

// Wait waits for the backfills of this process to end (after the context given to New is cancelled, they end within a
// batch).
func (l *Runner) Wait() { l.wg.Wait() }

// Start runs b in the background.
func (l *Runner) Start(_ context.Context, b *backfill.Backfill) error {
	if err := l.Limits.Check(); err != nil {
		return err
	}
	prefixes, err := b.Request.Prefixes()
	if err != nil {
		return err
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		state, errText := l.run(b.ID, prefixes)
		if err := l.Store.EndBackfill(context.WithoutCancel(l.ctx), b.ID, state, errText); err != nil {
			l.logger().Error("backfill: saving its end", "backfill", b.ID, "state", state, "error", err)
		}
	}()
	return nil
}

func (l *Runner) logger() *slog.Logger {
	if l.Log != nil {
		return l.Log
	}
	return slog.Default()
}

// errTooManyFailed ends a backfill whose failed batches passed the threshold.
var errTooManyFailed = errors.New("more batches failed than tolerated")

// errStopRequested ends a backfill asked to stop.
var errStopRequested = errors.New("stop requested")

// run lists, batches and ingests, and says how the backfill ended.
func (l *Runner) run(id string, prefixes []string) (backfill.State, string) {
	ctx, cancel := context.WithCancelCause(l.ctx)
	defer cancel(nil)
	log := l.logger().With("backfill", id)

	// One goroutine saves progress, in order: the batches' deltas, and a heartbeat that renews the lease and sees a
	// stop requested.
	deltas := make(chan backfill.Delta, l.Limits.Concurrency)
	var saver sync.WaitGroup
	var failed, listed, ended int64
	saver.Add(1)
	go func() {
		defer saver.Done()
		tick := time.NewTicker(l.Limits.Lease / 3)
		defer tick.Stop()
		for {
			var d backfill.Delta
			select {
			case dd, ok := <-deltas:
				if !ok {
					return
				}
				d = dd
			case <-tick.C:
			}
			failed += d.BatchesFailed
			listed += d.BatchesListed
			ended += d.BatchesDone + d.BatchesFailed
			stop, err := l.save(id, d)
			switch {
			case err != nil:
				log.Error("backfill: saving progress", "error", err)
				cancel(fmt.Errorf("postgres unavailable: %w", err))
			case stop:
				cancel(errStopRequested)
			case ended >= minJudged && l.tooMany(failed, ended):
				cancel(errTooManyFailed)
			}
		}
	}()

	batches := make(chan []bucket.Object)
	var workers sync.WaitGroup
	for range l.Limits.Concurrency {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for objs := range batches {
				// No batch starts once a stop is asked for: the store says so as soon as DELETE has answered, while the
				// saver may not have saved the last batch's progress yet, and so not seen it.
				if stop, err := l.Store.AddProgress(ctx, id, backfill.Delta{}, l.Limits.Lease); err == nil && stop {
					cancel(errStopRequested)
				}
				if ctx.Err() != nil {
					continue // stopped: the lister sees it too and ends
				}
				d := l.batch(ctx, objs)
				if d == nil {
					continue // stopped mid-batch: not counted, nothing committed of it counted twice
				}
				deltas <- *d
			}
		}()
	}

	listErr := l.list(ctx, prefixes, func(b []bucket.Object) error {
		select {
		case batches <- b:
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}, deltas)
	close(batches)
	workers.Wait()
	if listErr == nil {
		deltas <- backfill.Delta{Progress: backfill.Progress{ListingDone: true}}
	}
	close(deltas)
	saver.Wait()

	return l.end(log, context.Cause(ctx), listErr, failed, listed)
}

// end says how a run ended, from why its context was cancelled (cause; nil: it was not), the listing's error and the
// batches that failed of those listed.
func (l *Runner) end(log *slog.Logger, cause, listErr error, failed, listed int64) (backfill.State, string) {
	switch {
	case errors.Is(cause, errStopRequested):
		return backfill.Stopped, ""
	case errors.Is(cause, errTooManyFailed):
		return backfill.Failed, cause.Error()
	case cause != nil && l.ctx.Err() != nil:
		return backfill.Stopped, "the service shut down: start the backfill again to go on"
	case cause != nil:
		log.Error("backfill failed", "error", cause)
		return backfill.Failed, "postgres unavailable"
	case listErr != nil:
		log.Error("backfill: listing failed", "error", listErr)
		return backfill.Failed, "s3 unavailable: listing failed"
	case l.tooMany(failed, listed):
		return backfill.Failed, errTooManyFailed.Error()
	}
	return backfill.Succeeded, ""
}

// minJudged is how many batches must have ended before the share failed stops a backfill under way (after it, every
// batch listed counts).
const minJudged = 20

// tooMany reports whether failed of n batches is more than tolerated.
func (l *Runner) tooMany(failed, n int64) bool {
	return failed*100 > int64(l.Limits.ToleratedFailurePercent)*n
}

// save adds d to the backfill, retried with the batches' backoff: progress lost would be counted wrong for good.
func (l *Runner) save(id string, d backfill.Delta) (stop bool, err error) {
	wait := l.Limits.Backoff
	for try := 0; ; try++ {
		stop, err = l.Store.AddProgress(context.WithoutCancel(l.ctx), id, d, l.Limits.Lease)
		if err == nil || try == l.Limits.Retries {
			return stop, err
		}
		time.Sleep(wait)
		wait *= 2
	}
}

// list calls fn with the objects under prefixes in batches of BatchSize, counting them in deltas.
func (l *Runner) list(ctx context.Context, prefixes []string, fn func([]bucket.Object) error, deltas chan<- backfill.Delta) error {
	size := l.Limits.BatchSize
	batch := make([]bucket.Object, 0, size)
	send := func() error {
		deltas <- backfill.Delta{Progress: backfill.Progress{BatchesListed: 1}}
		b := batch
		batch = make([]bucket.Object, 0, size)
		return fn(b)
	}
	for _, p := range prefixes {
		err := l.Bucket.List(ctx, p, func(objs []bucket.Object) error {
			for _, o := range objs {
				batch = append(batch, o)
				if len(batch) == size {
					if err := send(); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	if len(batch) > 0 {
		return send()
	}
	return nil
}

// batch ingests objs, retrying when a dependency failed, and returns what it adds to the progress, or nil when the
// backfill stopped before it ended.
func (l *Runner) batch(ctx context.Context, objs []bucket.Object) *backfill.Delta {
	// A batch under way runs to its end even when the backfill is stopped (each is bounded: BatchSize files,
	// S3_STALL_SECONDS per read); only the service shutting down cancels it.
	run := l.ctx
	wait := l.Limits.Backoff
	var err error
	for try := 0; try <= l.Limits.Retries; try++ {
		if try > 0 {
			select {
			case <-time.After(wait):
				wait *= 2
			case <-ctx.Done():
				return nil
			}
		}
		var res *ingest.Result
		res, err = l.Ingest.Process(run, objs, ingest.Request{}, nil)
		if err == nil {
			return &backfill.Delta{Progress: backfill.Progress{
				BatchesDone: 1, Files: int64(res.FilesSeen), FilesIngested: int64(res.FilesIngested),
				FilesFailed: int64(res.FilesFailed), Bytes: res.Bytes, Observations: res.Observations,
			}}
		}
		if run.Err() != nil {
			return nil
		}
		if !errors.As(err, new(*ingest.UnavailableError)) {
			break // not a dependency's hiccup: retrying will not help
		}
	}
	l.logger().Error("backfill: batch failed", "first", objs[0].Key, "files", len(objs), "error", err)
	reason := err.Error() // an UnavailableError names the dependency only
	if !errors.As(err, new(*ingest.UnavailableError)) {
		reason = "internal error (logged)"
	}
	return &backfill.Delta{
		Progress: backfill.Progress{BatchesFailed: 1},
		Failed:   &backfill.FailedBatch{First: objs[0].Key, Last: objs[len(objs)-1].Key, Files: len(objs), Error: reason},
	}
}

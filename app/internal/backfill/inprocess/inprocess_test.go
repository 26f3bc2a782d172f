package inprocess_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/aircraftdata/platform/app/internal/backfill"
	"github.com/aircraftdata/platform/app/internal/backfill/inprocess"
	"github.com/aircraftdata/platform/app/internal/backfill/inprocess/inprocesstest"
	"github.com/aircraftdata/platform/app/internal/bucket"
	"github.com/aircraftdata/platform/app/internal/config"
	"github.com/aircraftdata/platform/app/internal/ingest"
	"github.com/aircraftdata/platform/app/internal/postgres/backfillstore"
	"github.com/aircraftdata/platform/app/internal/progress"
	"github.com/aircraftdata/platform/app/internal/readsb"
	"github.com/aircraftdata/platform/app/internal/stacktest"
)

// flaky fails the batches whose first key is in down with PostgreSQL unavailable, the first fails[key] times (always
// when fails[key] < 0).
type flaky struct {
	inprocess.Processor
	mu    sync.Mutex
	fails map[string]int
	tries map[string]int
}

func (f *flaky) Process(ctx context.Context, objs []bucket.Object, req ingest.Request, p *progress.Counter) (*ingest.Result, error) {
	f.mu.Lock()
	k := objs[0].Key
	f.tries[k]++
	n, fail := f.fails[k]
	fail = fail && (n < 0 || f.tries[k] <= n)
	f.mu.Unlock()
	if fail {
		return nil, &ingest.UnavailableError{Dependency: "postgres", Err: errors.New("connection refused")}
	}
	return f.Processor.Process(ctx, objs, req, p)
}

func runLocal(t *testing.T, files int, limits backfill.Limits, fails map[string]int) (backfill.Backfill, *flaky) {
	t.Helper()
	ctx := context.Background()
	b := stacktest.Bucket(t)
	db, _ := stacktest.DB(t)
	for i := range files {
		stacktest.Put(t, b, fmt.Sprintf("k/%02d.json", i), fmt.Appendf(nil, `{"now": %d, "aircraft": [{"hex": "abc123", "gs": 100}]}`, 1698800000+i*5))
	}
	def := config.Defaults()
	svc := &ingest.Service{DB: db, Bucket: b, Workers: 2, Limits: readsb.Limits{MaxBytes: def.IngestMaxFileBytes,
		MaxString: def.IngestMaxStringBytes, MaxAircraft: def.IngestMaxAircraftPerFile, MaxDepth: def.IngestMaxDepth,
		MaxDecodeTime: def.IngestMaxDecodeTime}}
	f := &flaky{Processor: svc, fails: fails, tries: map[string]int{}}
	runCtx, cancel := context.WithCancel(ctx)
	store := backfillstore.New(db)
	local := inprocess.New(runCtx, &inprocess.Runner{Store: store, Ingest: f, Bucket: b, Limits: limits, Log: slog.New(slog.DiscardHandler)})
	m := &backfill.Manager{Store: store, Runner: local, Bucket: b.Name, Limits: limits}
	started, err := m.Start(ctx, backfill.Request{Prefix: "k/"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Start(ctx, backfill.Request{Prefix: "k/"}); !errors.Is(err, backfill.ErrFull) {
		t.Errorf("a second backfill with BACKFILL_MAX_RUNNING=1: %v, want ErrFull", err)
	}
	t.Cleanup(func() { cancel(); local.Wait() })
	for {
		got, _, err := m.Get(ctx, started.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != backfill.Running {
			return got, f
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A batch whose dependency fails is retried with backoff until it works; one that keeps failing is listed, and the
// backfill succeeds while the failed share stays within the tolerated one, fails once it does not.
func TestLocalRetriesAndToleratedFailures(t *testing.T) {
	limits := backfill.Limits{MaxRunning: 1, BatchSize: 2, Concurrency: 2, Retries: 2, Backoff: time.Millisecond,
		ToleratedFailurePercent: 20, Lease: time.Minute}
	// 10 files, 5 batches: k/00 fails twice then works, k/04 always fails (1 of 5 = 20%: tolerated).
	got, f := runLocal(t, 10, limits, map[string]int{"k/00.json": 2, "k/04.json": -1})
	if got.State != backfill.Succeeded || got.BatchesDone != 4 || got.BatchesFailed != 1 || got.Files != 8 ||
		got.FilesIngested != 8 || f.tries["k/00.json"] != 3 || f.tries["k/04.json"] != 3 {
		t.Errorf("backfill %+v, tries %v; want succeeded, 4 done, 1 failed after 3 tries", got, f.tries)
	}
	want := []backfill.FailedBatch{{First: "k/04.json", Last: "k/05.json", Files: 2, Error: "postgres unavailable"}}
	if len(got.FailedBatches) != 1 || got.FailedBatches[0] != want[0] {
		t.Errorf("failed batches %+v, want %+v", got.FailedBatches, want)
	}

	// Two of five failing (40%) is more than tolerated.
	got, _ = runLocal(t, 10, limits, map[string]int{"k/02.json": -1, "k/06.json": -1})
	if got.State != backfill.Failed || got.Error != "more batches failed than tolerated" {
		t.Errorf("backfill %+v; want failed: more batches failed than tolerated", got)
	}
}

// slowSaves is a Store whose saves of a batch's progress take a while once slow is closed, as under load.
type slowSaves struct {
	backfill.Store
	slow chan struct{}
}

func (s slowSaves) AddProgress(ctx context.Context, id string, d backfill.Delta, lease time.Duration) (bool, error) {
	select {
	case <-s.slow:
		if d.BatchesDone > 0 {
			time.Sleep(300 * time.Millisecond)
		}
	default:
	}
	return s.Store.AddProgress(ctx, id, d, lease)
}

// Once Stop has answered, the batch under way ends whole and no other starts, though saving that batch's progress
// (where the runner used to see the stop) takes a while.
func TestStopKeepsTheNextBatchFromStarting(t *testing.T) {
	ctx := context.Background()
	b := stacktest.Bucket(t)
	db, _ := stacktest.DB(t)
	for i := range 8 {
		stacktest.Put(t, b, fmt.Sprintf("k/%02d.json", i), fmt.Appendf(nil, `{"now": %d, "aircraft": [{"hex": "abc123", "gs": 100}]}`, 1698800000+i*5))
	}
	def := config.Defaults()
	svc := &ingest.Service{DB: db, Bucket: b, Workers: 2, Limits: readsb.Limits{MaxBytes: def.IngestMaxFileBytes,
		MaxString: def.IngestMaxStringBytes, MaxAircraft: def.IngestMaxAircraftPerFile, MaxDepth: def.IngestMaxDepth,
		MaxDecodeTime: def.IngestMaxDecodeTime}}
	h := inprocesstest.NewHoldSecond(svc, 8)
	limits := backfill.Limits{MaxRunning: 1, BatchSize: 2, Concurrency: 1, Retries: 1, Backoff: 10 * time.Millisecond,
		ToleratedFailurePercent: 5, Lease: 30 * time.Second}
	runCtx, cancel := context.WithCancel(ctx)
	store := slowSaves{Store: backfillstore.New(db), slow: make(chan struct{})}
	local := inprocess.New(runCtx, &inprocess.Runner{Store: store, Ingest: h, Bucket: b, Limits: limits, Log: slog.New(slog.DiscardHandler)})
	t.Cleanup(func() { cancel(); local.Wait() })
	m := &backfill.Manager{Store: store, Runner: local, Bucket: b.Name, Limits: limits}
	started, err := m.Start(ctx, backfill.Request{Prefix: "k/"})
	if err != nil {
		t.Fatal(err)
	}
	<-h.Second
	for got, _, err := m.Get(ctx, started.ID); got.BatchesDone < 1; got, _, err = m.Get(ctx, started.ID) {
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond) // until the first batch is saved: the saver is idle
	}
	if _, _, err := m.Stop(ctx, started.ID); err != nil {
		t.Fatal(err)
	}
	close(store.slow)
	close(h.Released)
	got := started
	for got.State == backfill.Running {
		time.Sleep(10 * time.Millisecond)
		if got, _, err = m.Get(ctx, started.ID); err != nil {
			t.Fatal(err)
		}
	}
	if got.State != backfill.Stopped || got.BatchesDone != 2 || len(h.Calls) != 2 {
		t.Errorf("%s after %d batches done, %d started; want stopped after the 2 started before the stop", got.State, got.BatchesDone, len(h.Calls))
	}
}

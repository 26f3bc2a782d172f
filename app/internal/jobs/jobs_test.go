package jobs

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aircraftdata/platform/app/internal/progress"
)

var discard = slog.New(slog.DiscardHandler)

// roomy are limits no test here reaches.
var roomy = Limits{MaxRunning: 32, KeepFinished: 100, KeepFor: time.Hour}

func TestJobLifecycle(t *testing.T) {
	r := NewRegistry(discard, roomy)
	defer r.Stop(errors.New("test over"))

	release := make(chan struct{})
	ok, err := r.Start("ingest", "req-1", func(ctx context.Context, p *progress.Counter) (any, error) {
		p.AddTotal(2, 200)
		p.AddDone(1, 100)
		<-release
		p.AddDone(1, 100)
		p.TotalKnown()
		return "the result", nil
	})
	if err != nil || ok.State != Running || ok.Kind != "ingest" || ok.RequestID != "req-1" || len(ok.ID) != 24 {
		t.Fatalf("started: %+v %v", ok, err)
	}
	waitFor(t, func() bool { v, _ := r.get(ok.ID); return v.Progress.FilesDone == 1 })
	v, _ := r.get(ok.ID)
	if v.State != Running || v.Progress.BytesTotal != 200 || v.Progress.TotalKnown || v.Finished != nil {
		t.Errorf("while running: %+v", v)
	}
	close(release)

	bad, _ := r.Start("download", "req-2", func(context.Context, *progress.Counter) (any, error) {
		return nil, errors.New("s3 unreachable")
	})
	waitFor(t, func() bool {
		a, _ := r.get(ok.ID)
		b, _ := r.get(bad.ID)
		return a.State != Running && b.State != Running
	})

	v, _ = r.get(ok.ID)
	if v.State != Succeeded || v.Result != "the result" || v.Finished == nil || v.Progress.FilesDone != 2 || !v.Progress.TotalKnown {
		t.Errorf("succeeded: %+v", v)
	}
	v, _ = r.get(bad.ID)
	if v.State != Failed || v.Error != "s3 unreachable" || v.Result != nil {
		t.Errorf("failed: %+v", v)
	}
	if _, found := r.get("000000000000000000000000"); found {
		t.Error("an unknown id was found")
	}
}

func TestRunningJobsAreCapped(t *testing.T) {
	r := NewRegistry(discard, Limits{MaxRunning: 2, KeepFinished: 100, KeepFor: time.Hour})
	release := make(chan struct{})
	block := func(ctx context.Context, _ *progress.Counter) (any, error) { <-release; return nil, nil }
	for i := range 2 {
		if _, err := r.Start("download", "", block); err != nil {
			t.Fatalf("job %d of 2: %v", i+1, err)
		}
	}
	if _, err := r.Start("download", "", block); !errors.Is(err, ErrFull) {
		t.Fatalf("a third running job: %v, want ErrFull", err)
	}
	close(release)
	waitFor(t, func() bool {
		_, err := r.Start("download", "", func(context.Context, *progress.Counter) (any, error) { return nil, nil })
		return err == nil
	})
	r.Stop(errors.New("test over"))
}

func TestFinishedJobsAreKeptByCountAndAge(t *testing.T) {
	r := NewRegistry(discard, Limits{MaxRunning: 32, KeepFinished: 3, KeepFor: time.Minute})
	defer r.Stop(errors.New("test over"))
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	var ids []string
	for i := range 5 {
		v, err := r.Start("ingest", "", func(context.Context, *progress.Counter) (any, error) { return i, nil })
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool { v, _ := r.get(v.ID); return v.State == Succeeded })
		ids = append(ids, v.ID)
		advance(time.Second)
	}
	for i, id := range ids {
		if _, found := r.get(id); found != (i >= 2) {
			t.Errorf("job %d of 5 kept: %v; want the last 3 only", i+1, found)
		}
	}
	advance(58 * time.Second) // jobs 3, 4, 5 finished 61, 60, 59 s ago
	for i, id := range ids[2:] {
		if _, found := r.get(id); found != (i >= 1) {
			t.Errorf("job %d kept: %v; want only those that finished at most a minute ago", i+3, found)
		}
	}
}

func TestStopCancelsJobsWithItsCause(t *testing.T) {
	var logs bytes.Buffer
	r := NewRegistry(slog.New(slog.NewJSONHandler(&logs, nil)), roomy)
	started := make(chan struct{})
	var seen error
	j, _ := r.Start("download", "req-9", func(ctx context.Context, _ *progress.Counter) (any, error) {
		close(started)
		<-ctx.Done()
		seen = context.Cause(ctx)
		return "partial", ctx.Err()
	})
	<-started
	shutdown := errors.New("shutdown")
	r.Stop(shutdown) // returns when the job has
	if seen != shutdown {
		t.Errorf("the job saw cause %v", seen)
	}
	if v, _ := r.get(j.ID); v.State != Failed || v.Error != "shutdown" || v.Result != "partial" {
		t.Errorf("after Stop: %+v", v)
	}
	if !strings.Contains(logs.String(), `"state":"failed","error":"shutdown"`) {
		t.Errorf("the log does not say how the job ended: %s", logs.String())
	}
	if _, err := r.Start("ingest", "", func(context.Context, *progress.Counter) (any, error) { return nil, nil }); err != ErrStopped {
		t.Errorf("start after Stop: %v, want ErrStopped", err)
	}
}

func TestPanicFailsOnlyItsJob(t *testing.T) {
	var logs bytes.Buffer
	r := NewRegistry(slog.New(slog.NewJSONHandler(&logs, nil)), roomy)
	defer r.Stop(errors.New("test over"))
	j, _ := r.Start("download", "req-7", func(context.Context, *progress.Counter) (any, error) {
		panic("injected: a bug")
	})
	waitFor(t, func() bool { v, _ := r.get(j.ID); return v.State != Running })
	if v, _ := r.get(j.ID); v.State != Failed || v.Error != "internal error (request id req-7)" {
		t.Errorf("panicked job: %+v", v)
	}
	if !strings.Contains(logs.String(), "injected: a bug") || !strings.Contains(logs.String(), "jobs_test.go") {
		t.Errorf("the log lacks the panic and its stack: %s", logs.String())
	}
	// The registry goes on.
	ok, _ := r.Start("ingest", "", func(context.Context, *progress.Counter) (any, error) { return 1, nil })
	waitFor(t, func() bool { v, _ := r.get(ok.ID); return v.State == Succeeded })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// get is Get for the tests of a registry without a store.
func (r *Registry) get(id string) (View, bool) {
	v, ok, _ := r.Get(context.Background(), id)
	return v, ok
}

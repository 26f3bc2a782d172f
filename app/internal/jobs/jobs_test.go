package jobs

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aircraftdata/platform/app/internal/progress"
)

func TestJobLifecycle(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := NewRegistry(ctx, time.Hour)

	release := make(chan struct{})
	ok := r.Start("ingest", func(ctx context.Context, p *progress.Counter) (any, error) {
		p.AddTotal(2, 200)
		p.AddDone(1, 100)
		<-release
		p.AddDone(1, 100)
		p.TotalKnown()
		return "the result", nil
	})
	if ok.State != Running || ok.Kind != "ingest" || len(ok.ID) != 24 {
		t.Fatalf("started: %+v", ok)
	}
	waitFor(t, func() bool { v, _ := r.Get(ok.ID); return v.Progress.FilesDone == 1 })
	v, _ := r.Get(ok.ID)
	if v.State != Running || v.Progress.BytesTotal != 200 || v.Progress.TotalKnown || v.Finished != nil {
		t.Errorf("while running: %+v", v)
	}
	close(release)

	bad := r.Start("download", func(context.Context, *progress.Counter) (any, error) {
		return nil, errors.New("s3 unreachable")
	})
	r.Wait()

	v, _ = r.Get(ok.ID)
	if v.State != Succeeded || v.Result != "the result" || v.Finished == nil || v.Progress.FilesDone != 2 || !v.Progress.TotalKnown {
		t.Errorf("succeeded: %+v", v)
	}
	v, _ = r.Get(bad.ID)
	if v.State != Failed || v.Error != "s3 unreachable" || v.Result != nil {
		t.Errorf("failed: %+v", v)
	}
	if _, found := r.Get("000000000000000000000000"); found {
		t.Error("an unknown id was found")
	}
}

func TestFinishedJobsAreForgotten(t *testing.T) {
	r := NewRegistry(context.Background(), time.Minute)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r.now = func() time.Time { return now }
	old := r.Start("ingest", func(context.Context, *progress.Counter) (any, error) { return 1, nil })
	r.Wait()
	now = now.Add(2 * time.Minute)
	r.Start("ingest", func(context.Context, *progress.Counter) (any, error) { return 2, nil }) // prunes
	r.Wait()
	if _, found := r.Get(old.ID); found {
		t.Error("a job finished longer ago than keep is still there")
	}
}

func TestShutdownCancelsJobs(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	r := NewRegistry(ctx, time.Hour)
	j := r.Start("ingest", func(ctx context.Context, _ *progress.Counter) (any, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	cancel()
	r.Wait()
	if v, _ := r.Get(j.ID); v.State != Failed || v.Error != context.Canceled.Error() {
		t.Errorf("after shutdown: %+v", v)
	}
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

package jobs

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aircraftdata/platform/app/internal/progress"
)

// Synchronous work counts against the cap of running jobs, both ways, and Stop cancels it with its cause and waits for
// it.
func TestRunCountsAgainstTheCap(t *testing.T) {
	r := NewRegistry(discard, Limits{MaxRunning: 2, KeepFinished: 100, KeepFor: time.Hour})
	release := make(chan struct{})
	block := func(ctx context.Context, _ *progress.Counter) (any, error) { <-release; return nil, nil }
	if _, err := r.Start("download", "", block); err != nil {
		t.Fatal(err)
	}

	inRun, outOfRun := make(chan struct{}), make(chan error, 1)
	var fnReturned atomic.Bool
	go func() {
		outOfRun <- r.Run(context.Background(), func(ctx context.Context) error {
			close(inRun)
			<-ctx.Done()
			fnReturned.Store(true)
			return context.Cause(ctx)
		})
	}()
	<-inRun
	if _, err := r.Start("download", "", block); !errors.Is(err, ErrFull) {
		t.Errorf("a job beyond one job and one synchronous run, cap 2: %v, want ErrFull", err)
	}
	called := false
	if err := r.Run(context.Background(), func(context.Context) error { called = true; return nil }); !errors.Is(err, ErrFull) || called {
		t.Errorf("a synchronous run beyond the cap: %v (called: %v), want ErrFull without calling it", err, called)
	}
	close(release)

	stop := errors.New("shutdown")
	r.Stop(stop)
	// Run's caller hears of the end only after Run returns, which may be after Stop did: what Stop waits for is fn.
	if !fnReturned.Load() {
		t.Error("Stop returned before the synchronous run")
	}
	if err := <-outOfRun; !errors.Is(err, stop) {
		t.Errorf("the synchronous run ended with %v, want Stop's cause", err)
	}
	if err := r.Run(context.Background(), func(context.Context) error { return nil }); !errors.Is(err, ErrStopped) {
		t.Errorf("Run after Stop: %v, want ErrStopped", err)
	}
}

// Once it returns, its slot is free again.
func TestRunFreesItsSlot(t *testing.T) {
	r := NewRegistry(discard, Limits{MaxRunning: 1, KeepFinished: 100, KeepFor: time.Hour})
	defer r.Stop(errors.New("test over"))
	want := errors.New("failed")
	if err := r.Run(context.Background(), func(context.Context) error { return want }); err != want {
		t.Fatalf("Run: %v, want fn's error", err)
	}
	if _, err := r.Start("download", "", func(context.Context, *progress.Counter) (any, error) { return nil, nil }); err != nil {
		t.Errorf("a job after the synchronous run ended: %v", err)
	}
}

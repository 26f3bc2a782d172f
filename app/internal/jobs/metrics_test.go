package jobs

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aircraftdata/platform/app/internal/progress"
)

// told records what a registry told its Metrics.
type told struct {
	mu     sync.Mutex
	events []string
}

func (t *told) add(e string) { t.mu.Lock(); defer t.mu.Unlock(); t.events = append(t.events, e) }
func (t *told) list() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.events)
}
func (t *told) JobStarted(kind string)      { t.add("started " + kind) }
func (t *told) JobEnded(kind, state string) { t.add("ended " + kind + " " + state) }
func (t *told) JobRefused(kind string)      { t.add("refused " + kind) }

// TestMetricsToldOfEachJob: a job started, one refused for want of a slot, each end with its state; Running counts the
// slots taken.
func TestMetricsToldOfEachJob(t *testing.T) {
	r := NewRegistry(discard, Limits{MaxRunning: 1, KeepFinished: 10, KeepFor: time.Hour})
	defer r.Stop(errors.New("test over"))
	m := new(told)
	r.Observe(m)
	release := make(chan struct{})
	if _, err := r.Start("ingest", "", func(context.Context, *progress.Counter) (any, error) { <-release; return nil, nil }); err != nil {
		t.Fatal(err)
	}
	if running, max := r.Running(); running != 1 || max != 1 {
		t.Errorf("Running: %d of %d, want 1 of 1", running, max)
	}
	if _, err := r.Start("download", "", nil); !errors.Is(err, ErrFull) {
		t.Fatalf("second job: %v, want ErrFull", err)
	}
	close(release)
	waitFor(t, func() bool { n, _ := r.Running(); return n == 0 })
	if _, err := r.Start("download", "", func(context.Context, *progress.Counter) (any, error) { return nil, errors.New("no") }); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { n, _ := r.Running(); return n == 0 })
	want := []string{"started ingest", "refused download", "ended ingest succeeded", "started download", "ended download failed"}
	if got := m.list(); !slices.Equal(got, want) {
		t.Errorf("told %q, want %q", got, want)
	}
}

// Package jobs runs long operations in the background and keeps their state
// (progress, then result or error) for clients to poll.
//
// Jobs live in the memory of the instance that started them and are
// forgotten a while after they end; the work itself is durable where it
// matters (ingestion is exactly-once, downloads resumable), so a lost job
// record only loses its report.
package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"

	"github.com/aircraftdata/platform/app/internal/progress"
)

// State of a job.
type State string

const (
	Running   State = "running"
	Succeeded State = "succeeded"
	Failed    State = "failed"
)

// View is what a client sees of a job.
type View struct {
	ID       string          `json:"id"`
	Kind     string          `json:"kind"`
	State    State           `json:"state"`
	Started  time.Time       `json:"started"`
	Finished *time.Time      `json:"finished,omitempty"`
	Progress progress.Report `json:"progress"`
	Result   any             `json:"result,omitempty"`
	Error    string          `json:"error,omitempty"`
}

type job struct {
	view     View
	progress *progress.Counter
}

// Registry holds the jobs of this instance.
type Registry struct {
	ctx  context.Context // parent of every job: cancelled at shutdown
	keep time.Duration
	mu   sync.Mutex
	jobs map[string]*job
	wg   sync.WaitGroup
	now  func() time.Time
}

// NewRegistry returns a registry whose jobs run under ctx and whose finished
// jobs are kept for keep.
func NewRegistry(ctx context.Context, keep time.Duration) *Registry {
	return &Registry{ctx: ctx, keep: keep, jobs: make(map[string]*job), now: time.Now}
}

// Start runs fn in the background and returns the job's id.
func (r *Registry) Start(kind string, fn func(ctx context.Context, p *progress.Counter) (any, error)) View {
	j := &job{progress: new(progress.Counter)}
	j.view = View{ID: newID(), Kind: kind, State: Running, Started: r.now().UTC()}
	r.mu.Lock()
	r.prune()
	r.jobs[j.view.ID] = j
	started := r.viewLocked(j)
	r.mu.Unlock()

	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		res, err := fn(r.ctx, j.progress)
		r.mu.Lock()
		defer r.mu.Unlock()
		done := r.now().UTC()
		j.view.Finished = &done
		if err != nil {
			j.view.State, j.view.Error = Failed, err.Error()
		} else {
			j.view.State, j.view.Result = Succeeded, res
		}
	}()
	return started
}

// Get returns a job by id.
func (r *Registry) Get(id string) (View, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	j, ok := r.jobs[id]
	if !ok {
		return View{}, false
	}
	return r.viewLocked(j), true
}

// Wait blocks until every job has returned (after the registry's context is
// cancelled, jobs stop early).
func (r *Registry) Wait() { r.wg.Wait() }

func (r *Registry) viewLocked(j *job) View {
	v := j.view
	v.Progress = j.progress.Report()
	return v
}

func (r *Registry) prune() {
	for id, j := range r.jobs {
		if j.view.Finished != nil && r.now().Sub(*j.view.Finished) > r.keep {
			delete(r.jobs, id)
		}
	}
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

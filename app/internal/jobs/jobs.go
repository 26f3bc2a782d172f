// Package jobs runs long operations in the background and keeps their state
// (progress, then result or error) for clients to poll.
//
// Every resource is bounded by its Limits: jobs running at once (Start
// fails with ErrFull beyond), finished jobs kept (by count and by age). A
// job that panics fails with "internal error (request id …)"; the process
// and the other jobs keep running. Stop cancels the running jobs with a
// cause, which becomes their error, and waits for them.
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
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/aircraftdata/platform/app/internal/panics"
	"github.com/aircraftdata/platform/app/internal/progress"
)

// ErrFull is returned by Start when Limits.MaxRunning jobs are running.
var ErrFull = errors.New("too many jobs running")

// State of a job.
type State string

const (
	Running   State = "running"
	Succeeded State = "succeeded"
	Failed    State = "failed"
)

// View is what a client sees of a job.
type View struct {
	ID        string          `json:"id"`
	Kind      string          `json:"kind"`
	RequestID string          `json:"request_id,omitempty" doc:"X-Request-Id of the request that started the job"`
	State     State           `json:"state"`
	Started   time.Time       `json:"started"`
	Finished  *time.Time      `json:"finished,omitempty"`
	Progress  progress.Report `json:"progress"`
	Result    any             `json:"result,omitempty"`
	Error     string          `json:"error,omitempty"`
}

// Func is the work of a job. ctx is cancelled (with a cause) when the
// registry stops; p counts its progress.
type Func func(ctx context.Context, p *progress.Counter) (any, error)

// Limits bound a registry.
type Limits struct {
	MaxRunning   int           // jobs running at once
	KeepFinished int           // finished jobs kept, newest first
	KeepFor      time.Duration // how long a finished job is kept at most
}

// Defaults of Limits fields left zero.
const (
	DefaultMaxRunning   = 32
	DefaultKeepFinished = 100
	DefaultKeepFor      = time.Hour
)

type job struct {
	view     View
	progress *progress.Counter
}

// Registry holds the jobs of this instance.
type Registry struct {
	ctx    context.Context // parent of every job
	cancel context.CancelCauseFunc
	limits Limits
	log    *slog.Logger
	now    func() time.Time

	mu       sync.Mutex
	jobs     map[string]*job
	finished []*job // oldest first
	running  int
	stopped  bool
	wg       sync.WaitGroup
}

// NewRegistry returns an empty registry; zero limits take their defaults.
func NewRegistry(log *slog.Logger, l Limits) *Registry {
	if l.MaxRunning <= 0 {
		l.MaxRunning = DefaultMaxRunning
	}
	if l.KeepFinished <= 0 {
		l.KeepFinished = DefaultKeepFinished
	}
	if l.KeepFor <= 0 {
		l.KeepFor = DefaultKeepFor
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	return &Registry{ctx: ctx, cancel: cancel, limits: l, log: log, now: time.Now, jobs: make(map[string]*job)}
}

// Start runs fn in the background and returns the job as it starts, or
// ErrFull when Limits.MaxRunning jobs are running. requestID names the
// request that started it, for logs and for the error of a job that panics.
func (r *Registry) Start(kind, requestID string, fn Func) (View, error) {
	j := &job{progress: new(progress.Counter)}
	j.view = View{ID: newID(), Kind: kind, RequestID: requestID, State: Running, Started: r.now().UTC()}
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return View{}, context.Cause(r.ctx)
	}
	if r.running >= r.limits.MaxRunning {
		r.mu.Unlock()
		return View{}, ErrFull
	}
	r.running++
	r.jobs[j.view.ID] = j
	started := r.viewLocked(j)
	r.wg.Add(1)
	r.mu.Unlock()

	go func() {
		defer r.wg.Done()
		var res any
		err := panics.Catch(func() (err error) {
			res, err = fn(r.ctx, j.progress)
			return err
		})
		r.finish(j, res, err)
	}()
	return started, nil
}

func (r *Registry) finish(j *job, res any, err error) {
	var p *panics.Error
	switch {
	case errors.As(err, &p):
		r.log.Error("job panicked", "job", j.view.ID, "kind", j.view.Kind, "request_id", j.view.RequestID,
			"panic", fmt.Sprint(p.Value), "stack", string(p.Stack))
		err = fmt.Errorf("internal error (request id %s)", j.view.RequestID)
	case r.ctx.Err() != nil:
		// Stopped: whatever the work made of its cancellation, the job
		// did not finish, for the registry's reason.
		err = context.Cause(r.ctx)
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	done := r.now().UTC()
	j.view.Finished = &done
	if err != nil {
		j.view.State, j.view.Error = Failed, err.Error()
	}
	// A stopped job keeps what it had done as its result.
	j.view.Result = res
	if err == nil {
		j.view.State = Succeeded
	}
	r.running--
	r.finished = append(r.finished, j)
	r.pruneLocked()
	r.log.Info("job ended", "job", j.view.ID, "kind", j.view.Kind, "request_id", j.view.RequestID,
		"state", j.view.State, "error", j.view.Error, "seconds", done.Sub(j.view.Started).Seconds())
}

// Get returns a job by id.
func (r *Registry) Get(id string) (View, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pruneLocked()
	j, ok := r.jobs[id]
	if !ok {
		return View{}, false
	}
	return r.viewLocked(j), true
}

// Stop refuses new jobs, cancels the running ones with cause (their error
// becomes cause's text) and waits until they have returned.
func (r *Registry) Stop(cause error) {
	r.mu.Lock()
	r.stopped = true
	n := r.running
	r.mu.Unlock()
	if n > 0 {
		r.log.Info("stopping jobs", "running", n, "cause", cause.Error())
	}
	r.cancel(cause)
	r.wg.Wait()
}

func (r *Registry) viewLocked(j *job) View {
	v := j.view
	v.Progress = j.progress.Report()
	return v
}

// pruneLocked forgets the oldest finished jobs beyond KeepFinished and
// those finished longer than KeepFor ago.
func (r *Registry) pruneLocked() {
	cut := max(0, len(r.finished)-r.limits.KeepFinished)
	for cut < len(r.finished) && r.now().Sub(*r.finished[cut].view.Finished) > r.limits.KeepFor {
		cut++
	}
	for _, j := range r.finished[:cut] {
		delete(r.jobs, j.view.ID)
	}
	r.finished = slices.Delete(r.finished, 0, cut)
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

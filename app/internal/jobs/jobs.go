// Package jobs runs long operations in the background and keeps their state
// (progress, then result or error) for clients to poll.
//
// Every resource is bounded by its Limits: jobs running at once (Start
// fails with ErrFull beyond), finished jobs kept (by count and by age). A
// job that panics fails with "internal error (request id …)"; the process
// and the other jobs keep running. Stop cancels the running jobs with a
// cause, which becomes their error, and waits for them.
//
// A job runs on the instance that started it. Shared with a Store
// (PostgreSQL), its state is also saved there, so that any instance answers
// for it, and a running job whose instance stopped renewing its lease is
// failed "instance lost" by the first reader. The work itself is durable
// where it matters (ingestion is exactly-once, downloads resumable).
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

// ErrStopped is returned by Start after Stop.
var ErrStopped = errors.New("jobs stopped")

// Store keeps jobs where every instance reads them (postgres.DB): a
// registry that shares its jobs (Share) saves each when it starts, while it
// runs (with its progress, renewing its instance's lease) and when it ends;
// it reads other instances' jobs from there. LoadJob fails a running job
// whose lease ran out ("instance lost").
type Store interface {
	SaveJob(ctx context.Context, v View, instance string, leaseUntil time.Time) error
	LoadJob(ctx context.Context, id string, now time.Time) (View, bool, error)
	PruneJobs(ctx context.Context, keep int, cutoff time.Time) error
}

// storeTimeout bounds each write to the store.
const storeTimeout = 5 * time.Second

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

// Limits bound a registry. Each is required (the service's come from
// JOBS_MAX_RUNNING, JOBS_KEEP and JOBS_KEEP_MINUTES).
type Limits struct {
	MaxRunning   int           // jobs running at once
	KeepFinished int           // finished jobs kept, newest first
	KeepFor      time.Duration // how long a finished job is kept at most
}

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

	store    Store // nil: jobs live in this registry only
	instance string
	lease    time.Duration
	renewer  func() // stops the lease renewals

	mu       sync.Mutex
	jobs     map[string]*job
	finished []*job // oldest first
	running  int
	stopped  bool
	wg       sync.WaitGroup
}

// NewRegistry returns an empty registry. It panics if a limit is not
// positive: a registry without bounds is a bug of its caller.
func NewRegistry(log *slog.Logger, l Limits) *Registry {
	if l.MaxRunning <= 0 || l.KeepFinished <= 0 || l.KeepFor <= 0 {
		panic(fmt.Sprintf("jobs: NewRegistry with limits %+v: each must be positive", l))
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	return &Registry{ctx: ctx, cancel: cancel, limits: l, log: log, now: time.Now, jobs: make(map[string]*job)}
}

// Share keeps the registry's jobs in store too, under instance, renewing
// their lease every lease/3 while they run. Call it before any Start.
func (r *Registry) Share(store Store, instance string, lease time.Duration) {
	r.store, r.instance, r.lease = store, instance, lease
	t := time.NewTicker(lease / 3)
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-t.C:
				r.renew()
			case <-done:
				return
			}
		}
	}()
	r.renewer = func() { t.Stop(); close(done); <-stopped }
}

// renew saves every running job, with its progress and a new lease.
func (r *Registry) renew() {
	r.mu.Lock()
	var running []View
	for _, j := range r.jobs {
		if j.view.Finished == nil {
			running = append(running, r.viewLocked(j))
		}
	}
	r.mu.Unlock()
	for _, v := range running {
		r.save(v)
	}
}

// save writes v to the store, if the registry has one.
func (r *Registry) save(v View) error {
	if r.store == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	err := r.store.SaveJob(ctx, v, r.instance, r.now().Add(r.lease))
	if err != nil {
		r.log.Warn("saving a job", "job", v.ID, "error", err)
	}
	return err
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
		return View{}, ErrStopped
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
	if err := r.save(started); err != nil { // another instance could not answer for it
		r.mu.Lock()
		delete(r.jobs, j.view.ID)
		r.running--
		r.mu.Unlock()
		r.wg.Done()
		return View{}, err
	}

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
	if r.store != nil {
		v := r.viewLocked(j)
		r.wg.Add(1)
		go func() { // not under the lock; Stop waits for it (wg)
			defer r.wg.Done()
			if r.save(v) == nil {
				ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
				defer cancel()
				_ = r.store.PruneJobs(ctx, r.limits.KeepFinished, r.now().Add(-r.limits.KeepFor))
			}
		}()
	}
	r.log.Info("job ended", "job", j.view.ID, "kind", j.view.Kind, "request_id", j.view.RequestID,
		"state", j.view.State, "error", j.view.Error, "seconds", done.Sub(j.view.Started).Seconds())
}

// Get returns a job by id: this instance's from memory, any other's from
// the store.
func (r *Registry) Get(ctx context.Context, id string) (View, bool, error) {
	r.mu.Lock()
	r.pruneLocked()
	j, ok := r.jobs[id]
	var v View
	if ok {
		v = r.viewLocked(j)
	}
	r.mu.Unlock()
	if ok || r.store == nil {
		return v, ok, nil
	}
	return r.store.LoadJob(ctx, id, r.now())
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
	if r.renewer != nil {
		r.renewer()
	}
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

// Package jobs runs long operations in the background and keeps their state (progress, then result or error) for
// clients to poll.
//
// Every resource is bounded by its Limits: jobs running at once (Start fails with ErrFull beyond), finished jobs kept
// (by count and by age). A job that panics fails with "internal error (request id …)"; the process and the other jobs
// keep running. Stop cancels the running jobs with a cause, which becomes their error, and waits for them.
//
// A job runs on the instance that started it. Shared with a Store (PostgreSQL), its state is also saved there, so that
// any instance answers for it, and every instance gives the same answer: a running job whose instance has not renewed
// its lease (by the store's clock) reads as failed "instance lost" everywhere, its owner included, until the owner, if
// it was only paused or cut off, saves its real end, which then reads everywhere. The work itself is durable where it
// matters (ingestion is exactly-once, downloads resumable).
package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/sethvargo/go-retry"

	"github.com/aircraftdata/platform/app/internal/panics"
	"github.com/aircraftdata/platform/app/internal/progress"
)

// ErrFull is returned by Start when Limits.MaxRunning jobs are running.
var ErrFull = errors.New("too many jobs running")

// ErrStopped is returned by Start after Stop.
var ErrStopped = errors.New("jobs stopped")

// Store keeps jobs where every instance reads them (postgres/jobstore): a registry that shares its jobs (Share) saves
// each when it starts, renews the leases of all its running jobs at once (with their progress) and saves each job's
// end; it reads jobs from there. Leases are reckoned by the store's clock, and so are the times a job started and
// ended, which StartJob and EndJob return. LoadJob only reads: a running job whose lease ran out reads as failed
// InstanceLost, finished when its lease ran out; EndJob overwrites that with the job's real end.
type Store interface {
	StartJob(ctx context.Context, v View, instance string, lease time.Duration) (started time.Time, err error)
	RenewJobs(ctx context.Context, instance string, running []View, lease time.Duration) error
	EndJob(ctx context.Context, v View, instance string) (finished time.Time, err error)
	LoadJob(ctx context.Context, id string) (View, bool, error)
	PruneJobs(ctx context.Context, keep int, keepFor time.Duration) error
}

// InstanceLost is the error of a running job whose instance has not renewed its lease in time.
const InstanceLost = "instance lost"

// storeTimeout bounds each call to the store.
const storeTimeout = 5 * time.Second

// firstRetry is the wait before the first retry of a job's end; each retry waits twice as long, up to a third of the
// lease.
const firstRetry = 100 * time.Millisecond

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

// Func is the work of a job. ctx is cancelled (with a cause) when the registry stops; p counts its progress.
type Func func(ctx context.Context, p *progress.Counter) (any, error)

// Limits bound a registry. Each is required (the service's come from JOBS_MAX_RUNNING, JOBS_KEEP and
// JOBS_KEEP_MINUTES).
type Limits struct {
	MaxRunning   int           // jobs running at once
	KeepFinished int           // finished jobs kept, newest first
	KeepFor      time.Duration // how long a finished job is kept at most
}

type job struct {
	view     View
	progress *progress.Counter
	saved    bool // its end is in the store (with a store)
}

// Registry holds the jobs of this instance.
type Registry struct {
	ctx    context.Context // parent of every job
	cancel context.CancelCauseFunc
	limits Limits
	log    *slog.Logger
	now    func() time.Time

	store       Store // nil: jobs live in this registry only
	instance    string
	lease       time.Duration
	renewer     func()          // stops the lease renewals
	saveCtx     context.Context // parent of the saves of jobs' ends
	cancelSaves context.CancelFunc
	saves       sync.WaitGroup // saves of jobs' ends under way

	metrics Metrics // nil: nobody is told

	mu       sync.Mutex
	jobs     map[string]*job
	finished []*job // oldest first
	running  int    // jobs running, and with a store those whose end is not saved yet
	stopped  bool
	wg       sync.WaitGroup
}

// NewRegistry returns an empty registry. It panics if a limit is not positive: a registry without bounds is a bug of
// its caller.
func NewRegistry(log *slog.Logger, l Limits) *Registry {
	if l.MaxRunning <= 0 || l.KeepFinished <= 0 || l.KeepFor <= 0 {
		panic(fmt.Sprintf("jobs: NewRegistry with limits %+v: each must be positive", l))
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	saveCtx, cancelSaves := context.WithCancel(context.Background())
	return &Registry{ctx: ctx, cancel: cancel, limits: l, log: log, now: time.Now, jobs: make(map[string]*job),
		saveCtx: saveCtx, cancelSaves: cancelSaves}
}

// InstanceName names this process in the jobs it shares (Share's instance): its host and a random suffix, since two
// processes may share a host.
func InstanceName() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return host + "-" + hex.EncodeToString(b[:])
}

// Share keeps the registry's jobs in store too, under instance, renewing their leases every lease/3, all in one call,
// while they run. A job keeps its place among Limits.MaxRunning until its end is saved: the end is retried with backoff
// until it lands, or until Stop has waited one lease for it. Call Share before any Start.
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
	var once sync.Once // Stop may be called again
	r.renewer = func() { once.Do(func() { t.Stop(); close(done); <-stopped }) }
}

// renew renews, in one call to the store, the leases of the jobs whose end is not saved yet, with their progress.
func (r *Registry) renew() {
	r.mu.Lock()
	var running []View
	for _, j := range r.jobs {
		if !j.saved {
			running = append(running, r.viewLocked(j))
		}
	}
	r.mu.Unlock()
	if len(running) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := r.store.RenewJobs(ctx, r.instance, running, r.lease); err != nil {
		r.log.Warn("renewing the leases of jobs", "jobs", len(running), "error", err)
	}
}

// saveEnd saves a job's end, retrying with backoff until it lands or Stop gives up on it, then frees the job's place
// among the running.
func (r *Registry) saveEnd(j *job, v View) {
	defer r.saves.Done()
	b := retry.WithCappedDuration(max(firstRetry, r.lease/3), retry.NewExponential(firstRetry))
	var finished time.Time
	err := retry.Do(r.saveCtx, b, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, storeTimeout)
		defer cancel()
		var err error
		if finished, err = r.store.EndJob(ctx, v, r.instance); err != nil {
			r.log.Warn("saving the end of a job, retrying", "job", v.ID, "error", err)
			return retry.RetryableError(err)
		}
		return nil
	})
	r.mu.Lock()
	if err == nil {
		j.saved, j.view.Finished = true, &finished
	}
	r.running--
	r.mu.Unlock()
	if err != nil {
		r.log.Error("the end of a job is not saved: other instances will answer it lost", "job", v.ID,
			"state", v.State, "error", err)
		return
	}
	ctx, cancel := context.WithTimeout(r.saveCtx, storeTimeout)
	defer cancel()
	if err := r.store.PruneJobs(ctx, r.limits.KeepFinished, r.limits.KeepFor); err != nil {
		r.log.Warn("pruning jobs", "error", err)
	}
}

// Start runs fn in the background and returns the job as it starts, or ErrFull when Limits.MaxRunning jobs are running.
// requestID names the request that started it, for logs and for the error of a job that panics.
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
		if r.metrics != nil {
			r.metrics.JobRefused(kind)
		}
		return View{}, ErrFull
	}
	r.running++
	r.jobs[j.view.ID] = j
	started := r.viewLocked(j)
	r.wg.Add(1)
	r.mu.Unlock()
	if r.store != nil {
		t, err := r.start(started)
		r.mu.Lock()
		if err != nil { // another instance could not answer for it
			delete(r.jobs, j.view.ID)
			r.running--
			r.mu.Unlock()
			r.wg.Done()
			return View{}, err
		}
		j.view.Started, started.Started = t, t // the store's time: every instance answers it
		r.mu.Unlock()
	}
	if r.metrics != nil {
		r.metrics.JobStarted(kind)
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

// start saves a starting job to the store and returns when it started.
func (r *Registry) start(v View) (time.Time, error) {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	t, err := r.store.StartJob(ctx, v, r.instance, r.lease)
	if err != nil {
		r.log.Warn("saving a job", "job", v.ID, "error", err)
	}
	return t, err
}

func (r *Registry) finish(j *job, res any, err error) {
	var p *panics.Error
	switch {
	case errors.As(err, &p):
		r.log.Error("job panicked", "job", j.view.ID, "kind", j.view.Kind, "request_id", j.view.RequestID,
			"panic", fmt.Sprint(p.Value), "stack", string(p.Stack))
		err = fmt.Errorf("internal error (request id %s)", j.view.RequestID)
	case r.ctx.Err() != nil:
		// Stopped: whatever the work made of its cancellation, the job did not finish, for the registry's reason.
		err = context.Cause(r.ctx)
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	done := r.now().UTC() // with a store, replaced by the store's time once saved
	j.view.Finished = &done
	if err != nil {
		j.view.State, j.view.Error = Failed, err.Error()
	}
	// A stopped job keeps what it had done as its result.
	j.view.Result = res
	if err == nil {
		j.view.State = Succeeded
	}
	r.finished = append(r.finished, j)
	r.pruneLocked()
	if r.metrics != nil {
		r.metrics.JobEnded(j.view.Kind, string(j.view.State))
	}
	if r.store == nil {
		r.running--
	} else {
		r.saves.Add(1)
		go r.saveEnd(j, r.viewLocked(j)) // not under the lock; Stop waits for it
	}
	r.log.Info("job ended", "job", j.view.ID, "kind", j.view.Kind, "request_id", j.view.RequestID,
		"state", j.view.State, "error", j.view.Error, "seconds", done.Sub(j.view.Started).Seconds())
}

// Get returns a job by id. With a store, every instance answers the same: a job of this instance whose end is saved
// from memory, any other from the store (one read), except that a job of this instance the store says still runs is
// answered from memory, with its latest progress.
func (r *Registry) Get(ctx context.Context, id string) (View, bool, error) {
	r.mu.Lock()
	r.pruneLocked()
	j, mine := r.jobs[id]
	var v View
	saved := false
	if mine {
		v, saved = r.viewLocked(j), j.saved
	}
	r.mu.Unlock()
	if r.store == nil || saved {
		return v, mine, nil
	}
	stored, ok, err := r.store.LoadJob(ctx, id)
	if err != nil || !ok {
		return View{}, false, err
	}
	if mine && stored.State == Running && v.State == Running {
		return v, true, nil
	}
	return stored, true, nil
}

// Stop refuses new jobs, cancels the running ones with cause (their error becomes cause's text) and waits until they
// have returned and, with a store, until their ends are saved, for one lease at most.
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
	// The ends of the jobs are saved within one lease, or left lost.
	giveUp := time.AfterFunc(r.lease, r.cancelSaves)
	r.saves.Wait()
	giveUp.Stop()
	r.cancelSaves()
	if r.renewer != nil {
		r.renewer()
	}
}

func (r *Registry) viewLocked(j *job) View {
	v := j.view
	v.Progress = j.progress.Report()
	return v
}

// pruneLocked forgets the oldest finished jobs beyond KeepFinished and those finished longer than KeepFor ago.
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

// Metrics is told of the jobs started, ended and refused (package metrics implements it). kind is the code's (bounded),
// never a job id.
type Metrics interface {
	JobStarted(kind string)
	JobEnded(kind, state string)
	JobRefused(kind string)
}

// Observe tells m of the registry's jobs. Call it before any Start.
func (r *Registry) Observe(m Metrics) { r.metrics = m }

// Running returns the jobs running (with a store, and those whose end is not saved yet: they hold their slot) and
// Limits.MaxRunning.
func (r *Registry) Running() (running, max int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.running, r.limits.MaxRunning
}

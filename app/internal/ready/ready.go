// Package ready checks the service's dependencies in the background and keeps the last answer, so that neither the cost
// of asking whether the service is ready (GET /api/v1/ready) nor the answer depends on how often it is asked.
package ready

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// The state of a dependency at a check.
const (
	OK          = "ok"
	Unavailable = "unavailable" // the reason is in the service's log
)

// Check is one dependency that readiness reports on.
type Check struct {
	Name  string
	Check func(context.Context) error
}

// Status is one check of every dependency. It never changes once made.
type Status struct {
	Ready   bool              // every dependency answered
	Checks  map[string]string // per dependency: OK or Unavailable
	Checked time.Time         // when the check was made, UTC
}

// checkTimeout bounds one dependency check.
const checkTimeout = 3 * time.Second

// Checker keeps the last check of the service's dependencies: Run refreshes it in the background, Last answers it.
type Checker struct {
	log    *slog.Logger
	every  time.Duration
	checks []Check
	last   atomic.Pointer[Status]
	mu     sync.Mutex      // one Refresh at a time
	down   map[string]bool // at the last Refresh: log changes only
}

// New returns a Checker of checks, refreshed every interval by Run; it has no Status until its first Refresh.
func New(log *slog.Logger, every time.Duration, checks ...Check) *Checker {
	return &Checker{log: log, every: every, checks: checks, down: map[string]bool{}}
}

// Last returns the last check, or nil before the first.
func (r *Checker) Last() *Status { return r.last.Load() }

// Refresh runs every check at once, each within checkTimeout, and keeps the answer. A dependency that goes down or
// comes back is logged once.
func (r *Checker) Refresh(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	type answer struct {
		name string
		err  error
	}
	answers := make(chan answer, len(r.checks))
	for _, c := range r.checks {
		go func() { answers <- answer{c.Name, c.Check(ctx)} }()
	}
	out := &Status{Ready: true, Checks: map[string]string{}, Checked: time.Now().UTC()}
	for range r.checks {
		a := <-answers
		out.Checks[a.name] = OK
		if a.err != nil {
			out.Checks[a.name], out.Ready = Unavailable, false
			if !r.down[a.name] {
				r.log.Warn("readiness: "+a.name+" unavailable", "error", a.err)
			}
		} else if r.down[a.name] {
			r.log.Info("readiness: " + a.name + " back")
		}
		r.down[a.name] = a.err != nil
	}
	r.last.Store(out)
}

// Run refreshes r every interval until ctx ends.
func (r *Checker) Run(ctx context.Context) {
	t := time.NewTicker(r.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.Refresh(ctx)
		}
	}
}

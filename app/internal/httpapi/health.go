package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

type health struct {
	Status  string `json:"status" example:"ok"`
	Version string `json:"version"`
}

type readiness struct {
	Status  string            `json:"status" enum:"ready,unavailable"`
	Checks  map[string]string `json:"checks" doc:"per dependency: ok or unavailable (the reason is in the service's log)"`
	Checked *time.Time        `json:"checked_at" doc:"when the dependencies were last checked (every READY_REFRESH_SECONDS, in the background); null before the first check"`
}

type readyOutput struct {
	Status int
	Body   readiness
}

// checkTimeout bounds one dependency check.
const checkTimeout = 3 * time.Second

// Readiness is the last check of the service's dependencies. Run refreshes it in the background; /api/v1/ready answers
// it, so that neither the cost of that answer nor the answer depends on how often it is asked.
type Readiness struct {
	log    *slog.Logger
	every  time.Duration
	checks []Check
	last   atomic.Pointer[readiness]
	mu     sync.Mutex      // one Refresh at a time
	down   map[string]bool // at the last Refresh: log changes only
}

// NewReadiness returns a Readiness of checks, refreshed every interval by Run; it answers unavailable until its first
// Refresh.
func NewReadiness(log *slog.Logger, every time.Duration, checks ...Check) *Readiness {
	return &Readiness{log: log, every: every, checks: checks, down: map[string]bool{}}
}

// Refresh runs every check at once, each within checkTimeout, and keeps the answer. A dependency that goes down or
// comes back is logged once.
func (r *Readiness) Refresh(ctx context.Context) {
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
	now := time.Now().UTC()
	out := &readiness{Status: "ready", Checks: map[string]string{}, Checked: &now}
	for range r.checks {
		a := <-answers
		out.Checks[a.name] = "ok"
		if a.err != nil {
			out.Checks[a.name], out.Status = "unavailable", "unavailable"
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
func (r *Readiness) Run(ctx context.Context) {
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

// answer is the last check: 200 when every dependency was reachable.
func (r *Readiness) answer() *readyOutput {
	var last *readiness
	if r != nil {
		last = r.last.Load()
	}
	if last == nil {
		return &readyOutput{Status: http.StatusServiceUnavailable, Body: readiness{Status: "unavailable", Checks: map[string]string{}}}
	}
	status := http.StatusOK
	if last.Status != "ready" {
		status = http.StatusServiceUnavailable
	}
	return &readyOutput{Status: status, Body: *last}
}

// health answers that the process serves, and its version.
func (h *handlers) health(context.Context, *struct{}) (*struct{ Body health }, error) {
	return &struct{ Body health }{health{Status: "ok", Version: h.Version}}, nil
}

// ready answers the last check of the dependencies.
func (h *handlers) ready(context.Context, *struct{}) (*readyOutput, error) {
	return h.Ready.answer(), nil
}

package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/aircraftdata/platform/app/internal/jobs"
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

// Readiness is the last check of the service's dependencies. Run refreshes
// it in the background; /api/v1/ready answers it, so that neither the
// cost of that answer nor the answer depends on how often it is asked.
type Readiness struct {
	log    *slog.Logger
	every  time.Duration
	checks []Check
	last   atomic.Pointer[readiness]
	mu     sync.Mutex      // one Refresh at a time
	down   map[string]bool // at the last Refresh: log changes only
}

// NewReadiness returns a Readiness of checks, refreshed every interval by
// Run; it answers unavailable until its first Refresh.
func NewReadiness(log *slog.Logger, every time.Duration, checks ...Check) *Readiness {
	return &Readiness{log: log, every: every, checks: checks, down: map[string]bool{}}
}

// Refresh runs every check at once, each within checkTimeout, and keeps the
// answer. A dependency that goes down or comes back is logged once.
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

func registerHealth(api huma.API, d Deps) {
	huma.Register(api, get("health", "/api/v1/health", "Liveness", "service"),
		func(ctx context.Context, _ *struct{}) (*struct{ Body health }, error) {
			return &struct{ Body health }{health{Status: "ok", Version: d.Version}}, nil
		})

	op := get("ready", "/api/v1/ready", "Readiness: every dependency reachable at the last check", "service")
	op.Description = "Answers the last check of PostgreSQL, S3 and MongoDB, made every READY_REFRESH_SECONDS in the background: " +
		"asking costs nothing and does not change the answer. Not rate-limited."
	op.Responses = map[string]*huma.Response{"503": {Description: "a dependency was unreachable at the last check"}}
	huma.Register(api, op, func(ctx context.Context, _ *struct{}) (*readyOutput, error) {
		return d.Ready.answer(), nil
	})
}

type jobInput struct {
	ID string `path:"id" pattern:"^[0-9a-f]{24}$"`
}

// registerJobs serves job lookups. They are reads like the others (rate
// limited, READ_MAX_IN_FLIGHT): the store reads jobs on the read pool
// (aircraftd's jobStore), so they take no connection of the work's.
func registerJobs(api huma.API, d Deps) {
	huma.Register(api, get("job", "/api/v1/jobs/{id}", "A background job: progress, then result or error; lists in a result hold their first 100 entries (truncated: true), counts are whole", "jobs"),
		func(ctx context.Context, in *jobInput) (*struct{ Body jobs.View }, error) {
			v, ok, err := d.Jobs.Get(ctx, in.ID)
			if err != nil {
				return nil, unavailable(ctx, d, "postgres", err)
			}
			if !ok {
				return nil, huma.Error404NotFound("no such job (finished jobs are kept for JOBS_KEEP_MINUTES, the last JOBS_KEEP of them, )")
			}
			return &struct{ Body jobs.View }{v}, nil
		})
}

package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/aircraftdata/platform/app/internal/jobs"
)

type health struct {
	Status  string `json:"status" example:"ok"`
	Version string `json:"version"`
}

type readiness struct {
	Status string            `json:"status" enum:"ready,unavailable"`
	Checks map[string]string `json:"checks" doc:"per dependency: ok or unavailable (the reason is in the service's log)"`
}

type readyOutput struct {
	Status int
	Body   readiness
}

func registerHealth(api huma.API, d Deps) {
	huma.Register(api, get("health", "/api/v1/health", "Liveness", "service"),
		func(ctx context.Context, _ *struct{}) (*struct{ Body health }, error) {
			return &struct{ Body health }{health{Status: "ok", Version: d.Version}}, nil
		})

	op := get("ready", "/api/v1/ready", "Readiness: every dependency reachable", "service")
	op.Responses = map[string]*huma.Response{"503": {Description: "a dependency is unreachable"}}
	huma.Register(api, op, func(ctx context.Context, _ *struct{}) (*readyOutput, error) {
		ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		out := &readyOutput{Status: http.StatusOK, Body: readiness{Status: "ready", Checks: map[string]string{}}}
		type answer struct{ name, state string }
		answers := make(chan answer, len(d.Ready))
		for _, c := range d.Ready {
			go func() {
				state := "ok"
				if err := c.Check(ctx); err != nil {
					state = "unavailable"
					d.Log.WarnContext(ctx, "readiness: "+c.Name+" unavailable", "request_id", RequestID(ctx), "error", err)
				}
				answers <- answer{c.Name, state}
			}()
		}
		for range d.Ready {
			a := <-answers
			out.Body.Checks[a.name] = a.state
			if a.state != "ok" {
				out.Status, out.Body.Status = http.StatusServiceUnavailable, "unavailable"
			}
		}
		return out, nil
	})
}

type jobInput struct {
	ID string `path:"id" pattern:"^[0-9a-f]{24}$"`
}

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

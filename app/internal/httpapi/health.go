package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/aircraftdata/platform/app/internal/ready"
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

// health answers that the process serves, and its version.
func (h *handlers) health(context.Context, *struct{}) (*struct{ Body health }, error) {
	return &struct{ Body health }{health{Status: "ok", Version: h.Version}}, nil
}

// ready answers the last check of the dependencies, made in the background (Readiness): 200 when every one was
// reachable.
func (h *handlers) ready(context.Context, *struct{}) (*readyOutput, error) {
	var last *ready.Status
	if h.Ready != nil {
		last = h.Ready.Last()
	}
	if last == nil {
		body := readiness{Status: "unavailable", Checks: map[string]string{}}
		return &readyOutput{Status: http.StatusServiceUnavailable, Body: body}, nil
	}
	out := &readyOutput{Status: http.StatusOK, Body: readiness{Status: "ready", Checks: last.Checks, Checked: &last.Checked}}
	if !last.Ready {
		out.Status, out.Body.Status = http.StatusServiceUnavailable, "unavailable"
	}
	return out, nil
}

package httpapi

import (
	"context"
	"errors"

	"github.com/danielgtaylor/huma/v2"

	"github.com/aircraftdata/platform/app/internal/httpapi/middleware"
	"github.com/aircraftdata/platform/app/internal/panics"
)

// Errors leak nothing: a 5xx names what failed and the request id; the error itself, with driver details (hosts, users,
// buckets), goes to the log under that id only.

// unavailable logs err with the request's id and answers 503 naming the dependency.
func (h *handlers) unavailable(ctx context.Context, what string, err error) error {
	id := middleware.RequestID(ctx)
	h.Log.ErrorContext(ctx, what+" failed", "request_id", id, "error", err)
	return huma.Error503ServiceUnavailable(what + " unavailable (request id " + id + ")")
}

// failure answers a run that could not finish: 500 when it met a bug (a recovered panic, logged with its stack), 503
// when the request was cancelled (the service is shutting down), else 503 naming what.
func (h *handlers) failure(ctx context.Context, what string, err error) error {
	id := middleware.RequestID(ctx)
	var p *panics.Error
	switch {
	case errors.As(err, &p):
		h.Log.ErrorContext(ctx, what+" panicked", "request_id", id, "panic", p.Value, "stack", string(p.Stack))
		return huma.Error500InternalServerError("internal error (request id " + id + ")")
	case ctx.Err() != nil:
		h.Log.WarnContext(ctx, what+" cancelled", "request_id", id, "cause", context.Cause(ctx), "error", err)
		return huma.Error503ServiceUnavailable(what + " cancelled: " + context.Cause(ctx).Error() + " (request id " + id + ")")
	}
	return h.unavailable(ctx, what, err)
}

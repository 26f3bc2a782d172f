package httpapi

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"

	"github.com/danielgtaylor/huma/v2"

	"github.com/aircraftdata/platform/app/internal/download"
	"github.com/aircraftdata/platform/app/internal/ingest"
	"github.com/aircraftdata/platform/app/internal/jobs"
	"github.com/aircraftdata/platform/app/internal/panics"
	"github.com/aircraftdata/platform/app/internal/progress"
)

// Errors leak nothing: a 5xx names what failed and the request id; the
// error itself, with driver details (hosts, users, buckets), goes to the
// log under that id only.

// unavailable logs err with the request's id and answers 503 naming the
// dependency.
func unavailable(ctx context.Context, d Deps, what string, err error) error {
	id := RequestID(ctx)
	d.Log.ErrorContext(ctx, what+" failed", "request_id", id, "error", err)
	return huma.Error503ServiceUnavailable(what + " unavailable (request id " + id + ")")
}

// failure answers a run that could not finish: 500 when it met a bug (a
// recovered panic, logged with its stack), 503 when the request was
// cancelled (the service is shutting down), else 503 naming what.
func failure(ctx context.Context, d Deps, what string, err error) error {
	id := RequestID(ctx)
	var p *panics.Error
	switch {
	case errors.As(err, &p):
		d.Log.ErrorContext(ctx, what+" panicked", "request_id", id, "panic", p.Value, "stack", string(p.Stack))
		return huma.Error500InternalServerError("internal error (request id " + id + ")")
	case ctx.Err() != nil:
		d.Log.WarnContext(ctx, what+" cancelled", "request_id", id, "cause", context.Cause(ctx), "error", err)
		return huma.Error503ServiceUnavailable(what + " cancelled: " + context.Cause(ctx).Error() + " (request id " + id + ")")
	}
	return unavailable(ctx, d, what, err)
}

// retryJobsAfter is the Retry-After of a 429 when too many jobs run.
const retryJobsAfter = 30

// startJob answers 202 with a job that runs fn, or 429 with Retry-After
// when too many jobs run. The job's error, kept and served by
// GET /api/v1/jobs/{id}, is told as the synchronous request's would be
// (jobFailed): what failed, and the request id under which the error itself
// is logged.
func startJob(ctx context.Context, d Deps, kind string, fn jobs.Func) (*maybeAsync, error) {
	id := RequestID(ctx)
	v, err := d.Jobs.Start(kind, id, func(ctx context.Context, p *progress.Counter) (any, error) {
		ctx = context.WithValue(ctx, ctxKey{}, id)
		res, err := fn(ctx, p)
		if err == nil || errors.As(err, new(*panics.Error)) { // a panic: the registry logs its stack
			return res, err
		}
		return res, errors.New(jobFailed(ctx, d, kind, err).Error())
	})
	if errors.Is(err, jobs.ErrFull) {
		return nil, huma.ErrorWithHeaders(
			huma.Error429TooManyRequests("too many background jobs are running; retry later"),
			http.Header{"Retry-After": {strconv.Itoa(retryJobsAfter)}})
	}
	if errors.Is(err, jobs.ErrStopped) {
		return nil, huma.Error503ServiceUnavailable("not starting jobs: the service is shutting down")
	}
	if err != nil { // the store that shares jobs between instances
		return nil, unavailable(ctx, d, "postgres", err)
	}
	return &maybeAsync{Status: http.StatusAccepted, Location: "/api/v1/jobs/" + v.ID, Body: v}, nil
}

// jobFailed answers a job's error as the synchronous request of its kind
// does.
func jobFailed(ctx context.Context, d Deps, kind string, err error) error {
	switch kind {
	case "ingest":
		return ingestFailed(ctx, d, err)
	case "download":
		return failure(ctx, d, "mongodb", err)
	}
	return failure(ctx, d, kind, err)
}

// maxListed bounds each list of a result kept in a job: a finished job is
// kept in memory for a while, so its result must not grow with the input.
// Counts stay whole; Truncated says a list was cut.
const maxListed = 100

// boundedHour is a download result with its lists cut to maxListed.
type boundedHour struct {
	*download.HourResult
	Truncated bool `json:"truncated" doc:"true when a list holds only its first 100 entries; the counts are whole"`
}

func boundHour(r *download.HourResult) any {
	c := *r
	b := boundedHour{HourResult: &c}
	b.Successful, b.Truncated = cut(r.Successful, b.Truncated)
	b.Failed, b.Truncated = cut(r.Failed, b.Truncated)
	b.Failures, b.Truncated = cut(r.Failures, b.Truncated)
	return b
}

// boundedIngest is an ingest result with its lists cut to maxListed.
type boundedIngest struct {
	*ingest.Result
	Truncated bool `json:"truncated" doc:"true when a list holds only its first 100 entries; the counts are whole"`
}

func boundIngest(r *ingest.Result) any {
	c := *r
	b := boundedIngest{Result: &c}
	b.Skipped, b.Truncated = cut(r.Skipped, b.Truncated)
	b.Failed, b.Truncated = cut(r.Failed, b.Truncated)
	return b
}

// cut returns s's first maxListed entries, in an array of their own: a
// slice of s would keep all of s's array alive as long as the job is kept.
func cut[T any](s []T, truncated bool) ([]T, bool) {
	if len(s) <= maxListed {
		return s, truncated
	}
	return slices.Clone(s[:maxListed]), true
}

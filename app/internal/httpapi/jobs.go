package httpapi

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/aircraftdata/platform/app/internal/download"
	"github.com/aircraftdata/platform/app/internal/httpapi/middleware"
	"github.com/aircraftdata/platform/app/internal/ingest"
	"github.com/aircraftdata/platform/app/internal/jobs"
	"github.com/aircraftdata/platform/app/internal/panics"
	"github.com/aircraftdata/platform/app/internal/progress"
)

// AsyncInput (exported so that huma sees its embedded fields) selects a background run: ?async=true or Prefer:
// respond-async.
type AsyncInput struct {
	Async  bool   `query:"async" doc:"answer 202 at once with a job to poll"`
	Prefer string `header:"Prefer" doc:"respond-async: same as async=true (RFC 7240)"`
}

func (in AsyncInput) async() bool {
	return in.Async || strings.Contains(strings.ToLower(in.Prefer), "respond-async")
}

// maybeAsync is the output of operations that answer either with their result (200) or with a job (202).
type maybeAsync struct {
	Status   int
	Location string `header:"Location"`
	Body     any
}

func asyncResponses(api huma.API, result any) map[string]*huma.Response {
	schema := func(v any) *huma.Schema {
		return api.OpenAPI().Components.Schemas.Schema(reflect.TypeOf(v), true, "")
	}
	return map[string]*huma.Response{
		"200": {Description: "finished", Content: map[string]*huma.MediaType{"application/json": {Schema: schema(result)}}},
		"202": {Description: "started in the background: poll the job at Location", Content: map[string]*huma.MediaType{"application/json": {Schema: schema(jobs.View{})}}},
	}
}

// retryJobsAfter is the Retry-After of a 429 when too many jobs run.
const retryJobsAfter = 30

// startJob answers 202 with a job that runs fn, or 429 with Retry-After when too many jobs run. The job's error, kept
// and served by GET /api/v1/jobs/{id}, is told as the synchronous request's would be (jobFailed): what failed, and the
// request id under which the error itself is logged.
func (h *handlers) startJob(ctx context.Context, kind string, fn jobs.Func) (*maybeAsync, error) {
	id := middleware.RequestID(ctx)
	v, err := h.Jobs.Start(kind, id, func(ctx context.Context, p *progress.Counter) (any, error) {
		ctx = middleware.WithRequestID(ctx, id)
		res, err := fn(ctx, p)
		if err == nil || errors.As(err, new(*panics.Error)) { // a panic: the registry logs its stack
			return res, err
		}
		return res, errors.New(h.jobFailed(ctx, kind, err).Error())
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
		return nil, h.unavailable(ctx, "postgres", err)
	}
	return &maybeAsync{Status: http.StatusAccepted, Location: "/api/v1/jobs/" + v.ID, Body: v}, nil
}

// jobFailed answers a job's error as the synchronous request of its kind does.
func (h *handlers) jobFailed(ctx context.Context, kind string, err error) error {
	switch kind {
	case "ingest":
		return h.ingestFailed(ctx, err)
	case "download":
		return h.failure(ctx, "mongodb", err)
	}
	return h.failure(ctx, kind, err)
}

type jobInput struct {
	ID string `path:"id" pattern:"^[0-9a-f]{24}$"`
}

// job answers a job by its id, from any instance. Lookups are reads like the others (rate limited, READ_MAX_IN_FLIGHT):
// the store reads jobs on the read pool (postgres/jobstore), so they take no connection of the work's.
func (h *handlers) job(ctx context.Context, in *jobInput) (*struct{ Body jobs.View }, error) {
	v, ok, err := h.Jobs.Get(ctx, in.ID)
	if err != nil {
		return nil, h.unavailable(ctx, "postgres", err)
	}
	if !ok {
		return nil, huma.Error404NotFound("no such job (finished jobs are kept for JOBS_KEEP_MINUTES, the last JOBS_KEEP of them, )")
	}
	return &struct{ Body jobs.View }{v}, nil
}

// maxListed bounds each list of a result kept in a job: a finished job is kept in memory for a while, so its result
// must not grow with the input. Counts stay whole; Truncated says a list was cut.
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

// cut returns s's first maxListed entries, in an array of their own: a slice of s would keep all of s's array alive as
// long as the job is kept.
func cut[T any](s []T, truncated bool) ([]T, bool) {
	if len(s) <= maxListed {
		return s, truncated
	}
	return slices.Clone(s[:maxListed]), true
}

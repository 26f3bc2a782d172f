package httpapi

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/aircraftdata/platform/app/internal/flight"
	"github.com/aircraftdata/platform/app/internal/ingest"
	"github.com/aircraftdata/platform/app/internal/jobs"
	"github.com/aircraftdata/platform/app/internal/ledger"
	"github.com/aircraftdata/platform/app/internal/progress"
)

type ingestInput struct {
	Prefix      string `query:"prefix" doc:"only objects whose key starts with this prefix" example:"raw/day=20231101/"`
	RetryFailed bool   `query:"retry_failed" doc:"read quarantined files again even if their ETag is unchanged"`
	AsyncInput
}

// AsyncInput (exported so that huma sees its embedded fields) selects a
// background run: ?async=true or Prefer: respond-async.
type AsyncInput struct {
	Async  bool   `query:"async" doc:"answer 202 at once with a job to poll"`
	Prefer string `header:"Prefer" doc:"respond-async: same as async=true (RFC 7240)"`
}

func (in AsyncInput) async() bool {
	return in.Async || strings.Contains(strings.ToLower(in.Prefer), "respond-async")
}

// maybeAsync is the output of operations that answer either with their
// result (200) or with a job (202).
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

type statsInput struct {
	ICAO string `path:"icao" pattern:"^~?[0-9A-Fa-f]{6}$" doc:"ICAO 24-bit address: 6 hex digits, any case; ~ marks a non-ICAO address" example:"a65800"`
}

type statsOutput struct{ Body *flight.Stats }

type listInput struct {
	After string `query:"after" pattern:"^(~?[0-9A-Fa-f]{6})?$" doc:"return aircraft after this address (the previous page's next)"`
	Limit int    `query:"limit" minimum:"1" maximum:"1000" default:"100"`
}

type aircraftPage struct {
	Items []flight.Aircraft `json:"items"`
	// Next is the value of after for the next page; null on the last page.
	Next *string `json:"next"`
}

func registerFlights(api huma.API, d Deps) {
	op := post("process-s3-data", "/process-s3-data", "Ingest flight data files from S3 into statistics", "flight statistics")
	op.Description = "Reads every object under prefix in S3_BUCKET (readsb-hist snapshots or [{icao, altitude, speed}] lists, " +
		"plain or gzip), exactly once. A file that fails to decode, breaks a cap or is refused by the database is quarantined: " +
		"reported, listed at /api/v1/ingestion/failed, and skipped by later runs until its ETag changes or retry_failed=true; " +
		"the rest of the run is committed. 503 only when PostgreSQL or S3 is unavailable. One run of a prefix at a time: 409 while another runs."
	op.Responses = asyncResponses(api, ingest.Result{})
	op.Errors = []int{http.StatusUnauthorized, http.StatusConflict, http.StatusServiceUnavailable}
	huma.Register(api, op, func(ctx context.Context, in *ingestInput) (*maybeAsync, error) {
		run, err := d.Ingest.Begin(ctx, in.Prefix)
		if errors.Is(err, ingest.ErrBusy) {
			return nil, huma.Error409Conflict("an ingestion of this prefix is already running; try again when it has finished")
		}
		if err != nil {
			return nil, ingestFailed(ctx, d, err)
		}
		req := ingest.Request{Prefix: in.Prefix, RetryFailed: in.RetryFailed}
		if in.async() {
			out, err := startJob(ctx, d, "ingest", func(ctx context.Context, p *progress.Counter) (any, error) {
				res, err := run.Ingest(ctx, req, p)
				if res == nil {
					return nil, err
				}
				return boundIngest(res), err
			})
			if err != nil {
				run.Release()
			}
			return out, err
		}
		res, err := run.Ingest(ctx, req, nil)
		if err != nil {
			return nil, ingestFailed(ctx, d, err)
		}
		return &maybeAsync{Status: http.StatusOK, Body: res}, nil
	})

	huma.Register(api, get("aircraft-stats", "/aircraft-stats/{icao}", "Statistics of one aircraft", "flight statistics"),
		func(ctx context.Context, in *statsInput) (*statsOutput, error) {
			icao, err := flight.NormalizeICAO(in.ICAO)
			if err != nil {
				return nil, huma.Error422UnprocessableEntity(err.Error())
			}
			s, err := d.Stats.Stats(ctx, icao)
			if errors.Is(err, flight.ErrNotFound) {
				return nil, huma.Error404NotFound("no statistics for aircraft " + icao)
			}
			if err != nil {
				return nil, unavailable(ctx, d, "postgres", err)
			}
			return &statsOutput{Body: s}, nil
		})

	op = get("list-aircraft", "/api/v1/aircraft", "Aircraft with statistics, by address, a page at a time", "flight statistics")
	op.Description = "A page holds at most READ_PAGE_MAX aircraft, whatever limit asks."
	huma.Register(api, op,
		func(ctx context.Context, in *listInput) (*struct{ Body aircraftPage }, error) {
			after, limit := strings.ToLower(in.After), pageLimit(d, in.Limit)
			items, err := d.Stats.Aircraft(ctx, after, limit+1)
			if err != nil {
				return nil, unavailable(ctx, d, "postgres", err)
			}
			page := aircraftPage{Items: items}
			if len(items) > limit {
				page.Items = items[:limit]
				next := page.Items[limit-1].ICAO
				page.Next = &next
			}
			return &struct{ Body aircraftPage }{page}, nil
		})

	registerFailed(api, d)
}

type failedInput struct {
	After string `query:"after" doc:"return files after this key (the previous page's next)"`
	Limit int    `query:"limit" minimum:"1" maximum:"1000" default:"100"`
}

type failedPage struct {
	Items []ledger.FailedFile `json:"items"`
	// Next is the value of after for the next page; null on the last page.
	Next *string `json:"next"`
}

func registerFailed(api huma.API, d Deps) {
	op := listing("list-failed-files", "/api/v1/ingestion/failed", "Quarantined files of the flight data bucket, by key, a page at a time", "flight statistics")
	op.Description = "Files that POST /process-s3-data refused (decoding, a cap, validation, or the database), with the reason and " +
		"when. Later runs skip them until their ETag changes, or when called with retry_failed=true. Needs a token of READ_TOKEN " +
		"or API_TOKEN (it names S3 keys). A page holds at most READ_PAGE_MAX files."
	huma.Register(api, op, func(ctx context.Context, in *failedInput) (*struct{ Body failedPage }, error) {
		if d.Ingest == nil {
			return nil, huma.Error503ServiceUnavailable("ingestion is not configured")
		}
		limit := pageLimit(d, in.Limit)
		items, err := d.Ingest.FailedFiles(ctx, in.After, limit+1)
		if err != nil {
			return nil, ingestFailed(ctx, d, err)
		}
		page := failedPage{Items: items}
		if len(items) > limit {
			page.Items = items[:limit]
			next := page.Items[limit-1].Key
			page.Next = &next
		}
		return &struct{ Body failedPage }{page}, nil
	})
}

// ingestFailed answers a run that could not go on: 503 naming the
// dependency that failed (ingest.UnavailableError), else as failure does.
func ingestFailed(ctx context.Context, d Deps, err error) error {
	var u *ingest.UnavailableError
	if errors.As(err, &u) && ctx.Err() == nil {
		return unavailable(ctx, d, u.Dependency, err)
	}
	return failure(ctx, d, "ingestion", err)
}

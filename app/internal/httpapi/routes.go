package httpapi

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/aircraftdata/platform/app/internal/download"
	"github.com/aircraftdata/platform/app/internal/ingest"
)

const (
	tagFlights = "flight statistics"
	tagLanes   = "lane files"
	tagJobs    = "jobs"
	tagService = "service"
)

// routes declares every operation (its OpenAPI description) and the handler that serves it, in the order of the
// README's API table. The operations of a feature that is not configured answer 503 (only).
func routes(api huma.API, h *handlers) {
	ingestion := feature{h.Ingest != nil, "ingestion is not configured"}
	laneFiles := feature{h.Lanes != nil, "lane file downloads are not configured: set MONGODB_URL"}
	backfills := feature{h.Backfills != nil, "backfills are not configured"}

	op := post("process-s3-data", "/process-s3-data", "Ingest flight data files from S3 into statistics", tagFlights)
	op.Description = "Reads every object under prefix in S3_BUCKET (readsb-hist snapshots or [{icao, altitude, speed}] lists, " +
		"plain or gzip), exactly once. A file that fails to decode, breaks a cap or is refused by the database is quarantined: " +
		"reported, listed at /api/v1/ingestion/failed, and skipped by later runs until its ETag changes or retry_failed=true; " +
		"the rest of the run is committed. 503 only when PostgreSQL or S3 is unavailable. One run of a prefix at a time: 409 while another runs."
	op.Responses = asyncResponses(api, ingest.Result{})
	op.Errors = []int{http.StatusUnauthorized, http.StatusConflict, http.StatusServiceUnavailable}
	huma.Register(api, op, only(ingestion, h.ingest))

	huma.Register(api, get("aircraft-stats", "/aircraft-stats/{icao}", "Statistics of one aircraft", tagFlights), h.aircraftStats)

	op = get("list-aircraft", "/api/v1/aircraft", "Aircraft with statistics, by address, a page at a time", tagFlights)
	op.Description = "A page holds at most READ_PAGE_MAX aircraft, whatever limit asks."
	huma.Register(api, op, h.listAircraft)

	op = listing("list-failed-files", "/api/v1/ingestion/failed", "Quarantined files of the flight data bucket, by key, a page at a time", tagFlights)
	op.Description = "Files that POST /process-s3-data refused (decoding, a cap, validation, or the database), with the reason and " +
		"when. Later runs skip them until their ETag changes, or when called with retry_failed=true. Needs a token of READ_TOKEN " +
		"or API_TOKEN (it names S3 keys). A page holds at most READ_PAGE_MAX files."
	huma.Register(api, op, only(ingestion, h.listFailed))

	huma.Register(api, startBackfillOp(), only(backfills, h.startBackfill))
	huma.Register(api, getBackfillOp(), only(backfills, h.getBackfill))
	huma.Register(api, stopBackfillOp(), only(backfills, h.stopBackfill))

	op = post("download", "/api/v1/download", "Download the files of one lane and hour", tagLanes)
	op.Description = "Downloads every registered file of lane_id whose timestamp falls in the UTC hour `hour` of `date` " +
		"to DOWNLOAD_PATH/{lane_id}/{yyyy}/{mm}/{dd}/{hh}/{file}. Files appear whole and verified (size and checksum) or not at all; " +
		"files already there, whole, are not fetched again; an hour being downloaded by another request is waited for. " +
		"Each file's status is kept in MongoDB. A file that cannot be downloaded is listed in failed, with its reason in failures. " +
		"A synchronous download counts against JOBS_MAX_RUNNING like a job (429 when full); an hour that another download holds " +
		"is waited for up to DOWNLOAD_WAIT_SECONDS (at once with async=true), then answers 409 with Retry-After."
	op.Responses = asyncResponses(api, download.HourResult{})
	op.Errors = []int{http.StatusUnauthorized, http.StatusConflict, http.StatusUnprocessableEntity, http.StatusTooManyRequests, http.StatusServiceUnavailable}
	huma.Register(api, op, only(laneFiles, h.download))

	op = post("register-files", "/api/v1/files", "Register file records", tagLanes)
	op.Description = "Adds records of objects in SOURCE_BUCKET, idempotently: a known key with the same lane, timestamp, size " +
		"and etag is left alone; a changed one is updated and goes back to pending. Up to 10,000 records and 16 MiB per request " +
		"(10,000 records with 1,024-byte keys fit)."
	op.MaxBodyBytes = registerMaxBody
	op.Errors = []int{http.StatusUnauthorized, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity, http.StatusServiceUnavailable}
	huma.Register(api, op, only(laneFiles, h.registerFiles))

	op = post("index-files", "/api/v1/files/index", "Register every lane file of the bucket", tagLanes)
	op.Description = "Lists SOURCE_BUCKET under prefix and registers each object laid out as …/{lane_id}/{yyyy}/{mm}/{dd}/{hh}/{file}; " +
		"other objects are reported as skipped. A rerun adds nothing; an object whose size or etag changed updates its record."
	op.Responses = asyncResponses(api, download.IndexResult{})
	op.Errors = []int{http.StatusUnauthorized, http.StatusUnprocessableEntity, http.StatusServiceUnavailable}
	huma.Register(api, op, only(laneFiles, h.indexFiles))

	op = listing("list-files", "/api/v1/files", "File records, by key, a page at a time", tagLanes)
	op.Description = "Needs a token of READ_TOKEN or API_TOKEN (records name S3 keys and local paths). " +
		"A page holds at most READ_PAGE_MAX records, whatever limit asks."
	huma.Register(api, op, only(laneFiles, h.listFiles))

	huma.Register(api, get("job", "/api/v1/jobs/{id}", "A background job: progress, then result or error; lists in a result hold their first 100 entries (truncated: true), counts are whole", tagJobs), h.job)

	huma.Register(api, get("health", "/api/v1/health", "Liveness", tagService), h.health)

	op = get("ready", "/api/v1/ready", "Readiness: every dependency reachable at the last check", tagService)
	op.Description = "Answers the last check of PostgreSQL, S3 and MongoDB, made every READY_REFRESH_SECONDS in the background: " +
		"asking costs nothing and does not change the answer. Not rate-limited."
	op.Responses = map[string]*huma.Response{"503": {Description: "a dependency was unreachable at the last check"}}
	huma.Register(api, op, h.ready)
}

// post declares a POST operation that needs the bearer token.
func post(id, path, summary string, tags ...string) huma.Operation {
	return huma.Operation{
		OperationID: id, Method: http.MethodPost, Path: path, Summary: summary, Tags: tags,
		Security: []map[string][]string{{"bearer": {}}},
	}
}

// get declares a GET operation open to anyone.
func get(id, path, summary string, tags ...string) huma.Operation {
	return huma.Operation{OperationID: id, Method: http.MethodGet, Path: path, Summary: summary, Tags: tags}
}

// listing declares a GET whose answer reveals S3 keys or local paths: it needs a token of READ_TOKEN or API_TOKEN.
func listing(id, path, summary string, tags ...string) huma.Operation {
	op := get(id, path, summary, tags...)
	op.Security = []map[string][]string{{"read": {}}, {"bearer": {}}}
	op.Errors = []int{http.StatusUnauthorized}
	return op
}

// feature is an optional part of the service: on when its dependencies are wired, else off says what is missing.
type feature struct {
	on  bool
	off string
}

// only serves an operation of f with handle when f is on, else answers 503 saying f is not configured. The request is
// validated (422) either way.
func only[I, O any](f feature, handle func(context.Context, *I) (*O, error)) func(context.Context, *I) (*O, error) {
	if f.on {
		return handle
	}
	return func(context.Context, *I) (*O, error) {
		return nil, huma.Error503ServiceUnavailable(f.off)
	}
}

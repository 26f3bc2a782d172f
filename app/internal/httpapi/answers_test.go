package httpapi_test

// More handler tests with fakes, in a plain `go test`: the handlers' own logic that the tests on the real stack
// (flights_test.go, files_test.go, quarantine_test.go) check along the way — busy hours, the job cap, how a job's or a
// run's failure is answered, indexing, CORS, the documents.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aircraftdata/platform/app/internal/download"
	"github.com/aircraftdata/platform/app/internal/httpapi"
	"github.com/aircraftdata/platform/app/internal/ingest"
	"github.com/aircraftdata/platform/app/internal/jobs"
)

var hour14 = map[string]any{"lane_id": "lane1", "hour": 14, "date": "2024-02-14"}

// An hour another download holds: a synchronous request asks to wait for it, an async one does not; when the claim
// still fails busy, either answers 409 with Retry-After, downloads nothing and holds no job slot. Any other claim
// failure is the store's: 503 naming MongoDB.
func TestBusyHourAnswers409(t *testing.T) {
	f := &fakes{maxJobs: 1, claimErr: fmt.Errorf("hour lane1/2024/02/14/14: %w", download.ErrBusy)}
	url := serveFakes(t, f)
	for _, q := range []string{"", "?async=true"} {
		status, m, hdr := call(t, "POST", url+"/api/v1/download"+q, hour14)
		if status != http.StatusConflict || hdr.Get("Retry-After") != "10" || !isProblem(hdr) ||
			!strings.Contains(fmt.Sprint(m["detail"]), "retry later") {
			t.Errorf("download%s of a busy hour: %d %v %v, want 409 with Retry-After 10", q, status, m, hdr)
		}
	}
	if !slices.Equal(f.waits, []bool{true, false}) || len(f.hours) != 0 {
		t.Errorf("claims waited %v (want synchronous true, async false); downloads %v (want none)", f.waits, f.hours)
	}
	// The only job slot is free: the busy hour took none.
	if status, m, _ := call(t, "POST", url+"/api/v1/files/index?async=true", nil); status != http.StatusAccepted {
		t.Errorf("a job after the busy hour's answers: %d %v, want 202", status, m)
	}
	f.claimErr = errors.New("server selection error: docdb-1.cluster:27017")
	status, m, hdr := call(t, "POST", url+"/api/v1/download", hour14)
	if want := "mongodb unavailable (request id " + hdr.Get("X-Request-Id") + ")"; status != http.StatusServiceUnavailable || m["detail"] != want {
		t.Errorf("claim with the store down: %d %v, want detail %q", status, m, want)
	}
}

// A synchronous download counts against JOBS_MAX_RUNNING: with the only slot taken it answers 429 with Retry-After,
// downloads nothing and lets its claimed hour go, as a refused async download does; once the slot is free it runs.
func TestSyncDownloadTakesAJobSlot(t *testing.T) {
	f := &fakes{maxJobs: 1}
	release := make(chan struct{})
	url := serveWith(t, f, &blockingDownloads{fakes: f, release: release})
	if status, m, _ := call(t, "POST", url+"/api/v1/download?async=true", hour14); status != http.StatusAccepted {
		t.Fatalf("the job that takes the slot: %d %v", status, m)
	}
	for _, q := range []string{"", "?async=true"} {
		status, m, hdr := call(t, "POST", url+"/api/v1/download"+q, map[string]any{"lane_id": "l", "hour": 2, "date": "2024-02-14"})
		if status != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" || !isProblem(hdr) {
			t.Errorf("download%s with the only slot taken: %d %v %v, want 429 with Retry-After", q, status, m, hdr)
		}
	}
	f.mu.Lock()
	releases, downloads := f.hourReleases, len(f.hours)
	f.mu.Unlock()
	if releases != 2 || downloads != 0 {
		t.Errorf("refused downloads let %d hours go and downloaded %d, want 2 and 0", releases, downloads)
	}
	close(release)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		status, _, _ := call(t, "POST", url+"/api/v1/download", hour14)
		if status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("synchronous download once the slot is free: %d", status)
		}
	}
}

// stubJobs is a Jobs whose every call fails with what the test set (Run runs its function when runErr is nil).
type stubJobs struct{ startErr, runErr, getErr error }

func (s stubJobs) Start(string, string, jobs.Func) (jobs.View, error) { return jobs.View{}, s.startErr }

func (s stubJobs) Run(ctx context.Context, fn func(context.Context) error) error {
	if s.runErr != nil {
		return s.runErr
	}
	return fn(ctx)
}

func (s stubJobs) Get(context.Context, string) (jobs.View, bool, error) {
	return jobs.View{}, false, s.getErr
}

// What the jobs answer maps to a response: shutting down is 503 saying so, a full cap is 429, the jobs' store failing
// is 503 naming PostgreSQL (no driver text); a run that does not start gives back what it took.
func TestJobFailuresAnswered(t *testing.T) {
	dbDown := errors.New("dial tcp 10.0.3.7:5432: connection refused")
	cases := []struct {
		name         string
		jobs         stubJobs
		method, path string
		body         any
		status       int
		detail       string // the detail, %s the request id
	}{
		{"async download, stopped", stubJobs{startErr: jobs.ErrStopped}, "POST", "/api/v1/download?async=true", hour14,
			503, "not starting jobs: the service is shutting down"},
		{"async ingest, stopped", stubJobs{startErr: jobs.ErrStopped}, "POST", "/process-s3-data?async=true", nil,
			503, "not starting jobs: the service is shutting down"},
		{"async index, store down", stubJobs{startErr: dbDown}, "POST", "/api/v1/files/index?async=true", nil,
			503, "postgres unavailable (request id %s)"},
		{"sync download, stopped", stubJobs{runErr: jobs.ErrStopped}, "POST", "/api/v1/download", hour14,
			503, "not starting downloads: the service is shutting down"},
		{"sync download, full", stubJobs{runErr: jobs.ErrFull}, "POST", "/api/v1/download", hour14,
			429, "too many downloads and background jobs are running; retry later"},
		{"job lookup, store down", stubJobs{getErr: dbDown}, "GET", "/api/v1/jobs/0123456789abcdef01234567", nil,
			503, "postgres unavailable (request id %s)"},
	}
	for _, c := range cases {
		f := &fakes{}
		url := serveLimited(t, f, httpapi.Deps{Jobs: c.jobs})
		status, m, hdr := call(t, c.method, url+c.path, c.body)
		want := c.detail
		if strings.Contains(want, "%s") {
			want = fmt.Sprintf(want, hdr.Get("X-Request-Id"))
		}
		if status != c.status || m["detail"] != want || !isProblem(hdr) {
			t.Errorf("%s: %d %v, want %d %q", c.name, status, m, c.status, want)
		}
		// What was taken and not run is given back: the ingestion's lock, a download's hour.
		if want := strings.Count(c.path, "process-s3-data"); f.released != want {
			t.Errorf("%s: the ingestion lock was released %d times, want %d", c.name, f.released, want)
		}
		if want := strings.Count(c.path, "download"); f.hourReleases != want {
			t.Errorf("%s: the hour was let go %d times, want %d", c.name, f.hourReleases, want)
		}
		if len(f.hours)+len(f.prefixes) != 0 {
			t.Errorf("%s: ran %v %v, want nothing", c.name, f.hours, f.prefixes)
		}
	}
}

// The ingestion's query reaches the run (retry_failed, prefix); Prefer: respond-async starts a job like async=true; a
// run that meets a dependency down answers 503 naming it, without the driver's text.
func TestIngestRequestAndDependencies(t *testing.T) {
	f := &fakes{}
	url := serveFakes(t, f)
	if status, m, _ := call(t, "POST", url+"/process-s3-data?prefix=raw/&retry_failed=true", nil); status != http.StatusOK {
		t.Fatalf("ingest: %d %v", status, m)
	}
	if want := (ingest.Request{Prefix: "raw/", RetryFailed: true}); len(f.requests) != 1 || f.requests[0] != want {
		t.Errorf("runs asked %+v, want %+v", f.requests, want)
	}

	req, _ := http.NewRequest("POST", url+"/process-s3-data", nil)
	req.Header.Set("Authorization", "Bearer "+filesToken)
	req.Header.Set("Prefer", "wait=10, Respond-Async")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || !strings.HasPrefix(resp.Header.Get("Location"), "/api/v1/jobs/") {
		t.Errorf("Prefer: respond-async: %d %v, want 202 with a job", resp.StatusCode, resp.Header)
	} else if job := pollJob(t, url+resp.Header.Get("Location")); job["state"] != "succeeded" {
		t.Errorf("job: %v", job)
	}

	for _, dep := range []string{"s3", "postgres"} {
		f.ingestErr = &ingest.UnavailableError{Dependency: dep, Err: errors.New("dial tcp 127.0.0.1:7070: connect: connection refused")}
		status, m, hdr := call(t, "POST", url+"/process-s3-data", nil)
		if want := dep + " unavailable (request id " + hdr.Get("X-Request-Id") + ")"; status != http.StatusServiceUnavailable || m["detail"] != want {
			t.Errorf("%s down: %d %v, want detail %q", dep, status, m, want)
		}
	}
}

// Indexing takes its prefix from an optional body, runs now or as a job, and answers 503 naming the index when it
// fails.
func TestIndexAnswers(t *testing.T) {
	f := &fakes{}
	url := serveFakes(t, f)
	if status, m, _ := call(t, "POST", url+"/api/v1/files/index", map[string]any{"prefix": "lanes/"}); status != http.StatusOK || m["prefix"] != "lanes/" {
		t.Errorf("index lanes/: %d %v", status, m)
	}
	if status, m, _ := call(t, "POST", url+"/api/v1/files/index", nil); status != http.StatusOK || m["prefix"] != "" {
		t.Errorf("index without a body: %d %v, want the whole bucket", status, m)
	}
	status, job, hdr := call(t, "POST", url+"/api/v1/files/index?async=true", map[string]any{"prefix": "p/"})
	if status != http.StatusAccepted || job["kind"] != "index" {
		t.Fatalf("async index: %d %v", status, job)
	}
	if job = pollJob(t, url+hdr.Get("Location")); job["state"] != "succeeded" || job["result"].(map[string]any)["prefix"] != "p/" {
		t.Errorf("index job: %v", job)
	}
	f.storeErr = errors.New("AccessDenied: arn:aws:s3:::source-bucket")
	status, m, hdr := call(t, "POST", url+"/api/v1/files/index", nil)
	if want := "index unavailable (request id " + hdr.Get("X-Request-Id") + ")"; status != http.StatusServiceUnavailable || m["detail"] != want {
		t.Errorf("index failing: %d %v, want detail %q", status, m, want)
	}
}

// A preflight from a configured origin is allowed; from another, not.
func TestCORSPreflight(t *testing.T) {
	url := serveLimited(t, &fakes{}, httpapi.Deps{CORS: []string{"https://console.example"}})
	for origin, allowed := range map[string]bool{"https://console.example": true, "https://elsewhere.example": false} {
		req, _ := http.NewRequest("OPTIONS", url+"/api/v1/download", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization,content-type")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Access-Control-Allow-Origin") == origin; got != allowed {
			t.Errorf("preflight from %s: %d %v, want allowed %v", origin, resp.StatusCode, resp.Header, allowed)
		}
	}
}

// The OpenAPI document declares every operation of the README's API table, and nothing else; the docs pages and their
// assets are served.
func TestDocsListEveryOperation(t *testing.T) {
	url := serveFakes(t, &fakes{})
	want := []string{
		"POST /process-s3-data", "GET /aircraft-stats/{icao}", "GET /api/v1/aircraft", "GET /api/v1/ingestion/failed",
		"POST /api/v1/download", "POST /api/v1/files", "POST /api/v1/files/index", "GET /api/v1/files",
		"GET /api/v1/jobs/{id}", "GET /api/v1/health", "GET /api/v1/ready",
		"POST /api/v1/backfills", "GET /api/v1/backfills/{id}", "DELETE /api/v1/backfills/{id}",
	}
	resp, err := http.Get(url + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Fatalf("openapi.json: %v %q", err, doc.OpenAPI)
	}
	var got []string
	for path, ops := range doc.Paths {
		for method := range ops {
			got = append(got, strings.ToUpper(method)+" "+path)
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("operations %v, want %v", got, want)
	}
	for path, marker := range map[string]string{
		"/docs":                             "swagger-ui-bundle.js",
		"/docs/assets/swagger-ui-bundle.js": "SwaggerUIBundle",
		"/docs/assets/swagger-ui.css":       ".swagger-ui",
		"/redoc":                            "redoc.standalone.js",
		"/redoc/redoc.standalone.js":        "Redoc",
		"/openapi.yaml":                     "openapi: 3.1",
		"/openapi-3.0.json":                 `"openapi":"3.0`,
	} {
		resp, err := http.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), marker) {
			t.Errorf("%s: %d, %d bytes, no %q", path, resp.StatusCode, len(body), marker)
		}
	}
}

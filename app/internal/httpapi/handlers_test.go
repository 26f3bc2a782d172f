package httpapi_test

// Handler tests with fakes: request parsing, validation, auth, status codes and the mapping of the dependencies'
// answers to responses. They need no stack (plain `go test`); flights_test.go and files_test.go run the same handlers
// on the real stack.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aircraftdata/platform/app/internal/download"
	"github.com/aircraftdata/platform/app/internal/flight"
	"github.com/aircraftdata/platform/app/internal/httpapi"
	"github.com/aircraftdata/platform/app/internal/ingest"
	"github.com/aircraftdata/platform/app/internal/jobs"
	"github.com/aircraftdata/platform/app/internal/lanes"
	"github.com/aircraftdata/platform/app/internal/ledger"
	"github.com/aircraftdata/platform/app/internal/progress"
	"github.com/aircraftdata/platform/app/internal/ready"
)

// fakes records what the handlers asked of each dependency and answers what the test set.
type fakes struct {
	mu sync.Mutex

	// statistics
	stats     map[string]*flight.Stats
	aircraft  []flight.Aircraft // sorted by icao
	statsErr  error
	asked     []string // icao or "after/limit" per call
	beginErr  error
	ingestErr error
	prefixes  []string
	requests  []ingest.Request
	released  int

	maxJobs  int  // running jobs at once; zero: 8
	stall    bool // Stats waits for the request's end
	panicked bool // Download panics

	// lane files
	claimErr     error
	waits        []bool // Claim's wait, per call
	hourReleases int    // claimed hours let go
	hours        []lanes.Hour
	queries      []lanes.Query
	registered   []lanes.Record
	storeErr     error
}

func (f *fakes) note(s string) { f.mu.Lock(); f.asked = append(f.asked, s); f.mu.Unlock() }

func (f *fakes) Stats(ctx context.Context, icao string) (*flight.Stats, error) {
	f.note(icao)
	if f.stall {
		<-ctx.Done()
		return nil, fmt.Errorf("read tcp 10.0.3.7:5432: %w", ctx.Err())
	}
	if f.statsErr != nil {
		return nil, f.statsErr
	}
	s, ok := f.stats[icao]
	if !ok {
		return nil, flight.ErrNotFound
	}
	return s, nil
}

func (f *fakes) Aircraft(_ context.Context, after string, limit int) ([]flight.Aircraft, error) {
	f.note(fmt.Sprintf("%s/%d", after, limit))
	if f.statsErr != nil {
		return nil, f.statsErr
	}
	i, _ := slices.BinarySearchFunc(f.aircraft, after, func(a flight.Aircraft, s string) int { return strings.Compare(a.ICAO, s) })
	if i < len(f.aircraft) && f.aircraft[i].ICAO == after {
		i++
	}
	return f.aircraft[i:min(i+limit, len(f.aircraft))], nil
}

func (f *fakes) Begin(context.Context, string) (httpapi.IngestRun, error) {
	if f.beginErr != nil {
		return nil, f.beginErr
	}
	return f, nil
}

func (f *fakes) Release() { f.mu.Lock(); f.released++; f.mu.Unlock() }

func (f *fakes) FailedFiles(_ context.Context, after string, limit int) ([]ledger.FailedFile, error) {
	f.note(fmt.Sprintf("failed %s/%d", after, limit))
	if f.statsErr != nil {
		return nil, f.statsErr
	}
	var out []ledger.FailedFile
	for _, k := range []string{"a", "b", "c"} {
		if k > after && len(out) < limit {
			out = append(out, ledger.FailedFile{Key: k, Reason: "bad " + k})
		}
	}
	return out, nil
}

func (f *fakes) Ingest(_ context.Context, req ingest.Request, p *progress.Counter) (*ingest.Result, error) {
	prefix := req.Prefix
	f.mu.Lock()
	f.prefixes = append(f.prefixes, prefix)
	f.requests = append(f.requests, req)
	f.mu.Unlock()
	if f.ingestErr != nil {
		return nil, f.ingestErr
	}
	return &ingest.Result{Prefix: prefix, FilesSeen: 7, FilesIngested: 5}, nil
}

func (f *fakes) Claim(_ context.Context, h lanes.Hour, wait bool) (httpapi.HourDownload, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.waits = append(f.waits, wait)
	if f.claimErr != nil {
		return nil, f.claimErr
	}
	return claimed{f, h, f}, nil
}

// claimed is a fake's hour, claimed at once; f counts its releases.
type claimed struct {
	dl interface {
		Download(context.Context, lanes.Hour, *progress.Counter) (*download.HourResult, error)
	}
	h lanes.Hour
	f *fakes
}

func (c claimed) Download(ctx context.Context, p *progress.Counter) (*download.HourResult, error) {
	return c.dl.Download(ctx, c.h, p)
}

func (c claimed) Release() { c.f.mu.Lock(); c.f.hourReleases++; c.f.mu.Unlock() }

func (f *fakes) Download(_ context.Context, h lanes.Hour, _ *progress.Counter) (*download.HourResult, error) {
	f.mu.Lock()
	f.hours = append(f.hours, h)
	f.mu.Unlock()
	if f.panicked {
		panic("injected: a bug in a download worker")
	}
	if f.storeErr != nil {
		return nil, f.storeErr
	}
	return &download.HourResult{Successful: []download.File{}, Failed: []string{}, Failures: []download.Failure{}}, nil
}

func (f *fakes) Index(_ context.Context, prefix string, _ *progress.Counter) (*download.IndexResult, error) {
	return &download.IndexResult{Prefix: prefix}, f.storeErr
}

func (f *fakes) Register(_ context.Context, rs []lanes.Record, _ time.Time) (lanes.RegisterResult, error) {
	f.mu.Lock()
	f.registered = append(f.registered, rs...)
	f.mu.Unlock()
	return lanes.RegisterResult{Added: len(rs)}, f.storeErr
}

func (f *fakes) List(_ context.Context, q lanes.Query) ([]lanes.Record, error) {
	f.mu.Lock()
	f.queries = append(f.queries, q)
	f.mu.Unlock()
	if f.storeErr != nil {
		return nil, f.storeErr
	}
	var out []lanes.Record
	for i := range q.Limit {
		out = append(out, lanes.Record{Key: fmt.Sprintf("%s%03d", q.After, i), LaneID: "lane1"})
	}
	return out, nil
}

// refreshed is a ready.Checker of checks, checked once.
func refreshed(t *testing.T, checks ...ready.Check) *ready.Checker {
	r := ready.New(slog.New(slog.DiscardHandler), time.Hour, checks...)
	r.Refresh(t.Context())
	return r
}

// serveFakes serves the handlers on f; the dependency checks of readiness are ready.
func serveFakes(t *testing.T, f *fakes, checks ...ready.Check) string {
	t.Helper()
	reg := jobs.NewRegistry(slog.New(slog.DiscardHandler), jobs.Limits{MaxRunning: cmp.Or(f.maxJobs, 8), KeepFinished: 100, KeepFor: time.Hour})
	t.Cleanup(func() { reg.Stop(errors.New("test over")) })
	srv := httptest.NewServer(httpapi.NewServer(httpapi.Deps{
		Log: slog.New(slog.DiscardHandler), Version: "test", APITokens: []string{"old-token", filesToken},
		Stats: f, Ingest: f, Jobs: reg, Ready: refreshed(t, checks...),
		Lanes: &httpapi.Lanes{Store: f, Downloader: f, Indexer: f},
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func isProblem(hdr http.Header) bool {
	return strings.HasPrefix(hdr.Get("Content-Type"), "application/problem+json")
}

func TestAuthOnEveryPost(t *testing.T) {
	url := serveFakes(t, &fakes{})
	for _, path := range []string{"/process-s3-data", "/api/v1/download", "/api/v1/files", "/api/v1/files/index"} {
		status, _, hdr := call(t, "POST", url+path, `{}`, true)
		if status != http.StatusUnauthorized || hdr.Get("WWW-Authenticate") == "" || !isProblem(hdr) {
			t.Errorf("POST %s without token: %d %v", path, status, hdr)
		}
		req, _ := http.NewRequest("POST", url+path, strings.NewReader(`{}`))
		req.Header.Set("Authorization", "Bearer wrong")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("POST %s with a wrong token: %d", path, resp.StatusCode)
		}
	}
	// Reads stay open.
	if status, _, _ := call(t, "GET", url+"/api/v1/aircraft", nil, true); status != http.StatusOK {
		t.Errorf("GET without token: %d", status)
	}
}

func TestFailedFilesPages(t *testing.T) {
	f := &fakes{}
	url := serveFakes(t, f)
	status, m, _ := call(t, "GET", url+"/api/v1/ingestion/failed?limit=2", nil)
	if items, _ := m["items"].([]any); status != http.StatusOK || len(items) != 2 || m["next"] != "b" {
		t.Fatalf("first page: %d %v", status, m)
	}
	status, m, _ = call(t, "GET", url+"/api/v1/ingestion/failed?limit=2&after=b", nil)
	if items, _ := m["items"].([]any); status != http.StatusOK || len(items) != 1 || m["next"] != nil {
		t.Fatalf("last page: %d %v", status, m)
	}
	if status, _, _ := call(t, "GET", url+"/api/v1/ingestion/failed?limit=0", nil); status != http.StatusUnprocessableEntity {
		t.Errorf("limit=0: %d", status)
	}
	f.statsErr = &ingest.UnavailableError{Dependency: "postgres", Err: errors.New("dial tcp 10.0.0.1:5432")}
	if status, m, _ := call(t, "GET", url+"/api/v1/ingestion/failed", nil); status != http.StatusServiceUnavailable || strings.Contains(fmt.Sprint(m), "10.0.0.1") {
		t.Errorf("postgres down: %d %v", status, m)
	}
}

func TestIngestAnswers(t *testing.T) {
	f := &fakes{}
	url := serveFakes(t, f)
	status, m, _ := call(t, "POST", url+"/process-s3-data?prefix=raw/day=1/", nil)
	if status != http.StatusOK || m["files_ingested"] != 5.0 || m["prefix"] != "raw/day=1/" {
		t.Errorf("ingest: %d %v", status, m)
	}

	// Busy: 409, and the run never starts.
	f.beginErr = ingest.ErrBusy
	status, m, hdr := call(t, "POST", url+"/process-s3-data", nil)
	if status != http.StatusConflict || !isProblem(hdr) {
		t.Errorf("busy: %d %v", status, m)
	}
	// The lock cannot be taken (database down): 503 naming the database and the request, nothing of the driver's error.
	f.beginErr = &ingest.UnavailableError{Dependency: "postgres", Err: errors.New("dial tcp 10.0.0.1:5432: connection refused")}
	status, m, hdr = call(t, "POST", url+"/process-s3-data", nil)
	if want := "postgres unavailable (request id " + hdr.Get("X-Request-Id") + ")"; status != http.StatusServiceUnavailable || m["detail"] != want {
		t.Errorf("database down: %d %v, want detail %q", status, m, want)
	}
	f.beginErr = nil
	if len(f.prefixes) != 1 {
		t.Errorf("runs started: %v, want only the first", f.prefixes)
	}

	// Async: 202 with the job, which ends with the run's result.
	status, job, hdr := call(t, "POST", url+"/process-s3-data?async=true&prefix=p/", nil)
	if status != http.StatusAccepted || hdr.Get("Location") != "/api/v1/jobs/"+fmt.Sprint(job["id"]) || job["kind"] != "ingest" {
		t.Fatalf("async: %d %v %v", status, job, hdr)
	}
	job = pollJob(t, url+hdr.Get("Location"))
	if job["state"] != "succeeded" || job["result"].(map[string]any)["prefix"] != "p/" {
		t.Errorf("job: %v", job)
	}
	// A failing run fails its job as it fails a synchronous request: what failed and the request id, not the error's
	// own words (logged).
	f.ingestErr = errors.New("the bucket went away")
	if status, m, _ = call(t, "POST", url+"/process-s3-data", nil); status != http.StatusServiceUnavailable {
		t.Errorf("failing run: %d %v", status, m)
	}
	_, _, hdr = call(t, "POST", url+"/process-s3-data?async=true", nil)
	want := "ingestion unavailable (request id " + hdr.Get("X-Request-Id") + ")"
	if job = pollJob(t, url+hdr.Get("Location")); job["state"] != "failed" || job["error"] != want {
		t.Errorf("failed job: %v, want the error %q", job, want)
	}
	if status, _, _ := call(t, "GET", url+"/api/v1/jobs/000000000000000000000000", nil); status != http.StatusNotFound {
		t.Errorf("unknown job: %d", status)
	}
	if status, _, _ := call(t, "GET", url+"/api/v1/jobs/nothex", nil); status != http.StatusUnprocessableEntity {
		t.Errorf("malformed job id: %d", status)
	}
}

func pollJob(t *testing.T, url string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, job, _ := call(t, "GET", url, nil)
		if job["state"] != "running" || time.Now().After(deadline) {
			return job
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestStatsAnswers(t *testing.T) {
	f := &fakes{stats: map[string]*flight.Stats{"abc123": {ICAO: "abc123", Observations: 3}, "~abc12f": {ICAO: "~abc12f"}}}
	url := serveFakes(t, f)
	for _, bad := range []string{"xyz", "abcdefg", "abcde", "~abcd", "12345z", "a6580%20"} {
		status, m, hdr := call(t, "GET", url+"/aircraft-stats/"+bad, nil)
		if status != http.StatusUnprocessableEntity || !strings.Contains(fmt.Sprint(m), "icao") || !isProblem(hdr) {
			t.Errorf("%q: %d %v", bad, status, m)
		}
	}
	if len(f.asked) != 0 {
		t.Errorf("malformed addresses reached the store: %v", f.asked)
	}
	for _, in := range []string{"ABC123", "abc123", "~ABC12F"} {
		status, m, _ := call(t, "GET", url+"/aircraft-stats/"+in, nil)
		if status != http.StatusOK || m["icao"] != strings.ToLower(in) {
			t.Errorf("%s: %d %v", in, status, m)
		}
	}
	if status, _, hdr := call(t, "GET", url+"/aircraft-stats/abc124", nil); status != http.StatusNotFound || !isProblem(hdr) {
		t.Errorf("unknown icao: %d", status)
	}
	f.statsErr = errors.New("FATAL: password authentication failed for user \"aircraft\"")
	status, m, hdr := call(t, "GET", url+"/aircraft-stats/abc123", nil)
	if want := "postgres unavailable (request id " + hdr.Get("X-Request-Id") + ")"; status != http.StatusServiceUnavailable || m["detail"] != want {
		t.Errorf("store down: %d %v, want detail %q", status, m, want)
	}
	if status, _, _ := call(t, "GET", url+"/no/such/path", nil); status != http.StatusNotFound {
		t.Errorf("unknown path: %d", status)
	}
}

func TestAircraftPages(t *testing.T) {
	f := &fakes{}
	for i := range 25 {
		f.aircraft = append(f.aircraft, flight.Aircraft{ICAO: fmt.Sprintf("a%05x", i*7)})
	}
	url := serveFakes(t, f)
	var got []string
	after := ""
	for pages := 0; ; pages++ {
		status, m, _ := call(t, "GET", fmt.Sprintf("%s/api/v1/aircraft?limit=10&after=%s", url, strings.ToUpper(after)), nil)
		if status != http.StatusOK || pages > 3 {
			t.Fatalf("page %d: %d %v", pages, status, m)
		}
		for _, it := range m["items"].([]any) {
			got = append(got, it.(map[string]any)["icao"].(string))
		}
		if m["next"] == nil {
			break
		}
		after = m["next"].(string)
	}
	var want []string
	for _, a := range f.aircraft {
		want = append(want, a.ICAO)
	}
	if !slices.Equal(got, want) {
		t.Errorf("pages gave %v, want %v", got, want)
	}
	// One more than the page is asked for (to know whether there is a next page), after the lower-cased address.
	if f.asked[0] != "/11" || f.asked[1] != want[9]+"/11" {
		t.Errorf("store asked %v", f.asked)
	}
	for _, q := range []string{"limit=0", "limit=1001", "after=xyz"} {
		if status, _, _ := call(t, "GET", url+"/api/v1/aircraft?"+q, nil); status != http.StatusUnprocessableEntity {
			t.Errorf("%s: %d", q, status)
		}
	}
}

func TestDownloadValidation(t *testing.T) {
	f := &fakes{}
	url := serveFakes(t, f)
	cases := []struct {
		body string
		want []string // locations named
	}{
		{`{"lane_id": "../x", "hour": 14, "date": "2024-02-14"}`, []string{"body.lane_id"}},
		{`{"lane_id": "", "hour": 14, "date": "2024-02-14"}`, []string{"body.lane_id"}},
		{`{"lane_id": "` + strings.Repeat("a", 65) + `", "hour": 14, "date": "2024-02-14"}`, []string{"body.lane_id"}},
		{`{"lane_id": "lane1", "hour": 24, "date": "2024-02-14"}`, []string{"body.hour"}},
		{`{"lane_id": "lane1", "hour": -1, "date": "2024-02-14"}`, []string{"body.hour"}},
		{`{"lane_id": "lane1", "hour": 1.5, "date": "2024-02-14"}`, []string{"body.hour"}},
		{`{"lane_id": "lane1", "date": "2024-02-14"}`, []string{"body.hour"}},
		{`{"lane_id": "lane1", "hour": 14, "date": "2024-02-30"}`, []string{"body.date"}},
		{`{"lane_id": "lane1", "hour": 14, "date": "yesterday"}`, []string{"body.date"}},
		{`{"lane_id": "lane1", "hour": 14}`, []string{"body.date"}},
		{`{"lane_id": "a/b", "hour": 99, "date": "x"}`, []string{"body.lane_id", "body.hour", "body.date"}},
	}
	for _, c := range cases {
		status, m, _ := call(t, "POST", url+"/api/v1/download", c.body)
		got := errorLocations(m)
		if status != http.StatusUnprocessableEntity {
			t.Errorf("%s: status %d, want 422 (%v)", c.body, status, m)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(strings.Join(got, " "), w) {
				t.Errorf("%s: errors name %v, want %s", c.body, got, w)
			}
		}
	}
	if len(f.hours) != 0 {
		t.Fatalf("invalid requests reached the downloader: %v", f.hours)
	}
	// Both date forms select the same hour, in UTC.
	for _, date := range []string{"2024-02-14", "2024-02-14T00:00:00Z", "2024-02-14T23:30:00+05:00"} {
		status, m, _ := call(t, "POST", url+"/api/v1/download", map[string]any{"lane_id": "lane1", "hour": 14, "date": date})
		if status != http.StatusOK || m["total_files"] != 0.0 || m["successful"] == nil || m["failed"] == nil {
			t.Errorf("date %s: %d %v", date, status, m)
		}
	}
	want := time.Date(2024, 2, 14, 14, 0, 0, 0, time.UTC)
	for _, h := range f.hours {
		if h.LaneID != "lane1" || !h.Start.Equal(want) {
			t.Errorf("downloader asked for %+v, want lane1 at %v", h, want)
		}
	}
	// A store that fails: 503 naming it.
	f.storeErr = errors.New("server selection error: docdb-1.cluster:27017")
	status, m, hdr := call(t, "POST", url+"/api/v1/download", map[string]any{"lane_id": "lane1", "hour": 14, "date": "2024-02-14"})
	if status != http.StatusServiceUnavailable || !isProblem(hdr) || m["detail"] != "mongodb unavailable (request id "+hdr.Get("X-Request-Id")+")" {
		t.Errorf("store down: %d %v", status, m)
	}
}

func TestFileListAndRegister(t *testing.T) {
	f := &fakes{}
	url := serveFakes(t, f)
	for q, loc := range map[string]string{"hour=3": "query.hour", "date=2024-02-31": "query.date", "status=lost": "query.status",
		"lane_id=a.b": "query.lane_id", "date=2024-02-14&hour=25": "query.hour", "limit=0": "query.limit"} {
		status, m, _ := call(t, "GET", url+"/api/v1/files?"+q, nil)
		if status != http.StatusUnprocessableEntity || !strings.Contains(strings.Join(errorLocations(m), " "), loc) {
			t.Errorf("GET /api/v1/files?%s: %d %v, want 422 naming %s", q, status, errorLocations(m), loc)
		}
	}
	if len(f.queries) != 0 {
		t.Fatalf("invalid listings reached the store: %v", f.queries)
	}
	status, m, _ := call(t, "GET", url+"/api/v1/files?lane_id=lane1&date=2024-02-14&hour=9&status=failed&limit=3&after=k", nil)
	items, _ := m["items"].([]any)
	if status != http.StatusOK || len(items) != 3 || m["next"] != "k002" {
		t.Errorf("list: %d %v", status, m)
	}
	day := time.Date(2024, 2, 14, 0, 0, 0, 0, time.UTC)
	want := lanes.Query{LaneID: "lane1", From: day.Add(9 * time.Hour), To: day.Add(10 * time.Hour), Status: lanes.Failed, After: "k", Limit: 4}
	if got := f.queries[0]; got != want {
		t.Errorf("store asked %+v, want %+v", got, want)
	}
	call(t, "GET", url+"/api/v1/files?date=2024-02-14", nil)
	if got := f.queries[1]; !got.From.Equal(day) || !got.To.Equal(day.Add(24*time.Hour)) || got.Limit != 1001 {
		t.Errorf("a day: store asked %+v", got)
	}

	status, m, _ = call(t, "POST", url+"/api/v1/files", map[string]any{"records": []any{
		map[string]any{"s3_key": "k1", "lane_id": "l", "timestamp": "2024-02-14T15:30:00+01:00", "size": 10, "etag": "e"},
		map[string]any{"s3_key": "k2", "lane_id": "l", "timestamp": "2024-02-14T15:30:00Z"},
	}})
	if status != http.StatusOK || m["added"] != 2.0 {
		t.Fatalf("register: %d %v", status, m)
	}
	r1, r2 := f.registered[0], f.registered[1]
	if r1.Size != 10 || r1.ETag != "e" || !r1.Timestamp.Equal(day.Add(14*time.Hour+30*time.Minute)) || r1.Timestamp.Location() != time.UTC || r2.Size != -1 {
		t.Errorf("registered %+v and %+v: want UTC timestamps and size -1 when unknown", r1, r2)
	}
	for _, bad := range []map[string]any{
		{"records": []any{}},
		{"records": []any{map[string]any{"s3_key": "", "lane_id": "l", "timestamp": "2024-02-14T15:30:00Z"}}},
		{"records": []any{map[string]any{"s3_key": "k", "lane_id": "l/..", "timestamp": "2024-02-14T15:30:00Z"}}},
		{"records": []any{map[string]any{"s3_key": "k", "lane_id": "l", "timestamp": "soon"}}},
		{"records": []any{map[string]any{"s3_key": "k", "lane_id": "l", "timestamp": "2024-02-14T15:30:00Z", "size": -1}}},
	} {
		if status, m, _ := call(t, "POST", url+"/api/v1/files", bad); status != http.StatusUnprocessableEntity {
			t.Errorf("register %v: %d %v", bad, status, m)
		}
	}
	if len(f.registered) != 2 {
		t.Errorf("invalid registrations reached the store: %v", f.registered[2:])
	}
}

func TestReadyAnswers(t *testing.T) {
	down := errors.New("dial tcp 10.0.3.7:5432: connect: connection refused")
	url := serveFakes(t, &fakes{},
		ready.Check{Name: "postgres", Check: func(context.Context) error { return down }},
		ready.Check{Name: "s3", Check: func(context.Context) error { return nil }})
	status, m, _ := call(t, "GET", url+"/api/v1/ready", nil)
	checks, _ := m["checks"].(map[string]any)
	if status != http.StatusServiceUnavailable || m["status"] != "unavailable" || checks["s3"] != "ok" || checks["postgres"] != "unavailable" {
		t.Errorf("ready with postgres down: %d %v", status, m)
	}
	url = serveFakes(t, &fakes{}, ready.Check{Name: "s3", Check: func(context.Context) error { return nil }})
	if status, m, _ := call(t, "GET", url+"/api/v1/ready", nil); status != http.StatusOK || m["status"] != "ready" {
		t.Errorf("ready: %d %v", status, m)
	}
	if status, m, _ := call(t, "GET", url+"/api/v1/health", nil); status != http.StatusOK || m["status"] != "ok" || m["version"] != "test" {
		t.Errorf("health: %d %v", status, m)
	}
}

func TestJobsCappedWith429(t *testing.T) {
	f := &fakes{maxJobs: 1}
	release := make(chan struct{})
	defer close(release)
	// One long job holds the only slot: a download that waits.
	url := serveWith(t, f, &blockingDownloads{fakes: f, release: release})
	status, _, _ := call(t, "POST", url+"/api/v1/download?async=true", map[string]any{"lane_id": "l", "hour": 1, "date": "2024-02-14"})
	if status != http.StatusAccepted {
		t.Fatalf("first job: %d", status)
	}
	status, m, hdr := call(t, "POST", url+"/api/v1/download?async=true", map[string]any{"lane_id": "l", "hour": 2, "date": "2024-02-14"})
	if status != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" || !isProblem(hdr) {
		t.Errorf("second job: %d %v %v", status, m, hdr)
	}
	// An async ingest refused for the same reason gives its lock back.
	status, _, _ = call(t, "POST", url+"/process-s3-data?async=true", nil)
	if status != http.StatusTooManyRequests || f.released != 1 || len(f.prefixes) != 0 {
		t.Errorf("ingest over the cap: %d, lock released %d times, runs %v", status, f.released, f.prefixes)
	}
	// Synchronous calls are not jobs: they still run.
	if status, _, _ := call(t, "POST", url+"/process-s3-data", nil); status != http.StatusOK {
		t.Errorf("synchronous ingest while jobs are capped: %d", status)
	}
}

// blockingDownloads is a downloader whose downloads wait for release.
type blockingDownloads struct {
	*fakes
	release chan struct{}
}

func (b *blockingDownloads) Claim(_ context.Context, h lanes.Hour, _ bool) (httpapi.HourDownload, error) {
	return claimed{b, h, b.fakes}, nil
}

func (b *blockingDownloads) Download(ctx context.Context, h lanes.Hour, p *progress.Counter) (*download.HourResult, error) {
	<-b.release
	return b.fakes.Download(ctx, h, p)
}

func serveWith(t *testing.T, f *fakes, dl httpapi.Downloader) string {
	t.Helper()
	reg := jobs.NewRegistry(slog.New(slog.DiscardHandler), jobs.Limits{MaxRunning: cmp.Or(f.maxJobs, 8), KeepFinished: 100, KeepFor: time.Hour})
	t.Cleanup(func() { reg.Stop(errors.New("test over")) })
	srv := httptest.NewServer(httpapi.NewServer(httpapi.Deps{
		Log: slog.New(slog.DiscardHandler), Version: "test", APITokens: []string{filesToken},
		Stats: f, Ingest: f, Jobs: reg, Lanes: &httpapi.Lanes{Store: f, Downloader: dl, Indexer: f},
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestJobResultsAreBounded(t *testing.T) {
	f := &fakes{}
	url := serveWith(t, f, manyFiles{f})
	_, _, hdr := call(t, "POST", url+"/api/v1/download?async=true", map[string]any{"lane_id": "l", "hour": 1, "date": "2024-02-14"})
	job := pollJob(t, url+hdr.Get("Location"))
	if job["state"] != "succeeded" {
		t.Fatalf("job: %v", job)
	}
	res := job["result"].(map[string]any)
	if len(res["successful"].([]any)) != 100 || len(res["failed"].([]any)) != 100 || len(res["failures"].([]any)) != 100 ||
		res["total_files"] != 5000.0 || res["success_count"] != 2500.0 || res["failure_count"] != 2500.0 || res["truncated"] != true {
		t.Errorf("job result: lists of %d/%d/%d, counts %v/%v/%v, truncated %v; want lists of 100, whole counts, truncated",
			len(res["successful"].([]any)), len(res["failed"].([]any)), len(res["failures"].([]any)),
			res["total_files"], res["success_count"], res["failure_count"], res["truncated"])
	}
	// The synchronous answer is whole.
	_, res, _ = call(t, "POST", url+"/api/v1/download", map[string]any{"lane_id": "l", "hour": 1, "date": "2024-02-14"})
	if len(res["successful"].([]any)) != 2500 || res["truncated"] != nil {
		t.Errorf("synchronous result: %d successful, truncated %v", len(res["successful"].([]any)), res["truncated"])
	}
}

// manyFiles is a downloader whose hours have 2,500 good and 2,500 bad files.
type manyFiles struct{ *fakes }

func (m manyFiles) Claim(_ context.Context, h lanes.Hour, _ bool) (httpapi.HourDownload, error) {
	return claimed{m, h, m.fakes}, nil
}

func (manyFiles) Download(context.Context, lanes.Hour, *progress.Counter) (*download.HourResult, error) {
	r := &download.HourResult{TotalFiles: 5000, SuccessCount: 2500, FailureCount: 2500}
	for i := range 2500 {
		r.Successful = append(r.Successful, download.File{Record: lanes.Record{Key: fmt.Sprint("ok", i)}})
		r.Failed = append(r.Failed, fmt.Sprint("bad", i))
		r.Failures = append(r.Failures, download.Failure{Key: fmt.Sprint("bad", i), Reason: "checksum"})
	}
	return r, nil
}

func TestPanicInAJobFailsOnlyThatJob(t *testing.T) {
	f := &fakes{panicked: true}
	url := serveFakes(t, f)
	req := map[string]any{"lane_id": "l", "hour": 1, "date": "2024-02-14"}
	_, _, hdr := call(t, "POST", url+"/api/v1/download?async=true", req)
	job := pollJob(t, url+hdr.Get("Location"))
	if want := "internal error (request id " + hdr.Get("X-Request-Id") + ")"; job["state"] != "failed" || job["error"] != want {
		t.Errorf("job: %v, want failed with %q", job, want)
	}
	// In a request, the handler's recovery answers 500 with the id.
	status, m, hdr := call(t, "POST", url+"/api/v1/download", req)
	if status != http.StatusInternalServerError || m["detail"] != "internal error (request id "+hdr.Get("X-Request-Id")+")" {
		t.Errorf("synchronous: %d %v", status, m)
	}
	// The service goes on.
	f.panicked = false
	if status, _, _ := call(t, "POST", url+"/api/v1/download", req); status != http.StatusOK {
		t.Errorf("after the panics: %d", status)
	}
}

func TestEveryTokenOfARotationIsAccepted(t *testing.T) {
	url := serveFakes(t, &fakes{})
	for tok, want := range map[string]int{"old-token": 200, filesToken: 200, "": 401, "old-token," + filesToken: 401, "old": 401} {
		req, _ := http.NewRequest("POST", url+"/process-s3-data", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("token %q: %d, want %d", tok, resp.StatusCode, want)
		}
	}
}

func TestRegisterAcceptsTenThousandRecords(t *testing.T) {
	f := &fakes{}
	url := serveFakes(t, f)
	var recs []any
	for i := range 10000 {
		recs = append(recs, map[string]any{
			"s3_key":  fmt.Sprintf("%s/lane-%04d/2024/02/14/14/%06d.bin", strings.Repeat("p", 980), i%50, i),
			"lane_id": fmt.Sprintf("lane-%04d", i%50), "timestamp": "2024-02-14T14:00:00Z", "size": 1 << 30,
			"etag": "0123456789abcdef0123456789abcdef-99",
		})
	}
	status, m, _ := call(t, "POST", url+"/api/v1/files", map[string]any{"records": recs})
	if status != http.StatusOK || m["added"] != 10000.0 || len(f.registered) != 10000 {
		t.Errorf("10,000 records: %d %v", status, m["detail"])
	}
}

package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/aircraftdata/platform/test/testkit"
)

// Data is what the checks compare the service with: the sample files and the oracle computed from them.
type Data struct {
	Samples *Samples
	Oracle  *Oracle
}

// LoadData reads the samples (testkit.SamplesDir) and computes their oracle.
func LoadData(t testing.TB) Data {
	t.Helper()
	s, err := LoadSamples(testkit.SamplesDir())
	if err != nil {
		t.Fatal(err)
	}
	o, err := NewOracle(s.Good)
	if err != nil {
		t.Fatal(err)
	}
	return Data{Samples: s, Oracle: o}
}

// Check runs every black-box check against tg, as run r: the same for the local stack and for AWS. It passes on a fresh
// stack and on one that earlier runs have used.
func Check(t *testing.T, tg Target, r Run, d Data) {
	t.Logf("%s: checks of run %s against %s", tg.Name, r.ID, tg.BaseURL)
	t.Run("health", func(t *testing.T) { checkHealth(t, tg) })
	t.Run("ready", func(t *testing.T) { checkReady(t, tg) })
	t.Run("docs", func(t *testing.T) { checkDocs(t, tg) })
	t.Run("auth", func(t *testing.T) { checkAuth(t, tg, r) })
	t.Run("validation", func(t *testing.T) { checkValidation(t, tg, d) })
	t.Run("flights", func(t *testing.T) { checkFlights(t, tg, r, d) })
	t.Run("lanes", func(t *testing.T) { checkLanes(t, tg, r, d) })
}

// problem is an RFC 9457 problem as the service writes it.
type problem struct {
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Message  string `json:"message"`
		Location string `json:"location"`
	} `json:"errors"`
}

// expectProblem checks that resp is a problem with status, whose text names every one of mentions.
func expectProblem(t *testing.T, what string, resp Response, status int, mentions ...string) {
	t.Helper()
	if resp.Status != status {
		t.Errorf("%s: %s, want %d", what, resp, status)
		return
	}
	var p problem
	if err := resp.JSON(&p); err != nil || p.Status != status || p.Title == "" {
		t.Errorf("%s: not a problem document with status %d: %s", what, status, resp)
		return
	}
	for _, m := range mentions {
		if !strings.Contains(resp.Body, m) {
			t.Errorf("%s: the problem does not name %q: %s", what, m, resp)
		}
	}
	if strings.Contains(resp.Body, "goroutine ") || strings.Contains(resp.Body, ".go:") {
		t.Errorf("%s: the problem leaks a stack trace: %s", what, resp)
	}
}

func checkHealth(t *testing.T, tg Target) {
	resp := tg.MustCall(t, http.MethodGet, "/api/v1/health", nil, NoAuth)
	var h struct {
		Status  string `json:"status"`
		Version string `json:"version"`
	}
	if resp.Status != http.StatusOK || resp.JSON(&h) != nil || h.Status != "ok" || h.Version == "" {
		t.Errorf("health: %s", resp)
	}
}

func checkReady(t *testing.T, tg Target) {
	resp := tg.MustCall(t, http.MethodGet, "/api/v1/ready", nil, NoAuth)
	var r struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	if resp.Status != http.StatusOK || resp.JSON(&r) != nil || r.Status != "ready" {
		t.Fatalf("ready: %s", resp)
	}
	for _, dep := range []string{"postgres", "s3"} {
		if r.Checks[dep] != "ok" {
			t.Errorf("ready: %s is %q: %s", dep, r.Checks[dep], resp)
		}
	}
	for dep, state := range r.Checks {
		if state != "ok" {
			t.Errorf("ready: %s is %q", dep, state)
		}
	}
	t.Logf("ready: %v", r.Checks)
}

// checkDocs: Swagger UI, ReDoc and the OpenAPI document, all served by the binary itself (no CDN).
func checkDocs(t *testing.T, tg Target) {
	for path, marker := range map[string]string{
		"/docs":                             "swagger-ui-bundle.js",
		"/docs/assets/swagger-ui-bundle.js": "SwaggerUIBundle",
		"/docs/assets/swagger-ui.css":       ".swagger-ui",
		"/redoc":                            "redoc.standalone.js",
		"/redoc/redoc.standalone.js":        "Redoc",
	} {
		resp := tg.MustCall(t, http.MethodGet, path, nil, NoAuth)
		if resp.Status != http.StatusOK || !strings.Contains(resp.Body, marker) {
			t.Errorf("%s: %d, %d bytes, no %q", path, resp.Status, len(resp.Body), marker)
		}
	}
	resp := tg.MustCall(t, http.MethodGet, "/openapi.json", nil, NoAuth)
	var doc struct {
		OpenAPI string         `json:"openapi"`
		Paths   map[string]any `json:"paths"`
	}
	if resp.Status != http.StatusOK || resp.JSON(&doc) != nil || !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi.json: %.200s", resp)
	}
	for _, p := range []string{"/process-s3-data", "/aircraft-stats/{icao}", "/api/v1/aircraft", "/api/v1/health",
		"/api/v1/ready", "/api/v1/jobs/{id}", "/api/v1/download", "/api/v1/files", "/api/v1/files/index"} {
		if doc.Paths[p] == nil {
			t.Errorf("openapi.json lacks %s", p)
		}
	}
}

// postEndpoints are every POST of the API with a valid body: all need the token.
func postEndpoints(r Run) map[string]any {
	return map[string]any{
		"/process-s3-data?prefix=" + url.QueryEscape(r.FlightPrefix()): nil,
		"/api/v1/files/index": map[string]any{"prefix": r.LanePrefix()},
		"/api/v1/files": map[string]any{"records": []any{map[string]any{
			"s3_key": r.LanePrefix() + "x/2024/02/14/14/f", "lane_id": "x", "timestamp": "2024-02-14T14:00:00Z"}}},
		"/api/v1/download": map[string]any{"lane_id": r.Lane(), "hour": 14, "date": "2024-02-14T00:00:00Z"},
	}
}

// checkAuth: every POST answers 401 without the token or with a wrong one, and does nothing.
func checkAuth(t *testing.T, tg Target, r Run) {
	for path, body := range postEndpoints(r) {
		for _, auth := range []Auth{NoAuth, BadToken} {
			resp := tg.MustCall(t, http.MethodPost, path, body, auth)
			expectProblem(t, fmt.Sprintf("POST %s (auth %d)", path, auth), resp, http.StatusUnauthorized)
		}
	}
	// The listings that name S3 keys and paths need a token too.
	for _, path := range []string{"/api/v1/files?limit=1", "/api/v1/ingestion/failed?limit=1"} {
		for _, auth := range []Auth{NoAuth, BadToken} {
			expectProblem(t, fmt.Sprintf("GET %s (auth %d)", path, auth), tg.MustCall(t, http.MethodGet, path, nil, auth), http.StatusUnauthorized)
		}
	}
	// Other reads stay open.
	if resp := tg.MustCall(t, http.MethodGet, "/api/v1/aircraft?limit=1", nil, NoAuth); resp.Status != http.StatusOK {
		t.Errorf("GET /api/v1/aircraft without a token: %s", resp)
	}
}

// checkValidation: bad input is a 422 (or 400) problem naming the field; unknown things are 404.
func checkValidation(t *testing.T, tg Target, d Data) {
	for _, bad := range []string{"xyz", "abcdefg", "abcde", "12345z"} {
		resp := tg.MustCall(t, http.MethodGet, "/aircraft-stats/"+bad, nil, NoAuth)
		expectProblem(t, "GET /aircraft-stats/"+bad, resp, http.StatusUnprocessableEntity, "icao")
	}
	for query, field := range map[string]string{"limit=0": "limit", "limit=100000": "limit", "after=zzz": "after"} {
		resp := tg.MustCall(t, http.MethodGet, "/api/v1/aircraft?"+query, nil, NoAuth)
		expectProblem(t, "GET /api/v1/aircraft?"+query, resp, http.StatusUnprocessableEntity, field)
	}
	absent := d.Oracle.Absent()
	expectProblem(t, "unknown aircraft", tg.MustCall(t, http.MethodGet, "/aircraft-stats/"+absent, nil, NoAuth),
		http.StatusNotFound, absent)
	expectProblem(t, "unknown path", tg.MustCall(t, http.MethodGet, "/api/v1/no-such-thing", nil, NoAuth), http.StatusNotFound)
	expectProblem(t, "unknown job", tg.MustCall(t, http.MethodGet, "/api/v1/jobs/000000000000000000000000", nil, NoAuth),
		http.StatusNotFound)

	// A download request with every field wrong names every field; nothing is written outside DOWNLOAD_PATH.
	resp := tg.MustCall(t, http.MethodPost, "/api/v1/download",
		map[string]any{"lane_id": "../../etc", "hour": 24, "date": "yesterday"}, WithToken)
	expectProblem(t, "download with bad fields", resp, http.StatusUnprocessableEntity, "lane_id", "hour", "date")
	for name, body := range map[string]any{
		"hour -1":      map[string]any{"lane_id": "lane1", "hour": -1, "date": "2024-02-14"},
		"no lane":      map[string]any{"hour": 1, "date": "2024-02-14"},
		"date 02-30":   map[string]any{"lane_id": "lane1", "hour": 1, "date": "2024-02-30"},
		"hour as text": map[string]any{"lane_id": "lane1", "hour": "14", "date": "2024-02-14"},
	} {
		resp := tg.MustCall(t, http.MethodPost, "/api/v1/download", body, WithToken)
		if resp.Status != http.StatusUnprocessableEntity && resp.Status != http.StatusBadRequest {
			t.Errorf("download, %s: %s, want 422 or 400", name, resp)
		}
	}
	resp = tg.MustCall(t, http.MethodPost, "/api/v1/files/index", map[string]any{"prefix": 7}, WithToken)
	if resp.Status != http.StatusUnprocessableEntity && resp.Status != http.StatusBadRequest {
		t.Errorf("index with a number as prefix: %s, want 422 or 400", resp)
	}
}

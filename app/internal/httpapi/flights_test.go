package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aircraftdata/platform/app/internal/bucket"
	"github.com/aircraftdata/platform/app/internal/config"
	"github.com/aircraftdata/platform/app/internal/flight"
	"github.com/aircraftdata/platform/app/internal/flight/flighttest"
	"github.com/aircraftdata/platform/app/internal/httpapi"
	"github.com/aircraftdata/platform/app/internal/ingest"
	"github.com/aircraftdata/platform/app/internal/jobs"
	"github.com/aircraftdata/platform/app/internal/postgres"
	"github.com/aircraftdata/platform/app/internal/readsb"
	"github.com/aircraftdata/platform/app/internal/ready"
	"github.com/aircraftdata/platform/app/internal/stacktest"
)

const token = "test-token"

// flightsEnv is a service on a fresh database and bucket.
type flightsEnv struct {
	url    string
	db     *postgres.DB
	dbURL  string
	bucket bucket.Bucket
	ready  *ready.Checker
}

func newFlightsEnv(t *testing.T) *flightsEnv {
	t.Helper()
	b := stacktest.Bucket(t)
	db, dbURL := stacktest.DB(t)
	reg := jobs.NewRegistry(slog.New(slog.DiscardHandler), jobs.Limits{MaxRunning: 8, KeepFinished: 100, KeepFor: time.Hour})
	t.Cleanup(func() { reg.Stop(errors.New("test over")) })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	checker := refreshed(t, ready.Check{Name: "postgres", Check: db.Ping}, ready.Check{Name: "s3", Check: b.Check})
	srv := httptest.NewServer(httpapi.NewServer(httpapi.Deps{
		Log: log, Version: "test", APITokens: []string{token},
		Stats:  db.Reads(),
		Ingest: httpapi.IngestService(ingestService(db, b, log), ingestService(db.Reads(), b, log)),
		Jobs:   reg,
		Ready:  checker,
	}))
	t.Cleanup(srv.Close)
	return &flightsEnv{url: srv.URL, db: db, dbURL: dbURL, bucket: b, ready: checker}
}

// ingestService is ingestion as the service runs it by default.
func ingestService(db *postgres.DB, b bucket.Bucket, log *slog.Logger) *ingest.Service {
	def := config.Defaults()
	return &ingest.Service{DB: db, Bucket: b, Log: log, Workers: def.IngestWorkers, Limits: readsb.Limits{
		MaxBytes: def.IngestMaxFileBytes, MaxString: def.IngestMaxStringBytes, MaxAircraft: def.IngestMaxAircraftPerFile,
		MaxDepth: def.IngestMaxDepth, MaxDecodeTime: def.IngestMaxDecodeTime,
	}}
}

func (e *flightsEnv) do(t *testing.T, method, path string, hdr map[string]string) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body, resp.Header
}

var auth = map[string]string{"Authorization": "Bearer " + token}

func decode[T any](t *testing.T, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return v
}

// --- the oracle: statistics computed the obvious way from the sample files ---

func oracle(t *testing.T, files ...string) flighttest.Oracle {
	o := flighttest.Oracle{}
	for _, name := range files {
		o.Add(t, stacktest.Sample(t, name))
	}
	return o
}

func checkStats(t *testing.T, hex string, w *flighttest.Want, got flight.Stats) {
	t.Helper()
	if w == nil {
		t.Fatalf("%s is not in the oracle", hex)
	}
	for _, d := range w.Diff(got) {
		t.Error(d)
	}
}

var goodSamples = []string{"20231101-000030Z.json", "20231101-000315Z.json", "20231101-000315Z.json.gz", "20231101-000700Z.json.gz"}
var badSamples = []string{"bad/20231101-000030Z.cut-mid-record.json", "bad/20231101-000315Z.cut-mid-record.json"}

// distinct snapshots among goodSamples: the two 000315Z files are one snapshot.
var uniqueSnapshots = []string{"20231101-000030Z.json", "20231101-000315Z.json", "20231101-000700Z.json.gz"}

type ingestResult struct {
	FilesSeen       int               `json:"files_seen"`
	FilesIngested   int               `json:"files_ingested"`
	FilesSkipped    int               `json:"files_skipped"`
	SkippedByReason map[string]int    `json:"skipped_by_reason"`
	Skipped         []ingest.FileNote `json:"skipped"`
	FilesFailed     int               `json:"files_failed"`
	Failed          []ingest.FileNote `json:"failed"`
	AircraftUpdated int               `json:"aircraft_updated"`
	Observations    int               `json:"observations"`
	Bytes           int64             `json:"bytes"`
}

func upload(t *testing.T, b bucket.Bucket, prefix string, names ...string) {
	for _, n := range names {
		stacktest.Put(t, b, prefix+n, stacktest.Sample(t, n))
	}
}

func TestIngestAndStatistics(t *testing.T) {
	e := newFlightsEnv(t)
	const prefix = "raw/day=20231101/"
	upload(t, e.bucket, prefix, goodSamples...)
	upload(t, e.bucket, prefix, badSamples...)
	stacktest.Put(t, e.bucket, "elsewhere/20231101-000030Z.json", stacktest.Sample(t, "20231101-000030Z.json"))

	wantStats := oracle(t, uniqueSnapshots...)
	wantObs := 0
	for _, w := range wantStats {
		wantObs += int(w.Observations)
	}

	status, body, _ := e.do(t, "POST", "/process-s3-data?prefix="+prefix, auth)
	if status != http.StatusOK {
		t.Fatalf("ingest: %d %s", status, body)
	}
	res := decode[ingestResult](t, body)
	if res.FilesSeen != 6 || res.FilesIngested != 3 || res.FilesSkipped != 1 || res.FilesFailed != 2 {
		t.Errorf("files seen/ingested/skipped/failed = %d/%d/%d/%d, want 6/3/1/2: %s",
			res.FilesSeen, res.FilesIngested, res.FilesSkipped, res.FilesFailed, body)
	}
	if res.SkippedByReason["duplicate snapshot"] != 1 || len(res.Skipped) != 1 ||
		!strings.HasPrefix(res.Skipped[0].Key, prefix+"20231101-000315Z.json") {
		t.Errorf("the 000315Z snapshot under its second key should be skipped as a duplicate: %+v", res.Skipped)
	}
	var failedKeys []string
	for _, f := range res.Failed {
		failedKeys = append(failedKeys, f.Key)
		if !strings.Contains(f.Reason, "truncated") {
			t.Errorf("%s: reason %q should say the file is truncated", f.Key, f.Reason)
		}
	}
	slices.Sort(failedKeys)
	if !slices.Equal(failedKeys, []string{prefix + badSamples[0], prefix + badSamples[1]}) {
		t.Errorf("failed = %v", failedKeys)
	}
	if res.Observations != wantObs || res.AircraftUpdated != len(wantStats) {
		t.Errorf("observations %d, aircraft %d; want %d, %d", res.Observations, res.AircraftUpdated, wantObs, len(wantStats))
	}

	// Exact statistics for many aircraft: every one with an emergency, every one seen in all three snapshots with
	// changing data, and a spread of the rest.
	hexes := make([]string, 0, len(wantStats))
	for h := range wantStats {
		hexes = append(hexes, h)
	}
	sort.Strings(hexes)
	var picked []string
	for i, h := range hexes {
		w := wantStats[h]
		if len(w.Emergencies) > 0 || (w.Observations == 3 && i%7 == 0) || i%41 == 0 {
			picked = append(picked, h)
		}
	}
	if len(picked) < 300 {
		t.Fatalf("only %d aircraft picked", len(picked))
	}
	emergencies := 0
	for _, h := range picked {
		status, body, _ := e.do(t, "GET", "/aircraft-stats/"+h, nil)
		if status != http.StatusOK {
			t.Fatalf("stats %s: %d %s", h, status, body)
		}
		got := decode[flight.Stats](t, body)
		checkStats(t, h, wantStats[h], got)
		if got.HadEmergency {
			emergencies++
		}
	}
	if emergencies < 1 {
		t.Errorf("%d aircraft with an emergency checked; the samples hold one (adcfef, in two snapshots)", emergencies)
	}
	t.Logf("checked %d of %d aircraft against the oracle", len(picked), len(wantStats))

	// Case-insensitive icao.
	if status, _, _ := e.do(t, "GET", "/aircraft-stats/"+strings.ToUpper(picked[0]), nil); status != http.StatusOK {
		t.Errorf("upper-case icao: %d", status)
	}

	// Rerun: nothing changes.
	before := fetchAll(t, e)
	status, body, _ = e.do(t, "POST", "/process-s3-data?prefix="+prefix, auth)
	if status != http.StatusOK {
		t.Fatalf("rerun: %d %s", status, body)
	}
	res = decode[ingestResult](t, body)
	if res.FilesIngested != 0 || res.SkippedByReason["already ingested"] != 4 || res.SkippedByReason["quarantined"] != 2 ||
		res.FilesFailed != 0 || res.Observations != 0 {
		t.Errorf("rerun should skip the 4 processed files and the 2 quarantined ones: %s", body)
	}
	if after := fetchAll(t, e); !bytes.Equal(before, after) {
		t.Error("statistics changed on rerun")
	}

	// The same snapshot under yet another key, in another run, counts once.
	status, body, _ = e.do(t, "POST", "/process-s3-data?prefix=elsewhere/", auth)
	res = decode[ingestResult](t, body)
	if status != http.StatusOK || res.FilesIngested != 0 || res.SkippedByReason["duplicate snapshot"] != 1 {
		t.Errorf("a known snapshot under a new key: %d %s", status, body)
	}
	if after := fetchAll(t, e); !bytes.Equal(before, after) {
		t.Error("statistics changed by a duplicate snapshot")
	}
}

// fetchAll returns every aircraft's statistics, as served, for comparison.
func fetchAll(t *testing.T, e *flightsEnv) []byte {
	t.Helper()
	var all bytes.Buffer
	for _, a := range listAll(t, e, 1000) {
		_, body, _ := e.do(t, "GET", "/aircraft-stats/"+a, nil)
		all.Write(body)
	}
	return all.Bytes()
}

func listAll(t *testing.T, e *flightsEnv, limit int) []string {
	t.Helper()
	var icaos []string
	after := ""
	for {
		status, body, _ := e.do(t, "GET", fmt.Sprintf("/api/v1/aircraft?limit=%d&after=%s", limit, after), nil)
		if status != http.StatusOK {
			t.Fatalf("list: %d %s", status, body)
		}
		page := decode[struct {
			Items []struct {
				ICAO string `json:"icao"`
			} `json:"items"`
			Next *string `json:"next"`
		}](t, body)
		for _, it := range page.Items {
			icaos = append(icaos, it.ICAO)
		}
		if page.Next == nil {
			return icaos
		}
		after = *page.Next
	}
}

func TestAircraftListPages(t *testing.T) {
	e := newFlightsEnv(t)
	upload(t, e.bucket, "", "20231101-000700Z.json.gz")
	if status, body, _ := e.do(t, "POST", "/process-s3-data", auth); status != http.StatusOK {
		t.Fatalf("ingest: %d %s", status, body)
	}
	want := oracle(t, "20231101-000700Z.json.gz")
	got := listAll(t, e, 333)
	if len(got) != len(want) {
		t.Errorf("listed %d aircraft, want %d", len(got), len(want))
	}
	if !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
		t.Error("pages are not in order or repeat an aircraft")
	}
	for _, h := range got {
		if want[h] == nil {
			t.Fatalf("listed %s, which is not in the data", h)
		}
	}
}

func TestIngestConflictAndAuth(t *testing.T) {
	e := newFlightsEnv(t)
	if status, _, hdr := e.do(t, "POST", "/process-s3-data", nil); status != http.StatusUnauthorized || hdr.Get("WWW-Authenticate") == "" {
		t.Errorf("no token: %d", status)
	}
	if status, _, _ := e.do(t, "POST", "/process-s3-data", map[string]string{"Authorization": "Bearer wrong"}); status != http.StatusUnauthorized {
		t.Errorf("wrong token: %d", status)
	}
	// Another instance holds the lock of the prefix: this one must answer 409 for it, and run another prefix.
	unlock, err := e.db.Lock(context.Background(), e.bucket.Name, "")
	if err != nil {
		t.Fatal(err)
	}
	status, body, hdr := e.do(t, "POST", "/process-s3-data", auth)
	if status != http.StatusConflict || !strings.HasPrefix(hdr.Get("Content-Type"), "application/problem+json") {
		t.Errorf("concurrent run: %d %s", status, body)
	}
	if status, body, _ := e.do(t, "POST", "/process-s3-data?prefix=other/", auth); status != http.StatusOK {
		t.Errorf("a run of another prefix: %d %s", status, body)
	}
	unlock()
	if status, body, _ := e.do(t, "POST", "/process-s3-data", auth); status != http.StatusOK {
		t.Errorf("after the other run: %d %s", status, body)
	}
}

func TestConcurrentRequestsOneWins(t *testing.T) {
	e := newFlightsEnv(t)
	upload(t, e.bucket, "", goodSamples...)
	var wg sync.WaitGroup
	codes := make([]int, 4)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], _, _ = e.do(t, "POST", "/process-s3-data", auth)
		}()
	}
	wg.Wait()
	ok := 0
	for _, c := range codes {
		switch c {
		case http.StatusOK:
			ok++
		case http.StatusConflict:
		default:
			t.Errorf("unexpected status %d", c)
		}
	}
	if ok == 0 {
		t.Error("no run succeeded")
	}
	// Whatever interleaving happened, every snapshot counted once.
	want := oracle(t, uniqueSnapshots...)
	for _, h := range []string{"a65800"} {
		if w := want[h]; w != nil {
			_, body, _ := e.do(t, "GET", "/aircraft-stats/"+h, nil)
			checkStats(t, h, w, decode[flight.Stats](t, body))
		}
	}
	var total int64
	for _, h := range listAll(t, e, 1000) {
		_, body, _ := e.do(t, "GET", "/aircraft-stats/"+h, nil)
		total += decode[flight.Stats](t, body).Observations
	}
	if wantTotal := want.Observations(); total != wantTotal {
		t.Errorf("%d observations stored after concurrent runs, want %d", total, wantTotal)
	}
}

type ingestJob struct {
	State    string `json:"state"`
	Progress struct {
		FilesDone  int  `json:"files_done"`
		FilesTotal int  `json:"files_total"`
		BytesDone  int  `json:"bytes_done"`
		BytesTotal int  `json:"bytes_total"`
		TotalKnown bool `json:"total_known"`
	} `json:"progress"`
	Result *ingestResult `json:"result"`
	Error  string        `json:"error"`
}

func TestAsyncIngestJob(t *testing.T) {
	for _, async := range []struct{ query, prefer string }{{"?async=true", ""}, {"", "respond-async"}} {
		e := newFlightsEnv(t)
		upload(t, e.bucket, "", uniqueSnapshots...)
		hdr := map[string]string{"Authorization": auth["Authorization"], "Prefer": async.prefer}
		status, body, h := e.do(t, "POST", "/process-s3-data"+async.query, hdr)
		if status != http.StatusAccepted || !strings.HasPrefix(h.Get("Location"), "/api/v1/jobs/") {
			t.Fatalf("async: %d %s", status, body)
		}
		var job ingestJob
		deadline := time.Now().Add(time.Minute)
		for {
			_, body, _ = e.do(t, "GET", h.Get("Location"), nil)
			job = decode[ingestJob](t, body)
			if job.State != "running" || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if job.State != "succeeded" || job.Result == nil || job.Result.FilesIngested != 3 {
			t.Fatalf("job: %s", body)
		}
		var size int
		for _, n := range uniqueSnapshots {
			size += len(stacktest.Sample(t, n))
		}
		p := job.Progress
		if p.FilesDone != 3 || p.FilesTotal != 3 || p.BytesDone != size || p.BytesTotal != size || !p.TotalKnown {
			t.Errorf("progress %+v, want 3 files and %d bytes done of known totals", p, size)
		}
		_, body, _ = e.do(t, "GET", "/aircraft-stats/adcfef", nil)
		checkStats(t, "adcfef", oracle(t, uniqueSnapshots...)["adcfef"], decode[flight.Stats](t, body))
	}
	e := newFlightsEnv(t)
	if status, _, _ := e.do(t, "GET", "/api/v1/jobs/000000000000000000000000", nil); status != http.StatusNotFound {
		t.Errorf("unknown job: %d", status)
	}
}

func TestHealthReadyAndDocs(t *testing.T) {
	e := newFlightsEnv(t)
	status, body, _ := e.do(t, "GET", "/api/v1/health", nil)
	if status != 200 || !strings.Contains(string(body), `"status":"ok"`) {
		t.Errorf("health: %d %s", status, body)
	}
	status, body, _ = e.do(t, "GET", "/api/v1/ready", nil)
	if status != 200 || !strings.Contains(string(body), `"postgres":"ok"`) || !strings.Contains(string(body), `"s3":"ok"`) {
		t.Errorf("ready: %d %s", status, body)
	}
	status, body, _ = e.do(t, "GET", "/openapi.json", nil)
	doc := decode[struct {
		OpenAPI string         `json:"openapi"`
		Paths   map[string]any `json:"paths"`
	}](t, body)
	for _, p := range []string{"/process-s3-data", "/aircraft-stats/{icao}", "/api/v1/aircraft", "/api/v1/health", "/api/v1/ready", "/api/v1/jobs/{id}"} {
		if doc.Paths[p] == nil {
			t.Errorf("openapi.json lacks %s", p)
		}
	}
	if status != 200 || !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi: %d %s", status, doc.OpenAPI)
	}
	for path, marker := range map[string]string{
		"/docs":                             "swagger-ui-bundle.js",
		"/docs/assets/swagger-ui-bundle.js": "SwaggerUIBundle",
		"/docs/assets/swagger-ui.css":       ".swagger-ui",
		"/redoc":                            "redoc.standalone.js",
		"/redoc/redoc.standalone.js":        "Redoc",
	} {
		status, body, _ := e.do(t, "GET", path, nil)
		if status != 200 || !strings.Contains(string(body), marker) {
			t.Errorf("%s: %d, %d bytes, no %q", path, status, len(body), marker)
		}
	}
}

func TestReadyReportsDownDependency(t *testing.T) {
	e := newFlightsEnv(t)
	e.db.Close() // the database is gone
	e.ready.Refresh(context.Background())
	status, body, _ := e.do(t, "GET", "/api/v1/ready", nil)
	if status != http.StatusServiceUnavailable || strings.Contains(string(body), `"postgres":"ok"`) {
		t.Errorf("ready with the database down: %d %s", status, body)
	}
}

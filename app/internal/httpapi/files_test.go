package httpapi_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/aircraftdata/platform/app/internal/bucket"
	"github.com/aircraftdata/platform/app/internal/config"
	"github.com/aircraftdata/platform/app/internal/download"
	"github.com/aircraftdata/platform/app/internal/httpapi"
	"github.com/aircraftdata/platform/app/internal/jobs"
	"github.com/aircraftdata/platform/app/internal/lanes"
	"github.com/aircraftdata/platform/app/internal/mongo"
	"github.com/aircraftdata/platform/app/internal/mongo/mongotest"
	"github.com/aircraftdata/platform/app/internal/progress"
	"github.com/aircraftdata/platform/app/internal/ready"
	"github.com/aircraftdata/platform/app/internal/stacktest"
)

const filesToken = "files-token"

// filesEnv is a service with lane downloads on a store, bucket and folder of the test's own.
type filesEnv struct {
	url    string
	root   string
	bucket bucket.Bucket
	store  *mongo.Store
	jobs   *jobs.Registry
}

// newFilesEnv starts the service; maxJobs (default 8) is its JOBS_MAX_RUNNING.
func newFilesEnv(t *testing.T, maxJobs ...int) *filesEnv {
	t.Helper()
	maxRunning := 8
	if len(maxJobs) > 0 {
		maxRunning = maxJobs[0]
	}
	store := mongotest.Store(t)
	b := stacktest.Bucket(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	root := filepath.Join(t.TempDir(), "downloads")
	def := config.Defaults()
	dl, err := download.New(download.Config{Records: store, Claims: store, S3: b.Client, Bucket: b.Name, Root: root,
		Workers: def.DownloadWorkers, Lease: def.DownloadClaimLease, Wait: def.DownloadWait, PartSize: 2 << 20, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dl.Close() })
	reg := jobs.NewRegistry(slog.New(slog.DiscardHandler), jobs.Limits{MaxRunning: maxRunning, KeepFinished: 100, KeepFor: time.Hour})
	t.Cleanup(func() { reg.Stop(errors.New("test over")) })
	srv := httptest.NewServer(httpapi.NewServer(httpapi.Deps{
		Log: log, Version: "test", APITokens: []string{filesToken}, CORS: []string{"https://console.example"},
		Jobs:  reg,
		Ready: refreshed(t, ready.Check{Name: "mongodb", Check: store.Ping}),
		Lanes: &httpapi.Lanes{Store: store, Downloader: httpapi.Downloads(dl), Indexer: &download.Indexer{Store: store, Bucket: b, Log: log}},
	}))
	t.Cleanup(srv.Close)
	return &filesEnv{url: srv.URL, root: root, bucket: b, store: store, jobs: reg}
}

// call sends a JSON request (with the token unless noAuth) and decodes the answer into a map.
func call(t *testing.T, method, url string, body any, noAuth ...bool) (int, map[string]any, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		if s, ok := body.(string); ok {
			b = []byte(s)
		}
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Content-Type", "application/json")
	if len(noAuth) == 0 {
		req.Header.Set("Authorization", "Bearer "+filesToken)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(raw) > 0 && json.Unmarshal(raw, &m) != nil {
		t.Fatalf("%s %s: not JSON: %s", method, url, raw)
	}
	return resp.StatusCode, m, resp.Header
}

// errorLocations are where a 422 problem's errors are, with the property named by "expected required property X" errors
// (huma puts those at the object's location).
func errorLocations(m map[string]any) []string {
	var out []string
	errs, _ := m["errors"].([]any)
	for _, e := range errs {
		if em, ok := e.(map[string]any); ok {
			loc := fmt.Sprint(em["location"])
			if _, prop, ok := strings.Cut(fmt.Sprint(em["message"]), "expected required property "); ok {
				loc += "." + strings.Fields(prop)[0]
			}
			out = append(out, loc)
		}
	}
	return out
}

func TestFilesOverHTTP(t *testing.T) {
	e := newFilesEnv(t)
	ctx := context.Background()
	prefix := stacktest.Name("lanes/http") + "/"
	uploaded := map[string][32]byte{}
	put := func(key string, n int) {
		data := bytes.Repeat([]byte(key), n/len(key)+1)[:n]
		if _, err := e.bucket.Client.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(e.bucket.Name), Key: aws.String(prefix + key), Body: bytes.NewReader(data),
			ChecksumAlgorithm: s3types.ChecksumAlgorithmCrc32c,
		}); err != nil {
			t.Fatal(err)
		}
		uploaded[key] = sha256.Sum256(data)
	}
	put("lane1/2024/02/14/14/a.bin", 1000)
	put("lane1/2024/02/14/14/b.bin", 3<<20)
	put("lane1/2024/02/14/15/c.bin", 10)
	put("other/file.txt", 10)

	status, idx, _ := call(t, "POST", e.url+"/api/v1/files/index", map[string]any{"prefix": prefix})
	if status != 200 || idx["added"] != 3.0 || idx["skipped_count"] != 1.0 || idx["objects"] != 4.0 {
		t.Fatalf("index: %d %v", status, idx)
	}
	if _, idx, _ = call(t, "POST", e.url+"/api/v1/files/index", map[string]any{"prefix": prefix}); idx["added"] != 0.0 || idx["unchanged"] != 3.0 {
		t.Errorf("index rerun: %v", idx)
	}

	status, page, _ := call(t, "GET", e.url+"/api/v1/files?lane_id=lane1&date=2024-02-14&hour=14", nil)
	items, _ := page["items"].([]any)
	if status != 200 || len(items) != 2 || page["next"] != nil {
		t.Fatalf("list hour 14: %d %v", status, page)
	}
	first := items[0].(map[string]any)
	if first["s3_key"] != prefix+"lane1/2024/02/14/14/a.bin" || first["status"] != "pending" || first["size"] != 1000.0 || first["etag"] == "" {
		t.Errorf("listed record: %v", first)
	}
	if _, page, _ = call(t, "GET", e.url+"/api/v1/files?lane_id=lane1&limit=2", nil); page["next"] == nil {
		t.Errorf("3 records, limit 2: no next page: %v", page)
	} else if _, page2, _ := call(t, "GET", e.url+"/api/v1/files?lane_id=lane1&limit=2&after="+fmt.Sprint(page["next"]), nil); len(page2["items"].([]any)) != 1 {
		t.Errorf("second page: %v", page2)
	}

	// Download the hour synchronously: the seed's shape plus reasons.
	status, res, _ := call(t, "POST", e.url+"/api/v1/download", map[string]any{"lane_id": "lane1", "hour": 14, "date": "2024-02-14T00:00:00Z"})
	if status != 200 {
		t.Fatalf("download: %d %v", status, res)
	}
	for _, k := range []string{"successful", "failed", "total_files", "success_count", "failure_count", "failures"} {
		if _, ok := res[k]; !ok {
			t.Errorf("result has no %q: %v", k, res)
		}
	}
	if res["total_files"] != 2.0 || res["success_count"] != 2.0 || res["failure_count"] != 0.0 {
		t.Fatalf("download result: %v", res)
	}
	for _, s := range res["successful"].([]any) {
		f := s.(map[string]any)
		if f["status"] != "downloaded" || f["outcome"] != "downloaded" || f["local_path"] == "" {
			t.Errorf("successful record: %v", f)
		}
	}
	for _, k := range []string{"lane1/2024/02/14/14/a.bin", "lane1/2024/02/14/14/b.bin"} {
		got, err := os.ReadFile(filepath.Join(e.root, filepath.FromSlash(k)))
		if err != nil || sha256.Sum256(got) != uploaded[k] {
			t.Errorf("%s on disk: %v, or not the uploaded bytes", k, err)
		}
	}
	if _, page, _ = call(t, "GET", e.url+"/api/v1/files?status=downloaded", nil); len(page["items"].([]any)) != 2 {
		t.Errorf("downloaded records: %v", page)
	}

	// Async: 202, a job to poll, progress, then the result.
	status, job, hdr := call(t, "POST", e.url+"/api/v1/download?async=true", map[string]any{"lane_id": "lane1", "hour": 14, "date": "2024-02-14"})
	if status != http.StatusAccepted || hdr.Get("Location") != "/api/v1/jobs/"+fmt.Sprint(job["id"]) {
		t.Fatalf("async: %d %v %v", status, job, hdr)
	}
	deadline := time.Now().Add(30 * time.Second)
	for job["state"] == "running" && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		_, job, _ = call(t, "GET", e.url+hdr.Get("Location"), nil)
	}
	if job["state"] != "succeeded" {
		t.Fatalf("job: %v", job)
	}
	prog := job["progress"].(map[string]any)
	if prog["files_done"] != 2.0 || prog["files_total"] != 2.0 || prog["bytes_total"] != float64(1000+3<<20) || prog["bytes_done"] != prog["bytes_total"] || prog["total_known"] != true {
		t.Errorf("job progress: %v", prog)
	}
	result := job["result"].(map[string]any)
	if result["already_present_count"] != 2.0 || result["downloaded_count"] != 0.0 {
		t.Errorf("second download (async): %v", result)
	}

	// Explicit registration: new, then idempotent, then a change.
	rec := map[string]any{"s3_key": prefix + "lane1/2024/02/14/15/c.bin", "lane_id": "lane1", "timestamp": "2024-02-14T15:30:00Z", "size": 10}
	newRec := map[string]any{"s3_key": prefix + "lane9/x.bin", "lane_id": "lane9", "timestamp": "2024-02-14T15:30:00+01:00"}
	status, reg, _ := call(t, "POST", e.url+"/api/v1/files", map[string]any{"records": []any{rec, newRec}})
	if status != 200 || reg["added"] != 1.0 || reg["updated"] != 1.0 {
		t.Errorf("register: %d %v (c.bin's timestamp moved within its hour: updated; lane9: added)", status, reg)
	}
	if _, reg, _ = call(t, "POST", e.url+"/api/v1/files", map[string]any{"records": []any{rec, newRec}}); reg["unchanged"] != 2.0 {
		t.Errorf("register again: %v", reg)
	}
	if _, page, _ = call(t, "GET", e.url+"/api/v1/files?lane_id=lane9&date=2024-02-14&hour=14", nil); len(page["items"].([]any)) != 1 {
		t.Errorf("a +01:00 timestamp is filed under its UTC hour: %v", page)
	}
	for _, bad := range []map[string]any{
		{"records": []any{}},
		{"records": []any{map[string]any{"s3_key": "", "lane_id": "l", "timestamp": "2024-02-14T15:30:00Z"}}},
		{"records": []any{map[string]any{"s3_key": "k", "lane_id": "l/..", "timestamp": "2024-02-14T15:30:00Z"}}},
		{"records": []any{map[string]any{"s3_key": "k", "lane_id": "l", "timestamp": "soon"}}},
		{"records": []any{map[string]any{"s3_key": "k", "lane_id": "l", "timestamp": "2024-02-14T15:30:00Z", "size": -1}}},
	} {
		if status, m, _ := call(t, "POST", e.url+"/api/v1/files", bad); status != http.StatusUnprocessableEntity {
			t.Errorf("register %v: %d %v", bad, status, m)
		}
	}
}

func TestReadyAndCORS(t *testing.T) {
	e := newFilesEnv(t)
	status, m, _ := call(t, "GET", e.url+"/api/v1/ready", nil)
	if status != 200 || m["checks"].(map[string]any)["mongodb"] != "ok" {
		t.Errorf("ready: %d %v", status, m)
	}
	req, _ := http.NewRequest("OPTIONS", e.url+"/api/v1/download", nil)
	req.Header.Set("Origin", "https://console.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "authorization,content-type")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Access-Control-Allow-Origin") != "https://console.example" {
		t.Errorf("preflight from the configured origin: %d %v", resp.StatusCode, resp.Header)
	}
}

// Without MongoDB, each lane file operation answers 503 naming the setting, once its input is valid; without ingestion,
// its operations answer 503; the rest of the service serves.
func TestLanesNotConfigured(t *testing.T) {
	srv := httptest.NewServer(httpapi.NewServer(httpapi.Deps{Log: slog.New(slog.DiscardHandler), Version: "test", Stats: &fakes{}}))
	defer srv.Close()
	record := map[string]any{"s3_key": "k", "lane_id": "l", "timestamp": "2024-02-14T15:30:00Z"}
	for _, c := range []struct {
		method, path string
		body         any
		detail       string
	}{
		{"POST", "/api/v1/download", map[string]any{"lane_id": "lane1", "hour": 14, "date": "2024-02-14"}, "MONGODB_URL"},
		{"POST", "/api/v1/files", map[string]any{"records": []any{record}}, "MONGODB_URL"},
		{"POST", "/api/v1/files/index", nil, "MONGODB_URL"},
		{"GET", "/api/v1/files", nil, "MONGODB_URL"},
		{"POST", "/process-s3-data", nil, "ingestion is not configured"},
		{"GET", "/api/v1/ingestion/failed", nil, "ingestion is not configured"},
	} {
		status, m, hdr := call(t, c.method, srv.URL+c.path, c.body)
		if status != http.StatusServiceUnavailable || !isProblem(hdr) || !strings.Contains(fmt.Sprint(m["detail"]), c.detail) {
			t.Errorf("%s %s not configured: %d %v, want 503 naming %s", c.method, c.path, status, m, c.detail)
		}
	}
	if status, m, _ := call(t, "POST", srv.URL+"/api/v1/download", map[string]any{"lane_id": "lane1", "hour": 24, "date": "2024-02-14"}); status != http.StatusUnprocessableEntity {
		t.Errorf("an invalid download without MongoDB: %d %v, want 422", status, m)
	}
	if status, m, _ := call(t, "GET", srv.URL+"/aircraft-stats/abc123", nil); status != http.StatusNotFound {
		t.Errorf("statistics without MongoDB or ingestion: %d %v, want 404 from the store", status, m)
	}
}

// A synchronous download counts against JOBS_MAX_RUNNING like a job: with the only slot taken it answers 429 with
// Retry-After, and runs once the slot is free.
func TestSyncDownloadCountsAgainstTheJobCap(t *testing.T) {
	e := newFilesEnv(t, 1)
	release := make(chan struct{})
	if _, err := e.jobs.Start("test", "", func(context.Context, *progress.Counter) (any, error) { <-release; return nil, nil }); err != nil {
		t.Fatal(err)
	}
	req := map[string]any{"lane_id": "lane1", "hour": 14, "date": "2024-02-14"}
	status, m, hdr := call(t, "POST", e.url+"/api/v1/download", req)
	if status != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" || !isProblem(hdr) {
		t.Errorf("synchronous download with every job slot taken: %d %v %v, want 429 with Retry-After", status, m, hdr)
	}
	close(release)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if status, _, _ = call(t, "POST", e.url+"/api/v1/download", req); status == http.StatusOK {
			break // the refused request let its hour go
		}
		if time.Now().After(deadline) {
			t.Fatalf("synchronous download once the slot is free: %d", status)
		}
	}
}

// 32 requests for an hour that another instance holds take no job slot: the async ones answer 409 with Retry-After at
// once, the synchronous ones wait; meanwhile other jobs and downloads run; once the hour is let go, the waiting ones
// are answered.
func TestBusyHourHoldsNoSlot(t *testing.T) {
	e := newFilesEnv(t, 4)
	h, err := lanes.NewHour("lane1", "2024-02-14", 14)
	if err != nil {
		t.Fatal(err)
	}
	if won, err := e.store.Claim(context.Background(), h.Dir(), "another-instance", time.Now(), time.Minute); !won || err != nil {
		t.Fatalf("claim as another instance: %v %v", won, err)
	}
	req := map[string]any{"lane_id": "lane1", "hour": 14, "date": "2024-02-14"}
	for i := range 32 {
		status, m, hdr := call(t, "POST", e.url+"/api/v1/download?async=true", req)
		if status != http.StatusConflict || hdr.Get("Retry-After") == "" || !isProblem(hdr) {
			t.Fatalf("async download %d of a busy hour: %d %v %v, want 409 with Retry-After", i+1, status, m, hdr)
		}
	}
	statuses := make(chan int, 32)
	for range 32 {
		go func() {
			status, _, _ := call(t, "POST", e.url+"/api/v1/download", req)
			statuses <- status
		}()
	}
	time.Sleep(300 * time.Millisecond) // they wait for the hour
	if status, m, _ := call(t, "POST", e.url+"/api/v1/files/index?async=true", map[string]any{"prefix": "none/"}); status != http.StatusAccepted {
		t.Errorf("a job while 64 requests wanted a busy hour: %d %v, want 202", status, m)
	}
	other := map[string]any{"lane_id": "lane1", "hour": 15, "date": "2024-02-14"}
	if status, m, _ := call(t, "POST", e.url+"/api/v1/download", other); status != http.StatusOK {
		t.Errorf("a download of another hour meanwhile: %d %v, want 200", status, m)
	}
	if err := e.store.Release(context.Background(), h.Dir(), "another-instance"); err != nil {
		t.Fatal(err)
	}
	for range 32 {
		if status := <-statuses; status != http.StatusOK {
			t.Errorf("a synchronous download waiting for the hour: %d, want 200", status)
		}
	}
}

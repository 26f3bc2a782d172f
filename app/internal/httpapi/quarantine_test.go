package httpapi_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/aircraftdata/platform/app/internal/bucket"
	"github.com/aircraftdata/platform/app/internal/flight"
	"github.com/aircraftdata/platform/app/internal/httpapi"
	"github.com/aircraftdata/platform/app/internal/stacktest"
)

type failedFile struct {
	Key    string `json:"key"`
	ETag   string `json:"etag"`
	Reason string `json:"reason"`
}

// failedList reads every page of GET /api/v1/ingestion/failed.
func failedList(t *testing.T, e *flightsEnv, limit int) []failedFile {
	t.Helper()
	var all []failedFile
	after := ""
	for pages := 0; ; pages++ {
		status, body, _ := e.do(t, "GET", fmt.Sprintf("/api/v1/ingestion/failed?limit=%d&after=%s", limit, after), auth)
		if status != http.StatusOK {
			t.Fatalf("failed list: %d %s", status, body)
		}
		page := decode[struct {
			Items []failedFile `json:"items"`
			Next  *string      `json:"next"`
		}](t, body)
		all = append(all, page.Items...)
		if page.Next == nil {
			return all
		}
		if pages > 100 {
			t.Fatal("the failed list does not end")
		}
		after = *page.Next
	}
}

func keysOf(files []failedFile) []string {
	var keys []string
	for _, f := range files {
		keys = append(keys, f.Key)
	}
	return keys
}

func TestQuarantineSkipsUntilChangedOrRetried(t *testing.T) {
	e := newFlightsEnv(t)
	upload(t, e.bucket, "", badSamples...)
	upload(t, e.bucket, "", "20231101-000700Z.json.gz")
	stacktest.Put(t, e.bucket, "zz-not-flight-data.json", []byte(`{"hello": "world"}`))

	status, body, _ := e.do(t, "POST", "/process-s3-data", auth)
	res := decode[ingestResult](t, body)
	if status != http.StatusOK || res.FilesIngested != 1 || res.FilesFailed != 3 {
		t.Fatalf("first run: %d %s", status, body)
	}
	failed := failedList(t, e, 1) // one per page: the pages chain
	wantKeys := []string{badSamples[0], badSamples[1], "zz-not-flight-data.json"}
	if !slices.Equal(keysOf(failed), wantKeys) {
		t.Fatalf("failed list %v, want %v", keysOf(failed), wantKeys)
	}
	if !strings.Contains(failed[0].Reason, "truncated") || !strings.Contains(failed[2].Reason, `no "aircraft"`) {
		t.Errorf("reasons: %+v", failed)
	}

	// A rerun does not fetch them: they are skipped as quarantined.
	_, body, _ = e.do(t, "POST", "/process-s3-data", auth)
	res = decode[ingestResult](t, body)
	if res.FilesFailed != 0 || res.SkippedByReason["quarantined"] != 3 || res.SkippedByReason["already ingested"] != 1 {
		t.Errorf("rerun: %s", body)
	}

	// retry_failed reads them again; they fail again and stay listed once.
	_, body, _ = e.do(t, "POST", "/process-s3-data?retry_failed=true", auth)
	res = decode[ingestResult](t, body)
	if res.FilesFailed != 3 || res.SkippedByReason["quarantined"] != 0 {
		t.Errorf("retry: %s", body)
	}
	if got := keysOf(failedList(t, e, 100)); !slices.Equal(got, wantKeys) {
		t.Errorf("after retry: %v", got)
	}

	// A fixed file (new ETag) is read and ingested, and leaves the list.
	stacktest.Put(t, e.bucket, badSamples[0], stacktest.Sample(t, "20231101-000030Z.json"))
	_, body, _ = e.do(t, "POST", "/process-s3-data", auth)
	res = decode[ingestResult](t, body)
	wantObs := 0
	for _, w := range oracle(t, "20231101-000030Z.json") {
		wantObs += int(w.Observations)
	}
	if res.FilesIngested != 1 || res.Observations != wantObs || res.SkippedByReason["quarantined"] != 2 {
		t.Errorf("after the fix: %s", body)
	}
	if got := keysOf(failedList(t, e, 100)); !slices.Equal(got, wantKeys[1:]) {
		t.Errorf("after the fix: %v", got)
	}
}

func TestDatabaseRefusalQuarantinesOnlyTheFileResponsible(t *testing.T) {
	e := newFlightsEnv(t)
	// The database refuses one registration, as it would a value too large for its field: the refusal is the
	// database's, the test only chooses it.
	dbURL := e.dbURL
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(),
		`ALTER TABLE aircraft_stats ADD CONSTRAINT refused CHECK (registration IS DISTINCT FROM 'REFUSED')`); err != nil {
		t.Fatal(err)
	}
	upload(t, e.bucket, "", uniqueSnapshots...)
	poison := `{"now": 1698790000.5, "aircraft": [{"hex": "abc123", "r": "REFUSED", "alt_baro": 1000}]}`
	stacktest.Put(t, e.bucket, "20231101-000500Z.json", []byte(poison))

	status, body, _ := e.do(t, "POST", "/process-s3-data", auth)
	if status != http.StatusOK {
		t.Fatalf("a refused file sank the run: %d %s", status, body)
	}
	res := decode[ingestResult](t, body)
	wantStats := oracle(t, uniqueSnapshots...)
	wantObs := 0
	for _, w := range wantStats {
		wantObs += int(w.Observations)
	}
	if res.FilesIngested != 3 || res.FilesFailed != 1 || res.Observations != wantObs ||
		len(res.Failed) != 1 || res.Failed[0].Key != "20231101-000500Z.json" ||
		!strings.Contains(res.Failed[0].Reason, "refused") || !strings.Contains(res.Failed[0].Reason, "23514") {
		t.Fatalf("run: %s", body)
	}
	// The good files are committed exactly.
	n := 0
	for h, w := range wantStats {
		if n++; n%50 != 0 {
			continue
		}
		_, body, _ := e.do(t, "GET", "/aircraft-stats/"+h, nil)
		checkStats(t, h, w, decode[flight.Stats](t, body))
	}
	if status, _, _ := e.do(t, "GET", "/aircraft-stats/abc123", nil); status != http.StatusNotFound {
		t.Errorf("the refused file's aircraft: %d", status)
	}
	if got := keysOf(failedList(t, e, 10)); !slices.Equal(got, []string{"20231101-000500Z.json"}) {
		t.Errorf("failed list: %v", got)
	}
	_, body, _ = e.do(t, "POST", "/process-s3-data", auth)
	if res := decode[ingestResult](t, body); res.SkippedByReason["quarantined"] != 1 || res.FilesFailed != 0 {
		t.Errorf("rerun: %s", body)
	}
}

func TestIngestNamesTheDependencyThatIsDown(t *testing.T) {
	e := newFlightsEnv(t)
	e.db.Close()
	status, body, _ := e.do(t, "POST", "/process-s3-data", auth)
	if status != http.StatusServiceUnavailable || !strings.Contains(string(body), "postgres unavailable") ||
		strings.Contains(string(body), "closed") || strings.Contains(string(body), "127.0.0.1") {
		t.Errorf("postgres down: %d %s", status, body)
	}
}

func TestIngestNamesS3WhenItIsDown(t *testing.T) {
	ctx := context.Background()
	db, _ := stacktest.DB(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String()
	l.Close() // nothing listens there now
	client, err := bucket.NewClient(ctx, "us-east-1", dead)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := httptest.NewServer(httpapi.NewServer(httpapi.Deps{
		Log: log, Version: "test", APITokens: []string{token}, Stats: db,
		Ingest: httpapi.IngestService(ingestService(db, bucket.Bucket{Client: client, Name: "flights"}, log), nil),
	}))
	t.Cleanup(srv.Close)
	e := &flightsEnv{url: srv.URL}
	status, body, _ := e.do(t, "POST", "/process-s3-data", auth)
	if status != http.StatusServiceUnavailable || !strings.Contains(string(body), "s3 unavailable") ||
		strings.Contains(string(body), "127.0.0.1") || strings.Contains(string(body), "refused") {
		t.Errorf("s3 down: %d %s", status, body)
	}
}

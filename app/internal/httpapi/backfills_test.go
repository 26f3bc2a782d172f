package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aircraftdata/platform/app/internal/backfill"
	"github.com/aircraftdata/platform/app/internal/backfill/inprocess"
	"github.com/aircraftdata/platform/app/internal/backfill/inprocess/inprocesstest"
	"github.com/aircraftdata/platform/app/internal/bucket"
	"github.com/aircraftdata/platform/app/internal/config"
	"github.com/aircraftdata/platform/app/internal/flight/flighttest"
	"github.com/aircraftdata/platform/app/internal/httpapi"
	"github.com/aircraftdata/platform/app/internal/ingest"
	"github.com/aircraftdata/platform/app/internal/jobs"
	"github.com/aircraftdata/platform/app/internal/postgres"
	"github.com/aircraftdata/platform/app/internal/postgres/backfillstore"
	"github.com/aircraftdata/platform/app/internal/readsb"
	"github.com/aircraftdata/platform/app/internal/stacktest"
)

// backfillCost is the estimate's formula of docs/ingestion.md, with the settings' defaults: 230 µUSD per GB, 400 per
// 1000 files, 75 per batch.
func backfillCost(bytes, files, batches int64) float64 {
	return float64(bytes)/1e9*230e-6 + float64(files)*0.4e-6 + float64(batches)*75e-6
}

// serveStack serves the API on db and b, with backfills run in-process by a runner of its own (as on another instance),
// each batch through proc (nil: the ingest service itself).
func serveStack(t *testing.T, db *postgres.DB, b bucket.Bucket, limits backfill.Limits, proc func(inprocess.Processor) inprocess.Processor) string {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	def := config.Defaults()
	svc := &ingest.Service{DB: db, Bucket: b, Log: log, Workers: def.IngestWorkers, Limits: readsb.Limits{
		MaxBytes: def.IngestMaxFileBytes, MaxString: def.IngestMaxStringBytes, MaxAircraft: def.IngestMaxAircraftPerFile,
		MaxDepth: def.IngestMaxDepth, MaxDecodeTime: def.IngestMaxDecodeTime,
	}}
	var p inprocess.Processor = svc
	if proc != nil {
		p = proc(svc)
	}
	ctx, cancel := context.WithCancel(context.Background())
	store := backfillstore.New(db)
	local := inprocess.New(ctx, &inprocess.Runner{Store: store, Ingest: p, Bucket: b, Limits: limits, Log: log})
	t.Cleanup(func() { cancel(); local.Wait() })
	reg := jobs.NewRegistry(log, jobs.Limits{MaxRunning: 8, KeepFinished: 100, KeepFor: time.Hour})
	t.Cleanup(func() { reg.Stop(errors.New("test over")) })
	srv := httptest.NewServer(httpapi.NewServer(httpapi.Deps{
		Log: log, Version: "test", APITokens: []string{filesToken}, Stats: db, Jobs: reg,
		Ingest: httpapi.IngestService(svc, svc),
		Backfills: &backfill.Manager{Store: store, Runner: local, Bucket: b.Name, Limits: limits, Log: log,
			Cost: backfill.Cost{PerGB: 230e-6, PerFile: 0.4e-6, PerBatch: 75e-6}},
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func backfillLimits(batch, concurrency int) backfill.Limits {
	return backfill.Limits{MaxRunning: 2, BatchSize: batch, Concurrency: concurrency, Retries: 2,
		Backoff: 10 * time.Millisecond, ToleratedFailurePercent: 5, Lease: 30 * time.Second}
}

// tinySnapshot is a snapshot at now of aircraft b0000i for i < n, values from now.
func tinySnapshot(now float64, n int) []byte {
	var aircraft []map[string]any
	for i := range n {
		aircraft = append(aircraft, map[string]any{"hex": fmt.Sprintf("b%05x", i), "alt_baro": int(now)%40000 + i,
			"gs": float64(i) + 0.5, "r": fmt.Sprintf("N%d", int(now)%7)})
	}
	data, _ := json.Marshal(map[string]any{"now": now, "aircraft": aircraft})
	return data
}

// waitBackfill polls a backfill until it is no longer running.
func waitBackfill(t *testing.T, url string) map[string]any {
	t.Helper()
	for {
		status, body, _ := call(t, "GET", url, nil)
		if status != http.StatusOK {
			t.Fatalf("GET %s: %d %v", url, status, body)
		}
		if body["state"] != "running" {
			return body
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A backfill of the real samples and of small snapshots, 3 keys a batch, 4 batches at once, overlapping a POST
// /process-s3-data of the same prefix: the statistics equal the oracle's and those of one POST /process-s3-data over
// the same files in another database; each file counts once; a second server on the same database answers the same
// progress; every call needs the token.
func TestBackfillCountsOnceAndAnswersEverywhere(t *testing.T) {
	ctx := context.Background()
	b := stacktest.Bucket(t)
	db, dbURL := stacktest.DB(t)
	want := flighttest.Oracle{}
	var bytes int64
	put := func(key string, data []byte) {
		stacktest.Put(t, b, key, data)
		bytes += int64(len(data))
	}
	for _, name := range []string{"20231101-000030Z.json", "20231101-000315Z.json", "20231101-000700Z.json.gz"} {
		data := stacktest.Sample(t, name)
		want.Add(t, data)
		put("hist/2023/11/01/"+name, data)
	}
	put("hist/2023/11/01/20231101-000315Z.json.gz", stacktest.Sample(t, "20231101-000315Z.json.gz")) // a duplicate snapshot
	put("hist/2023/11/01/bad.json", stacktest.Sample(t, "bad/20231101-000030Z.cut-mid-record.json")) // quarantined
	for i := range 10 {
		data := tinySnapshot(1698800000+float64(i*5), 5+i)
		want.Add(t, data)
		put(fmt.Sprintf("hist/2023/11/02/snap-%02d.json", i), data)
	}
	const files, batches = 15, 5 // 3 a batch
	limits := backfillLimits(3, 4)
	one := serveStack(t, db, b, limits, nil)
	two := serveStack(t, db, b, limits, nil)

	for _, c := range []struct{ method, path string }{{"POST", "/api/v1/backfills"}, {"GET", "/api/v1/backfills/0123456789abcdef01234567"}, {"DELETE", "/api/v1/backfills/0123456789abcdef01234567"}} {
		if status, _, _ := call(t, c.method, one+c.path, `{"prefix": "hist/"}`, true); status != http.StatusUnauthorized {
			t.Errorf("%s %s without a token: %d, want 401", c.method, c.path, status)
		}
	}
	if status, body, _ := call(t, "POST", one+"/api/v1/backfills", map[string]string{"prefix": "hist/", "from": "2023-11-02"}); status != http.StatusUnprocessableEntity {
		t.Errorf("a range without its end: %d %v", status, body)
	}

	status, started, hdr := call(t, "POST", one+"/api/v1/backfills", map[string]string{"prefix": "hist/"})
	if status != http.StatusCreated || hdr.Get("Location") == "" {
		t.Fatalf("POST /api/v1/backfills: %d %v", status, started)
	}
	// A live run of the same prefix at the same time.
	if status, body, _ := call(t, "POST", one+"/process-s3-data?prefix=hist/", nil); status != http.StatusOK {
		t.Fatalf("POST /process-s3-data: %d %v", status, body)
	}
	got := waitBackfill(t, one+hdr.Get("Location"))
	_, other, _ := call(t, "GET", two+hdr.Get("Location"), nil)
	if !equalJSON(got, other) {
		t.Errorf("the second server answers\n%v\nthe first\n%v", other, got)
	}
	if got["state"] != "succeeded" || got["listing_done"] != true || got["batches_listed"] != float64(batches) ||
		got["batches_done"] != float64(batches) || got["batches_failed"] != float64(0) || got["files"] != float64(files) {
		t.Errorf("backfill: %v; want succeeded, %d batches, %d files", got, batches, files)
	}
	if cost := got["estimated_cost_usd"].(float64); got["bytes"] != float64(0) && !near(cost, backfillCost(int64(got["bytes"].(float64)), files, batches)) {
		t.Errorf("estimated cost %v, want %v", cost, backfillCost(int64(got["bytes"].(float64)), files, batches))
	}

	// Each file counts once, and the statistics are the oracle's.
	for icao, w := range want {
		s, err := db.Stats(ctx, icao)
		if err != nil {
			t.Fatalf("%s: %v", icao, err)
		}
		for _, d := range w.Diff(*s) {
			t.Error(d)
		}
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var keys, aircraft int
	if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM ingested_objects), (SELECT count(*) FROM aircraft_stats)`).Scan(&keys, &aircraft); err != nil || keys != files || aircraft != len(want) {
		t.Errorf("ledger %d keys, %d aircraft (%v); want %d, %d", keys, aircraft, err, files, len(want))
	}

	// One POST /process-s3-data over the same files in another database.
	db2, _ := stacktest.DB(t)
	single := serveStack(t, db2, b, limits, nil)
	if status, body, _ := call(t, "POST", single+"/process-s3-data?prefix=hist/", nil); status != http.StatusOK || body["observations"] != float64(want.Observations()) {
		t.Fatalf("single run: %d %v; want %d observations", status, body, want.Observations())
	}
	for icao, w := range want {
		s2, err := db2.Stats(ctx, icao)
		if err != nil {
			t.Fatalf("single run: %s: %v", icao, err)
		}
		for _, d := range w.Diff(*s2) { // the oracle's tolerance for sums added in another order
			t.Error("single run: " + d)
		}
	}
}

// equalJSON reports whether a and b marshal alike.
func equalJSON(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}

func near(a, b float64) bool { return a-b < 1e-6 && b-a < 1e-6 }

// DELETE stops a running backfill: the batch under way ends whole, no other starts, and the ledger holds exactly the
// keys of the batches done.
func TestBackfillDeleteStops(t *testing.T) {
	ctx := context.Background()
	b := stacktest.Bucket(t)
	db, dbURL := stacktest.DB(t)
	var keys []string
	for i := range 10 {
		key := fmt.Sprintf("h/snap-%02d.json", i)
		stacktest.Put(t, b, key, tinySnapshot(1698800000+float64(i*5), 3))
		keys = append(keys, key)
	}
	h := inprocesstest.NewHoldSecond(nil, 10)
	url := serveStack(t, db, b, backfillLimits(2, 1), func(p inprocess.Processor) inprocess.Processor { h.Processor = p; return h })
	status, body, hdr := call(t, "POST", url+"/api/v1/backfills", map[string]string{"prefix": "h/"})
	if status != http.StatusCreated {
		t.Fatalf("POST: %d %v", status, body)
	}
	<-h.Second
	status, body, _ = call(t, "DELETE", url+hdr.Get("Location"), nil)
	if status != http.StatusOK || body["stop_requested"] != true {
		t.Fatalf("DELETE: %d %v", status, body)
	}
	close(h.Released)
	got := waitBackfill(t, url+hdr.Get("Location"))
	if got["state"] != "stopped" || got["batches_done"] != float64(2) || got["files"] != float64(4) {
		t.Errorf("stopped backfill: %v; want stopped after 2 batches of 2 files", got)
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, _ := conn.Query(ctx, `SELECT key FROM ingested_objects ORDER BY key`)
	ledger, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || !slices.Equal(ledger, keys[:4]) {
		t.Errorf("ledger %v (%v), want the keys of the two batches done %v", ledger, err, keys[:4])
	}
	if status, _, _ := call(t, "GET", url+"/api/v1/backfills/0123456789abcdef01234567", nil); status != http.StatusNotFound {
		t.Errorf("an unknown backfill: %d", status)
	}
}

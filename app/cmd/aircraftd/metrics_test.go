package main

// Metrics on the real local stack: a real ingest and a real download move the counters by what the files say (counted
// here from the files, not from the service), and /metrics is served on METRICS_ADDR only, never on the public
// listener.

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aircraftdata/platform/app/internal/stacktest"
)

// freeAddr is a loopback address with a port free now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// scrape returns the value of each series of the metrics at url, by its exposition name with labels
// (`name{label="value"}`).
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("scrape: %d %s", resp.StatusCode, b)
	}
	series := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("scrape: line %q: %v", line, err)
		}
		series[line[:i]] = v
	}
	return series
}

func TestMetricsCountARealIngestAndDownload(t *testing.T) {
	env, _, b := stackEnv(t)
	var wantBytes int64
	for _, n := range ingestSamples {
		body := stacktest.Sample(t, n)
		wantBytes += int64(len(body))
		stacktest.Put(t, b, n, body)
	}
	stacktest.Put(t, b, "20231101-000800Z.json", []byte(`{"now": 1698797280, "aircraft": [{"hex": "abc123"`)) // truncated: corrupt
	env["METRICS_ADDR"] = freeAddr(t)
	d := startDaemon(t, env)
	url := "http://" + env["METRICS_ADDR"] + "/metrics"

	before := scrape(t, url)
	if status, m, _ := d.call(t, "POST", "/process-s3-data", nil, 2*time.Minute); status != http.StatusOK {
		t.Fatalf("ingest: %d %v", status, m)
	}
	const files, size = 3, 64 << 10
	laneHour(t, b, files, size) // after the ingest, which reads the whole bucket
	if status, m, _ := d.call(t, "POST", "/api/v1/files/index", map[string]any{"prefix": "lanes/"}, time.Minute); status != http.StatusOK {
		t.Fatalf("index: %d %v", status, m)
	}
	hour := map[string]any{"lane_id": "lane1", "hour": 14, "date": "2024-02-14"}
	if status, m, _ := d.call(t, "POST", "/api/v1/download", hour, 2*time.Minute); status != http.StatusOK || m["success_count"] != float64(files) {
		t.Fatalf("download: %d %v", status, m)
	}
	after := scrape(t, url)

	for series, want := range map[string]float64{
		`aircraft_ingest_files_total{outcome="ingested"}`:                                   float64(len(ingestSamples)),
		`aircraft_ingest_files_total{outcome="quarantined"}`:                                1,
		`aircraft_ingest_quarantined_total{reason="corrupt"}`:                               1,
		`aircraft_ingest_bytes_total`:                                                       float64(wantBytes),
		`aircraft_download_files_total{outcome="downloaded"}`:                               files,
		`aircraft_download_bytes_total`:                                                     files * size,
		`aircraft_download_hour_seconds_count`:                                              1,
		`aircraft_http_requests_total{method="POST",route="/process-s3-data",status="200"}`: 1,
		`aircraft_http_requests_total{method="POST",route="/api/v1/download",status="200"}`: 1,
	} {
		if got := after[series] - before[series]; got != want {
			t.Errorf("%s moved by %v, want %v", series, got, want)
		}
	}
	if after[`aircraft_ingest_batch_commit_seconds_count`] < 1 {
		t.Error("no batch commit observed")
	}
	if after[`aircraft_db_pool_max_connections{pool="read",store="postgres"}`] != 2 {
		t.Errorf("postgres read pool max: %v, want DB_READ_MAX_CONNS=2", after[`aircraft_db_pool_max_connections{pool="read",store="postgres"}`])
	}
	if _, ok := after[`aircraft_db_pool_acquired_connections{pool="work",store="mongodb"}`]; !ok {
		t.Error("no mongodb pool stats")
	}
	if after[`aircraft_build_info{version="dev"}`] != 1 {
		t.Error("no build info of version dev")
	}
	for series := range after {
		if strings.Contains(series, "abc123") || strings.Contains(series, "lanes/") || strings.Contains(series, ".json") {
			t.Errorf("a key or icao is a label: %s", series)
		}
	}
}

// TestMetricsNotOnThePublicListener: by default /metrics is not served on the API's listener (404 like any unknown
// path), only on METRICS_ADDR.
func TestMetricsNotOnThePublicListener(t *testing.T) {
	env, _, _ := stackEnv(t)
	env["METRICS_ADDR"] = freeAddr(t)
	d := startDaemon(t, env)
	resp, err := http.Get(d.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || strings.Contains(string(body), "aircraft_") {
		t.Errorf("public listener /metrics: %d %.200s; want 404", resp.StatusCode, body)
	}
	if got := scrape(t, "http://"+env["METRICS_ADDR"]+"/metrics"); got[`aircraft_http_requests_total{method="GET",route="unmatched",status="404"}`] != 1 {
		t.Errorf("the public 404 is not counted as unmatched: %v", got[`aircraft_http_requests_total{method="GET",route="unmatched",status="404"}`])
	}
}

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aircraftdata/platform/app/internal/stacktest"
)

// A flood of anonymous reads on every GET, from many client addresses (X-Forwarded-For through a trusted proxy) while
// an ingestion and a download run: both finish exactly, no read answers 5xx, /api/v1/ready answers 200 throughout, and
// the flood meets the rate limit (429 with Retry-After). The statistics endpoint's p99 is logged, never asserted.
func TestReadFloodDoesNotHurtTheWork(t *testing.T) {
	env, store, b := stackEnv(t)
	for _, n := range ingestSamples {
		stacktest.Put(t, b, n, stacktest.Sample(t, n))
	}
	const files = 6
	data, sums := laneHour(t, b, files, 256<<10)
	const readToken = "flood-read-token"
	env["TRUSTED_PROXIES"], env["READ_TOKEN"] = "127.0.0.1", readToken
	env["RATE_LIMIT_PER_SECOND"], env["RATE_LIMIT_BURST"] = "5", "10"
	d := startDaemon(t, env)
	if status, m, _ := d.call(t, "POST", "/api/v1/files/index", map[string]any{"prefix": "lanes/"}, time.Minute); status != 200 || m["added"] != float64(files) {
		t.Fatalf("index: %d %v", status, m)
	}
	var sample struct {
		Aircraft []struct {
			Hex string `json:"hex"`
		} `json:"aircraft"`
	}
	if err := json.Unmarshal(stacktest.Sample(t, ingestSamples[0]), &sample); err != nil || len(sample.Aircraft) == 0 {
		t.Fatalf("sample: %v", err)
	}
	statsPath := "/aircraft-stats/" + strings.ToLower(sample.Aircraft[0].Hex)
	gets := []string{
		statsPath, "/api/v1/aircraft?limit=1000", "/api/v1/files?limit=10000&status=pending", "/api/v1/files?lane_id=lane1",
		"/api/v1/ingestion/failed?limit=1000", "/api/v1/jobs/0123456789abcdef01234567", "/api/v1/ready", "/api/v1/health",
		"/openapi.json", "/docs",
	}

	// The flood: 64 clients, four per address, each reads every GET in turn (half of them with the read token) until
	// the work is done.
	const clients = 64
	done := make(chan struct{})
	var (
		mu       sync.Mutex
		statuses = map[string]map[int]int{} // path → status → count
		statsLat []time.Duration            // of the statistics' answers (200, or 404 before the ingestion commits)
		noRetry  atomic.Int64               // 429s without Retry-After
		failures []string
	)
	transport := &http.Transport{MaxIdleConnsPerHost: clients}
	defer transport.CloseIdleConnections()
	hc := &http.Client{Transport: transport, Timeout: 30 * time.Second}
	var flood sync.WaitGroup
	for i := range clients {
		flood.Go(func() {
			addr := fmt.Sprintf("198.51.100.%d", i/4)
			for n := 0; ; n++ {
				select {
				case <-done:
					return
				default:
				}
				p := gets[(n+i)%len(gets)]
				req, _ := http.NewRequest("GET", d.url+p, nil)
				req.Header.Set("X-Forwarded-For", addr)
				if i%2 == 0 {
					req.Header.Set("Authorization", "Bearer "+readToken)
				}
				start := time.Now()
				resp, err := hc.Do(req)
				if err != nil {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("GET %s: %v", p, err))
					mu.Unlock()
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				took := time.Since(start)
				if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
					noRetry.Add(1)
				}
				mu.Lock()
				if statuses[p] == nil {
					statuses[p] = map[int]int{}
				}
				statuses[p][resp.StatusCode]++
				if p == statsPath && (resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusNotFound) {
					statsLat = append(statsLat, took)
				}
				mu.Unlock()
			}
		})
	}

	// The work, under the flood: a synchronous ingestion and download.
	type answer struct {
		status int
		body   []byte
	}
	post := func(path, body string) answer {
		req, _ := http.NewRequest("POST", d.url+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+shutdownToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := (&http.Client{Timeout: 3 * time.Minute}).Do(req)
		if err != nil {
			return answer{body: []byte(err.Error())}
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return answer{resp.StatusCode, raw}
	}
	time.Sleep(200 * time.Millisecond) // the flood is on before the work starts
	var ingest, download answer
	var work sync.WaitGroup
	work.Go(func() { ingest = post("/process-s3-data", "") })
	work.Go(func() { download = post("/api/v1/download", `{"lane_id": "lane1", "hour": 14, "date": "2024-02-14"}`) })
	work.Wait()
	time.Sleep(time.Second) // and reads the statistics committed
	close(done)
	flood.Wait()

	if ingest.status != http.StatusOK {
		t.Errorf("ingestion under the flood: %d %s", ingest.status, ingest.body)
	}
	checkExactStatistics(t, env["DATABASE_URL"])
	var res struct {
		SuccessCount int   `json:"success_count"`
		Failures     []any `json:"failures"`
	}
	if err := json.Unmarshal(download.body, &res); download.status != http.StatusOK || err != nil || res.SuccessCount != files || len(res.Failures) != 0 {
		t.Errorf("download under the flood: %d %s", download.status, download.body)
	}
	checkHourOnDisk(t, store, filepath.Join(env["DOWNLOAD_PATH"], "lane1", "2024", "02", "14", "14"), data, sums)

	for _, f := range failures {
		t.Error(f)
	}
	limited := 0
	for p, byStatus := range statuses {
		for status, n := range byStatus {
			if status >= 500 {
				t.Errorf("GET %s answered %d %d times", p, status, n)
			}
			if p == "/api/v1/ready" && status != http.StatusOK {
				t.Errorf("/api/v1/ready answered %d %d times under the flood", status, n)
			}
			if status == http.StatusTooManyRequests {
				limited += n
			}
		}
		t.Logf("GET %s: %v", p, byStatus)
	}
	if limited == 0 {
		t.Error("no request of the flood was rate-limited (429)")
	}
	if n := noRetry.Load(); n > 0 {
		t.Errorf("%d answers 429 without Retry-After", n)
	}
	for _, p := range []string{"/api/v1/files?limit=10000&status=pending", "/api/v1/ingestion/failed?limit=1000"} {
		if statuses[p][http.StatusUnauthorized] == 0 || statuses[p][http.StatusOK] == 0 {
			t.Errorf("GET %s: %v, want 401 without a token and 200 with the read token", p, statuses[p])
		}
	}
	if len(statsLat) == 0 {
		t.Fatal("no statistics read was answered under the flood")
	}
	slices.Sort(statsLat)
	t.Logf("statistics under the flood: %d answers (%v), p50 %v, p99 %v, max %v", len(statsLat), statuses[statsPath],
		statsLat[len(statsLat)/2], statsLat[len(statsLat)*99/100], statsLat[len(statsLat)-1])
	d.stop(t)
}

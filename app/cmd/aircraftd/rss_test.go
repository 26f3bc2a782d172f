package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aircraftdata/platform/app/internal/stacktest"
)

// The memory figure of the README: peak RSS of aircraftd while 30 async downloads of large files (one 32 MiB file per
// lane hour, fetched in parallel ranges) run at once. It moves a GB, so it runs only when asked (AIRCRAFT_RSS_FIGURE=1,
// without -race: the race detector multiplies memory); it fails above 150 MiB.
func TestPeakRSSWithThirtyAsyncDownloads(t *testing.T) {
	if os.Getenv("AIRCRAFT_RSS_FIGURE") != "1" {
		t.Skip("set AIRCRAFT_RSS_FIGURE=1 to measure (moves about 1 GB)")
	}
	env, _, b := stackEnv(t)
	const lanesN, size = 30, 32 << 20
	for i := range lanesN {
		data := bytes.Repeat([]byte(fmt.Sprintf("lane%02d-", i)), size/7+1)[:size]
		stacktest.Put(t, b, fmt.Sprintf("lanes/lane%02d/2024/02/14/14/big.bin", i), data)
	}
	d := startDaemon(t, env)
	if status, m, _ := d.call(t, "POST", "/api/v1/files/index", map[string]any{"prefix": "lanes/"}, time.Minute); status != 200 || m["added"] != float64(lanesN) {
		t.Fatalf("index: %d %v", status, m)
	}
	start := time.Now()
	locations := make([]string, lanesN)
	var wg sync.WaitGroup
	for i := range lanesN {
		wg.Go(func() {
			status, _, hdr := d.call(t, "POST", "/api/v1/download?async=true",
				map[string]any{"lane_id": fmt.Sprintf("lane%02d", i), "hour": 14, "date": "2024-02-14"}, time.Minute)
			if status != http.StatusAccepted {
				t.Errorf("download %d: %d", i, status)
			}
			locations[i] = hdr.Get("Location")
		})
	}
	wg.Wait()
	for _, loc := range locations {
		for {
			_, job, _ := d.call(t, "GET", loc, nil, time.Minute)
			if job["state"] != "running" {
				if res, _ := job["result"].(map[string]any); job["state"] != "succeeded" || res["success_count"] != 1.0 {
					t.Errorf("job %s: %v", loc, job)
				}
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	var hwm int
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			hwm, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	d.stop(t)
	t.Logf("30 concurrent async downloads of 32 MiB files: %.1f s, peak RSS %.1f MiB", time.Since(start).Seconds(), float64(hwm)/1024)
	if hwm == 0 || hwm > 150<<10 {
		t.Errorf("peak RSS %d kB, want at most 150 MiB", hwm)
	}
}

package main

// Ingestion under faults, on the real local stack: aircraftd killed mid-run, and PostgreSQL stopped mid-run (a
// throwaway cluster of the test's own, never the shared one).

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aircraftdata/platform/app/internal/stacktest"
)

var ingestSamples = []string{"20231101-000030Z.json", "20231101-000315Z.json", "20231101-000700Z.json.gz"}

// checkExactStatistics compares the stored statistics with the samples: observations and aircraft counted straight from
// the files.
func checkExactStatistics(t *testing.T, dbURL string) {
	t.Helper()
	wantObs, wantAircraft := 0, map[string]bool{}
	for _, n := range ingestSamples {
		var doc struct {
			Aircraft []struct {
				Hex string `json:"hex"`
			} `json:"aircraft"`
		}
		if err := json.Unmarshal(stacktest.Sample(t, n), &doc); err != nil {
			t.Fatal(err)
		}
		wantObs += len(doc.Aircraft)
		for _, a := range doc.Aircraft {
			wantAircraft[strings.ToLower(a.Hex)] = true
		}
	}
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var obs, aircraft int
	if err := conn.QueryRow(context.Background(), `SELECT coalesce(sum(observations), 0), count(*) FROM aircraft_stats`).Scan(&obs, &aircraft); err != nil {
		t.Fatal(err)
	}
	if obs != wantObs || aircraft != len(wantAircraft) {
		t.Errorf("%d observations of %d aircraft stored, want %d of %d", obs, aircraft, wantObs, len(wantAircraft))
	}
}

// ingestInBackground posts a synchronous ingestion and answers its status (0 when the connection broke).
func ingestInBackground(d *daemon) <-chan int {
	status := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", d.url+"/process-s3-data", nil)
		req.Header.Set("Authorization", "Bearer "+shutdownToken)
		resp, err := (&http.Client{Timeout: 2 * time.Minute}).Do(req)
		if err != nil {
			status <- 0
			return
		}
		resp.Body.Close()
		status <- resp.StatusCode
	}()
	return status
}

func waitForGets(t *testing.T, gets *atomic.Int64) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for gets.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no file fetched in a minute")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// SIGKILL mid-ingest: nothing of the run is half-committed, the advisory lock dies with the process (the rerun is not
// refused 409), and the rerun gives exact statistics.
func TestSIGKILLMidIngestThenRerunIsExact(t *testing.T) {
	env, _, b := stackEnv(t)
	for _, n := range ingestSamples {
		stacktest.Put(t, b, n, stacktest.Sample(t, n))
	}
	endpoint, gets := throttled(t)
	slow := map[string]string{"S3_ENDPOINT": endpoint, "INGEST_WORKERS": "1"}
	for k, v := range env {
		slow[k] = v
	}
	d := startDaemon(t, slow)
	answered := ingestInBackground(d)
	waitForGets(t, gets)
	if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-d.done
	d.done <- nil
	if status := <-answered; status != 0 {
		t.Errorf("the request answered %d though its process was killed", status)
	}

	d2 := startDaemon(t, env)
	if status, m, _ := d2.call(t, "POST", "/process-s3-data", nil, 2*time.Minute); status != http.StatusOK || m["files_ingested"] != float64(len(ingestSamples)) {
		t.Errorf("rerun: %d %v", status, m)
	}
	d2.stop(t)
	checkExactStatistics(t, env["DATABASE_URL"])
}

// throwawayPostgres starts a PostgreSQL cluster of the test's own (initdb on a free port, as the postgres user when run
// as root) and returns its URL and functions to stop and start it again.
func throwawayPostgres(t *testing.T) (dbURL string, stop, start func()) {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		if os.Getenv("AIRCRAFT_STACK") == "1" {
			t.Fatal("no PostgreSQL server binaries (/usr/lib/postgresql/*/bin) although AIRCRAFT_STACK=1")
		}
		t.Skip("no PostgreSQL server binaries (/usr/lib/postgresql/*/bin)")
	}
	bin := filepath.Dir(bins[len(bins)-1])
	dir, err := os.MkdirTemp("", "aircraft-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	asPostgres := func(name string, args ...string) *exec.Cmd {
		if os.Geteuid() == 0 { // initdb and postgres refuse to run as root
			return exec.Command("runuser", append([]string{"-u", "postgres", "--", filepath.Join(bin, name)}, args...)...)
		}
		return exec.Command(filepath.Join(bin, name), args...)
	}
	if os.Geteuid() == 0 {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("chown", "postgres", dir).CombinedOutput(); err != nil {
			t.Fatalf("chown: %v %s", err, out)
		}
	}
	data := filepath.Join(dir, "data")
	if out, err := asPostgres("initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", port, dir)
	start = func() {
		if out, err := asPostgres("pg_ctl", "-D", data, "-o", opts, "-l", filepath.Join(dir, "log"), "-w", "start").CombinedOutput(); err != nil {
			t.Fatalf("pg_ctl start: %v\n%s", err, out)
		}
	}
	stop = func() {
		if out, err := asPostgres("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop").CombinedOutput(); err != nil {
			t.Fatalf("pg_ctl stop: %v\n%s", err, out)
		}
	}
	start()
	t.Cleanup(func() { _ = asPostgres("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop").Run() })
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port), stop, start
}

// PostgreSQL stopped mid-ingest: the run fails (503 naming postgres), the process stays up, /ready says postgres is
// unavailable, then ready again once PostgreSQL is back, without a restart; a rerun is exact.
func TestPostgresStoppedMidIngest(t *testing.T) {
	env, _, b := stackEnv(t)
	dbURL, stopPG, startPG := throwawayPostgres(t)
	env["DATABASE_URL"] = dbURL
	for _, n := range ingestSamples {
		stacktest.Put(t, b, n, stacktest.Sample(t, n))
	}
	endpoint, gets := throttled(t)
	env["S3_ENDPOINT"], env["INGEST_WORKERS"] = endpoint, "1"
	d := startDaemon(t, env)
	answered := ingestInBackground(d)
	waitForGets(t, gets)
	stopPG()
	if status := <-answered; status != http.StatusServiceUnavailable {
		t.Errorf("the run with PostgreSQL gone: %d, want 503", status)
	}
	if status, _, _ := d.call(t, "GET", "/api/v1/health", nil, 10*time.Second); status != http.StatusOK {
		t.Errorf("health with PostgreSQL gone: %d (the process should stay up)", status)
	}
	status, m, _ := d.call(t, "GET", "/api/v1/ready", nil, 10*time.Second)
	if checks, _ := m["checks"].(map[string]any); status != http.StatusServiceUnavailable || checks["postgres"] != "unavailable" || checks["s3"] != "ok" {
		t.Errorf("ready with PostgreSQL gone: %d %v", status, m)
	}

	startPG()
	deadline := time.Now().Add(time.Minute)
	for {
		status, m, _ = d.call(t, "GET", "/api/v1/ready", nil, 10*time.Second)
		if status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready a minute after PostgreSQL came back: %d %v", status, m)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if status, m, _ := d.call(t, "POST", "/process-s3-data", nil, 2*time.Minute); status != http.StatusOK {
		t.Errorf("rerun: %d %v", status, m)
	}
	d.stop(t)
	checkExactStatistics(t, dbURL)
}

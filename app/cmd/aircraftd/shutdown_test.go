package main

// Shutdown on the real local stack: aircraftd runs as a process of its own (this test binary, re-executed to run main)
// and gets a real SIGTERM while it works. S3 is reached through a throttling proxy, so that the work is still under way
// when the signal comes.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aircraftdata/platform/app/internal/bucket"
	"github.com/aircraftdata/platform/app/internal/lanes"
	"github.com/aircraftdata/platform/app/internal/mongo"
	"github.com/aircraftdata/platform/app/internal/mongo/mongotest"
	"github.com/aircraftdata/platform/app/internal/stacktest"
)

func TestMain(m *testing.M) {
	if os.Getenv("AIRCRAFTD_TEST_RUN_MAIN") == "1" {
		os.Args = os.Args[:1] // the test flags are not aircraftd's
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// lockedBuffer collects a process's output.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

type daemon struct {
	cmd  *exec.Cmd
	url  string
	logs *lockedBuffer
	done chan error
}

// startDaemon runs aircraftd with the stack's variables and env on top, and waits until it answers.
func startDaemon(t *testing.T, env map[string]string) *daemon {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	// METRICS_ADDR on an ephemeral port: instances of a test never collide (a test that scrapes sets its own).
	cmd.Env = append(os.Environ(), "AIRCRAFTD_TEST_RUN_MAIN=1", "HTTP_ADDR="+addr, "TLS_DISABLE=true", "REDIRECT_ADDR=", "METRICS_ADDR=127.0.0.1:0")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	d := &daemon{cmd: cmd, url: "http://" + addr, logs: new(lockedBuffer), done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = d.logs, d.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-d.done
		if t.Failed() {
			t.Logf("aircraftd's log:\n%s", d.logs.String())
		}
	})
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get(d.url + "/api/v1/health")
		if err == nil {
			resp.Body.Close()
			return d
		}
		select {
		case err := <-d.done:
			d.done <- err
			t.Fatalf("aircraftd exited at start: %v\n%s", err, d.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("aircraftd did not answer in a minute:\n%s", d.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (d *daemon) stop(t *testing.T) {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-d.done:
		d.done <- err
		if err != nil {
			t.Errorf("aircraftd exited with %v after SIGTERM", err)
		}
	case <-time.After(90 * time.Second):
		t.Fatalf("aircraftd still running 90 s after SIGTERM")
	}
	// What a use of a closed client logs (mongo driver, pgx pool, os.Root).
	for _, s := range []string{"client is disconnected", "closed pool", "file already closed", "use of closed"} {
		if strings.Contains(d.logs.String(), s) {
			t.Errorf("the log shows a use of a closed client (%q)", s)
		}
	}
	if !strings.Contains(d.logs.String(), `"msg":"stopped"`) {
		t.Error("no 'stopped' at the end of the log")
	}
}

func (d *daemon) call(t *testing.T, method, path string, body any, timeout time.Duration) (int, map[string]any, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, d.url+path, rd)
	req.Header.Set("Authorization", "Bearer "+shutdownToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: timeout}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var m map[string]any
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, m, resp.Header
}

const shutdownToken = "shutdown-test-token"

// throttled is a proxy to the stack's S3 server whose large responses trickle at about 512 KiB/s; gets counts the
// object bodies it served (large GETs; not HEADs, whose Content-Length is the object's).
func throttled(t *testing.T) (endpoint string, gets *atomic.Int64) {
	t.Helper()
	target, err := url.Parse(stacktest.Env(t, "S3_ENDPOINT"))
	if err != nil {
		t.Fatal(err)
	}
	gets = new(atomic.Int64)
	p := httputil.NewSingleHostReverseProxy(target)
	p.ModifyResponse = func(r *http.Response) error {
		if r.Request.Method == http.MethodGet && r.ContentLength > 64<<10 {
			gets.Add(1)
			r.Body = slowBody{r.Body}
		}
		return nil
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return srv.URL, gets
}

type slowBody struct{ io.ReadCloser }

func (s slowBody) Read(p []byte) (int, error) {
	time.Sleep(30 * time.Millisecond)
	return s.ReadCloser.Read(p[:min(len(p), 16<<10)])
}

// stackEnv is a database, bucket and Mongo database of the test's own.
func stackEnv(t *testing.T) (map[string]string, *mongo.Store, bucket.Bucket) {
	t.Helper()
	b := stacktest.Bucket(t)
	db := mongotest.NewDB(t)
	store := db.Store(t)
	return map[string]string{
		"DATABASE_URL": stacktest.Postgres(t), "S3_BUCKET": b.Name, "SOURCE_BUCKET": b.Name,
		"MONGODB_DB_NAME": db.Name, "DOWNLOAD_PATH": t.TempDir(), "API_TOKEN": shutdownToken,
		"SHUTDOWN_GRACE_SECONDS": "1", "LOG_LEVEL": "info",
	}, store, b
}

// SIGTERM during an async download: the job ends failed with the reason shutdown, no record is left downloading (the
// files not done are failed, reason shutdown), and the hour's claim is let go: a new download of the hour starts at
// once (its lease is two minutes; the client waits one).
func TestSIGTERMDuringAsyncDownload(t *testing.T) {
	env, store, b := stackEnv(t)
	endpoint, gets := throttled(t)
	const files = 6
	for i := range files {
		stacktest.Put(t, b, fmt.Sprintf("lanes/lane1/2024/02/14/14/f%d.bin", i), bytes.Repeat([]byte{byte('a' + i)}, 1<<20))
	}
	slow := map[string]string{"S3_ENDPOINT": endpoint, "DOWNLOAD_WORKERS": "2"}
	for k, v := range env {
		slow[k] = v
	}
	d := startDaemon(t, slow)
	if status, m, _ := d.call(t, "POST", "/api/v1/files/index", map[string]any{"prefix": "lanes/"}, time.Minute); status != 200 || m["added"] != float64(files) {
		t.Fatalf("index: %d %v", status, m)
	}
	hour := map[string]any{"lane_id": "lane1", "hour": 14, "date": "2024-02-14"}
	status, job, hdr := d.call(t, "POST", "/api/v1/download?async=true", hour, time.Minute)
	if status != http.StatusAccepted {
		t.Fatalf("async download: %d %v", status, job)
	}
	deadline := time.Now().Add(time.Minute)
	for gets.Load() == 0 { // a file is on its way
		if time.Now().After(deadline) {
			t.Fatal("no file fetched in a minute")
		}
		time.Sleep(10 * time.Millisecond)
	}
	d.stop(t)
	if !strings.Contains(d.logs.String(), `"job":"`+fmt.Sprint(job["id"])+`","kind":"download"`) ||
		!strings.Contains(d.logs.String(), `"state":"failed","error":"shutdown"`) {
		t.Errorf("the log does not show the job ending failed: shutdown (job %v, Location %s)", job["id"], hdr.Get("Location"))
	}
	order := []string{"shutting down: no new connections", "shutting down: stopping jobs", "job ended", "shutting down: closing", `"msg":"stopped"`}
	at := -1
	for _, s := range order {
		i := strings.Index(d.logs.String(), s)
		if i < at {
			t.Errorf("the log says %q out of order %v", s, order)
		}
		at = i
	}

	recs, err := store.List(context.Background(), lanes.Query{LaneID: "lane1"})
	if err != nil || len(recs) != files {
		t.Fatalf("records: %d, %v", len(recs), err)
	}
	failed := 0
	for _, r := range recs {
		switch {
		case r.Status == lanes.Failed && r.LastError == "shutdown":
			failed++
		case r.Status != lanes.Downloaded && r.Status != lanes.Pending:
			t.Errorf("%s: %s %q after SIGTERM; want downloaded, or failed: shutdown", r.Key, r.Status, r.LastError)
		}
	}
	if failed == 0 {
		t.Error("no file was interrupted: the test did not stop a download under way")
	}

	// A new download of the hour, at full speed, starts at once.
	d2 := startDaemon(t, env)
	status, res, _ := d2.call(t, "POST", "/api/v1/download", hour, time.Minute)
	if status != http.StatusOK || res["success_count"] != float64(files) {
		t.Errorf("download after the restart: %d %v", status, res)
	}
	d2.stop(t)
}

// SIGTERM during a synchronous ingestion: the request is cancelled after the grace period and answered 503 naming the
// shutdown, the process exits cleanly, and a rerun gives exact statistics.
func TestSIGTERMDuringSynchronousIngest(t *testing.T) {
	env, _, b := stackEnv(t)
	endpoint, gets := throttled(t)
	for _, n := range ingestSamples {
		stacktest.Put(t, b, n, stacktest.Sample(t, n))
	}
	slow := map[string]string{"S3_ENDPOINT": endpoint, "INGEST_WORKERS": "1"}
	for k, v := range env {
		slow[k] = v
	}
	d := startDaemon(t, slow)
	type answer struct {
		status int
		body   map[string]any
	}
	answers := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequest("POST", d.url+"/process-s3-data", nil)
		req.Header.Set("Authorization", "Bearer "+shutdownToken)
		var a answer
		if resp, err := (&http.Client{Timeout: 2 * time.Minute}).Do(req); err == nil {
			a.status = resp.StatusCode
			_ = json.NewDecoder(resp.Body).Decode(&a.body)
			resp.Body.Close()
		}
		answers <- a
	}()
	deadline := time.Now().Add(time.Minute)
	for gets.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no file fetched in a minute")
		}
		time.Sleep(10 * time.Millisecond)
	}
	d.stop(t)
	a := <-answers
	if a.status != http.StatusServiceUnavailable || !strings.Contains(fmt.Sprint(a.body["detail"]), "shutdown") {
		t.Errorf("the request in flight: %d %v; want 503 naming the shutdown", a.status, a.body)
	}

	// Rerun at full speed: exact statistics.
	d2 := startDaemon(t, env)
	if status, m, _ := d2.call(t, "POST", "/process-s3-data", nil, 2*time.Minute); status != http.StatusOK {
		t.Fatalf("rerun: %d %v", status, m)
	}
	d2.stop(t)
	checkExactStatistics(t, env["DATABASE_URL"])
}

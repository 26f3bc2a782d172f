package httpapi_test

// Anonymous traffic on an open port: tokens on the listings that reveal keys and paths, a rate limit per client
// address, page caps, a deadline on every read, and a readiness answer whose cost does not depend on traffic.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aircraftdata/platform/app/internal/httpapi"
	"github.com/aircraftdata/platform/app/internal/jobs"
	"github.com/aircraftdata/platform/app/internal/ready"
)

// serveLimited serves the handlers on f with d's tokens, proxies and limits.
func serveLimited(t *testing.T, f *fakes, d httpapi.Deps) string {
	t.Helper()
	reg := jobs.NewRegistry(slog.New(slog.DiscardHandler), jobs.Limits{MaxRunning: cmp.Or(f.maxJobs, 8), KeepFinished: 100, KeepFor: time.Hour})
	t.Cleanup(func() { reg.Stop(errors.New("test over")) })
	d.Log, d.Version = slog.New(slog.DiscardHandler), "test"
	if d.Jobs == nil {
		d.Jobs = reg
	}
	d.Stats, d.Ingest = f, f
	if d.Ready == nil {
		d.Ready = refreshed(t)
	}
	d.Lanes = &httpapi.Lanes{Store: f, Downloader: f, Indexer: f}
	srv := httptest.NewServer(httpapi.NewServer(d))
	t.Cleanup(srv.Close)
	return srv.URL
}

// send makes one request from the client at forwardedFor (through a trusted proxy) with token, and answers its status,
// Retry-After and body.
func send(t *testing.T, method, url, forwardedFor, token string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/json")
	if forwardedFor != "" {
		req.Header.Set("X-Forwarded-For", forwardedFor)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After"), string(body)
}

func TestListingsNeedAToken(t *testing.T) {
	url := serveLimited(t, &fakes{}, httpapi.Deps{APITokens: []string{"api-1", "api-2"}, ReadTokens: []string{"read-1"}})
	for _, path := range []string{"/api/v1/files", "/api/v1/ingestion/failed"} {
		for token, want := range map[string]int{"": 401, "wrong": 401, "read-1": 200, "api-1": 200, "api-2": 200} {
			if status, _, body := send(t, "GET", url+path, "", token); status != want {
				t.Errorf("GET %s with token %q: %d %s, want %d", path, token, status, body, want)
			}
		}
	}
	// The read token is no token for POSTs.
	if status, _, _ := send(t, "POST", url+"/api/v1/files/index", "", "read-1"); status != http.StatusUnauthorized {
		t.Errorf("POST with the read token: %d, want 401", status)
	}
	// What reveals no key stays open.
	for _, path := range []string{"/api/v1/aircraft", "/api/v1/health", "/api/v1/ready", "/openapi.json"} {
		if status, _, body := send(t, "GET", url+path, "", ""); status != http.StatusOK {
			t.Errorf("GET %s without a token: %d %s", path, status, body)
		}
	}
	// Auth off (AUTH_DISABLE=true): open, as the POSTs are.
	url = serveLimited(t, &fakes{}, httpapi.Deps{})
	if status, _, _ := send(t, "GET", url+"/api/v1/files", "", ""); status != http.StatusOK {
		t.Errorf("auth off: GET /api/v1/files %d", status)
	}
}

func TestRateLimitPerClientAddress(t *testing.T) {
	url := serveLimited(t, &fakes{}, httpapi.Deps{
		APITokens: []string{"api-1"}, TrustedProxies: []string{"127.0.0.1"},
		Limits: httpapi.Limits{PerSecond: 1, Burst: 3, Clients: 100},
	})
	// Client A spends its burst, then is told to wait; B is not affected.
	for i := range 3 {
		if status, _, body := send(t, "GET", url+"/api/v1/aircraft", "203.0.113.1", ""); status != http.StatusOK {
			t.Fatalf("A's request %d: %d %s", i+1, status, body)
		}
	}
	status, retry, body := send(t, "GET", url+"/api/v1/aircraft", "203.0.113.1", "")
	if status != http.StatusTooManyRequests || retry != "1" || !strings.Contains(body, "too many requests") {
		t.Errorf("A's 4th request: %d Retry-After %q %s, want 429 with Retry-After 1", status, retry, body)
	}
	if status, _, _ := send(t, "GET", url+"/api/v1/no-such-path", "203.0.113.1", ""); status != http.StatusTooManyRequests {
		t.Errorf("A on an unknown path: %d, want 429", status)
	}
	if status, _, _ := send(t, "GET", url+"/api/v1/aircraft", "203.0.113.2", ""); status != http.StatusOK {
		t.Errorf("B's first request: %d", status)
	}
	// The load balancer's checks and the work (POSTs, with their token) pass.
	for _, path := range []string{"/api/v1/health", "/api/v1/ready"} {
		if status, _, _ := send(t, "GET", url+path, "203.0.113.1", ""); status != http.StatusOK {
			t.Errorf("A on %s: %d", path, status)
		}
	}
	if status, _, body := send(t, "POST", url+"/api/v1/files/index", "203.0.113.1", "api-1"); status != http.StatusOK {
		t.Errorf("A's POST: %d %s", status, body)
	}
	// An IPv6 client is one /64: another address of it shares the bucket.
	for i := range 3 {
		send(t, "GET", url+"/api/v1/aircraft", fmt.Sprintf("2001:db8:1:2::%x", i+1), "")
	}
	if status, _, _ := send(t, "GET", url+"/api/v1/aircraft", "2001:db8:1:2::ffff", ""); status != http.StatusTooManyRequests {
		t.Errorf("4th request from one /64: %d, want 429", status)
	}
	if status, _, _ := send(t, "GET", url+"/api/v1/aircraft", "2001:db8:1:3::1", ""); status != http.StatusOK {
		t.Errorf("another /64: %d", status)
	}
}

func TestForwardedForFromUntrustedPeersIsIgnored(t *testing.T) {
	url := serveLimited(t, &fakes{}, httpapi.Deps{Limits: httpapi.Limits{PerSecond: 1, Burst: 2, Clients: 100}})
	// No trusted proxy: every request is the peer's (127.0.0.1), whatever address it claims.
	for i := range 2 {
		send(t, "GET", url+"/api/v1/aircraft", fmt.Sprintf("198.51.100.%d", i), "")
	}
	if status, _, _ := send(t, "GET", url+"/api/v1/aircraft", "198.51.100.99", ""); status != http.StatusTooManyRequests {
		t.Errorf("a new X-Forwarded-For from the same peer: %d, want 429", status)
	}
}

func TestPagesAreCut(t *testing.T) {
	f := &fakes{}
	url := serveLimited(t, f, httpapi.Deps{Limits: httpapi.Limits{PageMax: 5}})
	for _, path := range []string{"/api/v1/aircraft?limit=1000", "/api/v1/files?limit=10000", "/api/v1/ingestion/failed?limit=1000"} {
		if status, _, body := send(t, "GET", url+path, "", ""); status != http.StatusOK {
			t.Errorf("%s: %d %s", path, status, body)
		}
	}
	// One more than the page, to know whether there is a next one.
	if want := []string{"/6", "failed /6"}; fmt.Sprint(f.asked) != fmt.Sprint(want) {
		t.Errorf("asked the store for %v, want %v", f.asked, want)
	}
	if len(f.queries) != 1 || f.queries[0].Limit != 6 {
		t.Errorf("file queries %+v, want one of limit 6", f.queries)
	}
	status, _, body := send(t, "GET", url+"/api/v1/files?limit=10000", "", "")
	if status != http.StatusOK || strings.Count(body, `"s3_key"`) != 5 || !strings.Contains(body, `"next":"004"`) {
		t.Errorf("files page: %d %s, want 5 records and next", status, body)
	}
}

func TestReadsHaveADeadlineAndNoDriverText(t *testing.T) {
	f := &fakes{stall: true}
	url := serveLimited(t, f, httpapi.Deps{Limits: httpapi.Limits{ReadTimeout: 100 * time.Millisecond}})
	status, _, body := send(t, "GET", url+"/aircraft-stats/abc123", "", "")
	if status != http.StatusServiceUnavailable || !strings.Contains(body, "postgres unavailable") ||
		strings.Contains(body, "10.0.3.7") || strings.Contains(body, "deadline") {
		t.Errorf("a stalled read: %d %s, want 503 naming postgres only", status, body)
	}
}

func TestReadyAnswersTheLastCheck(t *testing.T) {
	var calls atomic.Int64
	var down atomic.Bool
	check := ready.Check{Name: "postgres", Check: func(context.Context) error {
		calls.Add(1)
		if down.Load() {
			return errors.New("dial tcp 10.0.3.7:5432: connect: connection refused")
		}
		return nil
	}}
	checker := ready.New(slog.New(slog.DiscardHandler), 20*time.Millisecond, check)
	url := serveLimited(t, &fakes{}, httpapi.Deps{Ready: checker})
	// Before its first check, not ready.
	if status, _, body := send(t, "GET", url+"/api/v1/ready", "", ""); status != http.StatusServiceUnavailable {
		t.Errorf("before the first check: %d %s", status, body)
	}
	checker.Refresh(t.Context())
	for range 50 {
		if status, _, body := send(t, "GET", url+"/api/v1/ready", "", ""); status != http.StatusOK || !strings.Contains(body, `"checked_at"`) {
			t.Fatalf("ready: %d %s", status, body)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("50 answers checked the dependency %d times, want once (at the refresh)", n)
	}
	// The background refresh sees the dependency go down, with no request.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	down.Store(true)
	go checker.Run(ctx)
	for deadline := time.Now().Add(10 * time.Second); calls.Load() < 3; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no background check in 10 s")
		}
	}
	status, _, body := send(t, "GET", url+"/api/v1/ready", "", "")
	if status != http.StatusServiceUnavailable || !strings.Contains(body, `"postgres":"unavailable"`) || strings.Contains(body, "10.0.3.7") {
		t.Errorf("ready with postgres down: %d %s", status, body)
	}
}

func TestRequestsInFlightAreBounded(t *testing.T) {
	f := &fakes{stall: true}
	url := serveLimited(t, f, httpapi.Deps{APITokens: []string{"api-1"}, Limits: httpapi.Limits{InFlight: 1, ReadTimeout: 3 * time.Second}})
	first := make(chan int, 1)
	go func() { status, _, _ := send(t, "GET", url+"/aircraft-stats/abc123", "", ""); first <- status }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		f.mu.Lock()
		n := len(f.asked)
		f.mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first read never reached the store")
		}
	}
	// One read in flight: the next waits for nothing, it is told to retry.
	status, retry, body := send(t, "GET", url+"/api/v1/aircraft", "", "")
	if status != http.StatusServiceUnavailable || retry != "1" {
		t.Errorf("a second read while one is in flight: %d Retry-After %q %s, want 503 with Retry-After", status, retry, body)
	}
	// Health, readiness and the work are not counted.
	for _, path := range []string{"/api/v1/health", "/api/v1/ready"} {
		if status, _, _ := send(t, "GET", url+path, "", ""); status != http.StatusOK {
			t.Errorf("%s while a read is in flight: %d", path, status)
		}
	}
	if status, _, body := send(t, "POST", url+"/api/v1/files/index", "", "api-1"); status != http.StatusOK {
		t.Errorf("a POST while a read is in flight: %d %s", status, body)
	}
	<-first
	f.stall = false
	if status, _, _ := send(t, "GET", url+"/api/v1/aircraft", "", ""); status != http.StatusOK {
		t.Errorf("a read once the first has ended: %d", status)
	}
}

// The OpenAPI document's first requests, all at once (a flood right after a start): one document, no data race (huma
// makes it lazily without a lock; go test -race catches it).
func TestOpenAPIUnderConcurrentFirstRequests(t *testing.T) {
	url := serveLimited(t, &fakes{}, httpapi.Deps{})
	for _, path := range []string{"/openapi.json", "/openapi.yaml", "/openapi-3.0.json"} {
		bodies := make([]string, 8)
		var wg sync.WaitGroup
		for i := range bodies {
			wg.Go(func() {
				status, _, body := send(t, "GET", url+path, "", "")
				if status != http.StatusOK || len(body) < 1000 {
					t.Errorf("%s: %d, %d bytes", path, status, len(body))
				}
				bodies[i] = body
			})
		}
		wg.Wait()
		for _, b := range bodies[1:] {
			if b != bodies[0] {
				t.Errorf("%s: answers differ", path)
			}
		}
	}
}

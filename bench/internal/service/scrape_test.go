package service

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// metricsServer answers /metrics with status(hit) for the hit-th request (1-based) and signals each hit on hits.
func metricsServer(t *testing.T, status func(hit int64) int) (url string, hits chan int64) {
	t.Helper()
	var n atomic.Int64
	hits = make(chan int64, 1000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hit := n.Add(1)
		w.WriteHeader(status(hit))
		_, _ = w.Write([]byte("# TYPE x counter\nx 1\n"))
		hits <- hit
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/metrics", hits
}

// waitHits waits until the server has answered n requests, within the test's deadline.
func waitHits(t *testing.T, hits chan int64, n int64) {
	t.Helper()
	for h := int64(0); h < n; {
		select {
		case h = <-hits:
		case <-time.After(30 * time.Second):
			t.Fatalf("the server saw %d scrapes, want %d", h, n)
		}
	}
}

func TestScrapeKeepsScrapingUntilStopped(t *testing.T) {
	url, hits := metricsServer(t, func(int64) int { return http.StatusOK })
	stop, err := Scrape(context.Background(), http.DefaultClient, url, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	waitHits(t, hits, 4)
	n, err := stop() // the fourth may still be reading its answer, and is cut
	if err != nil || n < 3 {
		t.Fatalf("stop() = %d, %v; want >= 3 scrapes, no error", n, err)
	}
	// Nothing scrapes once stop has returned.
	seen := int64(len(hits))
	time.Sleep(20 * time.Millisecond)
	if extra := int64(len(hits)) - seen; extra != 0 {
		t.Fatalf("%d scrapes after stop", extra)
	}
}

func TestScrapeFailsWhenTheFirstScrapeDoes(t *testing.T) {
	url, _ := metricsServer(t, func(int64) int { return http.StatusUnauthorized })
	if _, err := Scrape(context.Background(), http.DefaultClient, url, time.Millisecond); err == nil {
		t.Fatal("Scrape of a page answering 401 did not fail")
	}
}

func TestScrapeReportsALaterFailure(t *testing.T) {
	url, hits := metricsServer(t, func(hit int64) int {
		if hit == 2 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	stop, err := Scrape(context.Background(), http.DefaultClient, url, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	waitHits(t, hits, 3)
	if n, err := stop(); err == nil {
		t.Fatalf("stop() = %d, nil; want the 500 of the second scrape", n)
	}
}

func TestScrapeMetricsOff(t *testing.T) {
	stop, err := (&Service{}).ScrapeMetrics(context.Background(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := stop(); n != 0 || err != nil {
		t.Fatalf("stop() = %d, %v for a service without metrics; want 0, nil", n, err)
	}
}

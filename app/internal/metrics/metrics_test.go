package metrics

import (
	"io"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestNamesCoverWhatIsServed: every metric family a scrape shows, once each kind of event has happened, is in Names
// (infra's dashboard checks its metric names against Names), and Names holds the pools' and the runtime's.
func TestNamesCoverWhatIsServed(t *testing.T) {
	m := New("abc123")
	m.Request("/x/:id", "GET", 200, time.Millisecond)
	m.IngestCommitted(map[string]int{"ingested": 1}, map[string]int{"corrupt": 1}, 10, 5)
	m.IngestCommit(time.Millisecond)
	m.IngestBisected()
	m.DownloadFileEnded("downloaded", 7, false)
	m.DownloadRetried(true)
	m.DownloadResumed()
	m.DownloadHour(time.Second)
	m.JobStarted("ingest")
	m.JobEnded("ingest", "succeeded")
	m.JobRefused("download")
	m.MongoPools().Monitor("work", 100)
	names := m.Names()
	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if !slices.Contains(names, f.GetName()) {
			t.Errorf("%s is served but not in Names", f.GetName())
		}
	}
	for _, want := range []string{"aircraft_http_requests_total", "aircraft_ingest_quarantined_total", "aircraft_download_bytes_total",
		"aircraft_jobs_running", "aircraft_db_pool_wait_seconds_total", "aircraft_build_info", "go_goroutines", "process_resident_memory_bytes"} {
		if !slices.Contains(names, want) {
			t.Errorf("Names lacks %s", want)
		}
	}
	if !slices.IsSorted(names) || len(slices.Compact(slices.Clone(names))) != len(names) {
		t.Error("Names is not sorted and unique")
	}
}

// TestRequestLabelsBounded: a request that matched no route is labelled "unmatched", an unknown method "other": neither
// the path nor the method a client sends becomes a label.
func TestRequestLabelsBounded(t *testing.T) {
	m := New("v")
	m.Request("", "BREW", 404, time.Millisecond)
	out := serve(t, m, "")
	if !strings.Contains(out, `aircraft_http_requests_total{method="other",route="unmatched",status="404"} 1`) {
		t.Errorf("exposition:\n%s", out)
	}
}

// TestListenerToken: with a token, a scrape without it is refused.
func TestListenerToken(t *testing.T) {
	m := New("v")
	l, err := m.Listen("127.0.0.1:0", "s3cret", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(t.Context())
	url := "http://" + l.Addr().String() + Path
	for _, c := range []struct {
		auth string
		want int
	}{{"", 401}, {"Bearer wrong", 401}, {"Basic s3cret", 401}, {"Bearer s3cret", 200}, {"bearer s3cret", 200}} {
		req, _ := http.NewRequest("GET", url, nil)
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("Authorization %q: %d, want %d", c.auth, resp.StatusCode, c.want)
		}
	}
}

func serve(t *testing.T, m *Metrics, token string) string {
	t.Helper()
	l, err := m.Listen("127.0.0.1:0", token, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(t.Context())
	resp, err := http.Get("http://" + l.Addr().String() + Path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestLocalRulesUseServedNames: the recording rules of make dev's Prometheus (scripts/internal/prom/rules.yml) name
// only metrics the service exports.
func TestLocalRulesUseServedNames(t *testing.T) {
	rules, err := os.ReadFile("../../../scripts/internal/prom/rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	names := New("v").Names()
	used := regexp.MustCompile(`\b(?:aircraft|go|process)_[a-z0-9_]+`).FindAllString(string(rules), -1)
	if len(used) < 10 {
		t.Fatalf("only %d metric names found in the rules: %q", len(used), used)
	}
	for _, n := range used {
		base := n
		for _, suffix := range []string{"_bucket", "_count", "_sum"} {
			if b, ok := strings.CutSuffix(n, suffix); ok && slices.Contains(names, b) {
				base = b
			}
		}
		if !slices.Contains(names, base) {
			t.Errorf("rules.yml uses %s, which the service does not export", n)
		}
	}
}

package prom

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestConfigScrapesTheServiceWithTheRules(t *testing.T) {
	c := Config("127.0.0.1:9464", "/x/.dev/prometheus/rules.yml")
	for _, want := range []string{"job_name: aircraftd", `targets: ["127.0.0.1:9464"]`, `- "/x/.dev/prometheus/rules.yml"`, "metrics_path: /metrics"} {
		if !strings.Contains(c, want) {
			t.Errorf("config lacks %q:\n%s", want, c)
		}
	}
	args := Args(Options{Bin: Bin, Dir: "/d", Addr: "127.0.0.1:9191"})
	for _, want := range []string{"--config.file=/d/prometheus.yml", "--storage.tsdb.path=/d/data", "--web.listen-address=127.0.0.1:9191"} {
		if !slices.Contains(args, want) {
			t.Errorf("args %q lack %q", args, want)
		}
	}
}

// missing skips a test that needs Debian's prometheus package where it is not installed, and fails it under make test
// (AIRCRAFT_STACK=1: .ci/run installs it), so CI never passes without running it.
func missing(t *testing.T, what string) {
	t.Helper()
	if os.Getenv("AIRCRAFT_STACK") == "1" {
		t.Fatalf("%s not installed although AIRCRAFT_STACK=1 (apt-get install prometheus)", what)
	}
	t.Skipf("%s not installed (apt-get install prometheus)", what)
}

// TestPromtoolAcceptsConfigAndRules checks the rendered config and the rules with Debian's promtool (installed with
// prometheus).
func TestPromtoolAcceptsConfigAndRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		missing(t, "promtool")
	}
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yml")
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(rules, []byte(Rules), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte(Config("127.0.0.1:9464", rules)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "check", "config", cfg).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
	if n := strings.Count(Rules, "- record:"); !strings.Contains(string(out), fmt.Sprintf("SUCCESS: %d rules found", n)) {
		t.Errorf("promtool did not find the %d rules:\n%s", n, out)
	}
}

// TestStartScrapesTarget runs Debian's Prometheus on ports of the test's own against a fake metrics listener and waits
// for the target to be up.
func TestStartScrapesTarget(t *testing.T) {
	if _, err := os.Stat(Bin); err != nil {
		missing(t, "prometheus")
	}
	target := listen(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("# TYPE aircraft_jobs_running gauge\naircraft_jobs_running 3\n"))
	}))
	addr := freeAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	p, err := Start(ctx, Options{Bin: Bin, Dir: dir, Addr: addr, Target: target, LogPath: filepath.Join(dir, "prometheus.log")})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(10 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/api/v1/query?query=aircraft_jobs_running")
		if err == nil {
			var b strings.Builder
			buf := make([]byte, 4096)
			n, _ := resp.Body.Read(buf)
			b.Write(buf[:n])
			resp.Body.Close()
			if strings.Contains(b.String(), `"3"`) {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("prometheus did not scrape the target within a minute; log:\n%s", p.Tail(20))
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func listen(t *testing.T, h http.Handler) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

package devstack

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/aircraftdata/platform/scripts/internal/envfile"
	"github.com/aircraftdata/platform/scripts/internal/proc"
	"github.com/aircraftdata/platform/scripts/internal/prom"
	"github.com/aircraftdata/platform/scripts/internal/service"
)

const (
	serviceAddr = "127.0.0.1:8443"
	serviceURL  = "https://localhost:8443"
	metricsAddr = "127.0.0.1:9464" // the service's METRICS_ADDR, scraped by Prometheus
)

// dev runs the stack, seeds it, and runs aircraftd over HTTPS until ctx is cancelled; then it stops the service and
// what it started of the stack.
func dev(ctx context.Context, o options, stdout, stderr io.Writer) error {
	dir := filepath.Join(o.root, ".dev")
	cert, key := filepath.Join(dir, "tls", "cert.pem"), filepath.Join(dir, "tls", "key.pem")

	// Build the service while the stack starts.
	buildCtx, cancelBuild := context.WithCancel(ctx)
	defer cancelBuild()
	var bin string
	built := make(chan error, 1)
	go func() {
		var err error
		bin, err = service.Build(buildCtx, o.root, filepath.Join(dir, "bin"))
		built <- err
	}()

	s, err := start(ctx, o, stderr)
	if err != nil {
		return err
	}
	defer s.stop(ctx)

	if err := seedAll(ctx, s, o); err != nil {
		return err
	}
	if err := <-built; err != nil {
		return err
	}
	if err := service.GenCert(ctx, bin, cert, key, []string{"localhost", "127.0.0.1"}); err != nil {
		return err
	}
	svc, err := service.Start(ctx, service.Config{
		Bin:      bin,
		Addr:     serviceAddr,
		CertFile: cert,
		KeyFile:  key,
		Env:      append(append(os.Environ(), s.env...), "METRICS_ADDR="+metricsAddr),
		LogPath:  s.LogPath("aircraftd"),
		Echo:     stdout,
	})
	if err != nil {
		return err
	}
	defer func() {
		if err := svc.Stop(15 * time.Second); err != nil {
			fmt.Fprintln(stderr, "devstack:", err)
		}
	}()

	promProc := startPrometheus(ctx, s, stderr)
	if promProc != nil {
		defer func() {
			if err := promProc.Stop(10 * time.Second); err != nil {
				fmt.Fprintln(stderr, "devstack:", err)
			}
		}()
	}

	printDevBanner(stdout, s, rel(cert), envfile.Get(s.env, "API_TOKEN"), promProc != nil)
	if err := laneSamples(ctx, o, s, cert, stdout); err != nil {
		return err
	}

	select {
	case <-ctx.Done():
		fmt.Fprintln(stderr, "\nstopping...")
		return nil
	case <-svc.Done():
		return fmt.Errorf("aircraftd exited (%v); log %s:\n%s", svc.Err(), rel(svc.LogPath), svc.Tail(20))
	}
}

// startPrometheus runs Debian's Prometheus scraping the service, installing it first if it is missing (as root on
// Debian). Without it make dev goes on: the warning says how to get it.
func startPrometheus(ctx context.Context, s *session, stderr io.Writer) *proc.Process {
	say := func(line string) { fmt.Fprintln(stderr, line) }
	if err := prom.Ensure(ctx, say); err != nil {
		say("devstack: WARNING: no Prometheus: " + err.Error())
		return nil
	}
	p, err := prom.Start(ctx, promOptions(s.Dir, s.LogPath("prometheus")))
	if err != nil {
		say("devstack: WARNING: no Prometheus: " + err.Error())
		return nil
	}
	return p
}

// promOptions are the Prometheus of make dev: files in .dev/prometheus.
func promOptions(dir, logPath string) prom.Options {
	return prom.Options{Bin: prom.Bin, Dir: filepath.Join(dir, "prometheus"), Addr: prom.Addr, Target: metricsAddr, LogPath: logPath}
}

func printDevBanner(w io.Writer, s *session, cert, token string, prometheus bool) {
	fmt.Fprintf(w, `
Local stack (state in %s, variables in %s):
`, rel(s.Dir), rel(s.EnvPath()))
	s.Describe(w)
	fmt.Fprintf(w, `  aircraftd %-16s log %s

  Swagger UI  %[3]s/docs
  ReDoc       %[3]s/redoc
  Health      %[3]s/api/v1/health
  Metrics     %[6]s
  Prometheus  %[7]s
  API token   %[4]s

Try it:
  TOKEN=%[4]s
  curl --cacert %[5]s %[3]s/api/v1/health
  curl --cacert %[5]s -H "Authorization: Bearer $TOKEN" -X POST %[3]s/process-s3-data
  curl --cacert %[5]s %[3]s/aircraft-stats/a65800
  curl --cacert %[5]s %[3]s/api/v1/aircraft

Ctrl-C stops the service and what this devstack started.
`, serviceAddr, rel(s.LogPath("aircraftd")), serviceURL, token, cert, "http://"+metricsAddr+"/metrics", promURL(prometheus))
}

// laneSamples runs scripts/cmd/lanesample against the running service: it puts sample lane files in the bucket
// (idempotent), has the service index them, and prints a download example.
func laneSamples(ctx context.Context, o options, s *session, cert string, stdout io.Writer) error {
	cmd := exec.CommandContext(ctx, "go", "run", "./cmd/lanesample", "-api", serviceURL, "-cacert", cert)
	cmd.Dir = filepath.Join(o.root, "scripts")
	cmd.Env = append(append(os.Environ(), s.env...), "GOWORK=off")
	cmd.Stdout, cmd.Stderr = stdout, stdout
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("sample lane files (scripts/cmd/lanesample): %w", err)
	}
	return nil
}

// promURL is the Prometheus UI's address for the banner, or why there is none.
func promURL(running bool) string {
	if !running {
		return "not running (see the warning above; docs/local-stack.md)"
	}
	return "http://" + prom.Addr + "/graph (recording rules: /rules)"
}

// Package prom runs Debian's Prometheus (package prometheus, 2.42) for `devstack dev`: it scrapes the service's metrics
// listener, keeps the recording rules of rules.yml, and serves its UI on 127.0.0.1 only.
package prom

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/aircraftdata/platform/scripts/internal/proc"
)

// Addr is where the UI listens: 9091, not Debian's 9090, which the package's own service takes where it runs.
const Addr = "127.0.0.1:9091"

// Bin is Debian's Prometheus binary.
const Bin = "/usr/bin/prometheus"

// Rules are the recording rules (rules.yml).
//
//go:embed rules.yml
var Rules string

// Config renders prometheus.yml: one job, "aircraftd", scraping target (host:port of the service's METRICS_ADDR) every
// 5 s, with the rules of rulesFile.
func Config(target, rulesFile string) string {
	return fmt.Sprintf(`# Written by devstack dev (scripts/internal/prom): rewritten at each start.
global:
  scrape_interval: 5s
  evaluation_interval: 15s
rule_files:
  - %q
scrape_configs:
  - job_name: aircraftd
    metrics_path: /metrics
    static_configs:
      - targets: [%q]
`, rulesFile, target)
}

// Ensure makes sure Debian's prometheus package is installed: as root on Debian it installs it (apt-get, like
// PostgreSQL's); else it says how.
func Ensure(ctx context.Context, log func(string)) error {
	if _, err := os.Stat(Bin); err == nil {
		return nil
	}
	how := "apt-get install -y --no-install-recommends prometheus"
	if _, err := os.Stat("/etc/debian_version"); err != nil {
		return fmt.Errorf("prometheus: %s is missing and this is not Debian: install Prometheus 2.x yourself as %s", Bin, Bin)
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("prometheus: %s is missing: run `sudo %s`, then make dev again", Bin, how)
	}
	log("prometheus: installing Debian's prometheus package (" + how + ")")
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	install := []string{"-o", "DPkg::Lock::Timeout=600", "install", "-y", "--no-install-recommends", "prometheus"}
	if err := run(ctx, env, "apt-get", install...); err == nil {
		return nil
	}
	log("prometheus: install failed; running apt-get update and retrying")
	if err := run(ctx, env, "apt-get", "-o", "DPkg::Lock::Timeout=600", "update"); err != nil {
		return fmt.Errorf("prometheus: apt-get update: %w", err)
	}
	return run(ctx, env, "apt-get", install...)
}

func run(ctx context.Context, env []string, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Options say where Prometheus keeps its files and what it scrapes.
type Options struct {
	Bin     string // Bin, unless a test says otherwise
	Dir     string // config, rules and data (data/) go here
	Addr    string // UI and API, a loopback address
	Target  string // the service's METRICS_ADDR
	LogPath string
}

// Args are Prometheus's command line for o: its files under o.Dir, a day of data, the UI on o.Addr.
func Args(o Options) []string {
	return []string{o.Bin,
		"--config.file=" + filepath.Join(o.Dir, "prometheus.yml"),
		"--storage.tsdb.path=" + filepath.Join(o.Dir, "data"),
		"--storage.tsdb.retention.time=1d",
		"--web.listen-address=" + o.Addr,
	}
}

// Start writes the config and rules under o.Dir, runs Prometheus and waits until it is ready.
func Start(ctx context.Context, o Options) (*proc.Process, error) {
	if err := proc.CheckPortFree(o.Addr); err != nil {
		return nil, fmt.Errorf("prometheus: %w (another `devstack dev`?)", err)
	}
	rules := filepath.Join(o.Dir, "rules.yml")
	if err := os.MkdirAll(filepath.Join(o.Dir, "data"), 0o755); err != nil {
		return nil, err
	}
	if err := errors.Join(os.WriteFile(rules, []byte(Rules), 0o644),
		os.WriteFile(filepath.Join(o.Dir, "prometheus.yml"), []byte(Config(o.Target, rules)), 0o644)); err != nil {
		return nil, err
	}
	p, err := proc.Start("prometheus", Args(o), proc.Options{LogPath: o.LogPath})
	if err != nil {
		return nil, err
	}
	url := "http://" + o.Addr + "/-/ready"
	err = p.WaitReady(ctx, 60*time.Second, proc.GetOK(http.DefaultClient, url))
	if err != nil {
		_ = p.Stop(10 * time.Second)
		return nil, fmt.Errorf("prometheus: %w (log %s)", err, o.LogPath)
	}
	return p, nil
}

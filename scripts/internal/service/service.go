// Package service builds and runs the aircraftd service for `devstack dev`.
package service

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/aircraftdata/platform/scripts/internal/proc"
)

// Build builds app/cmd/aircraftd into outDir with the infra's one build of the binary (go run ./infra/cmd/appbuild, the
// build infra deploys), for this machine's architecture, and returns the binary's path.
func Build(ctx context.Context, root, outDir string) (string, error) {
	outDir, err := filepath.Abs(outDir)
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "go", "run", "./cmd/appbuild", "-app", "../app", "-out", outDir, "-goarch", runtime.GOARCH)
	cmd.Dir = filepath.Join(root, "infra")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build aircraftd (go run ./infra/cmd/appbuild): %w\n%s", err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// GenCert makes a self-signed pair with `aircraftd gencert` (a no-op when both files exist).
func GenCert(ctx context.Context, bin, certFile, keyFile string, hosts []string) error {
	if err := os.MkdirAll(filepath.Dir(certFile), 0o755); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, bin, "gencert", "-cert", certFile, "-key", keyFile, "-hosts", strings.Join(hosts, ","))
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("aircraftd gencert: %w\n%s", err, strings.TrimSpace(string(b)))
	}
	return nil
}

// Config says how to run the service.
type Config struct {
	Bin      string
	Addr     string   // HTTP_ADDR, e.g. 127.0.0.1:8443
	CertFile string   // TLS_CERT_FILE
	KeyFile  string   // TLS_KEY_FILE
	Env      []string // full environment (stack variables and API_TOKEN included)
	LogPath  string
	Echo     io.Writer // the service's log also goes here
}

// Start runs the service and waits until GET /api/v1/health answers 200 over HTTPS, trusting only its certificate.
func Start(ctx context.Context, cfg Config) (*proc.Process, error) {
	if err := proc.CheckPortFree(cfg.Addr); err != nil {
		return nil, fmt.Errorf("aircraftd: %w (another `devstack dev`?)", err)
	}
	env := append(cfg.Env, "HTTP_ADDR="+cfg.Addr, "TLS_CERT_FILE="+cfg.CertFile, "TLS_KEY_FILE="+cfg.KeyFile)
	p, err := proc.Start("aircraftd", []string{cfg.Bin}, proc.Options{Env: env, LogPath: cfg.LogPath, Echo: cfg.Echo})
	if err != nil {
		return nil, err
	}
	client, err := httpsClient(cfg.CertFile)
	if err != nil {
		_ = p.Stop(5 * time.Second)
		return nil, err
	}
	url := "https://" + cfg.Addr + "/api/v1/health"
	err = p.WaitReady(ctx, 60*time.Second, proc.GetOK(client, url))
	if err != nil {
		_ = p.Stop(10 * time.Second)
		return nil, fmt.Errorf("aircraftd: %w", err)
	}
	return p, nil
}

// httpsClient trusts certFile only, for the name "localhost" (the address dialled is 127.0.0.1).
func httpsClient(certFile string) (*http.Client, error) {
	pem, err := os.ReadFile(certFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no certificate in %s", certFile)
	}
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"},
	}}, nil
}

package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aircraftdata/platform/app/internal/tlscert"
)

// benchToken is the API token the benchmarks run aircraftd with.
const benchToken = "bench-token"

// aircraftd is the real service binary, run on a fresh database of the
// local stack, for the benchmarks.
type aircraftd struct {
	cmd    *exec.Cmd
	base   string
	client *http.Client
	admin  string
	dbName string
}

// startAircraftd runs bin with env added to the local stack's variables, on
// a fresh database and a free port, and waits until it is ready. With tlsDir
// set it serves HTTPS with a certificate made there, which the client pins;
// otherwise plain HTTP.
func startAircraftd(ctx context.Context, bin, tlsDir string, env ...string) (*aircraftd, error) {
	a := &aircraftd{admin: os.Getenv("DB_ADMIN_URL"), dbName: fmt.Sprintf("bench_%d", time.Now().UnixNano())}
	conn, err := pgx.Connect(ctx, a.admin)
	if err != nil {
		return nil, err
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+a.dbName)
	conn.Close(ctx)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()

	env = append(env, "DATABASE_URL="+strings.Replace(a.admin, "/postgres?", "/"+a.dbName+"?", 1), "HTTP_ADDR="+addr, "LOG_LEVEL=warn",
		"API_TOKEN="+benchToken)
	transport := &http.Transport{MaxIdleConnsPerHost: 256}
	a.base = "http://" + addr
	if tlsDir == "" {
		env = append(env, "TLS_DISABLE=true")
	} else {
		cert, key := filepath.Join(tlsDir, "cert.pem"), filepath.Join(tlsDir, "key.pem")
		if _, err := tlscert.WriteFiles(cert, key, []string{"127.0.0.1"}); err != nil {
			return nil, err
		}
		pool, err := tlscert.Pool(cert)
		if err != nil {
			return nil, err
		}
		transport.TLSClientConfig = &tls.Config{RootCAs: pool}
		env = append(env, "TLS_CERT_FILE="+cert, "TLS_KEY_FILE="+key)
		a.base = "https://" + addr
	}
	a.client = &http.Client{Transport: transport}
	a.cmd = exec.Command(bin)
	a.cmd.Env = append(os.Environ(), env...)
	a.cmd.Stdout, a.cmd.Stderr = os.Stderr, os.Stderr
	if err := a.cmd.Start(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := a.client.Get(a.base + "/api/v1/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return a, nil
			}
		}
		if time.Now().After(deadline) {
			a.stop(false)
			return nil, fmt.Errorf("aircraftd not ready after 60 s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// buildAircraftd builds the service into dir with the infra's one build of
// the binary (infra/appbuild, what the CDK app deploys and the e2e suite
// tests), run as a command because app/ does not import infra/. The
// benchmarks run from app/ (go -C app run …).
func buildAircraftd(ctx context.Context, dir string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "run", "./cmd/appbuild", "-app", "../app", "-out", dir)
	cmd.Dir = "../infra"
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build aircraftd (go run ./infra/cmd/appbuild): %w\n%s", err, stderr.Bytes())
	}
	return strings.TrimSpace(stdout.String()), nil
}

// call sends an authenticated request to the service, with body as JSON
// unless nil, and decodes its 200 answer into v.
func (a *aircraftd) call(ctx context.Context, method, path string, body, v any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, r)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+benchToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	return json.Unmarshal(raw, v)
}

// peakRSS is the service's high-water resident set size in bytes.
func (a *aircraftd) peakRSS() int64 { return vmHWM(a.cmd.Process.Pid) }

// resetPeakRSS resets the service's VmHWM (Linux: clear_refs 5).
func (a *aircraftd) resetPeakRSS() {
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", a.cmd.Process.Pid), []byte("5"), 0)
}

// stop ends the service (SIGTERM, drained) and drops its database unless
// keepDB.
func (a *aircraftd) stop(keepDB bool) {
	if a.cmd != nil && a.cmd.Process != nil {
		_ = a.cmd.Process.Signal(syscall.SIGTERM)
		_ = a.cmd.Wait()
	}
	if keepDB {
		return
	}
	ctx := context.Background()
	if conn, err := pgx.Connect(ctx, a.admin); err == nil {
		_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+a.dbName+" WITH (FORCE)")
		conn.Close(ctx)
	}
}

// Package release proves, offline, what a release does on the service instance: the real bootstrap scripts of
// infra/host/bootstrap (aircraft-apply, aircraft-healthcheck, aircraft-signal) run against aircraftd as built for the
// instance, on the local stack, with stand-ins (./standin) for what only exists on EC2: cfn-init (the stack's metadata
// is a folder), cfn-signal and the AWS CLI (the stack's resources are files), systemctl (a supervisor that restarts
// like the unit) and IMDS (an HTTP server). The test plays cfn-hup and CloudFormation: it changes the metadata and runs
// aircraft-apply, as cfn-hup does after a stack update.
//
// Run it with `make e2e`, or `.dev/bin/devstack exec -- go test -count=1 -v -run TestRelease ./test/release/`.
package release

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aircraftdata/platform/infra/envfile"
	"github.com/aircraftdata/platform/test/local"
	"github.com/aircraftdata/platform/test/testkit"
)

// elasticIP is the address the certificate names; the scripts reach it through 127.0.0.1 (--connect-to).
const elasticIP = "203.0.113.10"

// instance is the service instance's file system (root), the stand-ins' view of the stack (cfn) and how the scripts are
// run.
type instance struct {
	root, cfn, standin string
	imds               string
	port               string
}

func TestReleaseRollsBackOnTheInstance(t *testing.T) {
	local.StackEnv(t, "DB_ADMIN_URL")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	work := t.TempDir()
	good, err := local.BuildService(testkit.RepoRoot(), filepath.Join(work, "build"))
	if err != nil {
		t.Fatal(err)
	}
	stack := local.NewStack(t)
	in := newInstance(t, work)

	// The certificate, made by the binary as aircraft-gencert does, for the Elastic IP.
	cert, key := in.root+"/etc/aircraft/tls/cert.pem", in.root+"/etc/aircraft/tls/key.pem"
	if err := local.GenCert(ctx, good, cert, key, elasticIP); err != nil {
		t.Fatal(err)
	}
	addr, err := local.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	in.port = addr[strings.LastIndex(addr, ":")+1:]
	token := randomHex(24)
	env, err := stack.ServiceEnv(addr, token, in.root+"/var/lib/aircraft/downloads", cert, key)
	if err != nil {
		t.Fatal(err)
	}
	// A build that crashes at start (as a bad build does: a panic, a missing file, a bad flag).
	bad := filepath.Join(work, "bad-aircraftd")
	if err := os.WriteFile(bad, []byte("#!/bin/sh\necho 'panic: bad build of aircraftd' >&2\nexit 2\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.systemctl(t, "stop", "aircraftd") })

	// 1. First boot: release r1 (good) is installed and gated, and signals its wait condition. The user data runs
	// cfn-init's config set tools, then aircraft-apply.
	in.publish(t, "r1", good, env)
	if out, err := in.run(t, filepath.Join(in.standin, "cfn-init"), "--configsets", "tools"); err != nil {
		t.Fatalf("first boot: cfn-init tools: %v\n%s", err, out)
	}
	if out, err := in.apply(t); err != nil {
		t.Fatalf("first boot: aircraft-apply: %v\n%s\n%s", err, out, in.serviceLog())
	}
	if got := in.signals(t, "Healthyr1"); len(got) != 1 || !strings.HasPrefix(got[0], "0\t") {
		t.Fatalf("r1 signals %q", got)
	}
	client := in.client(t, cert)
	if code := get(client, in.url("/api/v1/ready")); code != http.StatusOK {
		t.Fatalf("r1 not ready: %d\n%s", code, in.serviceLog())
	}

	// 2. Release r2 is a bad build: cfn-hup applies it, its gate fails, r1 is put back before the failure is
	// signalled - with the reason. Clients are watched the whole time.
	probe := startProbe(client, in.url("/api/v1/health"))
	in.publish(t, "r2", bad, env)
	out, err := in.apply(t)
	if err == nil {
		t.Fatalf("the bad release passed its gate:\n%s", out)
	}
	sig := in.signals(t, "Healthyr2")
	if len(sig) != 1 || !strings.HasPrefix(sig[0], "1\t") {
		t.Fatalf("r2 signals %q\n%s", sig, out)
	}
	for _, want := range []string{"aircraftd release r2", "gate failed", "crashed and was restarted 3 times", "panic: bad build", "restored release r1: healthy"} {
		if !strings.Contains(sig[0], want) {
			t.Errorf("the failure reason lacks %q: %s", want, sig[0])
		}
	}
	if sum := sha(t, in.root+"/opt/aircraft/bin/aircraftd"); sum != sha(t, good) {
		t.Error("the bad binary is still installed")
	}
	if code := get(client, in.url("/api/v1/ready")); code != http.StatusOK {
		t.Errorf("after the rollback on the instance: ready %d\n%s", code, in.serviceLog())
	}
	afterBad := probe.snapshot()

	// 3. CloudFormation rolls the stack back: the metadata names r1 again and r2's wait condition is gone. cfn-hup
	// re-applies r1: it finds it installed and healthy, and signals nothing (r1 was reported at first boot).
	in.rollbackTo(t, "r1", good, env, "Healthyr2")
	if out, err := in.apply(t); err != nil {
		t.Fatalf("re-apply of r1 after the stack rollback: %v\n%s", err, out)
	} else if !strings.Contains(out, "already reported") {
		t.Errorf("re-apply of r1 signalled again:\n%s", out)
	}
	if got := in.signals(t, "Healthyr1"); len(got) != 1 {
		t.Errorf("r1 signals after the rollback %q", got)
	}
	if ignored := in.signals(t, "ignored"); len(ignored) != 0 {
		t.Errorf("signals to wait conditions that no longer wait: %q", ignored)
	}
	final := probe.stop()
	if code := get(client, in.url("/api/v1/ready")); code != http.StatusOK {
		t.Errorf("after the stack rollback: ready %d", code)
	}

	// 4. Release r3 is the good build with a broken setting (a bucket that does not exist): aircraftd starts, but
	// /api/v1/ready answers 503 for S3, so the gate fails when its wait is over, with the readiness answer as the
	// reason; r1's environment is put back.
	broken := maps.Clone(env)
	broken["S3_BUCKET"] = "no-such-bucket-" + randomHex(4)
	in.publishGated(t, "r3", good, broken, 8)
	out, err = in.apply(t)
	if err == nil {
		t.Fatalf("the release with a broken bucket passed its gate:\n%s", out)
	}
	sig = in.signals(t, "Healthyr3")
	if len(sig) != 1 || !strings.HasPrefix(sig[0], "1\t") || !strings.Contains(sig[0], `"status":"unavailable"`) ||
		!strings.Contains(sig[0], "restored release r1: healthy") {
		t.Errorf("r3 signals %q", sig)
	}
	if b, _ := os.ReadFile(in.root + "/etc/aircraft/aircraftd.env"); strings.Contains(string(b), "no-such-bucket") {
		t.Error("r3's environment is still installed")
	}
	if code := get(client, in.url("/api/v1/ready")); code != http.StatusOK {
		t.Errorf("after r3 was undone: ready %d", code)
	}

	t.Logf("bad release r2: clients saw %d failed requests of %d; longest outage %s (bad build live until its gate failed, then r1 restored)",
		afterBad.failed, afterBad.total, afterBad.longest.Round(10*time.Millisecond))
	t.Logf("whole sequence (r2 applied and undone, stack rollback re-applied r1): longest outage %s, %d failed of %d",
		final.longest.Round(10*time.Millisecond), final.failed, final.total)
}

// newInstance lays out the instance: the scripts of infra/host/bootstrap in /usr/local/sbin, the stand-ins, an IMDS.
func newInstance(t *testing.T, work string) *instance {
	in := &instance{root: filepath.Join(work, "root"), cfn: filepath.Join(work, "cfn"), standin: filepath.Join(testkit.RepoRoot(), "test", "release", "standin")}
	for _, d := range []string{"/usr/local/sbin", "/run", "/var/log/aircraft", "/etc/aircraft/tls", "/var/lib/aircraft"} {
		mustMkdir(t, in.root+d)
	}
	for _, d := range []string{"metadata", "resources", "signals"} {
		mustMkdir(t, filepath.Join(in.cfn, d))
	}
	for _, name := range []string{"aircraft-apply", "aircraft-healthcheck", "aircraft-signal"} {
		b, err := os.ReadFile(filepath.Join(testkit.RepoRoot(), "infra", "host", "bootstrap", name+".sh"))
		if err != nil {
			t.Fatal(err)
		}
		mustWrite(t, in.root+"/usr/local/sbin/"+name, string(b), 0o755)
	}
	mustWrite(t, filepath.Join(in.cfn, "instance-id"), "i-0123456789abcdef0\n", 0o644)
	imds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPut && r.URL.Path == "/latest/api/token":
			fmt.Fprint(w, "token")
		case r.URL.Path == "/latest/meta-data/instance-id" && r.Header.Get("X-aws-ec2-metadata-token") == "token":
			fmt.Fprint(w, "i-0123456789abcdef0")
		default:
			http.Error(w, "no", http.StatusUnauthorized)
		}
	}))
	t.Cleanup(imds.Close)
	in.imds = imds.URL
	return in
}

// publish is CloudFormation updating the stack to a release: the instance's metadata (binary, environment, unit, deploy
// settings, signal URL) and a new wait condition that waits.
func (in *instance) publish(t *testing.T, release, bin string, env map[string]string) {
	t.Helper()
	in.writeMetadata(t, release, bin, env, 60)
	mustWrite(t, filepath.Join(in.cfn, "resources", "Healthy"+release), "CREATE_IN_PROGRESS\n", 0o644)
}

// publishGated is publish with the gate's wait in seconds.
func (in *instance) publishGated(t *testing.T, release, bin string, env map[string]string, gate int) {
	t.Helper()
	in.writeMetadata(t, release, bin, env, gate)
	mustWrite(t, filepath.Join(in.cfn, "resources", "Healthy"+release), "CREATE_IN_PROGRESS\n", 0o644)
}

// rollbackTo is CloudFormation's rollback: the metadata of the previous release, the failed release's wait condition
// deleted.
func (in *instance) rollbackTo(t *testing.T, release, bin string, env map[string]string, deleted string) {
	t.Helper()
	in.writeMetadata(t, release, bin, env, 60)
	if err := os.Remove(filepath.Join(in.cfn, "resources", deleted)); err != nil {
		t.Fatal(err)
	}
}

func (in *instance) writeMetadata(t *testing.T, release, bin string, env map[string]string, gate int) {
	t.Helper()
	m := filepath.Join(in.cfn, "metadata")
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, m+"/opt/aircraft/bin/aircraftd", string(b), 0o755)
	mustWrite(t, m+"/etc/aircraft/aircraftd.env", render(t, "aircraftd.env of release "+release, env), 0o644)
	unit, err := os.ReadFile(filepath.Join(testkit.RepoRoot(), "infra", "host", "bootstrap", "aircraftd.service"))
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, m+"/etc/systemd/system/aircraftd.service", string(unit), 0o644)
	mustWrite(t, m+"/etc/aircraft/deploy.env", render(t, "deploy.env of release "+release, map[string]string{
		"CFN_REGION": "us-east-1", "CFN_STACK": "AircraftTest", "CFN_RESOURCE": "ServiceInstance",
		"RELEASE": release, "WAIT_CONDITION": "Healthy" + release, "TLS_MODE": "selfsigned", "ELASTIC_IP": elasticIP,
		"DOMAIN": "", "CERT_PARAMETER": "/aircraft/AircraftTest/tls-certificate", "GATE_SECONDS": fmt.Sprint(gate),
		"TLS_CERT_FILE": "/etc/aircraft/tls/cert.pem", "TLS_KEY_FILE": "/etc/aircraft/tls/key.pem",
	}), 0o644)
	mustWrite(t, m+"/etc/aircraft/wait-handle", "fake://Healthy"+release+"\n", 0o600)
}

// apply runs aircraft-apply as cfn-hup does (its hook's action, as root), with the stand-ins first on PATH.
func (in *instance) apply(t *testing.T) (string, error) {
	t.Helper()
	return in.run(t, in.root+"/usr/local/sbin/aircraft-apply")
}

// run runs a command of the instance as root does, with the stand-ins first on PATH.
func (in *instance) run(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "STANDIN_OWNER_PID="+strconv.Itoa(os.Getpid()), "AIRCRAFT_ROOT="+in.root, "AIRCRAFT_CFN_BIN="+in.standin, "AIRCRAFT_IMDS="+in.imds,
		"FAKE_CFN="+in.cfn, "PATH="+in.standin+":"+os.Getenv("PATH"), "AIRCRAFT_SIGNAL_RETRY_SECONDS=1")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("%s (%s, %v):\n%s", filepath.Base(name), time.Since(start).Round(100*time.Millisecond), err, out)
	return string(out), err
}

func (in *instance) systemctl(t *testing.T, args ...string) {
	cmd := exec.Command(filepath.Join(in.standin, "systemctl"), args...)
	cmd.Env = append(os.Environ(), "STANDIN_OWNER_PID="+strconv.Itoa(os.Getpid()), "AIRCRAFT_ROOT="+in.root)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("systemctl %v: %v\n%s", args, err, out)
	}
}

// signals are the signals a wait condition took ("ignored": those sent to one that no longer waits).
func (in *instance) signals(t *testing.T, wc string) []string {
	b, err := os.ReadFile(filepath.Join(in.cfn, "signals", wc))
	if os.IsNotExist(err) {
		return nil
	} else if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimRight(string(b), "\n"), "\n")
}

func (in *instance) serviceLog() string {
	b, _ := os.ReadFile(in.root + "/var/log/aircraft/aircraftd.log")
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

func (in *instance) url(path string) string { return "https://" + elasticIP + ":" + in.port + path }

// client trusts the instance's certificate and reaches the Elastic IP at 127.0.0.1, as a client would reach it.
func (in *instance) client(t *testing.T, cert string) *http.Client {
	pem, err := os.ReadFile(cert)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := testkit.PinnedPool(pem)
	if err != nil {
		t.Fatal(err)
	}
	tr := testkit.PinnedTransport(pool)
	tr.DisableKeepAlives = true
	tr.DialContext = func(ctx context.Context, network, _ string) (conn net.Conn, err error) {
		var d net.Dialer
		return d.DialContext(ctx, network, "127.0.0.1:"+in.port)
	}
	return &http.Client{Transport: tr, Timeout: 2 * time.Second}
}

func get(c *http.Client, url string) int {
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// probe requests a URL every 50 ms and measures what clients see: failed requests and the longest outage.
type probe struct {
	mu            sync.Mutex
	total, failed int
	longest       time.Duration
	downSince     time.Time
	done          chan struct{}
	finished      chan struct{}
}

type probeResult struct {
	total, failed int
	longest       time.Duration
}

func startProbe(c *http.Client, url string) *probe {
	p := &probe{done: make(chan struct{}), finished: make(chan struct{})}
	go func() {
		defer close(p.finished)
		for {
			select {
			case <-p.done:
				return
			case <-time.After(50 * time.Millisecond):
			}
			ok := get(c, url) == http.StatusOK
			now := time.Now()
			p.mu.Lock()
			p.total++
			if !ok {
				p.failed++
				if p.downSince.IsZero() {
					p.downSince = now
				}
				p.longest = max(p.longest, now.Sub(p.downSince))
			} else {
				p.downSince = time.Time{}
			}
			p.mu.Unlock()
		}
	}()
	return p
}

func (p *probe) snapshot() probeResult {
	p.mu.Lock()
	defer p.mu.Unlock()
	return probeResult{p.total, p.failed, p.longest}
}

func (p *probe) stop() probeResult {
	close(p.done)
	<-p.finished
	return p.snapshot()
}

func render(t *testing.T, title string, env map[string]string) string {
	t.Helper()
	s, err := envfile.Render(title, env)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustMkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func mustWrite(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	mustMkdir(t, filepath.Dir(path))
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func sha(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

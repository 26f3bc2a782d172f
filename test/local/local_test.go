package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gruntwork-io/terratest/modules/logger"

	"github.com/aircraftdata/platform/infra/envfile"
	"github.com/aircraftdata/platform/test/e2e"
)

// TestLocal runs the product on the local stack as it runs on the instance and checks it end to end: a first run
// on a fresh stack, then, after a restart of the service (a redeploy), a second run on the stack the first one
// used, which is what a rerun of the AWS suite against a kept stack meets.
func TestLocal(t *testing.T) {
	StackEnv(t, "DB_ADMIN_URL")
	d := e2e.LoadData(t)
	work := t.TempDir()
	start := time.Now()

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	bin, err := BuildService(RepoRoot(), filepath.Join(work, "bin"))
	if err != nil {
		t.Fatal(err)
	}
	logger.Default.Logf(t, "built %s in %s", bin, time.Since(start).Round(time.Millisecond))

	stack := NewStack(t)

	// The instance's layout: a certificate made by the binary, the environment in a file, state in one folder.
	tlsDir := filepath.Join(work, "etc", "tls")
	cert, key := filepath.Join(tlsDir, "cert.pem"), filepath.Join(tlsDir, "key.pem")
	if err := GenCert(ctx, bin, cert, key, "127.0.0.1", "localhost"); err != nil {
		t.Fatal(err)
	}
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	var tok [24]byte
	_, _ = rand.Read(tok[:])
	token := hex.EncodeToString(tok[:])
	downloads := filepath.Join(work, "var", "downloads")
	env, err := stack.ServiceEnv(addr, token, downloads, cert, key)
	if err != nil {
		t.Fatal(err)
	}
	text, err := envfile.Render("Environment of aircraftd for the local e2e run (the layout of /etc/aircraft/aircraftd.env)", env)
	if err != nil {
		t.Fatal(err)
	}
	envFile := filepath.Join(work, "etc", "aircraftd.env")
	if err := os.WriteFile(envFile, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	svc := &Service{Bin: bin, EnvFile: envFile, LogPath: filepath.Join(work, "aircraftd.log"), Dir: work}

	pem, err := os.ReadFile(cert)
	if err != nil {
		t.Fatal(err)
	}
	pinned, err := e2e.PinnedPool(pem)
	if err != nil {
		t.Fatal(err)
	}
	tg := e2e.Target{
		Name:    "local",
		BaseURL: "https://" + addr,
		RootCAs: pinned,
		Token:   token,
		Store:   e2e.S3Store{Client: stack.S3, Bucket: stack.Bucket},
		ReadDownload: func(rel string) ([]byte, error) {
			return os.ReadFile(filepath.Join(downloads, filepath.FromSlash(rel)))
		},
	}

	run := func(t *testing.T) {
		startService(t, svc, tg)
		e2e.Check(t, tg, e2e.NewRun(time.Now()), d)
		if err := svc.Stop(30 * time.Second); err != nil {
			t.Errorf("%v\n%s", err, svc.Tail(20))
		}
	}
	if !t.Run("fresh stack", run) {
		t.Logf("service log (last lines):\n%s", svc.Tail(40))
		return
	}
	t.Run("used stack after a restart", run)
	if t.Failed() {
		t.Logf("service log (last lines):\n%s", svc.Tail(40))
	}
	logger.Default.Logf(t, "local e2e took %s", time.Since(start).Round(time.Second))
}

// startService starts svc and waits until it answers over HTTPS with its pinned certificate.
func startService(t *testing.T, svc *Service, tg e2e.Target) {
	t.Helper()
	if err := svc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop(5 * time.Second) })
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	healthy := make(chan error, 1)
	go func() { healthy <- tg.WaitHealthy(ctx, t, time.Minute) }()
	select {
	case err := <-healthy:
		if err != nil {
			t.Fatalf("aircraftd is not healthy: %v\n%s", err, svc.Tail(20))
		}
	case <-svc.Done():
		t.Fatalf("aircraftd exited at start:\n%s", svc.Tail(20))
	}
}

package local

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gruntwork-io/terratest/modules/logger"

	"github.com/aircraftdata/platform/test/e2e"
	"github.com/aircraftdata/platform/test/testkit"
)

// TestLocal runs the product on the local stack as it runs on the instance and checks it end to end: a first run on a
// fresh stack, then, after a restart of the service (a redeploy), a second run on the stack the first one used, which
// is what a rerun of the AWS suite against a kept stack meets.
func TestLocal(t *testing.T) {
	StackEnv(t, "DB_ADMIN_URL")
	d := e2e.LoadData(t)
	start := time.Now()

	stack, svc, tg := newService(t, nil)
	tg.Store = e2e.S3Store{Client: stack.S3, Bucket: stack.Bucket}
	tg.ReadDownload = func(rel string) ([]byte, error) {
		return os.ReadFile(filepath.Join(svc.Downloads, filepath.FromSlash(rel)))
	}

	run := func(t *testing.T) {
		startService(t, svc)
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

// newService builds aircraftd as the instance gets it and lays it out on a stack of the test's own (NewStack,
// Stack.NewService) with extra settings; tg is the checks' view of it: its address, token and certificate, pinned.
func newService(t *testing.T, extra map[string]string) (stack *Stack, svc *Service, tg e2e.Target) {
	t.Helper()
	work := t.TempDir()
	start := time.Now()
	bin, err := BuildService(testkit.RepoRoot(), filepath.Join(work, "bin"))
	if err != nil {
		t.Fatal(err)
	}
	logger.Default.Logf(t, "built %s in %s", bin, time.Since(start).Round(time.Millisecond))
	stack = NewStack(t)
	// The instance's layout: a certificate made by the binary, the environment in a file, state in one folder.
	if svc, err = stack.NewService(t.Context(), bin, work, extra); err != nil {
		t.Fatal(err)
	}
	return stack, svc, e2e.Target{Name: "local", BaseURL: svc.URL(""), RootCAs: svc.Pinned, Token: svc.Token}
}

// startService starts svc and waits until it is ready (Service.Start); the test's end stops it.
func startService(t *testing.T, svc *Service) {
	t.Helper()
	if err := svc.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop(5 * time.Second) })
}

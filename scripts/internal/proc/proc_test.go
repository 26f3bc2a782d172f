package proc

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func alive(pid int) bool {
	// A zombie still accepts signal 0; look at its state instead.
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	fields := strings.Fields(string(b))
	return len(fields) > 2 && fields[2] != "Z"
}

func TestStopKillsTheWholeGroup(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "grandchild.pid")
	// The child starts a grandchild that ignores SIGTERM, then waits.
	p, err := Start("group", []string{"sh", "-c", `(trap "" TERM; sleep 300) & echo $! > ` + pidFile + `; wait`},
		Options{LogPath: filepath.Join(dir, "logs", "group.log")})
	if err != nil {
		t.Fatal(err)
	}
	var grandchild int
	for deadline := time.Now().Add(5 * time.Second); grandchild == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		b, _ := os.ReadFile(pidFile)
		grandchild, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	if grandchild == 0 {
		t.Fatal("grandchild did not start")
	}

	if err := p.Stop(2 * time.Second); err != nil {
		t.Logf("Stop: %v", err) // the shell may need the SIGKILL
	}
	select {
	case <-p.Done():
	default:
		t.Fatal("Done not closed after Stop")
	}
	for deadline := time.Now().Add(2 * time.Second); alive(grandchild) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if alive(grandchild) {
		_ = syscall.Kill(grandchild, syscall.SIGKILL)
		t.Fatalf("grandchild %d survived Stop", grandchild)
	}
}

func TestWaitReady(t *testing.T) {
	dir := t.TempDir()
	p, err := Start("sleeper", []string{"sleep", "30"}, Options{LogPath: filepath.Join(dir, "sleeper.log")})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(time.Second)

	calls := 0
	err = p.WaitReady(context.Background(), 5*time.Second, func(context.Context) error {
		if calls++; calls < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Errorf("WaitReady = %v after %d checks; want success after 3", err, calls)
	}

	err = p.WaitReady(context.Background(), 300*time.Millisecond, func(context.Context) error { return errors.New("still starting") })
	if err == nil || !strings.Contains(err.Error(), "not ready after") || !strings.Contains(err.Error(), "still starting") ||
		!strings.Contains(err.Error(), "sleeper.log") {
		t.Errorf("WaitReady on timeout = %v; want the name, the last check error and the log path", err)
	}
}

func TestWaitReadyReportsEarlyExit(t *testing.T) {
	dir := t.TempDir()
	p, err := Start("crasher", []string{"sh", "-c", "echo listen: address already in use >&2; exit 1"},
		Options{LogPath: filepath.Join(dir, "crasher.log")})
	if err != nil {
		t.Fatal(err)
	}
	err = p.WaitReady(context.Background(), 10*time.Second, func(context.Context) error { return errors.New("refused") })
	if err == nil || !strings.Contains(err.Error(), "exited before it was ready") || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("WaitReady = %v; want the early exit and the log's last lines", err)
	}
}

func TestCheckPortFree(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := CheckPortFree(addr); err == nil || !strings.Contains(err.Error(), addr) {
		t.Errorf("CheckPortFree(busy %s) = %v; want an error naming it", addr, err)
	}
	l.Close()
	if err := CheckPortFree(addr); err != nil {
		t.Errorf("CheckPortFree(free %s) = %v", addr, err)
	}
}

func TestListening(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if !Listening(addr) {
		t.Errorf("Listening(%s) = false while listening", addr)
	}
	l.Close()
	if Listening(addr) {
		t.Errorf("Listening(%s) = true after close", addr)
	}
}

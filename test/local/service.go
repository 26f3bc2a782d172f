package local

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aircraftdata/platform/infra/envfile"
	"github.com/aircraftdata/platform/test/testkit"
)

// Service is aircraftd running as the instance runs it: its environment exactly the environment file's (as systemd's
// EnvironmentFile=, nothing inherited from the test), its output appended to a log file.
type Service struct {
	Bin     string
	EnvFile string
	LogPath string
	Dir     string // working directory (systemd's default is /)

	// What NewService set up: where the service listens (https://Addr), the API token, its certificate (PEM) and
	// that certificate pinned (what clients trust: testkit.PinnedTransport(Pinned)), and its DOWNLOAD_PATH.
	Addr      string
	Token     string
	CertFile  string
	Pinned    *x509.CertPool
	Downloads string

	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// FreeAddr returns a 127.0.0.1 address with a port that was free a moment ago.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// GenCert makes the service's self-signed pair with the binary's own `aircraftd gencert`, as the instance does.
func GenCert(ctx context.Context, bin, cert, key string, hosts ...string) error {
	if err := os.MkdirAll(filepath.Dir(cert), 0o750); err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, bin, "gencert", "-cert", cert, "-key", key, "-hosts", strings.Join(hosts, ",")).CombinedOutput()
	if err != nil {
		return fmt.Errorf("aircraftd gencert: %w\n%s", err, out)
	}
	return nil
}

// NewService lays aircraftd (bin) out under dir as on the instance, for this stack: a certificate made by the binary
// (etc/tls/), a free port on 127.0.0.1, a random API token, the instance's environment with this stack's values
// (ServiceEnv) and extra on top, in an environment file (etc/aircraftd.env); downloads in var/downloads, the log in
// aircraftd.log. Start runs it.
func (st *Stack) NewService(ctx context.Context, bin, dir string, extra map[string]string) (*Service, error) {
	s := &Service{Bin: bin, EnvFile: filepath.Join(dir, "etc", "aircraftd.env"), LogPath: filepath.Join(dir, "aircraftd.log"),
		Dir: dir, CertFile: filepath.Join(dir, "etc", "tls", "cert.pem"), Downloads: filepath.Join(dir, "var", "downloads")}
	key := filepath.Join(dir, "etc", "tls", "key.pem")
	if err := GenCert(ctx, bin, s.CertFile, key, "127.0.0.1", "localhost"); err != nil {
		return nil, err
	}
	pem, err := os.ReadFile(s.CertFile)
	if err != nil {
		return nil, err
	}
	if s.Pinned, err = testkit.PinnedPool(pem); err != nil {
		return nil, err
	}
	if s.Addr, err = FreeAddr(); err != nil {
		return nil, err
	}
	var tok [24]byte
	_, _ = rand.Read(tok[:])
	s.Token = hex.EncodeToString(tok[:])
	env, err := st.ServiceEnv(s.Addr, s.Token, s.Downloads, s.CertFile, key)
	if err != nil {
		return nil, err
	}
	maps.Copy(env, extra)
	text, err := envfile.Render("Environment of aircraftd on the local stack (the layout of /etc/aircraft/aircraftd.env)", env)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(s.EnvFile, []byte(text), 0o600); err != nil {
		return nil, err
	}
	return s, nil
}

// startTimeout bounds Start's wait for the service to be ready.
const startTimeout = time.Minute

// Start starts the service and waits until it is ready: GET /api/v1/ready answers 200 over HTTPS, trusting only its
// pinned certificate. It fails when the process exits first, or when it is not ready within startTimeout or before ctx
// ends (then it stops the process). Start again after a Stop or an exit restarts it.
func (s *Service) Start(ctx context.Context) error {
	if err := s.start(); err != nil {
		return err
	}
	client := &http.Client{Transport: testkit.PinnedTransport(s.Pinned), Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL("/api/v1/ready"), nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET /api/v1/ready: %s", resp.Status)
		}
		last = err
		select {
		case <-s.done:
			return fmt.Errorf("aircraftd exited at start: %v\n%s", s.err, s.Tail(20))
		case <-ctx.Done():
			_ = s.Stop(5 * time.Second)
			return fmt.Errorf("aircraftd not ready: %w (last answer: %v)\n%s", ctx.Err(), last, s.Tail(20))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// URL is the service's address for path (which starts with /).
func (s *Service) URL(path string) string { return "https://" + s.Addr + path }

// start starts the process.
func (s *Service) start() error {
	text, err := os.ReadFile(s.EnvFile)
	if err != nil {
		return err
	}
	env, err := envfile.Parse(string(text))
	if err != nil {
		return err
	}
	log, err := os.OpenFile(s.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	s.cmd = exec.Command(s.Bin)
	s.cmd.Env = env
	s.cmd.Dir = s.Dir
	s.cmd.Stdout, s.cmd.Stderr = log, log
	// Its own process group, and SIGKILL if the test process dies first.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		log.Close()
		return err
	}
	s.done = make(chan struct{})
	go func() {
		s.err = s.cmd.Wait()
		log.Close()
		close(s.done)
	}()
	return nil
}

// Pid is the process id of the running service (0 before Start).
func (s *Service) Pid() int {
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// PeakRSS is the service's high-water resident set size in bytes (VmHWM in /proc/<pid>/status; Linux).
func (s *Service) PeakRSS() (int64, error) { return PeakRSS(s.Pid()) }

// PeakRSS is the high-water resident set size in bytes of process pid (VmHWM in /proc/<pid>/status; Linux).
func PeakRSS(pid int) (int64, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

// Done is closed when the process has exited.
func (s *Service) Done() <-chan struct{} { return s.done }

// Stop sends SIGTERM (systemd's stop) and waits up to grace for the process to drain and exit, then kills it. It
// returns an error when the service did not exit cleanly by itself.
func (s *Service) Stop(grace time.Duration) error {
	if s.cmd == nil || s.cmd.Process == nil {
		return nil
	}
	select {
	case <-s.done:
		return fmt.Errorf("aircraftd had already exited: %v", s.err)
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		var ee *exec.ExitError
		if s.err != nil && !(errors.As(s.err, &ee) && ee.ExitCode() == 0) {
			return fmt.Errorf("aircraftd exited with %v on SIGTERM", s.err)
		}
		return nil
	case <-time.After(grace):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
		return fmt.Errorf("aircraftd did not stop within %s of SIGTERM; killed", grace)
	}
}

// Tail returns the last n lines of the service's log.
func (s *Service) Tail(n int) string {
	b, err := os.ReadFile(s.LogPath)
	if err != nil {
		return err.Error()
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// Package proc runs the stack's long-lived child processes: each in its own process group (so Ctrl-C in the terminal
// reaches devstack, which then stops them in order), with its output in a log file, and killed by the kernel if
// devstack itself dies without cleaning up.
package proc

import (
	"bytes"
	"context"
	"errors"
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
)

// Options describe how to run a child.
type Options struct {
	Dir     string    // working directory; "" for the current one
	Env     []string  // full environment; nil inherits devstack's
	LogPath string    // stdout and stderr are appended here
	Echo    io.Writer // optional: also copy the output here (e.g. the terminal)
}

// Process is a started child.
type Process struct {
	Name    string
	LogPath string

	cmd  *exec.Cmd
	done chan struct{}
	err  error // valid once done is closed
}

// Start starts argv[0] with args argv[1:].
func Start(name string, argv []string, opts Options) (*Process, error) {
	if err := os.MkdirAll(filepath.Dir(opts.LogPath), 0o755); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(opts.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(logf, "\n=== %s: %s\n", time.Now().Format(time.RFC3339), strings.Join(argv, " "))

	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = opts.Dir
	cmd.Env = opts.Env
	var out io.Writer = logf
	if opts.Echo != nil {
		out = io.MultiWriter(logf, opts.Echo)
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:   true,            // own group: terminal signals go to devstack only
		Pdeathsig: syscall.SIGKILL, // and if devstack is killed outright, so is the child
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}

	p := &Process{Name: name, LogPath: opts.LogPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// Pid returns the child's process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the child has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err returns how the child exited; valid once Done is closed.
func (p *Process) Err() error { return p.err }

// Stop sends SIGTERM to the child's process group, waits up to grace for the child to exit, then kills whatever is left
// of the group.
func (p *Process) Stop(grace time.Duration) error {
	pgid := p.cmd.Process.Pid // Setpgid: the group id is the child's pid
	select {
	case <-p.done:
	default:
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-p.done
			return fmt.Errorf("%s did not stop within %s after SIGTERM; killed", p.Name, grace)
		}
	}
	// Anything the child left behind in its group goes too.
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill process group of %s: %w", p.Name, err)
	}
	return nil
}

// WaitReady calls check until it succeeds, the child exits, or timeout passes. Errors name the child, the last check
// error and the end of its log.
func (p *Process) WaitReady(ctx context.Context, timeout time.Duration, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		err := check(cctx)
		ccancel()
		if err == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before it was ready (%v); log %s:\n%s", p.Name, p.err, p.LogPath, p.Tail(15))
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %s (last check: %v); log %s:\n%s", p.Name, timeout, err, p.LogPath, p.Tail(15))
		case <-tick.C:
		}
	}
}

// GetOK is a WaitReady check: a GET of url with client answers 200.
func GetOK(client *http.Client, url string) func(context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	}
}

// Tail returns the last n lines of the child's log, indented.
func (p *Process) Tail(n int) string {
	return Tail(p.LogPath, n)
}

// Tail returns the last n lines of the file at path, indented for error messages.
func Tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "    (no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	var out bytes.Buffer
	for i, l := range lines {
		if i > 0 {
			out.WriteByte('\n')
		}
		out.WriteString("    " + l)
	}
	return out.String()
}

// Listening reports whether something accepts TCP connections on addr. It is a fast first check: clients with retries
// can take seconds to give up on a closed port.
func Listening(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// CheckPortFree returns an error when something already listens on addr.
func CheckPortFree(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s is already in use: %w", addr, err)
	}
	return l.Close()
}

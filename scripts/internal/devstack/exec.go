package devstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// execCmd runs o.argv against the stack and returns an *ExitError carrying its status when it fails.
func execCmd(ctx context.Context, o options, stderr io.Writer) error {
	s, err := start(ctx, o, stderr)
	if err != nil {
		return err
	}
	defer s.stop(ctx)
	s.Describe(stderr)

	env := append(os.Environ(), s.env...)
	env = append(env, "AIRCRAFT_STACK=1")
	if code := runChild(ctx, o.argv, env, stderr); code != 0 {
		return &ExitError{Code: code}
	}
	return nil
}

// runChild runs argv with the terminal attached and returns its exit status (128+n when killed by signal n, as shells
// do). The child stays in devstack's process group, so Ctrl-C reaches it directly; if devstack alone is told to stop
// (SIGTERM), the child gets SIGTERM too, and SIGKILL 30 s later.
func runChild(ctx context.Context, argv, env []string, stderr io.Writer) int {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(stderr, "devstack exec:", err)
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			return 127
		}
		return 126
	}

	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err = <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			err = <-done
		}
	}
	return exitCode(err)
}

func exitCode(err error) int {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	default:
		return 1
	}
}

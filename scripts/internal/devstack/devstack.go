// Package devstack is the devstack command: it starts the local stack for `make dev`, the tests and the benchmarks (see
// docs/local-stack.md).
package devstack

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aircraftdata/platform/scripts/internal/envfile"
	"github.com/aircraftdata/platform/scripts/internal/repo"
	"github.com/aircraftdata/platform/scripts/internal/stack"
)

const usage = `usage: devstack [-root DIR] COMMAND

Commands:
  up                  start the stack, write .dev/env, run until Ctrl-C
  exec [--] CMD ARGS  start the stack, run CMD with its variables (and AIRCRAFT_STACK=1),
                      stop the stack, exit with CMD's status
  seed [-data DIR]    start the stack and upload the readsb-hist samples to the bucket
  dev [-data DIR]     start the stack, seed it, build and run aircraftd on https://localhost:8443
                      (metrics on 127.0.0.1:9464) and Prometheus on http://127.0.0.1:9091

A part already answering on its port with our settings (another devstack) is used
as it is; only what this run started is stopped. State lives in <repo>/.dev.
`

// ExitError asks main to exit with Code (the status of `exec`'s command).
type ExitError struct{ Code int }

func (e *ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// options is the parsed command line.
type options struct {
	cmd  string   // up, exec, seed, dev
	root string   // repository root ("" = find it from the working directory)
	data string   // readsb-hist sample folder ("" = <root>/../shared/data/readsb-hist)
	argv []string // exec: the command to run
}

// parseArgs parses devstack's arguments (without the program name).
func parseArgs(args []string) (options, error) {
	var o options
	global := flag.NewFlagSet("devstack", flag.ContinueOnError)
	global.SetOutput(io.Discard)
	global.StringVar(&o.root, "root", "", "repository root")
	if err := global.Parse(args); err != nil {
		return o, err
	}
	rest := global.Args()
	if len(rest) == 0 {
		return o, errors.New("missing command")
	}
	o.cmd, rest = rest[0], rest[1:]

	sub := flag.NewFlagSet(o.cmd, flag.ContinueOnError)
	sub.SetOutput(io.Discard)
	switch o.cmd {
	case "up", "exec":
	case "seed", "dev":
		sub.StringVar(&o.data, "data", "", "readsb-hist sample folder")
	default:
		return o, fmt.Errorf("unknown command %q", o.cmd)
	}
	if err := sub.Parse(rest); err != nil {
		return o, fmt.Errorf("%s: %w", o.cmd, err)
	}
	switch {
	case o.cmd == "exec" && sub.NArg() == 0:
		return o, errors.New("exec: missing command to run (devstack exec -- CMD ARGS...)")
	case o.cmd == "exec":
		o.argv = sub.Args()
	case sub.NArg() > 0:
		return o, fmt.Errorf("%s: unexpected arguments %q", o.cmd, sub.Args())
	}
	return o, nil
}

// Run runs devstack with args (without the program name). Progress goes to stderr, so that `exec` leaves stdout to the
// command it runs.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseArgs(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usage)
		return nil
	}
	if err != nil {
		fmt.Fprint(stderr, usage)
		return err
	}
	if o.root == "" {
		wd, err := os.Getwd()
		if err != nil {
			return err
		}
		if o.root, err = repo.FindRoot(wd); err != nil {
			return err
		}
	}
	if o.data == "" {
		o.data = filepath.Join(o.root, "..", "shared", "data", "readsb-hist")
	}

	switch o.cmd {
	case "up":
		return up(ctx, o, stdout, stderr)
	case "exec":
		return execCmd(ctx, o, stderr)
	case "seed":
		return seedCmd(ctx, o, stderr)
	case "dev":
		return dev(ctx, o, stdout, stderr)
	}
	panic("unreachable: parseArgs accepted " + o.cmd)
}

// session is a started stack and the variables written to .dev/env.
type session struct {
	*stack.Stack
	env []string
	log io.Writer
}

// start brings the stack up and writes .dev/env.
func start(ctx context.Context, o options, log io.Writer) (*session, error) {
	t0 := time.Now()
	st, err := stack.Start(ctx, stack.Config{Root: o.root, Getenv: os.Getenv, Log: log})
	if err != nil {
		return nil, err
	}
	env := st.Env(apiToken(os.Getenv, st.EnvPath()))
	if err := envfile.Write(st.EnvPath(), env); err != nil {
		_ = st.Stop(context.WithoutCancel(ctx))
		return nil, err
	}
	fmt.Fprintf(log, "local stack ready in %s (variables in %s)\n", time.Since(t0).Round(10*time.Millisecond), rel(st.EnvPath()))
	return &session{Stack: st, env: env, log: log}, nil
}

// stop stops what start started; ctx may already be cancelled (Ctrl-C).
func (s *session) stop(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		fmt.Fprintln(s.log, "devstack: stopping:", err)
	}
}

// apiToken is $API_TOKEN, else the token of the previous run (kept in .dev/env so that a running `make dev` and later
// commands agree), else a new random one.
func apiToken(getenv func(string) string, envPath string) string {
	if t := getenv("API_TOKEN"); t != "" {
		return t
	}
	if prev, err := envfile.Read(envPath); err == nil {
		if t := envfile.Get(prev, "API_TOKEN"); t != "" {
			return t
		}
	}
	return rand.Text()
}

// rel shortens p to a path relative to the working directory when it is below it.
func rel(p string) string {
	wd, err := os.Getwd()
	if err != nil {
		return p
	}
	r, err := filepath.Rel(wd, p)
	if err != nil || strings.HasPrefix(r, "..") {
		return p
	}
	return r
}

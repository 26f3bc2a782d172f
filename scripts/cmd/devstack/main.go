// Command devstack starts the local stack (PostgreSQL, S3, MongoDB wire) for `make dev`, the tests and the benchmarks.
// See docs/local-stack.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/aircraftdata/platform/scripts/internal/devstack"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, a second one ends devstack at once (its children die with it: they run with a
		// parent-death signal).
		<-ctx.Done()
		stop()
	}()

	err := devstack.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	var exit *devstack.ExitError
	switch {
	case errors.As(err, &exit):
		os.Exit(exit.Code)
	case err != nil:
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(1)
	}
}

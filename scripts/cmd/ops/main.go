// Command ops is the operator's commands for a deployed stack: make logs|shell|status STACK=<name>. See docs/infra.md
// (Operator commands).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"

	"github.com/aircraftdata/platform/scripts/internal/ops"
)

func main() {
	// Ctrl-C is for the AWS CLI (the session, logs tail), which shares the terminal's process group: ops outlives it
	// and returns its exit status. A handled signal is reset for the child, unlike an ignored one.
	signal.Notify(make(chan os.Signal, 1), os.Interrupt)

	err := ops.New().Run(context.Background(), os.Args[1:])
	var usage *ops.UsageError
	var exit *ops.ExitError
	switch {
	case errors.As(err, &usage):
		fmt.Fprintf(os.Stderr, "ops: %v\n%s\n", err, ops.Usage)
		os.Exit(2)
	case errors.As(err, &exit):
		os.Exit(exit.Code)
	case err != nil:
		fmt.Fprintln(os.Stderr, "ops:", err)
		os.Exit(1)
	}
}

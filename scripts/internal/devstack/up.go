package devstack

import (
	"context"
	"fmt"
	"io"
)

// up runs the stack until ctx is cancelled (Ctrl-C, SIGTERM).
func up(ctx context.Context, o options, stdout, stderr io.Writer) error {
	s, err := start(ctx, o, stderr)
	if err != nil {
		return err
	}
	defer s.stop(ctx)

	fmt.Fprintf(stdout, "Local stack (state in %s):\n", rel(s.Dir))
	s.Describe(stdout)
	fmt.Fprintf(stdout, "Use it from another shell:  set -a; . %s; set +a\n", rel(s.EnvPath()))
	fmt.Fprintln(stdout, "Ctrl-C stops what this devstack started.")

	<-ctx.Done()
	fmt.Fprintln(stderr, "\nstopping...")
	return nil
}

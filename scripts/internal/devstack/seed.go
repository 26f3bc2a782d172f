package devstack

import (
	"context"
	"fmt"
	"io"

	"github.com/aircraftdata/platform/scripts/internal/s3local"
	"github.com/aircraftdata/platform/scripts/internal/seed"
)

// seedStep puts one kind of sample data into a running stack. Steps run on every `make dev`, so each must be
// idempotent; it returns a one-line summary.
type seedStep struct {
	name string
	run  func(ctx context.Context, s *session, o options) (string, error)
}

// seedSteps run in order for `devstack seed` and `devstack dev`.
var seedSteps = []seedStep{
	{"readsb-hist snapshots", seedReadsbHist},
	// Sample lane files need the running service (it indexes them): dev writes them after it starts aircraftd
	// (laneSamples).
}

func seedCmd(ctx context.Context, o options, stderr io.Writer) error {
	s, err := start(ctx, o, stderr)
	if err != nil {
		return err
	}
	defer s.stop(ctx)
	s.Describe(stderr)
	return seedAll(ctx, s, o)
}

func seedAll(ctx context.Context, s *session, o options) error {
	for _, step := range seedSteps {
		summary, err := step.run(ctx, s, o)
		if err != nil {
			return fmt.Errorf("seed %s: %w", step.name, err)
		}
		fmt.Fprintf(s.log, "seed %s: %s\n", step.name, summary)
	}
	return nil
}

// seedReadsbHist uploads the real readsb-hist samples (except bad/ and the README) under raw/day=20231101/.
func seedReadsbHist(ctx context.Context, s *session, o options) (string, error) {
	res, err := seed.Upload(ctx, s3local.Client(), s3local.Bucket, o.data, seed.ReadsbPrefix, seed.SkipReadsb)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("s3://%s/%s: %d uploaded, %d already there (from %s)",
		s3local.Bucket, seed.ReadsbPrefix, res.Uploaded, res.Unchanged, rel(o.data)), nil
}

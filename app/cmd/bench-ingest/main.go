// Command bench-ingest measures ingestion end to end on the local stack
// (make bench-ingest): MB/s and observations/s S3 → Postgres through the real
// service, its peak RSS, the pure decode speed of the same data, and
// GET /aircraft-stats latency at a fixed rate.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/aircraftdata/platform/app/internal/bench"
)

func main() {
	o := bench.IngestOptions{Out: os.Stdout}
	flag.StringVar(&o.Samples, "samples", "../../shared/data/readsb-hist", "folder of real readsb-hist samples")
	flag.Int64Var(&o.MinBytes, "bytes", 1_050_000_000, "generate at least this many bytes of JSON")
	flag.IntVar(&o.MinFiles, "files", 200, "generate at least this many snapshots")
	flag.IntVar(&o.Workers, "workers", runtime.GOMAXPROCS(0), "decode workers for the pure-decode figure")
	flag.IntVar(&o.Rate, "rate", 1000, "GET /aircraft-stats requests per second")
	flag.DurationVar(&o.Duration, "duration", 10*time.Second, "how long to hold that rate")
	flag.StringVar(&o.Before, "before", "", "app/ folder of a checkout to compare with (its aircraftd ingests the same data first)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := bench.Ingest(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench-ingest:", err)
		os.Exit(1)
	}
}

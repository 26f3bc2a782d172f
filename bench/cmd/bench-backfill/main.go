// Command bench-backfill measures backfills on the local stack (make bench-backfill): the data set written by
// bench-ingest -generate, ingested by one POST /process-s3-data, then by a backfill of -workers concurrent workers in
// aircraftd, then by -workers Lambda workers under the emulator; MB/s and observations/s per worker and in total, CPU
// seconds of the processes it started, the database's share, each one's CPU seconds per GB against the pure decode's
// (BenchmarkDecodeAggregate, run right before and right after the Lambda run), and a year of data on paper.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/aircraftdata/platform/bench/internal/backfill"
)

func main() {
	o := backfill.Options{Out: os.Stdout}
	flag.StringVar(&o.Data, "data", "", "folder of the data set (bench-ingest -generate)")
	flag.IntVar(&o.Workers, "workers", 4, "BACKFILL_CONCURRENCY of the backfill, and the number of Lambda workers")
	flag.IntVar(&o.BatchSize, "batch", 100, "BACKFILL_BATCH_SIZE, and the keys of a map batch")
	flag.IntVar(&o.Default, "default-concurrency", 2, "the default BACKFILL_CONCURRENCY, for the year on paper")
	flag.IntVar(&o.DefaultSize, "default-batch", 100, "the default BACKFILL_BATCH_SIZE, for the year on paper")
	flag.IntVar(&o.Lambda, "lambda-concurrency", 40, "the map's MaxConcurrency on Step Functions, for the year on paper")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.Data == "" {
		fmt.Fprintln(os.Stderr, "bench-backfill: -data is required")
		os.Exit(2)
	}
	if err := backfill.Run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench-backfill:", err)
		os.Exit(1)
	}
}

// Command bench-ingest measures ingestion by aircraftd on the local stack (make bench-ingest): MB/s and observations/s
// S3 → Postgres, its peak RSS, and GET /aircraft-stats latency at a fixed rate; with -metrics-off or -before, against
// variants of the service in the same run. With -generate it only writes the data set (realistic snapshots) to a
// folder, which a later run (-data) ingests and the app's BenchmarkDecodeAggregate decodes.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/aircraftdata/platform/bench/internal/ingest"
)

func main() {
	o := ingest.Options{Out: os.Stdout}
	generate := flag.String("generate", "", "write the data set to this folder and exit")
	samples := flag.String("samples", "../../shared/data/readsb-hist", "folder of real readsb-hist samples (-generate)")
	minBytes := flag.Int64("bytes", 1_050_000_000, "generate at least this many bytes of JSON (-generate)")
	minFiles := flag.Int("files", 200, "generate at least this many snapshots (-generate)")
	flag.StringVar(&o.Data, "data", "", "folder of the data set to ingest (written by -generate)")
	flag.IntVar(&o.Rate, "rate", 1000, "GET /aircraft-stats requests per second")
	flag.DurationVar(&o.Duration, "duration", 10*time.Second, "how long to hold that rate")
	flag.IntVar(&o.Runs, "runs", 1, "rounds: each variant ingests the data set once per round, interleaved")
	flag.DurationVar(&o.Scrape, "scrape", time.Second, "scrape the service's /metrics this often while it ingests, as Prometheus would (0: never)")
	flag.BoolVar(&o.MetricsOff, "metrics-off", false, "also ingest with METRICS_ADDR=off (variant \"service, metrics off\"), and compare")
	flag.StringVar(&o.Before, "before", "", "app/ folder of a checkout to compare with (variant \"before\": its aircraftd ingests the same data)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, *generate, *samples, *minBytes, *minFiles); err != nil {
		fmt.Fprintln(os.Stderr, "bench-ingest:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o ingest.Options, generate, samples string, minBytes int64, minFiles int) error {
	if generate != "" {
		n, total, err := ingest.Generate(samples, generate, minBytes, minFiles)
		if err == nil {
			fmt.Printf("data set: %d snapshots, %.0f MB of JSON in %s\n", n, float64(total)/1e6, generate)
		}
		return err
	}
	if o.Data == "" {
		return fmt.Errorf("-data or -generate is required")
	}
	return ingest.Run(ctx, o)
}

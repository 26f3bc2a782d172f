// Command bench-download compares lane downloads by aircraftd with s5cmd on the local stack (make bench-download); see
// package download for what it measures.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/aircraftdata/platform/bench/internal/download"
)

func main() {
	var o download.Options
	flag.IntVar(&o.Runs, "runs", 5, "timed runs of each contender per shape (the median is reported)")
	flag.IntVar(&o.SmallFiles, "files", 200, "small files in the first hour")
	flag.Int64Var(&o.SmallSize, "small", 1<<20, "bytes per small file")
	flag.Int64Var(&o.BigSize, "big", 1<<30, "bytes of the large file")
	flag.StringVar(&o.Scripts, "scripts", "../scripts", "the scripts module (s5cmd is built from its pinned version)")
	flag.DurationVar(&o.Scrape, "scrape", time.Second, "scrape the services' /metrics this often while they download, as Prometheus would (0: never)")
	flag.BoolVar(&o.MetricsOff, "metrics-off", false, "also run the service with METRICS_ADDR=off (\"service, metrics off\"), and compare")
	flag.StringVar(&o.Before, "before", "", "app/ folder of a checkout to compare with (\"service, before\")")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := download.Run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench-download:", err)
		os.Exit(1)
	}
}

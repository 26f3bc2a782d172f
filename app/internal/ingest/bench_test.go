package ingest_test

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aircraftdata/platform/app/internal/flight"
	"github.com/aircraftdata/platform/app/internal/ingest"
	"github.com/aircraftdata/platform/app/internal/readsb"
	"github.com/aircraftdata/platform/app/internal/stacktest"
)

// BenchmarkDecodeAggregate is ingestion without I/O: every file of a corpus, in memory, decoded by GOMAXPROCS workers
// and merged into one aggregate by one goroutine, the way the service does it. The corpus is the folder
// $BENCH_SNAPSHOTS (make bench-ingest writes its data set there, then has the service ingest the same files), else the
// real samples. MB/s is the mean over the runs; best-MB/s the fastest run.
func BenchmarkDecodeAggregate(b *testing.B) {
	dir := os.Getenv("BENCH_SNAPSHOTS")
	if dir == "" {
		dir = stacktest.SamplesDir(b)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	var files [][]byte
	var size int64
	for _, e := range entries {
		if !e.Type().IsRegular() || filepath.Ext(e.Name()) == ".md" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			b.Fatal(err)
		}
		files = append(files, data)
		size += int64(len(data))
	}
	workers := runtime.GOMAXPROCS(0)
	var obs int64
	var aircraft int
	best := 0.0
	b.SetBytes(size)
	b.ResetTimer()
	cpu := cpuSeconds()
	for range b.N {
		start := time.Now()
		obs, aircraft = decodeAggregate(b, files, workers)
		best = max(best, float64(size)/1e6/time.Since(start).Seconds())
	}
	b.ReportMetric((cpuSeconds()-cpu)/(float64(size)*float64(b.N)/1e9), "cpu-s/GB")
	b.ReportMetric(best, "best-MB/s")
	b.Logf("%s: %d files, %.0f MB, %d observations, %d aircraft, %d workers", dir, len(files), float64(size)/1e6, obs, aircraft, workers)
}

// cpuSeconds is the user and system CPU time of this process so far (make bench-backfill compares a worker's CPU per GB
// with the pure decode's).
func cpuSeconds() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func decodeAggregate(b *testing.B, files [][]byte, workers int) (int64, int) {
	in := make(chan []byte)
	out := make(chan *readsb.File, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for data := range in {
				f, err := readsb.Decode(bytes.NewReader(data), ingest.DefaultLimits())
				if err != nil {
					b.Error(err)
					continue
				}
				out <- f
			}
		})
	}
	go func() {
		for _, f := range files {
			in <- f
		}
		close(in)
		wg.Wait()
		close(out)
	}()
	agg := make(flight.Aggregate)
	var obs int64
	for f := range out {
		obs += f.Observations
		agg.Merge(f.Aircraft)
	}
	return obs, len(agg)
}

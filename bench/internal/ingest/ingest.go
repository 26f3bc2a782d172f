// Package ingest is the service's ingestion benchmark (make bench-ingest): a data set of realistic snapshots ingested
// S3 → Postgres by aircraftd as built for the instance, on a stack of its own, then GET /aircraft-stats at a fixed
// rate. The same data set's decoding alone is measured in the app module (BenchmarkDecodeAggregate in
// app/internal/ingest), which make bench-ingest runs first.
package ingest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sync/errgroup"

	"github.com/aircraftdata/platform/bench/internal/proc"
	"github.com/aircraftdata/platform/bench/internal/service"
	"github.com/aircraftdata/platform/bench/internal/snapshots"
	"github.com/aircraftdata/platform/test/local"
	"github.com/aircraftdata/platform/test/testkit"
)

// Generate writes snapshots into dir (snapshot-NNNNN.json) until it holds at least minBytes in at least minFiles, from
// the real samples in samples. It returns the number of files and bytes written.
func Generate(samples, dir string, minBytes int64, minFiles int) (int, int64, error) {
	gen, err := snapshots.New(samples)
	if err != nil {
		return 0, 0, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, 0, err
	}
	var n int
	var total int64
	for ; total < minBytes || n < minFiles; n++ {
		name, data, err := gen.Next()
		if err != nil {
			return 0, 0, err
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return 0, 0, err
		}
		total += int64(len(data))
	}
	return n, total, nil
}

// Options configure the benchmark.
type Options struct {
	Data     string // folder of generated snapshots (Generate)
	Rate     int    // requests per second for the latency run
	Duration time.Duration
	// Before, when set, is the app/ folder of a checkout of the code to compare with (e.g. a git worktree of main): its
	// aircraftd ingests the same data set first, on a database of its own.
	Before string
	Out    io.Writer
}

// Run uploads the data set to a stack of its own, has aircraftd ingest it, then loads GET /aircraft-stats.
func Run(ctx context.Context, o Options) error {
	tmp, err := os.MkdirTemp("", "bench-ingest-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	fmt.Fprintln(o.Out, "building aircraftd (the release build) ...")
	bin, err := local.BuildService(testkit.RepoRoot(), filepath.Join(tmp, "bin"))
	if err != nil {
		return err
	}
	stack, err := local.OpenStack(ctx)
	if err != nil {
		return err
	}
	defer stack.Close()

	names, total, err := Upload(ctx, stack, o.Data)
	if err != nil {
		return err
	}
	obs := int64(len(names)) * snapshots.RecordsPerSnapshot
	fmt.Fprintf(o.Out, "data set: %d snapshots, %.0f MB of JSON, uploaded to s3://%s/raw/\n", len(names), float64(total)/1e6, stack.Bucket)

	var before *run
	if o.Before != "" {
		binBefore, err := local.BuildService(filepath.Dir(o.Before), filepath.Join(tmp, "bin-before"))
		if err != nil {
			return fmt.Errorf("build the code to compare with: %w", err)
		}
		// The earlier code first, on a stack of its own reading this bucket: it reads the data set cold from the S3
		// server's disk, which only favours the code measured second.
		other, err := local.OpenStack(ctx)
		if err != nil {
			return err
		}
		defer other.Close()
		if before, err = ingestOnce(ctx, other, binBefore, filepath.Join(tmp, "before"), stack.Bucket, len(names), obs); err != nil {
			return fmt.Errorf("the code to compare with: %w", err)
		}
		if err := before.svc.Stop(); err != nil {
			return err
		}
	}
	after, err := ingestOnce(ctx, stack, bin, filepath.Join(tmp, "after"), stack.Bucket, len(names), obs)
	if err != nil {
		return err
	}
	defer after.svc.Stop()
	mbs := float64(after.res.Bytes) / 1e6 / after.wall

	lat, err := latency(ctx, after.svc, o.Rate, o.Duration)
	if err != nil {
		return err
	}

	w := tabwriter.NewWriter(o.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "\nmachine\t%s\n", proc.Machine())
	fmt.Fprintf(w, "data\t%d snapshots, %.0f MB JSON, %d observations, %d aircraft\n", after.res.FilesIngested,
		float64(after.res.Bytes)/1e6, after.res.Observations, after.res.AircraftUpdated)
	fmt.Fprintf(w, "service ingest S3 -> Postgres, end to end\t%.0f MB/s, %.0f observations/s (%.1f s)\n", mbs,
		float64(after.res.Observations)/after.wall, after.wall)
	fmt.Fprintf(w, "CPU seconds during the ingest\taircraftd %.1f, versitygw %.1f, postgres %.1f (of %.1f available)\n",
		after.cpu["aircraftd"], after.cpu["versitygw"], after.cpu["postgres"], after.wall*float64(runtime.NumCPU()))
	fmt.Fprintf(w, "service peak RSS (VmHWM)\t%.0f MiB (target <= 150)\n", float64(after.peak)/(1<<20))
	if before != nil {
		bmbs := float64(before.res.Bytes) / 1e6 / before.wall
		fmt.Fprintf(w, "before (%s): service ingest, end to end\t%.0f MB/s (%.1f s), peak RSS %.0f MiB, aircraftd CPU %.1f s\n",
			o.Before, bmbs, before.wall, float64(before.peak)/(1<<20), before.cpu["aircraftd"])
		fmt.Fprintf(w, "after / before, service ingest\t%.2f\n", mbs/bmbs)
	}
	fmt.Fprintf(w, "GET /aircraft-stats at %d req/s for %s\tp50 %.2f ms, p99 %.2f ms, max %.2f ms, %d errors, %.0f req/s achieved (target p99 <= 2 ms)\n",
		o.Rate, o.Duration, lat.p50, lat.p99, lat.max, lat.errors, lat.achieved)
	fmt.Fprintf(w, "ratio ingest / pure decode\tthis MB/s over BenchmarkDecodeAggregate's above (target >= 0.5)\n")
	return w.Flush()
}

// Upload puts every file of dir under raw/ in the stack's bucket, two at a time, and returns their names and total
// size.
func Upload(ctx context.Context, stack *local.Stack, dir string) ([]string, int64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, 0, err
	}
	var names []string
	var total int64
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(2)
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, 0, err
		}
		names = append(names, e.Name())
		total += int64(len(data))
		g.Go(func() error {
			_, err := stack.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(stack.Bucket),
				Key: aws.String("raw/" + e.Name()), Body: bytes.NewReader(data)})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, 0, fmt.Errorf("upload: %w", err)
	}
	if len(names) == 0 {
		return nil, 0, fmt.Errorf("no snapshots in %s", dir)
	}
	return names, total, nil
}

type result struct {
	FilesIngested   int     `json:"files_ingested"`
	FilesFailed     int     `json:"files_failed"`
	Observations    int64   `json:"observations"`
	AircraftUpdated int     `json:"aircraft_updated"`
	Bytes           int64   `json:"bytes"`
	DurationSeconds float64 `json:"duration_seconds"`
}

type run struct {
	svc  *service.Service
	res  result
	wall float64
	cpu  map[string]float64
	peak int64
}

// ingestOnce starts bin on stack, reading bucket, and has it ingest everything; the caller stops the service.
func ingestOnce(ctx context.Context, stack *local.Stack, bin, dir, bucket string, nfiles int, obs int64) (*run, error) {
	// LOG_LEVEL=warn: a line per file would be the log's cost, not ingestion's. The stats load comes from one client at
	// 1,000 req/s: the per-client read limit (RATE_LIMIT_*) would answer most of it 429, so it is lifted here; the
	// figure is the read path's latency, not the limiter's.
	svc, err := service.Start(ctx, stack, bin, dir, map[string]string{
		"S3_BUCKET": bucket, "LOG_LEVEL": "warn", "RATE_LIMIT_PER_SECOND": "100000", "RATE_LIMIT_BURST": "100000",
	})
	if err != nil {
		return nil, err
	}
	r := &run{svc: svc}
	names := []string{"aircraftd", "versitygw", "postgres"}
	cpuBefore := proc.CPUByName(names...)
	start := time.Now()
	err = svc.Call(ctx, http.MethodPost, "/process-s3-data", nil, &r.res)
	r.wall = time.Since(start).Seconds()
	r.cpu = proc.CPUByName(names...)
	for name, v := range cpuBefore {
		r.cpu[name] -= v
	}
	if err == nil {
		r.peak, err = svc.PeakRSS()
	}
	if err == nil && (r.res.FilesIngested != nfiles || r.res.Observations != obs || r.res.FilesFailed != 0) {
		err = fmt.Errorf("the service ingested %d files / %d observations (%d failed); the data set has %d / %d",
			r.res.FilesIngested, r.res.Observations, r.res.FilesFailed, nfiles, obs)
	}
	if err != nil {
		_ = svc.Stop()
		return nil, err
	}
	return r, nil
}

type latencies struct {
	p50, p99, max float64 // ms
	errors        int
	achieved      float64
}

// latency sends GET /aircraft-stats for random known aircraft at a fixed rate (open loop: a slow answer does not slow
// the sender) and measures each request.
func latency(ctx context.Context, s *service.Service, rate int, d time.Duration) (latencies, error) {
	var icaos []string
	after := ""
	for {
		var page struct {
			Items []struct {
				ICAO string `json:"icao"`
			} `json:"items"`
			Next *string `json:"next"`
		}
		if err := s.Call(ctx, http.MethodGet, "/api/v1/aircraft?limit=1000&after="+after, nil, &page); err != nil {
			return latencies{}, err
		}
		for _, a := range page.Items {
			icaos = append(icaos, a.ICAO)
		}
		if page.Next == nil {
			break
		}
		after = *page.Next
	}
	rng := rand.New(rand.NewPCG(1, 1))
	measure := func(d time.Duration) ([]float64, int, float64) {
		n := int(d.Seconds() * float64(rate))
		durs := make([]float64, n)
		var errs int
		var mu sync.Mutex
		var wg sync.WaitGroup
		interval := time.Second / time.Duration(rate)
		start := time.Now()
		for i := range n {
			time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
			icao := icaos[rng.IntN(len(icaos))]
			wg.Add(1)
			go func() {
				defer wg.Done()
				t0 := time.Now()
				resp, err := s.Client.Get(s.URL("/aircraft-stats/" + icao))
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				el := time.Since(t0)
				mu.Lock()
				defer mu.Unlock()
				if err != nil || resp.StatusCode != http.StatusOK {
					errs++
				}
				durs[i] = float64(el.Microseconds()) / 1000
			}()
		}
		wg.Wait()
		return durs, errs, float64(n) / time.Since(start).Seconds()
	}
	measure(time.Second) // warm up connections and caches
	durs, errs, achieved := measure(d)
	slices.Sort(durs)
	pct := func(p float64) float64 { return durs[min(len(durs)-1, int(p*float64(len(durs))))] }
	return latencies{p50: pct(0.50), p99: pct(0.99), max: durs[len(durs)-1], errors: errs, achieved: achieved}, nil
}

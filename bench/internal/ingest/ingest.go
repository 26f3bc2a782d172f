// Package ingest is the service's ingestion benchmark (make bench-ingest): a data set of realistic snapshots ingested
// S3 → Postgres by aircraftd as built for the instance, on a stack of its own, then GET /aircraft-stats at a fixed
// rate. Variants of the service (metrics off, an earlier checkout) ingest the same data set in the same run,
// interleaved round by round. The same data set's decoding alone is measured in the app module
// (BenchmarkDecodeAggregate in app/internal/ingest), which make bench-ingest runs first.
package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sync/errgroup"

	"github.com/aircraftdata/platform/bench/internal/proc"
	"github.com/aircraftdata/platform/bench/internal/runs"
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
	// Runs is the number of rounds: in each, every variant ingests the data set once, on a database of its own, the
	// variants interleaved (runs.Order).
	Runs int
	// Scrape is how often the benchmark scrapes the service's /metrics while it ingests, as Prometheus would (0:
	// never).
	Scrape time.Duration
	// MetricsOff adds the variant "service, metrics off": the same binary with METRICS_ADDR=off, never scraped.
	MetricsOff bool
	// Before, when set, is the app/ folder of a checkout of the code to compare with (e.g. a git worktree of main): the
	// variant "before", never scraped (it may predate the metrics).
	Before string
	Out    io.Writer
}

// variant is one service the benchmark compares: a binary, settings on top of the benchmark's, and whether its metrics
// are scraped while it ingests.
type variant struct {
	name   string
	bin    string
	env    map[string]string
	scrape bool
}

// Run uploads the data set, has each variant of aircraftd ingest it Runs times, interleaved, then loads GET
// /aircraft-stats on the service's last run.
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
	vs := []variant{{name: "service", bin: bin, scrape: true}}
	if o.MetricsOff {
		vs = append(vs, variant{name: "service, metrics off", bin: bin, env: map[string]string{"METRICS_ADDR": "off"}})
	}
	if o.Before != "" {
		binBefore, err := local.BuildService(filepath.Dir(o.Before), filepath.Join(tmp, "bin-before"))
		if err != nil {
			return fmt.Errorf("build the code to compare with: %w", err)
		}
		vs = append(vs, variant{name: "before", bin: binBefore})
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

	results := make([][]*run, len(vs))
	var last *run // the service's last run, kept running for the stats load
	// Each run's stack (its database) is dropped at the end: right after a service stops, its backends may still be
	// exiting, and DROP DATABASE … WITH (FORCE) needs a role that may signal them.
	defer func() {
		if last != nil {
			_ = last.svc.Stop()
		}
		for _, rs := range results {
			for _, r := range rs {
				_ = r.stack.Close()
			}
		}
	}()
	for round, order := range runs.Order(len(vs), max(o.Runs, 1)) {
		for _, i := range order {
			fmt.Fprintf(o.Out, "round %d: %s ...\n", round+1, vs[i].name)
			dir := filepath.Join(tmp, fmt.Sprintf("%d-%d", i, round))
			r, err := ingestOnce(ctx, vs[i], o.Scrape, dir, stack.Bucket, len(names), obs)
			if err != nil {
				return fmt.Errorf("%s: %w", vs[i].name, err)
			}
			results[i] = append(results[i], r)
			if i == 0 && round == max(o.Runs, 1)-1 {
				last = r
			} else if err := r.svc.Stop(); err != nil {
				return err
			}
		}
	}

	lat, err := latency(ctx, last.svc, o.Rate, o.Duration)
	if err != nil {
		return err
	}
	report(o, vs, results, lat)
	return nil
}

// report prints the figures of every variant (median and range over the rounds), each variant against the first round
// by round, then the stats load.
func report(o Options, vs []variant, results [][]*run, lat latencies) {
	figure := func(rs []*run, f func(*run) float64) runs.Stats {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		return runs.Of(v)
	}
	mbs := func(r *run) float64 { return float64(r.res.Bytes) / 1e6 / r.wall }
	obsps := func(r *run) float64 { return float64(r.res.Observations) / r.wall }
	cpu := func(r *run) float64 { return r.cpu["aircraftd"] }
	rss := func(r *run) float64 { return float64(r.peak) / (1 << 20) }
	first := results[0][0].res

	w := tabwriter.NewWriter(o.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "\nmachine\t%s\n", proc.Machine())
	fmt.Fprintf(w, "data\t%d snapshots, %.0f MB JSON, %d observations, %d aircraft\n", first.FilesIngested,
		float64(first.Bytes)/1e6, first.Observations, first.AircraftUpdated)
	fmt.Fprintf(w, "rounds\t%d, variants interleaved; service scraped every %s (0s: never)\n", len(results[0]), o.Scrape)
	fmt.Fprintf(w, "\nservice ingest S3 -> Postgres, end to end, median (min–max)\tMB/s\tobservations/s\taircraftd CPU s\tversitygw CPU s\tpostgres CPU s\tpeak RSS MiB (target <= 150)\tscrapes\t\n")
	for i, v := range vs {
		rs := results[i]
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", v.name, figure(rs, mbs).Format(0), figure(rs, obsps).Format(0),
			figure(rs, cpu).Format(1), figure(rs, func(r *run) float64 { return r.cpu["versitygw"] }).Format(1),
			figure(rs, func(r *run) float64 { return r.cpu["postgres"] }).Format(1), figure(rs, rss).Format(0),
			figure(rs, func(r *run) float64 { return float64(r.scrapes) }).Format(0))
	}
	fmt.Fprintf(w, "(versitygw and postgres: every process of that name, so also other users of the stack)\n")
	for i := 1; i < len(vs); i++ {
		ratio := func(f func(*run) float64) string {
			a, b := make([]float64, len(results[0])), make([]float64, len(results[i]))
			for j, r := range results[0] {
				a[j] = f(r)
			}
			for j, r := range results[i] {
				b[j] = f(r)
			}
			return runs.Of(runs.Ratios(a, b)).Format(2)
		}
		fmt.Fprintf(w, "%s / %s, round by round\tMB/s %s, aircraftd CPU %s, peak RSS %s\n", vs[0].name, vs[i].name,
			ratio(mbs), ratio(cpu), ratio(rss))
	}
	for i, v := range vs {
		parts := make([]string, len(results[i]))
		for j, r := range results[i] {
			parts[j] = fmt.Sprintf("%.0f", mbs(r))
		}
		fmt.Fprintf(w, "all rounds, %s\tMB/s %s\n", v.name, strings.Join(parts, " "))
	}
	fmt.Fprintf(w, "GET /aircraft-stats at %d req/s for %s\tp50 %.2f ms, p99 %.2f ms, max %.2f ms, %d errors, %.0f req/s achieved (target p99 <= 2 ms)\n",
		o.Rate, o.Duration, lat.p50, lat.p99, lat.max, lat.errors, lat.achieved)
	fmt.Fprintf(w, "ratio ingest / pure decode\tthe service's MB/s over BenchmarkDecodeAggregate's above (target >= 0.5)\n")
	_ = w.Flush()
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
	stack   *local.Stack
	svc     *service.Service
	res     result
	wall    float64
	cpu     map[string]float64
	peak    int64
	scrapes int
}

// close stops the run's service and drops its stack.
func (r *run) close() error { return errors.Join(r.svc.Stop(), r.stack.Close()) }

// ingestOnce starts v on a stack of its own reading bucket, has it ingest everything, scraping its metrics every scrape
// if v is scraped, and checks the counts; the caller closes the run.
func ingestOnce(ctx context.Context, v variant, scrape time.Duration, dir, bucket string, nfiles int, obs int64) (*run, error) {
	stack, err := local.OpenStack(ctx)
	if err != nil {
		return nil, err
	}
	// LOG_LEVEL=warn: a line per file would be the log's cost, not ingestion's. The stats load comes from one client at
	// 1,000 req/s: the per-client read limit (RATE_LIMIT_*) would answer most of it 429, so it is lifted here; the
	// figure is the read path's latency, not the limiter's.
	env := map[string]string{
		"S3_BUCKET": bucket, "LOG_LEVEL": "warn", "RATE_LIMIT_PER_SECOND": "100000", "RATE_LIMIT_BURST": "100000",
	}
	maps.Copy(env, v.env)
	svc, err := service.Start(ctx, stack, v.bin, dir, env)
	if err != nil {
		return nil, errors.Join(err, stack.Close())
	}
	r := &run{stack: stack, svc: svc}
	if !v.scrape {
		scrape = 0
	}
	stop, err := svc.ScrapeMetrics(ctx, scrape)
	if err != nil {
		return nil, errors.Join(err, r.close())
	}
	names := []string{"versitygw", "postgres"}
	cpuBefore, svcBefore := proc.CPUByName(names...), proc.CPU(svc.Pid())
	start := time.Now()
	err = svc.Call(ctx, http.MethodPost, "/process-s3-data", nil, &r.res)
	r.wall = time.Since(start).Seconds()
	r.cpu = proc.CPUByName(names...)
	for name, v := range cpuBefore {
		r.cpu[name] -= v
	}
	r.cpu["aircraftd"] = proc.CPU(svc.Pid()) - svcBefore
	n, scrapeErr := stop()
	r.scrapes = n
	err = errors.Join(err, scrapeErr)
	if err == nil {
		r.peak, err = svc.PeakRSS()
	}
	if err == nil && (r.res.FilesIngested != nfiles || r.res.Observations != obs || r.res.FilesFailed != 0) {
		err = fmt.Errorf("the service ingested %d files / %d observations (%d failed); the data set has %d / %d",
			r.res.FilesIngested, r.res.Observations, r.res.FilesFailed, nfiles, obs)
	}
	if err != nil {
		return nil, errors.Join(err, r.close())
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

package bench

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
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/aircraftdata/platform/app/internal/bucket"
	"github.com/aircraftdata/platform/app/internal/flight"
	"github.com/aircraftdata/platform/app/internal/readsb"
	"github.com/aircraftdata/platform/app/internal/stacktest"
)

// IngestOptions configure the ingestion benchmark.
type IngestOptions struct {
	Samples  string // shared/data/readsb-hist
	MinBytes int64  // generate at least this much JSON…
	MinFiles int    // …in at least this many snapshots
	Workers  int    // decode workers for the pure-decode run (the service uses its default)
	Rate     int    // requests per second for the latency run
	Duration time.Duration
	// Before, when set, is the app/ folder of a checkout of the code to
	// compare with (e.g. a git worktree of main): its aircraftd ingests the
	// same data set on its own database, alternating with this one's.
	Before string
	Out    io.Writer
}

// Ingest runs the ingestion benchmark against the local stack (the
// variables devstack exports): generate and upload the data set, decode it
// in memory (no I/O), ingest it with the real service binary S3 → Postgres,
// then load GET /aircraft-stats at a fixed rate.
func Ingest(ctx context.Context, o IngestOptions) error {
	for _, k := range []string{"DB_ADMIN_URL", "S3_ENDPOINT", "AWS_ACCESS_KEY_ID"} {
		if os.Getenv(k) == "" {
			return fmt.Errorf("%s not set: run under the local stack (make bench-ingest)", k)
		}
	}
	tmp, err := os.MkdirTemp("", "bench-ingest-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	s3c, err := bucket.NewClient(ctx, "us-east-1", os.Getenv("S3_ENDPOINT"))
	if err != nil {
		return err
	}
	b := bucket.Bucket{Client: s3c, Name: fmt.Sprintf("bench-%d", time.Now().UnixNano())}
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b.Name)}); err != nil {
		return fmt.Errorf("create bucket: %w", err)
	}
	defer stacktest.RemoveBucket(s3c, b.Name)

	fmt.Fprintf(o.Out, "generating and uploading >= %d snapshots, >= %.1f GB of JSON to s3://%s ...\n", o.MinFiles, float64(o.MinBytes)/1e9, b.Name)
	files, total, err := generate(ctx, o, b)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "data set: %d snapshots, %.0f MB of JSON\n", len(files), float64(total)/1e6)

	decoded, obs, aircraft := pureDecode(files, o.Workers)
	nfiles := len(files)
	files = nil // let the data set go before the service runs

	var before *ingestRun
	if o.Before != "" {
		binBefore := filepath.Join(tmp, "aircraftd-old")
		if err := goBuild(ctx, o.Before, nil, binBefore, "./cmd/aircraftd"); err != nil {
			return fmt.Errorf("build the code to compare with: %w", err)
		}
		// The earlier code first: it reads the data set cold from the S3
		// server's disk, which only favours the code measured second.
		if before, err = ingestOnce(ctx, binBefore, filepath.Join(tmp, "before"), b.Name, nfiles, obs); err != nil {
			return fmt.Errorf("the code to compare with: %w", err)
		}
	}

	bin, err := buildAircraftd(ctx, filepath.Join(tmp, "bin"))
	if err != nil {
		return err
	}
	after, err := ingestOnce(ctx, bin, filepath.Join(tmp, "after"), b.Name, nfiles, obs)
	if err != nil {
		return err
	}
	svc := after.svc
	defer svc.stop(false)
	res, wall, cpu, peak := after.res, after.wall, after.cpu, after.peak
	ingestMBs := float64(res.Bytes) / 1e6 / wall

	lat, err := svc.latency(ctx, o.Rate, o.Duration)
	if err != nil {
		return err
	}

	w := tabwriter.NewWriter(o.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "\nmachine\t%s\n", machine())
	fmt.Fprintf(w, "data\t%d snapshots, %.0f MB JSON, %d observations, %d aircraft\n", res.FilesIngested, float64(res.Bytes)/1e6, res.Observations, aircraft)
	fmt.Fprintf(w, "pure decode + aggregate, in memory, %d workers\t%.0f MB/s\n", decoded.workers, decoded.mbs)
	fmt.Fprintf(w, "service ingest S3 -> Postgres, end to end\t%.0f MB/s, %.0f observations/s (%.1f s)\n", ingestMBs, float64(res.Observations)/wall, wall)
	fmt.Fprintf(w, "ratio ingest / pure decode\t%.2f (target >= 0.5)\n", ingestMBs/decoded.mbs)
	fmt.Fprintf(w, "CPU seconds during the ingest\taircraftd %.1f, versitygw %.1f, postgres %.1f (of %.1f available)\n",
		cpu["aircraftd"], cpu["versitygw"], cpu["postgres"], wall*float64(runtime.NumCPU()))
	fmt.Fprintf(w, "service peak RSS (VmHWM)\t%.0f MiB (target <= 150)\n", float64(peak)/(1<<20))
	if before != nil {
		mbs := float64(before.res.Bytes) / 1e6 / before.wall
		fmt.Fprintf(w, "before (%s): service ingest, end to end\t%.0f MB/s (%.1f s), ratio to this pure decode %.2f, peak RSS %.0f MiB, aircraftd CPU %.1f s\n",
			o.Before, mbs, before.wall, mbs/decoded.mbs, float64(before.peak)/(1<<20), before.cpu["aircraftd"])
		fmt.Fprintf(w, "after / before, service ingest\t%.2f\n", ingestMBs/mbs)
	}
	fmt.Fprintf(w, "GET /aircraft-stats at %d req/s for %s\tp50 %.2f ms, p99 %.2f ms, max %.2f ms, %d errors, %.0f req/s achieved (target p99 <= 2 ms)\n",
		o.Rate, o.Duration, lat.p50, lat.p99, lat.max, lat.errors, lat.achieved)
	return w.Flush()
}

type ingestResult struct {
	FilesIngested   int     `json:"files_ingested"`
	FilesFailed     int     `json:"files_failed"`
	Observations    int64   `json:"observations"`
	AircraftUpdated int     `json:"aircraft_updated"`
	Bytes           int64   `json:"bytes"`
	DurationSeconds float64 `json:"duration_seconds"`
}

type ingestRun struct {
	svc  *service
	res  ingestResult
	wall float64
	cpu  map[string]float64
	peak int64
}

// ingestOnce starts the service binary bin on a fresh database and has it
// ingest the bucket; the caller stops the service of the run returned (the
// latency test uses it); a run for comparison only is stopped here.
func ingestOnce(ctx context.Context, bin, dir, bucketName string, nfiles int, obs int64) (*ingestRun, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	a, err := startAircraftd(ctx, bin, dir, "S3_BUCKET="+bucketName)
	if err != nil {
		return nil, err
	}
	r := &ingestRun{svc: &service{a}}
	cpuBefore := cpuByProcess("aircraftd", "aircraftd-old", "versitygw", "postgres")
	start := time.Now()
	if err := r.svc.call(ctx, "POST", "/process-s3-data", nil, &r.res); err != nil {
		a.stop(false)
		return nil, err
	}
	r.wall = time.Since(start).Seconds()
	r.cpu = cpuByProcess("aircraftd", "aircraftd-old", "versitygw", "postgres")
	for name, v := range cpuBefore {
		r.cpu[name] -= v
	}
	r.cpu["aircraftd"] += r.cpu["aircraftd-old"]
	r.peak = r.svc.peakRSS()
	if r.res.FilesIngested != nfiles || r.res.Observations != obs || r.res.FilesFailed != 0 {
		a.stop(false)
		return nil, fmt.Errorf("the service ingested %d files / %d observations (%d failed); the decoder saw %d / %d",
			r.res.FilesIngested, r.res.Observations, r.res.FilesFailed, nfiles, obs)
	}
	if strings.HasSuffix(bin, "-old") {
		a.stop(false)
	}
	return r, nil
}

// generate uploads snapshots (two uploads at a time) and keeps them in memory
// for the pure-decode run.
func generate(ctx context.Context, o IngestOptions, b bucket.Bucket) ([][]byte, int64, error) {
	gen, err := NewSnapshots(o.Samples)
	if err != nil {
		return nil, 0, err
	}
	var files [][]byte
	var total int64
	sem := make(chan struct{}, 2)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var upErr error
	for total < o.MinBytes || len(files) < o.MinFiles {
		mu.Lock()
		failed := upErr != nil
		mu.Unlock()
		if failed {
			break
		}
		name, data, err := gen.Next()
		if err != nil {
			return nil, 0, err
		}
		files = append(files, data)
		total += int64(len(data))
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			_, err := b.Client.PutObject(ctx, &s3.PutObjectInput{
				Bucket: aws.String(b.Name), Key: aws.String("raw/" + name), Body: bytes.NewReader(data),
			})
			if err != nil {
				mu.Lock()
				if upErr == nil {
					upErr = fmt.Errorf("upload: %w", err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return files, total, upErr
}

type decodeFigure struct {
	mbs     float64
	workers int
}

// pureDecode decodes and aggregates every file from memory the way the
// service does (workers decode, one goroutine merges); best of three runs.
func pureDecode(files [][]byte, workers int) (decodeFigure, int64, int) {
	var size int64
	for _, f := range files {
		size += int64(len(f))
	}
	best := 0.0
	var obs int64
	var aircraft int
	for range 3 {
		start := time.Now()
		in := make(chan []byte)
		out := make(chan *readsb.File, workers)
		var wg sync.WaitGroup
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for data := range in {
					f, err := readsb.Decode(bytes.NewReader(data), readsb.Limits{})
					if err != nil {
						panic(err) // generated data always decodes
					}
					out <- f
				}
			}()
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
		obs = 0
		for f := range out {
			obs += f.Observations
			agg.Merge(f.Aircraft)
		}
		aircraft = len(agg)
		best = max(best, float64(size)/1e6/time.Since(start).Seconds())
	}
	return decodeFigure{mbs: best, workers: workers}, obs, aircraft
}

type service struct{ *aircraftd }

// vmHWM is the high-water resident set size of process pid in bytes (-1 if
// unknown).
func vmHWM(pid int) int64 {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return -1
}

type latencies struct {
	p50, p99, max float64 // ms
	errors        int
	achieved      float64
}

// latency sends GET /aircraft-stats for random known aircraft at a fixed
// rate (open loop: a slow answer does not slow the sender) and measures
// each request.
func (s *service) latency(ctx context.Context, rate int, d time.Duration) (latencies, error) {
	var icaos []string
	after := ""
	for {
		var page struct {
			Items []flight.Aircraft `json:"items"`
			Next  *string           `json:"next"`
		}
		if err := s.call(ctx, "GET", "/api/v1/aircraft?limit=1000&after="+after, nil, &page); err != nil {
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
	run := func(d time.Duration) ([]float64, int, float64) {
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
				resp, err := s.client.Get(s.base + "/aircraft-stats/" + icao)
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
	run(time.Second) // warm up connections and caches
	durs, errs, achieved := run(d)
	slices.Sort(durs)
	pct := func(p float64) float64 { return durs[min(len(durs)-1, int(p*float64(len(durs))))] }
	return latencies{p50: pct(0.50), p99: pct(0.99), max: durs[len(durs)-1], errors: errs, achieved: achieved}, nil
}

// machine describes the machine the figures come from.
func machine() string {
	cpu := "unknown CPU"
	if info, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(info), "\n") {
			if rest, ok := strings.CutPrefix(line, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(rest), ":"))
				break
			}
		}
	}
	var si syscall.Sysinfo_t
	_ = syscall.Sysinfo(&si)
	return fmt.Sprintf("%s, %d cores, %.0f GiB, %s", cpu, runtime.NumCPU(), float64(si.Totalram)*float64(si.Unit)/(1<<30), runtime.Version())
}

// cpuByProcess sums user+system CPU seconds of the running processes with
// the given command names, by name, from /proc.
func cpuByProcess(names ...string) map[string]float64 {
	out := map[string]float64{}
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range dirs {
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		// pid (comm) state ppid … utime(14) stime(15): comm may hold spaces.
		open, end := strings.IndexByte(string(data), '('), strings.LastIndexByte(string(data), ')')
		if open < 0 || end < open {
			continue
		}
		name := string(data[open+1 : end])
		if !slices.Contains(names, name) {
			continue
		}
		f := strings.Fields(string(data[end+2:]))
		if len(f) < 13 {
			continue
		}
		utime, _ := strconv.ParseFloat(f[11], 64)
		stime, _ := strconv.ParseFloat(f[12], 64)
		out[name] += (utime + stime) / 100 // clock ticks (USER_HZ = 100 on Linux)
	}
	return out
}

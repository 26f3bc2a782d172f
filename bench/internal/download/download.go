// Package download is the service's download benchmark (make bench-download): lane downloads by aircraftd as built for
// the instance, on a stack of its own, against s5cmd copying the same objects from the same S3 server, in the same run,
// runs interleaved. The download engine alone (no MongoDB, no HTTP) is measured in the app module (BenchmarkEngine in
// app/internal/download), which make bench-download runs first.
package download

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sys/unix"

	"github.com/aircraftdata/platform/bench/internal/proc"
	"github.com/aircraftdata/platform/bench/internal/runs"
	"github.com/aircraftdata/platform/bench/internal/service"
	"github.com/aircraftdata/platform/test/local"
	"github.com/aircraftdata/platform/test/testkit"
)

// Options configure the benchmark.
type Options struct {
	Runs       int    // timed runs of each contender per shape (the median is reported)
	SmallFiles int    // small files in the first hour
	SmallSize  int64  // bytes per small file
	BigSize    int64  // bytes of the large file
	Scripts    string // the scripts module, for s5cmd
	// Scrape is how often the benchmark scrapes the services' /metrics while they download, as Prometheus would (0:
	// never).
	Scrape time.Duration
	// MetricsOff adds the contender "service, metrics off": the service with METRICS_ADDR=off, never scraped.
	MetricsOff bool
	// Before, when set, is the app/ folder of a checkout of the code to compare with: the contender "service, before",
	// on a stack of its own (its own file records) reading the same bucket, never scraped (it may predate the metrics).
	Before string
}

const (
	prefix = "bench/"
	lane   = "lane1"
	day    = "2024-01-01"
)

// shape is one of the two workloads: an hour of the lane.
type shape struct {
	name  string
	hour  int
	files int
	bytes int64
}

func (s shape) dir() string { return fmt.Sprintf("%s/2024/01/01/%02d", lane, s.hour) }

// contender is one of the services the benchmark runs, and whether its metrics are scraped during its runs.
type contender struct {
	svc    *service.Service
	scrape bool
}

// Run compares lane downloads with s5cmd:
//
//   - 200 × 1 MiB files (one lane hour) and 1 × 1 GiB (another hour);
//   - "service": POST /api/v1/download on aircraftd as deployed: files durable (O_DIRECT, fsync), status in MongoDB
//     (the local stack's FerretDB); "service, no fsync" is a second aircraftd with DOWNLOAD_FSYNC=false;
//   - s5cmd v2.3.0 (pinned in scripts/go.mod) copying the same objects, and s5cmd followed by an fsync of every file it
//     wrote (the durable reference for the service);
//   - with MetricsOff, "service, metrics off", and with Before, "service, before" (Options).
//
// The services' metrics are scraped during their runs (Options.Scrape). Every round runs each contender once, the first
// of each round rotating (runs.Order).
//
// It prints, per shape, the median MB/s of each, its ratio to s5cmd, and the median CPU time each run took in the
// client (this process, its children and the services), the S3 server and the MongoDB server: on 2 cores a run that
// needs more CPU than the others is slower whatever it waits on. Then the peak RSS of the service while it downloads 1
// GiB (VmHWM, reset before) and of s5cmd. Figures, never assertions.
func Run(ctx context.Context, o Options, out io.Writer) error {
	tmp, err := os.MkdirTemp("", "bench-download-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	log := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }

	log("building aircraftd (the release build) and s5cmd ...")
	bin, err := local.BuildService(testkit.RepoRoot(), filepath.Join(tmp, "bin"))
	if err != nil {
		return err
	}
	var binBefore string
	if o.Before != "" {
		if binBefore, err = local.BuildService(filepath.Dir(o.Before), filepath.Join(tmp, "bin-before")); err != nil {
			return fmt.Errorf("build the code to compare with: %w", err)
		}
	}
	s5 := filepath.Join(tmp, "s5cmd")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", s5, "github.com/peak/s5cmd/v2")
	cmd.Dir, cmd.Env = o.Scripts, append(os.Environ(), "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build s5cmd: %w\n%s", err, b)
	}

	stack, err := local.OpenStack(ctx)
	if err != nil {
		return err
	}
	defer stack.Close()

	small := shape{name: fmt.Sprintf("%d × %s", o.SmallFiles, size(o.SmallSize)), hour: 0, files: o.SmallFiles, bytes: int64(o.SmallFiles) * o.SmallSize}
	big := shape{name: "1 × " + size(o.BigSize), hour: 1, files: 1, bytes: o.BigSize}
	log("uploading %s and %s to s3://%s/%s (SDK default checksum: CRC32) ...", small.name, big.name, stack.Bucket, prefix)
	sums, err := upload(ctx, stack, o, small, big, tmp)
	if err != nil {
		return err
	}

	// The services on the stack: one set of file records (MongoDB), a download folder each; the code to compare with on
	// a stack of its own, reading this bucket (its records may be laid out otherwise). LOG_LEVEL=warn: a line per file
	// would be the log's cost, not the download's.
	services := map[string]contender{}
	names := []string{"service", "service, no fsync"}
	var compared []string // the variants of the service compared with "service" run by run
	start := func(name string, st *local.Stack, bin string, scrape bool, env map[string]string) (*service.Service, error) {
		env["LOG_LEVEL"] = "warn"
		s, err := service.Start(ctx, st, bin, filepath.Join(tmp, strings.NewReplacer(" ", "", ",", "-").Replace(name)), env)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		services[name] = contender{svc: s, scrape: scrape}
		return s, nil
	}
	defer func() {
		for _, c := range services {
			_ = c.svc.Stop()
		}
	}()
	svc, err := start("service", stack, bin, true, map[string]string{})
	if err != nil {
		return err
	}
	if _, err := start("service, no fsync", stack, bin, true, map[string]string{"DOWNLOAD_FSYNC": "false"}); err != nil {
		return err
	}
	if o.MetricsOff {
		names = append(names, "service, metrics off")
		compared = append(compared, "service, metrics off")
		if _, err := start("service, metrics off", stack, bin, false, map[string]string{"METRICS_ADDR": "off"}); err != nil {
			return err
		}
	}
	if o.Before != "" {
		other, err := local.OpenStack(ctx)
		if err != nil {
			return err
		}
		defer other.Close()
		names = append(names, "service, before")
		compared = append(compared, "service, before")
		before, err := start("service, before", other, binBefore, false, map[string]string{"S3_BUCKET": stack.Bucket})
		if err != nil {
			return err
		}
		if err := index(ctx, before, o); err != nil {
			return fmt.Errorf("service, before: %w", err)
		}
	}
	if err := index(ctx, svc, o); err != nil {
		return err
	}
	names = append(names, "s5cmd", "s5cmd+fsync")

	f := figures{names: names, compared: compared, shapes: []shape{small, big}, mbps: map[string]map[string][]float64{},
		cpu: map[string]map[string]map[string][]float64{}, scrapes: map[string]int{}, services: services}
	mbps, cpu := f.mbps, f.cpu
	serviceRun := func(name string, sh shape) (time.Duration, error) {
		s := services[name].svc
		if err := os.RemoveAll(filepath.Join(s.Downloads, sh.dir())); err != nil {
			return 0, err
		}
		if sh == big && s == svc {
			if err := proc.ResetPeakRSS(s.Pid()); err != nil {
				return 0, err
			}
		}
		var every time.Duration
		if services[name].scrape {
			every = o.Scrape
		}
		stop, err := s.ScrapeMetrics(ctx, every)
		if err != nil {
			return 0, err
		}
		t0 := time.Now()
		err = download(ctx, s, sh)
		d := time.Since(t0)
		n, scrapeErr := stop()
		f.scrapes[name] += n
		if err = errors.Join(err, scrapeErr); err != nil {
			return 0, err
		}
		if sh == big && s == svc {
			rss, err := s.PeakRSS()
			if err != nil {
				return 0, err
			}
			f.svcRSS = max(f.svcRSS, rss)
		}
		return d, nil
	}
	s5out := filepath.Join(tmp, "s5cmd-out")
	for _, sh := range []shape{small, big} {
		mbps[sh.name], cpu[sh.name] = map[string][]float64{}, map[string]map[string][]float64{}
		s5runs := map[string]func() (time.Duration, error){
			"s5cmd": func() (time.Duration, error) {
				d, rss, err := s5cmd(ctx, s5, stack.S3Endpoint, stack.Bucket, sh, s5out, false)
				if sh == big {
					f.s5RSS = max(f.s5RSS, rss)
				}
				return d, err
			},
			"s5cmd+fsync": func() (time.Duration, error) {
				d, _, err := s5cmd(ctx, s5, stack.S3Endpoint, stack.Bucket, sh, s5out, true)
				return d, err
			},
		}
		log("%s: warm-up, then %d timed runs of each, interleaved ...", sh.name, o.Runs)
		for round, order := range runs.Order(len(names), o.Runs+1) {
			for _, i := range order {
				name := names[i]
				// Untimed: write back what earlier runs left dirty, so that no run pays for the one before it (a run
				// without fsync leaves its files to the kernel's flusher).
				if err := syncFS(tmp); err != nil {
					return err
				}
				before := cpuOfRun(services)
				var d time.Duration
				var err error
				if run, ok := s5runs[name]; ok {
					d, err = run()
				} else {
					d, err = serviceRun(name, sh)
				}
				if err != nil {
					return fmt.Errorf("%s, %s: %w", sh.name, name, err)
				}
				if round == 0 { // the first round warms caches and connections
					continue
				}
				mbps[sh.name][name] = append(mbps[sh.name][name], float64(sh.bytes)/1e6/d.Seconds())
				if cpu[sh.name][name] == nil {
					cpu[sh.name][name] = map[string][]float64{}
				}
				for part, v := range cpuOfRun(services) {
					cpu[sh.name][name][part] = append(cpu[sh.name][name][part], (v-before[part])*1000)
				}
			}
		}
	}

	// What was written is what was uploaded (sha256 of the generated bytes); s5cmd writes an hour's files flat into its
	// folder.
	for _, sh := range []shape{small, big} {
		dirs := []string{filepath.Join(s5out, fmt.Sprint(sh.hour))}
		for _, c := range services {
			dirs = append(dirs, filepath.Join(c.svc.Downloads, sh.dir()))
		}
		for _, dir := range dirs {
			if err := verify(dir, sh, sums); err != nil {
				return err
			}
		}
	}

	fmt.Fprintf(out, "\nmachine  %s\n", proc.Machine())
	fmt.Fprintf(out, "S3 versitygw (local stack) at %s; MongoDB wire: FerretDB (local stack)\n", stack.S3Endpoint)
	return f.report(out, o)
}

// figures are what a run measured.
type figures struct {
	names    []string // the contenders, in the order of the table
	compared []string // the variants of the service compared with "service" run by run
	shapes   []shape
	mbps     map[string]map[string][]float64            // shape → contender → MB/s of each timed run
	cpu      map[string]map[string]map[string][]float64 // shape → contender → part (client, s3, mongodb) → CPU ms
	scrapes  map[string]int                             // contender → scrapes of its metrics
	services map[string]contender
	svcRSS   int64 // peak RSS of "service" downloading the big file
	s5RSS    int64 // s5cmd's
}

// report prints the figures: per shape, the median of each contender, then every run, the compared variants run by run,
// and the peak RSS.
func (f figures) report(out io.Writer, o Options) error {
	var scraped []string
	for _, name := range f.names {
		if f.services[name].scrape {
			scraped = append(scraped, fmt.Sprintf("%s (%d scrapes)", name, f.scrapes[name]))
		}
	}
	fmt.Fprintf(out, "metrics scraped every %s (0s: never) during the runs of: %s\n", o.Scrape, strings.Join(scraped, ", "))
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	for _, sh := range f.shapes {
		fmt.Fprintf(w, "\n%s, median of %d runs\tMB/s\t× s5cmd\t× s5cmd+fsync\tCPU ms: client\tS3 server\tMongoDB\ttotal\t\n", sh.name, o.Runs)
		ref, refSync := runs.Median(f.mbps[sh.name]["s5cmd"]), runs.Median(f.mbps[sh.name]["s5cmd+fsync"])
		for _, name := range f.names {
			m := runs.Median(f.mbps[sh.name][name])
			c := f.cpu[sh.name][name]
			fmt.Fprintf(w, "%s\t%.0f\t%.2f\t%.2f\t%.0f\t%.0f\t%.0f\t%.0f\t\n", name, m, m/ref, m/refSync,
				runs.Median(c["client"]), runs.Median(c["s3"]), runs.Median(c["mongodb"]),
				runs.Median(sum(c["client"], c["s3"], c["mongodb"])))
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(out)
	for _, sh := range f.shapes {
		var parts []string
		for _, name := range f.names {
			parts = append(parts, name+" "+list(f.mbps[sh.name][name]))
		}
		fmt.Fprintf(out, "all runs, %s, MB/s: %s\n", sh.name, strings.Join(parts, " | "))
	}
	for _, name := range f.compared {
		var parts []string
		for _, sh := range f.shapes {
			parts = append(parts, fmt.Sprintf("%s %s", sh.name,
				runs.Of(runs.Ratios(f.mbps[sh.name]["service"], f.mbps[sh.name][name])).Format(2)))
		}
		fmt.Fprintf(out, "service / %s, MB/s run by run, median (min–max): %s\n", name, strings.Join(parts, "; "))
	}
	fmt.Fprintf(out, "peak RSS downloading %s: service %.0f MiB (VmHWM, target <= 64), s5cmd %.0f MiB\n", size(o.BigSize),
		float64(f.svcRSS)/(1<<20), float64(f.s5RSS)/(1<<20))
	fmt.Fprintf(out, "targets: service >= 1.0x s5cmd on both shapes; RSS <= 64 MiB (engine alone: BenchmarkEngine above)\n")
	return nil
}

// cpuOfRun reads the CPU seconds used so far by the parts of a run: the client (this process, its waited-for children
// such as s5cmd, and the benchmark's aircraftd services), the S3 server and the MongoDB server of the stack (every
// process of that name: other users of the stack too).
func cpuOfRun(services map[string]contender) map[string]float64 {
	procs := proc.CPUByName("versitygw", "ferretdb")
	var self, children syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children)
	secs := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	client := secs(self.Utime) + secs(self.Stime) + secs(children.Utime) + secs(children.Stime)
	for _, c := range services {
		client += proc.CPU(c.svc.Pid())
	}
	return map[string]float64{"client": client, "s3": procs["versitygw"], "mongodb": procs["ferretdb"]}
}

// syncFS writes back the dirty data of the file system holding dir.
func syncFS(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Syncfs(int(f.Fd()))
}

// sum adds slices element by element.
func sum(vs ...[]float64) []float64 {
	var out []float64
	for _, v := range vs {
		for i, x := range v {
			if i == len(out) {
				out = append(out, 0)
			}
			out[i] += x
		}
	}
	return out
}

// upload writes the small files and the big one (generated, seeded) and returns the sha256 of each by file name.
func upload(ctx context.Context, stack *local.Stack, o Options, small, big shape, tmp string) (map[string][32]byte, error) {
	sums := map[string][32]byte{}
	rng := rand.New(rand.NewPCG(2024, 1))
	fill := func(p []byte) {
		for i := 0; i+8 <= len(p); i += 8 {
			v := rng.Uint64()
			for j := range 8 {
				p[i+j] = byte(v >> (8 * j))
			}
		}
	}
	put := func(key string, body io.Reader) error {
		_, err := stack.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(stack.Bucket), Key: aws.String(prefix + key), Body: body})
		return err
	}
	buf := make([]byte, o.SmallSize)
	for i := range small.files {
		fill(buf)
		name := fmt.Sprintf("f%03d.bin", i)
		sums[small.dir()+"/"+name] = sha256.Sum256(buf)
		if err := put(small.dir()+"/"+name, bytes.NewReader(buf)); err != nil {
			return nil, err
		}
	}
	// The big file goes through a temp file: no GiB in memory.
	f, err := os.Create(filepath.Join(tmp, "big.src"))
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	h := sha256.New()
	chunk := make([]byte, 4<<20)
	for n := int64(0); n < o.BigSize; n += int64(len(chunk)) {
		c := chunk[:min(int64(len(chunk)), o.BigSize-n)]
		fill(c)
		h.Write(c)
		if _, err := f.Write(c); err != nil {
			return nil, err
		}
	}
	sums[big.dir()+"/big.bin"] = [32]byte(h.Sum(nil))
	if _, err := f.Seek(0, 0); err != nil {
		return nil, err
	}
	if err := put(big.dir()+"/big.bin", f); err != nil {
		return nil, err
	}
	return sums, nil
}

// verify checks the files of sh in dir against the uploaded bytes.
func verify(dir string, sh shape, sums map[string][32]byte) error {
	n := 0
	for name, want := range sums {
		if filepath.Dir(name) != sh.dir() {
			continue
		}
		f, err := os.Open(filepath.Join(dir, filepath.Base(name)))
		if err != nil {
			return err
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return err
		}
		if [32]byte(h.Sum(nil)) != want {
			return fmt.Errorf("%s differs from what was uploaded", f.Name())
		}
		n++
	}
	if n != sh.files {
		return fmt.Errorf("%s: %d files checked, want %d", dir, n, sh.files)
	}
	return nil
}

// s5cmd copies the hour's objects into dir/<hour>/ and returns the time taken and its peak RSS. With fsync, every file
// it wrote is then synced (part of the time).
func s5cmd(ctx context.Context, bin, endpoint, bucketName string, sh shape, dir string, fsync bool) (time.Duration, int64, error) {
	dst := filepath.Join(dir, fmt.Sprint(sh.hour))
	if err := os.RemoveAll(dst); err != nil {
		return 0, 0, err
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return 0, 0, err
	}
	cmd := exec.CommandContext(ctx, bin, "--endpoint-url", endpoint, "cp",
		fmt.Sprintf("s3://%s/%s%s/*", bucketName, prefix, sh.dir()), dst+"/")
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	t0 := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, 0, fmt.Errorf("s5cmd: %w: %s", err, stderr.String())
	}
	if fsync {
		entries, err := os.ReadDir(dst)
		if err != nil {
			return 0, 0, err
		}
		for _, e := range entries {
			f, err := os.Open(filepath.Join(dst, e.Name()))
			if err != nil {
				return 0, 0, err
			}
			err = f.Sync()
			f.Close()
			if err != nil {
				return 0, 0, err
			}
		}
		if d, err := os.Open(dst); err == nil {
			_ = d.Sync()
			d.Close()
		}
	}
	d := time.Since(t0)
	var rss int64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss << 10
	}
	return d, rss, nil
}

// index has s register the benchmark's objects (its file records).
func index(ctx context.Context, s *service.Service, o Options) error {
	var idx struct {
		Added int `json:"added"`
	}
	if err := s.Call(ctx, http.MethodPost, "/api/v1/files/index", map[string]any{"prefix": prefix}, &idx); err != nil {
		return err
	}
	if idx.Added != o.SmallFiles+1 {
		return fmt.Errorf("index registered %d files, want %d", idx.Added, o.SmallFiles+1)
	}
	return nil
}

// download has s download the hour of sh and checks that every file came.
func download(ctx context.Context, s *service.Service, sh shape) error {
	var res struct {
		Downloaded int `json:"downloaded_count"`
		Failed     int `json:"failure_count"`
		Failures   any `json:"failures"`
	}
	if err := s.Call(ctx, http.MethodPost, "/api/v1/download", map[string]any{"lane_id": lane, "date": day, "hour": sh.hour}, &res); err != nil {
		return err
	}
	if res.Downloaded != sh.files || res.Failed != 0 {
		return fmt.Errorf("service downloaded %d of %d files, failures %v", res.Downloaded, sh.files, res.Failures)
	}
	return nil
}

func list(v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = strconv.FormatFloat(x, 'f', 0, 64)
	}
	return strings.Join(parts, " ")
}

func size(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d B", n)
}

package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sys/unix"

	"github.com/aircraftdata/platform/app/internal/bucket"
	"github.com/aircraftdata/platform/app/internal/download"
	"github.com/aircraftdata/platform/app/internal/lanes"
	"github.com/aircraftdata/platform/app/internal/mongo"
	"github.com/aircraftdata/platform/app/internal/stacktest"
)

// DownloadOptions configure the download benchmark.
type DownloadOptions struct {
	Runs       int    // timed runs of each contender per shape (the median is reported)
	SmallFiles int    // small files in the first hour
	SmallSize  int64  // bytes per small file
	BigSize    int64  // bytes of the large file
	Scripts    string // the scripts module, for s5cmd
	Keep       bool   // keep the bucket, databases and files
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

// Download compares lane downloads with s5cmd on the local
// stack (make bench-download): the same objects, the same S3 server, in the
// same run, runs interleaved.
//
//   - 200 × 1 MiB files (one lane hour) and 1 × 1 GiB (another hour);
//   - "service": POST /api/v1/download on the real aircraftd binary, as
//     deployed: files durable (O_DIRECT, fsync), status in MongoDB (the
//     local stack's FerretDB); "service, no fsync" is a second aircraftd with
//     DOWNLOAD_FSYNC=false, the same job as s5cmd's plus the bookkeeping;
//   - "engine": the same downloader in this process with the records in
//     memory and no fsync: the job s5cmd does; "engine+fsync" and
//     "engine+mongo" add one of the two costs the service pays, to show
//     where its time goes;
//   - s5cmd v2.3.0 (pinned in scripts/go.mod) copying the same objects, and
//     s5cmd followed by an fsync of every file it wrote (the durable
//     reference for the service).
//
// It prints, per shape, the median MB/s of each, its ratio to s5cmd, and the
// median CPU time each run took in the client (this process, its children
// and the services), the S3 server and the MongoDB server: on 2 cores a
// run that needs more CPU than the others is slower whatever it waits on.
// Then the peak RSS of the service while it downloads 1 GiB (VmHWM, reset
// before) and of s5cmd. Figures, never assertions.
func Download(ctx context.Context, o DownloadOptions, out io.Writer) error {
	for _, k := range []string{"S3_ENDPOINT", "AWS_ACCESS_KEY_ID", "MONGODB_URL", "DB_ADMIN_URL"} {
		if os.Getenv(k) == "" {
			return fmt.Errorf("%s not set: run under the local stack (make bench-download)", k)
		}
	}
	tmp, err := os.MkdirTemp("", "bench-download-")
	if err != nil {
		return err
	}
	if !o.Keep {
		defer os.RemoveAll(tmp)
	}
	log := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }

	log("building aircraftd and s5cmd ...")
	bin, err := buildAircraftd(ctx, tmp)
	if err != nil {
		return err
	}
	s5 := filepath.Join(tmp, "s5cmd")
	if err := goBuild(ctx, o.Scripts, []string{"GOWORK=off"}, s5, "github.com/peak/s5cmd/v2"); err != nil {
		return err
	}

	endpoint := os.Getenv("S3_ENDPOINT")
	s3c, err := bucket.NewClient(ctx, "us-east-1", endpoint)
	if err != nil {
		return err
	}
	stamp := time.Now().UnixNano()
	b := bucket.Bucket{Client: s3c, Name: fmt.Sprintf("bench-download-%d", stamp)}
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b.Name)}); err != nil {
		return fmt.Errorf("create bucket: %w", err)
	}
	if !o.Keep {
		defer stacktest.RemoveBucket(s3c, b.Name)
	}

	small := shape{name: fmt.Sprintf("%d × %s", o.SmallFiles, size(o.SmallSize)), hour: 0, files: o.SmallFiles, bytes: int64(o.SmallFiles) * o.SmallSize}
	big := shape{name: "1 × " + size(o.BigSize), hour: 1, files: 1, bytes: o.BigSize}
	log("uploading %s and %s to s3://%s/%s (SDK default checksum: CRC32) ...", small.name, big.name, b.Name, prefix)
	sums, err := upload(ctx, b, o, small, big, tmp)
	if err != nil {
		return err
	}

	mongoDB := fmt.Sprintf("bench_download_%d", stamp)
	svc, err := startDownloadService(ctx, bin, tmp, b.Name, mongoDB)
	if err != nil {
		return err
	}
	defer svc.stop(o.Keep)
	svcNoSync, err := startDownloadService(ctx, bin, tmp, b.Name, mongoDB, "DOWNLOAD_FSYNC=false")
	if err != nil {
		return err
	}
	defer svcNoSync.stop(o.Keep)
	store, err := mongo.Open(ctx, mongo.Options{URL: os.Getenv("MONGODB_URL"), Database: mongoDB})
	if err != nil {
		return err
	}
	defer func() { // dropped before the client closes (deferred calls run last first)
		if !o.Keep {
			_ = store.DropDatabase(context.WithoutCancel(ctx))
		}
		_ = store.Close(context.WithoutCancel(ctx))
	}()

	var idx struct {
		Added int `json:"added"`
	}
	if err := svc.call(ctx, "POST", "/api/v1/files/index", map[string]any{"prefix": prefix}, &idx); err != nil {
		return err
	}
	if idx.Added != o.SmallFiles+1 {
		return fmt.Errorf("index registered %d files, want %d", idx.Added, o.SmallFiles+1)
	}

	engine, err := newEngine(ctx, store, s3c, b.Name, filepath.Join(tmp, "engine"), false)
	if err != nil {
		return err
	}
	defer engine.Close()
	engineSync, err := newEngine(ctx, store, s3c, b.Name, filepath.Join(tmp, "engine-fsync"), true)
	if err != nil {
		return err
	}
	defer engineSync.Close()
	engineMongo, err := download.New(download.Config{Store: store, S3: s3c, Bucket: b.Name, Root: filepath.Join(tmp, "engine-mongo"),
		Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	defer engineMongo.Close()
	runEngine := func(d *download.Downloader, sh shape, h lanes.Hour) (time.Duration, error) {
		if err := os.RemoveAll(filepath.Join(d.Root(), sh.dir())); err != nil {
			return 0, err
		}
		t0 := time.Now()
		res, err := d.Download(ctx, h, nil)
		took := time.Since(t0)
		if err == nil && (res.Downloaded != sh.files || res.FailureCount > 0) {
			err = fmt.Errorf("%d downloaded, failures %v", res.Downloaded, res.Failures)
		}
		return took, err
	}

	// shape → contender → one figure per timed run
	mbps := map[string]map[string][]float64{}
	cpu := map[string]map[string]map[string][]float64{} // … → part (client, s3, mongodb) → CPU ms
	var svcRSS, s5RSS int64
	serviceRun := func(s *dlService, sh shape) (time.Duration, error) {
		if err := os.RemoveAll(filepath.Join(s.downloads, sh.dir())); err != nil {
			return 0, err
		}
		if sh == big && s == svc {
			s.resetPeakRSS()
		}
		t0 := time.Now()
		err := s.download(ctx, sh)
		d := time.Since(t0)
		if sh == big && s == svc {
			svcRSS = max(svcRSS, s.peakRSS())
		}
		return d, err
	}
	names := []string{"service", "service, no fsync", "engine", "engine+fsync", "engine+mongo", "s5cmd", "s5cmd+fsync"}
	for _, sh := range []shape{small, big} {
		mbps[sh.name], cpu[sh.name] = map[string][]float64{}, map[string]map[string][]float64{}
		h, _ := lanes.NewHour(lane, day, sh.hour)
		runs := map[string]func() (time.Duration, error){
			"service":           func() (time.Duration, error) { return serviceRun(svc, sh) },
			"service, no fsync": func() (time.Duration, error) { return serviceRun(svcNoSync, sh) },
			"engine":            func() (time.Duration, error) { return runEngine(engine, sh, h) },
			"engine+fsync":      func() (time.Duration, error) { return runEngine(engineSync, sh, h) },
			"engine+mongo":      func() (time.Duration, error) { return runEngine(engineMongo, sh, h) },
			"s5cmd": func() (time.Duration, error) {
				d, rss, err := s5cmd(ctx, s5, endpoint, b.Name, sh, filepath.Join(tmp, "s5cmd-out"), false)
				if sh == big {
					s5RSS = max(s5RSS, rss)
				}
				return d, err
			},
			"s5cmd+fsync": func() (time.Duration, error) {
				d, _, err := s5cmd(ctx, s5, endpoint, b.Name, sh, filepath.Join(tmp, "s5cmd-out"), true)
				return d, err
			},
		}
		log("%s: warm-up, then %d timed runs of each, interleaved ...", sh.name, o.Runs)
		for i := -1; i < o.Runs; i++ {
			for _, name := range names {
				// Untimed: write back what earlier runs left dirty, so that
				// no run pays for the one before it (a run without fsync
				// leaves its files to the kernel's flusher).
				if err := syncFS(tmp); err != nil {
					return err
				}
				before := cpuOfRun()
				d, err := runs[name]()
				if err != nil {
					return fmt.Errorf("%s, %s: %w", sh.name, name, err)
				}
				if i < 0 { // the first round warms caches and connections
					continue
				}
				mbps[sh.name][name] = append(mbps[sh.name][name], float64(sh.bytes)/1e6/d.Seconds())
				if cpu[sh.name][name] == nil {
					cpu[sh.name][name] = map[string][]float64{}
				}
				for part, v := range cpuOfRun() {
					cpu[sh.name][name][part] = append(cpu[sh.name][name][part], (v-before[part])*1000)
				}
			}
		}
	}

	// What was written is what was uploaded (sha256 of the generated bytes).
	for _, sh := range []shape{small, big} {
		for _, root := range []string{svc.downloads, svcNoSync.downloads, engine.Root(), engineSync.Root(), engineMongo.Root(), filepath.Join(tmp, "s5cmd-out")} {
			if err := verify(root, sh, sums); err != nil {
				return err
			}
		}
	}

	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(out, "\nmachine  %s\n", machine())
	fmt.Fprintf(out, "S3 versitygw (local stack) at %s; MongoDB wire: FerretDB (local stack)\n", endpoint)
	for _, sh := range []shape{small, big} {
		fmt.Fprintf(w, "\n%s, median of %d runs\tMB/s\t× s5cmd\t× s5cmd+fsync\tCPU ms: client\tS3 server\tMongoDB\ttotal\t\n", sh.name, o.Runs)
		ref, refSync := median(mbps[sh.name]["s5cmd"]), median(mbps[sh.name]["s5cmd+fsync"])
		for _, name := range names {
			m := median(mbps[sh.name][name])
			c := cpu[sh.name][name]
			client, s3cpu, mongoCPU := median(c["client"]), median(c["s3"]), median(c["mongodb"])
			fmt.Fprintf(w, "%s\t%.0f\t%.2f\t%.2f\t%.0f\t%.0f\t%.0f\t%.0f\t\n", name, m, m/ref, m/refSync,
				client, s3cpu, mongoCPU, median(sum(c["client"], c["s3"], c["mongodb"])))
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(out)
	for _, sh := range []shape{small, big} {
		var parts []string
		for _, name := range names {
			parts = append(parts, name+" "+list(mbps[sh.name][name]))
		}
		fmt.Fprintf(out, "all runs, %s, MB/s: %s\n", sh.name, strings.Join(parts, " | "))
	}
	fmt.Fprintf(out, "peak RSS downloading %s: service %.0f MiB (VmHWM, target <= 64), s5cmd %.0f MiB\n", size(o.BigSize),
		float64(svcRSS)/(1<<20), float64(s5RSS)/(1<<20))
	fmt.Fprintf(out, "targets: service >= 1.0x s5cmd on both shapes; RSS <= 64 MiB\n")
	return nil
}

// cpuOfRun reads the CPU seconds used so far by the parts of a run: the
// client (this process, its waited-for children such as s5cmd, and the
// aircraftd services), the S3 server and the MongoDB server of the stack.
func cpuOfRun() map[string]float64 {
	procs := cpuByProcess("aircraftd", "versitygw", "ferretdb")
	var self, children syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children)
	secs := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	client := secs(self.Utime) + secs(self.Stime) + secs(children.Utime) + secs(children.Stime) + procs["aircraftd"]
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

func goBuild(ctx context.Context, dir string, env []string, out, pkg string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}

// upload writes the small files and the big one (generated, seeded) and
// returns the sha256 of each by file name.
func upload(ctx context.Context, b bucket.Bucket, o DownloadOptions, small, big shape, tmp string) (map[string][32]byte, error) {
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
	buf := make([]byte, o.SmallSize)
	for i := range small.files {
		fill(buf)
		name := fmt.Sprintf("f%03d.bin", i)
		sums[small.dir()+"/"+name] = sha256.Sum256(buf)
		if _, err := b.Client.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(b.Name), Key: aws.String(prefix + small.dir() + "/" + name), Body: bytes.NewReader(buf),
		}); err != nil {
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
	if _, err := b.Client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(b.Name), Key: aws.String(prefix + big.dir() + "/big.bin"), Body: f,
	}); err != nil {
		return nil, err
	}
	return sums, nil
}

// verify checks the files of sh below root against the uploaded bytes
// (s5cmd writes an hour's files flat into its folder).
func verify(root string, sh shape, sums map[string][32]byte) error {
	n := 0
	for name, want := range sums {
		dir, file := filepath.Split(name)
		if filepath.Clean(dir) != sh.dir() {
			continue
		}
		path := filepath.Join(root, sh.dir(), file)
		if strings.HasSuffix(root, "s5cmd-out") {
			path = filepath.Join(root, fmt.Sprint(sh.hour), file)
		}
		f, err := os.Open(path)
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
			return fmt.Errorf("%s differs from what was uploaded", path)
		}
		n++
	}
	if n != sh.files {
		return fmt.Errorf("%s: %d files checked, want %d", root, n, sh.files)
	}
	return nil
}

// s5cmd copies the hour's objects into dir/<hour>/ and returns the time
// taken and its peak RSS. With fsync, every file it wrote is then synced
// (part of the time).
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

// newEngine is the downloader with its records in memory: the transfer
// alone.
func newEngine(ctx context.Context, store *mongo.Store, s3c *s3.Client, bucketName, root string, durable bool) (*download.Downloader, error) {
	mem := &memStore{recs: map[string]lanes.Record{}}
	for _, hr := range []int{0, 1} {
		h, _ := lanes.NewHour(lane, day, hr)
		var rs []lanes.Record
		if err := store.ForHour(ctx, h, func(b []lanes.Record) error { rs = append(rs, b...); return nil }); err != nil {
			return nil, err
		}
		mem.byHour = append(mem.byHour, rs)
	}
	return download.New(download.Config{Store: mem, S3: s3c, Bucket: bucketName, Root: root, Durable: durable,
		Log: slog.New(slog.DiscardHandler)})
}

type memStore struct {
	byHour [][]lanes.Record
	recs   map[string]lanes.Record
}

func (m *memStore) ForHour(_ context.Context, h lanes.Hour, fn func([]lanes.Record) error) error {
	return fn(m.byHour[h.Start.Hour()])
}

func (m *memStore) Claim(context.Context, string, string, time.Time, time.Duration) (bool, error) {
	return true, nil
}
func (m *memStore) Renew(context.Context, string, string, time.Time) error  { return nil }
func (m *memStore) Update(context.Context, []lanes.Change, time.Time) error { return nil }
func (m *memStore) Release(context.Context, string, string) error           { return nil }

// dlService is the aircraftd binary, run like in production but on the local
// stack, with plain HTTP on a free port.
type dlService struct {
	*aircraftd
	downloads string
}

func startDownloadService(ctx context.Context, bin, tmp, bucketName, mongoDB string, env ...string) (*dlService, error) {
	downloads, err := os.MkdirTemp(tmp, "service-")
	if err != nil {
		return nil, err
	}
	s := &dlService{downloads: downloads}
	s.aircraftd, err = startAircraftd(ctx, bin, "", append([]string{"S3_BUCKET=" + bucketName, "SOURCE_BUCKET=" + bucketName,
		"MONGODB_DB_NAME=" + mongoDB, "DOWNLOAD_PATH=" + s.downloads}, env...)...)
	return s, err
}

func (s *dlService) download(ctx context.Context, sh shape) error {
	var res struct {
		Downloaded int `json:"downloaded_count"`
		Failed     int `json:"failure_count"`
		Failures   any `json:"failures"`
	}
	if err := s.call(ctx, "POST", "/api/v1/download", map[string]any{"lane_id": lane, "date": day, "hour": sh.hour}, &res); err != nil {
		return err
	}
	if res.Downloaded != sh.files || res.Failed != 0 {
		return fmt.Errorf("service downloaded %d of %d files, failures %v", res.Downloaded, sh.files, res.Failures)
	}
	return nil
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
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

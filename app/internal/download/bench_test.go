package download_test

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/aircraftdata/platform/app/internal/config"
	"github.com/aircraftdata/platform/app/internal/download"
	"github.com/aircraftdata/platform/app/internal/download/downloadtest"
	"github.com/aircraftdata/platform/app/internal/lanes"
	"github.com/aircraftdata/platform/app/internal/mongo/mongotest"
	"github.com/aircraftdata/platform/app/internal/stacktest"
)

// BenchmarkEngine is the downloader alone against the local S3 server, in this process, on the shapes of make
// bench-download (200 × 1 MiB in one lane hour, 1 × 1 GiB in another), which prints it beside the service's figures and
// s5cmd's:
//
//   - engine: the records in memory, files not synced: the job s5cmd does;
//   - engine+fsync: the same, durable (O_DIRECT, fsync before rename), as the service writes by default;
//   - engine+mongo: not synced, the status of every file written to the local stack's MongoDB wire server.
//
// Every run starts after an untimed sync, with the hour's folder removed; MB/s is the mean over the runs (-benchtime
// Nx: N runs after a first, warm-up one), cpu-ms/op the CPU this process spent in a run.
func BenchmarkEngine(b *testing.B) {
	def := config.Defaults()
	bk := stacktest.Bucket(b)
	store := mongotest.Store(b)
	const day = "2024-01-01"
	type shape struct {
		name  string
		hour  int
		files int
		size  int64
	}
	shapes := []shape{{"200x1MiB", 0, 200, 1 << 20}, {"1x1GiB", 1, 1, 1 << 30}}
	random := rand.NewChaCha8([32]byte{20, 24})
	tmp := b.TempDir()
	for _, sh := range shapes {
		// Each file through a temp file: no GiB in memory.
		buf := make([]byte, min(sh.size, 4<<20))
		for i := range sh.files {
			f, err := os.Create(filepath.Join(tmp, "src"))
			if err != nil {
				b.Fatal(err)
			}
			for n := int64(0); n < sh.size; n += int64(len(buf)) {
				c := buf[:min(int64(len(buf)), sh.size-n)]
				_, _ = random.Read(c)
				if _, err := f.Write(c); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := f.Seek(0, 0); err != nil {
				b.Fatal(err)
			}
			key := fmt.Sprintf("bench/lane1/2024/01/01/%02d/f%03d.bin", sh.hour, i)
			_, err = bk.Client.PutObject(b.Context(), &s3.PutObjectInput{Bucket: aws.String(bk.Name), Key: aws.String(key), Body: f})
			f.Close()
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	ix := &download.Indexer{Store: store, Bucket: bk, Log: slog.New(slog.DiscardHandler)}
	if _, err := ix.Index(b.Context(), "bench/", nil); err != nil {
		b.Fatal(err)
	}
	mem := &downloadtest.Store{} // the downloader without its store
	for _, sh := range shapes {
		h, err := lanes.NewHour("lane1", day, sh.hour)
		if err != nil {
			b.Fatal(err)
		}
		if err := store.ForHour(b.Context(), h, func(rs []lanes.Record) error {
			mem.Put(rs...)
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}

	variants := []struct {
		name  string
		store interface {
			download.Records
			download.Claims
		}
		durable bool
	}{{"engine", mem, false}, {"engine+fsync", mem, true}, {"engine+mongo", store, false}}
	for _, sh := range shapes {
		h, _ := lanes.NewHour("lane1", day, sh.hour)
		for _, v := range variants {
			b.Run(sh.name+"/"+v.name, func(b *testing.B) {
				d, err := download.New(download.Config{Records: v.store, Claims: v.store, S3: bk.Client, Bucket: bk.Name, Root: filepath.Join(tmp, v.name),
					Workers: def.DownloadWorkers, Lease: def.DownloadClaimLease, Durable: v.durable, Log: slog.New(slog.DiscardHandler)})
				if err != nil {
					b.Fatal(err)
				}
				defer d.Close()
				b.SetBytes(int64(sh.files) * sh.size)
				var cpu time.Duration
				b.ResetTimer()
				for range b.N {
					b.StopTimer()
					if err := os.RemoveAll(filepath.Join(d.Root(), h.Dir())); err != nil {
						b.Fatal(err)
					}
					syscall.Sync() // what earlier runs left dirty is not this run's cost
					before := cpuTime()
					b.StartTimer()
					res, err := d.Download(b.Context(), h, nil)
					b.StopTimer()
					cpu += cpuTime() - before
					if err != nil || res.Downloaded != sh.files || res.FailureCount > 0 {
						b.Fatalf("%v: %d downloaded, failures %v", err, res.Downloaded, res.Failures)
					}
					b.StartTimer()
				}
				b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
			})
		}
	}
}

// cpuTime is the user and system CPU time of this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"github.com/aircraftdata/platform/app/internal/download"
	"github.com/aircraftdata/platform/app/internal/jobs"
	"github.com/aircraftdata/platform/app/internal/progress"
)

// The finished jobs kept in memory hold at most maxListed entries of each list of their results, however long the lists
// were: JOBS_KEEP jobs whose downloads listed 20,000 files each retain about what 100 entries each take, measured on
// the heap.
func TestFinishedJobsMemoryIsBounded(t *testing.T) {
	const keep, files = 10, 20_000
	r := jobs.NewRegistry(slog.New(slog.DiscardHandler), jobs.Limits{MaxRunning: keep, KeepFinished: keep, KeepFor: time.Hour})
	defer r.Stop(errors.New("test over"))

	before := heap()
	var ids []string
	for range keep {
		v, err := r.Start("download", "", func(context.Context, *progress.Counter) (any, error) {
			res := &download.HourResult{
				Successful: make([]download.File, files), Failed: make([]string, files),
				Failures: make([]download.Failure, files), TotalFiles: 2 * files,
			}
			return boundHour(res), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, v.ID)
	}
	for _, id := range ids {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
			if v, _, _ := r.Get(context.Background(), id); v.State == jobs.Succeeded {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("job %s not finished in 10 s", id)
			}
		}
	}
	retained := int64(heap()) - int64(before)

	// What the kept entries take, plus room for the jobs themselves and the test's own garbage: far below one job's
	// whole lists.
	perJob := maxListed * (unsafe.Sizeof(download.File{}) + unsafe.Sizeof("") + unsafe.Sizeof(download.Failure{}))
	bound := int64(keep*perJob) + 4<<20
	t.Logf("%d finished jobs of %d files each retain %d bytes of heap (bound %d)", keep, files, retained, bound)
	if retained > bound {
		t.Errorf("%d finished jobs retain %d bytes of heap, more than %d (%d kept entries of each list)",
			keep, retained, bound, maxListed)
	}
	runtime.KeepAlive(r)
}

func heap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

package download

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aircraftdata/platform/app/internal/bucket"
	"github.com/aircraftdata/platform/app/internal/download/fetch"
	"github.com/aircraftdata/platform/app/internal/lanes"
	"github.com/aircraftdata/platform/app/internal/mongo"
	"github.com/aircraftdata/platform/app/internal/mongo/mongotest"
	"github.com/aircraftdata/platform/app/internal/progress"
	"github.com/aircraftdata/platform/app/internal/stacktest"
)

// clock is a settable clock shared by downloaders.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// hourOf uploads n files of 64 KiB into lane1's hour 14 under a prefix of the test's own and indexes them.
func hourOf(t *testing.T, b bucket.Bucket, store *mongo.Store, n int) (lanes.Hour, map[string][]byte) {
	t.Helper()
	prefix := stacktest.Name("lanes/fence") + "/"
	files := map[string][]byte{}
	for i := range n {
		k := fmt.Sprintf("%slane1/2024/02/14/14/f%d.bin", prefix, i)
		files[k] = bytes.Repeat([]byte{byte('a' + i)}, 64<<10)
		stacktest.Put(t, b, k, files[k])
	}
	if _, err := (&Indexer{Store: store, Bucket: b}).Index(context.Background(), prefix, nil); err != nil {
		t.Fatal(err)
	}
	h, err := lanes.NewHour("lane1", "2024-02-14", 14)
	if err != nil {
		t.Fatal(err)
	}
	return h, files
}

// testStore is a store of records and claims (mongo.Store, or a wrapper of it).
type testStore interface {
	Records
	Claims
}

func testDownloader(t *testing.T, store testStore, b bucket.Bucket, root string, workers int, lease time.Duration) *Downloader {
	t.Helper()
	d, err := New(Config{Records: store, Claims: store, S3: b.Client, Bucket: b.Name, Root: root, Workers: workers, Lease: lease, Wait: time.Minute,
		Durable: true, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// stalling wraps a store and an engine: while stalled, renewals and fetches (once fetched, before they return) wait, as
// in a process that is paused; it counts the status writes made after `watch` is set.
type stalling struct {
	testStore
	engine
	stalled chan struct{} // closed: running again
	entered chan struct{} // a fetch has reached the stall
	once    sync.Once
	watch   atomic.Bool
	writes  atomic.Int64
}

func (s *stalling) Renew(ctx context.Context, name, owner string, until time.Time) error {
	<-s.stalled
	return s.testStore.Renew(ctx, name, owner, until)
}

func (s *stalling) Update(ctx context.Context, cs []lanes.Change, now time.Time) error {
	if s.watch.Load() && len(cs) > 0 {
		s.writes.Add(int64(len(cs)))
	}
	return s.testStore.Update(ctx, cs, now)
}

func (s *stalling) Fetch(ctx context.Context, o fetch.Object, t fetch.Target, p *progress.Counter) (fetch.Result, error) {
	res, err := s.engine.Fetch(ctx, o, t, p)
	s.once.Do(func() { close(s.entered) })
	<-s.stalled
	return res, err
}

// Two downloaders and one clock: A stalls mid-file past its lease, B takes the hour over and downloads it, then A wakes
// up: A puts nothing in place and writes no status any more, and reports its files failed: claim lost.
func TestStalledDownloaderIsFenced(t *testing.T) {
	store, b := mongotest.Store(t), stacktest.Bucket(t)
	h, files := hourOf(t, b, store, 3)
	root := filepath.Join(t.TempDir(), "downloads")
	clk := &clock{t: time.Now()}
	const lease = 3 * time.Second

	s := &stalling{testStore: store, stalled: make(chan struct{}), entered: make(chan struct{})}
	a := testDownloader(t, s, b, root, 1, lease)
	s.engine = a.engine
	a.engine, a.now = s, clk.now
	type answer struct {
		res *HourResult
		err error
	}
	aDone := make(chan answer, 1)
	go func() {
		res, err := a.Download(context.Background(), h, nil)
		aDone <- answer{res, err}
	}()
	<-s.entered // A has fetched its first file and stalls before putting it in place

	clk.add(lease + time.Second) // A's lease has run out: B takes the hour over
	s.watch.Store(true)
	bd := testDownloader(t, store, b, root, 2, lease)
	bd.now = clk.now
	got, err := bd.Download(context.Background(), h, nil)
	if err != nil || got.SuccessCount != len(files) {
		t.Fatalf("B: %+v, %v; want every file", got, err)
	}

	close(s.stalled) // A wakes up
	ans := <-aDone
	if ans.err != nil {
		t.Fatalf("A: %v", ans.err)
	}
	if ans.res.SuccessCount != 0 || ans.res.FailureCount != len(files) {
		t.Errorf("A: %d ok, failures %v; want all failed", ans.res.SuccessCount, ans.res.Failures)
	}
	for _, f := range ans.res.Failures {
		if f.Reason != "claim lost" {
			t.Errorf("A: %s failed with %q, want claim lost", f.Key, f.Reason)
		}
	}
	if n := s.writes.Load(); n != 0 {
		t.Errorf("A wrote %d statuses after its claim was taken over", n)
	}
	for k, want := range files {
		r, err := store.Get(context.Background(), k)
		if err != nil || r.Status != lanes.Downloaded || r.LastError != "" {
			t.Errorf("%s: %+v, %v; want downloaded (by B)", k, r, err)
		}
		if got, err := os.ReadFile(r.LocalPath); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s on disk: %d bytes, %v", k, len(got), err)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(root, h.Dir()))
	if len(entries) != len(files) {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("folder holds %v, want the %d files alone (A's temp file removed)", names, len(files))
	}
}

// counting wraps an engine and records the most fetches under way at once.
type counting struct {
	engine
	mu        sync.Mutex
	now, most int
}

func (c *counting) Fetch(ctx context.Context, o fetch.Object, t fetch.Target, p *progress.Counter) (fetch.Result, error) {
	c.mu.Lock()
	c.now++
	c.most = max(c.most, c.now)
	c.mu.Unlock()
	defer func() { c.mu.Lock(); c.now--; c.mu.Unlock() }()
	time.Sleep(20 * time.Millisecond) // long enough for the other request's files to overlap
	return c.engine.Fetch(ctx, o, t, p)
}

// Workers bounds the files in flight of the whole process: three requests at once with Workers 2 never fetch more than
// two files at a time.
func TestWorkersBoundTheProcess(t *testing.T) {
	store, b := mongotest.Store(t), stacktest.Bucket(t)
	root := filepath.Join(t.TempDir(), "downloads")
	d := testDownloader(t, store, b, root, 2, time.Minute)
	c := &counting{engine: d.engine}
	d.engine = c
	var hours []lanes.Hour
	for lane := range 3 {
		prefix := stacktest.Name("lanes/pool") + "/"
		for i := range 4 {
			stacktest.Put(t, b, fmt.Sprintf("%slane%d/2024/02/14/14/f%d.bin", prefix, lane, i), []byte(strings.Repeat("x", 1000+i)))
		}
		if _, err := (&Indexer{Store: store, Bucket: b}).Index(context.Background(), prefix, nil); err != nil {
			t.Fatal(err)
		}
		h, _ := lanes.NewHour(fmt.Sprintf("lane%d", lane), "2024-02-14", 14)
		hours = append(hours, h)
	}
	var wg sync.WaitGroup
	for _, h := range hours {
		wg.Go(func() {
			res, err := d.Download(context.Background(), h, nil)
			if err != nil || res.SuccessCount != 4 {
				t.Errorf("%s: %+v, %v", h.Dir(), res, err)
			}
		})
	}
	wg.Wait()
	if m := c.most; m != 2 {
		t.Errorf("at most %d files fetched at once across three requests, want 2 (Workers)", m)
	}
}

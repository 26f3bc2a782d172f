package download

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aircraftdata/platform/app/internal/download/fetch"
	"github.com/aircraftdata/platform/app/internal/lanes"
	"github.com/aircraftdata/platform/app/internal/mongo/mongotest"
	"github.com/aircraftdata/platform/app/internal/progress"
	"github.com/aircraftdata/platform/app/internal/stacktest"
)

var ctx = context.Background()

// countingClaims counts the claims asked of the store.
type countingClaims struct {
	testStore
	claims atomic.Int64
}

func (c *countingClaims) Claim(ctx context.Context, name, owner string, now time.Time, lease time.Duration) (bool, error) {
	c.claims.Add(1)
	return c.testStore.Claim(ctx, name, owner, now, lease)
}

// 31 requests of one process wait for an hour that a 32nd holds: they do not ask the store while they wait (they are
// woken when it ends), and then each gets the hour in turn, asking the store once.
func TestWaitersAreWokenNotPolling(t *testing.T) {
	store, b := mongotest.Store(t), stacktest.Bucket(t)
	h, files := hourOf(t, b, store, 2)
	cs := &countingClaims{testStore: store}
	d := testDownloader(t, cs, b, filepath.Join(t.TempDir(), "downloads"), 2, time.Minute)

	first, err := d.Claim(ctx, h, true)
	if err != nil {
		t.Fatal(err)
	}
	const waiters = 31
	errs := make(chan error, waiters)
	for range waiters {
		go func() {
			c, err := d.Claim(ctx, h, true)
			if err != nil {
				errs <- err
				return
			}
			res, err := c.Download(ctx, nil)
			if err == nil && res.AlreadyPresent != len(files) {
				err = errors.New("files not found present")
			}
			errs <- err
		}()
	}
	time.Sleep(time.Second) // the waiters wait (longer than the old poll's first four pauses)
	if n := cs.claims.Load(); n != 1 {
		t.Errorf("the store was asked %d times while the hour was held in this process, want once", n)
	}
	if res, err := first.Download(ctx, nil); err != nil || res.SuccessCount != len(files) {
		t.Fatalf("first: %+v, %v", res, err)
	}
	for range waiters {
		select {
		case err := <-errs:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(time.Minute):
			t.Fatal("waiters still waiting a minute after the hour was let go")
		}
	}
	if n := cs.claims.Load(); n != waiters+1 {
		t.Errorf("the store was asked %d times for %d requests, want once each", n, waiters+1)
	}
}

// An hour held by another instance: Claim without waiting answers ErrBusy at once; with a wait, ErrBusy once it is
// over; once the hour is let go, the claim is had.
func TestBusyElsewhere(t *testing.T) {
	store, b := mongotest.Store(t), stacktest.Bucket(t)
	h, _ := hourOf(t, b, store, 1)
	d := testDownloader(t, store, b, filepath.Join(t.TempDir(), "downloads"), 2, time.Minute)
	d.cfg.Wait = 600 * time.Millisecond
	if won, err := store.Claim(ctx, h.Dir(), "another-instance", time.Now(), time.Minute); !won || err != nil {
		t.Fatalf("claim as another instance: %v %v", won, err)
	}
	if _, err := d.Claim(ctx, h, false); !errors.Is(err, ErrBusy) {
		t.Errorf("Claim without waiting: %v, want ErrBusy", err)
	}
	if _, err := d.Claim(ctx, h, true); !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "still after 600ms") {
		t.Errorf("Claim with a wait: %v, want ErrBusy after the wait", err)
	}
	if err := store.Release(ctx, h.Dir(), "another-instance"); err != nil {
		t.Fatal(err)
	}
	c, err := d.Claim(ctx, h, false)
	if err != nil {
		t.Fatalf("Claim of a free hour: %v", err)
	}
	c.Release()
	if _, err := d.Claim(ctx, h, false); err != nil {
		t.Errorf("Claim after Release: %v", err)
	}
}

// checkFailed checks that every file of the hour failed with a reason containing want, in the answer and in its record,
// and that nothing was written to its folder.
func checkFailed(t *testing.T, store Records, root string, h lanes.Hour, keys []string, res *HourResult, want string) {
	t.Helper()
	if res.FailureCount != len(keys) {
		t.Errorf("%d failed of %d; failures %v", res.FailureCount, len(keys), res.Failures)
	}
	for _, f := range res.Failures {
		if !strings.Contains(f.Reason, want) {
			t.Errorf("%s failed with %q, want %q", f.Key, f.Reason, want)
		}
	}
	for _, k := range keys {
		r, err := store.(interface {
			Get(context.Context, string) (lanes.Record, error)
		}).Get(ctx, k)
		if err != nil || r.Status != lanes.Failed || !strings.Contains(r.LastError, want) {
			t.Errorf("record of %s: %s %q, %v; want failed with %q", k, r.Status, r.LastError, err, want)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(root, h.Dir())); len(entries) != 0 {
		t.Errorf("the hour's folder holds %d entries, want none", len(entries))
	}
}

// A file that would leave less than the reserve free fails before a byte is written, with the figures; with the reserve
// met, a rerun gets it.
func TestNotEnoughFreeSpace(t *testing.T) {
	store, b := mongotest.Store(t), stacktest.Bucket(t)
	h, files := hourOf(t, b, store, 2)
	root := filepath.Join(t.TempDir(), "downloads")
	d := testDownloader(t, store, b, root, 2, time.Minute)
	d.engine = fetchWith(d, func(c *fetch.Config) { c.Reserve = 1 << 62 })
	res, err := d.Download(ctx, h, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkFailed(t, store, root, h, keysOf(files), res, "not enough free space: need 65536 bytes, free ")
	if len(res.Failures) > 0 && !strings.Contains(res.Failures[0].Reason, "reserve 4611686018427387904 (DOWNLOAD_RESERVE_BYTES)") {
		t.Errorf("reason %q does not name the reserve", res.Failures[0].Reason)
	}

	d.engine = fetchWith(d, func(c *fetch.Config) { c.Reserve = 0 })
	if res, err := d.Download(ctx, h, nil); err != nil || res.Downloaded != len(files) {
		t.Errorf("rerun with room: %+v, %v", res, err)
	}
}

// An object over the cap fails before a byte of it is written; the others of the hour are downloaded.
func TestObjectTooBig(t *testing.T) {
	store, b := mongotest.Store(t), stacktest.Bucket(t)
	h, files := hourOf(t, b, store, 2)
	big := keysOf(files)
	prefix := strings.TrimSuffix(big[0], "lane1/2024/02/14/14/f0.bin")
	small := prefix + "lane1/2024/02/14/14/small.bin"
	stacktest.Put(t, b, small, []byte("small enough"))
	if _, err := (&Indexer{Store: store, Bucket: b}).Index(ctx, prefix, nil); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(t.TempDir(), "downloads")
	d := testDownloader(t, store, b, root, 2, time.Minute)
	d.engine = fetchWith(d, func(c *fetch.Config) { c.MaxObject = 1000 })
	res, err := d.Download(ctx, h, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Downloaded != 1 || len(res.Successful) != 1 || res.Successful[0].Key != small {
		t.Errorf("downloaded %+v, want %s alone", res.Successful, small)
	}
	if err := os.Remove(filepath.Join(root, h.Dir(), "small.bin")); err != nil {
		t.Error(err)
	}
	res.Successful, res.Downloaded = nil, 0
	checkFailed(t, store, root, h, big, res, "object too big: 65536 bytes, over DOWNLOAD_MAX_OBJECT_BYTES (1000)")
}

func keysOf(files map[string][]byte) []string {
	var ks []string
	for k := range files {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// fetchWith is d's engine with its configuration changed by mod.
func fetchWith(d *Downloader, mod func(*fetch.Config)) engine {
	cfg := fetch.Config{S3: d.cfg.S3, Bucket: d.cfg.Bucket, Files: d.cfg.Workers, PartSize: d.cfg.PartSize,
		PartConcurrency: d.cfg.PartConcurrency, Attempts: d.cfg.Attempts, ReadTimeout: d.cfg.ReadTimeout,
		Durable: d.cfg.Durable, Log: d.cfg.Log, Volume: d.abs, Reserve: d.cfg.Reserve, MaxObject: d.cfg.MaxObject}
	mod(&cfg)
	return fetch.New(cfg)
}

// slowSync is an engine whose commits first run during (as a sync to a slow disk, during which the clock moves).
type slowSync struct {
	engine
	during func()
}

func (s slowSync) Commit(res fetch.Result, p *progress.Counter, fence func() error) error {
	s.during()
	return s.engine.Commit(res, p, fence)
}

// The lease runs out while a fetched file is being synced, after the check that precedes its commit: the file is not
// renamed into place.
func TestLeaseLostDuringCommitIsFenced(t *testing.T) {
	store, b := mongotest.Store(t), stacktest.Bucket(t)
	h, files := hourOf(t, b, store, 2)
	root := filepath.Join(t.TempDir(), "downloads")
	const lease = 3 * time.Second
	clk := &clock{t: time.Now()}
	d := testDownloader(t, store, b, root, 1, lease)
	d.now = clk.now
	d.engine = slowSync{engine: d.engine, during: func() { clk.add(lease) }}
	res, err := d.Download(ctx, h, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.SuccessCount != 0 || res.FailureCount != len(files) {
		t.Errorf("%d put in place, failures %v; want none put in place", res.SuccessCount, res.Failures)
	}
	for _, f := range res.Failures {
		if f.Reason != "claim lost" {
			t.Errorf("%s failed with %q, want claim lost", f.Key, f.Reason)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(root, h.Dir())); len(entries) != 0 {
		t.Errorf("the hour's folder holds %d entries, want none", len(entries))
	}
}

// hanging is an engine whose first fetch hangs, deaf to its context (a write to a hung mount), until released.
type hanging struct {
	engine
	once             sync.Once
	entered, release chan struct{}
}

func (h *hanging) Fetch(ctx context.Context, o fetch.Object, t fetch.Target, p *progress.Counter) (fetch.Result, error) {
	first := false
	h.once.Do(func() { first = true; close(h.entered) })
	if first {
		<-h.release
	}
	return h.engine.Fetch(ctx, o, t, p)
}

// A run that makes no progress for Stall gives its hour up while its fetch still hangs: another downloader gets the
// hour and downloads it; the hung run, once its fetch returns, puts nothing in place and reports why.
func TestRunWithoutProgressGivesTheHourUp(t *testing.T) {
	store, b := mongotest.Store(t), stacktest.Bucket(t)
	h, files := hourOf(t, b, store, 2)
	root := filepath.Join(t.TempDir(), "downloads")
	a := testDownloader(t, store, b, root, 1, 900*time.Millisecond)
	a.cfg.Stall = time.Second
	hung := &hanging{engine: a.engine, entered: make(chan struct{}), release: make(chan struct{})}
	a.engine = hung
	type answer struct {
		res *HourResult
		err error
	}
	aDone := make(chan answer, 1)
	go func() {
		res, err := a.Download(ctx, h, nil)
		aDone <- answer{res, err}
	}()
	<-hung.entered

	other := testDownloader(t, store, b, root, 2, time.Minute)
	other.cfg.Wait = 20 * time.Second
	got, err := other.Download(ctx, h, nil)
	if err != nil || got.SuccessCount != len(files) {
		t.Fatalf("another downloader while the first hangs: %+v, %v; want every file", got, err)
	}
	close(hung.release)
	ans := <-aDone
	if ans.err != nil {
		t.Fatal(ans.err)
	}
	if ans.res.SuccessCount != 0 || ans.res.FailureCount != len(files) {
		t.Errorf("hung run: %d ok, failures %v; want all failed", ans.res.SuccessCount, ans.res.Failures)
	}
	for _, f := range ans.res.Failures {
		if !strings.Contains(f.Reason, "no progress for ") {
			t.Errorf("hung run: %s failed with %q, want no progress", f.Key, f.Reason)
		}
	}
	for k, want := range files {
		if got, err := os.ReadFile(filepath.Join(root, h.Dir(), filepath.Base(k))); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s on disk: %d bytes, %v", k, len(got), err)
		}
	}
}

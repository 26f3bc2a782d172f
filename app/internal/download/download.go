// Package download moves lane files from S3 to local disk and indexes the
// bucket into file records.
//
// A download request names a lane and an hour; every registered file of it
// is fetched by a bounded pool of workers. The hour is claimed in the store
// first (an atomic claim with an expiring lease, so two requests never fetch
// the same file at once). Each file is fetched with the AWS SDK's transfer
// manager in parallel ranged GETs written straight to a temp file in the
// target folder (with O_DIRECT when durable: direct.go; memory does not grow
// with the file), verified against the object's checksum while it is
// written, then synced to disk and renamed into place by a committer while
// the worker fetches its next file: a file is there whole or not at all. A
// file already present with the right size and checksum is not fetched
// again. Transient errors are retried with exponential backoff and jitter,
// by the SDK per request and here per file.
package download

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	tmtypes "github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/aircraftdata/platform/app/internal/lanes"
	"github.com/aircraftdata/platform/app/internal/progress"
)

// Store keeps the file records and the claims of running downloads
// (package mongo).
type Store interface {
	// ForHour hands fn the records of hour h a batch at a time, in no
	// particular order, and stops at the first error.
	ForHour(ctx context.Context, h lanes.Hour, fn func([]lanes.Record) error) error
	// Claim claims name for owner until now+lease; false means another
	// owner holds it and its lease has not expired.
	Claim(ctx context.Context, name, owner string, now time.Time, lease time.Duration) (bool, error)
	// Renew extends owner's claim on name.
	Renew(ctx context.Context, name, owner string, until time.Time) error
	// Update writes status changes.
	Update(ctx context.Context, cs []lanes.Change, now time.Time) error
	// Release lets owner's claim on name go.
	Release(ctx context.Context, name, owner string) error
}

// Defaults for Config fields left zero.
const (
	DefaultWorkers         = 4
	DefaultPartSize        = 50 << 20 // as s5cmd: measured best here with 5 ranges at once (bench-download)
	DefaultPartConcurrency = 5
	DefaultAttempts        = 3
	DefaultLease           = 2 * time.Minute
	DefaultReadTimeout     = 30 * time.Second
)

// Config configures a Downloader.
type Config struct {
	Store  Store
	S3     *s3.Client // the service's client; the downloader derives its own transport from it
	Bucket string     // SOURCE_BUCKET
	Root   string     // DOWNLOAD_PATH: nothing is ever written outside it

	Workers         int           // files fetched at once
	PartSize        int64         // bytes per ranged GET
	PartConcurrency int           // ranged GETs at once per file
	Attempts        int           // tries per file on transient errors
	Lease           time.Duration // how long a claim holds without renewal (renewed every Lease/3)
	ReadTimeout     time.Duration // a connection idle this long is dropped (and the range retried)

	// Durable syncs each file to disk before renaming it into place, and
	// its folder after, before the file is reported downloaded, so that
	// "whole or not at all" holds across a power loss or an instance crash,
	// not only a process crash: without it the rename can reach the disk
	// before the data, leaving a whole-looking file of zeros or a partial
	// one that the record calls downloaded (the next request would find it
	// wrong by its checksum and fetch it again, but a reader in between
	// would not).
	//
	// Durable files are written with O_DIRECT (direct.go) and their folders
	// synced once per status batch (recorder), which made durability nearly
	// free on the 2-core dev machine: the durable service runs at the speed
	// of the one without fsync (docs/downloads.md). It is the default
	// (DOWNLOAD_FSYNC=true); turn it off only where files are scratch copies
	// that a rerun repairs.
	Durable bool

	Log *slog.Logger
}

// Downloader downloads the files of lane hours.
type Downloader struct {
	cfg  Config
	s3   *s3.Client
	tm   *transfermanager.Client
	root *os.Root
	abs  string // absolute DOWNLOAD_PATH, for the records' local_path
	now  func() time.Time
	id   string // this instance, in lease owners
	seq  atomic.Int64
}

// New prepares a downloader: it creates DOWNLOAD_PATH if needed and keeps it
// open as an os.Root, through which every file operation goes, so that no
// name (nor a symlink planted below the root) can reach outside it.
func New(cfg Config) (*Downloader, error) {
	if cfg.Store == nil || cfg.S3 == nil || cfg.Bucket == "" || cfg.Root == "" {
		return nil, errors.New("download: Store, S3, Bucket and Root are required")
	}
	cfg.Workers = orDefault(cfg.Workers, DefaultWorkers)
	cfg.PartSize = orDefault(cfg.PartSize, DefaultPartSize)
	cfg.PartConcurrency = orDefault(cfg.PartConcurrency, DefaultPartConcurrency)
	cfg.Attempts = orDefault(cfg.Attempts, DefaultAttempts)
	cfg.Lease = orDefault(cfg.Lease, DefaultLease)
	cfg.ReadTimeout = orDefault(cfg.ReadTimeout, DefaultReadTimeout)
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.Root, 0o755); err != nil {
		return nil, fmt.Errorf("download: DOWNLOAD_PATH: %w", err)
	}
	abs, err := filepath.Abs(cfg.Root)
	if err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(abs)
	if err != nil {
		return nil, fmt.Errorf("download: DOWNLOAD_PATH: %w", err)
	}

	// A client of our own: enough pooled connections for every worker's
	// ranges, a read timeout so a stalled connection fails (and is retried)
	// instead of hanging, and more patient retries (exponential backoff
	// with full jitter) than the service's default.
	hc := awshttp.NewBuildableClient().
		WithTransportOptions(func(tr *http.Transport) {
			tr.MaxIdleConns = 0
			tr.MaxIdleConnsPerHost = cfg.Workers*cfg.PartConcurrency + 4
		}).
		WithReadTimeout(cfg.ReadTimeout)
	client := s3.New(cfg.S3.Options(), func(o *s3.Options) {
		o.HTTPClient = hc
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = 5
			so.MaxBackoff = 5 * time.Second
		})
		// Ranged responses carry no whole-object checksum: the verifier checks
		// the assembled file instead.
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	ranges := s3.New(client.Options(), func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, withLargeReads)
	})
	tm := transfermanager.New(ranges, func(o *transfermanager.Options) {
		o.GetObjectType = tmtypes.GetObjectRanges
		o.PartSizeBytes = cfg.PartSize
		o.Concurrency = cfg.PartConcurrency
		o.DisableChecksumValidation = true
		o.PartBodyMaxRetries = 3
	})
	var b [4]byte
	_, _ = crand.Read(b[:])
	return &Downloader{cfg: cfg, s3: client, tm: tm, root: root, abs: abs, now: time.Now, id: hex.EncodeToString(b[:])}, nil
}

func orDefault[T int | int64 | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// Close releases DOWNLOAD_PATH.
func (d *Downloader) Close() error { return d.root.Close() }

// Outcomes of a successful file.
const (
	OutcomeDownloaded     = "downloaded"
	OutcomeAlreadyPresent = "already present"
)

// File is a successfully downloaded (or already present) file: its record
// as stored after the download, and what happened.
type File struct {
	lanes.Record
	Outcome string `json:"outcome" enum:"downloaded,already present" doc:"already present: the file on disk had the object's size and checksum, nothing was fetched"`
}

// Failure is a file that could not be downloaded, and why.
type Failure struct {
	Key    string `json:"s3_key"`
	Reason string `json:"reason"`
}

// HourResult is the answer to a download request: the seed's shape
// (successful, failed, total_files, success_count, failure_count) plus the
// reason of each failure.
type HourResult struct {
	Successful     []File    `json:"successful"`
	Failed         []string  `json:"failed" doc:"keys of the files that failed"`
	Failures       []Failure `json:"failures" doc:"the failed files with the reason of each"`
	TotalFiles     int       `json:"total_files"`
	SuccessCount   int       `json:"success_count"`
	FailureCount   int       `json:"failure_count"`
	Downloaded     int       `json:"downloaded_count" doc:"successful files actually fetched"`
	AlreadyPresent int       `json:"already_present_count" doc:"successful files that were already on disk, whole"`
	Bytes          int64     `json:"bytes_downloaded"`
	Seconds        float64   `json:"duration_seconds"`
}

// fileResult is the outcome of one file.
type fileResult struct {
	file  File
	bytes int64 // fetched
	err   error
}

// Download fetches every registered file of the hour h. It fails only when
// the hour cannot be claimed or its records cannot be read; a file that
// cannot be fetched is a failure in the result, with its reason. p (may be
// nil) follows files and bytes.
//
// The hour is claimed first (waiting while another request holds it: that
// one downloads the same files, which are then found present here). Its
// records are read a batch at a time and handed to the workers at once, so
// that the first files are fetched while the rest are read. Status changes
// are written in batches (see recorder); the claim is let go at the end.
func (d *Downloader) Download(ctx context.Context, h lanes.Hour, p *progress.Counter) (*HourResult, error) {
	start := time.Now()
	owner := fmt.Sprintf("%s-%d", d.id, d.seq.Add(1))
	claim := h.Dir()
	if err := d.claim(ctx, claim, owner); err != nil {
		return nil, err
	}
	stopRenew := d.renewClaim(ctx, claim, owner)
	rec := newRecorder(d)

	// Workers stop taking files when the request is cancelled or the hour
	// cannot be read whole.
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	var mu sync.Mutex
	results := make(map[string]fileResult)
	finish := func(r lanes.Record, got fetched, err error) {
		res, outcome := d.result(r, got, err)
		if err == nil && got.present && recorded(r, outcome) && rec.settle(r) {
			res.file.Record = r // found as its record says: nothing to write
		} else {
			rec.ended(r, outcome)
		}
		mu.Lock()
		results[r.Key] = res
		mu.Unlock()
		p.AddDone(1, 0)
	}

	// Workers fetch; committers sync and rename what they fetched, so that
	// a worker goes on to its next file while the disk writes the last one.
	// The channel is short: the workers wait when the disk falls behind.
	dirs := &folders{root: d.root}
	defer dirs.close()
	if d.cfg.Durable {
		rec.syncDirs = dirs.syncDirty
	}
	commits := make(chan pending, d.cfg.Workers)
	var committers sync.WaitGroup
	for range d.cfg.Workers {
		committers.Go(func() {
			for c := range commits {
				err := d.commit(c.got.staged, p)
				if err == nil && d.cfg.Durable {
					dirs.markDirty(c.got.staged.t.dir) // before the recorder hears of the file
				}
				finish(c.r, c.got, err)
			}
		})
	}
	work := newQueue()
	var wg sync.WaitGroup
	for range d.cfg.Workers {
		wg.Go(func() {
			for {
				r, ok, last := work.pop()
				if !ok {
					return
				}
				if last {
					rec.hurry() // every file left is running: write each end at once
				}
				if wctx.Err() != nil { // not started
					mu.Lock()
					results[r.Key] = fileResult{err: fmt.Errorf("not started: %w", context.Cause(wctx))}
					mu.Unlock()
					continue
				}
				rec.started(r)
				got, err := d.fetchRecord(wctx, r, dirs, p)
				if err == nil && got.staged != nil {
					commits <- pending{r: r, got: got}
					continue
				}
				finish(r, got, err)
			}
		})
	}

	// Read the hour, a batch at a time. Two keys whose files would have the
	// same local path (the same name under two prefixes) cannot both be
	// there: the first read is downloaded, the other fails.
	var recs []lanes.Record
	seen := map[string]bool{}
	paths := map[string]string{} // local path → key
	listErr := d.cfg.Store.ForHour(ctx, h, func(batch []lanes.Record) error {
		n, bytes := 0, int64(0)
		for _, r := range batch {
			if seen[r.Key] {
				continue // a record read twice (moved by a concurrent update)
			}
			seen[r.Key] = true
			recs = append(recs, r)
			n++
			bytes += max(r.Size, 0)
		}
		p.AddTotal(int64(n), bytes)
		for _, r := range recs[len(recs)-n:] {
			if rel, err := lanes.RelPath(r); err == nil {
				if other, dup := paths[rel]; dup {
					rec.started(r)
					finish(r, fetched{}, fmt.Errorf("its local path %s is also that of %s, downloaded instead", rel, other))
					continue
				}
				paths[rel] = r.Key
			}
			work.push(r)
		}
		return nil
	})
	p.TotalKnown()

	if listErr != nil {
		cancel(listErr)
	}
	if work.close() {
		rec.hurry()
	}
	wg.Wait()
	close(commits)
	committers.Wait()
	stopRenew()
	// Every file has ended: the claim goes while the last statuses are
	// written. A request waiting for the hour finds its files in place.
	released := make(chan struct{})
	go func() {
		defer close(released)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second) // even for a cancelled request
		defer cancel()
		if err := d.cfg.Store.Release(rctx, claim, owner); err != nil {
			d.cfg.Log.Warn("releasing the hour's claim (it expires)", "claim", claim, "owner", owner, "lease", d.cfg.Lease, "error", err)
		}
	}()
	unrecorded := rec.close()
	<-released
	if listErr != nil {
		return nil, fmt.Errorf("reading the hour's records: %w", listErr)
	}

	slices.SortFunc(recs, func(a, b lanes.Record) int { return strings.Compare(a.Key, b.Key) })
	res := &HourResult{Successful: []File{}, Failed: []string{}, Failures: []Failure{}, TotalFiles: len(recs)}
	for _, r := range recs {
		fr, ok := results[r.Key]
		switch {
		case ok && fr.err == nil && unrecorded[r.Key] != nil:
			fr.err = unrecorded[r.Key]
		case !ok:
			fr.err = errors.New("not downloaded") // cannot happen: every record is queued or failed
		}
		if fr.err != nil {
			res.Failed = append(res.Failed, r.Key)
			res.Failures = append(res.Failures, Failure{Key: r.Key, Reason: fr.err.Error()})
			continue
		}
		res.Successful = append(res.Successful, fr.file)
		res.Bytes += fr.bytes
		if fr.file.Outcome == OutcomeDownloaded {
			res.Downloaded++
		} else {
			res.AlreadyPresent++
		}
	}
	res.SuccessCount, res.FailureCount = len(res.Successful), len(res.Failed)
	res.Seconds = time.Since(start).Seconds()
	d.cfg.Log.Info("lane hour downloaded", "lane_id", h.LaneID, "hour", h.Start, "files", res.TotalFiles,
		"downloaded", res.Downloaded, "already_present", res.AlreadyPresent, "failed", res.FailureCount,
		"bytes", res.Bytes, "seconds", res.Seconds)
	return res, nil
}

// queue is the files waiting for a worker: unbounded, so that reading the
// hour never waits for the workers (a cursor left waiting would time out on
// the server).
type queue struct {
	mu     sync.Mutex
	cond   sync.Cond
	items  []lanes.Record
	closed bool
}

func newQueue() *queue {
	q := &queue{}
	q.cond.L = &q.mu
	return q
}

func (q *queue) push(r lanes.Record) {
	q.mu.Lock()
	q.items = append(q.items, r)
	q.mu.Unlock()
	q.cond.Signal()
}

// close says no more files will come: waiting workers return. It reports
// whether every file was taken already.
func (q *queue) close() (empty bool) {
	q.mu.Lock()
	q.closed = true
	empty = len(q.items) == 0
	q.mu.Unlock()
	q.cond.Broadcast()
	return empty
}

// pop waits for the next file: ok is false once the queue is closed and
// empty; last is true for the last file of a closed queue.
func (q *queue) pop() (r lanes.Record, ok, last bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.items) == 0 && !q.closed {
		q.cond.Wait()
	}
	if len(q.items) == 0 {
		return r, false, false
	}
	r, q.items = q.items[0], q.items[1:]
	return r, true, q.closed && len(q.items) == 0
}

// pending is a fetched file on its way to the committers.
type pending struct {
	r   lanes.Record
	got fetched
}

// fetchRecord fetches one record into a staged temp file (or finds
// it present).
func (d *Downloader) fetchRecord(ctx context.Context, r lanes.Record, dirs *folders, p *progress.Counter) (fetched, error) {
	rel, err := lanes.RelPath(r)
	if err != nil {
		return fetched{}, err
	}
	dir, name := filepath.Split(rel)
	if dir == "" {
		dir = "."
	}
	t := target{name: name}
	if t.dir, err = dirs.get(dir); err != nil {
		return fetched{}, err
	}
	got, err := d.fetchWithRetries(ctx, r, t, p)
	got.rel = rel
	if err == nil && got.present && d.cfg.Durable {
		// Found whole, maybe just renamed there by another download or
		// left by one that crashed before syncing the folder: synced before
		// its record says downloaded, like a file fetched here.
		dirs.markDirty(t.dir)
	}
	return got, err
}

// folders opens each target folder of a request once, as an os.Root below
// DOWNLOAD_PATH, so that a file operation in it resolves one name instead
// of walking from DOWNLOAD_PATH (os.Root resolves a path a component at a
// time: at lane/yyyy/mm/dd/hh that was a tenth of the CPU time of a 1 MiB
// file).
type folders struct {
	root  *os.Root
	mu    sync.Mutex
	open  map[string]*os.Root
	dirty map[*os.Root]bool // holding renames not yet synced
}

// markDirty notes that dir holds a rename to sync.
func (fs *folders) markDirty(dir *os.Root) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.dirty == nil {
		fs.dirty = map[*os.Root]bool{}
	}
	fs.dirty[dir] = true
}

// syncDirty syncs the folders marked dirty, making their renames durable:
// one fsync per folder for all the files committed in it meanwhile, instead
// of one per file (a tenth of the time of a durable 1 MiB file).
func (fs *folders) syncDirty() error {
	fs.mu.Lock()
	dirty := fs.dirty
	fs.dirty = nil
	fs.mu.Unlock()
	var errs []error
	for dir := range dirty {
		if err := syncDir(dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (fs *folders) get(dir string) (*os.Root, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if r := fs.open[dir]; r != nil {
		return r, nil
	}
	if err := fs.root.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create folder: %w", err)
	}
	r, err := fs.root.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open folder: %w", err)
	}
	if fs.open == nil {
		fs.open = map[string]*os.Root{}
	}
	fs.open[dir] = r
	return r, nil
}

func (fs *folders) close() {
	for _, r := range fs.open {
		r.Close()
	}
}

// result says how one file ended, for the answer and for its record.
func (d *Downloader) result(r lanes.Record, got fetched, err error) (fileResult, lanes.Outcome) {
	if err != nil {
		d.cfg.Log.Warn("download failed", "s3_key", r.Key, "attempt", r.Attempts+1, "error", err)
		return fileResult{err: err}, lanes.Outcome{Status: lanes.Failed, Error: err.Error()}
	}
	r.Attempts++ // this one
	local := filepath.Join(d.abs, got.rel)
	o := lanes.Outcome{Status: lanes.Downloaded, LocalPath: local, ETag: got.etag, VersionID: got.version, Size: got.size, Checksum: got.checksum}
	r.Status, r.LocalPath, r.Size, r.Checksum, r.LastError, r.UpdatedAt = lanes.Downloaded, local, got.size, got.checksum, "", d.now().UTC()
	if got.etag != "" {
		r.ETag = got.etag
	}
	if got.version != "" {
		r.VersionID = got.version
	}
	outcome := OutcomeDownloaded
	if got.present {
		outcome = OutcomeAlreadyPresent
	}
	return fileResult{file: File{Record: r, Outcome: outcome}, bytes: got.bytes}, o
}

// claim claims the hour's folder name for owner, waiting while another
// request holds it.
func (d *Downloader) claim(ctx context.Context, name, owner string) error {
	delay := 50 * time.Millisecond
	for {
		won, err := d.cfg.Store.Claim(ctx, name, owner, d.now().UTC(), d.cfg.Lease)
		if err != nil || won {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for another request's download of %s: %w", name, context.Cause(ctx))
		case <-time.After(jitter(delay)):
		}
		delay = min(delay*2, time.Second)
	}
}

// renewClaim renews owner's claim on name every Lease/3 until stop is
// called.
func (d *Downloader) renewClaim(ctx context.Context, name, owner string) (stop func()) {
	return every(d.cfg.Lease/3, func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.Lease/3)
		defer cancel()
		if err := d.cfg.Store.Renew(rctx, name, owner, d.now().UTC().Add(d.cfg.Lease)); err != nil {
			d.cfg.Log.Warn("renewing the hour's claim", "claim", name, "owner", owner, "error", err)
		}
	})
}

// every calls fn every interval, in a goroutine of its own, until stop is
// called; stop returns once fn is no longer running.
func every(interval time.Duration, fn func()) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fn()
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// recorder writes status changes to the store in batches, every 100 ms or
// as soon as 64 files have ended. A file's end (downloaded or failed, one
// more attempt) is in the store at most about 100 ms after it happens; its
// start (downloading) only once it has run a whole interval, at most about
// 200 ms after it started, so that a file fetched in less time than that
// gets one write instead of two: the claim, not the status, is what keeps
// two downloads of a file apart, and writes are what the store is slowest
// at (FerretDB spends about half a millisecond on each). When durable, the
// folders of the files downloaded since the last batch are synced before
// the batch is written, so that no record says downloaded before its
// file's rename is on disk. Once every file left is running (hurry), each
// end is written at once, so that the answer does not wait for a batch
// after the last file. Changes are written even when the request was
// cancelled meanwhile.
type recorder struct {
	d *Downloader

	// syncDirs, when set, makes the renames of downloaded files durable;
	// it runs before their status is written.
	syncDirs func() error

	mu      sync.Mutex
	pending map[string]*change
	order   []string         // keys of pending, in the order they changed
	nEnded  int              // pending changes with an outcome
	failed  map[string]error // files downloaded whose end could not be made durable or recorded
	hurried atomic.Bool      // write every end at once

	kick chan struct{}
	stop chan struct{}
	wg   sync.WaitGroup
}

type change struct {
	lanes.Change
	since time.Time // when the file started
}

const (
	recordEvery = 100 * time.Millisecond
	recordBatch = 64
)

func newRecorder(d *Downloader) *recorder {
	r := &recorder{d: d, pending: map[string]*change{}, failed: map[string]error{},
		kick: make(chan struct{}, 1), stop: make(chan struct{})}
	r.wg.Go(func() {
		t := time.NewTicker(recordEvery)
		defer t.Stop()
		for {
			select {
			case <-r.stop:
				r.flush()
				return
			case <-t.C:
			case <-r.kick:
			}
			r.flush()
		}
	})
	return r
}

func (r *recorder) started(rec lanes.Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pending[rec.Key] = &change{Change: lanes.Change{Record: rec, Started: true}, since: time.Now()}
	r.order = append(r.order, rec.Key)
}

func (r *recorder) ended(rec lanes.Record, o lanes.Outcome) {
	r.mu.Lock()
	c := r.pending[rec.Key]
	if c == nil { // its start was written already
		c = &change{Change: lanes.Change{Record: rec}}
		r.pending[rec.Key] = c
		r.order = append(r.order, rec.Key)
	}
	c.Outcome = &o
	r.nEnded++
	n := r.nEnded
	r.mu.Unlock()
	if n >= recordBatch || r.hurried.Load() {
		r.wake()
	}
}

// settle forgets the start of a file that ended as its record already says
// (found in place, as downloaded): nothing is written for it. It reports
// false when the start was written already: the end must be written then.
func (r *recorder) settle(rec lanes.Record) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.pending[rec.Key]
	if c == nil || c.Outcome != nil {
		return false
	}
	delete(r.pending, rec.Key)
	return true
}

// recorded says whether r already records outcome o: a downloaded file at
// the same place, verified the same way, of the same object.
func recorded(r lanes.Record, o lanes.Outcome) bool {
	return r.Status == lanes.Downloaded && o.Status == lanes.Downloaded && r.LastError == "" &&
		r.LocalPath == o.LocalPath && r.Checksum == o.Checksum && r.Size == o.Size &&
		(o.ETag == "" || o.ETag == r.ETag) && (o.VersionID == "" || o.VersionID == r.VersionID)
}

// hurry makes every end from now on be written at once, and what has ended
// so far too.
func (r *recorder) hurry() {
	r.hurried.Store(true)
	r.wake()
}

func (r *recorder) wake() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// flush writes the pending ends, and the starts of files that have run
// for recordEvery.
func (r *recorder) flush() {
	r.mu.Lock()
	batch := make([]lanes.Change, 0, len(r.order))
	kept := r.order[:0]
	for _, k := range r.order {
		c := r.pending[k]
		if c == nil { // settled
			continue
		}
		if c.Outcome == nil && time.Since(c.since) < recordEvery {
			kept = append(kept, k) // started just now: it may end before the next flush
			continue
		}
		batch = append(batch, c.Change)
		delete(r.pending, k)
	}
	r.order, r.nEnded = kept, 0
	r.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	failed := map[string]error{}
	if r.syncDirs != nil && slices.ContainsFunc(batch, downloaded) {
		if err := r.syncDirs(); err != nil {
			// In place, but a crash could still lose the rename: not
			// downloaded, as far as the record and the answer go.
			r.d.cfg.Log.Error("syncing download folders", "error", err)
			err = fmt.Errorf("downloaded, but syncing its folder failed: %w", err)
			for i, c := range batch {
				if downloaded(c) {
					batch[i].Outcome = &lanes.Outcome{Status: lanes.Failed, Error: err.Error()}
					failed[c.Record.Key] = err
				}
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.d.cfg.Store.Update(ctx, batch, r.d.now().UTC()); err != nil {
		r.d.cfg.Log.Error("recording download status", "files", len(batch), "error", err)
		for _, c := range batch {
			if failed[c.Record.Key] == nil {
				failed[c.Record.Key] = fmt.Errorf("downloaded, but recording it failed: %w", err)
			}
		}
	}
	r.mu.Lock()
	maps.Copy(r.failed, failed)
	r.mu.Unlock()
}

func downloaded(c lanes.Change) bool { return c.Outcome != nil && c.Outcome.Status == lanes.Downloaded }

// close writes what is left and returns the keys whose status could not be
// written.
func (r *recorder) close() map[string]error {
	close(r.stop)
	r.wg.Wait()
	return r.failed
}

// Root is the absolute DOWNLOAD_PATH.
func (d *Downloader) Root() string { return d.abs }

package download

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aircraftdata/platform/app/internal/download/fetch"
	"github.com/aircraftdata/platform/app/internal/download/record"
	"github.com/aircraftdata/platform/app/internal/lanes"
	"github.com/aircraftdata/platform/app/internal/panics"
	"github.com/aircraftdata/platform/app/internal/progress"
)

// finalWrites bounds the writes that end a run after its request was cancelled (the last statuses, the claim's
// release): they are made even then, but not for longer than this.
const finalWrites = 5 * time.Second

// Download fetches every registered file of the hour h. It fails only when the hour cannot be claimed or its records
// cannot be read, or when ctx is cancelled (it returns the cancellation's cause then); a file that cannot be fetched is
// a failure in the result, with its reason. p (may be nil) follows files and bytes.
//
// The hour is claimed first (waiting while another request holds it: that one downloads the same files, which are then
// found present here), and the temp files a crashed download left in its folder are removed. Its records are read a
// batch at a time and handed to the workers at once, so that the first files are fetched while the rest are read.
// Status changes are written in batches (package record); the claim is let go at the end. If the claim is lost
// meanwhile (not renewed in time, taken over), the download stops at once and writes nothing more: the files not done
// end failed in the result with the reason "claim lost". If ctx is cancelled, every record not done ends failed with
// the cancellation's cause as its reason, and the claim is let go, before Download returns.
//
// Download waits for the hour up to Config.Wait (see Claim).
func (d *Downloader) Download(ctx context.Context, h lanes.Hour, p *progress.Counter) (*HourResult, error) {
	c, err := d.Claim(ctx, h, true)
	if err != nil {
		return nil, err
	}
	return c.Download(ctx, p)
}

// Download downloads the claimed hour, as Downloader.Download does once it has claimed it, and lets the claim go. A
// claim is downloaded once.
func (c *Claim) Download(ctx context.Context, p *progress.Counter) (*HourResult, error) {
	if c.used.Swap(true) {
		return nil, errors.New("download: a claim downloaded or released twice")
	}
	start := time.Now()
	d, h := c.d, c.h
	r := d.newRun(ctx, c, p)
	defer r.cancel(nil)
	r.sweep()
	stopRenew := fetch.Every(d.cfg.Lease/3, r.renew)

	var workers, committers sync.WaitGroup
	for range d.cfg.Workers {
		workers.Go(r.work)
		committers.Go(r.commit)
	}
	listErr := r.read()
	if listErr != nil && r.ctx.Err() == nil {
		r.cancel(listErr)
	}
	if r.queue.close() {
		r.rec.Hurry()
	}
	workers.Wait()
	close(r.commits)
	committers.Wait()
	stopRenew()
	r.end()
	r.tell(time.Since(start))
	if err := ctx.Err(); err != nil {
		return nil, context.Cause(ctx)
	}
	if r.panicked != nil {
		return nil, r.panicked
	}
	if listErr != nil && !errors.Is(context.Cause(r.ctx), lanes.ErrClaimLost) {
		return nil, fmt.Errorf("reading the hour's records: %w", listErr)
	}
	res := r.result()
	res.Seconds = time.Since(start).Seconds()
	d.cfg.Log.InfoContext(ctx, "lane hour downloaded", "lane_id", h.LaneID, "hour", h.Start, "files", res.TotalFiles,
		"downloaded", res.Downloaded, "already_present", res.AlreadyPresent, "failed", res.FailureCount,
		"bytes", res.Bytes, "seconds", res.Seconds)
	return res, nil
}

// run is one download of an hour, from its claim to its release.
type run struct {
	d     *Downloader
	h     lanes.Hour
	claim *Claim
	lease *lease
	p     *progress.Counter // never nil

	// Progress, for renew: the counts at the last renewal that saw them move, when, and the files under way.
	lastMark progress.Report
	lastMove time.Time
	active   atomic.Int64

	// ctx ends the fetches: the request cancelled, the hour unreadable, the claim lost.
	ctx    context.Context
	cancel context.CancelCauseFunc

	rec     *record.Recorder
	dirs    *fetch.Folders
	queue   *queue
	commits chan pending

	mu       sync.Mutex
	panicked *panics.Error  // the first panic of a worker or committer
	recs     []lanes.Record // read, in the order read
	results  map[string]fileResult
}

// fileResult is the outcome of one file.
type fileResult struct {
	file  File
	bytes int64 // fetched
	err   error
}

// pending is a fetched file on its way to the committers.
type pending struct {
	r   lanes.Record
	got fetch.Result
	rel string   // its local path below DOWNLOAD_PATH
	dir *os.Root // its folder
}

func (d *Downloader) newRun(ctx context.Context, c *Claim, p *progress.Counter) *run {
	if p == nil {
		p = new(progress.Counter)
	}
	l := c.lease
	r := &run{d: d, h: c.h, claim: c, lease: l, p: p, dirs: fetch.NewFolders(d.root), queue: newQueue(),
		commits: make(chan pending, 2*d.cfg.Workers), results: map[string]fileResult{}, lastMove: d.now().UTC()}
	r.ctx, r.cancel = context.WithCancelCause(ctx)
	o := record.Options{Log: d.cfg.Log, Now: d.now, Fence: func() bool { return l.held(d.now()) }, Done: ctx.Done(),
		FinalWrites: finalWrites}
	if d.cfg.Durable {
		o.SyncDirs = r.dirs.SyncDirty
	}
	r.rec = record.New(d.cfg.Records, o)
	return r
}

// sweep removes the temp files left in the hour's folder by a download that died (the claim is ours: no fetch of ours
// is under way there yet).
func (r *run) sweep() {
	dir, err := r.d.root.OpenRoot(r.h.Dir())
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err == nil {
		var n int
		n, err = fetch.Sweep(dir)
		dir.Close()
		if n > 0 {
			r.d.cfg.Log.Info("removed temp files left by an earlier download", "folder", r.h.Dir(), "files", n)
		}
	}
	if err != nil {
		r.d.cfg.Log.Warn("removing temp files left by an earlier download", "folder", r.h.Dir(), "error", err)
	}
}

// read reads the hour, a batch at a time, onto the queue. Two keys whose files would have the same local path (the same
// name under two prefixes) cannot both be there: the first read is downloaded, the other fails.
func (r *run) read() error {
	seen := map[string]bool{}
	paths := map[string]string{} // local path → key
	err := r.d.cfg.Records.ForHour(r.ctx, r.h, func(batch []lanes.Record) error {
		n, bytes := 0, int64(0)
		var fresh []lanes.Record
		for _, rec := range batch {
			if seen[rec.Key] {
				continue // a record read twice (moved by a concurrent update)
			}
			seen[rec.Key] = true
			fresh = append(fresh, rec)
			n++
			bytes += max(rec.Size, 0)
		}
		r.mu.Lock()
		r.recs = append(r.recs, fresh...)
		r.mu.Unlock()
		r.p.AddTotal(int64(n), bytes)
		for _, rec := range fresh {
			if rel, err := lanes.RelPath(rec); err == nil {
				if other, dup := paths[rel]; dup {
					r.rec.Started(rec)
					r.finish(rec, fetch.Result{}, "", fmt.Errorf("its local path %s is also that of %s, downloaded instead", rel, other))
					continue
				}
				paths[rel] = rec.Key
			}
			r.queue.push(rec)
		}
		return nil
	})
	r.p.TotalKnown()
	return err
}

// work fetches files from the queue, one at a time, each while holding one of the process's fetching slots, and hands
// them to the committers.
func (r *run) work() {
	for {
		rec, ok, last := r.queue.pop()
		if !ok {
			return
		}
		if last {
			r.rec.Hurry() // every file left is running: write each end at once
		}
		if !r.acquire(r.d.fetching) {
			r.notStarted(rec)
			continue
		}
		r.active.Add(1)
		r.rec.Started(rec)
		if rec.Attempts > 0 && r.d.cfg.Metrics != nil {
			r.d.cfg.Metrics.DownloadResumed()
		}
		got, t, rel, err := r.fetchContained(rec)
		if err == nil && got.Staged() {
			r.d.staged <- struct{}{} // released by the committer
			<-r.d.fetching
			r.commits <- pending{r: rec, got: got, rel: rel, dir: t.Dir}
			continue
		}
		<-r.d.fetching
		r.finish(rec, got, rel, err)
		r.active.Add(-1)
	}
}

// acquire takes a slot of sem, unless the run ends first.
func (r *run) acquire(sem chan struct{}) bool {
	if r.ctx.Err() != nil {
		return false
	}
	select {
	case sem <- struct{}{}:
		return true
	case <-r.ctx.Done():
		return false
	}
}

// notStarted ends a file the run stopped before: failed, with the reason the run stopped.
func (r *run) notStarted(rec lanes.Record) {
	err := context.Cause(r.ctx)
	r.rec.Ended(rec, lanes.Outcome{Status: lanes.Failed, Error: lanes.Reason(err)})
	r.mu.Lock()
	r.results[rec.Key] = fileResult{err: err}
	r.mu.Unlock()
	r.p.AddDone(1, 0)
}

// errInternal is the reason of the files of a run stopped by a bug (a panic in one of its workers): the panic itself is
// Download's error.
var errInternal = errors.New("internal error")

// fetchContained is fetch with a panic (a bug met by this file) turned into the end of the run (see contain); the file
// fails like any other.
func (r *run) fetchContained(rec lanes.Record) (got fetch.Result, t fetch.Target, rel string, err error) {
	err = r.contain(func() error {
		var e error
		got, t, rel, e = r.fetch(rec)
		return e
	})
	return got, t, rel, err
}

// contain calls fn; if it panics, the run stops with errInternal as the cause (every file not done fails with the
// reason "internal error") and Download returns the panic, whose stack goes to the log there.
func (r *run) contain(fn func() error) error {
	err := panics.Catch(fn)
	var p *panics.Error
	if errors.As(err, &p) {
		r.mu.Lock()
		if r.panicked == nil {
			r.panicked = p
		}
		r.mu.Unlock()
		r.cancel(errInternal)
	}
	return err
}

// fetch fetches one record into a staged temp file (or finds it present).
func (r *run) fetch(rec lanes.Record) (got fetch.Result, t fetch.Target, rel string, err error) {
	if rel, err = lanes.RelPath(rec); err != nil {
		return got, t, rel, err
	}
	dir, name := filepath.Split(rel)
	if dir == "" {
		dir = "."
	}
	t.Name = name
	if t.Dir, err = r.dirs.Get(dir); err != nil {
		return got, t, rel, err
	}
	got, err = r.d.engine.Fetch(r.ctx, fetch.Object{Key: rec.Key, ETag: rec.ETag, Size: rec.Size}, t, r.p)
	if err == nil && got.Present && r.d.cfg.Durable {
		// Found whole, maybe just renamed there by another download or left by one that crashed before syncing the
		// folder: synced before its record says downloaded, like a file fetched here.
		r.dirs.MarkDirty(t.Dir)
	}
	return got, t, rel, err
}

// commit puts fetched files in place, while the workers fetch the next ones: the disk writes one file while the network
// brings the next. A run that lost its claim puts nothing in place: the lease is checked before the commit and again
// immediately before the rename (after the sync, which can be long).
func (r *run) commit() {
	for c := range r.commits {
		var err error
		if r.fence() == nil {
			err = r.contain(func() error { return r.d.engine.Commit(c.got, r.p, r.fence) })
			if err == nil && r.d.cfg.Durable {
				r.dirs.MarkDirty(c.dir) // before the recorder hears of the file
			}
		} else {
			r.d.engine.Discard(c.got, r.p)
			err = lanes.ErrClaimLost
		}
		<-r.d.staged
		r.finish(c.r, c.got, c.rel, err)
		r.active.Add(-1)
	}
}

// fence fails once the run's claim is not surely its own.
func (r *run) fence() error {
	if !r.lease.held(r.d.now()) {
		return lanes.ErrClaimLost
	}
	return nil
}

// finish notes how a file ended, for the answer and its record.
func (r *run) finish(rec lanes.Record, got fetch.Result, rel string, err error) {
	if err != nil && r.ctx.Err() != nil {
		err = context.Cause(r.ctx) // the reason the run stopped ("shutdown", "claim lost"), not how the fetch broke
	}
	res, outcome := r.d.result(r.ctx, rec, got, rel, err)
	if err == nil && got.Present && lanes.Recorded(rec, outcome) && r.rec.Settle(rec) {
		res.file.Record = rec // found as its record says: nothing to write
	} else {
		r.rec.Ended(rec, outcome)
	}
	r.mu.Lock()
	r.results[rec.Key] = res
	r.mu.Unlock()
	r.p.AddDone(1, 0)
}

// result says how one file ended, for the answer and for its record: in the answer, the record as its change makes it
// (lanes.Change.Apply).
func (d *Downloader) result(ctx context.Context, r lanes.Record, got fetch.Result, rel string, err error) (fileResult, lanes.Outcome) {
	if err != nil {
		d.cfg.Log.WarnContext(ctx, "download failed", "s3_key", r.Key, "attempt", r.Attempts+1, "error", err)
		return fileResult{err: err}, lanes.Outcome{Status: lanes.Failed, Error: lanes.Reason(err)}
	}
	o := lanes.Outcome{Status: lanes.Downloaded, LocalPath: filepath.Join(d.abs, rel), ETag: got.ETag,
		VersionID: got.VersionID, Size: got.Size, Checksum: got.Checksum}
	outcome := OutcomeDownloaded
	if got.Present {
		outcome = OutcomeAlreadyPresent
	}
	done := lanes.Change{Record: r, Started: true, Outcome: &o}.Apply(d.now().UTC())
	return fileResult{file: File{Record: done, Outcome: outcome}, bytes: got.Bytes}, o
}

// end writes the last statuses and lets the claim go, at once: a request waiting for the hour finds its files in place.
// Both are done even when the request was cancelled, within finalWrites then.
func (r *run) end() {
	defer r.dirs.Close()
	released := make(chan struct{})
	go func() {
		defer close(released)
		timeout := 30 * time.Second
		if r.ctx.Err() != nil {
			timeout = finalWrites
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), timeout)
		defer cancel()
		r.claim.release(ctx)
	}()
	unrecorded := r.rec.Close()
	<-released
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, err := range unrecorded {
		if res, ok := r.results[k]; ok && res.err == nil {
			r.results[k] = fileResult{err: err}
		}
	}
}

// result is the answer, once every file has ended.
func (r *run) result() *HourResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	recs := slices.Clone(r.recs)
	slices.SortFunc(recs, func(a, b lanes.Record) int { return strings.Compare(a.Key, b.Key) })
	res := &HourResult{Successful: []File{}, Failed: []string{}, Failures: []Failure{}, TotalFiles: len(recs)}
	for _, rec := range recs {
		fr, ok := r.results[rec.Key]
		if !ok {
			fr.err = errors.New("not downloaded") // cannot happen: every record is queued or failed
		}
		if fr.err != nil {
			res.Failed = append(res.Failed, rec.Key)
			res.Failures = append(res.Failures, Failure{Key: rec.Key, Reason: lanes.Reason(fr.err)})
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
	return res
}

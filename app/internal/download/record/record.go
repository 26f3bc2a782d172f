// Package record writes the status changes of a download's files to the store in batches (Recorder): round trips, not
// bytes, are what a store's writes cost. The rules of the changes are package lanes's; package download, its user, says
// when a file starts and ends.
package record

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aircraftdata/platform/app/internal/lanes"
)

// Recorder writes status changes to the store in batches, every 100 ms or as soon as 64 files have ended: round trips,
// not bytes, are what a store's writes cost. A file's end (downloaded or failed, one more attempt) is in the store at
// most about 100 ms after it happens; its start (downloading) only once it has run a whole interval, at most about 200
// ms after it started, so that a file fetched in less time than that gets one write instead of two (and never for a
// file already recorded as downloaded, see Started): the claim, not the status, is what keeps two downloads of a file
// apart. When durable, the folders of the files downloaded since the last batch are synced before the batch is written,
// so that no record says downloaded before its file's rename is on disk. Once every file left is running (Hurry), each
// end is written at once, so that the answer does not wait for a batch after the last file. Changes are written even
// when the request was cancelled meanwhile (within Options.FinalWrites then), but never once the run's claim is lost
// (fence).
type Recorder struct {
	store Store
	o     Options

	mu      sync.Mutex
	pending map[string]*change
	order   []string            // keys of pending, in the order they changed
	nEnded  int                 // pending changes with an outcome
	failed  map[string]error    // files downloaded whose end could not be made durable or recorded
	unbegun map[string]struct{} // files whose start was not written (held back, or the write failed): their end counts the attempt
	hurried atomic.Bool         // write every end at once

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

// Store writes a batch of status changes (package download's Records).
type Store interface {
	Update(ctx context.Context, cs []lanes.Change, now time.Time) error
}

// Options configure a Recorder. Log, Now and FinalWrites are required.
type Options struct {
	Log *slog.Logger
	Now func() time.Time // the store's clock: updated_at

	// SyncDirs, when set, makes the renames of downloaded files durable; it runs before their status is written.
	SyncDirs func() error
	// Fence, when set, reports whether the run still holds its claim: a batch is written only then.
	Fence func() bool
	// Done, when closed (the request was cancelled), bounds each write by FinalWrites instead of 30 s.
	Done        <-chan struct{}
	FinalWrites time.Duration
}

// New starts a recorder writing to store; Close stops it.
func New(store Store, o Options) *Recorder {
	r := &Recorder{store: store, o: o, pending: map[string]*change{}, failed: map[string]error{},
		unbegun: map[string]struct{}{}, kick: make(chan struct{}, 1), stop: make(chan struct{})}
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

// Started notes that a file started. A file whose record may not become downloading (lanes.CanMove: it says downloaded)
// gets no start written: it is most likely found in place, and verifying it can take longer than an interval (a large
// file, a busy disk). Its record keeps saying downloaded until its end is written, which then counts the attempt; found
// in place as its record says (lanes.Recorded), nothing is written at all.
func (r *Recorder) Started(rec lanes.Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !lanes.CanMove(rec.Status, lanes.Downloading) {
		r.unbegun[rec.Key] = struct{}{}
		return
	}
	r.pending[rec.Key] = &change{Change: lanes.Change{Record: rec, Started: true}, since: time.Now()}
	r.order = append(r.order, rec.Key)
}

// Ended notes that a file ended with o: written within the next batch, at once when hurried.
func (r *Recorder) Ended(rec lanes.Record, o lanes.Outcome) {
	r.mu.Lock()
	c := r.pending[rec.Key]
	if c == nil { // its start was written already, or never will be
		c = &change{Change: lanes.Change{Record: rec}}
		if _, ok := r.unbegun[rec.Key]; ok {
			delete(r.unbegun, rec.Key)
			c.Started = true
		}
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

// Settle forgets the start of a file that ended as its record already says (found in place, as downloaded): nothing is
// written for it. It reports false when the start was written already: the end must be written then.
func (r *Recorder) Settle(rec lanes.Record) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.unbegun[rec.Key]; ok { // no start written
		delete(r.unbegun, rec.Key)
		return true
	}
	c := r.pending[rec.Key]
	if c == nil || c.Outcome != nil {
		return false
	}
	delete(r.pending, rec.Key)
	return true
}

// Hurry makes every end from now on be written at once, and what has ended so far too.
func (r *Recorder) Hurry() {
	r.hurried.Store(true)
	r.wake()
}

func (r *Recorder) wake() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// flush writes the pending ends, and the starts of files that have run for recordEvery.
func (r *Recorder) flush() {
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
	if r.o.Fence != nil && !r.o.Fence() {
		// Another download may own these files now: nothing is written.
		for _, c := range batch {
			if c.Outcome != nil {
				failed[c.Record.Key] = lanes.ErrClaimLost
			}
		}
		r.mu.Lock()
		maps.Copy(r.failed, failed)
		r.mu.Unlock()
		return
	}
	if r.o.SyncDirs != nil && slices.ContainsFunc(batch, downloaded) {
		if err := r.o.SyncDirs(); err != nil {
			// In place, but a crash could still lose the rename: not downloaded, as far as the record and the answer
			// go.
			r.o.Log.Error("syncing download folders", "error", err)
			err = &lanes.FileError{Reason: "downloaded, but syncing its folder failed: download it again", Err: err}
			for i, c := range batch {
				if downloaded(c) {
					batch[i].Outcome = &lanes.Outcome{Status: lanes.Failed, Error: lanes.Reason(err)}
					failed[c.Record.Key] = err
				}
			}
		}
	}
	timeout := 30 * time.Second
	select {
	case <-r.o.Done:
		timeout = r.o.FinalWrites
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := r.store.Update(ctx, batch, r.o.Now().UTC()); err != nil {
		r.o.Log.Error("recording download status", "files", len(batch), "error", err)
		for _, c := range batch {
			switch {
			case c.Outcome == nil:
				// Only its start was lost: the end, written later, counts the attempt instead.
				failed[c.Record.Key] = nil
			case failed[c.Record.Key] == nil:
				failed[c.Record.Key] = &lanes.FileError{Reason: "downloaded, but recording it failed: MongoDB unavailable", Err: err}
			}
		}
	}
	r.mu.Lock()
	for k, err := range failed {
		if err == nil {
			r.unbegun[k] = struct{}{}
			continue
		}
		r.failed[k] = err
	}
	r.mu.Unlock()
}

func downloaded(c lanes.Change) bool { return c.Outcome != nil && c.Outcome.Status == lanes.Downloaded }

// Close writes what is left and returns the keys whose end could not be written, with the reason.
func (r *Recorder) Close() map[string]error {
	close(r.stop)
	r.wg.Wait()
	return r.failed
}

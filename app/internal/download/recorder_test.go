package download

import (
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aircraftdata/platform/app/internal/lanes"
)

func newTestRecorder(store *FakeStore, syncDirs func() error) *recorder {
	r := newRecorder(store, slog.New(slog.DiscardHandler), time.Now)
	r.syncDirs = syncDirs
	return r
}

// A downloaded file's folder is synced before its status is written; a
// failed file does not ask for a sync.
func TestRecorderSyncsFoldersBeforeWritingDownloaded(t *testing.T) {
	store := &FakeStore{}
	r := newTestRecorder(store, func() error { store.Note("sync"); return nil })
	a, b := lanes.Record{Key: "a"}, lanes.Record{Key: "b"}
	r.started(b)
	r.ended(b, lanes.Outcome{Status: lanes.Failed, Error: "gone"})
	r.flush()
	r.started(a)
	r.ended(a, lanes.Outcome{Status: lanes.Downloaded})
	if failed := r.close(); len(failed) != 0 {
		t.Errorf("failed: %v", failed)
	}
	if got := strings.Join(store.Events, ","); got != "update,sync,update" {
		t.Errorf("events %s, want update (the failed file, no sync), sync, update (the downloaded one)", got)
	}
}

// A folder that cannot be synced turns the downloaded files of the batch
// into failed ones, in the store and in the answer.
func TestRecorderFolderSyncFails(t *testing.T) {
	store := &FakeStore{}
	r := newTestRecorder(store, func() error { return errors.New("EIO") })
	a, b := lanes.Record{Key: "a"}, lanes.Record{Key: "b"}
	r.started(a)
	r.started(b)
	r.ended(a, lanes.Outcome{Status: lanes.Downloaded, LocalPath: "/d/a"})
	r.ended(b, lanes.Outcome{Status: lanes.Failed, Error: "gone"})
	failed := r.close()
	if len(store.Writes) != 1 || len(store.Writes[0]) != 2 {
		t.Fatalf("writes %+v, want one of both files", store.Writes)
	}
	for _, c := range store.Writes[0] {
		if c.Outcome == nil || c.Outcome.Status != lanes.Failed {
			t.Errorf("%s written as %+v, want failed", c.Record.Key, c.Outcome)
		}
		if c.Record.Key == "a" && !strings.Contains(c.Outcome.Error, "syncing its folder failed: EIO") {
			t.Errorf("a's error %q", c.Outcome.Error)
		}
	}
	if err := failed["a"]; err == nil || !strings.Contains(err.Error(), "syncing its folder failed: EIO") {
		t.Errorf("answer for a: %v", err)
	}
	if failed["b"] != nil {
		t.Errorf("b failed on its own, the folder sync is not its reason: %v", failed["b"])
	}
}

// A status that cannot be written is reported for the files it concerned.
func TestRecorderStatusWriteFails(t *testing.T) {
	store := &FakeStore{Err: errors.New("no primary")}
	r := newTestRecorder(store, nil)
	a := lanes.Record{Key: "a"}
	r.started(a)
	r.ended(a, lanes.Outcome{Status: lanes.Downloaded})
	failed := r.close()
	if err := failed["a"]; err == nil || !strings.Contains(err.Error(), "recording it failed: no primary") {
		t.Errorf("answer for a: %v", err)
	}
}

// A start that could not be written does not make the file fail: its end,
// written later, says downloaded and counts the attempt (the start's write
// used to put the file in the failed set for good).
func TestRecorderStartWriteFailsEndWritten(t *testing.T) {
	store := &FakeStore{Err: errors.New("no primary")}
	r := newTestRecorder(store, nil)
	a := lanes.Record{Key: "a"}
	r.started(a)
	time.Sleep(recordEvery + 10*time.Millisecond) // old enough for its start to be written alone
	r.flush()
	store.mu.Lock()
	if len(store.Writes) != 1 || store.Writes[0][0].Outcome != nil {
		t.Fatalf("writes %+v, want the start alone", store.Writes)
	}
	store.Err = nil
	store.mu.Unlock()
	r.ended(a, lanes.Outcome{Status: lanes.Downloaded})
	if failed := r.close(); len(failed) != 0 {
		t.Errorf("failed %v, want none: the end was written", failed)
	}
	last := store.Writes[len(store.Writes)-1]
	if len(last) != 1 || !last[0].Started || last[0].Outcome == nil {
		t.Errorf("last write %+v, want a's end counting its attempt (Started)", last)
	}
}

// A file already recorded as downloaded gets no start written, however long
// it runs: found in place, nothing is written for it; fetched again, its end
// alone is written, counting the attempt.
func TestRecorderDownloadedRecordNoStart(t *testing.T) {
	store := &FakeStore{}
	r := newTestRecorder(store, nil)
	present := lanes.Record{Key: "present", Status: lanes.Downloaded}
	damaged := lanes.Record{Key: "damaged", Status: lanes.Downloaded}
	r.started(present)
	r.started(damaged)
	time.Sleep(3 * recordEvery) // a long verification: several flushes go by
	r.flush()
	store.mu.Lock()
	if len(store.Writes) != 0 {
		t.Errorf("writes %+v while verifying, want none", store.Writes)
	}
	store.mu.Unlock()
	if !r.settle(present) {
		t.Error("settle(present) = false, want true: no start was written")
	}
	r.ended(damaged, lanes.Outcome{Status: lanes.Downloaded})
	if failed := r.close(); len(failed) != 0 {
		t.Errorf("failed %v", failed)
	}
	if len(store.Writes) != 1 || len(store.Writes[0]) != 1 {
		t.Fatalf("writes %+v, want one: damaged's end", store.Writes)
	}
	if c := store.Writes[0][0]; c.Record.Key != "damaged" || !c.Started || c.Outcome == nil {
		t.Errorf("write %+v, want damaged's end counting its attempt (Started)", c)
	}
}

// Once the run's claim is lost nothing is written; the files that ended
// meanwhile are reported failed: claim lost.
func TestRecorderFenced(t *testing.T) {
	store := &FakeStore{}
	r := newTestRecorder(store, nil)
	var held atomic.Bool
	held.Store(true)
	r.fence = held.Load
	a, b := lanes.Record{Key: "a"}, lanes.Record{Key: "b"}
	r.started(a)
	r.ended(a, lanes.Outcome{Status: lanes.Downloaded})
	r.flush()
	held.Store(false)
	r.started(b)
	r.ended(b, lanes.Outcome{Status: lanes.Downloaded})
	failed := r.close()
	if len(store.Writes) != 1 || store.Writes[0][0].Record.Key != "a" {
		t.Errorf("writes %+v, want a's alone (before the claim was lost)", store.Writes)
	}
	if !errors.Is(failed["b"], lanes.ErrClaimLost) || failed["a"] != nil {
		t.Errorf("failed %v, want b: claim lost", failed)
	}
}

// The queue hands out files in order, tells the taker of the last one of a
// closed queue, and lets waiting workers go when closed.
func TestQueue(t *testing.T) {
	q := newQueue()
	q.push(lanes.Record{Key: "a"})
	q.push(lanes.Record{Key: "b"})
	if r, ok, last := q.pop(); r.Key != "a" || !ok || last {
		t.Errorf("pop = %s %v %v, want a, not last (the queue is open)", r.Key, ok, last)
	}
	if q.close() {
		t.Error("close reported empty with b waiting")
	}
	if r, ok, last := q.pop(); r.Key != "b" || !ok || !last {
		t.Errorf("pop = %s %v %v, want b, the last", r.Key, ok, last)
	}
	done := make(chan bool)
	q2 := newQueue()
	go func() { _, ok, _ := q2.pop(); done <- ok }()
	time.Sleep(10 * time.Millisecond)
	if !q2.close() {
		t.Error("close of an empty queue reported files waiting")
	}
	if <-done {
		t.Error("a waiting pop got a file from an empty closed queue")
	}
}

package record

import (
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aircraftdata/platform/app/internal/download/downloadtest"
	"github.com/aircraftdata/platform/app/internal/lanes"
)

func newTestRecorder(store *downloadtest.Store, syncDirs func() error, fence ...func() bool) *Recorder {
	o := Options{Log: slog.New(slog.DiscardHandler), Now: time.Now, SyncDirs: syncDirs}
	if len(fence) > 0 {
		o.Fence = fence[0]
	}
	return New(store, o)
}

// A downloaded file's folder is synced before its status is written; a failed file does not ask for a sync.
func TestRecorderSyncsFoldersBeforeWritingDownloaded(t *testing.T) {
	store := &downloadtest.Store{}
	r := newTestRecorder(store, func() error { store.Note("sync"); return nil })
	a, b := lanes.Record{Key: "a"}, lanes.Record{Key: "b"}
	r.Started(b)
	r.Ended(b, lanes.Outcome{Status: lanes.Failed, Error: "gone"})
	r.flush()
	r.Started(a)
	r.Ended(a, lanes.Outcome{Status: lanes.Downloaded})
	if failed := r.Close(); len(failed) != 0 {
		t.Errorf("failed: %v", failed)
	}
	if got := strings.Join(store.Events, ","); got != "update,sync,update" {
		t.Errorf("events %s, want update (the failed file, no sync), sync, update (the downloaded one)", got)
	}
}

// A folder that cannot be synced turns the downloaded files of the batch into failed ones, in the store and in the
// answer.
func TestRecorderFolderSyncFails(t *testing.T) {
	store := &downloadtest.Store{}
	r := newTestRecorder(store, func() error { return errors.New("EIO") })
	a, b := lanes.Record{Key: "a"}, lanes.Record{Key: "b"}
	r.Started(a)
	r.Started(b)
	r.Ended(a, lanes.Outcome{Status: lanes.Downloaded, LocalPath: "/d/a"})
	r.Ended(b, lanes.Outcome{Status: lanes.Failed, Error: "gone"})
	failed := r.Close()
	if len(store.Writes) != 1 || len(store.Writes[0]) != 2 {
		t.Fatalf("writes %+v, want one of both files", store.Writes)
	}
	for _, c := range store.Writes[0] {
		if c.Outcome == nil || c.Outcome.Status != lanes.Failed {
			t.Errorf("%s written as %+v, want failed", c.Record.Key, c.Outcome)
		}
		if c.Record.Key == "a" && (!strings.Contains(c.Outcome.Error, "syncing its folder failed") || strings.Contains(c.Outcome.Error, "EIO")) {
			t.Errorf("a's error %q, want the reason without the system's words", c.Outcome.Error)
		}
	}
	if err := failed["a"]; err == nil || lanes.Reason(err) != "downloaded, but syncing its folder failed: download it again" ||
		!strings.Contains(err.Error(), "EIO") {
		t.Errorf("answer for a: %v, want our reason with the cause (for the log)", err)
	}
	if failed["b"] != nil {
		t.Errorf("b failed on its own, the folder sync is not its reason: %v", failed["b"])
	}
}

// A status that cannot be written is reported for the files it concerned.
func TestRecorderStatusWriteFails(t *testing.T) {
	driver := "server selection error: context deadline exceeded, current topology: { Type: Unknown, Servers: " +
		"[{ Addr: 127.0.0.1:27017, Type: Unknown, Last error: dial tcp 127.0.0.1:27017: connect: connection refused }] }"
	store := &downloadtest.Store{Err: errors.New(driver)}
	r := newTestRecorder(store, nil)
	a := lanes.Record{Key: "a"}
	r.Started(a)
	r.Ended(a, lanes.Outcome{Status: lanes.Downloaded})
	failed := r.Close()
	if err := failed["a"]; err == nil || lanes.Reason(err) != "downloaded, but recording it failed: MongoDB unavailable" ||
		!strings.Contains(err.Error(), driver) {
		t.Errorf("answer for a: %v, want our reason with the driver's words as its cause (for the log)", err)
	}
}

// A start that could not be written does not make the file fail: its end, written later, says downloaded and counts the
// attempt (the start's write used to put the file in the failed set for good).
func TestRecorderStartWriteFailsEndWritten(t *testing.T) {
	store := &downloadtest.Store{Err: errors.New("no primary")}
	r := newTestRecorder(store, nil)
	a := lanes.Record{Key: "a"}
	r.Started(a)
	time.Sleep(recordEvery + 10*time.Millisecond) // old enough for its start to be written alone
	r.flush()
	store.Lock()
	if len(store.Writes) != 1 || store.Writes[0][0].Outcome != nil {
		t.Fatalf("writes %+v, want the start alone", store.Writes)
	}
	store.Err = nil
	store.Unlock()
	r.Ended(a, lanes.Outcome{Status: lanes.Downloaded})
	if failed := r.Close(); len(failed) != 0 {
		t.Errorf("failed %v, want none: the end was written", failed)
	}
	last := store.Writes[len(store.Writes)-1]
	if len(last) != 1 || !last[0].Started || last[0].Outcome == nil {
		t.Errorf("last write %+v, want a's end counting its attempt (Started)", last)
	}
}

// A file already recorded as downloaded gets no start written, however long it runs: found in place, nothing is written
// for it; fetched again, its end alone is written, counting the attempt.
func TestRecorderDownloadedRecordNoStart(t *testing.T) {
	store := &downloadtest.Store{}
	r := newTestRecorder(store, nil)
	present := lanes.Record{Key: "present", Status: lanes.Downloaded}
	damaged := lanes.Record{Key: "damaged", Status: lanes.Downloaded}
	r.Started(present)
	r.Started(damaged)
	time.Sleep(3 * recordEvery) // a long verification: several flushes go by
	r.flush()
	store.Lock()
	if len(store.Writes) != 0 {
		t.Errorf("writes %+v while verifying, want none", store.Writes)
	}
	store.Unlock()
	if !r.Settle(present) {
		t.Error("settle(present) = false, want true: no start was written")
	}
	r.Ended(damaged, lanes.Outcome{Status: lanes.Downloaded})
	if failed := r.Close(); len(failed) != 0 {
		t.Errorf("failed %v", failed)
	}
	if len(store.Writes) != 1 || len(store.Writes[0]) != 1 {
		t.Fatalf("writes %+v, want one: damaged's end", store.Writes)
	}
	if c := store.Writes[0][0]; c.Record.Key != "damaged" || !c.Started || c.Outcome == nil {
		t.Errorf("write %+v, want damaged's end counting its attempt (Started)", c)
	}
}

// Once the run's claim is lost nothing is written; the files that ended meanwhile are reported failed: claim lost.
func TestRecorderFenced(t *testing.T) {
	store := &downloadtest.Store{}
	var held atomic.Bool
	held.Store(true)
	r := newTestRecorder(store, nil, held.Load)
	a, b := lanes.Record{Key: "a"}, lanes.Record{Key: "b"}
	r.Started(a)
	r.Ended(a, lanes.Outcome{Status: lanes.Downloaded})
	r.flush()
	held.Store(false)
	r.Started(b)
	r.Ended(b, lanes.Outcome{Status: lanes.Downloaded})
	failed := r.Close()
	if len(store.Writes) != 1 || store.Writes[0][0].Record.Key != "a" {
		t.Errorf("writes %+v, want a's alone (before the claim was lost)", store.Writes)
	}
	if !errors.Is(failed["b"], lanes.ErrClaimLost) || failed["a"] != nil {
		t.Errorf("failed %v, want b: claim lost", failed)
	}
}

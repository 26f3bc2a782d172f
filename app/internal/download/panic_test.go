package download

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/aircraftdata/platform/app/internal/download/fetch"
	"github.com/aircraftdata/platform/app/internal/lanes"
	"github.com/aircraftdata/platform/app/internal/mongo/mongotest"
	"github.com/aircraftdata/platform/app/internal/panics"
	"github.com/aircraftdata/platform/app/internal/progress"
	"github.com/aircraftdata/platform/app/internal/stacktest"
)

// panicking is an engine with a bug met by one file.
type panicking struct {
	engine
	key string
}

func (p panicking) Fetch(ctx context.Context, o fetch.Object, t fetch.Target, pc *progress.Counter) (fetch.Result, error) {
	if o.Key == p.key {
		panic("injected: a bug in the engine")
	}
	return p.engine.Fetch(ctx, o, t, pc)
}

// A panic in a download worker ends that run (its error is the panic, its records fail "internal error", its claim is
// let go) and nothing else: the next download of the hour, without the bug, gets every file.
func TestPanicInAWorkerEndsOnlyItsRun(t *testing.T) {
	store, b := mongotest.Store(t), stacktest.Bucket(t)
	h, files := hourOf(t, b, store, 4)
	root := filepath.Join(t.TempDir(), "downloads")
	d := testDownloader(t, store, b, root, 1, time.Minute)
	var bad string
	for k := range files {
		bad = k
		break
	}
	good := d.engine
	d.engine = panicking{engine: good, key: bad}

	_, err := d.Download(context.Background(), h, nil)
	var p *panics.Error
	if !errors.As(err, &p) || p.Value != "injected: a bug in the engine" || len(p.Stack) == 0 {
		t.Fatalf("Download: %v, want the panic with its stack", err)
	}
	recs, _ := store.List(context.Background(), lanes.Query{LaneID: h.LaneID, From: h.Start, To: h.End()})
	for _, r := range recs {
		if r.Status == lanes.Downloading || (r.Status == lanes.Failed && r.LastError != "internal error") {
			t.Errorf("%s: %s %q; want downloaded or failed: internal error", r.Key, r.Status, r.LastError)
		}
		if r.Key == bad && r.Status != lanes.Failed {
			t.Errorf("the file that met the bug: %s", r.Status)
		}
	}

	// The claim was let go and the process's slots given back: the next download (with a lease of a minute, so it would
	// wait) runs at once.
	d.engine = good
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := d.Download(ctx, h, nil)
	if err != nil || res.SuccessCount != len(files) {
		t.Fatalf("after the panic: %+v, %v", res, err)
	}
}

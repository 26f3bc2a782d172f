package bench

import (
	"bytes"
	"testing"

	"github.com/aircraftdata/platform/app/internal/readsb"
	"github.com/aircraftdata/platform/app/internal/stacktest"
)

// Generated snapshots are valid, distinct in time, and full-sized.
func TestSnapshots(t *testing.T) {
	g, err := NewSnapshots(stacktest.SamplesDir(t))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	for range 4 {
		_, data, err := g.Next()
		if err != nil {
			t.Fatal(err)
		}
		f, err := readsb.Decode(bytes.NewReader(data), readsb.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if f.Observations != recordsPerSnapshot || seen[f.Now.UnixMilli()] {
			t.Errorf("snapshot at %v: %d observations (want %d), time seen before: %v", f.Now, f.Observations, recordsPerSnapshot, seen[f.Now.UnixMilli()])
		}
		seen[f.Now.UnixMilli()] = true
		if len(data) < 3<<20 {
			t.Errorf("snapshot of %d bytes; a full one is ~5 MB", len(data))
		}
		t.Logf("%d bytes, %d aircraft", len(data), len(f.Aircraft))
	}
}

package snapshots

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/aircraftdata/platform/test/testkit"
)

// samplesDir is the folder of the real readsb-hist samples (testkit.SamplesDir).
func samplesDir(t *testing.T) string {
	dir := testkit.SamplesDir()
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("sample data not found at %s: %v", dir, err)
	}
	return dir
}

// Generated snapshots are valid JSON snapshots, distinct in time, and full-sized (read with encoding/json, not with the
// service's decoder).
func TestSnapshots(t *testing.T) {
	g, err := New(samplesDir(t))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[float64]bool{}
	for range 4 {
		_, data, err := g.Next()
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Now      float64 `json:"now"`
			Aircraft []struct {
				Hex string `json:"hex"`
			} `json:"aircraft"`
		}
		if err := json.Unmarshal(data, &doc); err != nil {
			t.Fatal(err)
		}
		addresses := map[string]bool{}
		for _, a := range doc.Aircraft {
			addresses[a.Hex] = true
		}
		if len(doc.Aircraft) != RecordsPerSnapshot || doc.Now <= 0 || seen[doc.Now] {
			t.Errorf("snapshot at %v: %d records (want %d), time seen before: %v", doc.Now, len(doc.Aircraft), RecordsPerSnapshot, seen[doc.Now])
		}
		seen[doc.Now] = true
		if len(data) < 3<<20 {
			t.Errorf("snapshot of %d bytes; a full one is ~5 MB", len(data))
		}
		t.Logf("%d bytes, %d records, %d addresses", len(data), len(doc.Aircraft), len(addresses))
	}
}

package bench

import (
	"context"
	"encoding/json"
	"math"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aircraftdata/platform/app/internal/readsb/readsbtest"
	"github.com/aircraftdata/platform/app/internal/stacktest"
)

// TestHostileFilesQuarantinedWithinMemory runs the real service binary over
// a bucket that holds, beside real snapshots, one file of every hostile class
// of issue 13 at full size (a gzip expanding to 2 GiB, 1 GiB values kept and
// ignored, 10M empty records, 1M addresses, 200k-deep nesting, a document
// that never ends, a gzip member followed by garbage), with the default caps.
// The run answers 200, each hostile file is quarantined with a reason naming
// its cap, the real snapshots are committed exactly, a rerun skips the
// quarantined files without fetching them, and the service's peak RSS stays
// within 150 MiB. One process, one run: the heavy part of the suite.
func TestHostileFilesQuarantinedWithinMemory(t *testing.T) {
	stacktest.Env(t, "DB_ADMIN_URL")
	b := stacktest.Bucket(t)
	ctx := context.Background()
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "aircraftd")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/aircraftd").CombinedOutput(); err != nil {
		t.Fatalf("build aircraftd: %v\n%s", err, out)
	}

	good := []string{"20231101-000030Z.json", "20231101-000315Z.json", "20231101-000700Z.json.gz"}
	for _, name := range good {
		stacktest.Put(t, b, "good/"+name, stacktest.Sample(t, name))
	}
	hostile := readsbtest.Files(1)
	want := map[string]string{}
	for _, h := range hostile {
		stacktest.Put(t, b, "hostile/"+h.Name, h.Data)
		want["hostile/"+h.Name] = h.Want
	}

	svc, err := startAircraftd(ctx, bin, "", "S3_BUCKET="+b.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.stop(false)

	type note struct{ Key, Reason string }
	var res struct {
		FilesIngested   int            `json:"files_ingested"`
		FilesFailed     int            `json:"files_failed"`
		Failed          []note         `json:"failed"`
		SkippedByReason map[string]int `json:"skipped_by_reason"`
		Observations    int64          `json:"observations"`
		AircraftUpdated int            `json:"aircraft_updated"`
		Bytes           int64          `json:"bytes"`
	}
	if err := svc.call(ctx, "POST", "/process-s3-data", nil, &res); err != nil {
		t.Fatal(err) // any status but 200
	}
	peak := svc.peakRSS()
	t.Logf("peak RSS of aircraftd over the run: %.1f MiB", float64(peak)/(1<<20))
	if peak <= 0 || peak > 150<<20 {
		t.Errorf("peak RSS %d MiB, want <= 150 MiB", peak>>20)
	}

	// The real snapshots, read independently.
	obs, maxAlt := int64(0), map[string]float64{}
	for _, name := range good {
		var doc struct {
			Aircraft []struct {
				Hex string `json:"hex"`
				Alt any    `json:"alt_baro"`
			} `json:"aircraft"`
		}
		if err := json.Unmarshal(stacktest.Sample(t, name), &doc); err != nil {
			t.Fatal(err)
		}
		for _, a := range doc.Aircraft {
			obs++
			hex := strings.ToLower(a.Hex)
			if _, ok := maxAlt[hex]; !ok {
				maxAlt[hex] = math.Inf(-1)
			}
			if v, ok := a.Alt.(float64); ok {
				maxAlt[hex] = math.Max(maxAlt[hex], v)
			}
		}
	}
	if res.FilesIngested != len(good) || res.Observations != obs || res.AircraftUpdated != len(maxAlt) {
		t.Errorf("ingested %d files, %d observations, %d aircraft; want %d, %d, %d",
			res.FilesIngested, res.Observations, res.AircraftUpdated, len(good), obs, len(maxAlt))
	}
	n := 0
	for hex, alt := range maxAlt {
		if n++; n%97 != 0 || math.IsInf(alt, -1) {
			continue
		}
		var s struct {
			MaxAltitudeBaro *float64 `json:"max_altitude_baro"`
		}
		if err := svc.call(ctx, "GET", "/aircraft-stats/"+hex, nil, &s); err != nil || s.MaxAltitudeBaro == nil || *s.MaxAltitudeBaro != alt {
			t.Errorf("%s: max altitude %v (%v), want %v", hex, s.MaxAltitudeBaro, err, alt)
		}
	}

	// Every hostile file is refused with its reason, in the run and in the list.
	if res.FilesFailed != len(hostile) {
		t.Errorf("%d files failed, want %d: %+v", res.FilesFailed, len(hostile), res.Failed)
	}
	for _, f := range res.Failed {
		if !strings.Contains(f.Reason, want[f.Key]) {
			t.Errorf("%s: reason %q, want it to name %q", f.Key, f.Reason, want[f.Key])
		}
	}
	var page struct {
		Items []struct {
			Key    string `json:"key"`
			Reason string `json:"reason"`
		} `json:"items"`
	}
	if err := svc.call(ctx, "GET", "/api/v1/ingestion/failed?limit=1000", nil, &page); err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, it := range page.Items {
		listed = append(listed, it.Key)
		if !strings.Contains(it.Reason, want[it.Key]) {
			t.Errorf("listed %s: reason %q", it.Key, it.Reason)
		}
	}
	var wantKeys []string
	for k := range want {
		wantKeys = append(wantKeys, k)
	}
	slices.Sort(wantKeys)
	if !slices.Equal(listed, wantKeys) {
		t.Errorf("listed %v, want %v", listed, wantKeys)
	}

	// A rerun fetches nothing: every file is known to the ledger.
	res.Failed, res.SkippedByReason = nil, nil
	if err := svc.call(ctx, "POST", "/process-s3-data", nil, &res); err != nil {
		t.Fatal(err)
	}
	if res.FilesFailed != 0 || res.Bytes != 0 || res.SkippedByReason["quarantined"] != len(hostile) ||
		res.SkippedByReason["already ingested"] != len(good) {
		t.Errorf("rerun: %+v", res)
	}
}

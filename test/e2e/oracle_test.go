package e2e

import (
	"bytes"
	"compress/gzip"
	"strings"
	"testing"
	"time"

	"github.com/aircraftdata/platform/test/testkit"
)

func gz(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func ptr[T any](v T) *T { return &v }

// Two snapshots written by hand, the second also under a gzip name, and the values worked out on paper.
func TestOracleByHand(t *testing.T) {
	first := `{"now": 100.5, "aircraft": [
		{"hex": "ABC123", "r": "N1", "t": "A320", "alt_baro": 1000, "gs": 200, "emergency": "none"},
		{"hex": "def456", "alt_baro": "ground", "gs": 10}
	]}`
	second := `{"now": 105.5, "aircraft": [
		{"hex": "abc123", "r": "", "t": "A321", "alt_baro": 3000, "emergency": "general"},
		{"hex": "def456", "alt_baro": "ground"},
		{"hex": "~0a0b0c"}
	]}`
	o, err := NewOracle([]Sample{
		{Name: "b.json.gz", Body: gz(t, second)},
		{Name: "a.json", Body: []byte(first)},
		{Name: "b.json", Body: []byte(second)}, // the same snapshot again: counts once
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Observations) != 2 || o.TotalObservations() != 5 || len(o.Aircraft) != 3 {
		t.Fatalf("snapshots %v, aircraft %d", o.Observations, len(o.Aircraft))
	}
	if o.Snapshots["b.json.gz"] != 105.5 || o.Snapshots["b.json"] != 105.5 || o.Snapshots["a.json"] != 100.5 {
		t.Errorf("snapshot times %v", o.Snapshots)
	}
	at := func(s float64) *time.Time { v := time.UnixMilli(int64(s * 1000)).UTC(); return &v }

	// abc123: registration from the first (the second's is empty), type from the second; two altitudes, one speed.
	ok := Stats{ICAO: "abc123", Registration: ptr("N1"), Type: ptr("A321"), Observations: 2,
		FirstSeen: at(100.5), LastSeen: at(105.5), MaxAltitudeBaro: ptr(3000.0), AvgAltitudeBaro: ptr(2000.0),
		MaxGroundSpeed: ptr(200.0), AvgGroundSpeed: ptr(200.0), HadEmergency: true, Emergencies: []string{"general"}}
	if d := o.Aircraft["abc123"].Diff(ok); len(d) != 0 {
		t.Errorf("abc123: %v", d)
	}
	// def456: on the ground twice: observations but no altitude.
	ground := Stats{ICAO: "def456", Observations: 2, FirstSeen: at(100.5), LastSeen: at(105.5),
		MaxGroundSpeed: ptr(10.0), AvgGroundSpeed: ptr(10.0), Emergencies: []string{}}
	if d := o.Aircraft["def456"].Diff(ground); len(d) != 0 {
		t.Errorf("def456: %v", d)
	}
	if w := o.Aircraft["~0a0b0c"]; w == nil || w.Observations != 1 || w.AltN != 0 || w.Registration != "" {
		t.Errorf("~0a0b0c: %+v", w)
	}

	// Every field that differs is reported.
	wrong := ok
	wrong.Observations, wrong.AvgAltitudeBaro, wrong.Registration, wrong.Emergencies = 3, ptr(2000.1), nil, nil
	d := o.Aircraft["abc123"].Diff(wrong)
	if len(d) != 4 || !strings.Contains(strings.Join(d, "\n"), "avg_altitude_baro") {
		t.Errorf("diff of a wrong answer: %v", d)
	}
	if d := o.Aircraft["def456"].Diff(Stats{ICAO: "def456", Observations: 2, FirstSeen: at(100.5), LastSeen: at(105.5),
		MaxAltitudeBaro: ptr(0.0), AvgAltitudeBaro: ptr(0.0), MaxGroundSpeed: ptr(10.0), AvgGroundSpeed: ptr(10.0)}); len(d) != 2 {
		t.Errorf("\"ground\" reported as altitude 0 must differ on both altitudes: %v", d)
	}
	if abs := o.Absent(); o.Aircraft[abs] != nil || len(abs) != 6 {
		t.Errorf("Absent() = %q", abs)
	}
}

func TestOracleRejectsBadFiles(t *testing.T) {
	for name, body := range map[string]string{
		"cut":      `{"now": 1, "aircraft": [{"hex": "abc123"`,
		"no now":   `{"aircraft": []}`,
		"no hex":   `{"now": 1, "aircraft": [{"r": "N1"}]}`,
		"not json": "hello",
	} {
		if _, err := NewOracle([]Sample{{Name: name, Body: []byte(body)}}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// The real samples, against the figures of their README.
func TestOracleOfRealSamples(t *testing.T) {
	s, err := LoadSamples(testkit.SamplesDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Good) != 4 || len(s.Bad) != 2 {
		t.Fatalf("%d good and %d bad samples, want 4 and 2", len(s.Good), len(s.Bad))
	}
	o, err := NewOracle(s.Good)
	if err != nil {
		t.Fatal(err)
	}
	want := map[float64]int{1698796829.3: 7338, 1698796994.3: 4042, 1698797219.3: 2313}
	for now, n := range want {
		if o.Observations[now] != n {
			t.Errorf("snapshot %v: %d aircraft, want %d (README)", now, o.Observations[now], n)
		}
	}
	if len(o.Observations) != 3 || o.Snapshots["20231101-000315Z.json"] != o.Snapshots["20231101-000315Z.json.gz"] {
		t.Errorf("want 3 distinct snapshots, 000315Z twice: %v", o.Snapshots)
	}
	for _, b := range s.Bad {
		if _, err := decodeSnapshot(b.Body); err == nil {
			t.Errorf("%s decodes", b.Name)
		}
	}
	var emergencies []string
	for h, w := range o.Aircraft {
		if len(w.Emergencies) > 0 {
			emergencies = append(emergencies, h)
		}
	}
	if len(emergencies) == 0 {
		t.Error("the samples hold a real emergency; the oracle found none")
	}
	if picked := o.Pick(41); len(picked) < 300 || len(picked) > len(o.Aircraft)/4 {
		t.Errorf("picked %d of %d aircraft", len(picked), len(o.Aircraft))
	}
}

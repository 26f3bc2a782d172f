// Package flighttest is the tests' oracle: it computes the statistics of readsb-hist snapshots the obvious way, with
// the standard library's generic JSON decoding and none of the service's code, for the decoder's and the API's tests to
// compare with. (The e2e suite in test/ keeps an oracle of its own: it checks the service from outside the module.)
package flighttest

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aircraftdata/platform/app/internal/flight"
)

// Want is the expected statistics of one aircraft.
type Want struct {
	ICAO         string
	Observations int64
	First, Last  float64 // snapshot "now", epoch seconds
	Registration string  // last non-empty "r"
	Type         string  // last non-empty "t"
	regAt, typAt float64

	// Numeric values within the decoder's validation ranges (README): "ground" is an observation, not an altitude.
	AltN           int64
	AltSum, AltMax float64
	GsN            int64
	GsSum, GsMax   float64
	Emergencies    map[string]bool // every emergency value other than "none"
}

// Oracle is the expected statistics of every aircraft of the snapshots added to it, by address.
type Oracle map[string]*Want

// Add adds one snapshot (plain JSON) and returns its time ("now").
func (o Oracle) Add(t testing.TB, snapshot []byte) (now float64) {
	t.Helper()
	var doc struct {
		Now      float64          `json:"now"`
		Aircraft []map[string]any `json:"aircraft"`
	}
	if err := json.Unmarshal(snapshot, &doc); err != nil {
		t.Fatalf("oracle: %v", err)
	}
	for _, a := range doc.Aircraft {
		hex, _ := a["hex"].(string)
		if hex == "" {
			t.Fatal("oracle: an aircraft without hex")
		}
		hex = strings.ToLower(hex)
		w := o[hex]
		if w == nil {
			w = &Want{ICAO: hex, First: doc.Now, Last: doc.Now, AltMax: math.Inf(-1), GsMax: math.Inf(-1),
				regAt: math.Inf(-1), typAt: math.Inf(-1), Emergencies: map[string]bool{}}
			o[hex] = w
		}
		w.Observations++
		w.First, w.Last = math.Min(w.First, doc.Now), math.Max(w.Last, doc.Now)
		if r, _ := a["r"].(string); r != "" && doc.Now >= w.regAt {
			w.Registration, w.regAt = r, doc.Now
		}
		if ty, _ := a["t"].(string); ty != "" && doc.Now >= w.typAt {
			w.Type, w.typAt = ty, doc.Now
		}
		if v, ok := a["alt_baro"].(float64); ok && v >= -1200 && v <= 126700 {
			w.AltN++
			w.AltSum += v
			w.AltMax = math.Max(w.AltMax, v)
		}
		if v, ok := a["gs"].(float64); ok && v >= 0 && v <= 5776 {
			w.GsN++
			w.GsSum += v
			w.GsMax = math.Max(w.GsMax, v)
		}
		if e, _ := a["emergency"].(string); e != "" && e != "none" {
			w.Emergencies[e] = true
		}
	}
	return doc.Now
}

// Stats is where Check reads what was stored (postgres.DB).
type Stats interface {
	Stats(ctx context.Context, icao string) (*flight.Stats, error)
}

// Check reports, as test errors, each aircraft of the oracle whose stored statistics differ from it.
func (o Oracle) Check(t testing.TB, s Stats) {
	t.Helper()
	for icao, w := range o {
		got, err := s.Stats(context.Background(), icao)
		if err != nil {
			t.Fatalf("%s: %v", icao, err)
		}
		for _, d := range w.Diff(*got) {
			t.Error(d)
		}
	}
}

// Observations is the number of observations of all aircraft.
func (o Oracle) Observations() int64 {
	var n int64
	for _, w := range o {
		n += w.Observations
	}
	return n
}

// Epoch is a snapshot time as the service stores it: milliseconds, UTC.
func Epoch(sec float64) time.Time { return time.UnixMilli(int64(math.Round(sec * 1000))).UTC() }

// Diff lists how got differs from w; empty when they agree. Averages are compared with a relative tolerance of 1e-9
// (the service may sum in another order).
func (w *Want) Diff(got flight.Stats) []string {
	var diffs []string
	bad := func(field string, g, x any) {
		diffs = append(diffs, fmt.Sprintf("%s %s = %v, want %v", w.ICAO, field, g, x))
	}
	if got.ICAO != w.ICAO {
		bad("icao", got.ICAO, w.ICAO)
	}
	if got.Observations != w.Observations {
		bad("observations", got.Observations, w.Observations)
	}
	if got.FirstSeen == nil || !got.FirstSeen.Equal(Epoch(w.First)) {
		bad("first_seen", show(got.FirstSeen), Epoch(w.First))
	}
	if got.LastSeen == nil || !got.LastSeen.Equal(Epoch(w.Last)) {
		bad("last_seen", show(got.LastSeen), Epoch(w.Last))
	}
	optStr := func(field string, g *string, x string) {
		if (x == "") != (g == nil) || (g != nil && *g != x) {
			bad(field, show(g), x)
		}
	}
	optStr("registration", got.Registration, w.Registration)
	optStr("type", got.Type, w.Type)
	optNum := func(field string, g *float64, n int64, x float64) {
		if n == 0 {
			if g != nil {
				bad(field, *g, "null")
			}
			return
		}
		if g == nil || math.Abs(*g-x) > 1e-9*math.Max(1, math.Abs(x)) {
			bad(field, show(g), x)
		}
	}
	optNum("max_altitude_baro", got.MaxAltitudeBaro, w.AltN, w.AltMax)
	optNum("avg_altitude_baro", got.AvgAltitudeBaro, w.AltN, w.AltSum/float64(max(w.AltN, 1)))
	optNum("max_ground_speed", got.MaxGroundSpeed, w.GsN, w.GsMax)
	optNum("avg_ground_speed", got.AvgGroundSpeed, w.GsN, w.GsSum/float64(max(w.GsN, 1)))
	want := make([]string, 0, len(w.Emergencies))
	for e := range w.Emergencies {
		want = append(want, e)
	}
	sort.Strings(want)
	gotE := slices.Sorted(slices.Values(got.Emergencies))
	if got.HadEmergency != (len(want) > 0) || !slices.Equal(gotE, want) {
		bad("emergencies", fmt.Sprintf("%v %v", got.HadEmergency, gotE), fmt.Sprintf("%v %v", len(want) > 0, want))
	}
	return diffs
}

// show prints a pointer's value, or null.
func show[T any](p *T) any {
	if p == nil {
		return "null"
	}
	return *p
}

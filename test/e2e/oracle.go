package e2e

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
)

// Want is what the service must report for one aircraft, computed the obvious way from the snapshots.
type Want struct {
	ICAO         string
	Observations int
	First, Last  float64 // snapshot "now" (epoch seconds)
	Registration string  // last non-empty "r"
	Type         string  // last non-empty "t"
	regAt, typAt float64

	AltN           int // numeric alt_baro values ("ground" is an observation, not an altitude)
	AltSum, AltMax float64
	GsN            int
	GsSum, GsMax   float64
	Emergencies    map[string]bool // every emergency value other than "none"
}

// Oracle is the expected statistics of every aircraft of a set of snapshots, each snapshot counted once.
type Oracle struct {
	Aircraft map[string]*Want
	// Snapshots maps each good sample's name to its snapshot time, and Observations each snapshot time to its number of
	// aircraft rows: what ingesting that snapshot adds.
	Snapshots    map[string]float64
	Observations map[float64]int
}

// NewOracle computes the statistics of the good samples. A snapshot present under two names (same "now") counts once,
// as the service must count it.
func NewOracle(good []Sample) (*Oracle, error) {
	o := &Oracle{Aircraft: map[string]*Want{}, Snapshots: map[string]float64{}, Observations: map[float64]int{}}
	for _, s := range good {
		snap, err := decodeSnapshot(s.Body)
		if err != nil {
			return nil, fmt.Errorf("oracle: %s: %w", s.Name, err)
		}
		o.Snapshots[s.Name] = snap.Now
		if _, seen := o.Observations[snap.Now]; seen {
			continue // the same snapshot under another name
		}
		o.Observations[snap.Now] = len(snap.Aircraft)
		for _, a := range snap.Aircraft {
			hex, _ := a["hex"].(string)
			if hex == "" {
				return nil, fmt.Errorf("oracle: %s: an aircraft without hex", s.Name)
			}
			hex = strings.ToLower(hex)
			w := o.Aircraft[hex]
			if w == nil {
				w = &Want{ICAO: hex, First: snap.Now, Last: snap.Now, AltMax: math.Inf(-1), GsMax: math.Inf(-1),
					regAt: math.Inf(-1), typAt: math.Inf(-1), Emergencies: map[string]bool{}}
				o.Aircraft[hex] = w
			}
			w.Observations++
			w.First, w.Last = math.Min(w.First, snap.Now), math.Max(w.Last, snap.Now)
			if r, _ := a["r"].(string); r != "" && snap.Now >= w.regAt {
				w.Registration, w.regAt = r, snap.Now
			}
			if t, _ := a["t"].(string); t != "" && snap.Now >= w.typAt {
				w.Type, w.typAt = t, snap.Now
			}
			if v, ok := a["alt_baro"].(float64); ok {
				w.AltN++
				w.AltSum += v
				w.AltMax = math.Max(w.AltMax, v)
			}
			if v, ok := a["gs"].(float64); ok {
				w.GsN++
				w.GsSum += v
				w.GsMax = math.Max(w.GsMax, v)
			}
			if e, _ := a["emergency"].(string); e != "" && e != "none" {
				w.Emergencies[e] = true
			}
		}
	}
	return o, nil
}

// TotalObservations is the number of aircraft rows of all distinct snapshots.
func (o *Oracle) TotalObservations() int {
	n := 0
	for _, c := range o.Observations {
		n += c
	}
	return n
}

// ICAOs returns every aircraft address, sorted.
func (o *Oracle) ICAOs() []string {
	out := make([]string, 0, len(o.Aircraft))
	for h := range o.Aircraft {
		out = append(out, h)
	}
	sort.Strings(out)
	return out
}

// Pick chooses the aircraft whose statistics are checked one by one: every one with an emergency, every one seen in all
// snapshots with a spread of the address space, and every step-th of the rest.
func (o *Oracle) Pick(step int) []string {
	all := o.ICAOs()
	snapshots := len(o.Observations)
	var picked []string
	for i, h := range all {
		w := o.Aircraft[h]
		if len(w.Emergencies) > 0 || (w.Observations >= snapshots && i%7 == 0) || i%step == 0 {
			picked = append(picked, h)
		}
	}
	return picked
}

// Absent returns an address of the plain 6-hex-digit form that no sample holds: one the service must not know.
func (o *Oracle) Absent() string {
	for i := 0; ; i++ {
		h := fmt.Sprintf("%06x", 0xfffff0-i)
		if o.Aircraft[h] == nil {
			return h
		}
	}
}

// Stats is the service's answer for one aircraft (GET /aircraft-stats/{icao}).
type Stats struct {
	ICAO            string     `json:"icao"`
	Registration    *string    `json:"registration"`
	Type            *string    `json:"type"`
	Observations    int        `json:"observations"`
	FirstSeen       *time.Time `json:"first_seen"`
	LastSeen        *time.Time `json:"last_seen"`
	MaxAltitudeBaro *float64   `json:"max_altitude_baro"`
	AvgAltitudeBaro *float64   `json:"avg_altitude_baro"`
	MaxGroundSpeed  *float64   `json:"max_ground_speed"`
	AvgGroundSpeed  *float64   `json:"avg_ground_speed"`
	HadEmergency    bool       `json:"had_emergency"`
	Emergencies     []string   `json:"emergencies"`
}

// epoch is a snapshot time as the service stores it: milliseconds, UTC.
func epoch(sec float64) time.Time { return time.UnixMilli(int64(math.Round(sec * 1000))).UTC() }

// Diff lists how got differs from w; empty when they agree. Averages are compared with a relative tolerance of 1e-9
// (the service may sum in another order).
func (w *Want) Diff(got Stats) []string {
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
	if got.FirstSeen == nil || !got.FirstSeen.Equal(epoch(w.First)) {
		bad("first_seen", show(got.FirstSeen), epoch(w.First))
	}
	if got.LastSeen == nil || !got.LastSeen.Equal(epoch(w.Last)) {
		bad("last_seen", show(got.LastSeen), epoch(w.Last))
	}
	optStr := func(field string, g *string, x string) {
		if (x == "") != (g == nil) || (g != nil && *g != x) {
			bad(field, show(g), x)
		}
	}
	optStr("registration", got.Registration, w.Registration)
	optStr("type", got.Type, w.Type)
	optNum := func(field string, g *float64, n int, x float64) {
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

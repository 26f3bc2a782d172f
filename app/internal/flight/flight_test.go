package flight

import (
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

func TestNormalizeICAO(t *testing.T) {
	for in, want := range map[string]string{"A65800": "a65800", "a65800": "a65800", "~0F0f0f": "~0f0f0f", " abc123 ": "abc123"} {
		if got, err := NormalizeICAO(in); err != nil || got != want {
			t.Errorf("NormalizeICAO(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "abc12", "abc1234", "abc12g", "~~abc123", "~abc12", "ab c12", "äbc123"} {
		if got, err := NormalizeICAO(in); err == nil {
			t.Errorf("NormalizeICAO(%q) = %q, want an error", in, got)
		}
	}
}

// Merging partials in any grouping and order gives what observing every observation one by one gives.
func TestMergeIsOrderIndependent(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	base := time.Date(2023, 11, 1, 0, 0, 0, 0, time.UTC)
	regs := []string{"", "N1", "N2"}
	emerg := []string{"", "none", "general", "lordo"}
	type obsAt struct {
		o  Observation
		at int64
	}
	var all []obsAt
	for i := range 2000 {
		o := Observation{
			ICAO:         []string{"aaaaaa", "bbbbbb", "cccccc"}[rng.IntN(3)],
			Registration: regs[rng.IntN(3)],
			Type:         regs[rng.IntN(3)],
			Emergency:    emerg[rng.IntN(4)],
		}
		if rng.IntN(4) > 0 {
			o.Altitude = Number{Value: float64(rng.IntN(40000)), Valid: true}
		}
		if rng.IntN(3) > 0 {
			o.GroundSpeed = Number{Value: float64(rng.IntN(500)), Valid: true}
		}
		all = append(all, obsAt{o, base.Add(time.Duration(i) * 5 * time.Second).UnixMilli()})
	}
	direct := make(Aggregate)
	for _, x := range all {
		direct.Observe(x.o, x.at)
	}
	// The same observations in shuffled chunks, merged in shuffled order.
	rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	merged := make(Aggregate)
	for start := 0; start < len(all); {
		end := min(len(all), start+1+rng.IntN(300))
		chunk := make(Aggregate)
		for _, x := range all[start:end] {
			chunk.Observe(x.o, x.at)
		}
		merged.Merge(chunk)
		start = end
	}
	for icao, want := range direct {
		got := merged[icao]
		// Sums of the same integers in another order are exact in float64.
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %+v\nwant %+v", icao, got, want)
		}
	}
	if merged.Observations() != int64(len(all)) {
		t.Errorf("observations = %d, want %d", merged.Observations(), len(all))
	}
}

func TestStampSetsTimeOfRegistration(t *testing.T) {
	a := make(Aggregate)
	a.Observe(Observation{ICAO: "aaaaaa", Registration: "N1"}, 0)
	a.Observe(Observation{ICAO: "aaaaaa"}, 0) // no registration: N1 stays
	at := time.Unix(1698796829, 300e6)
	a.Stamp(at)
	p, ms := a["aaaaaa"], at.UnixMilli()
	if p.Registration != "N1" || p.RegistrationAt != ms || p.FirstSeen != ms || p.LastSeen != ms || p.TypeAt != 0 {
		t.Errorf("after Stamp: %+v", p)
	}
}

// Stats shows a partial as the API does: averages of what was seen, null for what never was, the last non-empty
// registration and type.
func TestStats(t *testing.T) {
	var p Partial
	at := time.Date(2023, 11, 1, 0, 0, 30, 0, time.UTC)
	p.Observe(Observation{ICAO: "abcdef", Registration: "N1", Altitude: Number{1000, true}, Emergency: "none"}, at.UnixMilli())
	p.Observe(Observation{ICAO: "abcdef", Type: "A320", Altitude: Number{4000, true}, Emergency: "general"},
		at.Add(5*time.Second).UnixMilli())
	p.Observe(Observation{ICAO: "abcdef", Registration: "N2"}, at.Add(10*time.Second).UnixMilli())
	got := p.Stats("abcdef")
	str := func(s string) *string { return &s }
	num := func(v float64) *float64 { return &v }
	first, last := at, at.Add(10*time.Second)
	want := Stats{ICAO: "abcdef", Registration: str("N2"), Type: str("A320"), Observations: 3,
		FirstSeen: &first, LastSeen: &last, MaxAltitudeBaro: num(4000), AvgAltitudeBaro: num(2500),
		HadEmergency: true, Emergencies: []string{"general"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Stats = %+v\nwant    %+v", got, want)
	}
	if s := (&Partial{}).Stats("abcdef"); s.Emergencies == nil || s.Registration != nil || s.MaxGroundSpeed != nil {
		t.Errorf("empty partial: %+v, want no values and an empty (not null) list of emergencies", s)
	}
}

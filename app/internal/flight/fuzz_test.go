package flight

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// observations turns fuzz bytes into observations within readsb's ranges (what the decoder lets through), 12 bytes
// each, at distinct times.
func observations(data []byte) []Observation {
	regs := []string{"", "N1", "N2", "D-ABCD"}
	ems := []string{"", "none", "general", "lifeguard", "minfuel", "nordo", "unlawful", "downed", "reserved"}
	var obs []Observation
	for len(data) >= 12 {
		b := data[:12]
		data = data[12:]
		o := Observation{
			ICAO:         []string{"abcdef", "~00000a", "123456"}[int(b[0])%3],
			Registration: regs[int(b[1])%len(regs)],
			Type:         regs[int(b[2])%len(regs)],
			Emergency:    ems[int(b[3])%len(ems)],
		}
		if alt := binary.LittleEndian.Uint32(b[4:]); alt%5 != 0 {
			o.Altitude = Number{Value: -1200 + float64(alt%127901), Valid: true}
		}
		if gs := binary.LittleEndian.Uint32(b[8:]); gs%5 != 0 {
			o.GroundSpeed = Number{Value: float64(gs%57770) / 10, Valid: true}
		}
		obs = append(obs, o)
	}
	return obs
}

// FuzzMerge checks that partial statistics merge to the same result however observations are grouped into files and in
// whatever order the files merge: the property batches and reruns rely on. split picks the grouping, the bytes of data
// the observations. Seeds: bytes of the real samples and of the cut ones, read as observations.
func FuzzMerge(f *testing.F) {
	for _, name := range []string{"20231101-000030Z.json", "20231101-000700Z.json.gz", "bad/20231101-000315Z.cut-mid-record.json"} {
		if data, err := os.ReadFile(filepath.Join("../../../../shared/data/readsb-hist", name)); err == nil {
			f.Add(uint64(0x9e3779b97f4a7c15), data[:12*64])
			f.Add(uint64(len(data)), data[len(data)-12*40:])
		}
	}
	f.Add(uint64(1), []byte("abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz"))
	f.Fuzz(func(t *testing.T, split uint64, data []byte) {
		obs := observations(data)
		// Sequential: one aggregate, observations in time order.
		want := make(Aggregate)
		for i, o := range obs {
			want.Observe(o, int64(i)*5000)
		}
		// Grouped: consecutive runs of observations as files, merged in an order drawn from split.
		var files []Aggregate
		for i := 0; i < len(obs); {
			n := 1 + int(split>>(uint(i)%60)&7)
			file := make(Aggregate)
			for j := i; j < min(i+n, len(obs)); j++ {
				file.Observe(obs[j], int64(j)*5000)
			}
			files = append(files, file)
			i += n
		}
		got := make(Aggregate)
		order := make([]int, len(files))
		for i := range order {
			order[i] = i
		}
		slices.SortFunc(order, func(a, b int) int { return int((split*uint64(a+7))%97) - int((split*uint64(b+7))%97) })
		for _, i := range order {
			got.Merge(files[i])
		}
		if len(got) != len(want) {
			t.Fatalf("%d aircraft, want %d", len(got), len(want))
		}
		for icao, w := range want {
			g := got[icao]
			sameSum := func(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }
			if g.Observations != w.Observations || g.FirstSeen != w.FirstSeen || g.LastSeen != w.LastSeen ||
				g.Registration != w.Registration || g.Type != w.Type ||
				g.AltitudeCount != w.AltitudeCount || g.AltitudeMax != w.AltitudeMax || !sameSum(g.AltitudeSum, w.AltitudeSum) ||
				g.SpeedCount != w.SpeedCount || g.SpeedMax != w.SpeedMax || !sameSum(g.SpeedSum, w.SpeedSum) ||
				!slices.Equal(g.Emergencies, w.Emergencies) {
				t.Fatalf("%s merged = %+v, sequential = %+v", icao, g, w)
			}
			for _, v := range []float64{g.AltitudeSum, g.SpeedSum} {
				if math.IsInf(v, 0) || math.IsNaN(v) {
					t.Fatalf("%s: sum not finite: %+v", icao, g)
				}
			}
		}
	})
}

package readsb

import (
	"bytes"
	stdjson "encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/aircraftdata/platform/app/internal/flight"
	"github.com/aircraftdata/platform/app/internal/readsb/readsbtest"
)

// FuzzDecode feeds the decoder arbitrary files under small caps. Whatever the input, it must not panic, must keep its
// caps, and what it returns must be storable: valid addresses, values within the documented ranges, finite sums. When
// encoding/json reads the input as a snapshot or list, the counts must agree with an independent reading of it.
//
// Seeds: the real samples, the bad ones, the hostile classes at a tiny scale, and small hand-made cases. `make fuzz`
// runs it for a set time.
func FuzzDecode(f *testing.F) {
	// Excerpts keep the fuzzer fast: the first records of each real sample (closed again), the first bytes of each cut
	// one, the hostile classes at a tiny scale.
	for _, name := range []string{"20231101-000030Z.json", "20231101-000315Z.json", "20231101-000700Z.json.gz"} {
		if data, err := os.ReadFile(filepath.Join(samples, name)); err == nil {
			f.Add(excerpt(data, 12))
			f.Add(gzFull(excerpt(data, 5)))
		}
	}
	for _, name := range []string{"20231101-000030Z.cut-mid-record.json", "20231101-000315Z.cut-mid-record.json"} {
		if data, err := os.ReadFile(filepath.Join(samples, "bad", name)); err == nil {
			f.Add(data[:min(len(data), 2000)]) // cut mid-record, like the whole file
		}
	}
	for _, h := range readsbtest.Files(1.0 / 2048) {
		f.Add(h.Data)
	}
	for _, s := range []string{
		`{"now":1,"aircraft":[{"hex":"abcdef","alt_baro":"ground","gs":1,"emergency":"nordo","r":"N\u00e9","t":"\ud83d\ude00"}]}`,
		`[{"icao":"~abcdef","altitude":-1200,"speed":5776},{"icao":"ABCDEF","altitude":1e3}]`,
		`{"aircraft":[[[[]]]],"now":5,"x":{"y":[true,false,null,-0.5e-3]}}`,
		`{"now":1,"aircraft":[{"hex":"abcdef","alt_baro":1,"alt_baro":2}]}`,
	} {
		f.Add([]byte(s))
	}
	lim := Limits{MaxBytes: 256 << 10, MaxString: 16, MaxAircraft: 20_000, MaxDepth: 8, MaxDecodeTime: time.Minute}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Decode(bytes.NewReader(data), lim)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an error without a reason")
			}
			return
		}
		checkStorable(t, file, lim)
		if len(data) > 0 && data[0] != 0x1f { // plain JSON: compare with encoding/json
			compareWithStdlib(t, data, file)
		}
	})
}

// excerpt is the header and first n records of a sample (one record per line), closed again into a valid snapshot.
func excerpt(data []byte, n int) []byte {
	lines := bytes.SplitAfter(data, []byte("\n"))
	out := bytes.Join(lines[:min(len(lines), 3+n)], nil)
	out = bytes.TrimRight(out, ",\n")
	return append(out, "\n]}"...)
}

func checkStorable(t *testing.T, file *File, lim Limits) {
	t.Helper()
	if len(file.Aircraft) > lim.MaxAircraft {
		t.Fatalf("%d aircraft over the cap %d", len(file.Aircraft), lim.MaxAircraft)
	}
	var obs int64
	for icao, p := range file.Aircraft {
		if got, err := flight.NormalizeICAO(icao); err != nil || got != icao {
			t.Fatalf("address %q kept", icao)
		}
		obs += p.Observations
		for _, v := range []float64{p.AltitudeSum, p.AltitudeMax, p.SpeedSum, p.SpeedMax} {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("%s: not finite: %+v", icao, p)
			}
		}
		if p.AltitudeCount > 0 && (p.AltitudeMax < MinAltitude || p.AltitudeMax > MaxAltitude) ||
			p.SpeedCount > 0 && (p.SpeedMax < 0 || p.SpeedMax > MaxGroundSpeed) {
			t.Fatalf("%s: out of range: %+v", icao, p)
		}
		for _, e := range p.Emergencies {
			if !slices.Contains(Emergencies, e) || e == "none" {
				t.Fatalf("%s: emergency %q kept", icao, e)
			}
		}
		if len(p.Registration) > lim.MaxString || len(p.Type) > lim.MaxString {
			t.Fatalf("%s: string over the cap: %+v", icao, p)
		}
	}
	if obs != file.Observations {
		t.Fatalf("observations %d, aircraft hold %d", file.Observations, obs)
	}
}

// compareWithStdlib reads data with encoding/json and counts what the rules say should count.
func compareWithStdlib(t *testing.T, data []byte, file *File) {
	t.Helper()
	var doc any
	if stdjson.Unmarshal(data, &doc) != nil {
		return // invalid JSON that the decoder accepted: it checks skipped values loosely (scan.go)
	}
	var recs []any
	switch d := doc.(type) {
	case map[string]any:
		recs, _ = d["aircraft"].([]any)
	case []any:
		recs = d
	}
	var obs, alts int64
	addrs := map[string]bool{}
	for _, r := range recs {
		rec, ok := r.(map[string]any)
		if !ok {
			continue
		}
		hex, _ := rec["hex"].(string)
		if hex == "" {
			hex, _ = rec["icao"].(string)
		}
		icao, err := flight.NormalizeICAO(hex)
		if err != nil {
			continue
		}
		obs++
		addrs[icao] = true
		alt, set := rec["alt_baro"]
		if !set || alt == nil {
			alt = rec["altitude"]
		}
		if v, ok := alt.(float64); ok && v >= MinAltitude && v <= MaxAltitude {
			alts++
		}
	}
	var gotAlts int64
	for _, p := range file.Aircraft {
		gotAlts += p.AltitudeCount
	}
	if obs != file.Observations || len(addrs) != len(file.Aircraft) || alts != gotAlts {
		t.Fatalf("observations/aircraft/altitudes %d/%d/%d, encoding/json reads %d/%d/%d",
			file.Observations, len(file.Aircraft), gotAlts, obs, len(addrs), alts)
	}
}

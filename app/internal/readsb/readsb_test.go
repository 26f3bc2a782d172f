package readsb

import (
	"bytes"
	"compress/gzip"
	stdjson "encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// oracle computes the statistics of one snapshot the obvious way, with the
// standard library's generic decoding, independently of the decoder.
type oracleStats struct {
	obs            int64
	reg, typ       string
	altN           int64
	altSum, altMax float64
	gsN            int64
	gsSum, gsMax   float64
	emergencies    map[string]bool
}

func oracle(t *testing.T, data []byte) (now float64, stats map[string]*oracleStats) {
	t.Helper()
	var doc map[string]any
	if err := stdjson.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	stats = map[string]*oracleStats{}
	for _, a := range doc["aircraft"].([]any) {
		rec := a.(map[string]any)
		hex := strings.ToLower(rec["hex"].(string))
		s := stats[hex]
		if s == nil {
			s = &oracleStats{emergencies: map[string]bool{}, altMax: math.Inf(-1), gsMax: math.Inf(-1)}
			stats[hex] = s
		}
		s.obs++
		if r, _ := rec["r"].(string); r != "" {
			s.reg = r
		}
		if ty, _ := rec["t"].(string); ty != "" {
			s.typ = ty
		}
		if alt, ok := rec["alt_baro"].(float64); ok {
			s.altN++
			s.altSum += alt
			s.altMax = math.Max(s.altMax, alt)
		}
		if gs, ok := rec["gs"].(float64); ok {
			s.gsN++
			s.gsSum += gs
			s.gsMax = math.Max(s.gsMax, gs)
		}
		if e, _ := rec["emergency"].(string); e != "" && e != "none" {
			s.emergencies[e] = true
		}
	}
	return doc["now"].(float64), stats
}

func readSample(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(samples, name))
	if err != nil {
		t.Fatalf("sample data: %v (the tests expect ../shared beside the repository)", err)
	}
	return data
}

func TestDecodeMatchesOracle(t *testing.T) {
	for _, name := range []string{"20231101-000030Z.json", "20231101-000315Z.json", "20231101-000700Z.json.gz"} {
		t.Run(name, func(t *testing.T) {
			data := readSample(t, name)
			now, want := oracle(t, data)
			for _, stream := range []bool{false, true} {
				var f *File
				var err error
				if stream {
					f, err = decodeStream(bytes.NewReader(data))
					f.Aircraft.Stamp(f.Now)
				} else {
					f, err = Decode(bytes.NewReader(data))
				}
				if err != nil {
					t.Fatal(err)
				}
				wantNow := time.UnixMilli(int64(math.Round(now * 1000))).UTC()
				ms := wantNow.UnixMilli()
				if !f.Now.Equal(wantNow) {
					t.Errorf("now = %v, want %v", f.Now, wantNow)
				}
				if len(f.Aircraft) != len(want) {
					t.Fatalf("stream=%v: %d aircraft, want %d", stream, len(f.Aircraft), len(want))
				}
				var total int64
				for hex, w := range want {
					total += w.obs
					p, ok := f.Aircraft[hex]
					if !ok {
						t.Fatalf("aircraft %s missing", hex)
					}
					if p.Observations != w.obs || p.Registration != w.reg || p.Type != w.typ ||
						p.AltitudeCount != w.altN || p.AltitudeSum != w.altSum ||
						p.SpeedCount != w.gsN || p.SpeedSum != w.gsSum ||
						(w.altN > 0 && p.AltitudeMax != w.altMax) || (w.gsN > 0 && p.SpeedMax != w.gsMax) ||
						len(p.Emergencies) != len(w.emergencies) {
						t.Fatalf("stream=%v: %s = %+v, want %+v", stream, hex, p, *w)
					}
					for _, e := range p.Emergencies {
						if !w.emergencies[e] {
							t.Errorf("%s: emergency %q not in the data", hex, e)
						}
					}
					if p.FirstSeen != ms || p.LastSeen != ms {
						t.Errorf("%s seen %v..%v, want %v", hex, p.FirstSeen, p.LastSeen, wantNow)
					}
				}
				if f.Observations != total {
					t.Errorf("observations = %d, want %d", f.Observations, total)
				}
			}
		})
	}
}

func TestDecodeDetectsGzipByMagicNotName(t *testing.T) {
	plain, err := Decode(bytes.NewReader(readSample(t, "20231101-000315Z.json")))
	if err != nil {
		t.Fatal(err)
	}
	gz, err := Decode(bytes.NewReader(readSample(t, "20231101-000315Z.json.gz")))
	if err != nil {
		t.Fatal(err)
	}
	if plain.Gzip || !gz.Gzip {
		t.Errorf("gzip detected: plain=%v gz=%v", plain.Gzip, gz.Gzip)
	}
	if !plain.Now.Equal(gz.Now) || plain.Observations != gz.Observations || len(plain.Aircraft) != len(gz.Aircraft) {
		t.Errorf("the same snapshot decodes differently: %v/%d vs %v/%d", plain.Now, plain.Observations, gz.Now, gz.Observations)
	}
	misnamed, err := Decode(bytes.NewReader(readSample(t, "20231101-000700Z.json.gz")))
	if err != nil {
		t.Fatal(err)
	}
	if misnamed.Gzip {
		t.Error("a plain file named .gz was taken for gzip")
	}
}

func TestDecodeRejectsBadFiles(t *testing.T) {
	good := readSample(t, "20231101-000315Z.json")
	var gzCut bytes.Buffer
	zw := gzip.NewWriter(&gzCut)
	zw.Write(good)
	zw.Close()
	cases := map[string][]byte{
		"cut mid-record (real)": readSample(t, "bad/20231101-000030Z.cut-mid-record.json"),
		"cut mid-record 2":      readSample(t, "bad/20231101-000315Z.cut-mid-record.json"),
		"gzip cut short":        gzCut.Bytes()[:gzCut.Len()/2],
		"empty":                 {},
		"a number":              []byte(`42`),
		"no aircraft":           []byte(`{"now": 1698796829.3}`),
		"no now":                []byte(`{"aircraft": []}`),
		"aircraft not array":    []byte(`{"now": 1698796829.3, "aircraft": {}}`),
		"bad altitude":          []byte(`{"now": 1698796829.3, "aircraft": [{"hex":"abcdef","alt_baro":true}]}`),
		"trailing garbage":      []byte(`[{"icao":"abcdef"}] [`),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			f, err := Decode(bytes.NewReader(data))
			if err == nil {
				t.Fatalf("decoded %d observations from a bad file", f.Observations)
			}
			if err.Error() == "" {
				t.Fatal("no reason given")
			}
			t.Log(err)
		})
	}
	if _, err := Decode(bytes.NewReader(readSample(t, "bad/20231101-000030Z.cut-mid-record.json"))); !strings.Contains(err.Error(), "truncated") {
		t.Errorf("a cut file should say it is truncated, got %v", err)
	}
}

func TestDecodeEmptySnapshot(t *testing.T) {
	f, err := Decode(strings.NewReader(`{"now": 1698796829.3, "aircraft": []}`))
	if err != nil || f.Observations != 0 || f.Now.IsZero() {
		t.Errorf("empty snapshot: %+v, %v", f, err)
	}
}

func TestDecodeListFormat(t *testing.T) {
	data := []byte(`[
	  {"icao": "ABC123", "altitude": 1000, "speed": 200.5},
	  {"icao": "abc123", "altitude": "ground", "speed": 10},
	  {"icao": "~0f0f0f", "altitude": 35000},
	  {"icao": "zzz", "altitude": 1}
	]`)
	f, err := Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if f.Format != "list" || f.Observations != 3 || len(f.Aircraft) != 2 {
		t.Fatalf("got format %s, %d observations, %d aircraft", f.Format, f.Observations, len(f.Aircraft))
	}
	p := f.Aircraft["abc123"]
	if p.Observations != 2 || p.AltitudeCount != 1 || p.AltitudeMax != 1000 || p.SpeedSum != 210.5 || p.SpeedMax != 200.5 {
		t.Errorf("abc123 = %+v", p)
	}
	if q, ok := f.Aircraft["~0f0f0f"]; !ok || q.AltitudeMax != 35000 || q.SpeedCount != 0 {
		t.Errorf("~0f0f0f = %+v", q)
	}
}

func TestDecodeStreamsLargeFiles(t *testing.T) {
	// A list larger than wholeLimit takes the streaming path and gives the
	// same answer as the arithmetic says.
	var b bytes.Buffer
	b.WriteString("[")
	n := 0
	for b.Len() <= wholeLimit {
		if n > 0 {
			b.WriteString(",")
		}
		b.WriteString(`{"icao":"a00001","altitude":100,"speed":2,"pad":"` + strings.Repeat("x", 200) + `"}`)
		n++
	}
	b.WriteString("]")
	f, err := Decode(&b)
	if err != nil {
		t.Fatal(err)
	}
	p := f.Aircraft["a00001"]
	if f.Observations != int64(n) || p.AltitudeSum != float64(100*n) || p.SpeedSum != float64(2*n) {
		t.Errorf("got %d observations, sums %v/%v; want %d", f.Observations, p.AltitudeSum, p.SpeedSum, n)
	}
}

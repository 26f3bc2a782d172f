package readsb

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing/iotest"

	"github.com/aircraftdata/platform/app/internal/flight/flighttest"
	"github.com/aircraftdata/platform/app/internal/readsb/readsbtest"
	"testing"
	"time"
)

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
			want := flighttest.Oracle{}
			now := want.Add(t, data)
			for _, stream := range []bool{false, true} {
				var r io.Reader = bytes.NewReader(data)
				if stream { // one byte per read: every token crosses a buffer boundary
					r = iotest.OneByteReader(r)
				}
				f, err := Decode(r, roomy)
				if err != nil {
					t.Fatal(err)
				}
				wantNow := flighttest.Epoch(now)
				ms := wantNow.UnixMilli()
				if !f.Now.Equal(wantNow) {
					t.Errorf("now = %v, want %v", f.Now, wantNow)
				}
				if len(f.Aircraft) != len(want) {
					t.Fatalf("stream=%v: %d aircraft, want %d", stream, len(f.Aircraft), len(want))
				}
				var total int64
				for hex, w := range want {
					total += w.Observations
					p, ok := f.Aircraft[hex]
					if !ok {
						t.Fatalf("aircraft %s missing", hex)
					}
					if p.Observations != w.Observations || p.Registration != w.Registration || p.Type != w.Type ||
						p.AltitudeCount != w.AltN || p.AltitudeSum != w.AltSum ||
						p.SpeedCount != w.GsN || p.SpeedSum != w.GsSum ||
						(w.AltN > 0 && p.AltitudeMax != w.AltMax) || (w.GsN > 0 && p.SpeedMax != w.GsMax) ||
						len(p.Emergencies) != len(w.Emergencies) {
						t.Fatalf("stream=%v: %s = %+v, want %+v", stream, hex, p, *w)
					}
					for _, e := range p.Emergencies {
						if !w.Emergencies[e] {
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
	plain, err := Decode(bytes.NewReader(readSample(t, "20231101-000315Z.json")), roomy)
	if err != nil {
		t.Fatal(err)
	}
	gz, err := Decode(bytes.NewReader(readSample(t, "20231101-000315Z.json.gz")), roomy)
	if err != nil {
		t.Fatal(err)
	}
	if plain.Gzip || !gz.Gzip {
		t.Errorf("gzip detected: plain=%v gz=%v", plain.Gzip, gz.Gzip)
	}
	if !plain.Now.Equal(gz.Now) || plain.Observations != gz.Observations || len(plain.Aircraft) != len(gz.Aircraft) {
		t.Errorf("the same snapshot decodes differently: %v/%d vs %v/%d", plain.Now, plain.Observations, gz.Now, gz.Observations)
	}
	misnamed, err := Decode(bytes.NewReader(readSample(t, "20231101-000700Z.json.gz")), roomy)
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
		"bad number":            []byte(`{"now": 1698796829.3, "aircraft": [{"hex":"abcdef","alt_baro":1-2}]}`),
		"bad literal":           []byte(`{"now": 1698796829.3, "aircraft": [{"hex":"abcdef","x":nul}]}`),
		"missing comma":         []byte(`{"now": 1698796829.3, "aircraft": [{"hex":"abcdef" "x":1}]}`),
		"bad escape":            []byte(`{"now": 1698796829.3, "aircraft": [{"hex":"abcdef","x":"\q"}]}`),
		"gzip then garbage":     append(append([]byte{}, gzFull(good)...), "garbage"...),
		"trailing garbage":      []byte(`[{"icao":"abcdef"}] [`),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			f, err := Decode(bytes.NewReader(data), roomy)
			if err == nil {
				t.Fatalf("decoded %d observations from a bad file", f.Observations)
			}
			if err.Error() == "" {
				t.Fatal("no reason given")
			}
			t.Log(err)
		})
	}
	if _, err := Decode(bytes.NewReader(readSample(t, "bad/20231101-000030Z.cut-mid-record.json")), roomy); !strings.Contains(err.Error(), "truncated") {
		t.Errorf("a cut file should say it is truncated, got %v", err)
	}
}

func TestDecodeEmptySnapshot(t *testing.T) {
	f, err := Decode(strings.NewReader(`{"now": 1698796829.3, "aircraft": []}`), roomy)
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
	f, err := Decode(bytes.NewReader(data), roomy)
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

func TestDecodeHostileFiles(t *testing.T) {
	// The hostile classes at 1/64 of their size, against caps scaled to match.
	lim := roomy
	lim.MaxBytes, lim.MaxAircraft = 8<<20, 10_000
	for _, h := range readsbtest.Files(1.0 / 64) {
		t.Run(h.Name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := Decode(bytes.NewReader(h.Data), lim)
			runtime.ReadMemStats(&after)
			if err == nil || !strings.Contains(err.Error(), h.Want) {
				t.Fatalf("err = %v, want one naming %q", err, h.Want)
			}
			t.Log(err)
			// Allocation, not just live memory: nothing is buffered, even briefly.
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 && !strings.Contains(h.Name, "addresses") {
				t.Errorf("decoding allocated %d MiB", alloc>>20)
			}
		})
	}
}

func TestDecodeSkipsLargeIgnoredValuesWithoutMemory(t *testing.T) {
	// A 32 MiB ignored string, number and array within the byte cap decode, allocating next to nothing.
	doc := io.MultiReader(
		strings.NewReader(`{"now":1698796829.3,"aircraft":[{"hex":"abcdef","flight":"`),
		io.LimitReader(repeatByte('x'), 32<<20),
		strings.NewReader(`","messages":1`),
		io.LimitReader(repeatByte('0'), 32<<20),
		strings.NewReader(`,"mlat":[`),
		io.LimitReader(repeatByte('['), 20), io.LimitReader(repeatByte(']'), 20),
		strings.NewReader(`],"alt_baro":1000,"gs":200}]}`),
	)
	aircraftHint.Store(0) // no map sized after an earlier test's file
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f, err := Decode(doc, roomy)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if p := f.Aircraft["abcdef"]; f.Observations != 1 || p.AltitudeSum != 1000 || p.SpeedSum != 200 {
		t.Errorf("got %+v", f)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Errorf("decoding allocated %d KiB", alloc>>10)
	}
}

// A file's maps start at the size of the last file decoded, but never above the aircraft cap: a small file after a
// large one allocates no more than its cap allows.
func TestDecodeSizesMapsWithinTheCap(t *testing.T) {
	var large strings.Builder
	large.WriteString(`{"now":1698796829.3,"aircraft":[{"hex":"000000"}`)
	for i := 1; i < 20_000; i++ {
		fmt.Fprintf(&large, `,{"hex":"%06x"}`, i)
	}
	large.WriteString(`]}`)
	if f, err := Decode(strings.NewReader(large.String()), roomy); err != nil || len(f.Aircraft) != 20_000 {
		t.Fatalf("the large file: %v", err)
	}
	small := roomy
	small.MaxAircraft = 10
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f, err := Decode(strings.NewReader(`{"now":1698796829.3,"aircraft":[{"hex":"abcdef","alt_baro":1000}]}`), small)
	runtime.ReadMemStats(&after)
	if err != nil || f.Observations != 1 {
		t.Fatalf("the small file: %+v, %v", f, err)
	}
	// 20,000 entries of two maps, one of them holding a flight.Partial (over 100 bytes) each, would be over 2 MB.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 256<<10 {
		t.Errorf("a file of 1 aircraft under a cap of 10 allocated %d KiB after a file of 20,000", alloc>>10)
	}
}

type repeatByte byte

func (r repeatByte) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

// roomy are limits no sample reaches (the service's defaults, see package config).
var roomy = Limits{MaxBytes: 256 << 20, MaxString: 64, MaxAircraft: 100_000, MaxDepth: 32, MaxDecodeTime: time.Minute}

// A limit left unset is refused, not taken as "no limit".
func TestDecodeRefusesUnsetLimits(t *testing.T) {
	for _, unset := range []func(*Limits){
		func(l *Limits) { l.MaxBytes = 0 }, func(l *Limits) { l.MaxString = 0 }, func(l *Limits) { l.MaxAircraft = 0 },
		func(l *Limits) { l.MaxDepth = 0 }, func(l *Limits) { l.MaxDecodeTime = 0 },
	} {
		lim := roomy
		unset(&lim)
		if _, err := Decode(strings.NewReader(`{"now": 1698796829.3, "aircraft": []}`), lim); err == nil {
			t.Errorf("Decode with %+v: no error", lim)
		}
	}
}

// The decode time cap counts decoding: a file that takes longer than the cap to decode is refused.
func TestDecodeTimeCap(t *testing.T) {
	doc := `{"now":1698796829.3,"aircraft":[` + strings.Repeat(`{"hex":"abcdef","alt_baro":1000},`, 20_000) + `{"hex":"abcdef"}]}`
	lim := roomy
	lim.MaxDecodeTime = time.Nanosecond // no 640 kB decode is that fast
	_, err := Decode(strings.NewReader(doc), lim)
	if err == nil || !strings.Contains(err.Error(), "INGEST_MAX_DECODE_SECONDS") {
		t.Fatalf("err = %v", err)
	}
}

// Waiting for a slow source is not decoding: a file that arrives slowly but decodes fast is within the cap.
func TestDecodeTimeCapExcludesWaiting(t *testing.T) {
	slow := iotest.OneByteReader(slowReader{strings.NewReader(`{"now":1698796829.3,"aircraft":[{"hex":"abcdef"}]}`)})
	lim := roomy
	lim.MaxDecodeTime = 30 * time.Millisecond // less than the ~250 ms the reads wait
	if _, err := Decode(slow, lim); err != nil {
		t.Fatalf("err = %v", err)
	}
}

type slowReader struct{ r io.Reader }

func (s slowReader) Read(p []byte) (int, error) {
	time.Sleep(5 * time.Millisecond)
	return s.r.Read(p)
}

func TestDecodeValidation(t *testing.T) {
	data := `{"now":1698796829.3,"aircraft":[
	  {"hex":"ABCDEF","alt_baro":1e308,"gs":-1,"emergency":"x","r":"N1\u0000"},
	  {"hex":"abcdef","alt_baro":126700,"gs":5776,"emergency":"lifeguard","r":" N1 ","t":"B738"},
	  {"hex":"abcdef","alt_baro":-1200,"gs":0,"emergency":"none"},
	  {"hex":"abcdef","alt_baro":"high","gs":"fast","emergency":7},
	  {"hex":"abcdef","alt_baro":126701,"gs":5776.5,"r":{"a":1}},
	  {"hex":"abcdef","alt_baro":1e999},
	  {"hex":"abcdeg"}, {"hex":12}, {}, 7, null, {"hex":"~00000a","alt_baro":"ground"}
	]}`
	f, err := Decode(strings.NewReader(data), roomy)
	if err != nil {
		t.Fatal(err)
	}
	p := f.Aircraft["abcdef"]
	if p.Observations != 6 || p.AltitudeCount != 2 || p.AltitudeSum != 126700-1200 || p.AltitudeMax != 126700 ||
		p.SpeedCount != 2 || p.SpeedSum != 5776 || p.Registration != "N1" || p.Type != "B738" ||
		len(p.Emergencies) != 1 || p.Emergencies[0] != "lifeguard" {
		t.Errorf("abcdef = %+v", p)
	}
	if q := f.Aircraft["~00000a"]; q.Observations != 1 || q.AltitudeCount != 0 {
		t.Errorf("~00000a = %+v", q)
	}
	want := map[string]int64{
		reasonAltitudeRange: 3, reasonSpeedRange: 2, reasonEmergency: 2, reasonRegistrationText: 2,
		reasonAltitudeType: 1, reasonSpeedType: 1, reasonBadHex: 2, reasonNoHex: 1, reasonNotObject: 2,
	}
	if len(f.Invalid) != len(want) {
		t.Errorf("invalid = %v, want %v", f.Invalid, want)
	}
	for k, v := range want {
		if f.Invalid[k] != v {
			t.Errorf("invalid[%q] = %d, want %d", k, f.Invalid[k], v)
		}
	}
}

func gzFull(data []byte) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(data)
	zw.Close()
	return b.Bytes()
}

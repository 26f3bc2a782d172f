// Package snapshots makes the realistic readsb-hist snapshots that make bench-ingest ingests: full-sized, distinct,
// made at run time from the real samples (never committed).
package snapshots

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
)

// Snapshots makes realistic readsb-hist snapshots from the real samples: each is a sample shifted in time (one every 5
// s, so every snapshot is distinct) with its positions, altitudes and speeds jittered, and its aircraft repeated under
// other addresses until it holds as many records (~10.6k) and bytes (~5 MB) as a full one (the samples are partial
// copies). Every key of the original records is kept, so decoders skip as much as they would in production.
type Snapshots struct {
	samples []sample
	rng     *rand.Rand
	n       int
}

type sample struct {
	now      float64
	aircraft []map[string]json.RawMessage
}

// New loads the samples from dir (shared/data/readsb-hist).
func New(dir string) (*Snapshots, error) {
	g := &Snapshots{rng: rand.New(rand.NewPCG(20231101, 5))}
	for _, name := range []string{"20231101-000030Z.json", "20231101-000315Z.json", "20231101-000700Z.json.gz"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		var doc struct {
			Now      float64                      `json:"now"`
			Aircraft []map[string]json.RawMessage `json:"aircraft"`
		}
		if err := json.Unmarshal(data, &doc); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		g.samples = append(g.samples, sample{now: doc.Now, aircraft: doc.Aircraft})
	}
	return g, nil
}

// Next returns the next snapshot's key name and JSON.
func (g *Snapshots) Next() (name string, data []byte, err error) {
	i := g.n
	g.n++
	s := g.samples[i%len(g.samples)]
	now := s.now + float64(i)*5
	var buf bytes.Buffer
	buf.Grow(6 << 20)
	fmt.Fprintf(&buf, `{"now":%.1f,"messages":%d,"aircraft":[`, now, 100000+i)
	first := true
	for r := range RecordsPerSnapshot {
		j, c := r%len(s.aircraft), r/len(s.aircraft)
		{
			rec := g.jitter(s.aircraft[j], c)
			b, err := json.Marshal(rec)
			if err != nil {
				return "", nil, err
			}
			if !first {
				buf.WriteByte(',')
			}
			first = false
			buf.Write(b)
		}
	}
	buf.WriteString("]}")
	return fmt.Sprintf("snapshot-%05d.json", i), buf.Bytes(), nil
}

// RecordsPerSnapshot is the number of aircraft records of every snapshot: the size of a full daytime readsb-hist
// snapshot (about 10.6 k aircraft, ~5 MB of JSON); the real samples beside the repository (shared/data/readsb-hist) are
// smaller night-time ones.
const RecordsPerSnapshot = 10_600

// jitter returns a copy of rec with numbers moved a little; copy c > 0 gets another address (its first hex digit
// shifted by 3c, distinct for c < 16).
func (g *Snapshots) jitter(rec map[string]json.RawMessage, copy int) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(rec))
	for k, v := range rec {
		out[k] = v
	}
	num := func(key string, spread float64, digits int) {
		v, ok := rec[key]
		if !ok {
			return
		}
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil {
			return // "ground" and other strings stay as they are
		}
		f += (g.rng.Float64()*2 - 1) * spread
		out[key] = json.RawMessage(strconv.FormatFloat(f, 'f', digits, 64))
	}
	num("alt_baro", 200, 0)
	num("alt_geom", 200, 0)
	num("gs", 8, 1)
	num("lat", 0.05, 6)
	num("lon", 0.05, 6)
	if copy > 0 {
		var hex string
		if json.Unmarshal(rec["hex"], &hex) == nil && len(hex) >= 6 {
			h := []byte(hex)
			i := len(h) - 6
			h[i] = "0123456789abcdef"[(hexVal(h[i])+3*copy)%16]
			out["hex"], _ = json.Marshal(string(h))
		}
	}
	return out
}

func hexVal(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	}
	return 0
}

package e2e

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/aircraftdata/platform/test/testkit"
)

// Sample is one file of the samples folder.
type Sample struct {
	Name string // path below the samples folder, with forward slashes: "20231101-000030Z.json", "bad/…"
	Body []byte // the file's bytes, uploaded as they are
	Bad  bool   // under bad/: does not decode, must be reported and contribute nothing
}

// Samples are the files one run uploads and ingests.
type Samples struct {
	Dir  string
	Good []Sample // decodable snapshots, sorted by name (duplicates of one snapshot under two names included)
	Bad  []Sample // files that must fail decoding, sorted by name
}

// All returns the good and the bad files.
func (s *Samples) All() []Sample { return append(slices.Clone(s.Good), s.Bad...) }

// LoadSamples reads every sample of dir: the files at its top level are good snapshots, those under bad/ are expected
// to fail decoding; README files are not samples.
func LoadSamples(dir string) (*Samples, error) {
	s := &Samples{Dir: dir}
	for _, sub := range []string{"", "bad"} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			return nil, fmt.Errorf("samples: %w (set %s to the folder of the readsb-hist samples)", err, testkit.SamplesDirEnv)
		}
		for _, e := range entries {
			if !e.Type().IsRegular() || strings.HasPrefix(strings.ToUpper(e.Name()), "README") {
				continue
			}
			body, err := os.ReadFile(filepath.Join(dir, sub, e.Name()))
			if err != nil {
				return nil, err
			}
			name := e.Name()
			if sub != "" {
				name = sub + "/" + name
			}
			if sub == "bad" {
				s.Bad = append(s.Bad, Sample{Name: name, Body: body, Bad: true})
			} else {
				s.Good = append(s.Good, Sample{Name: name, Body: body})
			}
		}
	}
	if len(s.Good) == 0 || len(s.Bad) == 0 {
		return nil, fmt.Errorf("samples: %s holds %d good and %d bad files; want both kinds", dir, len(s.Good), len(s.Bad))
	}
	return s, nil
}

// snapshot is a readsb-hist document as the oracle reads it: every aircraft as a plain map, so that no field is
// interpreted by a struct's rules.
type snapshot struct {
	Now      float64          `json:"now"`
	Aircraft []map[string]any `json:"aircraft"`
}

// decodeSnapshot reads a readsb-hist file, gzip or not: gzip is recognised by its magic bytes, never by the name.
func decodeSnapshot(body []byte) (*snapshot, error) {
	if len(body) >= 2 && body[0] == 0x1f && body[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		if body, err = io.ReadAll(zr); err != nil {
			return nil, err
		}
	}
	var snap snapshot
	if err := json.Unmarshal(body, &snap); err != nil {
		return nil, err
	}
	if snap.Now <= 0 || snap.Aircraft == nil {
		return nil, fmt.Errorf("not a readsb-hist snapshot: no now or no aircraft")
	}
	return &snap, nil
}

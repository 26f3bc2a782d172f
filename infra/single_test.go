package main

// The load-balanced mode (-c instances=N, N > 1) must leave the single-instance stack exactly as it was: the template
// synthesized with the default context, and with instances=1 spelled out, is compared byte for byte with
// testdata/single-instance.template.json, recorded from the code before the load-balanced mode existed.
//
// A deliberate change to the single-instance stack re-records it (and the review sees the template diff):
//
//	go test -run TestSingleInstanceTemplateIsUnchanged -update-single .

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var updateSingle = flag.Bool("update-single", false, "re-record testdata/single-instance.template.json")

// goldenBinary is the stand-in binary of the recorded template: its asset hash is part of the template, and the real
// build changes with every change of app/.
const goldenBinary = "aircraftd: stand-in of the recorded single-instance template"

func TestSingleInstanceTemplateIsUnchanged(t *testing.T) {
	golden := filepath.Join("testdata", "single-instance.template.json")
	bin := fakeBinary(t, goldenBinary)
	s := synth(t, nil, bin)
	if *updateSingle {
		if err := os.WriteFile(golden, s.Raw, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("recorded %s (%d bytes)", golden, len(s.Raw))
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	for name, ctx := range map[string]map[string]any{"default": nil, "instances=1": {"instances": "1"}} {
		got := s.Raw
		if ctx != nil {
			got = synth(t, ctx, bin).Raw
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: the single-instance template changed (if on purpose, re-record with -update-single):\n%s",
				name, firstDifference(want, got))
		}
	}
}

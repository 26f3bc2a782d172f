package seed

import "testing"

func TestSkipReadsb(t *testing.T) {
	for rel, want := range map[string]bool{
		"20231101-000030Z.json":    false,
		"20231101-000700Z.json.gz": false,
		"bad":                      true,
		"bad/20231101-000030Z.cut-mid-record.json": true,
		"README.md":     true,
		"badger.json":   false,
		"sub/README.md": false,
	} {
		if got := SkipReadsb(rel); got != want {
			t.Errorf("SkipReadsb(%q) = %v, want %v", rel, got, want)
		}
	}
}

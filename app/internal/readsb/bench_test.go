package readsb

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

const samples = "../../../../shared/data/readsb-hist"

func BenchmarkDecode(b *testing.B) {
	data, err := os.ReadFile(filepath.Join(samples, "20231101-000030Z.json"))
	if err != nil {
		b.Skip(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Decode(bytes.NewReader(data), roomy); err != nil {
			b.Fatal(err)
		}
	}
}

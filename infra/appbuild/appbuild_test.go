package appbuild

import (
	"debug/elf"
	"path/filepath"
	"testing"
)

// The worker is built as the provided.al2023 runtime runs it: a static linux/arm64 executable named bootstrap.
func TestBuildWorker(t *testing.T) {
	bin, err := BuildWorker(filepath.Join("..", "..", "app"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(bin) != "bootstrap" {
		t.Errorf("built %s, want bootstrap", bin)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Machine != elf.EM_AARCH64 || f.Type != elf.ET_EXEC {
		t.Errorf("%s is %v %v, want an arm64 executable", bin, f.Machine, f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s asks for a dynamic loader: not static", bin)
		}
	}
}

package service

import (
	"context"
	"debug/elf"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/aircraftdata/platform/scripts/internal/repo"
)

// devstack's service is the infra's build of the binary: a static linux executable for this machine, from a clean build
// environment.
func TestBuildIsTheInfrasBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds aircraftd")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	root, err := repo.FindRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOWORK", "off") // as under make test-scripts: the build must not depend on the caller's workspace
	bin, err := Build(context.Background(), root, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(bin) != "aircraftd" {
		t.Errorf("built %s", bin)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Type != elf.ET_EXEC || f.Section(".interp") != nil {
		t.Errorf("%s: not a static executable (type %v)", bin, f.Type)
	}
}

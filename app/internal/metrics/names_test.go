package metrics

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/metrics.txt from the registry (Names)")

// namesFile is docs/metrics.txt, from app/internal/metrics: the names of the metrics the service serves, one a line.
// infra's tests read it (infra cannot import the app): its dashboard, alarms and agent configuration may name only
// these.
var namesFile = filepath.Join("..", "..", "..", "docs", "metrics.txt")

const namesHeader = "# The metrics aircraftd serves on METRICS_ADDR (/metrics), one name a line.\n" +
	"# Generated from app/internal/metrics (go -C app test ./internal/metrics -update); infra's tests read it.\n"

// TestNamesFileIsTheRegistry: docs/metrics.txt lists exactly Names, the metrics of a running service's registry.
func TestNamesFileIsTheRegistry(t *testing.T) {
	want := namesHeader + strings.Join(New("v").Names(), "\n") + "\n"
	if *update {
		if err := os.WriteFile(namesFile, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(namesFile)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("docs/metrics.txt is not the registry's names: run go -C app test ./internal/metrics -update\n--- got\n%s\n--- want\n%s", got, want)
	}
}

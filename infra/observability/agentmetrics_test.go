package observability

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestScrapeConfigIsPrometheus checks the agent's scrape configuration with Debian's promtool, the real parser of that
// format (the agent reads the same). .ci/run installs prometheus: there (CI=true) a missing promtool fails the test
// instead of skipping it.
func TestScrapeConfigIsPrometheus(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool not installed although CI=true (apt-get install prometheus)")
		}
		t.Skip("promtool not installed (apt-get install prometheus)")
	}
	path := filepath.Join(t.TempDir(), "scrape.yaml")
	if err := os.WriteFile(path, []byte(PrometheusScrapeConfig()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "check", "config", path).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SUCCESS") {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
}

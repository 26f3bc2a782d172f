package stack

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/aircraftdata/platform/scripts/internal/postgres"
	"github.com/aircraftdata/platform/scripts/internal/repo"
)

// The variables devstack hands out are the service's settings (listed in .env.example, which app/internal/config
// renders from its table), plus the admin URL tests use; the Mongo names it writes out are the service's defaults.
func TestEnvNamesTheServicesSettings(t *testing.T) {
	root, err := repo.FindRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile(filepath.Join(root, ".env.example"))
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{} // name → value shown
	for _, m := range regexp.MustCompile(`(?m)^(?:# )?([A-Z][A-Z0-9_]*)=(\S*)`).FindAllStringSubmatch(string(example), -1) {
		settings[m[1]] = m[2]
	}
	s := &Stack{Dir: "/repo/.dev", DB: &postgres.DB{URL: "postgres://a@h/db", AdminURL: "postgres://a@h/postgres"}}
	for _, kv := range s.Env("token") {
		k, v, _ := strings.Cut(kv, "=")
		if _, ok := settings[k]; !ok && k != "DB_ADMIN_URL" {
			t.Errorf("devstack sets %s, which is no setting of the service", k)
		}
		if (k == "MONGODB_DB_NAME" || k == "MONGODB_COLLECTION") && v != settings[k] {
			t.Errorf("devstack sets %s=%s; the service's default is %s", k, v, settings[k])
		}
	}
}

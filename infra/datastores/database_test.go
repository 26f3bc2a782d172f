package datastores

import (
	"strings"
	"testing"
)

func TestDBIdentifierFitsRDS(t *testing.T) {
	if got := dbIdentifier("AircraftE2E--20261124-070412-ab12-" + strings.Repeat("x", 60)); len(got) > 63 || strings.Contains(got, "--") {
		t.Errorf("identifier %q", got)
	}
}

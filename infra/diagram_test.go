package main

import (
	"strings"
	"testing"

	"github.com/aircraftdata/platform/infra/diagram"
)

// docs/architecture.md is generated from the template: it must match the current code (run `make -C infra diagram`).
func TestArchitectureDiagramIsCurrent(t *testing.T) {
	s := stackOf(t, "default")
	want := diagram.Render(s.Template)
	if got := readDoc(t, "docs/architecture.md"); got != want {
		t.Errorf("docs/architecture.md is stale: run `make diagram`")
	}
	readme := readDoc(t, "README.md")
	if current, err := diagram.Embed(readme, diagram.Mermaid(s.Template)); err != nil || current != readme {
		t.Errorf("the README's architecture picture is stale (%v): run `make diagram`", err)
	}
	for _, box := range []string{"VPC 10.0.0.0/16", "EC2 t2.micro", "Amazon Linux 2023", "RDS postgres db.t3.micro", "aircraft_db, 20 GiB gp3",
		"DocumentDB", "S3 bucket", `client -- "tcp 443 from 0.0.0.0/0; tcp 80 from 0.0.0.0/0" --> ec2_0`, `ec2_0 -- "tcp 5432" --> rds_0`,
		`ec2_0 -- "tcp 27017" --> docdb_0`, "(read-only)"} {
		if !strings.Contains(want, box) {
			t.Errorf("the diagram lacks %q:\n%s", box, want)
		}
	}
}

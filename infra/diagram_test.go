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
		"DocumentDB", "S3 bucket", `client -- "tcp 443 from 0.0.0.0/0" --> ec2_0`, `ec2_0 -- "tcp 5432" --> rds_0`,
		`ec2_0 -- "tcp 27017" --> docdb_0`, "(read-only)",
		// The ingestion pipeline: the worker in the isolated subnets, reaching the database and S3 only; the state
		// machine listing the data bucket and invoking it; the bucket's new objects queued to it.
		`lambda_0["Lambda provided.al2023 arm64, 1769 MB, 300 s, 11 at once<br/>ingest worker"]`, "objects expire after 30 days",
		"backfills, dead letters, worker", "Step Functions STANDARD",
		"SQS queue, visibility 1800 s<br/>dead letters after 5 deliveries, encrypted",
		`-- "s3:ObjectCreated:*" --> sqs_`, `-- "batches of 100 within 20 s, at most 2 at once" --> lambda_`,
		`-- "invokes, one batch each" --> lambda_`, `-- "ListObjectsV2" --> s3_`, `-- "result files" --> s3_`,
		`-- "tcp 5432" --> rds_0`, `-- "tcp 443 (the only route out)" --> endpoint_0`, `ec2_0 -. "states: `} {
		if !strings.Contains(want, box) {
			t.Errorf("the diagram lacks %q:\n%s", box, want)
		}
	}
}

// docs/architecture-loadbalanced.md is the picture of the load-balanced mode, generated the same way.
func TestLoadBalancedArchitectureDiagramIsCurrent(t *testing.T) {
	s := stackOf(t, "loadBalanced")
	want := diagram.RenderPage(s.Template, loadBalancedDiagramTitle, loadBalancedDiagramContext)
	if got := readDoc(t, "docs/architecture-loadbalanced.md"); got != want {
		t.Errorf("docs/architecture-loadbalanced.md is stale: run `make diagram`")
	}
	for _, box := range []string{"Application Load Balancer (internet-facing)", "HTTPS 443: forward, ACM certificate", "HTTP 80: redirect to HTTPS",
		"Auto Scaling group: 3 x EC2 t2.micro (min 3, max 4)", "rolling release: 1 at a time, 3 in service", "EFS, encrypted",
		"2 mount targets, access point /downloads", `client -- "tcp 443 from 0.0.0.0/0; tcp 80 from 0.0.0.0/0" --> alb_0`,
		`alb_0 -- "tcp 443" --> asg_0`, `asg_0 -- "tcp 2049" --> efs_0`, `asg_0 -- "tcp 5432" --> rds_0`, `alb_0 -- "access logs" --> s3_`,
		`asg_0 -. "elasticfilesystem: ClientMount, ClientWrite" .-> efs_0`} {
		if !strings.Contains(want, box) {
			t.Errorf("the diagram lacks %q:\n%s", box, want)
		}
	}
	if strings.Contains(want, "ec2_0") || strings.Contains(want, "Elastic IP") {
		t.Errorf("the load-balanced picture draws the single instance:\n%s", want)
	}
}

// The title and context line of docs/architecture-loadbalanced.md, as infra/Makefile's diagram target writes them.
const (
	loadBalancedDiagramTitle   = "Architecture: load-balanced mode"
	loadBalancedDiagramContext = "-c instances=3 -c certificateArn=<an ACM certificate>"
)

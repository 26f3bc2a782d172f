package awsstack

import (
	"os"
	"testing"

	"github.com/aircraftdata/platform/test/testkit"
)

// TestAWS deploys a stack of its own, validates it and destroys it: `make e2e-aws` (E2E_AWS=1 and AWS credentials).
// SKIP_deploy, SKIP_validate and SKIP_teardown skip a stage; E2E_STACK_NAME names a stack to use.
func TestAWS(t *testing.T) {
	s, err := ReadSettings(os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Enabled {
		t.Skip("E2E_AWS=1 not set: the AWS suite deploys a real stack (make e2e-aws; docs/e2e.md)")
	}
	CheckCredentials(t, s.Region)
	suite := &Suite{Settings: s, Folder: ".", CDK: CDK{Root: testkit.RepoRoot()}}
	Lifecycle(t, os.Getenv,
		func() { suite.Deploy(t) },
		func() { suite.Validate(t) },
		func() { suite.Teardown(t) },
	)
}

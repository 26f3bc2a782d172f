package main

import (
	"strings"
	"testing"

	"github.com/aircraftdata/platform/infra/fleet"
)

// The fleet's gate signals success only once the load balancer reports the instance healthy in the stack's target
// group, so a release that breaks the path from the load balancer (security group, port, protocol) fails its gate
// instead of reaching UPDATE_COMPLETE with every target unhealthy.
func TestFleetGateWaitsForTheLoadBalancer(t *testing.T) {
	s := stackOf(t, "loadBalanced")
	tg := s.One(t, "AWS::ElasticLoadBalancingV2::TargetGroup")
	files, _, _ := initConfig(t, s, "install")
	env := files[fleet.FleetGateEnvPath]
	if env == nil || !strings.Contains(jsonOf(env["content"]), `{"Ref":"`+tg.ID+`"}`) || !strings.Contains(joinedText(env["content"]), "TARGET_GROUP_ARN=") {
		t.Errorf("%s does not name the target group %s: %s", fleet.FleetGateEnvPath, tg.ID, jsonOf(env))
	}
	ready := fleet.FleetbootFile("aircraft-ready.sh")
	for _, want := range []string{"fleet-gate.env", "aws elbv2 describe-target-health", `--target-group-arn "$TARGET_GROUP_ARN"`,
		`--targets "Id=$instance,Port=443"`, "= healthy ]", "exit 0", `fail "the load balancer does not report`} {
		if !strings.Contains(ready, want) {
			t.Errorf("aircraft-ready lacks %q", want)
		}
	}
	// The local check comes first, then the load balancer's: success only from the latter.
	if strings.Count(ready, "exit 0") != 1 || strings.Index(ready, "exit 0") < strings.Index(ready, "describe-target-health") {
		t.Error("aircraft-ready succeeds before the load balancer reports the instance healthy")
	}
	var allowed bool
	for _, p := range s.Resources("AWS::IAM::Policy") {
		if strings.Contains(jsonOf(p.Props["PolicyName"]), "FleetRole") || strings.Contains(jsonOf(p.Props["Roles"]), "FleetRole") {
			allowed = allowed || strings.Contains(jsonOf(p.Props), `"elasticloadbalancing:DescribeTargetHealth"`)
		}
	}
	if !allowed {
		t.Error("the fleet role may not ask the load balancer for its targets' health")
	}
}

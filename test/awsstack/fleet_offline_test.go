package awsstack

// The load-balanced variant's offline logic: settings, context, outputs and the fleet's predicates.

import (
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

const testCert = "arn:aws:acm:us-east-1:123456789012:certificate/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"

func TestLoadBalancedSettings(t *testing.T) {
	base := map[string]string{"E2E_AWS": "1", "AWS_REGION": "us-east-1"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	s, err := ReadSettings(env(base))
	if err != nil || s.LoadBalanced() || s.Instances != 1 {
		t.Fatalf("default: %+v %v", s, err)
	}
	if ctx := strings.Join(s.CDKContext("S", "203.0.113.7/32"), " "); strings.Contains(ctx, "instances") || strings.Contains(ctx, "certificateArn") {
		t.Errorf("the single variant's context names the load-balanced keys: %s", ctx)
	}

	s, err = ReadSettings(env(with("E2E_INSTANCES", "3", "E2E_DOMAIN_NAME", "api.example.org", "E2E_HOSTED_ZONE_ID", "Z123456")))
	if err != nil || !s.LoadBalanced() || s.Instances != 3 {
		t.Fatalf("DNS-validated: %+v %v", s, err)
	}
	want := []string{"stackName=S", "stage=dev", "instanceType=t2.micro", "allowedCidr=203.0.113.7/32",
		"domainName=api.example.org", "hostedZoneId=Z123456", "instances=3"}
	if got := s.CDKContext("S", "203.0.113.7/32"); !slices.Equal(got, want) {
		t.Errorf("context %v, want %v", got, want)
	}
	s, err = ReadSettings(env(with("E2E_INSTANCES", "2", "E2E_DOMAIN_NAME", "api.example.org", "E2E_CERTIFICATE_ARN", testCert)))
	if err != nil || !slices.Contains(s.CDKContext("S", "0.0.0.0/0"), "certificateArn="+testCert) {
		t.Errorf("imported certificate: %+v %v", s, err)
	}

	for name, bad := range map[string]map[string]string{
		"instances not a number":    with("E2E_INSTANCES", "two"),
		"instances 0":               with("E2E_INSTANCES", "0"),
		"instances 21":              with("E2E_INSTANCES", "21", "E2E_DOMAIN_NAME", "a.example.org", "E2E_HOSTED_ZONE_ID", "Z1"),
		"no domain":                 with("E2E_INSTANCES", "2", "E2E_CERTIFICATE_ARN", testCert),
		"no zone, no certificate":   with("E2E_INSTANCES", "2", "E2E_DOMAIN_NAME", "a.example.org"),
		"certificate, one instance": with("E2E_CERTIFICATE_ARN", testCert),
	} {
		if _, err := ReadSettings(env(bad)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestLoadBalancedOutputs(t *testing.T) {
	m := map[string]string{"ApiUrl": "https://api.example.org", "BucketName": "b", "DatabaseEndpoint": "d",
		"DatabaseSecretArn": "s", "MongoSecretArn": "m", "ApiTokenSecretArn": "a", "LogGroupName": "l", "ReleaseId": "r",
		"LoadBalancerDnsName": "AircraftE2E-1234.us-east-1.elb.amazonaws.com", "AutoScalingGroupName": "AircraftE2E-FleetGroup",
		"TargetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/x/y", "FileSystemId": "fs-0123"}
	o, err := OutputsFromMap(m)
	if err != nil || !o.LoadBalanced() || o.SelfSigned() || o.AutoScalingGroupName != "AircraftE2E-FleetGroup" ||
		o.FileSystemID != "fs-0123" || o.LoadBalancerDNSName == "" || o.TargetGroupArn == "" || o.InstanceID != "" {
		t.Errorf("load-balanced outputs %+v %v", o, err)
	}
	for _, k := range loadBalancedOutputs[1:] {
		partial := map[string]string{}
		for kk, v := range m {
			if kk != k {
				partial[kk] = v
			}
		}
		if _, err := OutputsFromMap(partial); err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("without %s: %v", k, err)
		}
	}
	// A single-instance stack still needs its instance.
	delete(m, "LoadBalancerDnsName")
	if _, err := OutputsFromMap(m); err == nil || !strings.Contains(err.Error(), "InstanceId") {
		t.Errorf("single variant without InstanceId: %v", err)
	}
}

func TestFleetPredicates(t *testing.T) {
	if p := FleetCapacityProblems(3, 3, 3); len(p) != 0 {
		t.Errorf("3 of 3: %v", p)
	}
	if p := FleetCapacityProblems(3, 2, 3); len(p) != 1 {
		t.Errorf("one missing: %v", p)
	}
	if p := FleetCapacityProblems(2, 2, 3); len(p) != 1 {
		t.Errorf("desired 2, asked 3: %v", p)
	}

	good := ec2types.Instance{
		InstanceId:   aws.String("i-1"),
		InstanceType: ec2types.InstanceTypeT2Micro,
		State:        &ec2types.InstanceState{Name: ec2types.InstanceStateNameRunning},
		MetadataOptions: &ec2types.InstanceMetadataOptionsResponse{
			HttpTokens: ec2types.HttpTokensStateRequired, HttpPutResponseHopLimit: aws.Int32(1)},
		PublicIpAddress: aws.String("203.0.113.10"),
		SecurityGroups:  []ec2types.GroupIdentifier{{GroupId: aws.String("sg-fleet")}},
	}
	if p := FleetInstanceProblems(good, "t2.micro", "sg-fleet"); len(p) != 0 {
		t.Errorf("the designed fleet instance: %v", p)
	}
	bad := good
	bad.KeyName = aws.String("key")
	bad.SecurityGroups = append(bad.SecurityGroups, ec2types.GroupIdentifier{GroupId: aws.String("sg-open")})
	if p := FleetInstanceProblems(bad, "t2.micro", "sg-fleet"); len(p) != 2 || !strings.HasPrefix(p[0], "i-1: ") {
		t.Errorf("a key pair and a second group: %v", p)
	}

	fleet := []ec2types.IpPermission{tcp(443, 443, nil, "sg-alb")}
	if g := LoadBalancerGroupOf(fleet); g != "sg-alb" {
		t.Errorf("load balancer group %q", g)
	}
	if p := OnlyFromGroupProblems("sg-fleet", fleet, 443, "sg-alb"); len(p) != 0 {
		t.Errorf("fleet admits the load balancer only: %v", p)
	}
	open := append(fleet, tcp(443, 443, []string{"0.0.0.0/0"}))
	if p := OnlyFromGroupProblems("sg-fleet", open, 443, "sg-alb"); len(p) != 1 {
		t.Errorf("fleet open to the internet: %v", p)
	}
	// The load balancer's group as the stack makes it: 443 and the redirect on 80, both from allowedCidr.
	lb := []ec2types.IpPermission{tcp(443, 443, []string{"203.0.113.7/32"}), tcp(80, 80, []string{"203.0.113.7/32"})}
	if p := LoadBalancerIngressProblems("sg-alb", lb, "203.0.113.7/32"); len(p) != 0 {
		t.Errorf("the designed load balancer group: %v", p)
	}
	if p := LoadBalancerIngressProblems("sg-alb", lb[:1], "203.0.113.7/32"); len(p) != 1 || !strings.Contains(p[0], "port 80") {
		t.Errorf("no redirect listener port: %v", p)
	}
	wide := []ec2types.IpPermission{tcp(443, 443, []string{"0.0.0.0/0"}), tcp(80, 80, []string{"203.0.113.7/32"}), tcp(22, 22, []string{"203.0.113.7/32"})}
	if p := LoadBalancerIngressProblems("sg-alb", wide, "203.0.113.7/32"); len(p) != 2 {
		t.Errorf("443 from anywhere and port 22: %v", p)
	}
	if g := LoadBalancerGroupOf([]ec2types.IpPermission{tcp(443, 443, []string{"0.0.0.0/0"})}); g != "" {
		t.Errorf("no group admitted, got %q", g)
	}
}

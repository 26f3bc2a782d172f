package awsstack

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	rdstypes "github.com/aws/aws-sdk-go-v2/service/rds/types"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// What the deployed stack must look like, as pure functions of what the AWS APIs return: each returns the problems it
// finds (none = as designed), so that it is tested offline with hand-made API answers.

// admits reports whether an ingress permission lets TCP port in (an all-traffic rule does).
func admits(p ec2types.IpPermission, port int32) bool {
	switch aws.ToString(p.IpProtocol) {
	case "-1", "all":
		return true
	case "tcp", "6":
		return aws.ToInt32(p.FromPort) <= port && port <= aws.ToInt32(p.ToPort)
	}
	return false
}

// sources describes where a permission admits traffic from.
func sources(p ec2types.IpPermission) []string {
	var s []string
	for _, r := range p.IpRanges {
		s = append(s, aws.ToString(r.CidrIp))
	}
	for _, r := range p.Ipv6Ranges {
		s = append(s, aws.ToString(r.CidrIpv6))
	}
	for _, r := range p.PrefixListIds {
		s = append(s, aws.ToString(r.PrefixListId))
	}
	for _, g := range p.UserIdGroupPairs {
		s = append(s, aws.ToString(g.GroupId))
	}
	return s
}

func describe(p ec2types.IpPermission) string {
	return fmt.Sprintf("%s %d-%d from %v", aws.ToString(p.IpProtocol), aws.ToInt32(p.FromPort), aws.ToInt32(p.ToPort), sources(p))
}

// SSHProblems lists the rules of a security group that let anything reach port 22.
func SSHProblems(group string, perms []ec2types.IpPermission) []string {
	var problems []string
	for _, p := range perms {
		if admits(p, 22) && len(sources(p)) > 0 {
			problems = append(problems, fmt.Sprintf("%s admits port 22: %s", group, describe(p)))
		}
	}
	return problems
}

// ServiceIngressProblems checks the service's group: TCP 443 from allowedCidr only; port 80 only with ACME, from
// anywhere (the CA validates http-01 from addresses it does not publish).
func ServiceIngressProblems(group string, perms []ec2types.IpPermission, allowedCidr string, acme bool) []string {
	var problems []string
	ports := map[int32]bool{}
	for _, p := range perms {
		from, to := aws.ToInt32(p.FromPort), aws.ToInt32(p.ToPort)
		if aws.ToString(p.IpProtocol) != "tcp" || from != to || (from != 80 && from != 443) {
			problems = append(problems, fmt.Sprintf("%s: unexpected ingress %s (want tcp 80 and 443 only)", group, describe(p)))
			continue
		}
		ports[from] = true
		if from == 80 && !acme {
			problems = append(problems, fmt.Sprintf("%s: port 80 is open without ACME (nothing listens there)", group))
			continue
		}
		want := allowedCidr
		if acme && from == 80 {
			want = "0.0.0.0/0"
		}
		if src := sources(p); !slices.Equal(src, []string{want}) {
			problems = append(problems, fmt.Sprintf("%s: port %d open to %v, want %s only", group, from, src, want))
		}
	}
	if !ports[443] {
		problems = append(problems, fmt.Sprintf("%s: port 443 is not open", group))
	}
	return problems
}

// LoadBalancerIngressProblems checks the load balancer's group: TCP 443 (the API) and 80 (its listener answers only
// with a redirect to HTTPS) from allowedCidr only, nothing else.
func LoadBalancerIngressProblems(group string, perms []ec2types.IpPermission, allowedCidr string) []string {
	var problems []string
	ports := map[int32]bool{}
	for _, p := range perms {
		from, to := aws.ToInt32(p.FromPort), aws.ToInt32(p.ToPort)
		if aws.ToString(p.IpProtocol) != "tcp" || from != to || (from != 80 && from != 443) {
			problems = append(problems, fmt.Sprintf("%s: unexpected ingress %s (want tcp 80 and 443 only)", group, describe(p)))
			continue
		}
		ports[from] = true
		if src := sources(p); !slices.Equal(src, []string{allowedCidr}) {
			problems = append(problems, fmt.Sprintf("%s: port %d open to %v, want %s only", group, from, src, allowedCidr))
		}
	}
	for _, port := range []int32{80, 443} {
		if !ports[port] {
			problems = append(problems, fmt.Sprintf("%s: port %d is not open", group, port))
		}
	}
	return problems
}

// OnlyFromGroupProblems checks a database's group: every ingress rule is TCP port from the service's group, and nothing
// else (no address range, no prefix list, no other group).
func OnlyFromGroupProblems(group string, perms []ec2types.IpPermission, port int32, serviceGroup string) []string {
	var problems []string
	admitted := false
	for _, p := range perms {
		src := sources(p)
		if aws.ToString(p.IpProtocol) != "tcp" || aws.ToInt32(p.FromPort) != port || aws.ToInt32(p.ToPort) != port ||
			!slices.Equal(src, []string{serviceGroup}) {
			problems = append(problems, fmt.Sprintf("%s: ingress %s; want tcp %d from %s only", group, describe(p), port, serviceGroup))
			continue
		}
		admitted = true
	}
	if !admitted {
		problems = append(problems, fmt.Sprintf("%s does not admit the service (%s) on %d", group, serviceGroup, port))
	}
	return problems
}

// InstanceProblems checks the service instance: its type, IMDSv2 only with a hop limit of 1, no SSH key pair, the
// Elastic IP as its public address, and that it runs.
func InstanceProblems(inst ec2types.Instance, wantType, elasticIP string) []string {
	var problems []string
	if string(inst.InstanceType) != wantType {
		problems = append(problems, fmt.Sprintf("instance type %s, want %s", inst.InstanceType, wantType))
	}
	if inst.State == nil || inst.State.Name != ec2types.InstanceStateNameRunning {
		problems = append(problems, fmt.Sprintf("instance state %v, want running", inst.State))
	}
	m := inst.MetadataOptions
	switch {
	case m == nil:
		problems = append(problems, "no metadata options")
	case m.HttpTokens != ec2types.HttpTokensStateRequired:
		problems = append(problems, fmt.Sprintf("IMDS tokens %q: IMDSv2 must be required", m.HttpTokens))
	case aws.ToInt32(m.HttpPutResponseHopLimit) != 1:
		problems = append(problems, fmt.Sprintf("IMDS hop limit %d, want 1", aws.ToInt32(m.HttpPutResponseHopLimit)))
	}
	if inst.KeyName != nil {
		problems = append(problems, fmt.Sprintf("instance has SSH key pair %q (Session Manager only)", *inst.KeyName))
	}
	if aws.ToString(inst.PublicIpAddress) != elasticIP {
		problems = append(problems, fmt.Sprintf("public address %s, want the Elastic IP %s", aws.ToString(inst.PublicIpAddress), elasticIP))
	}
	return problems
}

// DatabaseProblems checks the RDS instance: PostgreSQL, not publicly accessible, encrypted, db.t3.micro, single-AZ.
func DatabaseProblems(db rdstypes.DBInstance) []string {
	var problems []string
	if aws.ToBool(db.PubliclyAccessible) {
		problems = append(problems, "the database is publicly accessible")
	}
	if !aws.ToBool(db.StorageEncrypted) {
		problems = append(problems, "the database storage is not encrypted")
	}
	if e := aws.ToString(db.Engine); e != "postgres" {
		problems = append(problems, fmt.Sprintf("engine %s, want postgres", e))
	}
	if c := aws.ToString(db.DBInstanceClass); c != "db.t3.micro" {
		problems = append(problems, fmt.Sprintf("class %s, want db.t3.micro", c))
	}
	if aws.ToBool(db.MultiAZ) {
		problems = append(problems, "the database is multi-AZ (the design says single-AZ)")
	}
	if len(db.VpcSecurityGroups) == 0 {
		problems = append(problems, "the database has no security group")
	}
	return problems
}

// DBInstanceID is the identifier of an RDS instance from its endpoint address (<id>.<hash>.<region>.rds.amazonaws.com).
func DBInstanceID(endpoint string) (string, error) {
	id, rest, ok := strings.Cut(endpoint, ".")
	if !ok || id == "" || !strings.Contains(rest, ".rds.amazonaws.com") {
		return "", fmt.Errorf("%q is not an RDS instance endpoint", endpoint)
	}
	return id, nil
}

// PublicAccessProblems checks that all four settings of the bucket's public access block are on.
func PublicAccessProblems(c *s3types.PublicAccessBlockConfiguration) []string {
	if c == nil {
		return []string{"the bucket has no public access block"}
	}
	var problems []string
	for name, on := range map[string]*bool{
		"BlockPublicAcls": c.BlockPublicAcls, "IgnorePublicAcls": c.IgnorePublicAcls,
		"BlockPublicPolicy": c.BlockPublicPolicy, "RestrictPublicBuckets": c.RestrictPublicBuckets,
	} {
		if !aws.ToBool(on) {
			problems = append(problems, name+" is off")
		}
	}
	slices.Sort(problems)
	return problems
}

// EncryptionProblems checks that the bucket encrypts new objects with want by default (SSE-S3 is AES256).
func EncryptionProblems(c *s3types.ServerSideEncryptionConfiguration, want s3types.ServerSideEncryption) []string {
	var have []s3types.ServerSideEncryption
	if c != nil {
		for _, r := range c.Rules {
			if d := r.ApplyServerSideEncryptionByDefault; d != nil {
				if d.SSEAlgorithm == want {
					return nil
				}
				have = append(have, d.SSEAlgorithm)
			}
		}
	}
	return []string{fmt.Sprintf("the bucket's default encryption is %v, want %s", have, want)}
}

// DeniesInsecureTransport reports whether a bucket policy denies every request made without TLS (aws:SecureTransport
// false), as CDK's enforceSSL writes it.
func DeniesInsecureTransport(policy string) bool {
	var doc struct {
		Statement []struct {
			Effect    string                    `json:"Effect"`
			Principal any                       `json:"Principal"`
			Action    any                       `json:"Action"`
			Condition map[string]map[string]any `json:"Condition"`
		} `json:"Statement"`
	}
	if json.Unmarshal([]byte(policy), &doc) != nil {
		return false
	}
	for _, s := range doc.Statement {
		if s.Effect != "Deny" || !anyOf(s.Action, "s3:*") || !anyOf(s.Principal, "*") {
			continue
		}
		if v, ok := s.Condition["Bool"]["aws:SecureTransport"]; ok && fmt.Sprint(v) == "false" {
			return true
		}
	}
	return false
}

// anyOf reports whether a policy value (a string, a list, or {"AWS": …}) holds want.
func anyOf(v any, want string) bool {
	switch v := v.(type) {
	case string:
		return v == want
	case []any:
		for _, x := range v {
			if anyOf(x, want) {
				return true
			}
		}
	case map[string]any:
		for _, x := range v {
			if anyOf(x, want) {
				return true
			}
		}
	}
	return false
}

// FleetInstanceProblems checks one instance of the load-balanced fleet like the single one (InstanceProblems), except
// that it has no Elastic IP, and that its only security group is the fleet's.
func FleetInstanceProblems(inst ec2types.Instance, wantType, fleetGroup string) []string {
	var problems []string
	for _, p := range InstanceProblems(inst, wantType, aws.ToString(inst.PublicIpAddress)) {
		problems = append(problems, aws.ToString(inst.InstanceId)+": "+p)
	}
	if len(inst.SecurityGroups) != 1 || aws.ToString(inst.SecurityGroups[0].GroupId) != fleetGroup {
		problems = append(problems, fmt.Sprintf("%s: security groups %v, want the fleet's %s only", aws.ToString(inst.InstanceId),
			inst.SecurityGroups, fleetGroup))
	}
	return problems
}

// FleetCapacityProblems checks the Auto Scaling group's size: wantInstances desired and in service.
func FleetCapacityProblems(desired, current, wantInstances int) []string {
	var problems []string
	if desired != wantInstances {
		problems = append(problems, fmt.Sprintf("the group wants %d instances, the deploy asked for %d", desired, wantInstances))
	}
	if current != desired {
		problems = append(problems, fmt.Sprintf("the group has %d instances in service, wants %d", current, desired))
	}
	return problems
}

package main

// The negatives: what must never be in the template, in every configuration.

import (
	"strings"
	"testing"
)

func TestNegatives(t *testing.T) {
	for _, name := range []string{"default", "prod", "acme", "externalMongo", "narrow", "loadBalanced", "loadBalancedDNS"} {
		s := stackOf(t, name)
		t.Run(name, func(t *testing.T) {
			for _, row := range negativeRows {
				t.Run(row.line, func(t *testing.T) { row.check(t, s) })
			}
		})
	}
}

var negativeRows = []seedRow{
	{"RDS is not publicly accessible", func(t *testing.T, s *Synth) {
		for _, db := range s.Resources("AWS::RDS::DBInstance") {
			if db.Props["PubliclyAccessible"] != false {
				t.Errorf("%s PubliclyAccessible=%v", db.ID, db.Props["PubliclyAccessible"])
			}
		}
	}},
	{"DocumentDB is not publicly accessible", func(t *testing.T, s *Synth) {
		// DocumentDB has no public endpoint option; it must sit in the isolated subnets.
		for _, g := range s.Resources("AWS::DocDB::DBSubnetGroup") {
			assertIsolatedSubnets(t, s, g.Props["SubnetIds"])
		}
		for _, c := range s.Resources("AWS::DocDB::DBCluster") {
			if c.Props["StorageEncrypted"] != true {
				t.Errorf("%s is not encrypted", c.ID)
			}
		}
	}},
	{"no 0.0.0.0/0 (or ::/0) on 5432, 27017 or 22", func(t *testing.T, s *Synth) {
		for _, r := range s.sgRules() {
			if r.Direction != "ingress" || (r.Cidr != "0.0.0.0/0" && r.Cidr != "::/0") {
				continue
			}
			for _, port := range []float64{5432, 27017, 22} {
				if r.Protocol == "-1" || (r.FromPort <= port && port <= r.ToPort) {
					t.Errorf("%s: %v opens %v to the internet", r.Group, r, port)
				}
			}
		}
	}},
	{"no port 22 and no SSH key", func(t *testing.T, s *Synth) {
		for _, r := range s.sgRules() {
			if r.Direction == "ingress" && (r.Protocol == "-1" || (r.FromPort <= 22 && 22 <= r.ToPort)) {
				t.Errorf("%s: %v admits SSH", r.Group, r)
			}
		}
		for _, i := range launchSpecs(s) {
			if _, ok := i.Props["KeyName"]; ok {
				t.Errorf("%s has a key pair", i.ID)
			}
		}
		if len(s.Resources("AWS::EC2::KeyPair")) != 0 {
			t.Error("the stack makes a key pair")
		}
	}},
	{"the role cannot write the bucket", func(t *testing.T, s *Synth) {
		stmts, _ := s.roleStatements(t)
		for _, st := range stmts {
			for _, a := range st.Actions {
				lower := strings.ToLower(a)
				if a == "*" || lower == "s3:*" || strings.HasPrefix(lower, "s3:put") || strings.HasPrefix(lower, "s3:delete") ||
					strings.HasPrefix(lower, "s3:restore") || strings.HasPrefix(lower, "s3:create") || strings.HasPrefix(lower, "s3:replicate") ||
					strings.HasPrefix(lower, "s3:abort") || strings.HasPrefix(lower, "s3:bypass") {
					t.Errorf("the service role may %s on %v", a, st.Resources)
				}
			}
		}
		assertRoleReadsBucketOnly(t, s)
	}},
	{"IMDSv2 required", func(t *testing.T, s *Synth) {
		for _, i := range launchSpecs(s) {
			if jsonOf(i.Props["MetadataOptions"]) != `{"HttpEndpoint":"enabled","HttpPutResponseHopLimit":1,"HttpTokens":"required"}` {
				t.Errorf("%s MetadataOptions %s", i.ID, jsonOf(i.Props["MetadataOptions"]))
			}
		}
	}},
	{"root volume encrypted", func(t *testing.T, s *Synth) {
		for _, i := range launchSpecs(s) {
			for _, bd := range list(i.Props["BlockDeviceMappings"]) {
				if ebs := bd.(map[string]any)["Ebs"].(map[string]any); ebs["Encrypted"] != true {
					t.Errorf("%s: unencrypted volume %v", i.ID, bd)
				}
			}
		}
	}},
	{"no secret value in the template", func(t *testing.T, s *Synth) {
		for _, sec := range s.Resources("AWS::SecretsManager::Secret") {
			if _, ok := sec.Props["SecretString"]; ok {
				t.Errorf("%s has a literal SecretString", sec.ID)
			}
			if _, ok := sec.Props["GenerateSecretString"]; !ok {
				t.Errorf("%s is not generated", sec.ID)
			}
		}
	}},
}

// launchSpecs are the launch settings of every instance: the single instance's properties, or the fleet's launch
// template data (named after their resource), so that one check covers both modes.
func launchSpecs(s *Synth) []Resource {
	specs := s.Resources("AWS::EC2::Instance")
	for _, lt := range s.Resources("AWS::EC2::LaunchTemplate") {
		specs = append(specs, Resource{ID: lt.ID, Type: lt.Type, Props: lt.Props["LaunchTemplateData"].(map[string]any), Raw: lt.Raw})
	}
	if len(specs) == 0 {
		panic("no instance and no launch template")
	}
	return specs
}

package main

import (
	"slices"
	"strings"
	"testing"
)

// The regions of infra/rds-ca-bundle.pem, read with `openssl crl2pkcs7 -nocrl -certfile rds-ca-bundle.pem | openssl
// pkcs7 -print_certs -noout` (the regional roots' subjects; Beta and Preview left out).
var bundleRegions = []string{"af-south-1", "ap-east-1", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ap-south-1",
	"ap-south-2", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4", "ca-central-1", "eu-central-1",
	"eu-central-2", "eu-north-1", "eu-south-1", "eu-south-2", "eu-west-1", "eu-west-2", "eu-west-3", "me-central-1",
	"me-south-1", "sa-east-1", "us-east-1", "us-east-2", "us-west-1", "us-west-2"}

// ruleRegions is the region list of a rule's Fn::Contains assertion on AWS::Region, and its description.
func ruleRegions(t *testing.T, s *Synth, id string) ([]string, string) {
	t.Helper()
	rules, _ := s.Template["Rules"].(map[string]any)
	rule, ok := rules[id].(map[string]any)
	if !ok {
		return nil, ""
	}
	a := rule["Assertions"].([]any)[0].(map[string]any)
	args := a["Assert"].(map[string]any)["Fn::Contains"].([]any)
	if jsonOf(args[1]) != `{"Ref":"AWS::Region"}` {
		t.Fatalf("%s asserts on %s", id, jsonOf(args[1]))
	}
	var regions []string
	for _, r := range args[0].([]any) {
		regions = append(regions, r.(string))
	}
	return regions, a["AssertDescription"].(string)
}

func TestRegionRulesRefuseWhatTheStackCannotServe(t *testing.T) {
	for _, name := range []string{"default", "loadBalanced"} {
		s := stackOf(t, name)
		regions, why := ruleRegions(t, s, "RegionHasRdsCa")
		if !slices.Equal(regions, bundleRegions) || !strings.Contains(why, "rds-ca-bundle.pem") {
			t.Errorf("%s: RDS CA rule %v %q, want %v", name, regions, why, bundleRegions)
		}
		// Regions opened since 2022 that the bundle lacks are refused at change-set time, not at the gate.
		for _, r := range []string{"il-central-1", "ca-west-1", "mx-central-1", "ap-southeast-5", "ap-southeast-7"} {
			if slices.Contains(regions, r) {
				t.Errorf("%s: %s admitted without its RDS CA", name, r)
			}
		}
		t2, why := ruleRegions(t, s, "RegionOffersT2")
		if !slices.Contains(t2, "us-east-1") || slices.Contains(t2, "ap-south-2") || !strings.Contains(why, "-c instanceType=t3.micro") ||
			!strings.Contains(why, "free plan") {
			t.Errorf("%s: T2 rule %v %q", name, t2, why)
		}
	}
}

// CloudFormation evaluates Fn::FindInMap in both branches of Fn::If: every lookup keyed by the region must have a
// default, under the transform that allows one, or regions missing from the mapping fail validation.
func TestEveryRegionLookupHasADefault(t *testing.T) {
	for _, name := range []string{"default", "loadBalanced", "loadBalancedDNS"} {
		s := stackOf(t, name)
		var lookups, withDefault int
		var walk func(v any)
		walk = func(v any) {
			switch v := v.(type) {
			case map[string]any:
				if args, ok := v["Fn::FindInMap"].([]any); ok && jsonOf(args[1]) == `{"Ref":"AWS::Region"}` {
					lookups++
					if len(args) == 4 {
						if d, ok := args[3].(map[string]any); ok && d["DefaultValue"] != nil {
							withDefault++
						}
					}
				}
				for _, x := range v {
					walk(x)
				}
			case []any:
				for _, x := range v {
					walk(x)
				}
			}
		}
		walk(s.Template["Resources"])
		if lookups != withDefault {
			t.Errorf("%s: %d region lookups, %d with a default", name, lookups, withDefault)
		}
		if withDefault > 0 && !strings.Contains(jsonOf(s.Template["Transform"]), "AWS::LanguageExtensions") {
			t.Errorf("%s: defaults without the AWS::LanguageExtensions transform: %s", name, jsonOf(s.Template["Transform"]))
		}
		if strings.HasPrefix(name, "loadBalanced") && lookups == 0 {
			t.Errorf("%s: no ELB account lookup", name)
		}
	}
}

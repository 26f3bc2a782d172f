package main

import (
	"slices"
	"testing"
)

// ACME's first gate needs the domain to resolve to the instance's Elastic IP: with hostedZoneId the stack writes the
// record before the instance boots; with elasticIpAllocationId the address exists before the stack (and after a
// rollback), so the name can point at it beforehand.
func TestACMEGateCanPass(t *testing.T) {
	s := stackOf(t, "acme")
	record := s.One(t, "AWS::Route53::RecordSet")
	if deps := list(s.One(t, "AWS::EC2::Instance").Raw["DependsOn"]); !slices.Contains(deps, any(record.ID)) {
		t.Errorf("the instance does not wait for the A record %s (DependsOn %v): its gate could run before the name resolves", record.ID, deps)
	}

	const alloc = "eipalloc-0123456789abcdef0"
	p := synth(t, map[string]any{"domainName": "api.aircraft.example.com", "elasticIpAllocationId": alloc, "allowedCidr": "198.51.100.0/24"}, "")
	if n := len(p.Resources("AWS::EC2::EIP")); n != 0 {
		t.Errorf("a pre-allocated Elastic IP, and the stack makes %d more", n)
	}
	if a := p.One(t, "AWS::EC2::EIPAssociation"); a.Props["AllocationId"] != alloc {
		t.Errorf("association %s", jsonOf(a.Props))
	}
	outputs, _ := p.Template["Outputs"].(map[string]any)
	if o, _ := outputs["ElasticIpAllocationId"].(map[string]any); o == nil || o["Value"] != alloc {
		t.Errorf("outputs %s", jsonOf(outputs))
	}
}

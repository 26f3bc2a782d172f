package main

import (
	"testing"
)

// cdk.json sets the feature flags aws-cdk-lib recommends: every flag of the library's report (in the cloud assembly)
// has its recommended value, set explicitly or as the library's default for unset flags.
func TestCdkJSONSetsTheRecommendedFeatureFlags(t *testing.T) {
	s := stackOf(t, "default")
	var report map[string]any
	for _, a := range s.Manifest["artifacts"].(map[string]any) {
		if a := a.(map[string]any); a["type"] == "cdk:feature-flag-report" {
			report = a["properties"].(map[string]any)["flags"].(map[string]any)
		}
	}
	if len(report) == 0 {
		t.Fatal("no feature flag report in the cloud assembly")
	}
	context := cdkJSONContext(t)
	for name, f := range report {
		f := f.(map[string]any)
		want, recommended := f["recommendedValue"]
		if !recommended {
			continue
		}
		got, set := f["userValue"]
		if !set {
			got = false // an unset flag is off unless the library says otherwise
			if unset, ok := f["unconfiguredBehavesLike"].(map[string]any); ok {
				got = unset["v2"]
			}
		}
		if jsonOf(got) != jsonOf(want) {
			t.Errorf("%s = %s, recommended %s (set it in cdk.json)", name, jsonOf(got), jsonOf(want))
		}
		if _, inCdkJSON := context[name]; set && !inCdkJSON {
			t.Errorf("%s is set outside cdk.json", name)
		}
	}
}

package main

import (
	"fmt"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
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

// An unknown key fails the app's assembly (newApp, what `cdk synth` runs) before anything is built.
func TestUnknownContextKeyFailsSynthWithTheClosestKey(t *testing.T) {
	for key, want := range map[string]string{
		"instnaces":   `unknown context key "instnaces": did you mean "instances"?`,
		"stackname":   `unknown context key "stackname": did you mean "stackName"?`,
		"allowedCIDR": `unknown context key "allowedCIDR": did you mean "allowedCidr"?`,
		"colour":      `unknown context key "colour" (docs/infra.md lists the keys)`,
	} {
		context := cdkJSONContext(t)
		context[key] = "3"
		_, _, err := newApp(&awscdk.AppProps{Context: &context}, func(string) (string, error) {
			return "", fmt.Errorf("the binary is asked for before the context is checked")
		}, func() (string, error) { return "", fmt.Errorf("the worker is asked for before the context is checked") })
		if err == nil || err.Error() != want {
			t.Errorf("-c %s=3: error %v, want %s", key, err, want)
		}
	}
}

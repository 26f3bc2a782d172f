package main

// cdk-nag's AwsSolutions pack runs in every synth (as in `cdk synth`): no configuration may have an unsuppressed error,
// and every suppression carries its reason and is listed in docs/infra.md.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// annotations returns the messages of a level ("aws:cdk:error", "aws:cdk:warning") by construct path.
func (s *Synth) annotations(level string) []string {
	var out []string
	art := s.Manifest["artifacts"].(map[string]any)[s.Config.StackName].(map[string]any)
	meta, _ := art["metadata"].(map[string]any)
	for path, entries := range meta {
		for _, e := range list(entries) {
			e := e.(map[string]any)
			if e["type"] == level {
				out = append(out, path+": "+jsonOf(e["data"]))
			}
		}
	}
	return out
}

func TestNagAwsSolutionsHasNoUnsuppressedErrors(t *testing.T) {
	for _, name := range []string{"default", "prod", "acme", "externalMongo", "narrow", "loadBalanced", "loadBalancedDNS"} {
		t.Run(name, func(t *testing.T) {
			s := stackOf(t, name)
			for _, e := range s.annotations("aws:cdk:error") {
				t.Errorf("error: %s", e)
			}
			for _, w := range s.annotations("aws:cdk:warning") {
				t.Logf("warning: %s", w)
			}
			// The CDK's own CloudFormation validation: only the acknowledged E1152.
			b, err := os.ReadFile(filepath.Join(s.Dir, "validation-report.json"))
			if err != nil {
				return // no report: nothing was found
			}
			var report struct {
				PluginReports []struct {
					PluginName, Conclusion string
					Violations             []any
				}
			}
			if err := json.Unmarshal(b, &report); err != nil {
				t.Fatal(err)
			}
			for _, p := range report.PluginReports {
				if p.Conclusion != "success" || len(p.Violations) != 0 {
					t.Errorf("%s: %s, violations %s", p.PluginName, p.Conclusion, jsonOf(p.Violations))
				}
			}
		})
	}
}

func TestNagSuppressionsHaveReasons(t *testing.T) {
	seen := map[string]bool{}
	for _, sup := range NagSuppressions {
		key := sup.ID + " " + sup.Path + " " + strings.Join(sup.AppliesTo, ",")
		if seen[key] {
			t.Errorf("duplicate suppression %s", key)
		}
		seen[key] = true
		if len(sup.Reason) < 40 {
			t.Errorf("%s: reason %q is too short to explain anything", key, sup.Reason)
		}
	}
	// The reasons reach the template (cdk_nag metadata), where reviewers of `cdk diff` see them.
	s := stackOf(t, "default")
	for _, sup := range NagSuppressions {
		if sup.When.holds != nil && !sup.When.holds(s.Config) {
			continue
		}
		if !strings.Contains(string(s.Raw), jsonString(sup.Reason)) {
			t.Errorf("%s on %s: reason not in the template metadata", sup.ID, sup.Path)
		}
	}
}

func TestNagSuppressionsAreDocumented(t *testing.T) {
	doc := readDoc(t, "docs/infra.md")
	if table := NagSuppressionsMarkdown(); !strings.Contains(doc, table) {
		t.Errorf("docs/infra.md does not hold the current suppression table; paste this:\n\n%s", table)
	}
}

func readDoc(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repo, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// jsonString is s as it appears inside a JSON document (without the quotes).
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return strings.Trim(string(b), `"`)
}

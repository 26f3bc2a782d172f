package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The deploy workflow's stack policy refuses replacing or removing every data store the stack makes (a replacement
// would point the service at a new, empty store), and allows every other update.
func TestStackPolicyProtectsTheDataStores(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repo, "infra", "stack-policy.json"))
	if err != nil {
		t.Fatal(err)
	}
	var policy struct {
		Statement []struct {
			Effect    string
			Action    any
			Resource  string
			Condition map[string]map[string][]string
		}
	}
	if err := json.Unmarshal(b, &policy); err != nil {
		t.Fatal(err)
	}
	var denied []string
	allowsRest := false
	for _, st := range policy.Statement {
		switch st.Effect {
		case "Deny":
			if jsonOf(st.Action) != `["Update:Replace","Update:Delete"]` {
				t.Errorf("deny %s", jsonOf(st.Action))
			}
			denied = append(denied, st.Condition["StringEquals"]["ResourceType"]...)
		case "Allow":
			allowsRest = allowsRest || jsonOf(st.Action) == `"Update:*"` && st.Resource == "*"
		}
	}
	if !allowsRest {
		t.Error("the policy does not allow the other updates")
	}
	for _, name := range []string{"default", "loadBalanced"} {
		s := stackOf(t, name)
		for id, r := range s.Template["Resources"].(map[string]any) {
			typ, _ := r.(map[string]any)["Type"].(string)
			store := typ == "AWS::RDS::DBInstance" || typ == "AWS::EFS::FileSystem" || typ == "AWS::S3::Bucket" ||
				typ == "AWS::DocDB::DBCluster"
			if store && !slices.Contains(denied, typ) {
				t.Errorf("%s: %s (%s) may be replaced", name, id, typ)
			}
		}
	}
	if !strings.Contains(readDoc(t, ".github/workflows/deploy.yml"), "--stack-policy-body file://infra/stack-policy.json") {
		t.Error("deploy.yml does not set the stack policy")
	}
}

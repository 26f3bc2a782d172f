package ciroles

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/aircraftdata/platform/infra/githubsettings"
)

type statement struct {
	Sid       string
	Effect    string
	Action    any
	Resource  any
	Principal map[string]any
	Condition map[string]map[string]any
}

type role struct {
	Properties struct {
		AssumeRolePolicyDocument struct{ Statement []statement }
		Policies                 []struct {
			PolicyDocument struct{ Statement []statement }
		}
		MaxSessionDuration int
	}
}

func template(t *testing.T) map[string]role {
	t.Helper()
	b, err := os.ReadFile("ci-roles.template.json")
	if err != nil {
		t.Fatal(err)
	}
	var tpl struct{ Resources map[string]json.RawMessage }
	if err := json.Unmarshal(b, &tpl); err != nil {
		t.Fatal(err)
	}
	roles := map[string]role{}
	for id, raw := range tpl.Resources {
		var r struct{ Type string }
		_ = json.Unmarshal(raw, &r)
		if r.Type == "AWS::IAM::Role" {
			var x role
			if err := json.Unmarshal(raw, &x); err != nil {
				t.Fatal(err)
			}
			roles[id] = x
		}
	}
	return roles
}

func strs(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, x := range v {
			out = append(out, strs(x)...)
		}
		return out
	case map[string]any:
		return strs(v["Fn::Sub"])
	}
	return nil
}

// The one subject each role trusts: a workflow file on one ref, in one context; GitHub issues it only with the
// repository's subject template (githubsettings.ClaimKeys, checked by cmd/githubsettings).
func TestRolesTrustOneWorkflowOnOneBranch(t *testing.T) {
	const repo = "${Repository}"
	want := map[string]struct{ op, sub string }{
		"DeployRole": {"StringEquals", githubsettings.Subject(repo, "environment:production", "deploy.yml", "refs/heads/main")},
		"E2eRole":    {"StringEquals", githubsettings.Subject(repo, "environment:e2e", "deploy.yml", "refs/heads/main")},
		"DiffRole":   {"StringLike", githubsettings.Subject(repo, "pull_request", "cdk-diff.yml", "refs/pull/*/merge")},
	}
	roles := template(t)
	if len(roles) != len(want) {
		t.Fatalf("roles %v", slices.Sorted(func(yield func(string) bool) {
			for k := range roles {
				if !yield(k) {
					return
				}
			}
		}))
	}
	for id, w := range want {
		trust := roles[id].Properties.AssumeRolePolicyDocument.Statement
		if len(trust) != 1 || trust[0].Effect != "Allow" || strs(trust[0].Action)[0] != "sts:AssumeRoleWithWebIdentity" {
			t.Errorf("%s: trust %+v", id, trust)
			continue
		}
		c := trust[0].Condition
		if got := strs(c["StringEquals"]["token.actions.githubusercontent.com:aud"]); !slices.Equal(got, []string{"sts.amazonaws.com"}) {
			t.Errorf("%s: audience %v", id, got)
		}
		if got := strs(c[w.op]["token.actions.githubusercontent.com:sub"]); !slices.Equal(got, []string{w.sub}) {
			t.Errorf("%s: subject %s %v, want %q", id, w.op, got, w.sub)
		}
		// Only the diff role's subject has a wildcard (the pull request's number); no other condition widens it.
		for op, keys := range c {
			for k, v := range keys {
				for _, s := range strs(v) {
					if strings.ContainsAny(s, "*?") && !(id == "DiffRole" && op == "StringLike" && k == "token.actions.githubusercontent.com:sub") {
						t.Errorf("%s: wildcard in %s %s %q", id, op, k, s)
					}
				}
			}
		}
	}
	// The production environment is not the e2e one: a job of one can never assume the other's role.
	if want["DeployRole"].sub == want["E2eRole"].sub {
		t.Error("deploy and e2e roles trust the same subject")
	}
}

// The workflows run each role from the workflow and environment its trust names.
func TestWorkflowsMatchTheTrust(t *testing.T) {
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join("..", "..", ".github", "workflows", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	deploy := read("deploy.yml")
	for _, want := range []string{"environment: production", "environment: e2e", "vars.AWS_DEPLOY_ROLE_ARN", "vars.AWS_E2E_ROLE_ARN",
		"workflow_run:", "refs/heads/main"} {
		if !strings.Contains(deploy, want) {
			t.Errorf("deploy.yml lacks %q", want)
		}
	}
	if strings.Contains(deploy, "AWS_E2E_ROLE_ARN || vars.AWS_DEPLOY_ROLE_ARN") {
		t.Error("deploy.yml falls back from the e2e role to the deploy role")
	}
	if diff := read("cdk-diff.yml"); !strings.Contains(diff, "vars.AWS_DIFF_ROLE_ARN") || strings.Contains(diff, "environment:") {
		t.Error("cdk-diff.yml must use the diff role and no environment (its subject is pull_request)")
	}
}

// suiteCalls maps each AWS call of the AWS suite (test/awsstack, test/e2e) to the IAM actions it needs ("" = none).
var suiteCalls = map[string][]string{
	".DescribeAutoScalingGroups":        {"autoscaling:DescribeAutoScalingGroups"},
	".DescribeDBInstances":              {"rds:DescribeDBInstances"},
	".DescribeInstances":                {"ec2:DescribeInstances"},
	".DescribeSecurityGroups":           {"ec2:DescribeSecurityGroups"},
	".DescribeStacks":                   {"cloudformation:DescribeStacks"},
	".DescribeVolumes":                  {"ec2:DescribeVolumes"},
	".GetBucketEncryption":              {"s3:GetEncryptionConfiguration"},
	".GetBucketPolicy":                  {"s3:GetBucketPolicy"},
	".GetBucketVersioning":              {"s3:GetBucketVersioning"},
	".GetCallerIdentity":                {}, // needs no permission
	".GetParameter":                     {"ssm:GetParameter"},
	".GetPublicAccessBlock":             {"s3:GetBucketPublicAccessBlock"},
	".GetSecretValue":                   {"secretsmanager:GetSecretValue"},
	".NewDescribeDBParametersPaginator": {"rds:DescribeDBParameters"},
	".PutObject":                        {"s3:PutObject"},
	// The workflow's cleanup step (aws cloudformation delete-stack) and cdk deploy/destroy through the bootstrap roles.
	"workflow: delete-stack": {"cloudformation:DeleteStack"},
	"cdk":                    {"sts:AssumeRole", "sts:TagSession", "ssm:GetParameter"},
}

// notAWS are calls the pattern below finds that are not AWS API calls.
var notAWS = []string{".Get", ".Getenv", ".Put", "aws.Bool", "aws.Config", "aws.Int32", "aws.Int64", "aws.String",
	"aws.ToBool", "aws.ToInt32", "aws.ToString"}

// The e2e role may do exactly what the suite calls: every AWS call in the suite's code is known, and the actions of the
// known calls are the role's actions, no more, no fewer.
func TestE2ERoleMatchesTheSuite(t *testing.T) {
	call := regexp.MustCompile(`\baws\.[A-Z][A-Za-z0-9]*|\.(New)?(Describe|Get|Put|Delete|List|Head|Create|Update)[A-Za-z0-9]*\(`)
	var files []string
	for _, glob := range []string{"../../test/awsstack/*.go", "../../test/e2e/*.go"} {
		m, _ := filepath.Glob(glob)
		files = append(files, m...)
	}
	need := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range call.FindAllString(string(b), -1) {
			c = strings.TrimSuffix(c, "(")
			if slices.Contains(notAWS, c) {
				continue
			}
			actions, ok := suiteCalls[c]
			if !ok {
				t.Errorf("%s calls %s: add it and its IAM actions to suiteCalls and to the e2e role", f, c)
			}
			for _, a := range actions {
				need[a] = true
			}
		}
	}
	for _, k := range []string{"workflow: delete-stack", "cdk"} {
		for _, a := range suiteCalls[k] {
			need[a] = true
		}
	}
	have := map[string]bool{}
	for _, p := range template(t)["E2eRole"].Properties.Policies {
		for _, s := range p.PolicyDocument.Statement {
			for _, a := range strs(s.Action) {
				have[a] = true
			}
		}
	}
	keys := func(m map[string]bool) []string {
		var out []string
		for k := range m {
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	}
	if !slices.Equal(keys(need), keys(have)) {
		t.Errorf("e2e role actions %v\nthe suite needs   %v", keys(have), keys(need))
	}
	if d := template(t)["E2eRole"].Properties.MaxSessionDuration; d < 10800 {
		t.Errorf("e2e role sessions last %d s; the job asks for 10800", d)
	}
}

// The documentation shows the subjects the template trusts.
func TestDocsShowTheTrust(t *testing.T) {
	b, err := os.ReadFile("../../docs/e2e.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, want := range []string{
		githubsettings.Subject("<owner>/<repo>", "environment:production", "deploy.yml", "refs/heads/main"),
		githubsettings.Subject("<owner>/<repo>", "environment:e2e", "deploy.yml", "refs/heads/main"),
		githubsettings.Subject("<owner>/<repo>", "pull_request", "cdk-diff.yml", "refs/pull/*/merge"),
		`"include_claim_keys":["repo","context","job_workflow_ref"]`,
		"infra/ciroles/ci-roles.template.json",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("docs/e2e.md does not show %q", want)
		}
	}
}

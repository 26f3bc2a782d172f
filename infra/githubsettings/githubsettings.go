// Package githubsettings checks, through the GitHub REST API, the repository settings that the AWS roles' trust relies
// on (docs/e2e.md: CI roles): the OIDC subject carries the job's workflow and ref, and the environments production and
// e2e admit the main branch only, production after a reviewer's approval.
package githubsettings

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// ClaimKeys is the repository's OIDC subject template: the subject names the repository, the job's context (its
// environment) and the workflow file with the ref it ran from, so that a role can trust one workflow on one branch.
var ClaimKeys = []string{"repo", "context", "job_workflow_ref"}

// Subject is the OIDC subject of a job of workflow (a file under .github/workflows) run from ref in repo, in the given
// context ("environment:production", "pull_request"), with ClaimKeys as the repository's template.
func Subject(repo, context, workflow, ref string) string {
	return "repo:" + repo + ":" + context + ":job_workflow_ref:" + repo + "/.github/workflows/" + workflow + "@" + ref
}

// Environment is what an environment must enforce.
type Environment struct {
	Name              string
	RequiredReviewers bool // a reviewer approves each deployment
}

// Environments are the environments of deploy.yml: production (the deploy role) and e2e (the e2e role).
var Environments = []Environment{{Name: "production", RequiredReviewers: true}, {Name: "e2e"}}

// DeployBranch is the one branch the environments admit.
const DeployBranch = "main"

// Client reads the API at BaseURL (https://api.github.com) with Token.
type Client struct {
	HTTP    *http.Client
	BaseURL string
	Token   string
}

func (c Client) get(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(c.BaseURL, "/")+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// Check lists what repo's settings lack; an error means they could not be read (a token without access, a network
// failure), which is not a pass.
func (c Client) Check(ctx context.Context, repo string) ([]string, error) {
	var problems []string
	var sub struct {
		UseDefault       bool     `json:"use_default"`
		IncludeClaimKeys []string `json:"include_claim_keys"`
	}
	if err := c.get(ctx, "/repos/"+repo+"/actions/oidc/customization/sub", &sub); err != nil {
		return nil, err
	}
	if sub.UseDefault || !slices.Equal(sub.IncludeClaimKeys, ClaimKeys) {
		problems = append(problems, fmt.Sprintf("OIDC subject template: use_default %v, include_claim_keys %v; want use_default false, include_claim_keys %v",
			sub.UseDefault, sub.IncludeClaimKeys, ClaimKeys))
	}
	for _, want := range Environments {
		p, err := c.checkEnvironment(ctx, repo, want)
		if err != nil {
			return nil, err
		}
		problems = append(problems, p...)
	}
	return problems, nil
}

func (c Client) checkEnvironment(ctx context.Context, repo string, want Environment) ([]string, error) {
	var env struct {
		CanAdminsBypass bool `json:"can_admins_bypass"`
		ProtectionRules []struct {
			Type      string `json:"type"`
			Reviewers []any  `json:"reviewers"`
		} `json:"protection_rules"`
		DeploymentBranchPolicy *struct {
			ProtectedBranches    bool `json:"protected_branches"`
			CustomBranchPolicies bool `json:"custom_branch_policies"`
		} `json:"deployment_branch_policy"`
	}
	base := "/repos/" + repo + "/environments/" + want.Name
	if err := c.get(ctx, base, &env); err != nil {
		return nil, err
	}
	name := "environment " + want.Name
	var problems []string
	if want.RequiredReviewers {
		reviewers := 0
		for _, r := range env.ProtectionRules {
			if r.Type == "required_reviewers" {
				reviewers += len(r.Reviewers)
			}
		}
		if reviewers == 0 {
			problems = append(problems, name+": no required reviewers")
		}
		if env.CanAdminsBypass {
			problems = append(problems, name+": administrators may bypass its protection rules")
		}
	}
	if p := env.DeploymentBranchPolicy; p == nil || p.ProtectedBranches || !p.CustomBranchPolicies {
		return append(problems, name+": deployment branches not limited to selected branches (want "+DeployBranch+" only)"), nil
	}
	var policies struct {
		BranchPolicies []struct {
			Name string `json:"name"`
			Type string `json:"type"`
		} `json:"branch_policies"`
	}
	if err := c.get(ctx, base+"/deployment-branch-policies", &policies); err != nil {
		return nil, err
	}
	var names []string
	for _, b := range policies.BranchPolicies {
		t := b.Type
		if t == "" {
			t = "branch"
		}
		names = append(names, t+":"+b.Name)
	}
	if !slices.Equal(names, []string{"branch:" + DeployBranch}) {
		problems = append(problems, fmt.Sprintf("%s: deployment branch policies %v, want branch:%s only", name, names, DeployBranch))
	}
	return problems, nil
}

package githubsettings

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// api serves the settings of o/r as the GitHub API returns them, from JSON bodies by path.
func api(t *testing.T, bodies map[string]string) Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		body, ok := bodies[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return Client{HTTP: srv.Client(), BaseURL: srv.URL, Token: "tok"}
}

func good() map[string]string {
	return map[string]string{
		"/repos/o/r/actions/oidc/customization/sub": `{"use_default":false,"include_claim_keys":["repo","context","job_workflow_ref"]}`,
		"/repos/o/r/environments/production": `{"name":"production","can_admins_bypass":false,
			"protection_rules":[{"id":1,"type":"required_reviewers","reviewers":[{"type":"Team","reviewer":{"id":7}}]},{"id":2,"type":"branch_policy"}],
			"deployment_branch_policy":{"protected_branches":false,"custom_branch_policies":true}}`,
		"/repos/o/r/environments/production/deployment-branch-policies": `{"total_count":1,"branch_policies":[{"id":3,"name":"main","type":"branch"}]}`,
		"/repos/o/r/environments/e2e": `{"name":"e2e","protection_rules":[{"id":4,"type":"branch_policy"}],
			"deployment_branch_policy":{"protected_branches":false,"custom_branch_policies":true}}`,
		"/repos/o/r/environments/e2e/deployment-branch-policies": `{"total_count":1,"branch_policies":[{"id":5,"name":"main"}]}`,
	}
}

func TestCheckPassesTheDocumentedSettings(t *testing.T) {
	problems, err := api(t, good()).Check(t.Context(), "o/r")
	if err != nil || len(problems) != 0 {
		t.Fatalf("the documented settings: %v %v", problems, err)
	}
}

func TestCheckNamesEachMissingSetting(t *testing.T) {
	for name, c := range map[string]struct {
		path, body, want string
	}{
		"default subject":     {"/repos/o/r/actions/oidc/customization/sub", `{"use_default":true}`, "OIDC subject template"},
		"no job_workflow_ref": {"/repos/o/r/actions/oidc/customization/sub", `{"use_default":false,"include_claim_keys":["repo","context"]}`, "OIDC subject template"},
		"no reviewers": {"/repos/o/r/environments/production", `{"protection_rules":[],
			"deployment_branch_policy":{"protected_branches":false,"custom_branch_policies":true}}`, "production: no required reviewers"},
		"admins bypass": {"/repos/o/r/environments/production", `{"can_admins_bypass":true,"protection_rules":[{"type":"required_reviewers","reviewers":[{}]}],
			"deployment_branch_policy":{"protected_branches":false,"custom_branch_policies":true}}`, "bypass"},
		"any branch": {"/repos/o/r/environments/production", `{"protection_rules":[{"type":"required_reviewers","reviewers":[{}]}],
			"deployment_branch_policy":null}`, "production: deployment branches not limited"},
		"protected branches": {"/repos/o/r/environments/e2e", `{"deployment_branch_policy":{"protected_branches":true,"custom_branch_policies":false}}`,
			"e2e: deployment branches not limited"},
		"a wildcard branch": {"/repos/o/r/environments/e2e/deployment-branch-policies", `{"branch_policies":[{"name":"*","type":"branch"}]}`, "e2e: deployment branch policies"},
		"a second branch": {"/repos/o/r/environments/production/deployment-branch-policies",
			`{"branch_policies":[{"name":"main","type":"branch"},{"name":"release","type":"branch"}]}`, "production: deployment branch policies"},
		"a tag": {"/repos/o/r/environments/production/deployment-branch-policies", `{"branch_policies":[{"name":"main","type":"tag"}]}`, "production: deployment branch policies"},
	} {
		t.Run(name, func(t *testing.T) {
			bodies := good()
			bodies[c.path] = c.body
			problems, err := api(t, bodies).Check(t.Context(), "o/r")
			if err != nil || len(problems) != 1 || !strings.Contains(problems[0], c.want) {
				t.Errorf("problems %q, err %v; want one naming %q", problems, err, c.want)
			}
		})
	}
}

func TestCheckFailsWhenItCannotRead(t *testing.T) {
	bodies := good()
	delete(bodies, "/repos/o/r/environments/e2e")
	if _, err := api(t, bodies).Check(t.Context(), "o/r"); err == nil {
		t.Error("a missing e2e environment passed")
	}
	c := api(t, good())
	c.Token = "wrong"
	if _, err := c.Check(t.Context(), "o/r"); err == nil {
		t.Error("a token without access passed")
	}
}

func TestSubject(t *testing.T) {
	// GitHub's documented form for the template ["repo", "context", "job_workflow_ref"].
	want := "repo:o/r:environment:production:job_workflow_ref:o/r/.github/workflows/deploy.yml@refs/heads/main"
	if got := Subject("o/r", "environment:production", "deploy.yml", "refs/heads/main"); got != want {
		t.Errorf("Subject %q, want %q", got, want)
	}
}

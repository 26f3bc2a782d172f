package repo

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// repoPath is a path from the repository root as the docs and comments write it: app/…, infra/…, docs/… and so on, not
// inside a longer path or URL.
var repoPath = regexp.MustCompile(`(?:^|[^\w./-])((?:app|bench|docs|infra|scripts|test|\.ci|\.github)/[\w.@-]+(?:/[\w.@-]+)*)`)

// made are the paths that builds and runs make: they are named in the docs but not in git.
var made = []string{"infra/cdk.out", "infra/cdk-outputs.json", "infra/node_modules", "infra/.build", "infra/.cache",
	"test/awsstack/.test-data"}

// TestDocsNameExistingPaths: every repository path the Markdown files and the Go comments name is a file or folder in
// git, so that a moved file leaves no stale reference behind.
func TestDocsNameExistingPaths(t *testing.T) {
	root, err := FindRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("git", "-C", root, "ls-files").Output()
	if err != nil {
		t.Skipf("git ls-files: %v", err)
	}
	files := strings.Fields(string(out))
	exists := map[string]bool{}
	for _, f := range files {
		for p := f; p != "."; p = filepath.Dir(p) {
			exists[p] = true
		}
	}
	for _, f := range files {
		if !strings.HasSuffix(f, ".md") && !strings.HasSuffix(f, ".go") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if strings.HasSuffix(f, ".go") {
				_, comment, ok := strings.Cut(line, "//")
				if !ok {
					continue
				}
				line = comment
			}
			for _, m := range repoPath.FindAllStringSubmatch(line, -1) {
				p := m[1]
				if strings.Contains(p, "/..") { // a package pattern (app/...) or a relative path
					continue
				}
				p = strings.TrimSuffix(strings.TrimSuffix(p, "."), "/") // the end of a sentence
				if !exists[p] && !isMade(p) {
					t.Errorf("%s:%d: %s is not in git", f, i+1, p)
				}
			}
		}
	}
}

func isMade(p string) bool {
	for _, m := range made {
		if p == m || strings.HasPrefix(p, m+"/") {
			return true
		}
	}
	return false
}

package repo

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestFindRootWalksUpToGoWork(t *testing.T) {
	root := t.TempDir()
	deep := filepath.Join(root, "scripts", "internal", "x")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "go.work"), []byte("go 1.26.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{root, deep} {
		got, err := FindRoot(dir)
		if err != nil || got != root {
			t.Errorf("FindRoot(%s) = %q, %v; want %q", dir, got, err, root)
		}
	}
}

func TestFindRootFallsBackToGit(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	root := t.TempDir()
	if out, err := exec.Command("git", "init", "-q", root).CombinedOutput(); err != nil {
		t.Fatalf("git init: %v %s", err, out)
	}
	sub := filepath.Join(root, "a", "b")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := FindRoot(sub)
	if err != nil {
		t.Fatal(err)
	}
	// t.TempDir may sit behind a symlink; git prints the resolved path.
	want, _ := filepath.EvalSymlinks(root)
	if got != want {
		t.Errorf("FindRoot = %q, want %q", got, want)
	}
}

func TestFindRootOutsideAnyRepo(t *testing.T) {
	if _, err := os.Stat("/go.work"); err == nil {
		t.Skip("/go.work exists")
	}
	dir := t.TempDir()
	t.Setenv("GIT_CEILING_DIRECTORIES", filepath.Dir(dir))
	if got, err := FindRoot(dir); err == nil {
		t.Errorf("FindRoot(%s) = %q, want an error", dir, got)
	}
}

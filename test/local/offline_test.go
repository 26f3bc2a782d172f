package local

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestDBSettings(t *testing.T) {
	got, err := DBSettings("postgres://aircraft:s3cret@127.0.0.1:5433/e2e_0a1b?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"DB_HOST": "127.0.0.1", "DB_PORT": "5433", "DB_USER": "aircraft", "DB_PASSWORD": "s3cret",
		"DB_NAME": "e2e_0a1b", "DB_SSLMODE": "disable"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if got, _ := DBSettings("postgresql://u:p@db.example.org/x"); got["DB_PORT"] != "5432" || got["DB_SSLMODE"] != "" {
		t.Errorf("defaults: %v", got)
	}
	for _, bad := range []string{"mysql://u:p@h/db", "postgres:///db", "postgres://h/db", "::"} {
		if _, err := DBSettings(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestBuildCommand(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()

	// Without the infra's build command: the contract's build, in app/, with a clean build environment.
	t.Setenv("GOFLAGS", "-race")
	t.Setenv("GOAMD64", "v3")
	t.Setenv("GOWORK", "/elsewhere/go.work")
	cmd := BuildCommand(ctx, root, "/out")
	want := []string{"go", "build", "-trimpath", "-buildvcs=false", "-ldflags", "-s -w -buildid=", "-o", "/out/aircraftd", "./cmd/aircraftd"}
	if !slices.Equal(cmd.Args, want) || cmd.Dir != filepath.Join(root, "app") {
		t.Errorf("contract build: %q in %s", cmd.Args, cmd.Dir)
	}
	env := strings.Join(cmd.Env, "\n") + "\n"
	for _, kv := range []string{"GOWORK=off", "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOFLAGS="} {
		if !strings.Contains(env, kv+"\n") {
			t.Errorf("build environment lacks %s", kv)
		}
	}
	for _, kv := range []string{"GOFLAGS=-race", "GOAMD64=v3", "GOWORK=/elsewhere/go.work"} {
		if strings.Contains(env, kv+"\n") {
			t.Errorf("build environment keeps %s", kv)
		}
	}

	// With infra/cmd/appbuild: the one build both the CDK app and this suite use.
	if err := os.MkdirAll(filepath.Join(root, "infra", "cmd", "appbuild"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd = BuildCommand(ctx, root, "/out")
	if !slices.Equal(cmd.Args, []string{"go", "run", "./infra/cmd/appbuild", "-out", "/out"}) || cmd.Dir != root {
		t.Errorf("appbuild: %q in %s", cmd.Args, cmd.Dir)
	}

	// AIRCRAFTD_BINARY: that file, built by nobody here.
	bin := filepath.Join(root, "prebuilt")
	if err := os.WriteFile(bin, []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(BinaryOverrideEnv, bin)
	if got, err := BuildService(ctx, root, t.TempDir()); err != nil || got != bin {
		t.Errorf("override: %q %v", got, err)
	}
	t.Setenv(BinaryOverrideEnv, filepath.Join(root, "missing"))
	if _, err := BuildService(ctx, root, t.TempDir()); err == nil {
		t.Error("a missing override was accepted")
	}
	if _, err := os.Stat(filepath.Join(RepoRoot(), "app", "cmd", "aircraftd")); err != nil {
		t.Errorf("RepoRoot %s has no app/cmd/aircraftd: %v", RepoRoot(), err)
	}
}

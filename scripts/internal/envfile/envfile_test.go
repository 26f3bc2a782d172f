package envfile

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestWriteReadRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "env")
	env := []string{
		"DATABASE_URL=postgres://u:p@127.0.0.1:5432/db?sslmode=disable",
		"EMPTY=",
		"WITH_EQUALS=a=b",
	}
	if err := Write(path, env); err != nil {
		t.Fatal(err)
	}

	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := "DATABASE_URL=postgres://u:p@127.0.0.1:5432/db?sslmode=disable\nEMPTY=\nWITH_EQUALS=a=b\n"
	if string(b) != want {
		t.Errorf("file =\n%s\nwant\n%s", b, want)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", fi.Mode().Perm())
	}

	got, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, env) {
		t.Errorf("Read = %q, want %q", got, env)
	}
}

func TestWriteReplaces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "env")
	if err := Write(path, []string{"A=1", "B=2"}); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, []string{"A=3"}); err != nil {
		t.Fatal(err)
	}
	got, err := Read(path)
	if err != nil || !slices.Equal(got, []string{"A=3"}) {
		t.Errorf("Read = %q, %v; want [A=3]", got, err)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".env-*")); len(left) > 0 {
		t.Errorf("temporary files left: %q", left)
	}
}

func TestWriteRejects(t *testing.T) {
	for _, bad := range []string{"NOEQUALS", "=value", "1KEY=x", "BAD KEY=x", "K=line\nbreak"} {
		if err := Write(filepath.Join(t.TempDir(), "env"), []string{bad}); err == nil {
			t.Errorf("Write(%q) succeeded, want an error", bad)
		}
	}
}

func TestReadSkipsCommentsAndBlanks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "env")
	if err := os.WriteFile(path, []byte("# comment\n\nA=1\n  B=2  \n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := Read(path)
	if err != nil || !slices.Equal(got, []string{"A=1", "B=2"}) {
		t.Errorf("Read = %q, %v", got, err)
	}

	if err := os.WriteFile(path, []byte("A=1\nnot a pair\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(path); err == nil {
		t.Error("Read accepted a line without =")
	}
}

func TestGet(t *testing.T) {
	env := []string{"A=1", "B=x=y", "A=2"}
	for key, want := range map[string]string{"A": "2", "B": "x=y", "C": ""} {
		if got := Get(env, key); got != want {
			t.Errorf("Get(%s) = %q, want %q", key, got, want)
		}
	}
}

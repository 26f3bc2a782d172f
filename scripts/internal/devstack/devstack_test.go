package devstack

import (
	"errors"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/aircraftdata/platform/scripts/internal/envfile"
)

func TestParseArgs(t *testing.T) {
	tests := []struct {
		args []string
		want options
	}{
		{[]string{"up"}, options{cmd: "up"}},
		{[]string{"-root", "/r", "up"}, options{cmd: "up", root: "/r"}},
		{[]string{"exec", "--", "go", "test", "-run", "X", "./..."}, options{cmd: "exec", argv: []string{"go", "test", "-run", "X", "./..."}}},
		{[]string{"exec", "make", "-C", "app"}, options{cmd: "exec", argv: []string{"make", "-C", "app"}}},
		// Flags after "--" belong to the command, even ones devstack knows.
		{[]string{"exec", "--", "prog", "-root", "x"}, options{cmd: "exec", argv: []string{"prog", "-root", "x"}}},
		{[]string{"seed"}, options{cmd: "seed"}},
		{[]string{"seed", "-data", "/d"}, options{cmd: "seed", data: "/d"}},
		{[]string{"dev", "--data=/d"}, options{cmd: "dev", data: "/d"}},
	}
	for _, tt := range tests {
		got, err := parseArgs(tt.args)
		if err != nil {
			t.Errorf("parseArgs(%q): %v", tt.args, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseArgs(%q) = %+v, want %+v", tt.args, got, tt.want)
		}
	}
}

func TestParseArgsErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"nope"},
		{"exec"},
		{"exec", "--"},
		{"up", "extra"},
		{"up", "-data", "/d"}, // -data is for seed and dev
		{"seed", "-bogus"},
		{"-bogus", "up"},
	} {
		if got, err := parseArgs(args); err == nil {
			t.Errorf("parseArgs(%q) = %+v, want an error", args, got)
		}
	}
}

func TestAPIToken(t *testing.T) {
	envPath := filepath.Join(t.TempDir(), "env")
	none := func(string) string { return "" }

	fresh := apiToken(none, envPath)
	if len(fresh) < 20 {
		t.Fatalf("generated token %q is too short", fresh)
	}
	if again := apiToken(none, envPath); again == fresh {
		t.Error("two generated tokens are equal")
	}

	if err := envfile.Write(envPath, []string{"A=1", "API_TOKEN=previous"}); err != nil {
		t.Fatal(err)
	}
	if got := apiToken(none, envPath); got != "previous" {
		t.Errorf("with .dev/env: token = %q, want the previous one", got)
	}
	fromEnv := func(k string) string {
		if k == "API_TOKEN" {
			return "mine"
		}
		return ""
	}
	if got := apiToken(fromEnv, envPath); got != "mine" {
		t.Errorf("with $API_TOKEN: token = %q, want mine", got)
	}
}

func TestExitCode(t *testing.T) {
	for _, tt := range []struct {
		script string
		want   int
	}{
		{"exit 0", 0},
		{"exit 3", 3},
		{"kill -TERM $$", 128 + 15},
	} {
		err := exec.Command("sh", "-c", tt.script).Run()
		if got := exitCode(err); got != tt.want {
			t.Errorf("%q: exitCode = %d, want %d", tt.script, got, tt.want)
		}
	}
	if got := exitCode(errors.New("other")); got != 1 {
		t.Errorf("exitCode(other error) = %d, want 1", got)
	}
}

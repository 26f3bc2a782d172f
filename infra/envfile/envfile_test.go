package envfile

import (
	"slices"
	"testing"
)

func TestRenderThenParse(t *testing.T) {
	env := map[string]string{
		"HTTP_ADDR": "127.0.0.1:8443", "DB_PASSWORD": "p@ss-w0rd+x=y", "EMPTY": "",
		"DB_SECRET_ARN": "arn:aws:x/y-${Token[TOKEN.12]}",
	}
	text, err := Render("Environment of aircraftd\nWritten by a test", env)
	if err != nil {
		t.Fatal(err)
	}
	want := "# Environment of aircraftd\n# Written by a test\n" +
		"DB_PASSWORD=p@ss-w0rd+x=y\nDB_SECRET_ARN=arn:aws:x/y-${Token[TOKEN.12]}\nEMPTY=\nHTTP_ADDR=127.0.0.1:8443\n"
	if text != want {
		t.Errorf("rendered\n%s\nwant\n%s", text, want)
	}
	got, err := Parse(text + "\n; a comment\n  # another\n  SPACED = x \n")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"DB_PASSWORD=p@ss-w0rd+x=y", "DB_SECRET_ARN=arn:aws:x/y-${Token[TOKEN.12]}", "EMPTY=",
		"HTTP_ADDR=127.0.0.1:8443", "SPACED=x"}; !slices.Equal(got, want) {
		t.Errorf("parsed %q, want %q", got, want)
	}
}

func TestRenderRefusesWhatSystemdAndAShellReadDifferently(t *testing.T) {
	for _, bad := range []string{"a b", `"quoted"`, "'q'", "$HOME", "$(id)", "x;y", "multi\nline", "back`tick`",
		`a\b`, "${Token[X]} y"} {
		if _, err := Render("h", map[string]string{"K": bad}); err == nil {
			t.Errorf("value %q accepted", bad)
		}
	}
	for _, bad := range []string{"lower", "1X", "A-B", ""} {
		if _, err := Render("h", map[string]string{bad: "x"}); err == nil {
			t.Errorf("name %q accepted", bad)
		}
	}
}

func TestParseRefusesLinesThatAreNotAssignments(t *testing.T) {
	for _, bad := range []string{"NOT A LINE", "lower=x", "=x"} {
		if _, err := Parse(bad + "\n"); err == nil {
			t.Errorf("line %q accepted", bad)
		}
	}
}

package config

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite .env.example and the settings table of docs/CONTRACT.md from the table")

// repoFile is a file of the repository, from app/internal/config.
func repoFile(name string) string { return filepath.Join("..", "..", "..", filepath.FromSlash(name)) }

// The contract's settings table sits between these two lines.
const (
	tableBegin = "<!-- settings: generated from app/internal/config/settings.go (go -C app test ./internal/config -update) -->\n"
	tableEnd   = "<!-- settings: end -->\n"
)

func TestEnvExampleIsTheTable(t *testing.T) {
	path := repoFile(".env.example")
	want := EnvExample()
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf(".env.example is not the settings table: run go -C app test ./internal/config -update\n--- got\n%s\n--- want\n%s", got, want)
	}
}

func TestContractIsTheTable(t *testing.T) {
	path := repoFile("docs/CONTRACT.md")
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	before, rest, ok1 := strings.Cut(string(doc), tableBegin)
	table, after, ok2 := strings.Cut(rest, tableEnd)
	if !ok1 || !ok2 {
		t.Fatalf("docs/CONTRACT.md: no %q … %q section", tableBegin, tableEnd)
	}
	want := ContractTable()
	if *update {
		if err := os.WriteFile(path, []byte(before+tableBegin+want+tableEnd+after), 0o644); err != nil {
			t.Fatal(err)
		}
		table = want
	}
	if table != want {
		t.Errorf("docs/CONTRACT.md's settings table is not the table: run go -C app test ./internal/config -update\n--- got\n%s\n--- want\n%s", table, want)
	}
}

// Every line of .env.example that names a variable names a setting, once: the file is what infra's test reads as the
// list of the service's names.
func TestEnvExampleNamesEverySettingOnce(t *testing.T) {
	name := regexp.MustCompile(`(?m)^(?:# )?([A-Z][A-Z0-9_]*)=`)
	seen := map[string]int{}
	for _, m := range name.FindAllStringSubmatch(EnvExample(), -1) {
		seen[m[1]]++
	}
	for _, s := range Settings() {
		if seen[s.Name] != 1 {
			t.Errorf("%s appears %d times in .env.example", s.Name, seen[s.Name])
		}
		delete(seen, s.Name)
	}
	for n := range seen {
		t.Errorf(".env.example names %s, which is no setting", n)
	}
}

func TestSettingsAreWellFormed(t *testing.T) {
	valid := regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)
	seen := map[string]bool{}
	for _, s := range Settings() {
		if !valid.MatchString(s.Name) || seen[s.Name] {
			t.Errorf("setting %q: bad or repeated name", s.Name)
		}
		seen[s.Name] = true
		if s.Doc == "" || s.Group == "" {
			t.Errorf("%s: no doc or group", s.Name)
		}
		// A default must be a value the setting accepts.
		if s.set != nil {
			if err := s.set(s.Default); err != nil {
				t.Errorf("%s: default %q rejected: %v", s.Name, s.Default, err)
			}
		}
	}
}

// Prose that quotes a setting's default next to its name — "`JOBS_MAX_RUNNING` (32)", "(`INGEST_MAX_DEPTH`, 32)",
// "`JOBS_KEEP` 100" — quotes the table's. docs/local-stack.md is left out: it quotes the local stack's values.
func TestProseQuotesTheDefaults(t *testing.T) {
	defaults := map[string]string{}
	for _, s := range Settings() {
		if s.Default != "" {
			defaults[s.Name] = s.Default
		}
	}
	quotes := []*regexp.Regexp{
		regexp.MustCompile("`([A-Z][A-Z0-9_]+)` \\((?:default )?([^)]*)\\)"),
		regexp.MustCompile("\\(`([A-Z][A-Z0-9_]+)`, (?:default )?([^)]*)\\)"),
		regexp.MustCompile("`([A-Z][A-Z0-9_]+)` ([0-9][0-9,]*)\\b"),
	}
	value := regexp.MustCompile(`^[\w./:-][\w.,/:-]*( [KMG]iB)?$`)
	normal := strings.NewReplacer(" ", "", ",", "")
	files, _ := filepath.Glob(repoFile("docs/*.md"))
	files = append(files, repoFile("README.md"))
	checked := 0
	for _, f := range files {
		if strings.HasSuffix(f, "local-stack.md") || strings.HasSuffix(f, "CONTRACT.md") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, re := range quotes {
			for _, m := range re.FindAllStringSubmatch(string(b), -1) {
				def, ok := defaults[m[1]]
				if !ok {
					continue
				}
				quoted, _, _ := strings.Cut(m[2], ", ")
				quoted, _, _ = strings.Cut(quoted, ":")
				if !value.MatchString(quoted) {
					continue // prose, not a value: "(or `AWS_DEFAULT_REGION`)"
				}
				if normal.Replace(quoted) != def {
					t.Errorf("%s quotes %s as %q: its default is %q", filepath.Base(f), m[1], quoted, def)
				}
				checked++
			}
		}
	}
	if checked < 10 {
		t.Errorf("only %d quoted defaults found: the patterns no longer match the docs", checked)
	}
}

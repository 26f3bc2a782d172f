package config

import (
	"fmt"
	"strings"
)

// EnvExample renders .env.example: every setting, by group, with its default (or an example); what a local run sets is
// uncommented.
func EnvExample() string {
	var b strings.Builder
	b.WriteString(`# Every variable the service (app/cmd/aircraftd) reads. ` + "`make dev`" + ` writes the
# local stack's values to .dev/env; in AWS the instance's environment file sets
# them and secrets come from Secrets Manager (*_SECRET_ARN).
# Generated from app/internal/config/settings.go: edit it there, then
# go -C app test ./internal/config -update
`)
	group := ""
	for _, s := range Settings() {
		if s.Group != group {
			group = s.Group
			fmt.Fprintf(&b, "\n# --- %s ---\n", group)
		}
		v := s.Default
		if v == "" {
			v = s.Example
		}
		line := s.Name + "=" + v
		if !s.Local || v == "" {
			line = "# " + line
		}
		fmt.Fprintf(&b, "%-40s # %s\n", line, s.Doc)
	}
	return b.String()
}

// ContractTable renders the settings table of docs/CONTRACT.md.
func ContractTable() string {
	var b strings.Builder
	b.WriteString("| variable | meaning | default |\n|---|---|---|\n")
	for _, s := range Settings() {
		def := ""
		if s.Default != "" {
			def = "`" + s.Default + "`"
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", s.Name, strings.ReplaceAll(s.Doc, "|", `\|`), def)
	}
	return b.String()
}

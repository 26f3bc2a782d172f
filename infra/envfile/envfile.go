// Package envfile writes and reads the instance's environment files (/etc/aircraft/aircraftd.env,
// /etc/aircraft/deploy.env): KEY=value lines, sorted by key, that systemd's EnvironmentFile= and bash's `.` read alike.
// The CDK app renders the instance's files with it, and the local e2e suite renders its twin of aircraftd.env with it.
// It imports nothing but the standard library, so using it compiles no CDK code.
package envfile

import (
	"bufio"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

var (
	key = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)
	// Characters that mean the same to systemd and to a shell: no quotes, spaces, $, backslashes, backquotes,
	// semicolons or newlines.
	safeValue = regexp.MustCompile(`^[A-Za-z0-9_./:@,+=-]*$`)
	// A CDK token in a value is replaced by CloudFormation, at deploy time, with an ARN, a name or an address.
	cdkToken = regexp.MustCompile(`\$\{Token\[[^\]]+\]\}`)
)

// Render renders env as KEY=value lines sorted by key, after header (each of its lines as a comment), so the file, and
// the release id made from it, is deterministic. A name that is not an upper-case identifier, or a value that systemd
// and a shell would read differently, is an error.
func Render(header string, env map[string]string) (string, error) {
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for line := range strings.Lines(header) {
		fmt.Fprintf(&b, "# %s\n", strings.TrimSuffix(line, "\n"))
	}
	for _, k := range keys {
		if !key.MatchString(k) {
			return "", fmt.Errorf("environment: bad name %q", k)
		}
		if !safeValue.MatchString(cdkToken.ReplaceAllString(env[k], "")) {
			return "", fmt.Errorf("environment: %s=%q: value must match %s", k, env[k], safeValue)
		}
		fmt.Fprintf(&b, "%s=%s\n", k, env[k])
	}
	return b.String(), nil
}

// Parse reads an environment file as systemd's EnvironmentFile= reads these files (no quotes, no escapes): KEY=value
// lines; blank lines and lines starting with # or ; are skipped. It returns the KEY=value list the process gets.
func Parse(text string) ([]string, error) {
	var env []string
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || !key.MatchString(strings.TrimSpace(k)) {
			return nil, fmt.Errorf("environment file line %d: want KEY=value: %q", n, line)
		}
		env = append(env, strings.TrimSpace(k)+"="+strings.TrimSpace(v))
	}
	return env, sc.Err()
}

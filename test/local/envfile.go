package local

import (
	"bufio"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
)

// The environment file is the local twin of the instance's /etc/aircraft/aircraftd.env (written by cfn-init from
// infra's ServiceEnvironment, read by systemd's EnvironmentFile=): KEY=value lines sorted by key, values limited
// to characters that mean the same to systemd and to a shell.

var (
	envKey   = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)
	envValue = regexp.MustCompile(`^[A-Za-z0-9_./:@,+=-]*$`)
)

// RenderEnv renders env as the instance's file is rendered.
func RenderEnv(header string, env map[string]string) (string, error) {
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n", header)
	for _, k := range keys {
		if !envKey.MatchString(k) {
			return "", fmt.Errorf("environment: bad name %q", k)
		}
		if !envValue.MatchString(env[k]) {
			return "", fmt.Errorf("environment: %s=%q: value must match %s", k, env[k], envValue)
		}
		fmt.Fprintf(&b, "%s=%s\n", k, env[k])
	}
	return b.String(), nil
}

// ParseEnv reads an environment file the way systemd's EnvironmentFile= reads these (no quotes, no escapes):
// KEY=value lines; blank lines and lines starting with # or ; are ignored. It returns the KEY=value list a
// process gets.
func ParseEnv(text string) ([]string, error) {
	var env []string
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || !envKey.MatchString(strings.TrimSpace(k)) {
			return nil, fmt.Errorf("environment file line %d: want KEY=value: %q", n, line)
		}
		env = append(env, strings.TrimSpace(k)+"="+strings.TrimSpace(v))
	}
	return env, sc.Err()
}

// DBSettings splits a postgres:// URL into the DB_* variables the instance gets (there aircraftd fills them from
// the RDS secret named by DB_SECRET_ARN): the service connects through the same settings in both places.
func DBSettings(databaseURL string) (map[string]string, error) {
	u, err := url.Parse(databaseURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Hostname() == "" || u.User == nil {
		return nil, fmt.Errorf("DATABASE_URL %q: want postgres://user:password@host:port/db", databaseURL)
	}
	pw, _ := u.User.Password()
	port := u.Port()
	if port == "" {
		port = "5432"
	}
	env := map[string]string{
		"DB_HOST": u.Hostname(), "DB_PORT": port, "DB_USER": u.User.Username(), "DB_PASSWORD": pw,
		"DB_NAME": strings.TrimPrefix(u.Path, "/"),
	}
	if mode := u.Query().Get("sslmode"); mode != "" {
		env["DB_SSLMODE"] = mode
	}
	return env, nil
}
